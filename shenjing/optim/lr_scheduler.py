"""Learning-rate schedulers with torch.optim.lr_scheduler's names, one import for all.

The base class and the classic schedules live in scheduler_base.py, the newer ones in
schedulers.py; this module gathers them as torch's does.
"""

from .scheduler_base import *  # noqa: F401,F403
from .scheduler_base import EPOCH_DEPRECATION_WARNING, check_optimizer, per_group  # noqa: F401
from .scheduler_base import __all__ as _base_all
from .schedulers import *  # noqa: F401,F403
from .schedulers import __all__ as _more_all

__all__ = [*_base_all, *_more_all]
