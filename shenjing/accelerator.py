"""`shenjing.accelerator`, spelled like `torch.accelerator`: there is none (NumPy on the CPU),
so programs that pick `torch.accelerator.current_accelerator()` fall back to the CPU."""

from __future__ import annotations

__all__ = ["is_available", "current_accelerator", "device_count", "synchronize"]


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False) -> None:
    """None: there is no accelerator (torch returns None too when none is present)."""
    return None


def device_count() -> int:
    return 0


def synchronize(device=None) -> None:
    """Nothing to wait for on the CPU."""
