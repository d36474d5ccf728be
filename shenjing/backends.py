"""`shenjing.backends`, spelled like `torch.backends`: flags that tutorials set (cudnn
benchmark, deterministic) are accepted and kept; the GPU backends report unavailable."""

from __future__ import annotations

from types import SimpleNamespace

__all__ = ["cudnn", "mps", "cuda", "mkldnn", "opt_einsum"]


def _unavailable() -> bool:
    return False


# settable flags with torch's defaults; shenjing (NumPy on the CPU) does not consult them
cudnn = SimpleNamespace(enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
                        is_available=_unavailable, version=lambda: None)
mps = SimpleNamespace(is_available=_unavailable, is_built=_unavailable)
cuda = SimpleNamespace(is_built=_unavailable,
                       matmul=SimpleNamespace(allow_tf32=False,
                                              allow_fp16_reduced_precision_reduction=True))
mkldnn = SimpleNamespace(enabled=False, is_available=_unavailable)
opt_einsum = SimpleNamespace(enabled=False, is_available=_unavailable)
