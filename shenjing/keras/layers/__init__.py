"""Keras layers (`keras.layers.Dense`, `Conv2D`, `LSTM`, ...), thin wrappers over shenjing.nn."""

from __future__ import annotations

from typing import Any

from ..registry import Registry, custom_object_scope, serialize
from ..registry import deserialize as _deserialize
from .base import Input, InputLayer, KerasTensor, Layer
from .conv import (
    AveragePooling1D,
    AveragePooling2D,
    Conv1D,
    Conv2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from .core import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Lambda,
    Permute,
    Rescaling,
    Reshape,
)
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization
from .rnn import GRU, LSTM, Bidirectional, SimpleRNN

__all__ = ["Layer", "InputLayer", "Input", "KerasTensor", "Dense", "Activation", "Flatten",
           "Reshape", "Permute", "Dropout", "Embedding", "Rescaling", "Lambda", "Conv1D",
           "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "BatchNormalization", "LayerNormalization", "SimpleRNN",
           "LSTM", "GRU", "Bidirectional", "Add", "Subtract", "Multiply", "Average", "Maximum",
           "Minimum", "Concatenate", "serialize", "deserialize", "REGISTRY"]

# Keras 2 aliases still common in tutorials
MaxPool1D, MaxPool2D = MaxPooling1D, MaxPooling2D
AvgPool1D, AvgPool2D = AveragePooling1D, AveragePooling2D
Convolution1D, Convolution2D = Conv1D, Conv2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D

REGISTRY = Registry("layer")
for _name in __all__:
    _obj = globals().get(_name)
    if isinstance(_obj, type) and issubclass(_obj, Layer):
        REGISTRY.add(_obj)


def add(inputs: list, **kwargs: Any) -> Any:
    """Functional form of Add."""
    return Add(**kwargs)(inputs)


def concatenate(inputs: list, axis: int = -1, **kwargs: Any) -> Any:
    """Functional form of Concatenate."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def deserialize(config: Any, custom_objects: dict | None = None) -> Layer:
    """{'class_name': 'Dense', 'config': {...}} -> a Dense layer. Models are layers too:
    Sequential and Functional are registered here by their modules, custom classes through
    custom_objects or register_keras_serializable; a subclassed model saved with its build
    shape is built again."""
    with custom_object_scope(custom_objects):
        layer = _deserialize(REGISTRY, config, custom_objects)
    build_shape = config.get("build_input_shape") if isinstance(config, dict) else None
    if build_shape is not None and not layer.built:
        nested = isinstance(build_shape[0], list) if build_shape else False
        layer.build([tuple(s) for s in build_shape] if nested else tuple(build_shape))
    return layer


serialize = serialize
