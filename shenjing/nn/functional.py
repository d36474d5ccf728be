"""torch.nn.functional: every functional op, gathered from the modules that define them.

functional_base.py holds activations, dropout, linear, embedding, normalization and losses;
functional_conv.py convolution and pooling; functional_more.py the rest of torch's list;
attention.py and conv_transpose.py the functions that live beside their layers. Modules of
shenjing.nn that this one imports use functional_base directly, so no import circles.
"""

from .attention import scaled_dot_product_attention
from .conv_transpose import conv_transpose1d, conv_transpose2d
from .functional_base import *  # noqa: F401,F403
from .functional_base import __all__ as _base_all
from .functional_more import *  # noqa: F401,F403
from .functional_more import __all__ as _more_all

__all__ = [*_base_all, "conv_transpose1d", "conv_transpose2d", "scaled_dot_product_attention",
           *_more_all]
