"""shenjing (神经): a deep-learning framework on NumPy with its own reverse-mode autograd.

`import shenjing as sj` gives a PyTorch-style API (Tensor, nn, optim, data); `shenjing.keras`
is the Keras-style front door over the same core.
"""

import builtins

from . import autograd
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import *  # noqa: F401,F403
from .functions import *  # noqa: F401,F403
from .random import Generator, initial_seed, manual_seed, seed
from .serialization import load, save
from .tensor import (Device as device, Tensor, as_tensor, bool_, float16, float32, float64,
                     from_numpy, get_default_dtype, int8, int16, int32, int64,
                     set_default_dtype, tensor, uint8)

bool = bool_  # noqa: A001  (torch.bool)
float = float32  # noqa: A001  (torch.float)
double = float64
half = float16
long = int64
int = int32  # noqa: A001  (torch.int)

__version__ = "0.1.0"


class cuda:  # noqa: N801  (torch.cuda namespace: there is no GPU backend yet)
    @staticmethod
    def is_available() -> builtins.bool:
        return False

    @staticmethod
    def device_count() -> builtins.int:
        return 0

from . import nn, optim  # noqa: E402  (torch.nn / torch.optim; after the core they build on)
