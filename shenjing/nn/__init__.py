"""PyTorch-style neural-network layers, losses and utilities built on shenjing's autograd."""

from . import (  # noqa: F401
    functional,
    init,
    parallel,  # noqa: F401  (nn.parallel.DistributedDataParallel)
    utils,
)
from .attention import MultiheadAttention  # noqa: F401
from .conv import *  # noqa: F401,F403
from .conv_transpose import ConvTranspose1d, ConvTranspose2d  # noqa: F401
from .layers import *  # noqa: F401,F403
from .layers_more import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .module import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403
