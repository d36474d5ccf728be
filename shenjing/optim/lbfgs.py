"""L-BFGS with an optional strong-Wolfe line search, torch.optim.LBFGS's algorithm.

All parameters are treated as one flat vector (one parameter group only). Each `step(closure)`
runs up to `max_iter` quasi-Newton iterations: the search direction comes from the two-loop
recursion over the last `history_size` curvature pairs (s, y), the step length is `lr` (the
first iteration scales it by 1 / |g|_1), or is found by a bracketing/zoom line search with
cubic interpolation satisfying the strong Wolfe conditions (Nocedal & Wright, alg. 3.5-3.6).
The state (direction, history, last step, flat gradient) lives in the state of the first
parameter, as in torch, so `state_dict` resumes mid-optimization.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np

from ..autograd import enable_grad, no_grad
from .optimizer import Optimizer, check_common, check_hparam

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    """Limited-memory BFGS; `step` needs a closure that clears the gradients, computes the
    loss, calls `backward()` and returns the loss.

    Args:
        lr: step length (default 1).
        max_iter: iterations per `step` (default 20).
        max_eval: closure evaluations per `step` (default `max_iter * 5 // 4`).
        tolerance_grad: stop when the largest gradient element is at most this.
        tolerance_change: stop when the loss or the step changes less than this.
        history_size: number of curvature pairs kept (default 100).
        line_search_fn: None (fixed step) or "strong_wolfe".
    """

    def __init__(self, params: Iterable, lr: float = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:
        check_common("LBFGS", lr, 0.0)
        for arg, value in (("max_iter", max_iter), ("history_size", history_size)):
            check_hparam("LBFGS", isinstance(value, int) and value >= 1, f"{arg} value", arg,
                         value, f"a positive integer {arg}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"line_search_fn={line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if getattr(self, "param_groups", None):
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # ------------------------------------------------------------------ flat views
    def _flat_grad(self) -> np.ndarray:
        """All gradients as one vector (zeros for a parameter without a gradient)."""
        parts = [np.zeros(p.numpy().size, p.numpy().dtype) if p.grad is None
                 else p.grad.numpy().reshape(-1) for p in self._params]
        return np.concatenate(parts)

    def _add_to_params(self, step_size: float, direction: np.ndarray) -> None:
        """params += step_size * direction (the flat vector cut into the parameters)."""
        offset = 0
        for p in self._params:
            x = self._param_array(p)
            n = x.size
            x += step_size * direction[offset:offset + n].reshape(x.shape)
            offset += n

    def _set_params(self, values: list[np.ndarray]) -> None:
        for p, value in zip(self._params, values, strict=True):
            np.copyto(self._param_array(p), value)

    def _evaluate(self, closure: Callable, start: list[np.ndarray], t: float,
                  direction: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and flat gradient at start + t * direction; the parameters are put back."""
        self._add_to_params(t, direction)
        loss = float(closure())
        flat_grad = self._flat_grad()
        self._set_params(start)
        return loss, flat_grad

    # ------------------------------------------------------------------ step
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Run up to `max_iter` iterations; returns the loss the first closure call gave."""
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that re-evaluates the model and "
                             "returns the loss")
        group = self.param_groups[0]
        lr = float(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        history_size = group["history_size"]

        def evaluate() -> Any:
            with enable_grad():
                return closure()

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with no_grad():
            orig_loss = evaluate()
            loss = float(orig_loss)
            evals = 1
            state["func_evals"] += 1
            flat_grad = self._flat_grad()
            if np.abs(flat_grad).max() <= tolerance_grad:
                return orig_loss
            d, t = state.get("d"), state.get("t")
            old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
            h_diag = state.get("H_diag")
            prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1
                if state["n_iter"] == 1:
                    d = -flat_grad
                    old_dirs, old_stps, ro, h_diag = [], [], [], 1.0
                else:
                    y = flat_grad - prev_flat_grad
                    s = d * t
                    ys = float(y @ s)
                    if ys > 1e-10:  # keep the pair only if the curvature is positive
                        if len(old_dirs) == history_size:
                            old_dirs.pop(0)
                            old_stps.pop(0)
                            ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        h_diag = ys / float(y @ y)
                    d = _two_loop(flat_grad, old_dirs, old_stps, ro, h_diag)
                prev_flat_grad = flat_grad.copy()
                prev_loss = loss
                if state["n_iter"] == 1:
                    t = min(1.0, 1.0 / float(np.abs(flat_grad).sum())) * lr
                else:
                    t = lr
                gtd = float(flat_grad @ d)
                if gtd > -tolerance_change:  # not a descent direction
                    break
                if group["line_search_fn"] is None:
                    self._add_to_params(t, d)
                    ls_evals = 0
                    if n_iter != max_iter:
                        loss = float(evaluate())
                        flat_grad = self._flat_grad()
                        ls_evals = 1
                else:
                    start = [self._param_array(p).copy() for p in self._params]
                    loss, flat_grad, t, ls_evals = _strong_wolfe(
                        lambda x0, step, direction: self._evaluate(evaluate, x0, step,
                                                                   direction),
                        start, t, d, loss, flat_grad, gtd, tolerance_change=tolerance_change,
                        max_ls=max_eval - evals)
                    self._add_to_params(t, d)
                evals += ls_evals
                state["func_evals"] += ls_evals
                if (n_iter == max_iter or evals >= max_eval
                        or np.abs(flat_grad).max() <= tolerance_grad
                        or np.abs(d * t).max() <= tolerance_change
                        or abs(loss - prev_loss) < tolerance_change):
                    break
            state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                         prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss


def _two_loop(flat_grad: np.ndarray, old_dirs: list, old_stps: list, ro: list,
              h_diag: float) -> np.ndarray:
    """The L-BFGS direction -H g from the stored curvature pairs (two-loop recursion)."""
    q = -flat_grad
    al = [0.0] * len(old_dirs)
    for i in range(len(old_dirs) - 1, -1, -1):
        al[i] = float(old_stps[i] @ q) * ro[i]
        q -= al[i] * old_dirs[i]
    r = q * h_diag
    for i in range(len(old_dirs)):
        be_i = float(old_dirs[i] @ r) * ro[i]
        r += (al[i] - be_i) * old_stps[i]
    return r


def _cubic_min(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
               bounds: tuple[float, float] | None = None) -> float:
    """Minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to bounds
    (default: between the two points); their midpoint when the cubic has no minimum."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, lo), hi)


def _strong_wolfe(evaluate: Callable, x: list, t: float, d: np.ndarray, f: float,
                  g: np.ndarray, gtd: float, c1: float = 1e-4, c2: float = 0.9,
                  tolerance_change: float = 1e-9, max_ls: int = 25):
    """Step length t along d satisfying the strong Wolfe conditions.

    Returns (loss, flat gradient, t, number of evaluations). Phase 1 grows t until an
    interval brackets an acceptable step; phase 2 shrinks the bracket by safeguarded cubic
    interpolation.
    """
    d_norm = float(np.abs(d).max())
    f_new, g_new = evaluate(x, t, d)
    evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    bracket_gtd: list = []
    while ls_iter < max_ls:
        wolfe = abs(gtd_new) <= -c2 * gtd
        armijo_fails = f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev)
        if armijo_fails or (gtd_new >= 0 and not wolfe):  # [t_prev, t] brackets a step
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if wolfe:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        # extrapolate between 1.01 t and 10 t
        t_next = _cubic_min(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                            bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(x, t, d)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:  # out of evaluations: choose between the start and the last point
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_min(bracket[0], bracket_f[0], bracket_gtd[0],
                       bracket[1], bracket_f[1], bracket_gtd[1])
        # keep t at least 10% of the bracket away from its ends, unless it just moved there
        lo, hi = min(bracket), max(bracket)
        margin = 0.1 * (hi - lo)
        if min(hi - t, t - lo) < margin:
            if insufficient_progress or t >= hi or t <= lo:
                t = hi - margin if abs(t - hi) < abs(t - lo) else lo + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = evaluate(x, t, d)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high] = t, f_new
            bracket_g[high], bracket_gtd[high] = g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_g[low], bracket_gtd[low] = g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals
