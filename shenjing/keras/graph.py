"""The layer graph of a Keras model, and the plan that runs it.

Calling layers on `keras.Input` tensors records `Node`s (layers/base.py). A model built on
such a graph (a functional `Model`, and `Sequential`, which records one when it is built)
turns it into an `ExecutionPlan` once, when it is built. The plan fixes:

* the order of the nodes, each after the nodes it depends on (`topological_nodes`);
* for every node, the channel layout its inputs are handed over in and the layout its output
  is held in. Keras speaks channels-last (NHWC) and the `nn` convolutions channels-first
  (NCHW): consecutive convolution-family layers pass channels-first tensors to each other,
  so a Conv-Pool-Conv-Pool block is transposed once on entry and once at its end. Each
  layer says what it can do with `Layer._cf_mode` ("prefer", "agnostic" or "no");
* a second list of steps whose last step returns the output layer's logits instead of its
  softmax, which `fit` uses to fuse the softmax into a cross-entropy loss.

Running the plan is then a loop over its steps with no decisions left to take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..tensor import Tensor
from . import activations
from .layers.base import InputLayer, KerasTensor, Layer, Node, flatten, map_structure, to_cf, to_cl

__all__ = ["topological_nodes", "ExecutionPlan", "Step", "softmax_output"]


def topological_nodes(inputs: list, outputs: list) -> list[Node]:
    """The nodes between `inputs` and `outputs`, each after the nodes it depends on."""
    input_ids = {id(t) for t in inputs}
    order: list[Node] = []
    done: set[int] = set()
    for out in outputs:
        if not isinstance(out, KerasTensor) or out._keras_history is None:
            raise ValueError(f"Model outputs must be tensors returned by Keras layers called on "
                             f"keras.Input tensors, got {out!r}")
        stack = [(out, False)]
        while stack:
            tensor, parents_done = stack.pop()
            node = _producer(tensor)
            if id(node) in done:
                continue
            if parents_done or isinstance(node.layer, InputLayer):
                if isinstance(node.layer, InputLayer) and id(tensor) not in input_ids:
                    raise ValueError(
                        f"Graph disconnected: cannot obtain value for tensor {tensor} at layer "
                        f"{node.layer.name!r}; it is not one of the model's inputs")
                done.add(id(node))
                order.append(node)
                continue
            stack.append((tensor, True))
            stack.extend((parent, False) for parent in node.input_tensors)
    return order


def _producer(tensor: KerasTensor) -> Node:
    layer, index, _ = tensor._keras_history
    return layer._inbound_nodes[index]


def softmax_output(layer: Layer) -> bool:
    """Whether `layer` ends in a softmax that a cross-entropy loss can take over."""
    return (getattr(layer, "activation", None) is activations.softmax
            and hasattr(layer, "_pre_activation") and layer.activity_regularizer is None)


@dataclass
class Step:
    """One node of the plan: how to hand over its inputs and how to call its layer."""

    node: Node
    arg: Any                    # the first call argument, KerasTensors inside
    kwargs: dict                # further call arguments (KerasTensors handed channels-last)
    convert: dict = field(default_factory=dict)  # id(KerasTensor) -> to_cf / to_cl
    channels_first: bool = False  # run the layer's channels-first kernel
    out_cf: bool = False          # its output is held channels-first
    logits: bool = False          # return the pre-softmax logits instead of the output


def _plan_step(node: Node, held_cf: dict[int, bool]) -> Step:
    """Choose the layouts of one node from what its layer can do and how its inputs are held."""
    layer = node.layer
    arg = node.args[0] if node.args else None
    outs = node.output_tensors
    one_spatial_output = len(outs) == 1 and outs[0].ndim >= 3
    want_cf, channels_first, out_cf = False, False, False
    if isinstance(arg, KerasTensor) and not node.kwargs:
        mode = layer._cf_mode(arg.ndim)
        if mode == "prefer":
            want_cf = channels_first = True
            out_cf = one_spatial_output
        elif mode == "agnostic":
            want_cf = held_cf[id(arg)]
            out_cf = want_cf and one_spatial_output
    elif layer._merges_in_any_layout and _all_held_cf_same_rank(arg, held_cf):
        want_cf = out_cf = True
    convert = {}
    for t in flatten(arg):
        if isinstance(t, KerasTensor) and held_cf[id(t)] != want_cf:
            convert[id(t)] = to_cf if want_cf else to_cl
    for t in flatten(node.kwargs):
        if isinstance(t, KerasTensor) and held_cf[id(t)]:
            convert[id(t)] = to_cl
    return Step(node, arg, dict(node.kwargs), convert, channels_first, out_cf)


def _all_held_cf_same_rank(arg: Any, held_cf: dict[int, bool]) -> bool:
    tensors = flatten(arg)
    return (all(isinstance(t, KerasTensor) and held_cf[id(t)] for t in tensors)
            and len({t.ndim for t in tensors}) == 1)


def _logits_step(step: Step, held_cf: dict[int, bool]) -> Step:
    """The output step of a softmax layer, returning its logits (channels-last)."""
    convert = {id(step.arg): to_cl} if held_cf[id(step.arg)] else {}
    return Step(step.node, step.arg, {}, convert, logits=True)


class ExecutionPlan:
    """The steps that compute a graph's outputs from its inputs, fixed when a model is built."""

    def __init__(self, inputs: list[KerasTensor], outputs: Any, nodes: list[Node]) -> None:
        self.inputs = list(inputs)
        self.outputs = outputs
        held_cf = {id(t): False for t in self.inputs}
        self.steps: list[Step] = []
        for node in nodes:
            if isinstance(node.layer, InputLayer):
                continue
            step = _plan_step(node, held_cf)
            self.steps.append(step)
            for t in node.output_tensors:
                held_cf[id(t)] = step.out_cf
        self._held_cf = held_cf
        self.logit_steps = self._plan_logits(held_cf)

    def _plan_logits(self, held_cf: dict[int, bool]) -> list[Step] | None:
        """The steps again with the last one returning logits, or None if not possible."""
        flat = flatten(self.outputs)
        if len(flat) != 1 or not self.steps:
            return None
        last = self.steps[-1]
        if last.node is not _producer(flat[0]) or not isinstance(last.arg, KerasTensor) or \
                last.kwargs or not softmax_output(last.node.layer):
            return None
        return self.steps[:-1] + [_logits_step(last, held_cf)]

    @property
    def fusable_softmax(self) -> bool:
        """Whether the single output comes from a softmax whose logits `run` can return."""
        return self.logit_steps is not None

    def run(self, feeds: list[Tensor], training: bool, logits: bool = False) -> Any:
        """The outputs (channels-last) for input tensors `feeds`, in the order of `inputs`."""
        values: dict[int, Tensor] = {id(t): v for t, v in zip(self.inputs, feeds)}
        for step in self.logit_steps if logits else self.steps:
            y = _execute(step, values, training)
            for t, v in zip(step.node.output_tensors, flatten(y)):
                values[id(t)] = v
        if logits:
            return values[id(flatten(self.outputs)[0])]

        def finish(t: KerasTensor) -> Tensor:
            return to_cl(values[id(t)]) if self._held_cf[id(t)] else values[id(t)]

        return map_structure(finish, self.outputs)


def _execute(step: Step, values: dict[int, Tensor], training: bool) -> Any:
    """Hand a step's inputs over in the planned layout and call its layer."""

    def fetch(t: Any) -> Any:
        if not isinstance(t, KerasTensor):
            return t
        convert: Callable | None = step.convert.get(id(t))
        return convert(values[id(t)]) if convert is not None else values[id(t)]

    layer = step.node.layer
    arg = map_structure(fetch, step.arg)
    if step.logits:
        return layer._logits(arg)
    kwargs = map_structure(fetch, step.kwargs)
    return layer._forward(arg, training, channels_first=step.channels_first, **kwargs)
