"""Optimizers with per-element step sizes: Adam, AdamW, RMSprop and Adagrad.

Each follows the single-tensor algorithm of its torch.optim counterpart (where eps is added,
bias correction, where weight decay enters, the first moment as a lerp), operation for
operation except one algebraically equal rearrangement in Adam's last line that saves a pass.
`_update` computes the per-parameter scalars; a module-level kernel does the element-wise
work with in-place ufuncs, run by `Optimizer._apply`.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .. import compiled
from ..backend import get_array_module
from .optimizer import (
    Optimizer,
    check_betas,
    check_common,
    check_hparam,
    compiled_update,
    ema_square_,
    grad_for_update,
    lerp_,
    next_step,
)

__all__ = ["Adam", "AdamW", "RMSprop", "Adagrad"]


class Adam(Optimizer):
    """Adam (Kingma & Ba), torch.optim.Adam's algorithm; AdamW is the decoupled variant.

    `m = lerp(m, g, 1 - beta1)`, `v = beta2 * v + (1 - beta2) * g²` (with `v_max =
    max(v_max, v)` when amsgrad), then `p -= lr / (1 - beta1^t) * m / (sqrt(v) /
    sqrt(1 - beta2^t) + eps)`. Weight decay is added to the gradient (L2), or, with
    `decoupled_weight_decay` (AdamW), applied as `p *= 1 - lr * weight_decay` first.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        name = type(self).__name__
        check_common(name, lr, weight_decay, eps)
        betas = check_betas(name, betas)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        amsgrad = bool(group["amsgrad"])
        maximize = bool(group["maximize"])
        decoupled = bool(group.get("decoupled_weight_decay", False))
        for p, x, g in self._params_with_grad(group):
            state = self.state[p]
            if len(state) == 0:
                xp = get_array_module(x)
                state["step"] = np.float32(0.0)
                state["exp_avg"] = xp.zeros_like(x)
                state["exp_avg_sq"] = xp.zeros_like(x)
                if amsgrad:
                    state["max_exp_avg_sq"] = xp.zeros_like(x)
            t = next_step(state)
            v_max = _state_array(state, "max_exp_avg_sq", x) if amsgrad else None
            bias_correction2_sqrt = (1.0 - beta2**t) ** 0.5
            step_size = lr / (1.0 - beta1**t)
            self._apply(_adam_kernel, [x, g, state["exp_avg"], state["exp_avg_sq"], v_max],
                        lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step_size,
                        bias_correction2_sqrt)


def _adam_kernel(x, g, m, v, v_max, tmp1, tmp2, lr: float, beta1: float, beta2: float,
                 eps: float, weight_decay: float, decoupled: bool, maximize: bool,
                 step_size: float, bias_correction2_sqrt: float) -> None:
    xp = get_array_module(x)
    if compiled_update(x, g, m, v, v_max):  # the same steps in one pass (shenjing.compiled)
        compiled.kernels().adam_step(
            x, g, m, v, v_max, beta1, beta2, 1.0 - lr * weight_decay if decoupled else 1.0,
            0.0 if decoupled else weight_decay, maximize, eps * bias_correction2_sqrt,
            -step_size * bias_correction2_sqrt)
        return
    if weight_decay != 0 and decoupled:
        x *= 1.0 - lr * weight_decay
    g = grad_for_update(g, x, 0.0 if decoupled else weight_decay, maximize, tmp1)
    lerp_(m, g, 1.0 - beta1, tmp2)
    ema_square_(v, g, beta2, tmp2)
    if v_max is not None:
        xp.maximum(v_max, v, out=v_max)
        v = v_max
    # p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps), with sqrt(bc2) multiplied through:
    # p -= (step_size * sqrt(bc2)) * m / (sqrt(v) + eps * sqrt(bc2)) saves one pass.
    xp.sqrt(v, out=tmp2)
    tmp2 += eps * bias_correction2_sqrt
    xp.divide(m, tmp2, out=tmp2)
    tmp2 *= -step_size * bias_correction2_sqrt
    x += tmp2


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): `p *= 1 - lr * weight_decay`
    before the Adam step, so the decay never enters m or v."""

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)


class RMSprop(Optimizer):
    """RMSprop, torch.optim.RMSprop's algorithm.

    `v = alpha * v + (1 - alpha) * g²`; centered subtracts the squared EMA of g,
    `avg = sqrt(v - ḡ²) + eps` (else `sqrt(v) + eps`); with momentum `b = momentum * b +
    g / avg` and `p -= lr * b`, otherwise `p -= lr * g / avg`.

    `eps_inside_sqrt=True` (a shenjing option, not torch's) adds eps under the root instead,
    `avg = sqrt(v - ḡ² + eps)`, which is where Keras 3's RMSprop puts it.
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, *, maximize: bool = False,
                 eps_inside_sqrt: bool = False) -> None:
        check_common("RMSprop", lr, weight_decay, eps)
        check_hparam("RMSprop", momentum >= 0.0, "momentum value", "momentum", momentum,
                     "momentum >= 0")
        check_hparam("RMSprop", alpha >= 0.0, "alpha value", "alpha", alpha, "alpha >= 0")
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize,
                        eps_inside_sqrt=eps_inside_sqrt)
        super().__init__(params, defaults)

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        alpha = float(group["alpha"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        momentum = float(group["momentum"])
        centered = bool(group["centered"])
        maximize = bool(group["maximize"])
        eps_inside_sqrt = bool(group.get("eps_inside_sqrt", False))
        for p, x, g in self._params_with_grad(group):
            state = self.state[p]
            if len(state) == 0:
                state["step"] = np.float32(0.0)
                state["square_avg"] = get_array_module(x).zeros_like(x)
                if momentum > 0:
                    state["momentum_buffer"] = get_array_module(x).zeros_like(x)
                if centered:
                    state["grad_avg"] = get_array_module(x).zeros_like(x)
            next_step(state)
            grad_avg = _state_array(state, "grad_avg", x) if centered else None
            buf = _state_array(state, "momentum_buffer", x) if momentum > 0 else None
            self._apply(_rmsprop_kernel, [x, g, state["square_avg"], grad_avg, buf], lr, alpha,
                        eps, weight_decay, momentum, maximize, eps_inside_sqrt)


def _rmsprop_kernel(x, g, square_avg, grad_avg, buf, tmp1, tmp2, lr: float, alpha: float,
                    eps: float, weight_decay: float, momentum: float, maximize: bool,
                    eps_inside_sqrt: bool) -> None:
    xp = get_array_module(x)
    g = grad_for_update(g, x, weight_decay, maximize, tmp1)
    ema_square_(square_avg, g, alpha, tmp2)
    if grad_avg is not None:  # centered: avg = sqrt(E[g^2] - E[g]^2) + eps
        lerp_(grad_avg, g, 1.0 - alpha, tmp2)
        xp.multiply(grad_avg, grad_avg, out=tmp2)
        xp.subtract(square_avg, tmp2, out=tmp2)
        v = tmp2
    else:
        v = square_avg
    if eps_inside_sqrt:  # Keras 3: sqrt(v + eps)
        xp.add(v, eps, out=tmp2)
        xp.sqrt(tmp2, out=tmp2)
    else:  # torch: sqrt(v) + eps
        xp.sqrt(v, out=tmp2)
        tmp2 += eps
    if buf is not None:
        buf *= momentum
        xp.divide(g, tmp2, out=tmp2)
        buf += tmp2
        xp.multiply(buf, -lr, out=tmp2)
        x += tmp2
    else:
        xp.multiply(g, -lr, out=tmp1)
        tmp1 /= tmp2
        x += tmp1


class Adagrad(Optimizer):
    """Adagrad, torch.optim.Adagrad's algorithm.

    `s += g²`, `p -= clr * g / (sqrt(s) + eps)` with `clr = lr / (1 + (t - 1) * lr_decay)`.
    The state (step and the accumulator, filled with `initial_accumulator_value`) is created
    for every parameter at construction, as torch does.
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        check_common("Adagrad", lr, weight_decay, eps)
        check_hparam("Adagrad", lr_decay >= 0.0, "lr_decay value", "lr_decay", lr_decay,
                     "lr_decay >= 0")
        check_hparam("Adagrad", initial_accumulator_value >= 0.0,
                     "initial_accumulator_value value", "initial_accumulator_value",
                     initial_accumulator_value, "initial_accumulator_value >= 0")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group: dict[str, Any]) -> dict:
        state = self.state[p]
        state["step"] = np.float32(0.0)
        x = p.numpy()
        state["sum"] = get_array_module(x).full_like(x, float(group["initial_accumulator_value"]))
        return state

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        lr_decay = float(group["lr_decay"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        maximize = bool(group["maximize"])
        for p, x, g in self._params_with_grad(group):
            state = self.state[p]
            if len(state) == 0:  # a group added after construction
                state = self._init_state(p, group)
            t = next_step(state)
            clr = lr / (1.0 + (t - 1.0) * lr_decay)
            self._apply(_adagrad_kernel, [x, g, state["sum"]], clr, eps, weight_decay, maximize)


def _adagrad_kernel(x, g, state_sum, tmp1, tmp2, clr: float, eps: float, weight_decay: float,
                    maximize: bool) -> None:
    xp = get_array_module(x)
    g = grad_for_update(g, x, weight_decay, maximize, tmp1)
    xp.multiply(g, g, out=tmp2)
    state_sum += tmp2
    xp.sqrt(state_sum, out=tmp2)
    tmp2 += eps
    xp.multiply(g, -clr, out=tmp1)
    tmp1 /= tmp2
    x += tmp1


def _state_array(state: dict, key: str, x: np.ndarray) -> np.ndarray:
    """state[key], created as zeros when an option was switched on after the first step."""
    arr = state.get(key)
    if arr is None:
        arr = state[key] = get_array_module(x).zeros_like(x)
    return arr
