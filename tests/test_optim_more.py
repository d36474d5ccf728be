"""shenjing.optim beyond the first five optimizers: each against torch.optim step by step.

Reuses the MLP, weights and batches of tests/test_optim.py: both frameworks start from the
same weights, see the same 20+ batches, and every parameter is compared after every step
(float64, rtol 1e-10). Also: RMSprop's Keras placement of eps against a NumPy reference,
gradient clipping against torch.nn.utils, state_dict round trips and bad hyper-parameters.
"""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import optim
from tests.test_optim import batches, initial_weights, mlp_loss, sj_params, sj_train_step


# ----------------------------------------------------------------------------- RMSprop (Keras)
def rmsprop_reference(weights, grads_of, steps, lr, alpha, eps, momentum=0.0, centered=False,
                      weight_decay=0.0):
    """Plain NumPy RMSprop with eps under the square root (Keras 3's placement)."""
    x = [w.copy() for w in weights]
    v = [np.zeros_like(w) for w in weights]
    gbar = [np.zeros_like(w) for w in weights]
    buf = [np.zeros_like(w) for w in weights]
    history = []
    for k in range(steps):
        grads = grads_of(x, k)
        for i, g in enumerate(grads):
            g = g + weight_decay * x[i]
            v[i] = alpha * v[i] + (1 - alpha) * g * g
            denom = v[i]
            if centered:
                gbar[i] = gbar[i] + (1 - alpha) * (g - gbar[i])
                denom = v[i] - gbar[i] ** 2
            step = g / np.sqrt(denom + eps)
            if momentum > 0:
                buf[i] = momentum * buf[i] + step
                step = buf[i]
            x[i] = x[i] - lr * step
        history.append([a.copy() for a in x])
    return history


def numpy_mlp_grads(data):
    """Gradients of mlp_loss computed by shenjing's autograd on fresh leaves (no optimizer)."""
    def grads_of(x, k):
        params = sj_params(x)
        xb, yb = data[k]
        mlp_loss(params, sj.tensor(xb), sj.tensor(yb)).backward()
        return [p.grad.numpy().copy() for p in params]
    return grads_of


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.01, alpha=0.9, eps=1e-3),
    dict(lr=0.01, alpha=0.99, eps=1e-2, centered=True),
    dict(lr=0.005, alpha=0.9, eps=1e-3, momentum=0.8),
    dict(lr=0.005, alpha=0.9, eps=1e-3, momentum=0.5, centered=True, weight_decay=0.1),
])
def test_rmsprop_eps_inside_sqrt_matches_numpy_reference(kwargs):
    data = batches(np.float64, 20)
    weights = initial_weights(np.float64)
    expected = rmsprop_reference(weights, numpy_mlp_grads(data), 20, **kwargs)
    params = sj_params(weights)
    opt = optim.RMSprop(params, eps_inside_sqrt=True, **kwargs)
    for k, (x, y) in enumerate(data):
        sj_train_step(opt, params, x, y)
        for i, p in enumerate(params):
            np.testing.assert_allclose(p.numpy(), expected[k][i], rtol=1e-10, atol=1e-13,
                                       err_msg=f"{kwargs}: param {i} after step {k + 1}")


def test_rmsprop_eps_placement_changes_the_update_and_default_is_torchs():
    torch = pytest.importorskip("torch")
    w = np.array([0.5, -1.0, 2.0])
    g = np.array([1e-3, -2e-3, 0.5])
    results = {}
    for inside in (False, True):
        p = sj.tensor(w.copy(), requires_grad=True)
        opt = optim.RMSprop([p], lr=0.1, eps=1e-4, eps_inside_sqrt=inside)
        p.grad = sj.tensor(g)
        opt.step()
        results[inside] = p.numpy().copy()
        assert opt.param_groups[0]["eps_inside_sqrt"] is inside
    v = 0.01 * g * g
    np.testing.assert_allclose(results[True], w - 0.1 * g / np.sqrt(v + 1e-4), rtol=1e-14)
    tp = torch.tensor(w.copy(), requires_grad=True)
    tp.grad = torch.tensor(g)
    torch.optim.RMSprop([tp], lr=0.1, eps=1e-4).step()
    np.testing.assert_allclose(results[False], tp.detach().numpy(), rtol=1e-14)
    assert not np.allclose(results[True], results[False], rtol=1e-3)


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    from shenjing.nn.utils import clip_grad_norm_

    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s) for s in [(4, 3), (3,), (2, 2, 2)]]
    sp = [sj.tensor(np.zeros(g.shape), requires_grad=True) for g in grads]
    tp = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for s, t, g in zip(sp, tp, grads):
        s.grad, t.grad = sj.tensor(g.copy()), torch.tensor(g.copy())
    sp.append(sj.tensor(np.zeros(2), requires_grad=True))  # no grad: ignored by both
    tp.append(torch.zeros(2, dtype=torch.float64, requires_grad=True))
    total_s = clip_grad_norm_(sp, max_norm, norm_type=norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(float(total_s.item()), float(total_t), rtol=1e-12)
    for s, t in zip(sp[:3], tp[:3]):
        np.testing.assert_allclose(s.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    if max_norm < 1.0:  # clipping happened: the clipped norm is max_norm (up to 1e-6)
        np.testing.assert_allclose(float(torch.nn.utils.get_total_norm(
            [torch.from_numpy(s.grad.numpy()) for s in sp[:3]], norm_type)), max_norm,
            rtol=1e-5)


def test_clip_grad_norm_nonfinite_and_value_match_torch():
    torch = pytest.importorskip("torch")
    from shenjing.nn.utils import clip_grad_norm_, clip_grad_value_

    g = np.array([1.0, -np.inf, 0.5])
    s = sj.tensor(np.zeros(3), requires_grad=True)
    t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    s.grad, t.grad = sj.tensor(g.copy()), torch.tensor(g.copy())
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([s], 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_([t], 1.0, error_if_nonfinite=True)
    g = np.random.default_rng(0).standard_normal(3)
    s.grad, t.grad = sj.tensor(g.copy()), torch.tensor(g.copy())
    clip_grad_value_(s, 0.3)
    torch.nn.utils.clip_grad_value_(t, 0.3)
    np.testing.assert_array_equal(s.grad.numpy(), t.grad.numpy())
    assert np.abs(s.grad.numpy()).max() == 0.3


# ----------------------------------------------------------------------------- step for step
CONFIGS = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1)),
    ("Adamax", dict(lr=0.01, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, momentum_decay=0.05, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1,
                   decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.01, eps=1e-3, maximize=True)),
    ("RAdam", dict()),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.8))),  # rectified from step 4: both branches
    ("RAdam", dict(lr=0.01, betas=(0.7, 0.8), weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.8), weight_decay=0.1, decoupled_weight_decay=True,
                   maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1))),
    ("Rprop", dict(lr=0.05, maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.1, lambd=0.01, alpha=0.5, t0=5, weight_decay=0.1)),
    ("ASGD", dict(lr=0.1, t0=0, maximize=True)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
       for name, kw in CONFIGS]


def run_pair(torch, name, kwargs, dtype, steps=25, weights=None):
    """Both optimizers over the same batches; yields (step, sj params, torch params, sj
    optimizer, torch optimizer) after each step."""
    weights = initial_weights(dtype) if weights is None else weights
    sp = sj_params(weights)
    tp = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    so = getattr(optim, name)(sp, **kwargs)
    to = getattr(torch.optim, name)(tp, **kwargs)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    for k, (x, y) in enumerate(batches(dtype, steps)):
        sj_train_step(so, sp, x, y, sign)
        to.zero_grad()
        mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y), sign).backward()
        to.step()
        yield k, sp, tp, so, to


def assert_same_state(so, to, rtol):
    """Every state entry of torch's state_dict equals shenjing's (same keys, same values)."""
    s_state, t_state = so.state_dict()["state"], to.state_dict()["state"]
    assert sorted(s_state) == sorted(t_state)
    for index, t_entry in t_state.items():
        assert set(s_state[index]) == set(t_entry), index
        for key, t_value in t_entry.items():
            np.testing.assert_allclose(np.asarray(s_state[index][key], np.float64),
                                       t_value.double().numpy(), rtol=rtol, atol=1e-12,
                                       err_msg=f"state {index}/{key}")


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch_float64_every_step(name, kwargs):
    torch = pytest.importorskip("torch")
    for step in run_pair(torch, name, kwargs, np.float64):
        k, sp, tp, so, to = step
        for i, (s, t) in enumerate(zip(sp, tp)):
            np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name}{kwargs}: param {i} after step {k + 1}")
    assert_same_state(so, to, rtol=1e-10)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch_float32_and_keeps_dtype(name, kwargs):
    torch = pytest.importorskip("torch")
    for step in run_pair(torch, name, kwargs, np.float32, steps=20):
        k, sp, tp, so, _ = step
        for i, (s, t) in enumerate(zip(sp, tp)):
            assert s.numpy().dtype == np.float32, f"param {i} became {s.numpy().dtype}"
            np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=2e-5, atol=2e-6,
                                       err_msg=f"{name}{kwargs}: param {i} after step {k + 1}")
    for st in so.state.values():
        for key, v in st.items():
            assert v.dtype == np.float32, f"{name} state {key} is {v.dtype}"


# ----------------------------------------------------------------------------- LBFGS
LBFGS_CONFIGS = [
    dict(lr=0.5, max_iter=5),
    dict(lr=1, max_iter=10, history_size=3),
    dict(lr=1, max_iter=8, line_search_fn="strong_wolfe"),
    dict(lr=1, max_iter=12, history_size=4, line_search_fn="strong_wolfe", max_eval=15),
    dict(lr=0.8, max_iter=4, tolerance_change=1e-3, line_search_fn="strong_wolfe"),
]


@pytest.mark.parametrize("kwargs", LBFGS_CONFIGS, ids=[str(k) for k in LBFGS_CONFIGS])
def test_lbfgs_matches_torch_with_closure(kwargs):
    torch = pytest.importorskip("torch")
    weights = initial_weights(np.float64)
    x, y = (np.concatenate(a) for a in zip(*batches(np.float64, 4)))  # one full batch
    sp = sj_params(weights)
    tp = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    so, to = optim.LBFGS(sp, **kwargs), torch.optim.LBFGS(tp, **kwargs)
    s_calls, t_calls = [], []

    def s_closure():
        so.zero_grad()
        loss = mlp_loss(sp, sj.tensor(x), sj.tensor(y))
        loss.backward()
        s_calls.append(float(loss.item()))
        return loss

    def t_closure():
        to.zero_grad()
        loss = mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y))
        loss.backward()
        t_calls.append(float(loss.item()))
        return loss

    for k in range(3):
        s_loss, t_loss = so.step(s_closure), to.step(t_closure)
        assert float(s_loss.item()) == pytest.approx(float(t_loss.item()), rel=1e-10)
        assert len(s_calls) == len(t_calls), f"closure calls differ at step {k + 1}"
        np.testing.assert_allclose(s_calls, t_calls, rtol=1e-9)
        for i, (s, t) in enumerate(zip(sp, tp)):
            np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-8, atol=1e-10,
                                       err_msg=f"param {i} after step {k + 1}")
    s_state, t_state = so.state[sp[0]], to.state[tp[0]]
    assert s_state["n_iter"] == t_state["n_iter"]
    assert s_state["func_evals"] == t_state["func_evals"]
    assert len(s_state["old_dirs"]) == len(t_state["old_dirs"])
    assert s_calls[-1] < s_calls[0] * 0.8  # it did optimize


def test_lbfgs_float32_keeps_dtype_and_follows_torch():
    torch = pytest.importorskip("torch")
    weights = initial_weights(np.float32)
    x, y = (np.concatenate(a) for a in zip(*batches(np.float32, 4)))
    sp = sj_params(weights)
    tp = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    kwargs = dict(max_iter=6, line_search_fn="strong_wolfe")
    so, to = optim.LBFGS(sp, **kwargs), torch.optim.LBFGS(tp, **kwargs)
    so.step(make_closure(so, sp, x, y))

    def t_closure():
        to.zero_grad()
        loss = mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y))
        loss.backward()
        return loss

    to.step(t_closure)
    for s, t in zip(sp, tp):
        assert s.numpy().dtype == np.float32
        np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-3, atol=1e-5)
    state = so.state[sp[0]]
    assert state["d"].dtype == state["prev_flat_grad"].dtype == np.float32
    assert all(a.dtype == np.float32 for a in state["old_dirs"] + state["old_stps"])


def test_lbfgs_strong_wolfe_minimizes_rosenbrock():
    xy = sj.tensor(np.array([-1.5, 2.0]), requires_grad=True)
    opt = optim.LBFGS([xy], lr=1, max_iter=100, line_search_fn="strong_wolfe",
                      tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        a, b = xy[0], xy[1]
        loss = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(xy.numpy(), [1.0, 1.0], atol=1e-6)


def test_lbfgs_state_dict_resumes_the_same_trajectory(tmp_path):
    weights = initial_weights(np.float64)
    x, y = (np.concatenate(a) for a in zip(*batches(np.float64, 2)))

    def make(params):
        opt = optim.LBFGS(params, max_iter=3, history_size=5, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = mlp_loss(params, sj.tensor(x), sj.tensor(y))
            loss.backward()
            return loss
        return opt, closure

    full = sj_params(weights)
    opt, closure = make(full)
    for _ in range(4):
        opt.step(closure)
    first = sj_params(weights)
    opt1, closure1 = make(first)
    for _ in range(2):
        opt1.step(closure1)
    resumed = sj_params([p.numpy() for p in first])
    opt2, closure2 = make(resumed)
    sj.save(opt1.state_dict(), tmp_path / "lbfgs.safetensors")  # history lists and all
    opt2.load_state_dict(sj.load(tmp_path / "lbfgs.safetensors"))
    for _ in range(2):
        opt1.step(closure1)  # the loaded state is a copy: this must not disturb opt2
    for _ in range(2):
        opt2.step(closure2)
    for a, b, c in zip(full, resumed, first):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a.numpy(), c.numpy())


def test_lbfgs_refuses_groups_and_needs_a_closure():
    params = sj_params(initial_weights(np.float32))
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": params[:2]}, {"params": params[2:]}])
    opt = optim.LBFGS(params[:2])
    with pytest.raises(ValueError, match="parameter groups"):
        opt.add_param_group({"params": params[2:]})
    with pytest.raises(ValueError, match="closure"):
        opt.step(None)
    with pytest.raises(ValueError, match="line_search_fn"):
        optim.LBFGS(params, line_search_fn="armijo")


# ----------------------------------------------------------------------------- state, groups
ROUND_TRIP = [("Adadelta", dict(weight_decay=0.1)), ("Adamax", dict(lr=0.01)),
              ("NAdam", dict(lr=0.01, weight_decay=0.1)), ("RAdam", dict(lr=0.01)),
              ("Rprop", dict(lr=0.05)), ("ASGD", dict(lr=0.1, t0=3))]


@pytest.mark.parametrize("name,kwargs", ROUND_TRIP, ids=[c[0] for c in ROUND_TRIP])
def test_resume_from_saved_state_dict_is_bit_exact(name, kwargs, tmp_path):
    data = batches(np.float32, 12)
    cls = getattr(optim, name)
    full = sj_params(initial_weights(np.float32))
    opt = cls(full, **kwargs)
    for x, y in data:
        sj_train_step(opt, full, x, y)

    first = sj_params(initial_weights(np.float32))
    opt1 = cls(first, **kwargs)
    for x, y in data[:5]:
        sj_train_step(opt1, first, x, y)
    path = tmp_path / "opt.safetensors"
    sj.save(opt1.state_dict(), path)
    saved = [p.numpy().copy() for p in first]
    sj_train_step(opt1, first, *data[5])  # the file must not follow the live optimizer

    resumed = sj_params(saved)
    opt2 = cls(resumed, lr=123.0)  # the options come from the state dict
    opt2.load_state_dict(sj.load(path))
    for key in opt._scalar_state_keys:
        assert all(type(st[key]) is type(opt.state[full[0]][key]) for st in opt2.state.values())
    for x, y in data[5:]:
        sj_train_step(opt2, resumed, x, y)
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("name,kwargs", [("NAdam", dict(lr=0.01)), ("ASGD", dict(t0=2)),
                                         ("Rprop", dict()), ("Adadelta", dict())])
def test_torch_state_dict_loads_into_shenjing_and_continues_alike(name, kwargs):
    torch = pytest.importorskip("torch")
    *_, (_, sp, tp, _, to) = run_pair(torch, name, kwargs, np.float64, steps=6)
    resumed = sj_params([t.detach().numpy().copy() for t in tp])
    so = getattr(optim, name)(resumed)
    so.load_state_dict(to.state_dict())
    for key in so._scalar_state_keys:  # torch's 0-d tensors become float32 NumPy scalars
        assert type(so.state[resumed[0]][key]) is np.float32, key
    for x, y in batches(np.float64, 9)[6:]:
        sj_train_step(so, resumed, x, y)
        to.zero_grad()
        mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y)).backward()
        to.step()
    for s, t in zip(resumed, tp):
        np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_param_groups_with_own_options_match_torch():
    torch = pytest.importorskip("torch")
    weights = initial_weights(np.float64)
    sp = sj_params(weights)
    tp = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    for name, g0, g1 in [("RAdam", dict(lr=0.05, betas=(0.8, 0.9)), dict(weight_decay=0.1)),
                         ("Adadelta", dict(rho=0.5), dict(lr=0.3)),
                         ("Rprop", dict(etas=(0.4, 1.3)), dict(lr=0.001))]:
        so = getattr(optim, name)([{"params": sp[:2], **g0}, {"params": sp[2:], **g1}])
        to = getattr(torch.optim, name)([{"params": tp[:2], **g0}, {"params": tp[2:], **g1}])
        for x, y in batches(np.float64, 10):
            sj_train_step(so, sp, x, y)
            to.zero_grad()
            mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y)).backward()
            to.step()
        for s, t in zip(sp, tp):
            np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=name)


BAD = [
    ("Adadelta", dict(lr=-1.0), "lr"), ("Adadelta", dict(rho=1.5), "rho"),
    ("Adadelta", dict(eps=-1.0), "eps"), ("Adadelta", dict(weight_decay=-0.1), "weight_decay"),
    ("Adamax", dict(lr=-0.1), "lr"), ("Adamax", dict(betas=(1.0, 0.9)), "betas"),
    ("Adamax", dict(betas=(0.9, -0.1)), "betas"), ("Adamax", dict(eps=-1e-8), "eps"),
    ("NAdam", dict(momentum_decay=-1.0), "momentum_decay"), ("NAdam", dict(lr=-1.0), "lr"),
    ("NAdam", dict(betas=(0.9,)), "betas"),
    ("RAdam", dict(weight_decay=-1.0), "weight_decay"), ("RAdam", dict(betas=(0.9, 1.0)),
                                                         "betas"),
    ("Rprop", dict(lr=-1.0), "lr"), ("Rprop", dict(etas=(1.2, 0.5)), "etas"),
    ("Rprop", dict(etas=(0.0, 1.2)), "etas"),
    ("ASGD", dict(lr=-1.0), "lr"), ("ASGD", dict(weight_decay=-1.0), "weight_decay"),
    ("LBFGS", dict(lr=-1.0), "lr"), ("LBFGS", dict(history_size=0), "history_size"),
    ("LBFGS", dict(max_iter=0), "max_iter"),
]


@pytest.mark.parametrize("name,kwargs,what", BAD, ids=[f"{n}-{k}" for n, k, _ in BAD])
def test_bad_hyperparameters_raise_like_torch(name, kwargs, what):
    torch = pytest.importorskip("torch")
    params = sj_params(initial_weights(np.float32))
    with pytest.raises(ValueError, match=f"{name}.*{what}"):
        getattr(optim, name)(params, **kwargs)
    if name == "LBFGS" and what != "lr":
        return  # torch accepts these and fails later or loops zero times
    with pytest.raises((ValueError, IndexError)):  # torch raises at construction as well
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)


def make_closure(opt, params, x, y):
    def closure():
        opt.zero_grad()
        loss = mlp_loss(params, sj.tensor(x), sj.tensor(y))
        loss.backward()
        return loss
    return closure


def test_updates_write_through_the_single_param_array_helper(monkeypatch):
    # Every optimizer writes parameters only through arrays from Optimizer._param_array
    # (where the autograd version counter is bumped): with a helper that hands out copies,
    # no parameter may change.
    monkeypatch.setattr(optim.Optimizer, "_param_array", staticmethod(lambda p: p.numpy().copy()))
    others = [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(amsgrad=True)),
              ("AdamW", dict()), ("RMSprop", dict(centered=True, momentum=0.5)),
              ("Adagrad", dict()), ("LBFGS", dict(max_iter=3))]
    for name, kwargs in CONFIGS + others:
        params = sj_params(initial_weights(np.float64))
        opt = getattr(optim, name)(params, **kwargs)
        opt.step(make_closure(opt, params, *batches(np.float64, 1)[0]))
        for p, w in zip(params, initial_weights(np.float64)):
            np.testing.assert_array_equal(p.numpy(), w, err_msg=name)


def test_torch_backend_flags_are_accepted_or_refused_clearly():
    params = sj_params(initial_weights(np.float32))
    for name in ("SGD", "Adam", "AdamW", "NAdam", "RAdam", "Adadelta", "ASGD", "Rprop"):
        cls = getattr(optim, name)
        opt = cls(params, foreach=False, fused=None, capturable=False, differentiable=False)
        assert "foreach" not in opt.defaults  # accepted, not stored: they select kernels
        with pytest.raises(ValueError, match=f"{name}: differentiable=True"):
            cls(params, differentiable=True)
        with pytest.raises(TypeError):
            cls(params, not_an_option=1)
    assert optim.Adam(params, fused=True).param_groups[0]["lr"] == 1e-3
