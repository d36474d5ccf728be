"""`keras.Sequential`: a linear stack of layers.

It is built as soon as its input shape is known (`input_shape=` on the first layer, an
`Input`, or the first batch): building calls the layers on a symbolic input, which records
their graph, and plans its execution once (graph.py), as a functional model does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .architecture import layer_config
from .graph import ExecutionPlan, softmax_output
from .layers import REGISTRY as LAYERS
from .layers import deserialize as deserialize_layer
from .layers.base import InputLayer, KerasTensor, Layer, Node, unique_name
from .model import Model

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers: `Sequential([Conv2D(...), MaxPooling2D(), Flatten(), ...])`."""

    def __init__(self, layers: list | None = None, trainable: bool = True,
                 name: str | None = None) -> None:
        Model.__init__(self, name=name or unique_name("sequential"), trainable=trainable)
        self._seq_layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self._nodes: list[Node] = []
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

    # ------------------------------------------------------------------ building
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
        """Forget the nodes a previous build recorded on the layers."""
        touched = set()
        for node in self._nodes:
            if node in node.layer._inbound_nodes:
                node.layer._inbound_nodes.remove(node)
                touched.add(node.layer)
        for layer in touched:
            for i, node in enumerate(layer._inbound_nodes):
                for j, t in enumerate(node.output_tensors):
                    t._keras_history = (layer, i, j)
        self._nodes = []
        self._plan = None

    def build(self, input_shape: Any = None) -> None:
        """Create every layer's weights for inputs of `input_shape` (with the batch dim) and
        plan how the stack runs."""
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
            self._nodes.extend(layer._inbound_nodes[before:])
            if isinstance(x, list):
                raise ValueError(f"Sequential: layer {layer.name!r} returns several tensors; "
                                 f"use the functional API for multi-output layers")
        self._graph_inputs, self._graph_outputs = [inp], [x]
        self._plan = ExecutionPlan([inp], x, self._nodes)
        self._build_input_shape = input_shape
        self.built = True

    # ------------------------------------------------------------------ running
    def _output_is_softmax(self) -> bool:
        if self._plan is None:  # built by the first batch: decided by the last layer
            return bool(self._seq_layers) and softmax_output(self._seq_layers[-1])
        return self._plan.fusable_softmax

    def _run_model(self, x: Any, training: bool, logits: bool = False) -> Any:
        if not self._seq_layers:
            raise ValueError("Sequential model has no layers")
        strings = isinstance(x, np.ndarray) and x.dtype.kind in "USO"  # for TextVectorization
        if strings and self._build_input_shape is not None and x.ndim == 1 and \
                tuple(self._build_input_shape[1:]) == (1,):
            x = x.reshape(-1, 1)
        x = self._seq_layers[0]._prepare(x) if isinstance(x, np.ndarray) and not strings else x
        if not isinstance(x, Tensor) and not strings:
            raise TypeError(f"Sequential model {self.name!r} takes one array input, got "
                            f"{type(x).__name__}")
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))
        expected = self._build_input_shape
        if len(expected) != x.ndim or any(a is not None and a != b for a, b in
                                          zip(expected[1:], x.shape[1:])):
            raise ValueError(f"Input 0 of Sequential model {self.name!r} is incompatible: "
                             f"expected shape {expected}, found shape {tuple(x.shape)}")
        return self._plan.run([x], training, logits)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self._run_model(inputs, training)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        for layer in self._seq_layers:
            layer._maybe_build(shape)
            shape = layer.compute_output_shape(shape)
        return shape

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable,
               "layers": [layer_config(la) for la in self._seq_layers]}
        if self._input_layer is not None:
            cfg["layers"].insert(0, layer_config(self._input_layer))
        if self._build_input_shape is not None:
            cfg["build_input_shape"] = list(self._build_input_shape)
        return cfg

    def _config_build_shape(self) -> Any:
        return None  # get_config holds it

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Sequential":
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for lc in config.get("layers", []):
            model.add(deserialize_layer(lc, custom_objects), rebuild=False)
        shape = config.get("build_input_shape")
        if shape is not None:
            model.build(tuple(shape))
        return model


LAYERS.add(Sequential)
