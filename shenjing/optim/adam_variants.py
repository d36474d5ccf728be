"""Adam's relatives: Adamax (infinity norm), NAdam (Nesterov momentum) and RAdam (rectified).

Each follows the single-tensor algorithm of its torch.optim counterpart: the same state,
the same scalars computed in Python floats (NAdam's running product of momenta kept in
torch's 0-d state precision), the same element-wise operations up to the order of a scalar
product. `_update` computes the scalars, a module-level kernel does the element-wise work in
place, run by `Optimizer._apply`.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..backend import get_array_module
from .optimizer import (
    Optimizer,
    check_betas,
    check_common,
    check_hparam,
    ema_square_,
    grad_for_update,
    lerp_,
    next_step,
    scalar_state,
)

__all__ = ["Adamax", "NAdam", "RAdam"]


class _AdamFamily(Optimizer):
    """Shared constructor checks and state (step, exp_avg and a second moment) of the three."""

    _second_moment = "exp_avg_sq"

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        check_common(name, defaults["lr"], defaults["weight_decay"], defaults["eps"])
        defaults["betas"] = check_betas(name, defaults["betas"])
        super().__init__(params, defaults)

    def _moments(self, p, x: np.ndarray) -> dict:
        """The parameter's state, created on its first step, with the step counted."""
        state = self.state[p]
        if len(state) == 0:
            xp = get_array_module(x)
            state["step"] = np.float32(0.0)
            self._init_extra_state(state)
            state["exp_avg"] = xp.zeros_like(x)
            state[self._second_moment] = xp.zeros_like(x)
        return state

    def _init_extra_state(self, state: dict) -> None:
        """Scalars a subclass keeps besides step (NAdam's mu_product)."""


class Adamax(_AdamFamily):
    """Adamax (Kingma & Ba, section 7), torch.optim.Adamax's algorithm.

    `m = lerp(m, g, 1 - beta1)`, `u = max(beta2 * u, |g| + eps)`, then
    `p -= lr / (1 - beta1^t) * m / u`; weight decay is added to the gradient (L2).
    """

    _second_moment = "exp_inf"

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        maximize = bool(group["maximize"])
        for p, x, g in self._params_with_grad(group):
            state = self._moments(p, x)
            t = next_step(state)
            clr = lr / (1.0 - beta1**t)
            self._apply(_adamax_kernel, [x, g, state["exp_avg"], state["exp_inf"]], beta1,
                        beta2, eps, weight_decay, maximize, clr)


def _adamax_kernel(x, g, m, u, tmp1, tmp2, beta1: float, beta2: float, eps: float,
                   weight_decay: float, maximize: bool, clr: float) -> None:
    xp = get_array_module(x)
    g = grad_for_update(g, x, weight_decay, maximize, tmp1)
    lerp_(m, g, 1.0 - beta1, tmp2)
    u *= beta2
    xp.abs(g, out=tmp2)
    tmp2 += eps
    xp.maximum(u, tmp2, out=u)
    xp.divide(m, u, out=tmp2)
    tmp2 *= -clr
    x += tmp2


class NAdam(_AdamFamily):
    """NAdam (Dozat), torch.optim.NAdam's algorithm.

    The momentum of step t is `mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))`; with
    `P_t = mu_1 ... mu_t` (state "mu_product") and `denom = sqrt(v / (1 - beta2^t)) + eps`,
    `p -= lr * (1 - mu_t) / (1 - P_t) * g / denom + lr * mu_{t+1} / (1 - P_t mu_{t+1}) * m /
    denom`. `decoupled_weight_decay` gives NAdamW (`p *= 1 - lr * weight_decay` first).
    """

    _scalar_state_keys = ("mu_product",)

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        check_hparam("NAdam", momentum_decay >= 0.0, "momentum_decay value", "momentum_decay",
                     momentum_decay, "momentum_decay >= 0")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _init_extra_state(self, state: dict) -> None:
        state["mu_product"] = scalar_state(1.0)

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        momentum_decay = float(group["momentum_decay"])
        decoupled = bool(group["decoupled_weight_decay"])
        maximize = bool(group["maximize"])
        for p, x, g in self._params_with_grad(group):
            state = self._moments(p, x)
            t = next_step(state)
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * momentum_decay))
            product = state["mu_product"]
            product = state["mu_product"] = product * type(product)(mu)
            grad_coef = -lr * (1.0 - mu) / (1.0 - float(product))
            avg_coef = -lr * mu_next / (1.0 - float(product) * mu_next)
            self._apply(_nadam_kernel, [x, g, state["exp_avg"], state["exp_avg_sq"]], lr,
                        beta1, beta2, eps, weight_decay, decoupled, maximize,
                        1.0 - beta2**t, grad_coef, avg_coef)


def _nadam_kernel(x, g, m, v, tmp1, tmp2, lr: float, beta1: float, beta2: float, eps: float,
                  weight_decay: float, decoupled: bool, maximize: bool,
                  bias_correction2: float, grad_coef: float, avg_coef: float) -> None:
    xp = get_array_module(x)
    if weight_decay != 0 and decoupled:
        x *= 1.0 - lr * weight_decay
    g = grad_for_update(g, x, 0.0 if decoupled else weight_decay, maximize, tmp1)
    lerp_(m, g, 1.0 - beta1, tmp2)
    ema_square_(v, g, beta2, tmp2)
    xp.divide(v, bias_correction2, out=tmp2)
    xp.sqrt(tmp2, out=tmp2)
    tmp2 += eps  # denom
    xp.divide(g, tmp2, out=tmp1)  # g is no longer needed after this
    tmp1 *= grad_coef
    x += tmp1
    xp.divide(m, tmp2, out=tmp2)
    tmp2 *= avg_coef
    x += tmp2


class RAdam(_AdamFamily):
    """RAdam (Liu et al.), torch.optim.RAdam's algorithm.

    With `rho_inf = 2 / (1 - beta2) - 1` and `rho_t = rho_inf - 2 t beta2^t / (1 -
    beta2^t)`: while `rho_t <= 5` the step is plain momentum, `p -= lr * m / (1 - beta1^t)`;
    after, it is Adam's scaled by the rectification `r_t = sqrt((rho_t - 4)(rho_t - 2)
    rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))`. `decoupled_weight_decay` as AdamW.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        decoupled = bool(group["decoupled_weight_decay"])
        maximize = bool(group["maximize"])
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        for p, x, g in self._params_with_grad(group):
            state = self._moments(p, x)
            t = next_step(state)
            bias_correction1 = 1.0 - beta1**t
            bias_correction2 = 1.0 - beta2**t
            rho_t = rho_inf - 2.0 * t * beta2**t / bias_correction2
            if rho_t > 5.0:
                rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)) ** 0.5
                adaptive_coef = -lr / bias_correction1 * bias_correction2**0.5 * rect
            else:
                adaptive_coef = None
            self._apply(_radam_kernel, [x, g, state["exp_avg"], state["exp_avg_sq"]], lr,
                        beta1, beta2, eps, weight_decay, decoupled, maximize,
                        bias_correction1, adaptive_coef)


def _radam_kernel(x, g, m, v, tmp1, tmp2, lr: float, beta1: float, beta2: float, eps: float,
                  weight_decay: float, decoupled: bool, maximize: bool,
                  bias_correction1: float, adaptive_coef: float | None) -> None:
    xp = get_array_module(x)
    if weight_decay != 0 and decoupled:
        x *= 1.0 - lr * weight_decay
    g = grad_for_update(g, x, 0.0 if decoupled else weight_decay, maximize, tmp1)
    lerp_(m, g, 1.0 - beta1, tmp2)
    ema_square_(v, g, beta2, tmp2)
    if adaptive_coef is None:  # variance not yet tractable: momentum SGD
        xp.multiply(m, -lr / bias_correction1, out=tmp2)
    else:
        xp.sqrt(v, out=tmp2)
        tmp2 += eps
        xp.divide(m, tmp2, out=tmp2)
        tmp2 *= adaptive_coef
    x += tmp2
