"""Module hooks against torch 2.13: forward pre-hooks, forward hooks and full backward
(pre-)hooks see the same arguments, run in the same order, can replace inputs, outputs and
gradients the same way, and stop when their handle is removed."""

from __future__ import annotations

import numpy as np
import pytest
from nn_compare import load_from_torch

import shenjing as sj
from shenjing import nn

torch = pytest.importorskip("torch")


def _pair(make):
    tm, m = make(torch), make(sj)
    load_from_torch(m, tm)
    return m, tm


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _np(v):
    if v is None:
        return None
    return v.detach().numpy() if isinstance(v, torch.Tensor) else v.numpy()


def _run_both(m, tm, install, inputs, grad_seed=1):
    """Install hooks (install(module, log) -> handles) on both, run forward and a backward
    with the same random upstream gradient; return both logs, outputs and input grads."""
    results = []
    for mod, lib in ((m, sj), (tm, torch)):
        log = []
        handles = install(mod, log)
        xs = [lib.tensor(a, requires_grad=True) if lib is sj else
              torch.from_numpy(a.copy()).requires_grad_() for a in inputs]
        out = mod(*xs)
        g = np.random.default_rng(grad_seed).standard_normal(tuple(out.shape)).astype(
            np.float32)
        out.backward(sj.tensor(g) if lib is sj else torch.from_numpy(g))
        results.append((log, _np(out), [_np(x.grad) for x in xs], handles))
    return results


def _assert_logs_equal(log, tlog):
    assert [e[0] for e in log] == [e[0] for e in tlog]
    for e, te in zip(log, tlog):
        assert len(e) == len(te), e[0]
        for a, b in zip(e[1:], te[1:]):
            if isinstance(b, tuple):
                assert len(a) == len(b), e[0]
                for u, v in zip(a, b):
                    assert (u is None) == (v is None), e[0]
                    if v is not None:
                        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6, err_msg=e[0])


def _tuple(vals):
    return tuple(_np(v) for v in vals)


def test_hooks_see_what_torch_sees_in_order():
    m, tm = _pair(lambda lib: lib.nn.Linear(4, 3))

    def install(mod, log):
        return [
            mod.register_forward_pre_hook(lambda md, a: log.append(("pre", _tuple(a)))),
            mod.register_forward_hook(lambda md, a, o: log.append(("fwd", _tuple(a),
                                                                   (_np(o),)))),
            mod.register_full_backward_pre_hook(
                lambda md, go: log.append(("bw_pre", _tuple(go)))),
            mod.register_full_backward_hook(
                lambda md, gi, go: log.append(("bw", _tuple(gi), _tuple(go)))),
        ]

    (log, out, grads, _), (tlog, tout, tgrads, _) = _run_both(m, tm, install, [_x(5, 4)])
    _assert_logs_equal(log, tlog)
    assert [e[0] for e in log] == ["pre", "fwd", "bw_pre", "bw"]
    np.testing.assert_allclose(out, tout, rtol=1e-5)


def test_hooks_replace_inputs_outputs_and_gradients_as_torch():
    m, tm = _pair(lambda lib: lib.nn.Bilinear(3, 2, 4))

    def install(mod, log):
        return [
            mod.register_forward_pre_hook(lambda md, a: (a[0] * 2, a[1])),
            mod.register_forward_hook(lambda md, a, o: o + 1),
            mod.register_full_backward_pre_hook(lambda md, go: (go[0] * 3,)),
            mod.register_full_backward_hook(
                lambda md, gi, go: (log.append(("bw", _tuple(gi), _tuple(go))),
                                    (gi[0] * 0.5, None))[1]),
        ]

    (log, out, grads, _), (tlog, tout, tgrads, _) = _run_both(m, tm, install,
                                                              [_x(5, 3), _x(5, 2, seed=1)])
    np.testing.assert_allclose(out, tout, rtol=1e-5, atol=1e-6)
    _assert_logs_equal(log, tlog)
    np.testing.assert_allclose(grads[0], tgrads[0], rtol=1e-5, atol=1e-6)
    assert grads[1] is None and tgrads[1] is None  # the hook dropped that gradient
    gw = dict(m.named_parameters())["weight"].grad.numpy()
    np.testing.assert_allclose(gw, tm.weight.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_prepend_with_kwargs_and_remove():
    order = []
    m = nn.Linear(2, 2)
    h1 = m.register_forward_hook(lambda md, a, o: order.append("first"))
    h2 = m.register_forward_hook(lambda md, a, o: order.append("prepended"), prepend=True)
    h3 = m.register_forward_pre_hook(
        lambda md, a, kw: (order.append(("kw", sorted(kw))), None)[1], with_kwargs=True)
    m(sj.zeros(1, 2))
    assert order == [("kw", []), "prepended", "first"]
    for h in (h1, h2, h3):
        h.remove()
    order.clear()
    m(sj.zeros(1, 2))
    assert order == []
    with m.register_forward_hook(lambda md, a, o: order.append("ctx")):
        m(sj.zeros(1, 2))
    m(sj.zeros(1, 2))
    assert order == ["ctx"]


def test_forward_hook_with_kwargs_sees_keyword_arguments():
    seen = []
    mha = nn.MultiheadAttention(4, 2)
    mha.register_forward_hook(lambda md, a, kw, o: seen.append(sorted(kw)), with_kwargs=True)
    x = sj.zeros(3, 1, 4)
    mha(x, x, x, need_weights=False)
    assert seen == [["need_weights"]]


def test_backward_hook_on_module_whose_input_needs_no_grad():
    """torch calls the hook with grad_input (None,) once the output gradient is known, and
    warns that it does."""
    for lib in (torch, sj):
        seen = []
        m = lib.nn.Linear(3, 2)
        m.register_full_backward_hook(lambda md, gi, go, seen=seen: seen.append((gi, len(go))))
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            m(lib.zeros(4, 3)).sum().backward()
        assert len(seen) == 1 and seen[0][0] == (None,) and seen[0][1] == 1


def test_forward_hooks_collect_intermediate_activations():
    """The feature-extraction pattern of the tutorials."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    feats = {}
    for name, mod in model.named_children():
        mod.register_forward_hook(lambda md, a, o, name=name: feats.__setitem__(name, o))
    out = model(sj.randn(3, 4))
    assert set(feats) == {"0", "1", "2"}
    np.testing.assert_array_equal(feats["2"].numpy(), out.numpy())
    np.testing.assert_array_equal(feats["1"].numpy(), np.maximum(feats["0"].numpy(), 0))


def test_hook_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        nn.Linear(2, 2).register_forward_hook(3)
