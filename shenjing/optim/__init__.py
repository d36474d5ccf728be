"""Optimizers and learning-rate schedules with torch.optim's names and update rules."""

from . import lr_scheduler
from .adam_variants import Adamax, NAdam, RAdam
from .adaptive import Adagrad, Adam, AdamW, RMSprop
from .classic import ASGD, Adadelta, Rprop
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax",
           "NAdam", "RAdam", "Rprop", "ASGD", "LBFGS", "lr_scheduler"]
