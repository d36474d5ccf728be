"""Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any, Iterable

from .. import compiled
from ..backend import get_array_module
from .optimizer import Optimizer, check_common, check_hparam, compiled_update, grad_for_update

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD, torch.optim.SGD's algorithm step for step.

    With gradient g (negated when `maximize`), `g += weight_decay * p`; with momentum the
    buffer starts as g on the first step and is then `b = momentum * b + (1 - dampening) * g`;
    the step uses `g + momentum * b` (Nesterov) or `b`; finally `p -= lr * step`.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        check_common("SGD", lr, weight_decay)
        check_hparam("SGD", momentum >= 0.0, "momentum value", "momentum", momentum,
                     "momentum >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={momentum!r}, dampening={dampening!r})")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, group: dict[str, Any]) -> None:
        lr = float(group["lr"])
        weight_decay = float(group["weight_decay"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        nesterov = bool(group["nesterov"])
        maximize = bool(group["maximize"])
        for p, x, g in self._params_with_grad(group):
            buf, first = None, False
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:  # the first step's buffer is the gradient itself
                    buf = state["momentum_buffer"] = get_array_module(x).empty_like(x)
                    first = True
            if compiled_update(x, g, buf):  # the same steps in one pass, whole array
                compiled.kernels().sgd_step(x, g, buf, lr, weight_decay, maximize, momentum,
                                            dampening, nesterov, first)
            else:
                self._apply(_sgd_kernel, [x, g, buf], lr, weight_decay, momentum, dampening,
                            nesterov, maximize, first)


def _sgd_kernel(x, g, buf, tmp1, tmp2, lr: float, weight_decay: float, momentum: float,
                dampening: float, nesterov: bool, maximize: bool, first: bool) -> None:
    xp = get_array_module(x)
    g = grad_for_update(g, x, weight_decay, maximize, tmp1)
    if buf is not None:
        if first:
            xp.copyto(buf, g)
        else:
            buf *= momentum
            if dampening == 0:
                buf += g
            else:
                xp.multiply(g, 1.0 - dampening, out=tmp2)
                buf += tmp2
        if nesterov:
            xp.multiply(buf, momentum, out=tmp2)
            tmp2 += g
            g = tmp2
        else:
            g = buf
    xp.multiply(g, -lr, out=tmp2)
    x += tmp2
