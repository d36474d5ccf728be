"""Keras initializers ('glorot_uniform', 'he_normal', 'orthogonal', ...).

An initializer is called with a shape *in Keras's layout* (a Dense kernel is (in, out), a
Conv2D kernel (kh, kw, in, out)) and returns a NumPy array; the layer then transposes it into
the nn module's PyTorch layout. Fans are computed from the Keras shape exactly as Keras does,
so a Keras layer here starts from the same distribution as in Keras. All randomness comes
from `shenjing.random`, so `sj.manual_seed` (or `keras.utils.set_random_seed`) reproduces it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..nn import init
from ..random import Generator
from ..tensor import from_numpy
from .registry import Registry, serialize
from .registry import deserialize as _deserialize

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeNormal",
           "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal", "Identity", "compute_fans",
           "get", "serialize", "deserialize"]

REGISTRY = Registry("initializer")


def compute_fans(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a Keras-layout weight shape."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: `init(shape, dtype='float32') -> np.ndarray`."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _generator(self) -> Generator | None:
        """None (shenjing's global stream) or, for a seeded initializer, a fresh generator:
        a seeded Keras initializer gives the same values each call, and so does this one."""
        return None if self.seed is None else Generator(int(self.seed))

    def __call__(self, shape: tuple, dtype: Any = "float32") -> np.ndarray:
        return np.asarray(self.sample(tuple(int(s) for s in shape)), dtype=dtype)

    def sample(self, shape: tuple) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"seed": self.seed} if self.seed is not None else {}

    @classmethod
    def from_config(cls, config: dict) -> "Initializer":
        return cls(**config)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY.add(cls)


class Zeros(Initializer):
    def __init__(self) -> None:
        super().__init__(None)

    def sample(self, shape: tuple) -> np.ndarray:
        return _filled(shape, init.zeros_)


class Ones(Initializer):
    def __init__(self) -> None:
        super().__init__(None)

    def sample(self, shape: tuple) -> np.ndarray:
        return _filled(shape, init.ones_)


class Constant(Initializer):
    def __init__(self, value: float = 0.0) -> None:
        super().__init__(None)
        self.value = value

    def sample(self, shape: tuple) -> np.ndarray:
        return _filled(shape, init.constant_, self.value)

    def get_config(self) -> dict:
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def sample(self, shape: tuple) -> np.ndarray:
        return _filled(shape, init.normal_, self.mean, self.stddev, self._generator())

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def sample(self, shape: tuple) -> np.ndarray:
        return _filled(shape, init.uniform_, self.minval, self.maxval, self._generator())

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


def _filled(shape: tuple, fill: Any, *args: Any) -> np.ndarray:
    """A float64 array of `shape` filled in place by a `shenjing.nn.init` function."""
    t = from_numpy(np.empty(shape, np.float64))
    fill(t, *args)
    return t.numpy()


def _truncated(shape: tuple, mean: float, stddev: float, generator: Any) -> np.ndarray:
    """Normal(mean, stddev) samples redrawn until within two standard deviations (Keras)."""
    return _filled(shape, init.trunc_normal_, mean, stddev, mean - 2.0 * stddev,
                   mean + 2.0 * stddev, generator)


class TruncatedNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def sample(self, shape: tuple) -> np.ndarray:
        return _truncated(shape, self.mean, self.stddev, self._generator())

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class VarianceScaling(Initializer):
    """Samples with variance scale / n, n the fan_in, fan_out or their mean (Keras's rule)."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None) -> None:
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be 'fan_in', 'fan_out' or 'fan_avg', "
                             f"got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform", "normal"):
            raise ValueError(f"VarianceScaling: unknown distribution {distribution!r}")
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be positive, got {scale}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def sample(self, shape: tuple) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        var = self.scale / max(1.0, n)
        generator = self._generator()
        if self.distribution == "truncated_normal":
            # 0.879... is the stddev of a unit normal truncated to [-2, 2]
            return _truncated(shape, 0.0, math.sqrt(var) / 0.87962566103423978, generator)
        if self.distribution in ("untruncated_normal", "normal"):
            return _filled(shape, init.normal_, 0.0, math.sqrt(var), generator)
        limit = math.sqrt(3.0 * var)
        return _filled(shape, init.uniform_, -limit, limit, generator)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


def _preset(name: str, scale: float, mode: str, distribution: str) -> type:
    def __init__(self, seed: int | None = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self) -> dict:
        return Initializer.get_config(self)

    doc = f"VarianceScaling(scale={scale}, mode={mode!r}, distribution={distribution!r})."
    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": doc})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal one, times gain."""

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = gain

    def sample(self, shape: tuple) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: needs a shape of at least 2 dimensions, got {shape}")
        # Keras flattens all but the last axis; nn.init all but the first
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        q = _filled((rows, cols), init.orthogonal_, self.gain, self._generator())
        return q.reshape(shape)

    def get_config(self) -> dict:
        return {"gain": self.gain, **super().get_config()}


class Identity(Initializer):
    def __init__(self, gain: float = 1.0) -> None:
        super().__init__(None)
        self.gain = gain

    def sample(self, shape: tuple) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2-D shape, got {shape}")
        return self.gain * _filled(shape, init.eye_)

    def get_config(self) -> dict:
        return {"gain": self.gain}


for _cls, _names in [(Zeros, ("zeros", "zero")), (Ones, ("ones", "one")),
                     (Constant, ("constant",)), (RandomNormal, ("random_normal", "normal")),
                     (RandomUniform, ("random_uniform", "uniform")),
                     (TruncatedNormal, ("truncated_normal",)),
                     (VarianceScaling, ("variance_scaling",)),
                     (GlorotUniform, ("glorot_uniform",)), (GlorotNormal, ("glorot_normal",)),
                     (HeNormal, ("he_normal",)), (HeUniform, ("he_uniform",)),
                     (LecunNormal, ("lecun_normal",)), (LecunUniform, ("lecun_uniform",)),
                     (Orthogonal, ("orthogonal",)), (Identity, ("identity",))]:
    REGISTRY.add(_cls, *_names)


def get(identifier: Any) -> Initializer:
    """'he_normal' -> HeNormal(); an Initializer or a callable(shape, dtype) passes through."""
    if isinstance(identifier, str):
        return REGISTRY.lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"initializer: expected a name, an Initializer or a callable, got "
                    f"{identifier!r}")


def deserialize(config: Any, custom_objects: dict | None = None) -> Initializer:
    obj = _deserialize(REGISTRY, config, custom_objects)
    return obj() if isinstance(obj, type) else obj


serialize = serialize
