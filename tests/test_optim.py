"""shenjing.optim against torch.optim: every optimizer and option, step by step.

The model is a 2-layer MLP made of plain leaf tensors (matmul, tanh, mean squared error), so
these tests depend only on the autograd core (nn.Parameter is a Tensor subclass; nothing here
treats it differently). Each run feeds both frameworks the same
weights and the same 20 batches and compares every parameter after every step: in float64
tightly (the update rules must be the same operations), and in float32 for closeness and to
check that no float64 creeps into the parameters or the state.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import shenjing as sj
from shenjing import optim, serialization


def Parameter(data):  # noqa: N802  (a leaf that requires grad; keeps the tests off shenjing.nn)
    return sj.tensor(data, requires_grad=True)


SHAPES = [(8, 5), (8,), (3, 8), (3,)]
STEPS = 20


def initial_weights(dtype, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.5 * rng.standard_normal(s)).astype(dtype) for s in SHAPES]


def batches(dtype, steps: int = STEPS, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((6, 5)).astype(dtype), rng.standard_normal((6, 3)).astype(dtype))
            for _ in range(steps)]


def mlp_loss(params, x, y, sign: float = 1.0):
    """Mean squared error of a tanh MLP; works for shenjing and torch tensors alike.

    sign=-1 gives a bounded objective to maximize (so maximize runs do not diverge).
    """
    w1, b1, w2, b2 = params
    h = (x @ w1.T + b1).tanh()
    return ((h @ w2.T + b2 - y) ** 2).mean() * sign


def sj_params(weights):
    return [Parameter(w.copy()) for w in weights]


def sj_train_step(opt, params, x, y, sign: float = 1.0) -> float:
    opt.zero_grad()
    loss = mlp_loss(params, sj.tensor(x), sj.tensor(y), sign)
    loss.backward()
    opt.step()
    return float(loss.item())


# (shenjing / torch class name, kwargs): every option and the usual combinations.
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.05, maximize=True)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.8), eps=1e-3)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.5, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.95), maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, eps=1e-4, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, eps=1e-3, maximize=True)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
       for name, kw in CONFIGS]


def run_both(torch, name, kwargs, dtype, steps=STEPS):
    """Yield (step, shenjing params, torch params, shenjing opt) after each step."""
    weights = initial_weights(dtype)
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
        yield k, sp, tp, so


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch_float64_every_step(name, kwargs):
    torch = pytest.importorskip("torch")
    for k, sp, tp, _ in run_both(torch, name, kwargs, np.float64):
        for i, (s, t) in enumerate(zip(sp, tp)):
            np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name}{kwargs}: param {i} after step {k + 1}")


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch_float32_and_keeps_dtype(name, kwargs):
    torch = pytest.importorskip("torch")
    for k, sp, tp, so in run_both(torch, name, kwargs, np.float32):
        for i, (s, t) in enumerate(zip(sp, tp)):
            assert s.numpy().dtype == np.float32, f"param {i} became {s.numpy().dtype}"
            np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=2e-5, atol=2e-6,
                                       err_msg=f"{name}{kwargs}: param {i} after step {k + 1}")
        for st in so.state.values():
            for key, v in st.items():
                if key == "step":
                    assert type(v) is np.float32 and v == k + 1
                else:
                    assert v.dtype == np.float32, f"state {key} is {v.dtype}"


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_slice_by_slice_update_of_big_parameters_matches_torch(name, kwargs, monkeypatch):
    # Parameters above _CHUNK_ABOVE elements are updated slice by slice; shrink both limits
    # so the small model takes that path, ragged last slices included.
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(optim.optimizer, "_CHUNK_ABOVE", 16)
    monkeypatch.setattr(optim.optimizer, "_CHUNK", 7)
    for k, sp, tp, _ in run_both(torch, name, kwargs, np.float64, steps=5):
        for i, (s, t) in enumerate(zip(sp, tp)):
            np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name}{kwargs}: param {i} after step {k + 1}")


def test_big_parameter_takes_the_sliced_path_and_matches_torch(kernel_path):
    """Both kernel paths against torch; the NumPy path updates a big parameter in slices
    (the compiled SGD step takes the whole array in one pass)."""
    torch = pytest.importorskip("torch")
    n = optim.optimizer._CHUNK_ABOVE + 12345
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n).astype(np.float32)
    for name, kw in [("Adam", dict(lr=0.01, amsgrad=True)),
                     ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1))]:
        sp = Parameter(w.copy())
        tp = torch.tensor(w.copy(), requires_grad=True)
        so, to = getattr(optim, name)([sp], **kw), getattr(torch.optim, name)([tp], **kw)
        for _ in range(3):
            g = rng.standard_normal(n).astype(np.float32)
            sp.grad, tp.grad = sj.tensor(g), torch.from_numpy(g.copy())
            so.step()
            to.step()
        np.testing.assert_allclose(sp.numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
        if kernel_path == "numpy" or name == "Adam":
            assert so._flat_scratch[np.dtype(np.float32)][0].size == optim.optimizer._CHUNK


def test_float64_hyperparameters_do_not_promote_float32_params():
    # NumPy 2 promotes float32 arrays times np.float64 scalars to float64: the optimizers
    # must turn hyper-parameters into Python floats first.
    for cls, kw in [(optim.SGD, dict(momentum=np.float64(0.9), weight_decay=np.float64(0.1))),
                    (optim.Adam, dict(betas=(np.float64(0.9), np.float64(0.99)))),
                    (optim.AdamW, dict(weight_decay=np.float64(0.1))),
                    (optim.RMSprop, dict(centered=True, momentum=np.float64(0.5))),
                    (optim.Adagrad, dict(lr_decay=np.float64(0.01)))]:
        params = sj_params(initial_weights(np.float32))
        opt = cls(params, lr=np.float64(0.01), **kw)
        for x, y in batches(np.float32, 3):
            sj_train_step(opt, params, x, y)
        assert all(p.numpy().dtype == np.float32 for p in params), cls.__name__
        assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values()), \
            cls.__name__


def test_update_is_in_place_and_records_no_graph():
    params = sj_params(initial_weights(np.float32))
    arrays = [p.numpy() for p in params]
    opt = optim.Adam(params, lr=0.01)
    x, y = batches(np.float32, 1)[0]
    sj_train_step(opt, params, x, y)
    assert all(p.numpy() is a for p, a in zip(params, arrays))
    assert all(p.is_leaf and p.grad_fn is None for p in params)
    assert not np.allclose(arrays[0], initial_weights(np.float32)[0])


def test_user_gradient_is_not_modified():
    # weight_decay and maximize must not write into p.grad
    params = sj_params(initial_weights(np.float64))
    for p in params:
        p.grad = sj.tensor(np.ones(p.shape))
    for cls, kw in [(optim.SGD, dict(momentum=0.9, weight_decay=0.1, maximize=True)),
                    (optim.Adam, dict(weight_decay=0.1, maximize=True)),
                    (optim.RMSprop, dict(weight_decay=0.1, centered=True, momentum=0.9)),
                    (optim.Adagrad, dict(weight_decay=0.1, maximize=True))]:
        opt = cls(params, lr=0.1, **kw)
        opt.step()
        opt.step()
        assert all(np.all(p.grad.numpy() == 1.0) for p in params), cls.__name__


def test_param_groups_with_different_options_match_torch():
    torch = pytest.importorskip("torch")
    weights = initial_weights(np.float64)
    sp = sj_params(weights)
    tp = [torch.tensor(w.copy(), requires_grad=True) for w in weights]

    def groups(p):
        return [{"params": p[:2], "lr": 0.3, "momentum": 0.9},
                {"params": p[2:], "weight_decay": 0.1}]

    so = optim.SGD(groups(sp), lr=0.05)
    to = torch.optim.SGD(groups(tp), lr=0.05)
    assert so.param_groups[0]["lr"] == 0.3 and so.param_groups[1]["lr"] == 0.05
    assert so.param_groups[1]["momentum"] == 0 and so.param_groups[0]["weight_decay"] == 0
    for x, y in batches(np.float64, 10):
        sj_train_step(so, sp, x, y)
        to.zero_grad()
        mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y)).backward()
        to.step()
        for s, t in zip(sp, tp):
            np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert set(id(p) for p in so.state) == {id(sp[0]), id(sp[1])}  # momentum only in group 0


def test_add_param_group_fills_defaults_and_trains():
    params = sj_params(initial_weights(np.float32))
    opt = optim.Adam(params[:2], lr=0.01, betas=(0.8, 0.9))
    opt.add_param_group({"params": params[2:], "lr": 0.1})
    assert opt.param_groups[1]["betas"] == (0.8, 0.9)
    assert opt.param_groups[1]["lr"] == 0.1
    before = [p.numpy().copy() for p in params]
    x, y = batches(np.float32, 1)[0]
    sj_train_step(opt, params, x, y)
    assert all(not np.array_equal(b, p.numpy()) for b, p in zip(before, params))
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})


def test_module_parameter_groups_train_like_torch():
    # The usual call: groups made of module.parameters() generators, Parameters of nn layers.
    torch = pytest.importorskip("torch")
    from shenjing import nn

    if not hasattr(nn, "Linear"):
        pytest.skip("shenjing.nn.Linear is not available")
    tm = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    sm = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    sm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    so = optim.AdamW([{"params": sm[0].parameters(), "lr": 3e-2},
                      {"params": sm[2].parameters()}], lr=1e-2)
    to = torch.optim.AdamW([{"params": tm[0].parameters(), "lr": 3e-2},
                            {"params": tm[2].parameters()}], lr=1e-2)
    for x, y in batches(np.float32, 8):
        for model, opt, lib in ((sm, so, sj), (tm, to, torch)):
            opt.zero_grad()
            ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean().backward()
            opt.step()
    for (name, t), s in zip(tm.state_dict().items(), sm.state_dict().values()):
        assert s.dtype == sj.float32, name
        np.testing.assert_allclose(s.numpy(), t.numpy(), rtol=2e-5, atol=2e-6, err_msg=name)


def test_named_parameters_are_accepted():
    params = sj_params(initial_weights(np.float32))
    opt = optim.SGD([(f"p{i}", p) for i, p in enumerate(params)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["p0", "p1", "p2", "p3"]
    assert opt.param_groups[0]["params"][1] is params[1]


def test_zero_grad_set_to_none_and_to_zeros():
    params = sj_params(initial_weights(np.float32))
    opt = optim.SGD(params, lr=0.1)
    x, y = batches(np.float32, 1)[0]
    mlp_loss(params, sj.tensor(x), sj.tensor(y)).backward()
    grads = [p.grad for p in params]
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g for p, g in zip(params, grads))  # same tensors, zeroed
    assert all(np.all(p.grad.numpy() == 0) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_params_without_grad_or_frozen_are_skipped():
    torch = pytest.importorskip("torch")
    params = sj_params(initial_weights(np.float32))
    params[3].requires_grad_(False)
    opt = optim.Adam(params, lr=0.1)
    x, y = batches(np.float32, 1)[0]
    mlp_loss(params, sj.tensor(x), sj.tensor(y)).backward()
    params[1].grad = None  # no gradient this step
    params[3].grad = sj.tensor(np.ones(3, np.float32))  # frozen, yet a stale grad is set
    frozen = [params[1].numpy().copy(), params[3].numpy().copy()]
    opt.step()
    np.testing.assert_array_equal(params[1].numpy(), frozen[0])
    np.testing.assert_array_equal(params[3].numpy(), frozen[1])
    assert set(id(p) for p in opt.state) == {id(params[0]), id(params[2])}
    # torch: a parameter whose grad is None gets no state either
    tp = [torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)]
    to = torch.optim.Adam(tp)
    tp[0].grad = torch.ones(2)
    to.step()
    assert len(to.state_dict()["state"]) == 1 and len(opt.state_dict()["state"]) == 2


def test_closure_is_evaluated_with_grad_enabled():
    params = sj_params(initial_weights(np.float32))
    opt = optim.SGD(params, lr=0.1)
    x, y = batches(np.float32, 1)[0]
    calls = []

    def closure():
        opt.zero_grad()
        loss = mlp_loss(params, sj.tensor(x), sj.tensor(y))
        loss.backward()
        calls.append(float(loss.item()))
        return loss

    with sj.no_grad():
        loss = opt.step(closure)
    assert len(calls) == 1 and float(loss.item()) == calls[0]
    assert float(mlp_loss(params, sj.tensor(x), sj.tensor(y)).item()) < calls[0]


# ----------------------------------------------------------------------------- state_dict
ALL_CLASSES = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
               ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
               ("AdamW", dict(lr=0.01)),
               ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
               ("Adagrad", dict(lr=0.1, lr_decay=0.01))]


@pytest.mark.parametrize("name,kwargs", ALL_CLASSES, ids=[c[0] for c in ALL_CLASSES])
def test_resume_from_state_dict_is_bit_exact(name, kwargs, tmp_path):
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
    serialization.save(opt1.state_dict(), path)  # through a real checkpoint file
    saved_weights = [p.numpy().copy() for p in first]
    for x, y in data[5:7]:  # keep training the first run: the checkpoint must not change
        sj_train_step(opt1, first, x, y)

    resumed = sj_params(saved_weights)
    opt2 = cls(resumed, lr=123.0)  # options come from the state dict
    opt2.load_state_dict(serialization.load(path))
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    for x, y in data[5:]:
        sj_train_step(opt2, resumed, x, y)
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_layout_is_torchs():
    torch = pytest.importorskip("torch")
    weights = initial_weights(np.float32)
    sp, tp = sj_params(weights), [torch.tensor(w, requires_grad=True) for w in weights]
    so = optim.Adam([{"params": sp[:2]}, {"params": sp[2:], "lr": 0.1}], amsgrad=True)
    to = torch.optim.Adam([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.1}], amsgrad=True)
    x, y = batches(np.float32, 1)[0]
    sj_train_step(so, sp, x, y)
    mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y)).backward()
    to.step()
    s, t = so.state_dict(), to.state_dict()
    assert list(s) == ["state", "param_groups"]
    assert sorted(s["state"]) == sorted(t["state"]) == [0, 1, 2, 3]
    assert [g["params"] for g in s["param_groups"]] == [[0, 1], [2, 3]]
    assert [g["params"] for g in t["param_groups"]] == [[0, 1], [2, 3]]
    for k in s["state"]:
        assert set(s["state"][k]) == set(t["state"][k])
        assert s["state"][k]["step"] == np.float32(1.0)
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert type(s["state"][k][key]) is np.ndarray
            np.testing.assert_allclose(s["state"][k][key], t["state"][k][key].numpy(),
                                       rtol=1e-5, atol=1e-7)
    for sg, tg in zip(s["param_groups"], t["param_groups"]):
        for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
            assert sg[key] == tg[key]


def test_load_torch_state_dict_and_continue_in_step():
    torch = pytest.importorskip("torch")
    weights = initial_weights(np.float64)
    tp = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    to = torch.optim.RMSprop(tp, lr=0.01, centered=True, momentum=0.5)
    data = batches(np.float64, 10)
    for x, y in data[:5]:
        to.zero_grad()
        mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y)).backward()
        to.step()
    sp = sj_params([t.detach().numpy().copy() for t in tp])
    so = optim.RMSprop(sp)
    so.load_state_dict(to.state_dict())
    assert so.param_groups[0]["centered"] is True and so.param_groups[0]["momentum"] == 0.5
    for x, y in data[5:]:
        sj_train_step(so, sp, x, y)
        to.zero_grad()
        mlp_loss(tp, torch.from_numpy(x), torch.from_numpy(y)).backward()
        to.step()
    for s, t in zip(sp, tp):
        np.testing.assert_allclose(s.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_load_state_dict_copies_arrays_and_checks_groups():
    params = sj_params(initial_weights(np.float32))
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    x, y = batches(np.float32, 1)[0]
    sj_train_step(opt, params, x, y)
    other = optim.SGD(params, lr=0.1, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    a = opt.state[params[0]]["momentum_buffer"]
    b = other.state[params[0]]["momentum_buffer"]
    assert a is not b and not np.shares_memory(a, b)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="different number of parameter groups|2 parameter"):
        optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1).load_state_dict(
            opt.state_dict())
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD(params[:3], lr=0.1).load_state_dict(opt.state_dict())


def test_adagrad_state_exists_from_construction_like_torch():
    torch = pytest.importorskip("torch")
    params = sj_params(initial_weights(np.float32))
    opt = optim.Adagrad(params, initial_accumulator_value=0.25)
    t = torch.optim.Adagrad([torch.zeros(s, requires_grad=True) for s in SHAPES],
                            initial_accumulator_value=0.25)
    s_sd, t_sd = opt.state_dict(), t.state_dict()
    assert sorted(s_sd["state"]) == sorted(t_sd["state"])
    assert np.all(s_sd["state"][0]["sum"] == 0.25) and s_sd["state"][0]["step"] == 0


# ----------------------------------------------------------------------------- errors
BAD = [
    (optim.SGD, dict(lr=-0.1), "lr=-0.1"),
    (optim.SGD, dict(momentum=-0.5), "momentum=-0.5"),
    (optim.SGD, dict(weight_decay=-1.0), "weight_decay=-1.0"),
    (optim.SGD, dict(nesterov=True), "Nesterov momentum requires a momentum"),
    (optim.SGD, dict(momentum=0.9, dampening=0.1, nesterov=True), "zero dampening"),
    (optim.Adam, dict(lr=-1e-3), "lr=-0.001"),
    (optim.Adam, dict(betas=(1.0, 0.999)), r"betas\[0\] in \[0, 1\)"),
    (optim.Adam, dict(betas=(0.9, -0.1)), r"betas\[1\] in \[0, 1\)"),
    (optim.Adam, dict(eps=-1e-8), "eps=-1e-08"),
    (optim.AdamW, dict(betas=(0.9, 1.5)), r"betas=\(0.9, 1.5\)"),
    (optim.AdamW, dict(weight_decay=-0.1), "weight_decay=-0.1"),
    (optim.RMSprop, dict(alpha=-0.1), "alpha=-0.1"),
    (optim.RMSprop, dict(momentum=-0.1), "momentum=-0.1"),
    (optim.RMSprop, dict(eps=-1.0), "eps=-1.0"),
    (optim.Adagrad, dict(lr_decay=-0.1), "lr_decay=-0.1"),
    (optim.Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value=-1.0"),
    (optim.Adagrad, dict(eps=-1.0), "eps=-1.0"),
]


@pytest.mark.parametrize("cls,kwargs,match", BAD, ids=[f"{c.__name__}-{m}" for c, _, m in BAD])
def test_invalid_arguments_raise_value_error(cls, kwargs, match):
    params = sj_params(initial_weights(np.float32))
    with pytest.raises(ValueError, match=match) as info:
        cls(params, **kwargs)
    assert cls.__name__ in str(info.value)


def test_invalid_parameter_lists():
    torch = pytest.importorskip("torch")
    p = Parameter(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        torch.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors.*float"):
        optim.SGD([1.0], lr=0.1)
    with pytest.raises(TypeError, match="sets"):
        optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="must be a dict"):
        optim.SGD([p], lr=0.1).add_param_group([p])
    # torch accepts a leaf tensor that does not require grad (it is skipped while its grad
    # is None), so shenjing does too: it may be unfrozen later.
    torch.optim.SGD([torch.zeros(3)], lr=0.1)
    frozen = sj.zeros(3)
    opt = optim.SGD([frozen], lr=0.1)
    opt.step()
    frozen.requires_grad_(True)
    frozen.grad = sj.tensor(np.ones(3, np.float32))
    opt.step()
    np.testing.assert_allclose(frozen.numpy(), -0.1)


def test_gradient_of_wrong_shape_is_reported():
    p = Parameter(np.zeros((2, 3), np.float32))
    p.grad = sj.tensor(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*gradient of shape \(3,\)"):
        optim.Adam([p]).step()


def test_repr_lists_group_options():
    opt = optim.AdamW(sj_params(initial_weights(np.float32)), lr=0.01)
    text = repr(opt)
    assert text.startswith("AdamW (") and "Parameter Group 0" in text
    assert "lr: 0.01" in text and "weight_decay: 0.01" in text


def test_no_warning_for_duplicate_free_groups():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.SGD(sj_params(initial_weights(np.float32)), lr=0.1)
    p = Parameter(np.zeros(3, np.float32))
    with pytest.warns(UserWarning, match="duplicate"):
        optim.SGD([p, p], lr=0.1)


def test_state_dict_is_deep_copyable_and_json_like():
    params = sj_params(initial_weights(np.float32))
    opt = optim.Adam(params, lr=0.01)
    x, y = batches(np.float32, 1)[0]
    sj_train_step(opt, params, x, y)
    sd = copy.deepcopy(opt.state_dict())
    g = sd["param_groups"][0]
    assert all(isinstance(v, (int, float, bool, tuple, list, type(None))) for v in g.values())
