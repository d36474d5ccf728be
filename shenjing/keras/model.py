"""`keras.Model`: subclassed models and functional models (`keras.Model(inputs, outputs)`).

A `Model` is a Layer with the training loop (training.py) mixed in. Subclass it and write
`call`, or call `keras.Model(inputs=..., outputs=...)` on tensors from `keras.Input`: that
returns a `Functional` model, which runs the recorded graph through an `ExecutionPlan`
made once in its constructor (graph.py). Saving goes through saving.py, which knows nothing
of the model classes: models import saving, never the reverse.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor, as_tensor
from . import saving
from .architecture import functional_config, functional_from_config, layer_config
from .graph import ExecutionPlan, topological_nodes
from .layers import REGISTRY as LAYERS
from .layers.base import InputLayer, KerasTensor, Layer, flatten, map_structure, unique_name
from .registry import snake_case
from .summary import print_summary
from .training import Trainer

__all__ = ["Model", "Functional"]


class Model(Trainer, Layer):
    """A trainable stack of layers: subclass it and write `call`, or call
    `keras.Model(inputs, outputs)` on tensors from `keras.Input` (the functional API)."""

    _plan: ExecutionPlan | None = None  # set by models built on a graph of layers

    def __new__(cls, *args: Any, **kwargs: Any) -> "Model":
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
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
        """Whether fit may ask `_run_model` for logits (a planned softmax output)."""
        return self._plan is not None and self._plan.fusable_softmax

    def _run_model(self, x: Any, training: bool, logits: bool = False) -> Any:
        """Forward pass on data (the entry point of fit/evaluate/predict)."""
        return self._forward(x, training)

    def build(self, input_shape: Any) -> None:
        """Build a subclassed model by running it once on zeros of `input_shape`."""
        if type(self).call is Model.call:
            raise NotImplementedError(f"{type(self).__name__} has no call() method")

        def zeros(shape):
            return as_tensor(np.zeros(tuple(1 if s is None else s for s in shape), np.float32))

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

    @property
    def outputs(self) -> list | None:
        return getattr(self, "_graph_outputs", None)

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

    def _layer_output_shape(self, layer: Layer) -> Any:
        """The output shape of `layer` in this model's graph (None if unknown)."""
        for node in getattr(self, "_nodes", ()):
            if node.layer is layer:
                return map_structure(lambda t: t.shape, node.outputs)
        return None

    def summary(self, line_length: int | None = None, positions: Any = None,
                print_fn: Callable | None = None, expand_nested: bool = False,
                show_trainable: bool = False, layer_range: Any = None) -> None:
        """Print the layers, their output shapes and parameter counts, and the totals."""
        if not self.built:
            raise ValueError("This model has not yet been built. Build the model first by "
                             "calling build() or by calling the model on a batch of data.")
        print_summary(self, line_length, print_fn or print, show_trainable)

    # ------------------------------------------------------------------ config / saving
    def get_config(self) -> dict:
        cfg = getattr(self, "_auto_config", None)
        if cfg is None:
            raise NotImplementedError(
                f"{type(self).__name__}.get_config(): a subclassed model must implement "
                f"get_config() (or take only JSON-serializable constructor arguments) to be "
                f"saved with its architecture; use save_weights() to save only the weights")
        return dict(cfg)

    def _config_build_shape(self) -> Any:
        """A subclassed model is rebuilt from the input shape it was built with."""
        return self._build_input_shape

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Model":
        """cls(**config); `keras.Model.from_config` of a functional config gives the
        functional model back, as in Keras."""
        if cls is Model and {"layers", "input_layers", "output_layers"} <= set(config):
            return Functional.from_config(config, custom_objects)
        return cls(**config)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(layer_config(self), **kwargs)

    def save(self, filepath: str, overwrite: bool = True, **kwargs: Any) -> None:
        """Save architecture + weights (+ compile config) as .keras (zip) or .h5 (HDF5)."""
        saving.save_model(self, filepath, overwrite=overwrite, **kwargs)

    def export(self, filepath: str, format: str = "onnx", **kwargs: Any) -> None:  # noqa: A002
        """Export for inference; format="onnx" (shenjing.onnx) is the one supported."""
        if format != "onnx":
            raise ValueError(f"export: format must be 'onnx', got {format!r}")
        from ..onnx.keras import export_keras
        export_keras(self, filepath, **kwargs)

    def save_weights(self, filepath: str, overwrite: bool = True, **kwargs: Any) -> None:
        """Save the weights only: .weights.safetensors (or .h5 with h5py)."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str, skip_mismatch: bool = False, **kwargs: Any) -> None:
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)


class Functional(Model):
    """A model defined by a graph of layers: `keras.Model(inputs=..., outputs=...)`."""

    _config_class_name = "Functional"

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None,
                 trainable: bool = True, **kwargs: Any) -> None:
        Model.__init__(self, name=name or unique_name("functional"), trainable=trainable,
                       **kwargs)
        if isinstance(inputs, dict):
            inputs = list(inputs.values())
        self._nested_inputs = inputs
        self._nested_outputs = outputs
        flat_in, flat_out = flatten(inputs), flatten(outputs)
        for t in flat_in:
            if not isinstance(t, KerasTensor) or not isinstance(t._keras_history[0], InputLayer):
                raise ValueError(f"Model inputs must come from keras.Input(), got {t!r}")
        self._nodes = topological_nodes(flat_in, flat_out)
        self._track_layers(flat_in)
        self._graph_inputs, self._graph_outputs = flat_in, flat_out
        self._build_input_shape = [t.shape for t in flat_in] if len(flat_in) > 1 else \
            flat_in[0].shape
        self._plan = ExecutionPlan(flat_in, outputs, self._nodes)
        self.built = True

    def _track_layers(self, flat_in: list) -> None:
        """Register the graph's layers (inputs first, then in running order) as sub-layers."""
        ordered: list = [t._keras_history[0] for t in flat_in]
        for node in self._nodes:
            if node.layer not in ordered:
                ordered.append(node.layer)
        names = [la.name for la in ordered]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"The name(s) {sorted(dup)} are used by more than one layer; all "
                             f"layer names in a model must be unique")
        for i, layer in enumerate(ordered):
            self.add_module(str(i), layer)

    @property
    def input_names(self) -> list[str]:
        return [t._keras_history[0].name for t in self._graph_inputs]

    def _feeds(self, inputs: Any) -> list[Tensor]:
        """The data for each graph input, as Tensors whose shapes match the inputs'."""
        feeds = []
        for t, v in zip(self._graph_inputs, self._flat_inputs(inputs)):
            if t.dtype == "string":  # raw strings go to TextVectorization / StringLookup
                v = np.asarray(v.numpy() if isinstance(v, Tensor) else v)
                v = v.reshape(-1, 1) if t.shape[1:] == (1,) and v.ndim == 1 else v
            else:
                v = v if isinstance(v, Tensor) else as_tensor(np.asarray(v))
            if len(t.shape) != v.ndim or any(a is not None and a != b
                                             for a, b in zip(t.shape[1:], v.shape[1:])):
                raise ValueError(f"Input {t._keras_history[0].name!r} of model {self.name!r} "
                                 f"expects shape {t.shape}, got {tuple(v.shape)}")
            feeds.append(v)
        return feeds

    def _flat_inputs(self, inputs: Any) -> list:
        n = len(self._graph_inputs)
        if isinstance(inputs, dict):
            try:
                return [inputs[name] for name in self.input_names]
            except KeyError as e:
                raise ValueError(f"{self.name}: missing input {e}; expected keys "
                                 f"{self.input_names}") from None
        if n == 1:
            if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
                return [inputs[0]]
            return [inputs]
        if not isinstance(inputs, (list, tuple)) or len(inputs) != n:
            raise ValueError(f"{self.name} expects {n} inputs ({self.input_names}), got "
                             f"{type(inputs).__name__}")
        return list(inputs)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self._plan.run(self._feeds(inputs), training)

    def _run_model(self, x: Any, training: bool, logits: bool = False) -> Any:
        return self._plan.run(self._feeds(x), training, logits)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return map_structure(lambda t: t.shape, self._nested_outputs)

    def get_config(self) -> dict:
        return functional_config(self)

    def _config_build_shape(self) -> Any:
        return None  # rebuilt from its graph

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Functional":
        return cls(**functional_from_config(config, custom_objects))


LAYERS.add(Functional, "Model")
