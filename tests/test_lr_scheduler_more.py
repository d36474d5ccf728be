"""The schedules added for issue 9 against torch.optim.lr_scheduler, step by step.

Same setup as tests/test_lr_scheduler.py (its optimizers with two parameter groups): both
frameworks are stepped together and the learning rates (and momenta, where a schedule
cycles them) must be equal after every step; the formulas are the same Python float
expressions, so equality is exact.
"""

from __future__ import annotations

import warnings

import pytest

from shenjing import optim, serialization
from shenjing.optim import lr_scheduler
from tests.test_lr_scheduler import momenta, sj_optimizer, torch_optimizer

STEPS = 30


class Halving:
    """A callable object: its attributes go into the state dict (a lambda's do not)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def __call__(self, epoch: int) -> float:
        return 0.5 if epoch % self.every == 0 else 1.0


SCHEDULERS = [
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.95), "SGD"),
    ("MultiplicativeLR", dict(lr_lambda=[Halving(4), lambda e: 1.0 - 0.01 * e]), "Adam"),
    ("ConstantLR", dict(), "SGD"),
    ("ConstantLR", dict(factor=0.25, total_iters=7), "Adam"),
    ("LinearLR", dict(), "SGD"),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.05, total_iters=20), "Adam"),
    ("PolynomialLR", dict(), "SGD"),
    ("PolynomialLR", dict(total_iters=25, power=2.0), "Adam"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4), "SGD"),
    ("CyclicLR", dict(base_lr=[0.01, 0.001], max_lr=[0.1, 0.05], step_size_up=3,
                      step_size_down=5, mode="triangular2"), "SGD"),
    ("CyclicLR", dict(base_lr=0.001, max_lr=0.1, step_size_up=5, mode="exp_range",
                      gamma=0.97, base_momentum=0.85, max_momentum=0.95), "Adam"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, cycle_momentum=False,
                      scale_fn=lambda x: 1.0 / x), "SGD"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=2, scale_mode="iterations",
                      scale_fn=lambda x: 0.9**x), "Adam"),
    ("CosineAnnealingWarmRestarts", dict(T_0=5), "SGD"),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.001), "Adam"),
]
IDS = [f"{n}-{k}-{'-'.join(f'{a}={v}' for a, v in kw.items() if not callable(v))}"
       for n, kw, k in SCHEDULERS]


def step_together(so, to, ss, ts, steps=STEPS):
    """Step both pairs; return the distinct first-group learning rates seen."""
    seen = {so.param_groups[0]["lr"]}
    for k in range(steps):
        so.step()
        to.step()
        ss.step()
        ts.step()
        assert ss.get_last_lr() == ts.get_last_lr(), f"step {k + 1}"
        assert [g["lr"] for g in so.param_groups] == [g["lr"] for g in to.param_groups]
        assert momenta(so) == momenta(to), f"momentum after step {k + 1}"
        seen.add(so.param_groups[0]["lr"])
    return seen


@pytest.mark.parametrize("name,kwargs,kind", SCHEDULERS, ids=IDS)
def test_learning_rates_match_torch_every_step(name, kwargs, kind):
    torch = pytest.importorskip("torch")
    so, to = sj_optimizer(kind), torch_optimizer(torch, kind)
    ss = getattr(lr_scheduler, name)(so, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, name)(to, **kwargs)
    assert ss.get_last_lr() == ts.get_last_lr()
    assert momenta(so) == momenta(to)
    assert len(step_together(so, to, ss, ts)) >= 2  # the schedule did move
    assert ss.last_epoch == ts.last_epoch == STEPS


def composite(lib, opt, kind):
    """The same composite schedule built from `lib`'s lr_scheduler module."""
    m = lib
    if kind == "warmup-cosine":
        return m.SequentialLR(opt, [m.LinearLR(opt, start_factor=0.1, total_iters=4),
                                    m.CosineAnnealingLR(opt, T_max=10)], milestones=[5])
    if kind == "three-phases":
        return m.SequentialLR(opt, [m.ConstantLR(opt, factor=0.5, total_iters=3),
                                    m.ExponentialLR(opt, gamma=0.9),
                                    m.StepLR(opt, step_size=4, gamma=0.5)],
                              milestones=[3, 12])
    if kind == "chained":
        return m.ChainedScheduler([m.ConstantLR(opt, factor=0.3, total_iters=4),
                                   m.ExponentialLR(opt, gamma=0.9)])
    if kind == "chained-in-sequence":
        return m.SequentialLR(opt, [m.ChainedScheduler([m.LinearLR(opt, total_iters=3),
                                                        m.ExponentialLR(opt, gamma=0.95)]),
                                    m.PolynomialLR(opt, total_iters=10)], milestones=[6])
    raise AssertionError(kind)


COMPOSITES = ["warmup-cosine", "three-phases", "chained", "chained-in-sequence"]


@pytest.mark.parametrize("kind", COMPOSITES)
@pytest.mark.filterwarnings("ignore:Detected call of")  # chained-in-sequence: torch warns too
def test_composite_schedules_match_torch(kind):
    torch = pytest.importorskip("torch")
    so, to = sj_optimizer(), torch_optimizer(torch)
    ss = composite(lr_scheduler, so, kind)
    ts = composite(torch.optim.lr_scheduler, to, kind)
    assert ss.get_last_lr() == ts.get_last_lr()
    assert [g["lr"] for g in so.param_groups] == [g["lr"] for g in to.param_groups]
    assert len(step_together(so, to, ss, ts)) > 5


def test_warm_restarts_with_fractional_epochs_match_torch():
    torch = pytest.importorskip("torch")
    so, to = sj_optimizer(), torch_optimizer(torch)
    ss = lr_scheduler.CosineAnnealingWarmRestarts(so, T_0=2, T_mult=3, eta_min=1e-3)
    ts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(to, T_0=2, T_mult=3,
                                                              eta_min=1e-3)
    iters = 7
    for epoch in range(12):
        for i in range(iters):
            so.step()
            to.step()
            ss.step(epoch + i / iters)
            ts.step(epoch + i / iters)
            assert ss.get_last_lr() == ts.get_last_lr(), (epoch, i)
            assert (ss.T_i, ss.T_cur, ss.last_epoch) == (ts.T_i, ts.T_cur, ts.last_epoch)
    ss.step(26)
    ts.step(26)
    ss.step()
    ts.step()
    assert ss.get_last_lr() == ts.get_last_lr()
    with pytest.raises(ValueError, match="non-negative epoch"):
        ss.step(-1)


@pytest.mark.parametrize("name,kwargs", [
    ("ConstantLR", dict(factor=0.5, total_iters=4)),
    ("LinearLR", dict(start_factor=0.2, total_iters=6)),
    ("PolynomialLR", dict(total_iters=8, power=1.5)),
])
def test_step_with_epoch_uses_closed_form_like_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    so, to = sj_optimizer(), torch_optimizer(torch)
    ss = getattr(lr_scheduler, name)(so, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, name)(to, **kwargs)
    for epoch in (3, 1, 9, 4, 6):
        so.step()
        to.step()
        with pytest.warns(UserWarning, match="epoch parameter"):
            ss.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts.step(epoch)
        assert ss.get_last_lr() == ts.get_last_lr(), epoch


def make_for_resume(name, opt):
    if name == "SequentialLR":
        return composite(lr_scheduler, opt, "three-phases")
    if name == "ChainedScheduler":
        return composite(lr_scheduler, opt, "chained")
    if name == "CyclicLR":
        return lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                     mode="triangular2")
    if name == "MultiplicativeLR":
        return lr_scheduler.MultiplicativeLR(opt, [Halving(3), Halving(5)])
    return lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)


@pytest.mark.parametrize("name", ["SequentialLR", "ChainedScheduler", "CyclicLR",
                                  "MultiplicativeLR", "CosineAnnealingWarmRestarts"])
def test_state_dict_resume_through_a_checkpoint_continues_the_schedule(name, tmp_path):
    def advance(opt, sched, n):
        out = []
        for _ in range(n):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr())
        return out

    opt_a = sj_optimizer()
    reference = advance(opt_a, make_for_resume(name, opt_a), 20)
    opt_b = sj_optimizer()
    sched_b = make_for_resume(name, opt_b)
    advance(opt_b, sched_b, 8)
    serialization.save({"optimizer": opt_b.state_dict(), "scheduler": sched_b.state_dict()},
                       tmp_path / "ckpt.safetensors")
    advance(opt_b, sched_b, 3)  # the file must not follow the live objects
    saved = serialization.load(tmp_path / "ckpt.safetensors")
    opt_c = sj_optimizer()
    sched_c = make_for_resume(name, opt_c)
    if name == "MultiplicativeLR":
        sched_c.lr_lambdas[0].every = 99  # restored from the state dict
    opt_c.load_state_dict(saved["optimizer"])
    sched_c.load_state_dict(saved["scheduler"])
    assert advance(opt_c, sched_c, 12) == reference[8:]


def test_invalid_arguments_raise_clear_errors():
    opt = sj_optimizer()
    cases = [
        (lambda: lr_scheduler.ConstantLR(opt, factor=1.5), ValueError, "factor"),
        (lambda: lr_scheduler.LinearLR(opt, start_factor=0), ValueError, "start_factor"),
        (lambda: lr_scheduler.LinearLR(opt, end_factor=2.0), ValueError, "end_factor"),
        (lambda: lr_scheduler.MultiplicativeLR(opt, [lambda e: 1.0]), ValueError, "2 lr_"),
        (lambda: lr_scheduler.MultiplicativeLR(opt, 0.9), TypeError, "function"),
        (lambda: lr_scheduler.CyclicLR(opt, 0.01, 0.1, mode="sine"), ValueError, "mode"),
        (lambda: lr_scheduler.CyclicLR(opt, [0.1], 0.2), ValueError, "base_lr"),
        (lambda: lr_scheduler.CyclicLR(optim.Adagrad(opt.param_groups[0]["params"]), 0.01,
                                       0.1), ValueError, "cycle_momentum"),
        (lambda: lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=0), ValueError, "T_0"),
        (lambda: lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=1.5),
         ValueError, "T_mult"),
        (lambda: lr_scheduler.SequentialLR(opt, [], milestones=[]), ValueError, "at least"),
        (lambda: lr_scheduler.SequentialLR(opt, [lr_scheduler.StepLR(opt, 2)],
                                           milestones=[3]), ValueError, "milestone"),
        (lambda: lr_scheduler.SequentialLR(opt, [lr_scheduler.StepLR(sj_optimizer(), 2)],
                                           milestones=[]), ValueError, "same optimizer"),
        (lambda: lr_scheduler.ChainedScheduler([lr_scheduler.ReduceLROnPlateau(opt)]),
         ValueError, "ReduceLROnPlateau"),
        (lambda: lr_scheduler.ChainedScheduler([]), ValueError, "at least one"),
    ]
    for make, exc, match in cases:
        with pytest.raises(exc, match=match):
            make()


def test_names_are_reachable_as_in_torch():
    torch = pytest.importorskip("torch")
    for name in ["LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
                 "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
                 "ChainedScheduler", "SequentialLR", "ReduceLROnPlateau", "CyclicLR",
                 "OneCycleLR", "CosineAnnealingWarmRestarts", "LRScheduler"]:
        assert hasattr(torch.optim.lr_scheduler, name)
        assert hasattr(lr_scheduler, name), name
        assert name in lr_scheduler.__all__
    for name in ["Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "ASGD", "LBFGS", "NAdam",
                 "RAdam", "RMSprop", "Rprop", "SGD"]:
        assert hasattr(torch.optim, name) and hasattr(optim, name), name
