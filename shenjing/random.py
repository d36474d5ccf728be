"""Seeded random number generation shared by tensors, layers, dropout and data loaders.

One process-wide default generator makes `sj.manual_seed(0)` reproduce a whole run;
a `Generator` object can be passed where PyTorch accepts `generator=` (random_split,
DataLoader) to keep a stream independent of the global one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Generator", "default_generator", "manual_seed", "initial_seed", "get_rng", "seed",
           "get_rng_state", "set_rng_state", "multinomial"]


class Generator:
    """A seedable random stream wrapping `numpy.random.Generator` (PCG64)."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = int(np.random.SeedSequence().entropy % (2**63)) if seed is None else seed
        self.rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> "Generator":
        """Reset the stream to `seed` and return self, as torch.Generator.manual_seed does."""
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"manual_seed: expected an int seed, got {type(seed).__name__}")
        self._seed = int(seed)
        self.rng = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (every random op without its own generator draws from it)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the default generator from fresh entropy and return the seed."""
    s = int(np.random.SeedSequence().entropy % (2**63))
    default_generator.manual_seed(s)
    return s


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng(generator: Generator | None = None) -> np.random.Generator:
    """The numpy Generator behind `generator`, or behind the default one."""
    return (generator if generator is not None else default_generator).rng


# get_rng_state / set_rng_state: the default generator's state as a uint8 tensor, as torch's
# ByteTensor, so it goes into a checkpoint with the weights (sj.save writes no pickles).
# Layout: PCG64 state (16 bytes, little-endian), increment (16), has_uint32 (1), the
# buffered uint32 (4), initial seed (8, signed).
_RNG_STATE_BYTES = 45


def get_rng_state():
    """The default generator's state as a uint8 tensor (save it to resume a run exactly)."""
    from .tensor import from_numpy  # late: tensor imports this module

    gen = default_generator
    state = gen.get_state()
    if state.get("bit_generator") != "PCG64":
        raise ValueError(f"get_rng_state: expected a PCG64 generator, got "
                         f"{state.get('bit_generator')!r}")
    raw = (state["state"]["state"].to_bytes(16, "little")
           + state["state"]["inc"].to_bytes(16, "little")
           + int(state["has_uint32"]).to_bytes(1, "little")
           + int(state["uinteger"]).to_bytes(4, "little")
           + int(gen.initial_seed()).to_bytes(8, "little", signed=True))
    return from_numpy(np.frombuffer(raw, dtype=np.uint8).copy())


def set_rng_state(new_state) -> None:
    """Restore the default generator from a state `get_rng_state` returned."""
    arr = new_state.numpy() if hasattr(new_state, "numpy") else np.asarray(new_state)
    if arr.dtype != np.uint8 or arr.shape != (_RNG_STATE_BYTES,):
        raise ValueError(f"set_rng_state: expected the uint8 tensor of {_RNG_STATE_BYTES} "
                         f"bytes that get_rng_state returns, got dtype {arr.dtype} and shape "
                         f"{tuple(arr.shape)}")
    raw = arr.tobytes()
    if raw[32] > 1:
        raise ValueError("set_rng_state: corrupt state (has_uint32 flag is not 0 or 1)")
    gen = default_generator
    gen.set_state({"bit_generator": "PCG64",
                   "state": {"state": int.from_bytes(raw[0:16], "little"),
                             "inc": int.from_bytes(raw[16:32], "little")},
                   "has_uint32": raw[32], "uinteger": int.from_bytes(raw[33:37], "little")})
    gen._seed = int.from_bytes(raw[37:45], "little", signed=True)


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None,
                out=None):
    """Indices drawn from the categories of each row of `input` (1-D or 2-D non-negative
    weights, not necessarily normalized), as torch.multinomial; int64, shape
    (num_samples,) or (rows, num_samples). Without replacement a category is drawn at most
    once per row (weighted sampling without replacement via exponential race keys)."""
    from .tensor import from_numpy  # late: tensor imports this module

    if out is not None:
        raise NotImplementedError("multinomial: out= is not supported")
    w = input.numpy() if hasattr(input, "numpy") else np.asarray(input)
    if w.ndim not in (1, 2) or w.dtype.kind not in "fiu":
        raise ValueError(f"multinomial: expected a 1-D or 2-D tensor of non-negative weights, "
                         f"got dtype {w.dtype} and shape {w.shape}")
    if not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be a positive integer, got "
                         f"{num_samples!r}")
    rows = np.atleast_2d(w).astype(np.float64)
    categories = rows.shape[1]
    if not np.all(np.isfinite(rows)) or np.any(rows < 0):
        raise ValueError("multinomial: the weights must be finite and non-negative (got inf, "
                         "nan or a negative entry)")
    if np.any(rows.sum(axis=1) <= 0):
        raise ValueError("multinomial: every row of weights must have a positive sum")
    if not replacement:
        if num_samples > categories:
            raise ValueError(f"multinomial: cannot draw {num_samples} samples without "
                             f"replacement from {categories} categories")
        if np.any((rows > 0).sum(axis=1) < num_samples):
            raise ValueError(f"multinomial: a row has fewer than {num_samples} categories of "
                             f"non-zero weight, too few to draw without replacement")
    rng = get_rng(generator)
    if replacement:
        cdf = np.cumsum(rows, axis=1)
        cdf /= cdf[:, -1:]
        draws = rng.random((rows.shape[0], int(num_samples)))
        picks = np.stack([np.searchsorted(c, u, side="right") for c, u in zip(cdf, draws)])
        picks = np.minimum(picks, categories - 1)
    else:
        with np.errstate(divide="ignore"):
            keys = rng.standard_exponential(rows.shape) / rows  # zero weight -> inf, last
        picks = np.argsort(keys, axis=1, kind="stable")[:, :int(num_samples)]
    picks = picks.astype(np.int64)
    return from_numpy(picks[0] if w.ndim == 1 else picks)
