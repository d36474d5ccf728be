"""`keras.ops`: the Keras 3 ops namespace over shenjing's core.

NumPy-style functions (`keras.ops.add`, `matmul`, `mean`, `where`, ...) and neural-network
functions (`keras.ops.relu`, `softmax`, `conv`, `max_pool`, the cross-entropies, ...; also
under `keras.ops.nn`). Every function takes Tensors, NumPy arrays or Python numbers and
returns a shenjing Tensor, so gradients flow through the core's autograd.
"""

from . import core, more, nn, numpy
from .core import cast, convert_to_numpy, convert_to_tensor, dtype_of, is_tensor, shape
from .more import *  # noqa: F401,F403
from .more import __all__ as _more_all
from .nn import *  # noqa: F401,F403
from .nn import __all__ as _nn_all
from .numpy import *  # noqa: F401,F403
from .numpy import __all__ as _numpy_all

__all__ = ["core", "more", "nn", "numpy", "cast", "convert_to_numpy", "convert_to_tensor", "dtype",
           "is_tensor", "shape", "stop_gradient", "size", "ndim", *_nn_all, *_numpy_all, *_more_all]

dtype = dtype_of


def stop_gradient(x: object) -> object:
    """`x` cut from the graph (its values, no gradient flows back)."""
    return convert_to_tensor(x).detach()


def size(x: object) -> int:
    """Number of elements of `x`."""
    n = 1
    for d in shape(x):
        n *= d
    return n


def ndim(x: object) -> int:
    return len(shape(x))
