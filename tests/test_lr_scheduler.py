"""shenjing.optim.lr_scheduler against torch.optim.lr_scheduler, step by step.

Both frameworks get the same optimizer configuration (two parameter groups with different
learning rates) and are stepped together; the learning rates (and momenta, for OneCycleLR)
must be equal after every step. The formulas are the same Python float expressions, so
equality is exact.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import shenjing as sj
from shenjing import optim, serialization
from shenjing.optim import lr_scheduler

STEPS = 25


def sj_optimizer(kind: str = "SGD"):
    params = [sj.tensor(np.zeros(3, np.float32), requires_grad=True) for _ in range(2)]
    groups = [{"params": params[:1], "lr": 0.1}, {"params": params[1:], "lr": 0.01}]
    if kind == "Adam":
        return optim.Adam(groups, betas=(0.9, 0.99))
    return optim.SGD(groups, momentum=0.9)


def torch_optimizer(torch, kind: str = "SGD"):
    params = [torch.zeros(3, requires_grad=True) for _ in range(2)]
    groups = [{"params": params[:1], "lr": 0.1}, {"params": params[1:], "lr": 0.01}]
    if kind == "Adam":
        return torch.optim.Adam(groups, betas=(0.9, 0.99))
    return torch.optim.SGD(groups, momentum=0.9)


def lambda_factor(epoch):
    return 0.95 ** epoch + 0.01 * (epoch % 3)


SCHEDULERS = [
    ("StepLR", dict(step_size=3), "SGD"),
    ("StepLR", dict(step_size=5, gamma=0.5), "Adam"),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 11], gamma=0.3), "SGD"),
    ("ExponentialLR", dict(gamma=0.9), "SGD"),
    ("CosineAnnealingLR", dict(T_max=10), "SGD"),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001), "Adam"),
    ("LambdaLR", dict(lr_lambda=lambda_factor), "SGD"),
    ("LambdaLR", dict(lr_lambda=[lambda e: 1.0 / (e + 1), lambda_factor]), "Adam"),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=STEPS), "SGD"),
    ("OneCycleLR", dict(max_lr=[1.0, 0.5], epochs=5, steps_per_epoch=5,
                        anneal_strategy="linear"), "SGD"),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=STEPS, three_phase=True, pct_start=0.25),
     "Adam"),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=STEPS + 5, div_factor=10.0,
                        final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9), "Adam"),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=STEPS, cycle_momentum=False), "SGD"),
]
IDS = [f"{n}-{k}-{'-'.join(f'{a}={v}' for a, v in kw.items() if a != 'lr_lambda')}"
       for n, kw, k in SCHEDULERS]


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


@pytest.mark.parametrize("name,kwargs,kind", SCHEDULERS, ids=IDS)
def test_learning_rates_match_torch_every_step(name, kwargs, kind):
    torch = pytest.importorskip("torch")
    so, to = sj_optimizer(kind), torch_optimizer(torch, kind)
    ss = getattr(lr_scheduler, name)(so, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, name)(to, **kwargs)
    assert ss.get_last_lr() == ts.get_last_lr()
    assert [g["initial_lr"] for g in so.param_groups] == [g["initial_lr"] for g in
                                                           to.param_groups]
    for k in range(STEPS):
        so.step()
        to.step()
        ss.step()
        ts.step()
        assert ss.get_last_lr() == ts.get_last_lr(), f"step {k + 1}"
        assert [g["lr"] for g in so.param_groups] == ts.get_last_lr()
        assert momenta(so) == momenta(to), f"momentum after step {k + 1}"
        assert ss.last_epoch == ts.last_epoch == k + 1
    assert len(set(ss.get_last_lr())) > 1 or name == "OneCycleLR"  # the groups stay distinct


def test_cosine_annealing_past_t_max_and_recursive_values():
    torch = pytest.importorskip("torch")
    so, to = sj_optimizer(), torch_optimizer(torch)
    ss = lr_scheduler.CosineAnnealingLR(so, T_max=4, eta_min=0.01)
    ts = torch.optim.lr_scheduler.CosineAnnealingLR(to, T_max=4, eta_min=0.01)
    seen = []
    for _ in range(20):  # five half-periods: down, up, down, ...
        so.step()
        to.step()
        ss.step()
        ts.step()
        assert ss.get_last_lr() == ts.get_last_lr()
        seen.append(ss.get_last_lr()[0])
    assert min(seen) == pytest.approx(0.01) and max(seen) == pytest.approx(0.1)
    # the recursive form stays within rounding of the closed form
    closed = [0.01 + 0.09 * (1 + np.cos(np.pi * t / 4)) / 2 for t in range(1, 21)]
    np.testing.assert_allclose(seen, closed, rtol=1e-12, atol=1e-15)


METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6,
           0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]
PLATEAU = [
    dict(patience=2),
    dict(patience=1, factor=0.5, threshold=0.1, threshold_mode="abs", cooldown=2),
    dict(mode="max", patience=2, factor=0.2),
    dict(mode="max", patience=0, threshold=0.05, threshold_mode="abs", min_lr=[0.02, 0.005]),
    dict(patience=0, factor=0.5, min_lr=0.004, eps=1e-3),
    dict(patience=3, cooldown=1, threshold=0.2),
]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    so, to = sj_optimizer(), torch_optimizer(torch)
    ss = lr_scheduler.ReduceLROnPlateau(so, **kwargs)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(to, **kwargs)
    changes = 0
    for k, metric in enumerate(METRICS):
        before = ss.get_last_lr()
        so.step()
        to.step()
        ss.step(sj.tensor(metric))  # a one-element tensor, as a loss would be
        ts.step(torch.tensor(metric))
        assert ss.get_last_lr() == ts.get_last_lr(), f"epoch {k + 1}"
        assert [g["lr"] for g in so.param_groups] == ts.get_last_lr()
        assert (ss.best, ss.num_bad_epochs, ss.cooldown_counter) == (
            ts.best, ts.num_bad_epochs, ts.cooldown_counter)
        changes += ss.get_last_lr() != before
    assert changes >= 1


def test_scheduler_drives_training_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, xs = rng.standard_normal((4, 3)), rng.standard_normal((12, 5, 4))
    sw = sj.tensor(w0.astype(np.float32), requires_grad=True)
    tw = torch.tensor(w0.astype(np.float32), requires_grad=True)
    so, to = optim.SGD([sw], lr=0.5, momentum=0.9), torch.optim.SGD([tw], lr=0.5, momentum=0.9)
    ss = lr_scheduler.OneCycleLR(so, max_lr=0.5, total_steps=12)
    ts = torch.optim.lr_scheduler.OneCycleLR(to, max_lr=0.5, total_steps=12)
    for x in xs.astype(np.float32):
        for w, opt, sched, lib in ((sw, so, ss, sj), (tw, to, ts, torch)):
            opt.zero_grad()
            ((lib.tensor(x) @ w).tanh() ** 2).sum().backward()
            opt.step()
            sched.step() if sched.last_epoch < 11 else None
        np.testing.assert_allclose(sw.numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert sw.numpy().dtype == np.float32


@pytest.mark.parametrize("name,kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[3, 6, 6])),
    ("ExponentialLR", dict(gamma=0.8)),
    ("CosineAnnealingLR", dict(T_max=5)),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=30)),
    ("ReduceLROnPlateau", dict(patience=1)),
])
def test_state_dict_resume_continues_the_schedule(name, kwargs, tmp_path):
    cls = getattr(lr_scheduler, name)
    plateau = name == "ReduceLROnPlateau"

    def advance(opt, sched, n, start):
        out = []
        for k in range(start, start + n):
            opt.step()
            sched.step(1.0 / (1 + k % 4)) if plateau else sched.step()
            out.append(sched.get_last_lr())
        return out

    opt_a = sj_optimizer()
    sched_a = cls(opt_a, **kwargs)
    reference = advance(opt_a, sched_a, 20, 0)

    opt_b = sj_optimizer()
    sched_b = cls(opt_b, **kwargs)
    advance(opt_b, sched_b, 8, 0)
    assert "optimizer" not in sched_b.state_dict()
    # through a checkpoint file, as a training script would save them
    serialization.save({"optimizer": opt_b.state_dict(), "scheduler": sched_b.state_dict()},
                       tmp_path / "ckpt.safetensors")
    advance(opt_b, sched_b, 3, 8)  # the saved state must not move on with the live objects
    saved = serialization.load(tmp_path / "ckpt.safetensors")
    saved_opt, saved_sched = saved["optimizer"], saved["scheduler"]

    opt_c = sj_optimizer()
    sched_c = cls(opt_c, **kwargs)  # made first, then both states loaded (torch's order)
    opt_c.load_state_dict(saved_opt)
    sched_c.load_state_dict(saved_sched)
    assert advance(opt_c, sched_c, 12, 8) == reference[8:]
    if name == "MultiStepLR":
        with pytest.warns(UserWarning, match="epoch parameter"):
            sched_c.step(15)  # the closed form needs the milestones back as a Counter
        assert sched_c.get_last_lr() == [0.1 * 0.1**3, 0.01 * 0.1**3]


def test_lambda_lr_state_dict_keeps_callable_objects_only():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.n)

    opt = sj_optimizer()
    sched = lr_scheduler.LambdaLR(opt, [Warmup(5), lambda e: 1.0])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"n": 5}, None]
    other = lr_scheduler.LambdaLR(sj_optimizer(), [Warmup(2), lambda e: 1.0])
    other.load_state_dict(state)
    assert other.lr_lambdas[0].n == 5


def test_step_with_epoch_uses_closed_form_like_torch():
    torch = pytest.importorskip("torch")
    so, to = sj_optimizer(), torch_optimizer(torch)
    ss = lr_scheduler.MultiStepLR(so, milestones=[2, 4, 4], gamma=0.5)
    ts = torch.optim.lr_scheduler.MultiStepLR(to, milestones=[2, 4, 4], gamma=0.5)
    for epoch in (3, 1, 7, 4):
        so.step()
        to.step()
        with pytest.warns(UserWarning, match="epoch parameter"):
            ss.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts.step(epoch)
        assert ss.get_last_lr() == ts.get_last_lr()


def test_warns_when_scheduler_steps_before_optimizer():
    opt = sj_optimizer()
    sched = lr_scheduler.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt2 = sj_optimizer()
    sched2 = lr_scheduler.StepLR(opt2, step_size=2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()
        sched2.get_last_lr()
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched2.get_lr()


def test_custom_optimizer_subclass_step_is_tracked():
    class Plain(optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            return None

    opt = Plain([sj.tensor(np.zeros(2, np.float32), requires_grad=True)])
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()
    assert sched.get_last_lr() == [0.05]


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(sj_optimizer(), step_size=2, last_epoch=3)
    opt = sj_optimizer()
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    sched = lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)
    assert sched.last_epoch == 4 and sched.base_lrs == [0.1, 0.01]


@pytest.mark.parametrize("make,match", [
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0), "total_steps OR"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=0), "total_steps=0"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, epochs=2, steps_per_epoch=-1),
     "steps_per_epoch=-1"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5),
     "pct_start=1.5"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
     "anneal_strategy='exp'"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[1.0], total_steps=10),
     "max_lr must have one value per parameter group: expected 2, got 1"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), "factor=1.0"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="avg"), "mode='avg'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="pct"), "threshold_mode='pct'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1]), "min_lr"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), "expected 2 lr_lambdas"),
    (lambda o: lr_scheduler.StepLR(o, step_size=0), "step_size=0"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), "T_max=0"),
])
def test_invalid_scheduler_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make(sj_optimizer())


def test_not_an_optimizer_and_momentum_requirement():
    with pytest.raises(TypeError, match="expected a shenjing.optim.Optimizer"):
        lr_scheduler.StepLR(object(), step_size=1)
    with pytest.raises(TypeError, match="Optimizer"):
        lr_scheduler.ReduceLROnPlateau("sgd")
    adagrad = optim.Adagrad([sj.tensor(np.zeros(2, np.float32), requires_grad=True)])
    with pytest.raises(ValueError, match="momentum or beta1"):
        lr_scheduler.OneCycleLR(adagrad, max_lr=0.1, total_steps=5)
    sched = lr_scheduler.OneCycleLR(adagrad, max_lr=0.1, total_steps=5, cycle_momentum=False)
    for _ in range(5):
        adagrad.step()
        sched.step()
    with pytest.raises(ValueError, match="tried to step 6 times"):
        sched.step()
