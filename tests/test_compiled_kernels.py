"""The optional compiled kernels (shenjing/_ckernels.c through shenjing.compiled): the float32
exp they are built on, agreement with the NumPy paths they replace, when they are used, and
the switch's error message. Layer-level comparisons with torch on both paths live in
test_rnn.py and test_pool.py."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import compiled, nn

if not compiled.available():
    pytest.skip("shenjing._ckernels was not built (no C compiler at install)",
                allow_module_level=True)


def _gates(pre: np.ndarray, c_prev: np.ndarray):
    """One compiled LSTM step on given pre-activations (H = rows, N = columns), no bias."""
    H, N = c_prev.shape
    G = np.empty((1, 4 * H, N), np.float32)
    G[0] = -pre * np.repeat(np.float32([1, 1, 2, 1]), H)[:, None]  # the kernel's scaled form
    cs = np.stack([c_prev, np.zeros_like(c_prev)])
    tcs, h = np.empty((1, H, N), np.float32), np.empty((H, N), np.float32)
    zh, outt = np.empty((H, 1, N), np.float32), np.empty((1, N, H), np.float32)
    step = compiled.kernels().lstm_forward(G, np.zeros(4 * H, np.float32), cs, tcs, zh, h, outt)
    step(0, 0, 1, -1)  # the last step: h_t goes to h (no next step's rows in Z)
    np.testing.assert_array_equal(outt[0], h.T)  # and transposed to the output rows
    return G[0], cs[1], tcs[0], h


def test_gate_activations_are_float32_accurate_over_the_whole_range():
    """sigmoid and tanh through the polynomial exp: within a few float32 ulps of float64."""
    H, N = 4, 50_000
    pre = np.linspace(-40, 40, 4 * H * N, dtype=np.float32).reshape(4 * H, N)
    c_prev = np.linspace(-60, 60, H * N, dtype=np.float32).reshape(H, N)
    g, c, tc, h = _gates(pre, c_prev)
    p64 = pre.astype(np.float64)
    sig = 1 / (1 + np.exp(-p64))
    for rows in (slice(0, 2 * H), slice(3 * H, 4 * H)):  # sigmoid gates, relative to 4e-7
        np.testing.assert_allclose(g[rows], sig[rows], rtol=4e-7, atol=1e-30)
    # tanh as 2 sigmoid(2a) - 1 (the NumPy path's formula too): 2e-7 absolute near 0
    np.testing.assert_allclose(g[2 * H:3 * H], np.tanh(p64[2 * H:3 * H]), rtol=4e-7, atol=2e-7)
    c64 = sig[H:2 * H] * c_prev + sig[:H] * np.tanh(p64[2 * H:3 * H])
    np.testing.assert_allclose(c, c64, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(tc, np.tanh(c.astype(np.float64)), rtol=4e-7, atol=2e-7)


def test_saturation_and_nan():
    H = 1
    pre = np.float32([[-1e4, 1e4, np.nan], [1e4, -1e4, 0], [1e4, -1e4, 0], [0, 0, 0]])
    g, c, tc, h = _gates(pre, np.zeros((H, 3), np.float32))
    assert g[0, 0] == pytest.approx(0, abs=1e-37) and g[0, 1] == 1.0  # i saturates, no inf
    assert g[2, 0] == 1.0 and g[2, 1] == -1.0  # the cell gate's tanh
    assert np.isnan(g[0, 2]) and np.isnan(h[0, 2])  # a NaN pre-activation is not hidden


def _lstm_run(flag, x, states, **kw):
    sj.manual_seed(0)
    m = nn.LSTM(x.shape[-1], 48, **kw)
    xs = sj.tensor(x, requires_grad=True)
    state = tuple(sj.tensor(s, requires_grad=True) for s in states)
    with compiled.use_compiled(flag):
        out, (h, c) = m(xs, state)
        ((out * out).sum() + (h * 3).sum() + (c * c).sum()).backward()
    grads = [xs.grad.data] + [s.grad.data for s in state]
    return [out.data, h.data, c.data] + grads + [p.grad.data for p in m.parameters()]


@pytest.mark.parametrize("kw", [dict(batch_first=True), dict(bidirectional=True, bias=False),
                                dict(num_layers=2)], ids=["batch_first", "bidir-nobias", "2layer"])
def test_compiled_lstm_equals_numpy_path(kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 7, 5)).astype(np.float32) * 2
    D = 2 if kw.get("bidirectional") else 1
    L = kw.get("num_layers", 1)
    states = [rng.standard_normal((L * D, 9 if kw.get("batch_first") else 7, 48))
              .astype(np.float32) for _ in range(2)]
    fast, ref = _lstm_run(True, x, states, **kw), _lstm_run(False, x, states, **kw)
    for a, b in zip(fast, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_step_kernels_refuse_arrays_they_cannot_address():
    """The step functions take base addresses and row strides: a transposed output or a
    float64 gate array is refused with the layout named, not read as garbage."""
    H, N, T = 4, 3, 2
    G, h = np.zeros((T, 4 * H, N), np.float32), np.zeros((H, N), np.float32)
    cs, tcs = np.zeros((T + 1, H, N), np.float32), np.zeros((T, H, N), np.float32)
    zh, bias = np.zeros((H, T, N), np.float32), np.zeros(4 * H, np.float32)
    kern = compiled.kernels()
    strided = np.zeros((T, H, N), np.float32).transpose(0, 2, 1)
    with pytest.raises(ValueError, match=r"contiguous rows, got float32 of shape \(2, 3, 4\)"):
        kern.lstm_forward(G, bias, cs, tcs, zh, h, strided)
    with pytest.raises(ValueError, match="got float64"):
        kern.lstm_backward(G.astype(np.float64), tcs, cs, np.zeros((T, N, H), np.float32), h,
                           h.copy(), np.zeros((4 * H, T, N), np.float32))


def test_step_functions_keep_their_arrays_alive():
    """The step functions write through raw addresses: they hold the arrays, so a caller that
    drops its own names cannot leave them writing into freed memory."""
    import gc
    import weakref

    H, N, T = 4, 3, 2
    kern = compiled.kernels()
    G = np.zeros((T, 4 * H, N), np.float32)
    probe = weakref.ref(G)
    fwd = kern.lstm_forward(G, np.zeros(4 * H, np.float32), np.zeros((T + 1, H, N), np.float32),
                            np.zeros((T, H, N), np.float32), np.zeros((H, T, N), np.float32),
                            np.zeros((H, N), np.float32), np.zeros((T, N, H), np.float32))
    del G
    gc.collect()
    assert probe() is not None
    fwd(0, 0, 1, 1)
    gates = probe()[0]  # step 0's activations, from zero pre-activations: written into G[0]
    np.testing.assert_array_equal(np.delete(gates, np.s_[2 * H:3 * H], axis=0), 0.5)
    np.testing.assert_array_equal(gates[2 * H:3 * H], 0.0)  # the cell gate's tanh(0)
    del fwd, gates
    gc.collect()
    assert probe() is None  # and released with the step function

    dG = np.zeros((4 * H, T, N), np.float32)
    probe = weakref.ref(dG)
    bwd = kern.lstm_backward(np.full((T, 4 * H, N), 0.5, np.float32),
                             np.zeros((T, H, N), np.float32), np.zeros((T + 1, H, N), np.float32),
                             np.ones((T, N, H), np.float32), np.zeros((H, N), np.float32),
                             np.zeros((H, N), np.float32), dG)
    del dG
    gc.collect()
    bwd(1, 1)
    # all gates 0.5, tanh(c) = 0, dh = 1 from the output rows: dc = 0.5, d pre_i = 0.5 * 0.5 *
    # 0.25, d pre_g = 0.5 * 0.5 * 0.75, written into step 1's block of dG only
    np.testing.assert_array_equal(probe()[:H, 1], 0.0625)
    np.testing.assert_array_equal(probe()[2 * H:3 * H, 1], 0.1875)
    assert not probe()[:, 0].any()
    del bwd
    gc.collect()
    assert probe() is None


def test_float64_and_switched_off_runs_take_the_numpy_path(monkeypatch):
    calls = []
    kern = compiled.kernels()
    real = kern.lstm_forward
    monkeypatch.setattr(kern, "lstm_forward", lambda *a: calls.append(a) or real(*a))
    nn.LSTM(3, 4).double()(sj.tensor(np.ones((2, 1, 3))))
    with compiled.use_compiled(False):
        nn.LSTM(3, 4)(sj.tensor(np.ones((2, 1, 3), np.float32)))
    assert calls == []
    with compiled.use_compiled(True):
        nn.LSTM(3, 4)(sj.tensor(np.ones((2, 1, 3), np.float32)))
    assert len(calls) == 1  # the float32 run did take the compiled path


def test_use_compiled_without_the_extension_says_how_to_build_it(monkeypatch):
    monkeypatch.setattr(compiled, "_AVAILABLE", False)
    with pytest.raises(RuntimeError, match="C extension was not built"):
        with compiled.use_compiled(True):
            pass
    with compiled.use_compiled(False):
        assert not compiled.enabled()


@pytest.mark.parametrize("kw", [{}, dict(weight_decay=0.1), dict(amsgrad=True, maximize=True),
                                dict(weight_decay=0.1, decoupled_weight_decay=True)],
                         ids=["plain", "l2", "amsgrad-maximize", "adamw"])
def test_compiled_adam_gives_the_numpy_kernels_bits(kw):
    """One pass in C, same operation order and scalar rounding as the NumPy passes: the
    trajectories are identical (and the NumPy one is compared with torch in test_optim)."""
    rng = np.random.default_rng(0)
    start = rng.standard_normal((300, 70)).astype(np.float32)
    grads = [rng.standard_normal(start.shape).astype(np.float32) for _ in range(5)]
    finals = []
    for flag in (True, False):
        p = nn.Parameter(sj.tensor(start.copy()))
        opt = sj.optim.Adam([p], lr=1e-2, **kw)
        with compiled.use_compiled(flag):
            for g in grads:
                p.grad = sj.tensor(g)
                opt.step()
        finals.append(p.numpy())
    assert np.abs(finals[0] - start).max() > 1e-2  # it moved
    np.testing.assert_array_equal(finals[0], finals[1])


@pytest.mark.parametrize("kw", [{}, dict(momentum=0.9), dict(momentum=0.9, dampening=0.3),
                                dict(momentum=0.9, nesterov=True, weight_decay=0.01),
                                dict(momentum=0.5, weight_decay=0.1, maximize=True),
                                dict(weight_decay=0.1, maximize=True)],
                         ids=["plain", "momentum", "dampening", "nesterov-l2", "momentum-max",
                              "l2-max"])
@pytest.mark.parametrize("shape", [(300, 70), (600, 500)], ids=["small", "chunked"])
def test_compiled_sgd_gives_the_numpy_kernels_bits(kw, shape):
    """The one-pass SGD step rounds as the NumPy passes (which test_optim compares with
    torch), also for a parameter big enough that the NumPy path updates it in slices."""
    rng = np.random.default_rng(0)
    start = rng.standard_normal(shape).astype(np.float32)
    grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    finals = []
    for flag in (True, False):
        p = nn.Parameter(sj.tensor(start.copy()))
        opt = sj.optim.SGD([p], lr=0.05, **kw)
        with compiled.use_compiled(flag):
            for g in grads:
                p.grad = sj.tensor(g)
                opt.step()
        finals.append([p.numpy()] + [opt.state[p][k] for k in opt.state[p]])
    assert np.abs(finals[0][0] - start).max() > 1e-2  # it moved
    for a, b in zip(*finals):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(3, 5, 7), (17, 33, 19), (64, 40, 10)])
def test_tiled_copy_of_a_unit_first_view_is_exact(shape):
    memory = np.random.default_rng(1).standard_normal(shape[::-1]).astype(np.float32)
    view = memory.transpose(2, 1, 0)  # (N, T, E) over (E, T, N) memory
    out = np.empty(view.shape, np.float32)
    compiled.kernels().copy_unit_first(view, out)
    np.testing.assert_array_equal(out, view)


def test_embedding_gradient_through_a_conv1d_equals_the_numpy_path():
    """The TextCNN layout: embedding (N, T, E) -> transpose -> Conv1d; the gradient that
    reaches the embedding is a transposed view, copied by the compiled kernel."""
    idx = np.random.default_rng(2).integers(0, 30, (4, 20))
    grads = []
    for flag in (True, False):
        sj.manual_seed(0)
        emb, conv = nn.Embedding(30, 8), nn.Conv1d(8, 5, 3)
        with compiled.use_compiled(flag):
            conv(emb(sj.tensor(idx)).transpose(1, 2)).relu().sum().backward()
        grads.append(emb.weight.grad.numpy())
    assert np.abs(grads[0]).sum() > 0
    np.testing.assert_array_equal(grads[0], grads[1])


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 17, 1000, 100_003])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.999999])
def test_dropout_mask_is_numpys_pcg64_stream_bit_for_bit(n, p):
    """Same masks and the same generator state afterwards: a seeded run draws the same
    dropout masks with or without the extension."""
    from shenjing.ops.nn_ops import dropout_keep
    gens = [np.random.default_rng(n), np.random.default_rng(n)]
    for g in gens:
        g.random(3)  # not at the start of the stream
    masks = []
    for flag, g in zip((True, False), gens):
        with compiled.use_compiled(flag):
            masks.append(dropout_keep(g, (n,), p))
    np.testing.assert_array_equal(masks[0], masks[1])
    assert masks[0].dtype == bool
    assert gens[0].bit_generator.state == gens[1].bit_generator.state
    assert gens[0].random() == gens[1].random()


def test_inverted_dropout_pass_gives_the_numpy_bits_including_nan_and_signed_zero():
    from shenjing.ops.nn_ops import apply_keep
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10_007).astype(np.float32)
    x[:4] = [np.nan, np.inf, -1.0, -0.0]
    keep = rng.random(x.size) < 0.7
    keep[:4] = False
    outs = []
    for flag in (True, False):
        with compiled.use_compiled(flag), np.errstate(invalid="ignore"):
            outs.append(apply_keep(x, keep, 0.3))
    np.testing.assert_array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32))
    assert np.signbit(outs[0][2]) and np.isnan(outs[0][1])  # -1 * 0 = -0, inf * 0 = NaN


def test_mixed_dtypes_reach_the_float32_kernels_as_float32():
    """A float64 upstream gradient into a compiled pool, a float64 bias beside float32
    weights into the compiled LSTM: converted, not misread as float32 bytes."""
    from shenjing.ops.pool import MaxPool
    from shenjing.ops.rnn import LSTMSequence
    x = sj.tensor(np.arange(72, dtype=np.float32).reshape(2, 1, 6, 6), requires_grad=True)
    y = MaxPool.apply(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                      ceil_mode=False)
    y.backward(sj.tensor(np.full(y.shape, 2.0)))
    assert x.grad.dtype == np.float32 and x.grad.numpy().sum() == 2.0 * 18
    assert x.grad.numpy()[0, 0, 1, 1] == 2.0  # the bottom-right of each window wins
    r = np.random.default_rng(0)
    args = [sj.tensor(r.random(s).astype(np.float32)) for s in [(3, 2, 4)]] + [None, None] + \
        [sj.tensor(r.random(s).astype(np.float32)) for s in [(8, 4), (8, 2)]] + \
        [sj.tensor(r.random(8)), sj.tensor(r.random(8))]
    fast = LSTMSequence.apply(*args).numpy()
    with compiled.use_compiled(False):
        ref = LSTMSequence.apply(*args).numpy()
    np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", [((4, 3, 9, 11), (5, 3, 3, 3), 0, 1),
                                  ((2, 4, 8, 8), (6, 2, 3, 2), (1, 0), 2),
                                  ((8, 32, 13, 13), (16, 32, 3, 3), 1, 1)],
                         ids=["plain", "grouped-padded", "padded"])
def test_compiled_col2im_gives_the_numpy_input_gradient_bits(case):
    x_shape, w_shape, padding, groups = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    grads = []
    for flag in (True, False):
        xs = sj.tensor(x, requires_grad=True)
        with compiled.use_compiled(flag):
            y = sj.nn.functional.conv2d(xs, sj.tensor(w), padding=padding, groups=groups)
            y.backward(sj.tensor(rng.standard_normal(y.shape).astype(np.float32)))
        grads.append(xs.grad.numpy())
        rng = np.random.default_rng(3)  # the same upstream gradient for the second path
        rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    np.testing.assert_array_equal(grads[0], grads[1])
