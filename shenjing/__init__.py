"""shenjing (神经): a deep-learning framework on NumPy with its own reverse-mode autograd.

`import shenjing as sj` gives a PyTorch-style API (Tensor, nn, optim, data); `shenjing.keras`
is the Keras-style front door over the same core.
"""

import builtins

from . import autograd
from .cpu_threads import get_num_threads, set_num_threads
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import *  # noqa: F401,F403
from .functions import *  # noqa: F401,F403
from .random import (Generator, get_rng_state, initial_seed, manual_seed, seed,
                     set_rng_state)
from .serialization import load, save
from .dtypes import (bool_, complex64, complex128, dtype, finfo, float16, float32, float64,
                     get_default_dtype, iinfo, int8, int16, int32, int64, set_default_dtype,
                     uint8, uint16, uint32, uint64)
from .tensor import Device as device
from .tensor import Tensor, as_tensor, from_numpy, tensor

bool = bool_  # noqa: A001  (torch.bool)
float = float32  # noqa: A001  (torch.float)
double = float64
half = float16
long = int64
int = int32  # noqa: A001  (torch.int)
short = int16
cfloat = complex64
cdouble = complex128

__version__ = "0.1.0"


class cuda:  # noqa: N801  (torch.cuda namespace: there is no GPU backend yet)
    @staticmethod
    def is_available() -> builtins.bool:
        return False

    @staticmethod
    def device_count() -> builtins.int:
        return 0

from . import nn, optim  # noqa: E402  (torch.nn / torch.optim; after the core they build on)
from . import accelerator, backends, linalg, utils  # noqa: E402  (torch.* namespaces)
from .utils import data as _utils_data  # noqa: E402,F401  (makes torch.utils.data an attribute)
from .nn import functional as _nn_functional, init as _nn_init, utils as _nn_utils  # noqa: E402,F401
from .optim import lr_scheduler as _lr_scheduler  # noqa: E402,F401
from .size import Size  # noqa: E402
from .tensor.extra import einsum  # noqa: E402
from .device_args import accepts_device as _accepts_device  # noqa: E402
from . import creation as _creation  # noqa: E402

for _name in (*_creation.__all__, "tensor", "as_tensor"):  # torch's device= keyword
    globals()[_name] = _accepts_device(globals()[_name])


def inference_mode(mode=True):
    """torch.inference_mode: grad recording off (shenjing has no separate inference tensors);
    a context manager and a decorator, with or without parentheses."""
    if callable(mode):
        return no_grad(mode)
    return set_grad_enabled(not mode)

