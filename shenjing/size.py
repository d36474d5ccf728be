"""`shenjing.Size`: the tuple that `.shape` and `.size()` return, as torch.Size."""

from __future__ import annotations

import math


class Size(tuple):
    """A tuple of dimension sizes that prints as `shenjing.Size([2, 3])`; slicing gives a
    Size, `numel()` the element count. Equal to (and usable as) a plain tuple."""

    __slots__ = ()

    def __getitem__(self, key):
        out = tuple.__getitem__(self, key)
        return Size(out) if isinstance(key, slice) else out

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __repr__(self) -> str:
        return f"shenjing.Size({list(self)})"

    __str__ = __repr__

    def numel(self) -> int:
        return math.prod(self)
