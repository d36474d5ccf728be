"""The optional compiled (numba) kernels: the float32 exp they are built on, agreement with
the NumPy path they replace, when they are used, and the switch's error message."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import compiled, nn

numba = pytest.importorskip("numba")


_EXP = compiled.kernels().exp32


@numba.njit
def _exp_all(a, out):
    for j in range(a.size):
        out[j] = _EXP(a[j])


def test_exp32_relative_error_over_the_normal_range():
    x = np.concatenate([np.linspace(-87, 88, 200_001, dtype=np.float32),
                        np.float32([0.0, -0.0, 1e-30, -1e-30, 0.34657359, -0.34657359])])
    out = np.empty_like(x)
    _exp_all(x, out)
    ref = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - ref) / ref) < 2.5e-7
    assert out.dtype == np.float32


def test_exp32_clamps_instead_of_overflowing_and_keeps_nan():
    x = np.float32([-1e4, -100.0, 100.0, 1e4, np.inf, -np.inf, np.nan])
    out = np.empty_like(x)
    _exp_all(x, out)
    np.testing.assert_allclose(out[:6], np.exp(np.float64([-87, -87, 88, 88, 88, -87])),
                               rtol=3e-7)
    assert np.isnan(out[6])


def _lstm_run(flag, x, h0c0, **kw):
    sj.manual_seed(0)
    m = nn.LSTM(x.shape[-1], 48, **kw)
    xs = sj.tensor(x, requires_grad=True)
    state = tuple(sj.tensor(s, requires_grad=True) for s in h0c0) if h0c0 else None
    with compiled.use_compiled(flag):
        out, (h, c) = m(xs, state)
        ((out * out).sum() + (h * 3).sum() + (c * c).sum()).backward()
    grads = [xs.grad.data] + [s.grad.data for s in state or ()]
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


def test_float64_and_switched_off_runs_take_the_numpy_path(monkeypatch):
    calls = []
    kern = compiled.kernels()
    monkeypatch.setattr(kern, "lstm_forward_step", lambda *a, **k: calls.append(a))
    m = nn.LSTM(3, 4).double()
    m(sj.tensor(np.ones((2, 1, 3))))
    with compiled.use_compiled(False):
        nn.LSTM(3, 4)(sj.tensor(np.ones((2, 1, 3), np.float32)))
    assert calls == []
    with compiled.use_compiled(True):
        nn.LSTM(3, 4)(sj.tensor(np.ones((2, 1, 3), np.float32)))
    assert len(calls) == 2  # one per step: the float32 run did take the compiled path


def test_use_compiled_without_numba_names_the_missing_package(monkeypatch):
    monkeypatch.setattr(compiled, "_AVAILABLE", False)
    with pytest.raises(RuntimeError, match="pip install numba"):
        with compiled.use_compiled(True):
            pass
    with compiled.use_compiled(False):
        assert not compiled.enabled()
