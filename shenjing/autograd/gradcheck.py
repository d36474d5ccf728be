"""gradcheck: backward's gradients against central differences in float64."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .engine import Tensor, grad
from .grad_mode import enable_grad, no_grad

__all__ = ["gradcheck", "GradcheckError"]

class GradcheckError(RuntimeError):
    """Raised by gradcheck when analytic and numerical gradients disagree."""


def gradcheck(
    fn: Callable,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    max_full: int = 64,
    seed: int = 0,
) -> bool:
    """Compare backward's gradients of `fn(*inputs)` with central differences in float64.

    Every input that requires grad must be float64. For outputs of at most `max_full`
    elements the whole Jacobian is compared (one backward per output element); larger
    outputs are projected on three random directions (one backward each), which still
    checks every input element. Returns True, or raises GradcheckError naming the input,
    the worst element and both values.
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True; nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; gradcheck needs float64 "
                f"inputs (central differences are meaningless in float32)"
            )

    def run() -> np.ndarray:
        with enable_grad():
            out = fn(*inputs)
        return out

    out = run()
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    m = out._data.size
    rng = np.random.default_rng(seed)
    if m <= max_full:
        directions = [np.eye(m, dtype=np.float64)[k].reshape(out.shape) for k in range(m)]
    else:
        directions = [rng.standard_normal(out.shape) for _ in range(3)]

    for k, v in enumerate(directions):
        out = run()
        if not out.requires_grad:
            analytic = [np.zeros_like(inputs[i]._data) for i in checked]
        else:
            grads = grad(out, [inputs[i] for i in checked], grad_outputs=Tensor(v))
            analytic = [
                np.zeros_like(inputs[i]._data) if g is None else g._data
                for i, g in zip(checked, grads)
            ]
        for i, a in zip(checked, analytic):
            x = inputs[i]._data
            num = np.zeros_like(x)
            flat = x.reshape(-1)  # a view: perturb in place, restore after
            num_flat = num.reshape(-1)
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                with no_grad():
                    fp = float(np.sum(fn(*inputs)._data * v))
                flat[j] = orig - eps
                with no_grad():
                    fm = float(np.sum(fn(*inputs)._data * v))
                flat[j] = orig
                num_flat[j] = (fp - fm) / (2 * eps)
            bad = ~(np.abs(a - num) <= atol + rtol * np.abs(num))  # a NaN on either side is bad
            if bad.any():
                err = np.abs(a - num) - rtol * np.abs(num)
                w = np.unravel_index(int(np.argmax(err)), x.shape) if x.ndim else ()
                what = f"output element {np.unravel_index(k, out.shape)}" if m <= max_full else (
                    f"random output direction {k}")
                msg = (
                    f"gradcheck: Jacobian mismatch for input {i} (shape {tuple(x.shape)}), "
                    f"{what}, at input element {tuple(int(t) for t in w)}: "
                    f"analytical {float(a[w]):.10g} vs numerical {float(num[w]):.10g} "
                    f"({int(bad.sum())} of {bad.size} elements outside atol={atol}, rtol={rtol})"
                )
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True
