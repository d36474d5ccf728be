"""torch's `device=`, `pin_memory=` and `layout=` keywords on the tensor factories
(`torch.zeros(3, device=device)`): accepted and checked, since shenjing has only the CPU."""

from __future__ import annotations

import functools
from typing import Callable

from .tensor.args import check_device

__all__ = ["accepts_device"]


def accepts_device(fn: Callable) -> Callable:
    """Wrap a tensor factory so it takes torch's placement keywords: `device` must name the
    CPU (a clear error otherwise), `pin_memory` and a strided `layout` change nothing."""

    @functools.wraps(fn)
    def factory(*args, device=None, pin_memory: bool = False, layout=None, **kwargs):
        if device is not None:
            check_device(device)
        return fn(*args, **kwargs)

    return factory
