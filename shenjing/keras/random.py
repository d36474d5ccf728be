"""`keras.random`: random tensors drawn from shenjing's generators.

`seed` is as in Keras 3: None draws from shenjing's global generator (seeded by
`keras.utils.set_random_seed`), an int gives the same numbers on every call, and a
`SeedGenerator` gives a reproducible stream that advances with each call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import shenjing as sj
import shenjing.nn.functional as F

from ..random import Generator, get_rng
from ..tensor import Tensor
from .ops.core import as_tensor

__all__ = ["SeedGenerator", "normal", "uniform", "randint", "truncated_normal", "dropout",
           "shuffle", "categorical", "gamma", "binomial", "beta"]


class SeedGenerator:
    """A stateful seed: each random call that receives it draws the next numbers of its
    stream, so a program seeded the same way repeats itself."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        if seed is not None and (not isinstance(seed, (int, np.integer))
                                 or isinstance(seed, bool)):
            raise TypeError(f"SeedGenerator: seed must be an int or None, got {seed!r}")
        self.seed = seed
        self.generator = Generator(None if seed is None else int(seed))

    def __repr__(self) -> str:
        return f"SeedGenerator(seed={self.seed})"


def _rng(seed: Any) -> np.random.Generator:
    if seed is None:
        return get_rng(None)
    if isinstance(seed, SeedGenerator):
        return get_rng(seed.generator)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.Generator(np.random.PCG64(int(seed)))
    raise TypeError(f"keras.random: seed must be None, an int or a SeedGenerator, got "
                    f"{seed!r}")


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype("float32" if dtype is None else getattr(dtype, "name", None) or str(dtype))
    if dt.kind != "f":
        raise ValueError(f"keras.random: dtype must be a float type, got {dtype!r}")
    return dt


def normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
           seed: Any = None) -> Tensor:
    draws = _rng(seed).normal(mean, stddev, _shape(shape))
    return sj.from_numpy(draws.astype(_float_dtype(dtype)))


def uniform(shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None,
            seed: Any = None) -> Tensor:
    if not minval < maxval:
        raise ValueError(f"keras.random.uniform: minval ({minval}) must be < maxval "
                         f"({maxval})")
    draws = _rng(seed).uniform(minval, maxval, _shape(shape))
    return sj.from_numpy(draws.astype(_float_dtype(dtype)))


def randint(shape: Any, minval: int, maxval: int, dtype: Any = "int32",
            seed: Any = None) -> Tensor:
    """Integers in [minval, maxval)."""
    if not minval < maxval:
        raise ValueError(f"keras.random.randint: minval ({minval}) must be < maxval "
                         f"({maxval})")
    draws = _rng(seed).integers(int(minval), int(maxval), _shape(shape))
    return sj.from_numpy(draws.astype(np.dtype(getattr(dtype, "name", dtype))))


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
                     seed: Any = None) -> Tensor:
    """Normal draws kept within two standard deviations of the mean (others redrawn)."""
    rng, shp = _rng(seed), _shape(shape)
    draws = rng.standard_normal(shp)
    outside = np.abs(draws) > 2.0
    while outside.any():
        draws[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(draws) > 2.0
    return sj.from_numpy((mean + stddev * draws).astype(_float_dtype(dtype)))


def dropout(inputs: Any, rate: float, noise_shape: Any = None, seed: Any = None) -> Tensor:
    """Zero elements with probability `rate` and scale the rest by 1 / (1 - rate); with
    `noise_shape`, one draw is broadcast over the axes of size 1 there."""
    x = as_tensor(inputs)
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"keras.random.dropout: rate must be in [0, 1), got {rate!r}")
    if noise_shape is None:
        generator = seed.generator if isinstance(seed, SeedGenerator) else (
            Generator(int(seed)) if seed is not None else None)
        if seed is not None and not isinstance(seed, (SeedGenerator, int, np.integer)):
            _rng(seed)  # raises the TypeError
        return F.dropout(x, float(rate), training=True, generator=generator)
    shape = tuple(x.shape[i] if d is None else int(d) for i, d in enumerate(noise_shape))
    keep = (_rng(seed).random(shape) >= float(rate)) / (1.0 - float(rate))
    return x * sj.from_numpy(keep.astype(np.dtype(x.dtype)))


def shuffle(x: Any, axis: int = 0, seed: Any = None) -> Tensor:
    """`x` with its slices along `axis` in a random order (gradients follow them)."""
    t = as_tensor(x)
    order = _rng(seed).permutation(t.shape[axis])
    return sj.index_select(t, axis % t.ndim, sj.from_numpy(order.astype(np.int64)))


def categorical(logits: Any, num_samples: int, dtype: Any = "int32", seed: Any = None
                ) -> Tensor:
    """Class draws from unnormalised log-probabilities (batch, classes) -> (batch, n)."""
    z = as_tensor(logits).numpy().astype(np.float64)
    if z.ndim != 2:
        raise ValueError(f"keras.random.categorical: logits must be 2-d (batch, classes), "
                         f"got shape {z.shape}")
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = _rng(seed).random((z.shape[0], int(num_samples)))
    draws = np.minimum((u[:, :, None] > cdf[:, None, :]).sum(-1), z.shape[1] - 1)
    return sj.from_numpy(draws.astype(np.dtype(getattr(dtype, "name", dtype))))


def gamma(shape: Any, alpha: float, dtype: Any = None, seed: Any = None) -> Tensor:
    return sj.from_numpy(_rng(seed).gamma(alpha, 1.0, _shape(shape)).astype(
        _float_dtype(dtype)))


def binomial(shape: Any, counts: Any, probabilities: Any, dtype: Any = None,
             seed: Any = None) -> Tensor:
    return sj.from_numpy(_rng(seed).binomial(counts, probabilities, _shape(shape)).astype(
        _float_dtype(dtype)))


def beta(shape: Any, alpha: Any, beta: Any, dtype: Any = None, seed: Any = None) -> Tensor:
    return sj.from_numpy(_rng(seed).beta(alpha, beta, _shape(shape)).astype(
        _float_dtype(dtype)))
