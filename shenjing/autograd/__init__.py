"""Reverse-mode automatic differentiation: the Tensor core, Function, the graph, backward.

`engine` holds them in one place; `grad_mode` the recording switch; `gradcheck` the
numerical check every op's tests use.
"""

from . import function
from .engine import FUNCTIONS, Function, Tensor, backward, grad, tensor_method, tensor_methods
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck

__all__ = ["Function", "Tensor", "backward", "grad", "tensor_method", "tensor_methods",
           "FUNCTIONS", "no_grad",
           "enable_grad", "set_grad_enabled", "is_grad_enabled", "gradcheck", "GradcheckError",
           "function"]
