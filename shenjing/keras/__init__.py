"""shenjing.keras: the Keras 3 API over shenjing's autograd, nn, optim and data.

`from shenjing import keras` stands in for `from tensorflow import keras`:
`keras.Sequential`, `keras.Model`, `keras.Input`, `keras.layers`, `keras.losses`,
`keras.metrics`, `keras.optimizers`, `keras.callbacks`, `keras.datasets`, `keras.utils`,
`keras.models.load_model`. Layers are thin wrappers over `shenjing.nn` modules; channels-last
(NHWC) is the layout users see, converted once at the edges of convolutional blocks.
"""

from . import (
    activations,
    backend,
    callbacks,
    datasets,
    functional,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    preprocessing,
    random,
    regularizers,
    saving,
    utils,
)
from .layers import Input, InputLayer, Layer
from .models import Model, Sequential
from .training import NonFiniteLossError

__all__ = ["Sequential", "Model", "Input", "InputLayer", "Layer", "NonFiniteLossError",
           "activations", "backend", "callbacks", "datasets", "functional", "initializers",
           "layers", "losses", "metrics", "models", "ops", "optimizers", "preprocessing",
           "random", "regularizers", "saving", "utils"]

__version__ = "3 (shenjing)"
