"""The Tensor's public API: construction, and the methods installed on the core class.

`shenjing.autograd.engine.Tensor` holds storage, gradient and graph state. The modules here
install the methods users call (`@tensor_methods` classes read as slices of one class), and
the op declarations in shenjing/ops install the rest (`api = (...)` on a Function).
"""

from ..autograd.engine import Tensor
from ..dtypes import (
                      bool_,
                      float16,
                      float32,
                      float64,
                      get_default_dtype,
                      int8,
                      int16,
                      int32,
                      int64,
                      set_default_dtype,
                      uint8,
)
from . import arithmetic, basics, extra, inplace, reductions, shape  # noqa: F401  (install methods)
from .args import Device, MinMaxResult
from .convert import as_tensor, from_numpy, tensor, to_array
from .shape import cat, concat, concatenate, matmul, one_hot, pad, stack, where

__all__ = ["Tensor", "tensor", "from_numpy", "as_tensor", "to_array", "Device", "MinMaxResult",
           "matmul", "where", "cat", "concat", "concatenate", "stack", "pad", "one_hot",
           "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_",
           "get_default_dtype", "set_default_dtype"]
