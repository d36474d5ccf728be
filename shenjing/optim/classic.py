"""Adadelta, Rprop and ASGD: older rules that tutorials still reach for.

Each follows the single-tensor algorithm of its torch.optim counterpart, operation for
operation up to the order of a scalar product; ASGD keeps its step size and averaging
weight in torch's 0-d state precision so the trajectories agree. `_update` computes the
per-parameter scalars, a module-level kernel does the element-wise work in place.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..backend import get_array_module
from .optimizer import (
    Optimizer,
    check_common,
    check_hparam,
    ema_square_,
    grad_for_update,
    next_step,
    scalar_state,
)

__all__ = ["Adadelta", "Rprop", "ASGD"]


class Adadelta(Optimizer):
    """Adadelta (Zeiler), torch.optim.Adadelta's algorithm.

    `v = rho * v + (1 - rho) * g²`, `delta = sqrt(u + eps) / sqrt(v + eps) * g`,
    `u = rho * u + (1 - rho) * delta²`, `p -= lr * delta`; L2 weight decay on the gradient.
    """

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        check_common("Adadelta", lr, weight_decay, eps)
        check_hparam("Adadelta", 0.0 <= rho <= 1.0, "rho value", "rho", rho, "0 <= rho <= 1")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        rho = float(group["rho"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        maximize = bool(group["maximize"])
        for p, x, g in self._params_with_grad(group):
            state = self.state[p]
            if len(state) == 0:
                xp = get_array_module(x)
                state["step"] = np.float32(0.0)
                state["square_avg"] = xp.zeros_like(x)
                state["acc_delta"] = xp.zeros_like(x)
            next_step(state)
            self._apply(_adadelta_kernel, [x, g, state["square_avg"], state["acc_delta"]], lr,
                        rho, eps, weight_decay, maximize)


def _adadelta_kernel(x, g, square_avg, acc_delta, tmp1, tmp2, lr: float, rho: float,
                     eps: float, weight_decay: float, maximize: bool) -> None:
    xp = get_array_module(x)
    g = grad_for_update(g, x, weight_decay, maximize, tmp1)
    ema_square_(square_avg, g, rho, tmp2)
    xp.add(square_avg, eps, out=tmp2)
    xp.sqrt(tmp2, out=tmp2)
    xp.divide(g, tmp2, out=tmp2)  # g is no longer needed: tmp1 is free
    xp.add(acc_delta, eps, out=tmp1)
    xp.sqrt(tmp1, out=tmp1)
    tmp2 *= tmp1  # delta
    ema_square_(acc_delta, tmp2, rho, tmp1)
    tmp2 *= -lr
    x += tmp2


class Rprop(Optimizer):
    """Resilient backpropagation, torch.optim.Rprop's algorithm (full-batch learning).

    Each element has its own step size, starting at `lr`: it grows by `etas[1]` while the
    gradient keeps its sign and shrinks by `etas[0]` when the sign flips, clamped to
    `step_sizes`; `p -= sign(g) * step_size`, except that after a sign flip the gradient is
    taken as zero (no move, and no flip counted next step).
    """

    def __init__(self, params: Iterable, lr: float = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *,
                 maximize: bool = False) -> None:
        check_common("Rprop", lr, 0.0)
        etas, step_sizes = tuple(etas), tuple(step_sizes)
        if len(etas) != 2 or len(step_sizes) != 2:
            raise ValueError(f"Rprop: etas and step_sizes must be pairs, got etas={etas!r}, "
                             f"step_sizes={step_sizes!r}")
        check_hparam("Rprop", 0.0 < etas[0] < 1.0 < etas[1], "eta values", "etas", etas,
                     "0 < etas[0] < 1 < etas[1]")
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes,
                                      maximize=maximize))

    def _update(self, group: dict[str, Any]) -> None:
        etaminus, etaplus = (float(e) for e in group["etas"])
        step_size_min, step_size_max = (float(s) for s in group["step_sizes"])
        maximize = bool(group["maximize"])
        for p, x, g in self._params_with_grad(group):
            state = self.state[p]
            if len(state) == 0:
                xp = get_array_module(x)
                state["step"] = np.float32(0.0)
                state["prev"] = xp.zeros_like(x)
                state["step_size"] = xp.full_like(x, float(group["lr"]))
            next_step(state)
            self._apply(_rprop_kernel, [x, g, state["prev"], state["step_size"]], etaminus,
                        etaplus, step_size_min, step_size_max, maximize)


def _rprop_kernel(x, g, prev, step_size, tmp1, tmp2, etaminus: float, etaplus: float,
                  step_size_min: float, step_size_max: float, maximize: bool) -> None:
    xp = get_array_module(x)
    if maximize:
        g = xp.negative(g, out=tmp1)
    xp.multiply(g, prev, out=tmp2)
    flipped = tmp2 < 0
    kept = tmp2 > 0
    tmp2.fill(1.0)
    tmp2[kept] = etaplus
    tmp2[flipped] = etaminus
    step_size *= tmp2
    xp.clip(step_size, step_size_min, step_size_max, out=step_size)
    if g is not tmp1:
        xp.copyto(tmp1, g)
    tmp1[flipped] = 0.0  # after a sign flip: no step, and the next one compares with zero
    xp.copyto(prev, tmp1)
    xp.sign(tmp1, out=tmp2)
    tmp2 *= step_size
    x -= tmp2


class ASGD(Optimizer):
    """Averaged SGD (Polyak & Juditsky), torch.optim.ASGD's algorithm.

    `p *= 1 - lambd * eta`, `p -= eta * g`; the average `ax` follows p with weight `mu`
    (a copy of p while mu is 1, that is until step `t0`). After each step
    `eta = lr / (1 + lambd * lr * t)^alpha` and `mu = 1 / max(1, t - t0)`.
    """

    _scalar_state_keys = ("eta", "mu")

    def __init__(self, params: Iterable, lr: float = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0, *,
                 maximize: bool = False) -> None:
        check_common("ASGD", lr, weight_decay)
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                      weight_decay=weight_decay, maximize=maximize))

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        lambd = float(group["lambd"])
        alpha = float(group["alpha"])
        t0 = float(group["t0"])
        weight_decay = float(group["weight_decay"])
        maximize = bool(group["maximize"])
        for p, x, g in self._params_with_grad(group):
            state = self.state[p]
            if len(state) == 0:
                state["step"] = np.float32(0.0)
                state["eta"] = scalar_state(lr)
                state["mu"] = scalar_state(1.0)
                state["ax"] = get_array_module(x).zeros_like(x)
            t = next_step(state)
            self._apply(_asgd_kernel, [x, g, state["ax"]], float(state["eta"]),
                        float(state["mu"]), lambd, weight_decay, maximize)
            state["eta"] = scalar_state(lr / (1.0 + lambd * lr * t) ** alpha)
            state["mu"] = scalar_state(1.0 / max(1.0, t - t0))


def _asgd_kernel(x, g, ax, tmp1, tmp2, eta: float, mu: float, lambd: float,
                 weight_decay: float, maximize: bool) -> None:
    xp = get_array_module(x)
    g = grad_for_update(g, x, weight_decay, maximize, tmp1)
    x *= 1.0 - lambd * eta
    xp.multiply(g, -eta, out=tmp2)
    x += tmp2
    if mu != 1.0:
        xp.subtract(x, ax, out=tmp2)
        tmp2 *= mu
        ax += tmp2
    else:
        xp.copyto(ax, x)
