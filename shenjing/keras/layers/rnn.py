"""Recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional) over nn.RNN / LSTM / GRU.

Keras's weights are mapped onto torch's, with Keras's parameter counts:
* kernel (in, G*units) is weight_ih transposed; recurrent_kernel (units, G*units) is
  weight_hh transposed; gate order LSTM i, f, c, o (torch i, f, g, o: the same); GRU z, r, h
  (torch r, z, n: the first two blocks swapped).
* LSTM and SimpleRNN have one bias in Keras; torch has b_ih and b_hh, whose sum is what
  counts. The wrapped module keeps only b_ih (b_hh is removed), so the layer has exactly
  Keras's parameters. GRU with reset_after=True (Keras's default) is torch's GRU and keeps
  both biases, which Keras stores as one (2, 3*units) weight.
Initialization is Keras's: glorot_uniform kernels, orthogonal recurrent kernels, zero biases
(LSTM's forget-gate bias 1 when unit_forget_bias).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from ...random import get_rng
from ...tensor import Tensor, as_tensor, cat, stack
from .. import activations, initializers, regularizers
from ..registry import get_registered_object, serialize
from .base import Layer, Weight
from .core import check_constraint

__all__ = ["SimpleRNN", "LSTM", "GRU", "Bidirectional"]


def _swap_gru_blocks(a: np.ndarray, axis: int) -> np.ndarray:
    """Keras z, r, h <-> torch r, z, n along `axis` (its own inverse)."""
    z, r, h = np.split(a, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


def _fill(param: Tensor, value: np.ndarray) -> None:
    """Overwrite a parameter of the wrapped module (an in-place copy the autograd sees)."""
    with no_grad():
        param.copy_(value)


class _StackedWeight(Weight):
    """A Keras weight made of several torch tensors (GRU's (2, 3*units) bias)."""

    def __init__(self, layer: Layer, name: str, owner: Any, attrs: tuple, regularizer: Any):
        super().__init__(layer, name, owner, attrs[0], regularizer=regularizer)
        self._attrs = attrs

    def params(self) -> list:
        return [getattr(self._owner, a) for a in self._attrs]

    def numpy(self) -> np.ndarray:
        return np.stack([_swap_gru_blocks(p.numpy(), 0) for p in self.params()])

    def keras_tensor(self) -> Tensor:
        return stack(self.params())

    def assign(self, value: Any) -> None:
        arr = np.asarray(value)
        if arr.shape != self.shape:
            raise ValueError(f"Layer {self.layer.name!r} weight {self.name!r} has shape "
                             f"{self.shape}; the provided value has shape {arr.shape}")
        with no_grad():
            for p, row in zip(self.params(), arr):
                p.copy_(_swap_gru_blocks(row, 0))


def _run_masked(rnn: nn.Module, x: Tensor, hx: Any, mask: np.ndarray) -> tuple:
    """Keras's masking: masked steps are skipped, the state carried over them. Each
    sequence's unmasked steps are moved to the front (order kept) and run as a
    PackedSequence; the output at every step is the output after the last unmasked step so
    far (zeros before the first one), the final state that after its last unmasked step."""
    n, t = mask.shape
    rows = np.arange(n)[:, None]
    order = np.argsort(~mask, axis=1, kind="stable")
    lengths = mask.sum(1)
    packed = pack_padded_sequence(x[rows, order], np.maximum(lengths, 1), batch_first=True,
                                  enforce_sorted=False)
    out_packed, state = rnn(packed, hx)
    out, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=t)
    seen = np.cumsum(mask, axis=1) - 1
    started = as_tensor((seen >= 0)[..., None].astype(np.float32))
    out = out[rows, np.maximum(seen, 0)] * started
    if (lengths == 0).any() and hx is None:  # nothing seen: the zero initial state
        alive = as_tensor((lengths > 0)[None, :, None].astype(np.float32))
        state = tuple(s * alive for s in state) if isinstance(state, tuple) else state * alive
    return out, state


class _RNN(Layer):
    _mode = "LSTM"
    _gates = 4

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None,
                 recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, seed: int | None = None,
                 return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 reset_after: bool = True, use_cudnn: Any = "auto", **kwargs: Any) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        name = type(self).__name__
        check_constraint(name, kernel_constraint=kernel_constraint,
                         recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint)
        if recurrent_dropout:
            raise NotImplementedError(f"{name}: recurrent_dropout is not supported")
        if stateful:
            raise NotImplementedError(f"{name}: stateful=True is not supported")
        if self._mode == "GRU" and not reset_after:
            raise NotImplementedError("GRU: reset_after=False is not supported (Keras 3's "
                                      "default reset_after=True is torch's GRU)")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        if self._mode == "RNN":
            if self.activation not in (activations.tanh, activations.relu):
                raise NotImplementedError("SimpleRNN: activation must be 'tanh' or 'relu'")
        elif self.activation is not activations.tanh or \
                self.recurrent_activation is not activations.sigmoid:
            raise NotImplementedError(f"{name}: only activation='tanh' and "
                                      f"recurrent_activation='sigmoid' are supported")
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = float(dropout)
        self.seed = seed
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.unroll = unroll
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def _module(self, n_in: int) -> nn.Module:
        if self._mode == "LSTM":
            return nn.LSTM(n_in, self.units, bias=self.use_bias, batch_first=True)
        if self._mode == "GRU":
            return nn.GRU(n_in, self.units, bias=self.use_bias, batch_first=True)
        act = "relu" if self.activation is activations.relu else "tanh"
        return nn.RNN(n_in, self.units, nonlinearity=act, bias=self.use_bias, batch_first=True)

    def build(self, input_shape: tuple) -> None:
        if isinstance(input_shape, list):  # called with initial states
            input_shape = input_shape[0]
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected inputs of shape "
                             f"(batch, timesteps, features), got {input_shape}")
        n_in, u, g = int(input_shape[-1]), self.units, self._gates
        self.rnn = self._module(n_in)
        m = self.rnn
        gru = self._mode == "GRU"
        k_keras = (lambda a: _swap_gru_blocks(a, 0).T) if gru else (lambda a: a.T)
        k_torch = (lambda a: _swap_gru_blocks(a.T, 0)) if gru else (lambda a: a.T)
        for attr, init, shape in (("weight_ih_l0", self.kernel_initializer, (n_in, g * u)),
                                  ("weight_hh_l0", self.recurrent_initializer, (u, g * u))):
            _fill(getattr(m, attr), k_torch(np.asarray(init(shape), np.float32)))
        regs = (self.kernel_regularizer, self.recurrent_regularizer)
        for (name, attr), reg in zip((("kernel", "weight_ih_l0"),
                                      ("recurrent_kernel", "weight_hh_l0")), regs):
            self._weight_list.append(Weight(self, name, m, attr, k_keras, k_torch,
                                            regularizer=reg, axes=None if gru else (1, 0)))
        if self.use_bias:
            if gru:
                for attr in ("bias_ih_l0", "bias_hh_l0"):
                    _fill(getattr(m, attr), _swap_gru_blocks(
                        np.asarray(self.bias_initializer((g * u,)), np.float32), 0))
                self._weight_list.append(_StackedWeight(self, "bias", m, ("bias_ih_l0",
                                                                          "bias_hh_l0"),
                                                        self.bias_regularizer))
            else:
                bias = np.asarray(self.bias_initializer((g * u,)), np.float32)
                if self._mode == "LSTM" and self.unit_forget_bias:
                    bias[u:2 * u] = 1.0
                _fill(m.bias_ih_l0, bias)
                m.register_parameter("bias_hh_l0", None)  # Keras has one bias: keep b_ih only
                self._track("bias", m, "bias_ih_l0", regularizer=self.bias_regularizer)
        self.built = True

    def call(self, inputs: Tensor, training: bool = False, initial_state: Any = None,
             mask: Any = None) -> Any:
        if isinstance(inputs, list):
            inputs, initial_state = inputs[0], inputs[1:]
        if inputs.ndim != 3 or inputs.shape[-1] != self.rnn.input_size:
            raise ValueError(f"Input of layer {self.name!r} ({type(self).__name__}) must have "
                             f"shape (batch, timesteps, {self.rnn.input_size}), got "
                             f"{tuple(inputs.shape)}")
        x = inputs.flip(1) if self.go_backwards else inputs
        if training and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask_arr = (get_rng().random((x.shape[0], 1, x.shape[2])) < keep)
            x = x * as_tensor((mask_arr / keep).astype(x.dtype))
        hx = None
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else \
                [initial_state]
            states = [s if isinstance(s, Tensor) else as_tensor(np.asarray(s, np.float32))
                      for s in states]
            want = 2 if self._mode == "LSTM" else 1
            if len(states) != want:
                raise ValueError(f"{type(self).__name__} {self.name!r}: initial_state needs "
                                 f"{want} tensor(s) of shape (batch, {self.units}), got "
                                 f"{len(states)}")
            states = [s.unsqueeze(0) for s in states]
            hx = tuple(states) if want == 2 else states[0]
        if mask is not None:
            mask = np.asarray(mask.numpy() if isinstance(mask, Tensor) else mask, bool)
            if mask.shape != tuple(inputs.shape[:2]):
                raise ValueError(f"{type(self).__name__} {self.name!r}: the mask must have "
                                 f"shape (batch, timesteps) = {tuple(inputs.shape[:2])}, got "
                                 f"{mask.shape}")
            if self.go_backwards:
                mask = mask[:, ::-1]
        if mask is not None and not mask.all():
            out, state = _run_masked(self.rnn, x, hx, mask)
        else:
            out, state = self.rnn(x, hx)
        if self._mode == "LSTM":
            h, c = state
            states = [h[0], c[0]]
        else:
            states = [state[0]]
        y = out if self.return_sequences else states[0]
        return [y] + states if self.return_state else y

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """A sequence output keeps the input's mask; a last-step output has none."""
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape: Any) -> Any:
        if isinstance(input_shape, list):
            input_shape = input_shape[0]
        n, t = input_shape[0], input_shape[1]
        y = (n, t, self.units) if self.return_sequences else (n, self.units)
        if not self.return_state:
            return y
        return [y] + [(n, self.units)] * (2 if self._mode == "LSTM" else 1)

    def _output_shape_for(self, shapes: Any, kwargs: dict) -> Any:
        return self.compute_output_shape(shapes)

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "units": self.units,
               "activation": serialize(self.activation), "use_bias": self.use_bias,
               "kernel_initializer": serialize(self.kernel_initializer),
               "recurrent_initializer": serialize(self.recurrent_initializer),
               "bias_initializer": serialize(self.bias_initializer),
               "kernel_regularizer": serialize(self.kernel_regularizer),
               "recurrent_regularizer": serialize(self.recurrent_regularizer),
               "bias_regularizer": serialize(self.bias_regularizer),
               "dropout": self.dropout, "seed": self.seed,
               "return_sequences": self.return_sequences, "return_state": self.return_state,
               "go_backwards": self.go_backwards, "unroll": self.unroll}
        if self._mode != "RNN":
            cfg["recurrent_activation"] = serialize(self.recurrent_activation)
        if self._mode == "LSTM":
            cfg["unit_forget_bias"] = self.unit_forget_bias
        return cfg


class SimpleRNN(_RNN):
    """Fully connected RNN: h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + b)."""

    _mode, _gates = "RNN", 1


class LSTM(_RNN):
    """Long short-term memory (Hochreiter 1997), Keras's arguments over nn.LSTM."""

    _mode, _gates = "LSTM", 4


class GRU(_RNN):
    """Gated recurrent unit (Cho 2014), reset_after=True (Keras 3's default) over nn.GRU."""

    _mode, _gates = "GRU", 3


def _recurrent_from_config(config: dict) -> Layer:
    """A recurrent layer from its {'class_name': ..., 'config': ...} (how Bidirectional saves
    the layer it wraps); registered custom classes are found too."""
    name = config.get("class_name")
    cls = {c.__name__: c for c in (SimpleRNN, LSTM, GRU)}.get(name) or \
        get_registered_object(name)
    if cls is None:
        raise ValueError(f"Bidirectional: unknown recurrent layer class {name!r}; register it "
                         f"with keras.saving.register_keras_serializable()")
    return cls.from_config(config.get("config") or {})


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards, merging their outputs."""

    def __init__(self, layer: Any, merge_mode: str | None = "concat", weights: Any = None,
                 backward_layer: Any = None, **kwargs: Any) -> None:
        if isinstance(layer, dict):
            layer = _recurrent_from_config(layer)
        if isinstance(backward_layer, dict):
            backward_layer = _recurrent_from_config(backward_layer)
        if not isinstance(layer, _RNN):
            raise ValueError(f"Bidirectional: expected a recurrent layer (SimpleRNN, LSTM, "
                             f"GRU), got {type(layer).__name__}")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(f"Bidirectional: merge_mode must be 'concat', 'sum', 'mul', 'ave' "
                             f"or None, got {merge_mode!r}")
        batch_shape = layer._batch_input_shape
        if batch_shape is not None and "batch_input_shape" not in kwargs and \
                "input_shape" not in kwargs:
            kwargs["batch_input_shape"] = batch_shape
        super().__init__(**kwargs)
        cfg = layer.get_config()
        cfg.pop("batch_input_shape", None)
        self.forward_layer = type(layer).from_config({**cfg, "name": "forward_" + layer.name})
        if backward_layer is None:
            bcfg = {**cfg, "name": "backward_" + layer.name,
                    "go_backwards": not layer.go_backwards}
            backward_layer = type(layer).from_config(bcfg)
        self.backward_layer = backward_layer
        self.layer_config = cfg
        self.layer_class = type(layer).__name__
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        if weights is not None:
            raise NotImplementedError("Bidirectional: the weights argument is not supported; "
                                      "use set_weights after building")
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def build(self, input_shape: Any) -> None:
        self.forward_layer._maybe_build(input_shape)
        self.backward_layer._maybe_build(input_shape)
        self.built = True

    def _merge(self, a: Tensor, b: Tensor) -> Any:
        if self.merge_mode == "concat":
            return cat([a, b], dim=-1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        if self.merge_mode == "ave":
            return (a + b) * 0.5
        return [a, b]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask if self.return_sequences else None

    def call(self, inputs: Tensor, training: bool = False, initial_state: Any = None,
             mask: Any = None) -> Any:
        fs = bs = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fs, bs = initial_state[:half], initial_state[half:]
        yf = self.forward_layer.call(inputs, training=training, initial_state=fs, mask=mask)
        yb = self.backward_layer.call(inputs, training=training, initial_state=bs, mask=mask)
        states: list = []
        if self.return_state:
            yf, sf = yf[0], yf[1:]
            yb, sb = yb[0], yb[1:]
            states = list(sf) + list(sb)
        if self.return_sequences:
            yb = yb.flip(1)
        y = self._merge(yf, yb)
        if self.return_state:
            return (y if isinstance(y, list) else [y]) + states
        return y

    def compute_output_shape(self, input_shape: Any) -> Any:
        f = self.forward_layer.compute_output_shape(input_shape)
        y = f[0] if self.return_state else f
        if self.merge_mode == "concat":
            y = tuple(y[:-1]) + (y[-1] * 2,)
        ys = [y, y] if self.merge_mode is None else [y]
        if self.return_state:
            states = list(f[1:]) * 2
            return ys + states
        return ys if self.merge_mode is None else y

    def get_config(self) -> dict:
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": {"class_name": self.layer_class, "config": self.layer_config}}

