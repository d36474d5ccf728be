"""PyTorch-style neural-network layers, losses and utilities built on shenjing's autograd."""

from . import functional, init, utils  # noqa: F401
from .conv import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .module import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
