"""Keras layers (`keras.layers.Dense`, `Conv2D`, `LSTM`, ...), thin wrappers over shenjing.nn."""

from __future__ import annotations

from typing import Any

from ..registry import Registry, custom_object_scope, serialize
from ..registry import deserialize as _deserialize
from .attention import Attention, MultiHeadAttention
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
from .conv_transpose import Conv1DTranspose, Conv2DTranspose
from .core import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Lambda,
    Masking,
    Permute,
    Rescaling,
    Reshape,
)
from .extra import (
    Dot,
    GaussianNoise,
    GroupNormalization,
    SpatialDropout1D,
    SpatialDropout2D,
    TimeDistributed,
)
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization
from .preprocessing import (
    Normalization,
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from .reshaping import (
    Cropping1D,
    Cropping2D,
    RepeatVector,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding1D,
    ZeroPadding2D,
)
from .rnn import GRU, LSTM, Bidirectional, SimpleRNN
from .separable import DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D
from .text import IntegerLookup, StringLookup, TextVectorization

__all__ = ["Layer", "InputLayer", "Input", "KerasTensor", "Dense", "Activation", "Flatten",
           "Reshape", "Permute", "Dropout", "Embedding", "Rescaling", "Lambda", "Conv1D",
           "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "BatchNormalization", "LayerNormalization", "SimpleRNN",
           "LSTM", "GRU", "Bidirectional", "Add", "Subtract", "Multiply", "Average", "Maximum",
           "Minimum", "Concatenate", "serialize", "deserialize", "REGISTRY",
           "Conv1DTranspose", "Conv2DTranspose", "UpSampling1D", "UpSampling2D",
           "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "RepeatVector",
           "Attention", "MultiHeadAttention", "GroupNormalization", "GaussianNoise",
           "SpatialDropout1D", "SpatialDropout2D", "TimeDistributed", "Dot", "Normalization",
           "RandomFlip", "RandomContrast", "Masking", "RandomRotation",
           "RandomZoom", "RandomTranslation", "StringLookup",
           "IntegerLookup", "TextVectorization", "add", "concatenate", "average", "maximum",
           "minimum", "multiply", "subtract", "dot", "DepthwiseConv1D", "DepthwiseConv2D",
           "SeparableConv1D", "SeparableConv2D"]

# Keras 2 aliases still common in tutorials
MaxPool1D, MaxPool2D = MaxPooling1D, MaxPooling2D
AvgPool1D, AvgPool2D = AveragePooling1D, AveragePooling2D
Convolution1D, Convolution2D = Conv1D, Conv2D
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D

REGISTRY = Registry("layer")
for _name in __all__:
    _obj = globals().get(_name)
    if isinstance(_obj, type) and issubclass(_obj, Layer):
        REGISTRY.add(_obj)
TimeDistributed.layer_registry = REGISTRY


def add(inputs: list, **kwargs: Any) -> Any:
    """Functional form of Add."""
    return Add(**kwargs)(inputs)


def concatenate(inputs: list, axis: int = -1, **kwargs: Any) -> Any:
    """Functional form of Concatenate."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def average(inputs: list, **kwargs: Any) -> Any:
    """Functional form of Average."""
    return Average(**kwargs)(inputs)


def maximum(inputs: list, **kwargs: Any) -> Any:
    """Functional form of Maximum."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: list, **kwargs: Any) -> Any:
    """Functional form of Minimum."""
    return Minimum(**kwargs)(inputs)


def multiply(inputs: list, **kwargs: Any) -> Any:
    """Functional form of Multiply."""
    return Multiply(**kwargs)(inputs)


def subtract(inputs: list, **kwargs: Any) -> Any:
    """Functional form of Subtract."""
    return Subtract(**kwargs)(inputs)


def dot(inputs: list, axes: Any = -1, normalize: bool = False, **kwargs: Any) -> Any:
    """Functional form of Dot."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


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
