"""The Keras Layer: lazy building, Keras-layout weights, symbolic calls and channel layouts.

A Keras layer is an `nn.Module` that holds the matching `nn` module (a Dense holds an
`nn.Linear`) and adds what Keras users expect: building from the first input's shape, weights
seen in Keras's layout (`layer.get_weights()` gives a Dense kernel as (in, out) though the
Linear stores (out, in)), `trainable`, regularizers, `get_config`, and calls on symbolic
`KerasTensor`s that record the graph of the functional API.

Channel layouts. Keras speaks channels-last (NHWC); `nn` convolutions speak NCHW. A layer
that works natively channels-first (Conv2D, the poolings, BatchNormalization) says so with
`_cf_mode` and implements `_call_cf`; a model plans once, when it is built, where tensors
stay channels-first between such layers (see graph.py). Called on its own, every layer
takes and returns channels-last tensors.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections import defaultdict
from typing import Any, Callable, Iterator

import numpy as np

from ...autograd import no_grad
from ...nn.module import Module, Parameter
from ...tensor import Tensor, as_tensor
from .. import initializers, regularizers
from ..registry import snake_case
from .masks import get_keras_mask, mask_array, set_keras_mask
from .structure import cl_shape, dtype_name, flatten, map_structure, refuse_strings, to_cf, to_cl
from .weights import Weight, transpose_by

__all__ = ["set_keras_mask", "get_keras_mask", "Layer", "InputLayer", "Input", "KerasTensor",
           "Node", "Weight", "unique_name", "reset_names", "to_cf", "to_cl", "map_structure",
           "flatten"]

_NAME_COUNTS: dict[str, int] = defaultdict(int)


def unique_name(base: str) -> str:
    """'dense', 'dense_1', 'dense_2', ... (per session, as Keras names layers)."""
    n = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if n == 0 else f"{base}_{n}"


def reset_names() -> None:
    """Forget the name counters (keras.backend.clear_session)."""
    _NAME_COUNTS.clear()


# --------------------------------------------------------------------------- symbolic tensors

class KerasTensor:
    """A symbolic tensor of the functional API: a shape (None for the batch) and its origin."""

    def __init__(self, shape: tuple, dtype: str = "float32", name: str | None = None) -> None:
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = dtype_name(dtype)
        self.name = name
        self._keras_history: tuple | None = None  # (layer, node_index, tensor_index)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __hash__(self) -> int:
        return id(self)

    def _unsupported(self, *args, **kwargs):
        raise TypeError(
            "operators on KerasTensors (symbolic inputs of the functional API) are not "
            "supported; use layers such as keras.layers.Add()([a, b]) or a Lambda-free custom "
            "Layer"
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _unsupported
    __matmul__ = __getitem__ = __neg__ = _unsupported


class Node:
    """One call of a layer on KerasTensors: its arguments and the tensors it produced."""

    def __init__(self, layer: "Layer", args: tuple, kwargs: dict, outputs: Any) -> None:
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs
        self.input_tensors = [t for t in flatten((args, kwargs)) if isinstance(t, KerasTensor)]
        self.output_tensors = flatten(outputs)
        index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for i, t in enumerate(self.output_tensors):
            t._keras_history = (layer, index, i)

    @property
    def parent_nodes(self) -> list:
        out = []
        for t in self.input_tensors:
            layer, idx, _ = t._keras_history
            out.append(layer._inbound_nodes[idx])
        return out


# --------------------------------------------------------------------------- Layer

def _auto_config(init: Callable) -> Callable:
    """Record the constructor arguments of a user subclass, so get_config() can return them
    (Keras 3 does the same) when they are JSON-serializable."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if "_auto_config" not in self.__dict__:
            try:
                bound = inspect.signature(init).bind(self, *args, **kwargs)
                cfg = {k: v for k, v in list(bound.arguments.items())[1:]
                       if k not in ("args", "kwargs")}
                cfg.update(bound.arguments.get("kwargs", {}))
                json.dumps(cfg)
            except (TypeError, ValueError):
                cfg = None
            object.__setattr__(self, "_auto_config", cfg)
        init(self, *args, **kwargs)

    return wrapper


_KNOWN_BASE_KWARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_size", "input_length")
_CALL_ARGS: dict[type, set] = {}
_REQUIRED_POSITIONAL: dict[type, int] = {}  # call's positional parameters without defaults


class Layer(Module):
    """Base class of Keras layers (and models). Override `build` and `call`.

    Args:
        trainable: whether the layer's weights are updated by fit.
        name: unique name (default: the snake-cased class name, numbered).
        dtype: only float32 is supported.
        input_shape: shape of one sample (without the batch), to build at construction.
    """

    _cf_default = "no"  # "prefer": runs channels-first natively; "agnostic": either layout
    _merges_in_any_layout = False  # several inputs held alike may stay as they are held
    _int_input = False  # True for layers that take integer ids (Embedding)
    _config_class_name: str | None = None  # the saved class name, if not the class's own

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__module__.startswith("shenjing.keras") and "__init__" in cls.__dict__:
            cls.__init__ = _auto_config(cls.__dict__["__init__"])

    def __init__(self, trainable: bool = True, name: str | None = None, dtype: Any = None,
                 activity_regularizer: Any = None, **kwargs: Any) -> None:
        Module.__init__(self)
        unknown = [k for k in kwargs if k not in _KNOWN_BASE_KWARGS]
        if unknown:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                            f"{ {k: kwargs[k] for k in unknown} }")
        if dtype is not None and not isinstance(dtype, dict) and str(np.dtype(dtype)) != "float32":
            raise NotImplementedError(f"{type(self).__name__}: dtype={dtype!r} is not supported; "
                                      f"Keras layers here compute in float32")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.built = False
        self._weight_list: list[Weight] = []
        self._inbound_nodes: list[Node] = []
        self._build_input_shape = None
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._activity_losses: list = []
        batch_shape = kwargs.get("batch_input_shape")
        if batch_shape is None and kwargs.get("input_shape") is not None:
            batch_shape = (kwargs.get("batch_size"),) + tuple(kwargs["input_shape"])
        elif batch_shape is None and kwargs.get("input_dim") is not None:
            batch_shape = (kwargs.get("batch_size"), int(kwargs["input_dim"]))
        self._batch_input_shape = None if batch_shape is None else tuple(batch_shape)

    # ------------------------------------------------------------------ attributes
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter) and params is not None:
            for key, p in list(params.items()):  # add_weight's Parameter assigned to self.x
                if p is value and key != name:
                    del params[key]
                    for w in self._weight_list:
                        if w._owner is self and w._attr == key:
                            w._attr = name
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, Module)
                                                              for v in value):
            for i, v in enumerate(value):  # track layers kept in lists, as Keras does
                self.add_module(f"{name}_{i}", v)
        Module.__setattr__(self, name, value)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self._sublayers():
            layer.trainable = value
        for w in self._weight_list:
            for p in w.params():
                if isinstance(p, Parameter):
                    p.requires_grad = bool(value) and w._created_trainable

    @property
    def dtype(self) -> str:
        """The weights' and computations' dtype (always float32 here)."""
        return "float32"

    compute_dtype = dtype

    def _sublayers(self) -> Iterator["Layer"]:
        """Direct Keras sub-layers (nested models count as one layer)."""
        for m in self._modules.values():
            if isinstance(m, Layer):
                yield m

    # ------------------------------------------------------------------ weights
    def add_weight(self, shape: tuple | None = None, initializer: Any = None,
                   dtype: Any = None, trainable: bool = True, regularizer: Any = None,
                   constraint: Any = None, name: str | None = None, **kwargs: Any) -> Parameter:
        """Create a weight (Keras's layout is the storage layout for custom layers)."""
        if constraint is not None:
            raise NotImplementedError("add_weight: weight constraints are not supported")
        shape = tuple(int(s) for s in (shape or ()))
        init = initializers.get(initializer if initializer is not None else
                                ("glorot_uniform" if len(shape) >= 2 else "zeros"))
        name = name or f"weight_{len(self._weight_list)}"
        p = Parameter(np.asarray(init(shape), dtype=np.float32), requires_grad=bool(trainable))
        attr = name if name not in self.__dict__ else f"_w_{name}"
        Module.__setattr__(self, attr, p)
        self._weight_list.append(Weight(self, name, self, attr, trainable=trainable,
                                        regularizer=regularizers.get(regularizer)))
        return p

    def _track(self, name: str, owner: Module, attr: str, axes: tuple | None = None,
               trainable: bool = True, regularizer: Any = None) -> None:
        """Expose a parameter or buffer of a wrapped nn module as a Keras weight."""
        to_k, from_k = transpose_by(axes) if axes is not None else (None, None)
        self._weight_list.append(Weight(self, name, owner, attr, to_k, from_k, trainable,
                                        regularizers.get(regularizer), axes))
        p = getattr(owner, attr)
        if isinstance(p, Parameter):
            p.requires_grad = trainable and self._trainable

    def _init_weight(self, owner: Module, attr: str, initializer: Any, keras_shape: tuple,
                     axes: tuple | None = None) -> None:
        """Fill a wrapped module's weight from a Keras initializer drawn in Keras's layout."""
        arr = np.asarray(initializers.get(initializer)(keras_shape), dtype=np.float32)
        if axes is not None:
            arr = arr.transpose(axes)
        with no_grad():
            getattr(owner, attr).copy_(arr)

    @property
    def weights(self) -> list[Weight]:
        """All weights: this layer's (trainable ones first), then its sub-layers'."""
        own = [w for w in self._weight_list if w._created_trainable] + \
            [w for w in self._weight_list if not w._created_trainable]
        seen = {id(w.params()[0]) for w in own}
        for layer in self._sublayers():
            for w in layer.weights:
                if id(w.params()[0]) not in seen:
                    seen.add(id(w.params()[0]))
                    own.append(w)
        return own

    @property
    def trainable_weights(self) -> list[Weight]:
        return [w for w in self.weights if w.trainable]

    @property
    def non_trainable_weights(self) -> list[Weight]:
        return [w for w in self.weights if not w.trainable]

    variables = weights
    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights in Keras's layout and order."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights: list) -> None:
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"Layer {self.name!r} expects {len(own)} weights, but the given "
                             f"list has {len(weights)}"
                             + ("" if self.built else " (the layer is not built yet)"))
        for w, v in zip(own, weights):
            w.assign(v)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"You tried to call count_params on layer {self.name!r}, but the "
                             f"layer isn't built. Build it with layer.build(input_shape) or by "
                             f"calling it on data.")
        return int(sum(np.prod(w.shape) for w in self.weights))

    def add_loss(self, loss: Any) -> None:
        """Add a loss term (a scalar Tensor computed in `call`) that fit minimizes along with
        the compiled loss; the terms of the latest call are kept."""
        if not isinstance(loss, Tensor):
            loss = as_tensor(np.asarray(loss, dtype=np.float32))
        if loss.numel() != 1:
            loss = loss.mean()
        self.__dict__.setdefault("_call_losses", []).append(loss)

    @property
    def losses(self) -> list[Tensor]:
        """Regularization penalties and add_loss terms of this layer and its sub-layers."""
        out = list(self._activity_losses) + list(self.__dict__.get("_call_losses", ()))
        for w in self._weight_list:
            if w.regularizer is not None and w.trainable:
                out.append(w.regularizer(_reg_view(w)))
        for layer in self._sublayers():
            out.extend(layer.losses)
        return out

    # ------------------------------------------------------------------ building
    def build(self, input_shape: Any) -> None:
        """Create the weights for inputs of `input_shape` (batch dim None). Override."""
        self.built = True

    def _maybe_build(self, input_shape: Any) -> None:
        if self.built:
            return
        self.build(input_shape)
        self.built = True
        self._build_input_shape = input_shape
        if not self._trainable:
            self.trainable = False  # freeze the weights build just created

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Shape inference; the default runs `call` once on zeros (batch of 1)."""
        def zeros(shape):
            return as_tensor(np.zeros(tuple(1 if s is None else s for s in shape),
                                  dtype=np.int64 if self._int_input else np.float32))

        several = isinstance(input_shape, list) and input_shape and \
            isinstance(input_shape[0], (tuple, list))
        dummy = [zeros(s) for s in input_shape] if several else zeros(input_shape)
        with no_grad():
            out = self._call_logical(dummy, False)
        return map_structure(lambda t: (None,) + tuple(t.shape[1:]), out)

    # ------------------------------------------------------------------ calling
    def call(self, inputs: Any, training: bool = False) -> Any:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} has no call() method")

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _cf_mode(self, ndim: int) -> str:
        return self._cf_default if ndim >= 3 else "agnostic"

    _makes_mask = False  # layers that create a mask (Embedding(mask_zero), Masking)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The mask of this layer's output: by default the input's, passed through."""
        return mask

    def _call_arg_names(self) -> set:
        accepted = _CALL_ARGS.get(type(self))
        if accepted is None:
            params = inspect.signature(self.call).parameters
            _REQUIRED_POSITIONAL[type(self)] = sum(
                p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                for p in params.values())
            accepted = set(params) | ({"*"} if any(p.kind == p.VAR_KEYWORD
                                                  for p in params.values()) else set())
            _CALL_ARGS[type(self)] = accepted
        return accepted

    def _call_logical(self, inputs: Any, training: bool, **kwargs: Any) -> Any:
        """Call in Keras's channels-last layout, passing `training` if `call` takes it; a
        list of inputs goes to a `call(self, a, b)` as several positional tensors."""
        accepted = self._call_arg_names()
        if "training" in accepted or "*" in accepted:
            kwargs["training"] = training
        if isinstance(inputs, list) and _REQUIRED_POSITIONAL[type(self)] > 1:
            return self.call(*inputs, **kwargs)
        return self.call(inputs, **kwargs)

    def _prepare(self, x: Any) -> Any:
        """ndarray -> Tensor; integer/float64 inputs cast to float32 (Keras's autocast)."""
        def conv(v):
            if isinstance(v, KerasTensor) or v is None:
                return v
            t = v if isinstance(v, Tensor) else as_tensor(np.asarray(v))
            if self._int_input:
                return t
            if t.dtype != np.float32 and t.dtype.kind in "biuf":
                return t.type(np.float32)
            return t

        return map_structure(conv, x)

    def _forward(self, x: Any, training: bool, channels_first: bool = False,
                 **kwargs: Any) -> Any:
        """Run on real tensors: prepare them, build on the first call, compute, regularize.

        `channels_first` (decided by a model's plan, see graph.py) hands a channels-first
        tensor to the layer's channels-first kernel `_call_cf`; otherwise `call` sees
        Keras's channels-last layout.
        """
        x = self._prepare(x)
        if not self.built:
            self._maybe_build(_batchless_shape(x, channels_first))
        self.__dict__["_call_losses"] = []  # add_loss terms of this call only
        mask = kwargs.pop("mask", None)
        mask = get_keras_mask(x) if mask is None else mask_array(mask)
        if mask is not None and "mask" in self._call_arg_names():
            kwargs["mask"] = mask
        if channels_first:
            y = self._call_cf(x, training)
        else:
            y = self._call_logical(x, training, **kwargs)
        if mask is not None or self._makes_mask:
            out_mask = self.compute_mask(x, mask)
            if isinstance(y, Tensor) and out_mask is not None and y.ndim >= out_mask.ndim \
                    and tuple(y.shape[:out_mask.ndim]) == out_mask.shape:
                set_keras_mask(y, out_mask)
        if self.activity_regularizer is not None:
            first = flatten(y)[0]
            self._activity_losses = [self.activity_regularizer(first) / first.shape[0]] \
                if training else []
        return y

    def _logits(self, x: Tensor) -> Tensor:
        """The output before the final softmax (for layers with `_pre_activation`)."""
        x = self._prepare(x)
        if not self.built:
            self._maybe_build(_batchless_shape(x, False))
        return self._pre_activation(x)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args:
            if "inputs" not in kwargs:
                raise TypeError(f"{type(self).__name__}: call with the inputs as first argument")
            args = (kwargs.pop("inputs"),)
        if any(isinstance(t, KerasTensor) for t in flatten((args, kwargs))):
            return self._symbolic_call(*args, **kwargs)
        training = bool(kwargs.pop("training", False) or False)
        inputs = args[0] if len(args) == 1 else list(args)
        return self._forward(inputs, training, **kwargs)

    def _symbolic_call(self, *args: Any, **kwargs: Any) -> Any:
        inputs = refuse_strings(self, args[0] if len(args) == 1 else list(args))  # call(a, b)
        shapes = map_structure(lambda t: t.shape if isinstance(t, KerasTensor) else
                               tuple(np.shape(t)), inputs)
        self._maybe_build(shapes)
        extra = {k: v for k, v in kwargs.items() if k not in ("training", "mask")}
        out_shapes = self._output_shape_for(shapes, extra)
        dtype = "float32"

        def make(shape):
            return KerasTensor(shape, dtype, name=self.name)

        if isinstance(out_shapes, list) and out_shapes and isinstance(out_shapes[0],
                                                                      (tuple, list)):
            outputs = [make(s) for s in out_shapes]
        else:
            outputs = make(out_shapes)
        Node(self, (inputs,), extra, outputs)
        return outputs

    def _output_shape_for(self, shapes: Any, kwargs: dict) -> Any:
        return self.compute_output_shape(shapes)

    # ------------------------------------------------------------------ graph info
    def _node_attr(self, attr: str) -> Any:
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called on symbolic "
                                 f"inputs and thus has no defined {attr}")
        node = self._inbound_nodes[0]
        if attr == "input":
            return node.args[0]
        return node.outputs

    @property
    def input(self) -> Any:
        return self._node_attr("input")

    @property
    def output(self) -> Any:
        return self._node_attr("output")

    @property
    def input_shape(self) -> Any:
        return map_structure(lambda t: t.shape, self.input)

    @property
    def output_shape(self) -> Any:
        return map_structure(lambda t: t.shape, self.output)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        """Constructor arguments: the base ones, plus (for user subclasses) the recorded
        JSON-serializable arguments of their __init__."""
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": "float32"}
        if self._batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self._batch_input_shape)
        cfg.update(self.__dict__.get("_auto_config") or {})
        return cfg

    def _config_build_shape(self) -> Any:
        """The input shape to save beside the config (layers rebuild from their config)."""
        return None

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """cls(**config); base keys a user __init__ does not take are applied afterwards."""
        params = inspect.signature(cls.__init__).parameters
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return cls(**config)
        layer = cls(**{k: v for k, v in config.items() if k in params})
        if "trainable" not in params and config.get("trainable") is False:
            layer.trainable = False
        return layer

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _batchless_shape(x: Any, channels_first: bool) -> Any:
    """The build shape of real inputs: batch dim None, channels-last."""
    if isinstance(x, Tensor):
        shape = cl_shape(tuple(x.shape)) if channels_first else tuple(x.shape)
        return (None,) + shape[1:]
    return map_structure(lambda t: (None,) + tuple(t.shape[1:]), x)


def _reg_view(w: Weight) -> Tensor:
    """L1/L2 penalties do not depend on the layout; others see Keras's layout."""
    if isinstance(w.regularizer, regularizers.L1L2):
        return w.value
    return w.keras_tensor()


# --------------------------------------------------------------------------- inputs

class InputLayer(Layer):
    """The entry of a functional model or a Sequential: holds the input shape."""

    def __init__(self, shape: tuple | None = None, batch_size: int | None = None,
                 dtype: Any = None, name: str | None = None, batch_shape: tuple | None = None,
                 input_shape: tuple | None = None, batch_input_shape: tuple | None = None,
                 input_tensor: Any = None, sparse: bool = False, **kwargs: Any) -> None:
        shape = shape if shape is not None else input_shape
        batch_shape = batch_shape if batch_shape is not None else batch_input_shape
        if batch_shape is None:
            if shape is None:
                raise ValueError("InputLayer: give shape=(...) (one sample's shape) or "
                                 "batch_shape=(batch, ...)")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        kwargs.pop("ragged", None)
        super().__init__(name=name or unique_name("input_layer"), **kwargs)
        self._batch_input_shape = tuple(None if s is None else int(s) for s in batch_shape)
        self.input_dtype = dtype_name(dtype)
        self.built = True
        tensor = KerasTensor(self._batch_input_shape, self.input_dtype, name=self.name)
        Node(self, (), {}, tensor)

    @property
    def batch_shape(self) -> tuple:
        return self._batch_input_shape

    @property
    def input(self) -> KerasTensor:
        return self.output

    def call(self, inputs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict:
        return {"batch_shape": list(self._batch_input_shape), "dtype": self.input_dtype,
                "name": self.name}


def Input(shape: tuple | None = None, batch_size: int | None = None, dtype: Any = None,
          name: str | None = None, batch_shape: tuple | None = None,
          sparse: bool = False, tensor: Any = None, **kwargs: Any) -> KerasTensor:  # noqa: N802
    """A symbolic input of the functional API: `x = keras.Input(shape=(28, 28, 1))`."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                       batch_shape=batch_shape, **kwargs)
    return layer.output
