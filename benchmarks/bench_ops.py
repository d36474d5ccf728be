"""Per-op cost of shenjing's autograd, side by side with PyTorch 2.13 CPU and raw NumPy.

    python benchmarks/bench_ops.py [--reps 7] [--profile]

(a) Small-op overhead: a 16x16 `a * b + c` with graph recording, then backward with an
    upstream gradient; time per iteration, shenjing / torch (target <= 1.0x).
(b) Large ops on 1024x1024 float32 (add, mul, exp, relu, matmul): shenjing's forward, and
    forward + backward, against raw NumPy doing the same arithmetic (target <= 1.1x), with
    torch alongside for reference.

"The same arithmetic" in NumPy is the forward plus the backward formulas, giving each input
its own gradient array (the caller's upstream gradient is never aliased, as in shenjing and
torch): add `a + b; g.copy(); g.copy()`, mul `a * b; g * b; g * a`, exp `e = exp(a); g * e`,
relu `r = maximum(a, 0); g * (r > 0)`, matmul `a @ b; g @ b.T; a.T @ g`.

Everything runs in one process with torch.set_num_threads equal to NumPy's BLAS threads.
Systems are interleaved (A B C A B C ...) over --reps repeats; each cell is the median time
per iteration, each ratio the median of the per-repeat ratios with its min-max spread.
`--profile` prints a cProfile of shenjing's small-op loop (the apply/backward path).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import sys
import time
from typing import Callable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import shenjing as sj  # noqa: E402

THREADS = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))


def _blas() -> str:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps['name']} {deps['version']}"
    except Exception:  # noqa: BLE001 - only a label
        return "unknown BLAS"


def machine_line(torch) -> str:
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"NumPy {np.__version__} on {_blas()}, {THREADS} BLAS threads; "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads; "
            f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} "
            f"at start (others' jobs distort 2-thread timings, torch's most)")


def per_iter(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def interleaved(cases: dict, n: int, reps: int) -> dict:
    """Per-iteration times of every case, `reps` repeats each, run A B C A B C ..."""
    for fn in cases.values():  # warm-up: allocator, caches, BLAS threads
        per_iter(fn, max(1, n // 5))
    times = {k: [] for k in cases}
    for _ in range(reps):
        for k, fn in cases.items():
            times[k].append(per_iter(fn, n))
    return times


def ratio(times: dict, num: str, den: str) -> tuple:
    r = [a / b for a, b in zip(times[num], times[den])]
    return statistics.median(r), min(r), max(r)


def _us(t: float) -> str:
    return f"{t * 1e6:9.1f} us" if t < 1e-3 else f"{t * 1e3:9.2f} ms"


# ----------------------------------------------------------------------------- (a) small op


def small_cases(torch) -> dict:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((16, 16)).astype(np.float32) for _ in range(4)]
    a, b, c = (sj.tensor(x, requires_grad=True) for x in arrays[:3])
    g = sj.tensor(arrays[3])
    ta, tb, tc = (torch.tensor(x, requires_grad=True) for x in arrays[:3])
    tg = torch.tensor(arrays[3])

    def sj_step():
        a.grad = b.grad = c.grad = None
        (a * b + c).backward(g)

    def torch_step():
        ta.grad = tb.grad = tc.grad = None
        (ta * tb + tc).backward(tg)

    return {
        "shenjing fwd": lambda: a * b + c,
        "torch fwd": lambda: ta * tb + tc,
        "shenjing fwd+bwd": sj_step,
        "torch fwd+bwd": torch_step,
    }


# ----------------------------------------------------------------------------- (b) large ops


def large_cases(torch, op: str, n: int = 1024) -> dict:
    rng = np.random.default_rng(1)
    x, y, gg = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(3))
    # shenjing's tensors share the reference's arrays: the same memory for both, so the
    # ratio measures autograd, not where the allocator happened to place two copies (a*b on
    # other copies of the same values measured 1.1-1.3x slower in plain NumPy)
    a, b = sj.from_numpy(x).requires_grad_(), sj.from_numpy(y).requires_grad_()
    g = sj.from_numpy(gg)
    ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    tg = torch.tensor(gg)
    sj_fwd, torch_fwd, np_fwd, np_both = {
        "add": (lambda: a + b, lambda: ta + tb, lambda: x + y,
                lambda: (x + y, gg.copy(), gg.copy())),
        "mul": (lambda: a * b, lambda: ta * tb, lambda: x * y,
                lambda: (x * y, gg * y, gg * x)),
        "exp": (lambda: a.exp(), lambda: ta.exp(), lambda: np.exp(x), lambda: _np_exp(x, gg)),
        "relu": (lambda: a.relu(), lambda: ta.relu(), lambda: np.maximum(x, 0),
                 lambda: _np_relu(x, gg)),
        "matmul": (lambda: a @ b, lambda: ta @ tb, lambda: x @ y,
                   lambda: (x @ y, gg @ y.T, x.T @ gg)),
    }[op]
    unary = op in ("exp", "relu")

    def sj_both():
        a.grad = b.grad = None
        sj_fwd().backward(g)

    def torch_both():
        ta.grad = tb.grad = None
        torch_fwd().backward(tg)

    assert _np_check(op, x, y, gg, a, b, g, unary, sj_fwd)
    return {"numpy fwd": np_fwd, "shenjing fwd": sj_fwd, "torch fwd": torch_fwd,
            "numpy fwd+bwd": np_both, "shenjing fwd+bwd": sj_both, "torch fwd+bwd": torch_both}


def _np_exp(x, g):
    e = np.exp(x)
    return e, g * e


def _np_relu(x, g):
    r = np.maximum(x, 0)
    return r, g * (r > 0)


def _np_check(op, x, y, g, a, b, gt, unary, sj_fwd) -> bool:
    """The NumPy baseline computes what shenjing computes (so the ratio compares like work)."""
    a.grad = b.grad = None
    out = sj_fwd()
    out.backward(gt)
    if op == "exp":
        want = [g * np.exp(x)]
    elif op == "relu":
        want = [g * (x > 0)]
    elif op == "add":
        want = [g, g]
    elif op == "mul":
        want = [g * y, g * x]
    else:
        want = [g @ y.T, x.T @ g]
    got = [a.grad.numpy()] if unary else [a.grad.numpy(), b.grad.numpy()]
    return all(np.allclose(u, v, rtol=1e-4, atol=1e-3) for u, v in zip(got, want))


# ----------------------------------------------------------------------------- report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--small-iters", type=int, default=3000)
    ap.add_argument("--large-iters", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(THREADS)
    print(machine_line(torch))
    print(f"reps={args.reps} (interleaved, median; spread = min-max of per-rep ratios)\n")

    t = interleaved(small_cases(torch), args.small_iters, args.reps)
    print("(a) 16x16 a * b + c with graph recording       shenjing        torch   ratio "
          "(spread)")
    for what in ("fwd", "fwd+bwd"):
        r, lo, hi = ratio(t, f"shenjing {what}", f"torch {what}")
        print(f"    {what:<42} {_us(statistics.median(t[f'shenjing {what}']))} "
              f"{_us(statistics.median(t[f'torch {what}']))}  {r:5.2f}x ({lo:.2f}-{hi:.2f})"
              f"{'   target <= 1.0x' if what == 'fwd+bwd' else ''}")

    print("\n(b) 1024x1024 float32          numpy     shenjing        torch   "
          "shenjing/numpy (spread)   torch/numpy")
    for op in ("add", "mul", "exp", "relu", "matmul"):
        iters = max(3, args.large_iters // (4 if op == "matmul" else 1))
        t = interleaved(large_cases(torch, op), iters, args.reps)
        for what in ("fwd", "fwd+bwd"):
            r, lo, hi = ratio(t, f"shenjing {what}", f"numpy {what}")
            rt = ratio(t, f"torch {what}", f"numpy {what}")[0]
            print(f"    {op + ' ' + what:<16} {_us(statistics.median(t[f'numpy {what}']))} "
                  f"{_us(statistics.median(t[f'shenjing {what}']))} "
                  f"{_us(statistics.median(t[f'torch {what}']))}   "
                  f"{r:5.2f}x ({lo:.2f}-{hi:.2f})        {rt:5.2f}x")
    print("    target: shenjing/numpy <= 1.1x")

    if args.profile:
        step = small_cases(torch)["shenjing fwd+bwd"]
        prof = cProfile.Profile()
        prof.runcall(per_iter, step, 20_000)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
