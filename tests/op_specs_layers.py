"""Op-table rows for the layer-level Functions: conv, pooling, losses, nn_ops, recurrent.

These ops were first tested in their own files (test_conv, test_pool, test_nn_losses, ...);
these rows put each of them through the same three table checks as every core op (forward
and backward against torch with a random upstream gradient, float64 gradcheck), so the guard
in test_ops.py can require a row for every Function in the package. Each row calls the
torch.nn.functional spelling, which shenjing shares.
"""

from __future__ import annotations

from op_specs import Arg, row

from shenjing.ops import conv as C
from shenjing.ops import loss as L
from shenjing.ops import nn_ops as N
from shenjing.ops import pool as P
from shenjing.ops import rnn as R

__all__ = ["OPS_LAYERS"]

PROB = dict(low=0.05, high=0.95)


def _F(lib):
    return lib.nn.functional


def _recurrent(lib, mode: str, x, w_ih, w_hh, b_ih, b_hh):
    """One-layer batch_first RNN/LSTM/GRU run with the given weight tensors."""
    hidden = w_hh.shape[1]
    cls = {"lstm": lib.nn.LSTM, "gru": lib.nn.GRU}.get(mode, lib.nn.RNN)
    kw = {} if mode in ("lstm", "gru") else {"nonlinearity": mode}
    m = cls(x.shape[-1], hidden, batch_first=True, **kw)
    weights = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih,
               "bias_hh_l0": b_hh}
    if lib.__name__ == "torch":
        out = lib.func.functional_call(m, weights, (x,))
    else:
        for name, w in weights.items():
            m._parameters[name] = w  # the row's tensors are the parameters
        out = m(x)
    seq, state = out
    last = state[1] if mode == "lstm" else state  # LSTM's c_n exercises its own slice
    return seq, last


def _gates(mode: str) -> int:
    return {"lstm": 4, "gru": 3}.get(mode, 1)


def _rnn_row(mode: str, covers):
    g, h, e = _gates(mode), 3, 2
    return row(f"rnn_{mode}", lambda lib, *t: _recurrent(lib, mode, *t),
               [(2, 4, e), Arg((g * h, e), low=-0.6, high=0.6), Arg((g * h, h), low=-0.6,
                                                                    high=0.6),
                Arg((g * h,), low=-0.3, high=0.3), Arg((g * h,), low=-0.3, high=0.3)],
               covers, grad_rtol=1e-4, grad_atol=1e-5)


# fmt: off
OPS_LAYERS = [
    # convolution and pooling
    row("conv2d", lambda lib, x, w, b: _F(lib).conv2d(x, w, b, stride=1, padding=1),
        [(2, 3, 5, 5), (4, 3, 3, 3), (4,)], C.Conv, grad_rtol=1e-4, grad_atol=1e-4),
    row("conv1d_groups", lambda lib, x, w: _F(lib).conv1d(x, w, stride=2, groups=2),
        [(2, 4, 9), (6, 2, 3)], C.Conv, grad_rtol=1e-4, grad_atol=1e-4),
    # stride 1, one group: the shift-and-add path (ops/conv_shift.py)
    row("conv1d_shift", lambda lib, x, w, b: _F(lib).conv1d(x, w, b, padding=2, dilation=2),
        [(2, 3, 8), (4, 3, 3), (4,)], C.Conv, grad_rtol=1e-4, grad_atol=1e-4),
    row("conv2d_whole_width", lambda lib, x, w, b: _F(lib).conv2d(x, w, b, padding=(1, 1)),
        [(2, 2, 6, 3), (3, 2, 3, 5), (3,)], C.Conv, grad_rtol=1e-4, grad_atol=1e-4),
    row("max_pool2d", lambda lib, x: _F(lib).max_pool2d(x, 2), [(2, 3, 6, 6)], P.MaxPool,
        distinct=True),
    row("max_pool2d_overlap", lambda lib, x: _F(lib).max_pool2d(x, 3, stride=2, padding=1),
        [(1, 2, 7, 7)], P.MaxPool, distinct=True),
    # nn.Sequential runs ReLU + max pool as one MaxPool(relu=True) op
    row("relu_max_pool2d_fused", lambda lib, x: lib.nn.Sequential(
        lib.nn.ReLU(), lib.nn.MaxPool2d((2, 3)))(x), [(2, 3, 7, 8)], P.MaxPool, distinct=True),
    row("relu_max_pool1d_fused", lambda lib, x: lib.nn.Sequential(
        lib.nn.ReLU(), lib.nn.MaxPool1d(3))(x), [(2, 3, 10)], P.MaxPool, distinct=True),
    row("avg_pool2d", lambda lib, x: _F(lib).avg_pool2d(x, 3, stride=2, padding=1,
                                                        count_include_pad=False),
        [(2, 2, 7, 7)], P.AvgPool),
    row("adaptive_avg_pool2d_uneven", lambda lib, x: _F(lib).adaptive_avg_pool2d(x, (2, 3)),
        [(2, 3, 5, 7)], P.AdaptiveAvgPool),
    row("adaptive_max_pool2d_uneven", lambda lib, x: _F(lib).adaptive_max_pool2d(x, (2, 3)),
        [(2, 3, 5, 7)], P.AdaptiveMaxPool, distinct=True),
    # losses
    row("mse_loss", lambda lib, a, b: _F(lib).mse_loss(a, b), [(4, 3), (4, 3)], L.MseLoss),
    row("l1_loss", lambda lib, a, b: _F(lib).l1_loss(a, b, reduction="sum"), [(4, 3), (4, 3)],
        L.L1Loss),
    row("huber_loss", lambda lib, a, b: _F(lib).huber_loss(a, b, delta=0.5), [(4, 3), (4, 3)],
        L.HuberLoss),
    row("smooth_l1_loss", lambda lib, a, b: _F(lib).smooth_l1_loss(a, b, beta=0.7),
        [(4, 3), (4, 3)], L.SmoothL1Loss),
    row("bce", lambda lib, p, t: _F(lib).binary_cross_entropy(p, t),
        [Arg((4, 3), **PROB), Arg((4, 3), **PROB)], L.BceLoss),
    row("bce_with_logits", lambda lib, z, t: _F(lib).binary_cross_entropy_with_logits(z, t),
        [(4, 3), Arg((4, 3), **PROB)], L.BceWithLogitsLoss),
    row("cross_entropy", lambda lib, z, y: _F(lib).cross_entropy(z, y),
        [(5, 4), Arg((5,), low=0, high=4, kind="int")], L.CrossEntropy),
    row("cross_entropy_probs", lambda lib, z, p: _F(lib).cross_entropy(z, p.softmax(-1)),
        [(5, 4), (5, 4)], (L.CrossEntropyProbs,)),
    row("nll_loss", lambda lib, z, y: _F(lib).nll_loss(z, y, reduction="sum"),
        [(5, 4), Arg((5,), low=0, high=4, kind="int")], L.NllLoss),
    row("kl_div", lambda lib, z, p: _F(lib).kl_div(z, p, reduction="batchmean"),
        [(4, 3), Arg((4, 3), **PROB)], L.KlDivLoss),
    # |s| in [1.3, 2]: both sides of the hinge, away from its kink; labels are signs
    row("hinge_loss", lambda lib, s, y: _F(lib).hinge_loss(s, y.sign()),
        [Arg((8,), low=1.3, high=2.0, signed=True), Arg((8,), low=0.5, high=1.0, signed=True)],
        L.HingeLoss,
        torch_op=lambda torch, s, y: torch.clamp(1 - y.sign() * s, min=0).mean()),
    # nn_ops
    row("linear", lambda lib, x, w, b: _F(lib).linear(x, w, b), [(2, 3, 4), (5, 4), (5,)],
        N.Linear),
    row("embedding", lambda lib, i, w: _F(lib).embedding(i, w),
        [Arg((2, 5), low=0, high=6, kind="int"), (6, 3)], N.Embedding),
    row("layer_norm", lambda lib, x, w, b: _F(lib).layer_norm(x, (4,), w, b),
        [(3, 2, 4), (4,), (4,)], N.LayerNorm, grad_rtol=1e-4, grad_atol=1e-4),
    row("batch_norm_train", lambda lib, x, w, b: _F(lib).batch_norm(
        x, None, None, w, b, training=True), [(4, 3, 2, 2), (3,), (3,)], N.BatchNorm,
        grad_rtol=1e-4, grad_atol=1e-4),
    row("elu", lambda lib, x: _F(lib).elu(x, alpha=0.7), [(3, 4)], N.Elu, avoid=(0.0,)),
    row("gelu", lambda lib, x: _F(lib).gelu(x), [(3, 4)], N.Gelu),
    row("gelu_tanh", lambda lib, x: _F(lib).gelu(x, approximate="tanh"), [(3, 4)], N.Gelu),
    row("silu", lambda lib, x: _F(lib).silu(x), [(3, 4)], N.Silu),
    # recurrent (TakeRows cuts LSTM's sequence and c_n out of the fused output)
    _rnn_row("tanh", R.RNNTanhSequence),
    _rnn_row("relu", R.RNNReluSequence),
    _rnn_row("gru", R.GRUSequence),
    _rnn_row("lstm", (R.LSTMSequence, R.TakeRows)),
]
# fmt: on
