"""RNN / LSTM / GRU over a PackedSequence: each sequence runs only over its own length.

The packed batch is sorted by decreasing length, so at step t the first `batch_sizes[t]`
rows are running. Each step runs the layer's fused sequence Function on a length-one
sequence of those rows: going forward the batch shrinks (a sequence that stops leaves its
final state behind); going backward it grows (a sequence joins with its initial state at
its last step). Outputs are packed again, in the same layout as the input.
"""

from __future__ import annotations

import numpy as np

from ..ops.rnn import TakeRows
from ..tensor import Tensor, cat, from_numpy, stack
from . import functional as F
from .utils.rnn import PackedSequence

__all__ = ["run_packed"]


def _step(module, x_t: Tensor, h: Tensor, c: Tensor | None, params: tuple, lstm: bool):
    out = module._op.apply(x_t.unsqueeze(0), h, c, *params)
    n = h.shape[0]
    if not lstm:
        return out, None
    return (TakeRows.apply(out, start=0, stop=n, shape=(n, out.shape[1])),
            TakeRows.apply(out, start=n, stop=2 * n, shape=(n, out.shape[1])))


def _direction(module, x: Tensor, starts: np.ndarray, sizes: np.ndarray, h0: Tensor,
               c0: Tensor | None, params: tuple, reverse: bool, lstm: bool) -> tuple:
    """One layer-direction over packed rows; returns (packed outputs, h_n, c_n)."""
    T = len(sizes)
    outs: list = [None] * T
    if not reverse:
        h, c = h0, c0
        done_h: list = []  # final states of sequences that stopped, last rows first
        done_c: list = []
        for t in range(T):
            bs = int(sizes[t])
            if bs < h.shape[0]:
                done_h.append(h[bs:])
                h = h[:bs]
                if lstm:
                    done_c.append(c[bs:])
                    c = c[:bs]
            h, c = _step(module, x[starts[t]:starts[t] + bs], h, c, params, lstm)
            outs[t] = h
        h_n = cat([h] + done_h[::-1], 0) if done_h else h
        c_n = (cat([c] + done_c[::-1], 0) if done_c else c) if lstm else None
        return cat(outs, 0), h_n, c_n
    h = c = None
    for t in reversed(range(T)):
        bs = int(sizes[t])
        have = 0 if h is None else h.shape[0]
        if bs > have:  # sequences whose last step is t start from their initial state
            h = h0[have:bs] if h is None else cat([h, h0[have:bs]], 0)
            if lstm:
                c = c0[have:bs] if c is None else cat([c, c0[have:bs]], 0)
        h, c = _step(module, x[starts[t]:starts[t] + bs], h, c, params, lstm)
        outs[t] = h
    return cat(outs, 0), h, c


def run_packed(module, packed: PackedSequence, hx: Tensor | None, cx: Tensor | None) -> tuple:
    """(PackedSequence output, h_n, c_n or None) of an RNNBase over a packed batch; hx/cx
    are in the caller's batch order, as are h_n and c_n."""
    x = packed.data
    if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != module.input_size:
        raise ValueError(f"{type(module).__name__}(input_size={module.input_size}): expected "
                         f"PackedSequence data of shape (sum of lengths, {module.input_size}),"
                         f" got {tuple(getattr(x, 'shape', ()))}")
    sizes = packed.batch_sizes.numpy().astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    B = int(sizes[0])
    D = 2 if module.bidirectional else 1
    H = module.hidden_size
    lstm = module.mode == "LSTM"
    states = []
    for name, s in (("h_0", hx), ("c_0", cx if lstm else None)):
        if s is None:
            s = from_numpy(np.zeros((module.num_layers * D, B, H), dtype=x.dtype))
        else:
            s = module._check_hidden(s, name, B)
            if packed.sorted_indices is not None:
                s = s.index_select(1, packed.sorted_indices.numpy())
        states.append(s)
    h0, c0 = states if lstm else (states[0], None)
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outs = []
        for direction in range(D):
            idx = layer * D + direction
            out, h_last, c_last = _direction(module, x, starts, sizes, h0[idx],
                                             None if c0 is None else c0[idx],
                                             module._layer_params(idx), bool(direction), lstm)
            outs.append(out)
            h_n.append(h_last)
            c_n.append(c_last)
        x = outs[0] if D == 1 else cat(outs, -1)
        if module.dropout and module.training and layer < module.num_layers - 1:
            x = F.dropout(x, module.dropout, training=True)
    h_n = stack(h_n, 0)
    c_n = stack(c_n, 0) if lstm else None
    if packed.unsorted_indices is not None:
        order = packed.unsorted_indices.numpy()
        h_n = h_n.index_select(1, order)
        c_n = None if c_n is None else c_n.index_select(1, order)
    return packed._replace(data=x), h_n, c_n
