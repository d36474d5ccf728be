"""Seeded random number generation shared by tensors, layers, dropout and data loaders.

One process-wide default generator makes `sj.manual_seed(0)` reproduce a whole run;
a `Generator` object can be passed where PyTorch accepts `generator=` (random_split,
DataLoader) to keep a stream independent of the global one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Generator", "default_generator", "manual_seed", "initial_seed", "get_rng", "seed",
           "get_rng_state", "set_rng_state"]


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
