"""`keras.functional`: where Keras keeps `Functional`, the model class of
`keras.Model(inputs, outputs)`. It is defined beside `Model` (model.py), because
`keras.Model(...)` must be able to return one; the graph it runs is planned in graph.py."""

from .model import Functional

__all__ = ["Functional"]
