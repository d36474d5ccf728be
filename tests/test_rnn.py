"""Recurrent layers: RNN / LSTM / GRU and their cells against torch, gradchecks of the fused
sequence ops, dtypes, dropout between layers, and the error messages."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import nn
from shenjing.ops.rnn import (
    _POOL,
    GRUSequence,
    LSTMSequence,
    RNNReluSequence,
    RNNTanhSequence,
    TakeRows,
)

RTOL, ATOL = 1e-4, 1e-5  # float32, sequences of a few steps

KINDS = {  # name -> (shenjing constructor, torch constructor name, extra kwargs)
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
}

CONFIGS = [  # (num_layers, bidirectional, batch_first, with initial state, unbatched, bias)
    (1, False, False, False, False, True),
    (1, False, True, True, False, True),
    (2, False, False, True, False, True),
    (1, True, False, True, False, True),
    (2, True, True, True, False, True),
    (2, True, False, False, False, False),
    (2, True, False, True, True, True),
    (1, False, True, False, True, True),
]


def _pair(torch, kind: str, input_size: int, hidden: int, **cfg):
    """A torch layer and a shenjing layer holding the same weights (strict state_dict copy)."""
    cls, extra = KINDS[kind]
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(input_size, hidden, **extra, **cfg)
    sm = getattr(nn, cls)(input_size, hidden, **extra, **cfg)
    sm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()}, strict=True)
    return tm, sm


def _close(a, b, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=RTOL, atol=ATOL,
                               err_msg=what)


def _weighted_sum(tensors, grads):
    """sum_k <tensors[k], grads[k]>: a scalar whose gradient is a random upstream gradient."""
    total = None
    for t, g in zip(tensors, grads):
        term = (t * g).sum()
        total = term if total is None else total + term
    return total


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "L{}-bi{:d}-bf{:d}-hx{:d}-ub{:d}-b{:d}"
                         .format(c[0], *map(int, c[1:])))
def test_layer_matches_torch(kind, config, kernel_path):
    torch = pytest.importorskip("torch")
    layers, bidir, batch_first, with_hx, unbatched, bias = config
    T, N, F, H = 5, 3, 4, 6
    tm, sm = _pair(torch, kind, F, H, num_layers=layers, bidirectional=bidir,
                   batch_first=batch_first, bias=bias)
    rng = np.random.default_rng(1)
    shape = (T, F) if unbatched else ((N, T, F) if batch_first else (T, N, F))
    x = rng.standard_normal(shape).astype(np.float32)
    D = 2 if bidir else 1
    hshape = (layers * D, H) if unbatched else (layers * D, N, H)
    states = [rng.standard_normal(hshape).astype(np.float32)
              for _ in range(2 if kind == "lstm" else 1)] if with_hx else []

    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    xs = sj.tensor(x, requires_grad=True)
    ss = [sj.tensor(s, requires_grad=True) for s in states]
    if kind == "lstm":
        out_t, (h_t, c_t) = tm(xt, tuple(st) if st else None)
        out_s, (h_s, c_s) = sm(xs, tuple(ss) if ss else None)
        t_outs, s_outs = [out_t, h_t, c_t], [out_s, h_s, c_s]
    else:
        out_t, h_t = tm(xt, st[0] if st else None)
        out_s, h_s = sm(xs, ss[0] if ss else None)
        t_outs, s_outs = [out_t, h_t], [out_s, h_s]
    grads = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in t_outs]
    for name, s, t in zip(["output", "h_n", "c_n"], s_outs, t_outs):
        assert s.shape == tuple(t.shape), name
        assert s.dtype == np.float32, name
        _close(s.data, t, name)

    _weighted_sum(t_outs, [torch.tensor(g) for g in grads]).backward()
    _weighted_sum(s_outs, [sj.tensor(g) for g in grads]).backward()
    _close(xs.grad.data, xt.grad, "input gradient")
    for k, (s, t) in enumerate(zip(ss, st)):
        _close(s.grad.data, t.grad, f"initial state {k} gradient")
    sp = dict(sm.named_parameters())
    for name, p in tm.named_parameters():
        _close(sp[name].grad.data, p.grad, f"gradient of {name}")
    assert len(sp) == len(dict(tm.named_parameters()))


def test_state_dict_names_shapes_and_order_match_torch():
    torch = pytest.importorskip("torch")
    for kind in KINDS:
        tm, sm = _pair(torch, kind, 3, 5, num_layers=2, bidirectional=True)
        assert [(k, tuple(v.shape)) for k, v in tm.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in sm.state_dict().items()]


def test_init_is_uniform_in_torch_range_and_seeded():
    sj.manual_seed(0)
    a = nn.LSTM(8, 16, num_layers=2, bidirectional=True)
    sj.manual_seed(0)
    b = nn.LSTM(8, 16, num_layers=2, bidirectional=True)
    bound = 1 / 4.0
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound, name
        assert np.abs(p.data).max() > 0.8 * bound, name  # spread over the whole range
    assert len(list(a.parameters())) == 16


@pytest.mark.parametrize("kind", list(KINDS))
def test_float64_in_float64_out(kind):
    cls, extra = KINDS[kind]
    m = getattr(nn, cls)(3, 4, **extra).double()
    x = sj.tensor(np.random.default_rng(0).standard_normal((5, 2, 3)), requires_grad=True)
    out = m(x)
    out, h = out[0], out[1]
    h = h[0] if kind == "lstm" else h
    assert out.dtype == np.float64 and h.dtype == np.float64
    out.sum().backward()
    assert x.grad.dtype == np.float64
    assert all(p.grad.dtype == np.float64 for p in m.parameters())


# ----------------------------------------------------------------------------- fused ops

OPS = [(LSTMSequence, 4), (GRUSequence, 3), (RNNTanhSequence, 1), (RNNReluSequence, 1)]


@pytest.mark.parametrize("op,gates", OPS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("reverse,batch_first", [(False, False), (True, True)])
def test_fused_op_gradcheck(op, gates, reverse, batch_first):
    rng = np.random.default_rng(3)
    T, N, F, H = 3, 2, 3, 2
    lstm = op is LSTMSequence
    x = rng.standard_normal((N, T, F) if batch_first else (T, N, F))
    arrays = [x, rng.standard_normal((N, H)), rng.standard_normal((N, H)) if lstm else None,
              rng.uniform(-1, 1, (gates * H, F)), rng.uniform(-1, 1, (gates * H, H)),
              rng.uniform(-1, 1, gates * H), rng.uniform(-1, 1, gates * H)]
    inputs = [None if a is None else sj.tensor(a, dtype=sj.float64, requires_grad=True)
              for a in arrays]

    def fn(*xs):
        return op.apply(*xs, reverse=reverse, batch_first=batch_first)

    out = fn(*inputs)
    assert out.dtype == np.float64
    assert out.shape == (T * N + lstm * N, H)  # hidden rows, then c_n rows (LSTM)
    assert sj.autograd.gradcheck(fn, inputs)


def test_fused_lstm_gradcheck_without_bias_and_state():
    rng = np.random.default_rng(4)
    x, w_ih, w_hh = (sj.tensor(rng.uniform(-1, 1, s), dtype=sj.float64, requires_grad=True)
                     for s in [(3, 2, 2), (8, 2), (8, 2)])

    def fn(x, w_ih, w_hh):
        return LSTMSequence.apply(x, None, None, w_ih, w_hh, None, None, reverse=True)

    assert sj.autograd.gradcheck(fn, (x, w_ih, w_hh))


def test_module_gradcheck_two_layer_bidirectional_gru():
    m = nn.GRU(2, 3, num_layers=2, bidirectional=True, batch_first=True).double()
    rng = np.random.default_rng(5)
    x = sj.tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)
    h0 = sj.tensor(rng.standard_normal((4, 2, 3)), requires_grad=True)

    def fn(x, h0):
        out, h_n = m(x, h0)
        return sj.cat([out.reshape(-1), h_n.reshape(-1)])

    assert sj.autograd.gradcheck(fn, (x, h0))


def test_extreme_preactivations_saturate_without_nan(kernel_path):
    m = nn.LSTM(2, 3)
    with sj.no_grad():
        for p in m.parameters():
            p.data[...] = 50.0
    out, (h, c) = m(sj.tensor(np.full((4, 1, 2), 100.0, np.float32)))
    assert np.isfinite(out.data).all() and np.isfinite(c.data).all()
    np.testing.assert_allclose(out.data[-1], np.tanh(4.0), rtol=1e-6)  # c_t = t + 1: 1, 2, ...
    m2 = nn.GRU(2, 3)
    with sj.no_grad():
        for p in m2.parameters():
            p.data[...] = -50.0
    out2, _ = m2(sj.tensor(np.full((4, 1, 2), 100.0, np.float32)))
    np.testing.assert_allclose(out2.data, -1.0)  # z = 0, n = tanh(-huge) = -1


def test_take_rows_gradcheck():
    a = sj.tensor(np.random.default_rng(6).standard_normal((6, 2)), requires_grad=True)
    assert sj.autograd.gradcheck(lambda a: TakeRows.apply(a, start=2, stop=5, shape=(3, 2)),
                                 (a,))


def test_pooled_memory_is_reused_only_after_every_view_is_gone():
    shape = (128, 1024)  # 512 KiB: pooled
    a = _POOL.empty(shape, np.float32)
    ptr = a.ctypes.data
    view = a[3:].T[::2]  # a view of a view keeps the memory leased
    del a
    b = _POOL.empty(shape, np.float32)
    assert b.ctypes.data != ptr
    del view
    c = _POOL.empty(shape, np.float32)
    assert c.ctypes.data == ptr and c.shape == shape and c.dtype == np.float32
    d = _POOL.empty((256, 512), np.float64)  # any request of the same byte size
    del c
    assert _POOL.empty((512, 256), np.float32).ctypes.data == ptr
    assert d.dtype == np.float64


def test_retain_graph_backward_twice_gives_the_same_gradients():
    m = nn.LSTM(8, 64, batch_first=True)  # big enough for pooled work arrays
    x = sj.tensor(np.random.default_rng(0).standard_normal((16, 40, 8)).astype(np.float32),
                  requires_grad=True)
    out, (h, c) = m(x)
    loss = (out * out).sum() + c.sum()
    loss.backward(retain_graph=True)
    first = [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in m.parameters()]
    for _ in range(2):  # other work that takes buffers from the pool in between
        m(x)[0].sum().backward()
    x.grad = None
    m.zero_grad()
    loss.backward()
    second = [x.grad.data] + [p.grad.data for p in m.parameters()]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- cells

CELLS = {"rnn_tanh": ("RNNCell", {"nonlinearity": "tanh"}),
         "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}),
         "lstm": ("LSTMCell", {}), "gru": ("GRUCell", {})}


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("batched,with_hx", [(True, True), (True, False), (False, True)])
def test_cell_matches_torch(kind, batched, with_hx):
    torch = pytest.importorskip("torch")
    cls, extra = CELLS[kind]
    torch.manual_seed(0)
    tc = getattr(torch.nn, cls)(4, 5, **extra)
    sc = getattr(nn, cls)(4, 5, **extra)
    sc.load_state_dict({k: v.detach().numpy() for k, v in tc.state_dict().items()}, strict=True)
    rng = np.random.default_rng(2)
    lead = (3,) if batched else ()
    x = rng.standard_normal(lead + (4,)).astype(np.float32)
    n_states = 2 if kind == "lstm" else 1
    states = [rng.standard_normal(lead + (5,)).astype(np.float32) for _ in range(n_states)]
    xt, xs = torch.tensor(x, requires_grad=True), sj.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    ss = [sj.tensor(s, requires_grad=True) for s in states]
    if kind == "lstm":
        t_outs = list(tc(xt, tuple(st) if with_hx else None))
        s_outs = list(sc(xs, tuple(ss) if with_hx else None))
    else:
        t_outs = [tc(xt, st[0] if with_hx else None)]
        s_outs = [sc(xs, ss[0] if with_hx else None)]
    grads = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in t_outs]
    for s, t in zip(s_outs, t_outs):
        assert s.shape == tuple(t.shape) and s.dtype == np.float32
        _close(s.data, t, "cell output")
    _weighted_sum(t_outs, [torch.tensor(g) for g in grads]).backward()
    _weighted_sum(s_outs, [sj.tensor(g) for g in grads]).backward()
    _close(xs.grad.data, xt.grad, "cell input gradient")
    if with_hx:
        for s, t in zip(ss, st):
            _close(s.grad.data, t.grad, "cell state gradient")
    sp = dict(sc.named_parameters())
    for name, p in tc.named_parameters():
        _close(sp[name].grad.data, p.grad, f"cell gradient of {name}")


def test_cell_unrolled_equals_layer():
    cell = nn.LSTMCell(3, 4)
    layer = nn.LSTM(3, 4)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()}, strict=True)
    x = sj.tensor(np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32))
    h = c = sj.zeros(2, 4)
    outs = []
    for t in range(6):
        h, c = cell(x[t], (h, c))
        outs.append(h)
    out, (h_n, c_n) = layer(x)
    np.testing.assert_allclose(sj.stack(outs).data, out.data, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c.data, c_n.data[0], rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- dropout


def test_dropout_between_layers_only_in_training_and_seeded():
    m = nn.LSTM(3, 4, num_layers=3, dropout=0.5)
    x = sj.tensor(np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32))
    m.eval()
    ref, _ = m(x)
    again, _ = m(x)
    np.testing.assert_array_equal(ref.data, again.data)
    m.train()
    sj.manual_seed(7)
    a, _ = m(x)
    sj.manual_seed(7)
    b, _ = m(x)
    c, _ = m(x)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, ref.data)
    assert not np.allclose(a.data, c.data)


def test_dropout_one_zeroes_the_next_layers_input_not_the_output():
    sj.manual_seed(0)
    m = nn.GRU(3, 4, num_layers=2, dropout=1.0)
    single = nn.GRU(4, 4)
    single.load_state_dict({k.replace("_l1", "_l0"): v for k, v in m.state_dict().items()
                            if "_l1" in k}, strict=True)
    x = sj.tensor(np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32))
    out, _ = m(x)  # training mode: layer 2 sees zeros; its own output is not dropped
    expected, _ = single(sj.zeros(5, 2, 4))
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-6)
    assert np.abs(out.data).min() > 0


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers=1"):
        nn.LSTM(3, 4, dropout=0.2)


# ----------------------------------------------------------------------------- errors


def test_wrong_ndim_names_the_3d_layout():
    m = nn.LSTM(32, 8)
    with pytest.raises(ValueError) as e:
        m(sj.zeros(2, 3, 4, 32))
    msg = str(e.value)
    assert msg.startswith("LSTM") and "3-D" in msg and "(L, N, 32)" in msg
    assert "batch_first=False" in msg and "(N, L, 32) with batch_first=True" in msg
    assert "4-D" in msg and "(2, 3, 4, 32)" in msg
    with pytest.raises(ValueError, match=r"3-D input of shape \(N, L, 32\) with batch_first=True"):
        nn.GRU(32, 8, batch_first=True)(sj.zeros(32))


def test_wrong_feature_size_names_input_size():
    with pytest.raises(ValueError, match=r"RNN\(input_size=32\).*got shape \(5, 3, 16\)"):
        nn.RNN(32, 8)(sj.zeros(5, 3, 16))
    with pytest.raises(ValueError, match=r"\(L, 32\) unbatched.*got shape \(5, 16\)"):
        nn.LSTM(32, 8)(sj.zeros(5, 16))


def test_bad_hidden_state():
    m = nn.LSTM(3, 4, num_layers=2)
    x = sj.zeros(5, 2, 3)
    with pytest.raises(ValueError, match=r"h_0 of shape .* = \(2, 2, 4\), got \(1, 2, 4\)"):
        m(x, (sj.zeros(1, 2, 4), sj.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"c_0 .* got \(2, 3, 4\)"):
        m(x, (sj.zeros(2, 2, 4), sj.zeros(2, 3, 4)))
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        m(x, sj.zeros(2, 2, 4))
    with pytest.raises(ValueError, match=r"h_0 .* = \(1, 4\), got \(1, 2, 4\)"):
        nn.GRU(3, 4)(sj.zeros(5, 3), sj.zeros(1, 2, 4))


def test_bad_arguments_and_dtypes():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, 0)
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(TypeError, match="floating-point"):
        nn.LSTM(3, 4)(sj.tensor(np.zeros((2, 1, 3), np.int64)))
    with pytest.raises(ValueError, match=r"LSTMCell\(input_size=3, hidden_size=4\): expected "
                                         r"input of shape \(N, 3\)"):
        nn.LSTMCell(3, 4)(sj.zeros(2, 5))
    with pytest.raises(ValueError, match=r"GRUCell.*expected h of shape \(2, 4\)"):
        nn.GRUCell(3, 4)(sj.zeros(2, 3), sj.zeros(3, 4))


def test_repr_like_torch():
    assert repr(nn.LSTM(10, 20, num_layers=2, batch_first=True)) == \
        "LSTM(10, 20, num_layers=2, batch_first=True)"
    assert repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"
