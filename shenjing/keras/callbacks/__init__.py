"""Keras callbacks: hooks into fit/evaluate/predict (see base.py for the order of calls)."""

from .base import Callback, CallbackList, History, ProgbarLogger
from .loggers import CSVLogger, LambdaCallback, TensorBoard, TerminateOnNaN
from .monitoring import (
                         EarlyStopping,
                         LearningRateScheduler,
                         ModelCheckpoint,
                         ReduceLROnPlateau,
                         monitor_mode,
)

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger",
           "TensorBoard", "LambdaCallback", "TerminateOnNaN", "monitor_mode"]
