"""Recurrent layers with torch's semantics and parameter names: RNN, LSTM, GRU and their cells.

Each layer-direction of `RNN` / `LSTM` / `GRU` is one fused Function from `shenjing.ops.rnn`
that runs the whole sequence (forward loop and backpropagation through time), so a layer
costs a handful of graph nodes whatever the sequence length. The cells reuse the same
Functions on a sequence of length one, so the maths exists once.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..ops.rnn import GRUSequence, LSTMSequence, RNNReluSequence, RNNTanhSequence, TakeRows
from ..random import get_rng
from ..tensor import Tensor, cat, stack
from . import functional as F
from .module import Module, Parameter
from .rnn_packed import run_packed
from .utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

# mode -> (gate blocks per hidden unit, fused Function)
_MODES = {
    "RNN_TANH": (1, RNNTanhSequence),
    "RNN_RELU": (1, RNNReluSequence),
    "LSTM": (4, LSTMSequence),
    "GRU": (3, GRUSequence),
}


def _rnn_mode(nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; select 'tanh' or 'relu'")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def _uniform_init(params, hidden_size: int) -> None:
    """torch's recurrent init: every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden))."""
    stdv = 1.0 / math.sqrt(hidden_size)
    rng = get_rng()
    for p in params:
        p.numpy()[...] = rng.uniform(-stdv, stdv, size=p.shape)


class RNNBase(Module):
    """Shared body of RNN, LSTM and GRU: parameters, input checks and the layer loop."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        name = mode.split("_")[0]
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size),
                       ("num_layers", num_layers)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {v!r}")
        if isinstance(dropout, bool) or not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} adds dropout after all but the last "
                          f"recurrent layer, so it has no effect with num_layers=1",
                          UserWarning, stacklevel=3)
        self.mode = mode
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        n_gates, self._op = _MODES[mode]
        D = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else hidden_size * D
            for direction in range(D):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (n_gates * hidden_size, n_in)),
                          ("weight_hh", (n_gates * hidden_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (n_gates * hidden_size,)),
                               ("bias_hh", (n_gates * hidden_size,))]
                for pname, shape in shapes:
                    setattr(self, pname + sfx, Parameter(np.empty(shape, dtype=np.float32)))
                    self._flat_weights_names.append(pname + sfx)
        self.reset_parameters()

    @property
    def _name(self) -> str:
        return type(self).__name__

    def reset_parameters(self) -> None:
        _uniform_init(self.parameters(), self.hidden_size)

    def flatten_parameters(self) -> None:
        """Compatibility no-op (torch compacts cuDNN weights here)."""

    @property
    def all_weights(self) -> list:
        per = 4 if self.bias else 2
        ws = [getattr(self, n) for n in self._flat_weights_names]
        return [ws[i:i + per] for i in range(0, len(ws), per)]

    def _layer_params(self, idx: int) -> tuple:
        layer, direction = divmod(idx, 2 if self.bidirectional else 1)
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        p = self._parameters
        return (p["weight_ih" + sfx], p["weight_hh" + sfx],
                p.get("bias_ih" + sfx), p.get("bias_hh" + sfx))

    # ------------------------------------------------------------------ checks
    def _check_input(self, x) -> bool:
        """Validate the input's type, rank and feature size; True when it is unbatched."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{self._name}: expected a Tensor input, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{self._name}: expected a floating-point input, got {x.dtype}")
        i = self.input_size
        layouts = ((f"(L, N, {i})", False), (f"(N, L, {i})", True))
        if self.batch_first:
            layouts = layouts[::-1]
        want = (f"input of shape {layouts[0][0]} with batch_first={layouts[0][1]} (or "
                f"{layouts[1][0]} with batch_first={layouts[1][1]}), or (L, {i}) unbatched")
        if x.ndim not in (2, 3):
            raise ValueError(f"{self._name}: expected a 3-D {want}; got a {x.ndim}-D tensor "
                             f"of shape {tuple(x.shape)}")
        if x.shape[-1] != i:
            raise ValueError(f"{self._name}(input_size={i}): expected {want}; got shape "
                             f"{tuple(x.shape)}, whose last dimension {x.shape[-1]} is not "
                             f"input_size={i}")
        if x.shape[-2 if x.ndim == 2 else (1 if self.batch_first else 0)] == 0:
            raise ValueError(f"{self._name}: expected a non-empty sequence, got shape "
                             f"{tuple(x.shape)}")
        return x.ndim == 2

    def _check_hidden(self, h, what: str, batch: int | None) -> Tensor:
        D = 2 if self.bidirectional else 1
        expected = (self.num_layers * D,) + (() if batch is None else (batch,)) + (
            self.hidden_size,)
        if not isinstance(h, Tensor):
            raise TypeError(f"{self._name}: expected {what} to be a Tensor, got "
                            f"{type(h).__name__}")
        if tuple(h.shape) != expected:
            layout = "(num_layers * num_directions, " + ("" if batch is None else "N, ") + "H)"
            raise ValueError(f"{self._name}: expected {what} of shape {layout} = {expected}, "
                             f"got {tuple(h.shape)}")
        return h if batch is not None else h.unsqueeze(1)

    # ------------------------------------------------------------------ forward
    def _run(self, x: Tensor, hx, cx):
        """All layers and directions; returns output, h_n and c_n (None unless LSTM)."""
        unbatched = self._check_input(x)
        bf = self.batch_first and not unbatched
        if unbatched:
            x = x.unsqueeze(1)
        T, N = (x.shape[1], x.shape[0]) if bf else (x.shape[0], x.shape[1])
        batch = None if unbatched else N
        h0 = None if hx is None else self._check_hidden(hx, "h_0", batch)
        c0 = None if cx is None else self._check_hidden(cx, "c_0", batch)
        D = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            seqs = []
            for direction in range(D):
                idx = layer * D + direction
                out = self._op.apply(x, None if h0 is None else h0[idx],
                                     None if c0 is None else c0[idx], *self._layer_params(idx),
                                     reverse=bool(direction), batch_first=bf)
                seq, h_last, c_last = _split_output(out, T, N, bf, bool(direction), lstm)
                seqs.append(seq)
                h_n.append(h_last)
                c_n.append(c_last)
            x = seqs[0] if D == 1 else cat(seqs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        h_n = stack(h_n, 0)
        c_n = stack(c_n, 0) if lstm else None
        if unbatched:
            x = x.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        return x, h_n, c_n

    def forward(self, input: Tensor, hx: Tensor | None = None):
        """Run the sequence; returns (output, h_n) with torch's shapes. A PackedSequence
        input gives a PackedSequence output."""
        if isinstance(input, PackedSequence):
            out, h_n, _ = run_packed(self, input, hx, None)
            return out, h_n
        out, h_n, _ = self._run(input, hx, None)
        return out, h_n

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _split_output(out: Tensor, T: int, N: int, batch_first: bool, reverse: bool,
                  lstm: bool) -> tuple:
    """Cut a fused op's (T*N + E*N, H) output into the sequence, h_n and c_n (or None)."""
    H = out.shape[1]
    shape = (N, T, H) if batch_first else (T, N, H)
    seq = TakeRows.apply(out, start=0, stop=T * N, shape=shape) if lstm else out.reshape(shape)
    last = 0 if reverse else T - 1
    if batch_first:  # h_n's rows are strided: index the sequence
        h_last = seq[:, last]
    else:
        h_last = TakeRows.apply(out, start=last * N, stop=(last + 1) * N, shape=(N, H))
    c_last = TakeRows.apply(out, start=T * N, stop=(T + 1) * N, shape=(N, H)) if lstm else None
    return seq, h_last, c_last


class RNN(RNNBase):
    """Elman RNN: h_t = tanh or relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__(_rnn_mode(nonlinearity), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"


class LSTM(RNNBase):
    """Long short-term memory; forward(input, (h_0, c_0)) -> (output, (h_n, c_n))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional)

    def forward(self, input: Tensor, hx: tuple | None = None):
        h0 = c0 = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTM: expected hx to be a tuple (h_0, c_0), got "
                                f"{type(hx).__name__}")
            h0, c0 = hx
        if isinstance(input, PackedSequence):
            out, h_n, c_n = run_packed(self, input, h0, c0)
            return out, (h_n, c_n)
        out, h_n, c_n = self._run(input, h0, c0)
        return out, (h_n, c_n)


class GRU(RNNBase):
    """Gated recurrent unit, torch gates r, z, n: n = tanh(W_in x + b_in + r (W_hn h + b_hn))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional)


# ----------------------------------------------------------------------------- cells


class RNNCellBase(Module):
    """One time step: the fused sequence Function applied to a sequence of length one."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        n_gates, self._op = _MODES[mode]
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.bias = bool(bias)
        self.weight_ih = Parameter(np.empty((n_gates * hidden_size, input_size), np.float32))
        self.weight_hh = Parameter(np.empty((n_gates * hidden_size, hidden_size), np.float32))
        if bias:
            self.bias_ih = Parameter(np.empty((n_gates * hidden_size,), np.float32))
            self.bias_hh = Parameter(np.empty((n_gates * hidden_size,), np.float32))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_init(self.parameters(), self.hidden_size)

    def _sig(self) -> str:
        return f"{type(self).__name__}(input_size={self.input_size}, " \
               f"hidden_size={self.hidden_size})"

    def _step(self, x: Tensor, hs: tuple) -> tuple:
        """Check shapes and run one step; returns h' and c' (None unless LSTM)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{self._sig()}: expected a Tensor input, got {type(x).__name__}")
        i, H = self.input_size, self.hidden_size
        if x.ndim not in (1, 2) or x.shape[-1] != i:
            raise ValueError(f"{self._sig()}: expected input of shape (N, {i}) or ({i},) "
                             f"unbatched, got {tuple(x.shape)}")
        batched = x.ndim == 2
        want = (x.shape[0], H) if batched else (H,)
        states = []
        for name, h in zip(("h", "c"), hs):
            if h is not None:
                if not isinstance(h, Tensor) or tuple(h.shape) != want:
                    got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
                    raise ValueError(f"{self._sig()}: expected {name} of shape {want}, "
                                     f"got {got}")
                h = h if batched else h.unsqueeze(0)
            states.append(h)
        states += [None] * (2 - len(states))
        x = x.unsqueeze(0) if batched else x.reshape(1, 1, i)
        out = self._op.apply(x, states[0], states[1], self.weight_ih, self.weight_hh,
                             self.bias_ih, self.bias_hh)
        n = out.shape[0] // (1 + self._op.extra_rows)  # rows: h' (then c' for the LSTM)
        shape = (n, H) if batched else (H,)
        if not self._op.extra_rows:
            return out.reshape(shape), None
        return (TakeRows.apply(out, start=0, stop=n, shape=shape),
                TakeRows.apply(out, start=n, stop=2 * n, shape=shape))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class RNNCell(RNNCellBase):
    """One Elman step: h' = tanh or relu(W_ih x + b_ih + W_hh h + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh") -> None:
        super().__init__(_rnn_mode(nonlinearity), input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, (hx,))[0]


class LSTMCell(RNNCellBase):
    """One LSTM step: forward(input, (h, c)) -> (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"{self._sig()}: expected hx to be a tuple (h, c), got "
                            f"{type(hx).__name__}")
        return self._step(input, tuple(hx) if hx is not None else (None, None))


class GRUCell(RNNCellBase):
    """One GRU step: h' = (1 - z) n + z h."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__("GRU", input_size, hidden_size, bias)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, (hx,))[0]
