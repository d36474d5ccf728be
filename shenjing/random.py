"""Seeded random number generation shared by tensors, layers, dropout and data loaders.

One process-wide default generator makes `sj.manual_seed(0)` reproduce a whole run;
a `Generator` object can be passed where PyTorch accepts `generator=` (random_split,
DataLoader) to keep a stream independent of the global one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Generator", "default_generator", "manual_seed", "initial_seed", "get_rng", "seed"]


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
