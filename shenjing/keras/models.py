"""Keras models: `Model` (subclassing and the functional API), `Sequential`, `summary()`.

`keras.Model(inputs, outputs)` builds a functional model from the graph that calling layers
on `keras.Input` tensors recorded; subclassing `keras.Model` and writing `call` works as in
Keras; `Sequential` is a stack of layers, built as soon as its input shape is known
(`input_shape=` on the first layer, an `Input`, or the first batch). All three share the
training loop (training.py), saving (saving.py) and the channel-layout executor: tensors
stay channels-first between consecutive convolution-family layers (see layers/base.py).
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor, _wrap
from . import activations
from .layers import deserialize as deserialize_layer
from .layers.base import (
    InputLayer,
    KerasTensor,
    Layer,
    Node,
    map_structure,
    to_cl,
    unique_name,
)
from .registry import get_registered_object, snake_case
from .training import Trainer

__all__ = ["Model", "Sequential", "model_from_config", "model_from_json",
           "clone_model", "load_model", "save_model"]


def __getattr__(name: str) -> Any:
    if name == "Functional":  # defined in functional.py, which imports this module
        from .functional import Functional

        return Functional
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- helpers

def _logits_forward(layer: Layer, x: Tensor, cf: bool) -> Tensor:
    """The output layer's pre-activation (softmax fused into the loss)."""
    if cf:
        x = to_cl(x)
    x = layer._prepare(x)
    if not layer.built:
        layer._maybe_build((None,) + tuple(x.shape[1:]))
    return layer._pre_activation(x)


def _softmax_output(layer: Layer) -> bool:
    return (getattr(layer, "activation", None) is activations.softmax
            and hasattr(layer, "_pre_activation") and layer.activity_regularizer is None)


def _format_shape(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    if shape is None:
        return "?"
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _readable_size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


# --------------------------------------------------------------------------- Model

class Model(Trainer, Layer):
    """A trainable stack of layers: subclass it and write `call`, or call
    `keras.Model(inputs, outputs)` on tensors from `keras.Input` (the functional API)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "Model":
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from .functional import Functional

            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        trainable = kwargs.pop("trainable", True)
        name = kwargs.pop("name", None)
        Layer.__init__(self, trainable=trainable,
                       name=name or unique_name(snake_case(type(self).__name__)), **kwargs)
        self._init_trainer()

    # ------------------------------------------------------------------ running
    def _output_is_softmax(self) -> bool:
        return False

    def _run_model(self, x: Any, training: bool, logits: bool = False) -> Any:
        """Forward pass on data (the entry point of fit/evaluate/predict)."""
        y, cf = self._forward(x, False, training)
        return map_structure(to_cl, y) if cf else y

    def build(self, input_shape: Any) -> None:
        """Build a subclassed model by running it once on zeros of `input_shape`."""
        if type(self).call is Model.call:
            raise NotImplementedError(f"{type(self).__name__} has no call() method")

        def zeros(shape):
            return _wrap(np.zeros(tuple(1 if s is None else s for s in shape), np.float32))

        nested = isinstance(input_shape, list) and input_shape and \
            isinstance(input_shape[0], (tuple, list))
        dummy = [zeros(s) for s in input_shape] if nested else zeros(input_shape)
        self.built = True
        self._build_input_shape = input_shape
        with no_grad():
            self._call_logical(dummy, False)

    def call(self, inputs: Any, training: bool = False) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of keras.Model must "
                                  f"implement call(self, inputs, training=False)")

    # ------------------------------------------------------------------ layers
    @property
    def layers(self) -> list[Layer]:
        return list(self._sublayers())

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is out of range for a model with "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[la.name for la in self.layers]}.")

    @property
    def inputs(self) -> list | None:
        return getattr(self, "_graph_inputs", None)

    def _graph_tensor(self, which: str) -> Any:
        tensors = getattr(self, f"_graph_{which}s", None)
        if not tensors:
            raise AttributeError(f"model {self.name!r} has no defined {which} (it is not built "
                                 f"on symbolic inputs)")
        return tensors[0] if len(tensors) == 1 else list(tensors)

    @property
    def input(self) -> Any:
        return self._graph_tensor("input")

    @property
    def output(self) -> Any:
        return self._graph_tensor("output")

    @property
    def outputs(self) -> list | None:
        return getattr(self, "_graph_outputs", None)

    # ------------------------------------------------------------------ summary
    def _summary_rows(self) -> list[tuple]:
        rows = []
        for layer in self.layers:
            shape = self._layer_output_shape(layer)
            params = layer.count_params() if layer.built else 0
            rows.append((f"{layer.name} ({type(layer).__name__})", _format_shape(shape),
                         f"{params:,}" if layer.built else "0 (unbuilt)", layer))
        return rows

    def _layer_output_shape(self, layer: Layer) -> Any:
        return None

    def summary(self, line_length: int | None = None, positions: Any = None,
                print_fn: Callable | None = None, expand_nested: bool = False,
                show_trainable: bool = False, layer_range: Any = None) -> None:
        """Print the layers, their output shapes and parameter counts, and the totals."""
        print_fn = print_fn or print
        if not self.built:
            raise ValueError("This model has not yet been built. Build the model first by "
                             "calling build() or by calling the model on a batch of data.")
        rows = self._summary_rows()
        w1 = max([29] + [len(r[0]) + 2 for r in rows])
        w2 = max([26] + [len(r[1]) + 2 for r in rows])
        w3 = max([10] + [len(r[2]) + 2 for r in rows])
        width = line_length or (w1 + w2 + w3 + (12 if show_trainable else 0))
        lines = [f'Model: "{self.name}"', "_" * width,
                 " " + "Layer (type)".ljust(w1 - 1) + "Output Shape".ljust(w2) +
                 "Param #".ljust(w3) + ("Trainable" if show_trainable else ""), "=" * width]
        for name, shape, params, layer in rows:
            lines.append(" " + name.ljust(w1 - 1) + shape.ljust(w2) + params.ljust(w3) +
                         (("Y" if layer.trainable else "N") if show_trainable else ""))
        total = sum(int(np.prod(w.shape)) for w in self.weights)
        trainable = sum(int(np.prod(w.shape)) for w in self.trainable_weights)
        lines.append("=" * width)
        for label, n in (("Total", total), ("Trainable", trainable),
                         ("Non-trainable", total - trainable)):
            lines.append(f"{label} params: {n:,} ({_readable_size(n * 4)})")
        lines.append("_" * width)
        for line in lines:
            print_fn(line)

    # ------------------------------------------------------------------ config / saving
    def get_config(self) -> dict:
        cfg = getattr(self, "_auto_config", None)
        if cfg is None:
            raise NotImplementedError(
                f"{type(self).__name__}.get_config(): a subclassed model must implement "
                f"get_config() (or take only JSON-serializable constructor arguments) to be "
                f"saved with its architecture; use save_weights() to save only the weights")
        return dict(cfg)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Model":
        return cls(**config)

    def to_json(self, **kwargs: Any) -> str:
        from .saving import model_config

        return json.dumps(model_config(self), **kwargs)

    def save(self, filepath: str, overwrite: bool = True, **kwargs: Any) -> None:
        """Save architecture + weights (+ compile config) as .keras (zip) or .h5 (HDF5)."""
        from .saving import save_model

        save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath: str, overwrite: bool = True, **kwargs: Any) -> None:
        """Save the weights only: .weights.safetensors (or .h5 with h5py)."""
        from .saving import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str, skip_mismatch: bool = False, **kwargs: Any) -> None:
        from .saving import load_weights

        load_weights(self, filepath, skip_mismatch=skip_mismatch)


# --------------------------------------------------------------------------- Sequential

class Sequential(Model):
    """A linear stack of layers: `Sequential([Conv2D(...), MaxPooling2D(), Flatten(), ...])`."""

    def __init__(self, layers: list | None = None, trainable: bool = True,
                 name: str | None = None) -> None:
        Model.__init__(self, name=name or unique_name("sequential"), trainable=trainable)
        self._seq_layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self._graph_nodes: list[Node] = []
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._build_from_known_shape()

    def add(self, layer: Any, rebuild: bool = True) -> None:
        """Append a layer (or an Input) to the stack."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if isinstance(layer, InputLayer):
            if self._input_layer is not None or self._seq_layers:
                raise ValueError("Sequential: an Input/InputLayer can only be the first layer")
            self._input_layer = layer
        else:
            if not isinstance(layer, Layer):
                raise TypeError(f"The added layer must be an instance of class Layer. "
                                f"Received: layer={layer!r} of type {type(layer).__name__}")
            if any(la.name == layer.name for la in self._seq_layers):
                raise ValueError(f"All layers added to a Sequential model should have unique "
                                 f"names. Name {layer.name!r} is already the name of a layer "
                                 f"in this model.")
            self._seq_layers.append(layer)
            self.add_module(str(len(self._seq_layers) - 1), layer)
        self.built = False
        if rebuild:
            self._build_from_known_shape()

    def pop(self) -> Layer:
        if not self._seq_layers:
            raise TypeError("There are no layers in the model.")
        layer = self._seq_layers.pop()
        del self._modules[str(len(self._seq_layers))]
        self.built = False
        self._build_from_known_shape()
        return layer

    @property
    def layers(self) -> list[Layer]:
        return list(self._seq_layers)

    def _known_input_shape(self) -> tuple | None:
        if self._input_layer is not None:
            return self._input_layer.batch_shape
        if not self._seq_layers:
            return None
        first = self._seq_layers[0]
        if first._batch_input_shape is not None:
            return first._batch_input_shape
        inputs = first.inputs if isinstance(first, Model) and first.built else None
        if inputs and len(inputs) == 1:  # a nested model that knows its input shape
            return inputs[0].shape
        return None

    def _build_from_known_shape(self) -> None:
        shape = self._known_input_shape()
        if shape is not None and self._seq_layers:
            self.build(shape)

    def _drop_graph(self) -> None:
        touched = set()
        for node in self._graph_nodes:
            if node in node.layer._inbound_nodes:
                node.layer._inbound_nodes.remove(node)
                touched.add(node.layer)
        for layer in touched:
            for i, node in enumerate(layer._inbound_nodes):
                for j, t in enumerate(node.output_tensors):
                    t._keras_history = (layer, i, j)
        self._graph_nodes = []

    def build(self, input_shape: Any = None) -> None:
        """Create every layer's weights for inputs of `input_shape` (with the batch dim)."""
        if input_shape is None:
            input_shape = self._known_input_shape()
        if input_shape is None:
            raise ValueError("Sequential.build: give the input shape, e.g. "
                             "model.build((None, 28, 28, 1))")
        input_shape = tuple(None if s is None else int(s) for s in input_shape)
        self._drop_graph()
        if self._input_layer is not None and self._input_layer.batch_shape == input_shape:
            inp = self._input_layer.output
        else:
            inp = InputLayer(batch_shape=input_shape, name=f"{self.name}_input").output
        x = inp
        for layer in self._seq_layers:
            before = len(layer._inbound_nodes)
            try:
                x = layer(x)
            except (ValueError, TypeError) as e:
                raise type(e)(f"Sequential model {self.name!r}: layer {layer.name!r} "
                              f"({type(layer).__name__}) cannot take inputs of shape "
                              f"{getattr(x, 'shape', x)}: {e}") from None
            self._graph_nodes.extend(layer._inbound_nodes[before:])
            if isinstance(x, list):
                raise ValueError(f"Sequential: layer {layer.name!r} returns several tensors; "
                                 f"use the functional API for multi-output layers")
        self._graph_inputs, self._graph_outputs = [inp], [x]
        self._build_input_shape = input_shape
        self.built = True

    def _output_is_softmax(self) -> bool:
        return bool(self._seq_layers) and _softmax_output(self._seq_layers[-1])

    def _run_model(self, x: Any, training: bool, logits: bool = False) -> Any:
        if not self._seq_layers:
            raise ValueError("Sequential model has no layers")
        x = self._seq_layers[0]._prepare(x) if isinstance(x, np.ndarray) else x
        if not isinstance(x, Tensor):
            raise TypeError(f"Sequential model {self.name!r} takes one array input, got "
                            f"{type(x).__name__}")
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))
        expected = self._build_input_shape
        if len(expected) != x.ndim or any(a is not None and a != b for a, b in
                                          zip(expected[1:], x.shape[1:])):
            raise ValueError(f"Input 0 of Sequential model {self.name!r} is incompatible: "
                             f"expected shape {expected}, found shape {tuple(x.shape)}")
        cf = False
        last = len(self._seq_layers) - 1
        for i, layer in enumerate(self._seq_layers):
            if logits and i == last:
                return _logits_forward(layer, x, cf)
            x, cf = layer._forward(x, cf, training)
        return to_cl(x) if cf else x

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self._run_model(inputs, training)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        for layer in self._seq_layers:
            layer._maybe_build(shape)
            shape = layer.compute_output_shape(shape)
        return shape

    def _layer_output_shape(self, layer: Layer) -> Any:
        for node in self._graph_nodes:
            if node.layer is layer:
                return map_structure(lambda t: t.shape, node.outputs)
        return None

    def get_config(self) -> dict:
        from .saving import layer_config

        cfg = {"name": self.name, "trainable": self.trainable,
               "layers": [layer_config(la) for la in self._seq_layers]}
        if self._input_layer is not None:
            cfg["layers"].insert(0, layer_config(self._input_layer))
        if self._build_input_shape is not None:
            cfg["build_input_shape"] = list(self._build_input_shape)
        return cfg

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Sequential":
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for lc in config.get("layers", []):
            model.add(deserialize_layer(lc, custom_objects), rebuild=False)
        shape = config.get("build_input_shape")
        if shape is not None:
            model.build(tuple(shape))
        return model


# --------------------------------------------------------------------------- module-level

def model_from_config(config: dict, custom_objects: dict | None = None) -> Model:
    """A model from {'class_name': ..., 'config': ...} (the architecture, no weights)."""
    name = config.get("class_name")
    inner = config.get("config", {})
    if name == "Sequential":
        return Sequential.from_config(inner, custom_objects)
    if name in ("Functional", "Model"):
        from .functional import Functional

        return Functional.from_config(inner, custom_objects)
    cls = get_registered_object(name, custom_objects)
    if cls is None:
        raise ValueError(f"Unknown model class {name!r}: pass it in custom_objects={{'{name}': "
                         f"{name}}} or register it with "
                         f"keras.saving.register_keras_serializable()")
    model = cls.from_config(inner)
    shape = config.get("build_input_shape")
    if shape is not None and not model.built:
        model.build(_shape_from_json(shape))
    return model


def _shape_from_json(shape: Any) -> Any:
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        return [tuple(s) for s in shape]
    return tuple(shape)


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    return model_from_config(json.loads(json_string), custom_objects)


def clone_model(model: Model, custom_objects: dict | None = None) -> Model:
    """A new model with the same architecture and freshly initialized weights."""
    from .saving import model_config

    return model_from_config(json.loads(json.dumps(model_config(model))), custom_objects)


def load_model(filepath: str, custom_objects: dict | None = None, compile: bool = True,
               safe_mode: bool = True) -> Model:
    from .saving import load_model as _load

    return _load(filepath, custom_objects=custom_objects, compile=compile)


def save_model(model: Model, filepath: str, overwrite: bool = True, **kwargs: Any) -> None:
    model.save(filepath, overwrite=overwrite, **kwargs)

