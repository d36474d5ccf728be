"""The zoo's Keras side: the seeds' Keras models (seed 000 §3.4's CNN, seed 003 §5.2's CNN,
the MLP) as `keras.Sequential`, and weight copies between them and the PyTorch-style zoo.

The Keras models take channels-last images (N, H, W, C) and, as in the seeds, end in a softmax
(`output_activation=None` gives logits). Their layers carry the names a fresh TF-Keras session
gives the seeds' code (conv2d, max_pooling2d, conv2d_1, ..., dense), so weight paths are
stable: "conv2d/kernel", "dense/bias".

`copy_torch_weights(torch_style, keras_model)` and `copy_keras_weights(keras_model,
torch_style)` convert between the layouts, pairing the weight-carrying layers in order
(Conv2d with Conv2D, Linear with Dense):

* convolution kernels: PyTorch (out, in, kh, kw), Keras (kh, kw, in, out);
* dense kernels: PyTorch `Linear.weight` (out, in), Keras `Dense.kernel` (in, out);
* the first dense layer after flattening an image: PyTorch flattens (C, H, W), Keras
  (H, W, C), so that kernel's input rows are permuted as well.

After a copy both models give the same outputs (up to float rounding) on the same images,
NCHW for the one and NHWC for the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import shenjing as sj

from .. import nn

__all__ = ["seed000_cnn_keras", "seed003_cnn_keras", "mlp_keras", "copy_torch_weights",
           "copy_keras_weights", "KERAS_MODELS", "KERAS_ACTIVATIONS"]

# MLP activations whose Keras and PyTorch definitions agree (Keras's leaky_relu has slope
# 0.2, PyTorch's LeakyReLU 0.01, so it is not offered)
KERAS_ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu")


def _keras():
    from .. import keras

    return keras


class _Names:
    """Keras's default layer names in a fresh session: conv2d, conv2d_1, ..."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, base: str) -> str:
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


def _check(builder: str, image_size: int, smallest: int, in_channels: int,
           num_classes: int) -> None:
    for what, value, low in (("image_size", image_size, smallest), ("in_channels", in_channels, 1),
                             ("num_classes", num_classes, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{builder}: {what} must be an int >= {low}, got {value!r}")


def seed000_cnn_keras(in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                      output_activation: str | None = "softmax"):
    """Seed 000 §3.4 in Keras: Conv2D 32·3×3 relu → MaxPooling2D → Conv2D 64·3×3 relu →
    MaxPooling2D → Flatten → Dense(num_classes, softmax); the Keras twin of `seed000_cnn`."""
    _check("seed000_cnn_keras", image_size, 10, in_channels, num_classes)
    keras, name = _keras(), _Names()
    layers = keras.layers
    return keras.Sequential([
        keras.Input((image_size, image_size, in_channels)),
        layers.Conv2D(32, (3, 3), activation="relu", name=name("conv2d")),
        layers.MaxPooling2D((2, 2), name=name("max_pooling2d")),
        layers.Conv2D(64, (3, 3), activation="relu", name=name("conv2d")),
        layers.MaxPooling2D((2, 2), name=name("max_pooling2d")),
        layers.Flatten(name=name("flatten")),
        layers.Dense(num_classes, activation=output_activation, name=name("dense")),
    ], name="seed000_cnn")


def seed003_cnn_keras(in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                      output_activation: str | None = "softmax"):
    """Seed 003 §5.2 in Keras: Conv2D 32·3×3 relu → MaxPooling2D → Flatten → Dense 128 relu →
    Dense(num_classes, softmax); the Keras twin of `seed003_cnn`."""
    _check("seed003_cnn_keras", image_size, 4, in_channels, num_classes)
    keras, name = _keras(), _Names()
    layers = keras.layers
    return keras.Sequential([
        keras.Input((image_size, image_size, in_channels)),
        layers.Conv2D(32, (3, 3), activation="relu", name=name("conv2d")),
        layers.MaxPooling2D((2, 2), name=name("max_pooling2d")),
        layers.Flatten(name=name("flatten")),
        layers.Dense(128, activation="relu", name=name("dense")),
        layers.Dense(num_classes, activation=output_activation, name=name("dense")),
    ], name="seed003_cnn")


def mlp_keras(sizes=(784, 256, 128, 10), activation: str = "relu", dropout: float = 0.0,
              input_shape: tuple | None = None, output_activation: str | None = "softmax"):
    """The Keras twin of `MLP(sizes, activation, dropout)`: Flatten, Dense layers with the
    activation (and Dropout) between them, softmax (or `output_activation`) at the end.

    `input_shape` is one example's shape, e.g. (28, 28, 1) for MNIST images (default
    (sizes[0],)); its size must be sizes[0].
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp_keras: sizes needs at least two positive widths, got {sizes}")
    if activation not in KERAS_ACTIVATIONS:
        raise ValueError(f"mlp_keras: activation must be one of {KERAS_ACTIVATIONS} (the ones "
                         f"Keras and PyTorch define alike), got {activation!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"mlp_keras: dropout must be in [0, 1), got {dropout}")
    input_shape = (sizes[0],) if input_shape is None else tuple(int(s) for s in input_shape)
    if int(np.prod(input_shape)) != sizes[0]:
        raise ValueError(f"mlp_keras: input_shape {input_shape} holds {int(np.prod(input_shape))}"
                         f" values, but sizes[0] is {sizes[0]}")
    keras, name = _keras(), _Names()
    layers: list[Any] = [keras.Input(input_shape), keras.layers.Flatten(name=name("flatten"))]
    for i, width in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        layers.append(keras.layers.Dense(width, activation=output_activation if last else
                                         activation, name=name("dense")))
        if dropout and not last:
            layers.append(keras.layers.Dropout(dropout, name=name("dropout")))
    return keras.Sequential(layers, name="mlp")


KERAS_MODELS = {"seed000-cnn": seed000_cnn_keras, "seed003-cnn": seed003_cnn_keras,
                "mlp": mlp_keras}


# ----------------------------------------------------------------------------- weight copies
def _torch_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The torch-style model's weight-carrying modules in order; only Conv2d and Linear."""
    found = []
    for path, sub in module.named_modules():
        if not any(True for _ in sub.parameters(recurse=False)):
            continue
        if not isinstance(sub, (nn.Conv2d, nn.Linear)):
            raise ValueError(f"weight copy: {type(module).__name__} has a {type(sub).__name__} "
                             f"at {path!r}; only Conv2d and Linear layers are converted")
        found.append((path, sub))
    return found


def _keras_layers(model) -> list[tuple[Any, tuple | None]]:
    """The Keras model's weight-carrying layers in order, each with the (H, W, C) shape that a
    Flatten before it (and after the previous dense layer) flattened, else None."""
    keras = _keras()
    shape, flattened, found = tuple(model.input_shape), None, []
    for layer in model.layers:
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ValueError(f"weight copy: layer {layer.name!r} is channels_first; only "
                             "channels_last Keras models are converted")
        if isinstance(layer, keras.layers.Flatten) and len(shape) == 4:
            flattened = tuple(shape[1:])
        if layer.weights:
            if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
                raise ValueError(f"weight copy: Keras layer {layer.name!r} is a "
                                 f"{type(layer).__name__}; only Conv2D and Dense are converted")
            found.append((layer, flattened if isinstance(layer, keras.layers.Dense) else None))
            if isinstance(layer, keras.layers.Dense):
                flattened = None
        shape = tuple(layer.compute_output_shape(shape))
    return found


def _pairs(torch_style: nn.Module, keras_model) -> list[tuple[str, nn.Module, Any, tuple | None]]:
    keras = _keras()
    ours, theirs = _torch_layers(torch_style), _keras_layers(keras_model)
    if len(ours) != len(theirs):
        raise ValueError(f"weight copy: {type(torch_style).__name__} has {len(ours)} layers "
                         f"with weights, the Keras model {keras_model.name!r} {len(theirs)}")
    pairs = []
    for (path, module), (layer, flattened) in zip(ours, theirs):
        kind = keras.layers.Conv2D if isinstance(module, nn.Conv2d) else keras.layers.Dense
        if not isinstance(layer, kind) or (module.bias is None) == layer.use_bias:
            raise ValueError(f"weight copy: {path!r} ({type(module).__name__}, bias "
                             f"{module.bias is not None}) does not match Keras layer "
                             f"{layer.name!r} ({type(layer).__name__}, bias {layer.use_bias})")
        pairs.append((path, module, layer, flattened))
    return pairs


def _to_keras_kernel(weight: np.ndarray, flattened: tuple | None) -> np.ndarray:
    if weight.ndim == 4:  # (out, in, kh, kw) -> (kh, kw, in, out)
        return weight.transpose(2, 3, 1, 0)
    if flattened is not None:  # input rows in (C, H, W) order -> (H, W, C) order
        h, w, c = flattened
        return weight.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
    return weight.T


def _to_torch_weight(kernel: np.ndarray, flattened: tuple | None) -> np.ndarray:
    if kernel.ndim == 4:  # (kh, kw, in, out) -> (out, in, kh, kw)
        return kernel.transpose(3, 2, 0, 1)
    if flattened is not None:  # input rows in (H, W, C) order -> (C, H, W) order
        h, w, c = flattened
        return kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)
    return kernel.T


def _check_shape(what: str, got: tuple, expected: tuple) -> None:
    if tuple(got) != tuple(expected):
        raise ValueError(f"weight copy: {what} would get shape {tuple(got)}, but it has "
                         f"{tuple(expected)}; are the models built for the same sizes?")


def copy_torch_weights(torch_style: nn.Module, keras_model) -> dict[str, str]:
    """Copy a PyTorch-style zoo model's weights into its Keras twin (layouts converted).

    Returns {Keras weight path: PyTorch state_dict key}, e.g. {"conv2d/kernel": "0.weight"}.
    Raises ValueError when the layers do not pair up (kinds, biases, shapes).
    """
    names = {}
    for path, module, layer, flattened in _pairs(torch_style, keras_model):
        kernel = _to_keras_kernel(module.weight.numpy(), flattened)
        _check_shape(f"{layer.name}/kernel", kernel.shape, layer.kernel.shape)
        values = [kernel] + ([module.bias.numpy()] if module.bias is not None else [])
        layer.set_weights([np.ascontiguousarray(v) for v in values])
        names[f"{layer.name}/kernel"] = f"{path}.weight"
        if module.bias is not None:
            names[f"{layer.name}/bias"] = f"{path}.bias"
    return names


def copy_keras_weights(keras_model, torch_style: nn.Module) -> dict[str, str]:
    """Copy a Keras twin's weights into the PyTorch-style zoo model (the reverse of
    `copy_torch_weights`; e.g. to use a model trained with `fit` from the command line).

    Returns {PyTorch state_dict key: Keras weight path}.
    """
    names = {}
    for path, module, layer, flattened in _pairs(torch_style, keras_model):
        values = layer.get_weights()
        weight = _to_torch_weight(values[0], flattened)
        _check_shape(f"{path}.weight", weight.shape, module.weight.shape)
        with sj.no_grad():
            module.weight.copy_(sj.from_numpy(np.ascontiguousarray(weight)))
            if module.bias is not None:
                module.bias.copy_(sj.from_numpy(np.ascontiguousarray(values[1])))
        names[f"{path}.weight"] = f"{layer.name}/kernel"
        if module.bias is not None:
            names[f"{path}.bias"] = f"{layer.name}/bias"
    return names
