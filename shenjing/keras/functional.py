"""The functional API: `keras.Model(inputs, outputs)` over the graph recorded by calling
layers on `keras.Input` tensors.

The graph is run node by node in topological order. Each value carries a flag saying whether
it is held channels-first; single-input layers receive it as it is (a conv block stays
channels-first), multi-input layers get channels-last tensors unless they handle layouts
themselves (the elementwise merges), and outputs are returned channels-last.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor, _wrap
from .layers.base import InputLayer, KerasTensor, Layer, flatten, map_structure, to_cl, unique_name
from .models import Model, _logits_forward, _softmax_output

__all__ = ["Functional"]



def _topological_nodes(inputs: list, outputs: list) -> list:
    """The nodes between `inputs` and `outputs`, each after the nodes it depends on."""
    input_ids = {id(t) for t in inputs}
    order: list = []
    state: dict[int, int] = {}  # 1 visiting, 2 done
    for out in outputs:
        if not isinstance(out, KerasTensor) or out._keras_history is None:
            raise ValueError(f"Model outputs must be tensors returned by Keras layers called on "
                             f"keras.Input tensors, got {out!r}")
        stack = [(out, False)]
        while stack:
            t, expanded = stack.pop()
            layer, idx, _ = t._keras_history
            node = layer._inbound_nodes[idx]
            key = id(node)
            if expanded:
                if state.get(key) != 2:
                    state[key] = 2
                    order.append(node)
                continue
            if state.get(key) == 2:
                continue
            if id(t) in input_ids or isinstance(layer, InputLayer):
                if id(t) not in input_ids:
                    raise ValueError(
                        f"Graph disconnected: cannot obtain value for tensor {t} at layer "
                        f"{layer.name!r}; it is not one of the model's inputs")
                if state.get(key) != 2:
                    state[key] = 2
                    order.append(node)
                continue
            state[key] = 1
            stack.append((t, True))
            for parent in node.input_tensors:
                stack.append((parent, False))
    return order


class Functional(Model):
    """A model defined by a graph of layers: `keras.Model(inputs=..., outputs=...)`."""

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
        self._nodes = _topological_nodes(flat_in, flat_out)
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
        self._graph_inputs, self._graph_outputs = flat_in, flat_out
        self._build_input_shape = [t.shape for t in flat_in] if len(flat_in) > 1 else \
            flat_in[0].shape
        self.built = True

    @property
    def input_names(self) -> list[str]:
        return [t._keras_history[0].name for t in self._graph_inputs]

    def _output_is_softmax(self) -> bool:
        if len(self._graph_outputs) != 1:
            return False
        return _softmax_output(self._graph_outputs[0]._keras_history[0])

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

    def _run_graph(self, inputs: Any, training: bool, logits: bool = False) -> Any:
        values: dict[int, tuple] = {}
        for t, v in zip(self._graph_inputs, self._flat_inputs(inputs)):
            v = v if isinstance(v, Tensor) else _wrap(np.asarray(v))
            if len(t.shape) != v.ndim or any(a is not None and a != b
                                             for a, b in zip(t.shape[1:], v.shape[1:])):
                raise ValueError(f"Input {t._keras_history[0].name!r} of model {self.name!r} "
                                 f"expects shape {t.shape}, got {tuple(v.shape)}")
            values[id(t)] = (v, False)
        out_node = self._graph_outputs[0]._keras_history if logits else None
        for node in self._nodes:
            layer = node.layer
            if isinstance(layer, InputLayer):
                continue
            arg = node.args[0] if node.args else None
            kw_kts = [t for t in flatten(node.kwargs) if isinstance(t, KerasTensor)]

            def value_cl(t):
                if not isinstance(t, KerasTensor):
                    return t
                v, c = values[id(t)]
                return to_cl(v) if c else v

            if isinstance(arg, KerasTensor) and not kw_kts:
                x, cf = values[id(arg)]
                if out_node is not None and out_node[0]._inbound_nodes[out_node[1]] is node:
                    y, ycf = _logits_forward(layer, x, cf), False
                else:
                    y, ycf = layer._forward(x, cf, training, **node.kwargs)
            else:
                xs = map_structure(lambda t: values[id(t)][0] if isinstance(t, KerasTensor)
                                   else t, arg)
                flags = [values[id(t)][1] if isinstance(t, KerasTensor) else False
                         for t in arg] if isinstance(arg, (list, tuple)) else False
                kwargs = map_structure(value_cl, node.kwargs)
                y, ycf = layer._forward(xs, flags, training, **kwargs)
            outs = flatten(y)
            for t, v in zip(node.output_tensors, outs):
                values[id(t)] = (v, ycf and len(outs) == 1)
        def finish(t: KerasTensor) -> Tensor:
            v, c = values[id(t)]
            return to_cl(v) if c else v

        return map_structure(finish, self._nested_outputs)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self._run_graph(inputs, training)

    def _run_model(self, x: Any, training: bool, logits: bool = False) -> Any:
        return self._run_graph(x, training, logits)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return map_structure(lambda t: t.shape, self._nested_outputs)

    def _layer_output_shape(self, layer: Layer) -> Any:
        for node in self._nodes:
            if node.layer is layer:
                return map_structure(lambda t: t.shape, node.outputs)
        return None

    def get_config(self) -> dict:
        from .saving import functional_config

        return functional_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Functional":
        from .saving import functional_from_config

        return functional_from_config(config, custom_objects)
