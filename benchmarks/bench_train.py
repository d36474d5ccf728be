"""Training throughput, shenjing vs PyTorch 2.13 CPU, side by side (issue 3's W1–W6, issue
12's W5b and W7; the workloads themselves are in workloads.py).

    python benchmarks/bench_train.py W1 [W2 ...] [--reps 7] [--memory]
    python benchmarks/bench_train.py all

Each workload is defined once as a function of the library (`torch` or `shenjing`), so
torch.nn and shenjing.nn build the same architecture; shenjing then loads torch's initial
weights, and both train on the same batch with the same optimizer. Timing happens in one process,
interleaved (shenjing, torch, shenjing, torch, ...) after a warm-up, with a pause before
each timed block (an idle OpenBLAS or OpenMP pool spins for ~0.1 s and would steal a core
from the other library's next block), with
`torch.set_num_threads` equal to NumPy's BLAS threads; the medians' ratio is reported with
the spread (min–max of the per-rep ratios).

The run starts by measuring the machine's GEMM ceiling (float32 2048³ matmul, NumPy's and
torch's, interleaved, medians). For W1 and W6 it counts the FLOPs of a training step
(conv and linear multiply-adds, forward and backward, ×2) and reports each framework's
share of NumPy's ceiling.

`--memory` runs every workload again in two fresh processes, one per framework (the other
is never imported), and reports each one's peak resident set size and the ratio
shenjing/torch. PyTorch runs as users run it by default (glibc malloc untuned); for
the tuned-malloc figure, run with MALLOC_MMAP_THRESHOLD_=1000000000
MALLOC_TRIM_THRESHOLD_=1000000000000 MALLOC_TOP_PAD_=1000000000 in the environment (it
applies to both libraries in the process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), HERE]

from workloads import WORKLOADS, step_flops  # noqa: E402

THREADS = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
GEMM_N = 2048

FLOP_COUNTED = ("W1", "W6")  # conv steps whose share of the GEMM ceiling is reported


# ----------------------------------------------------------------------------- runners
def make_runner(framework: str, name: str, torch_state=None):
    """A zero-argument training step for `framework` on workload `name`."""
    build, batch, (opt_name, opt_kw), _, _ = WORKLOADS[name]
    x_np, y_np = batch()
    if framework == "torch":
        import torch

        torch.set_num_threads(THREADS)
        torch.manual_seed(0)
        model = build(torch)
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
        opt = getattr(torch.optim, opt_name)(model.parameters(), **opt_kw)
        F = torch.nn.functional
    else:
        import shenjing
        from shenjing import optim
        from shenjing.nn import functional as F

        shenjing.manual_seed(0)
        model = build(shenjing)
        if torch_state is not None:
            model.load_state_dict(torch_state)
        x, y = shenjing.from_numpy(x_np), shenjing.from_numpy(y_np)
        opt = getattr(optim, opt_name)(model.parameters(), **opt_kw)
    model.train()

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.item())

    return model, step


def time_steps(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def compare(name: str, reps: int, pause: float) -> dict:
    import torch

    steps = WORKLOADS[name][3]
    tmodel, tstep = make_runner("torch", name)
    state = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
    _, sstep = make_runner("shenjing", name, state)
    first = (sstep(), tstep())  # same weights, same batch: the first losses agree
    for _ in range(2):  # warm-up
        sstep()
        tstep()
    s_times, t_times = [], []
    for _ in range(reps):
        time.sleep(pause)  # let the other library's idle BLAS/OpenMP threads stop spinning
        s_times.append(time_steps(sstep, steps))
        time.sleep(pause)
        t_times.append(time_steps(tstep, steps))
    ratios = [s / t for s, t in zip(s_times, t_times)]
    return {
        "workload": name, "description": WORKLOADS[name][4],
        "shenjing_ms": 1e3 * statistics.median(s_times),
        "torch_ms": 1e3 * statistics.median(t_times),
        "ratio": statistics.median(s_times) / statistics.median(t_times),
        "ratio_min": min(ratios), "ratio_max": max(ratios),
        "first_loss": first, "threads": THREADS, "torch": torch.__version__,
        "flops": (step_flops(tmodel, torch.from_numpy(WORKLOADS[name][1]()[0]))
                  if name in FLOP_COUNTED else None),
        "load_avg": os.getloadavg()[0],
    }


def gemm_ceiling(reps: int, pause: float) -> dict:
    """float32 GEMM GFLOP/s of NumPy and torch on 2048³, interleaved, medians of `reps`."""
    import torch

    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    a, b = (rng.random((GEMM_N, GEMM_N), dtype=np.float32) for _ in range(2))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    flop = 2.0 * GEMM_N**3
    runs = {"numpy": lambda: a @ b, "torch": lambda: ta @ tb}
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(reps):
        for key, run in runs.items():
            time.sleep(pause)
            t0 = time.perf_counter()
            run()
            run()
            times[key].append((time.perf_counter() - t0) / 2)
    return {f"{k}_gflops": flop / statistics.median(v) / 1e9 for k, v in times.items()}


def peak_rss_mb(framework: str, name: str) -> float:
    """Peak RSS (VmHWM) of a fresh process that imports one framework and trains `name`.

    VmHWM belongs to the process's own address space; ru_maxrss would not do here, since
    Linux carries it across fork and exec from this (torch-loaded) parent.
    """
    code = (f"import sys; sys.path.insert(0, {HERE!r});"
            f"import bench_train as b; _, s = b.make_runner({framework!r}, {name!r});"
            f"[s() for _ in range({max(3, WORKLOADS[name][3])})];"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def report_line(r: dict, ceiling: float, memory: bool) -> str:
    """One workload's line: times, ratio and spread, share of the GEMM ceiling, peak RSS."""
    line = (f"{r['workload']:4} {r['description']:66} {r['shenjing_ms']:8.1f}ms "
            f"{r['torch_ms']:8.1f}ms {r['ratio']:6.2f} {r['ratio_min']:5.2f}–{r['ratio_max']:.2f}"
            f"  load {r['load_avg']:4.1f}")
    if r["flops"]:
        share = [100 * r["flops"] / (r[k] / 1e3) / (ceiling * 1e9)
                 for k in ("shenjing_ms", "torch_ms")]
        r["ceiling_pct"] = share
        line += (f"  {r['flops'] / 1e9:.2f} GFLOP/step = {share[0]:.0f}% / {share[1]:.0f}% of "
                 f"the ceiling")
    if memory:
        line += (f"  RSS {r['rss_shenjing_mb']:.0f} / {r['rss_torch_mb']:.0f} MB = "
                 f"{r['rss_shenjing_mb'] / r['rss_torch_mb']:.2f}")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workloads", nargs="+", help=f"{', '.join(WORKLOADS)} or all")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS")
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds of sleep before each timed block (idle BLAS threads spin)")
    parser.add_argument("--json", help="append results as JSON lines to this file")
    args = parser.parse_args()
    names = list(WORKLOADS) if args.workloads == ["all"] else args.workloads
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; expected {list(WORKLOADS)} or all")
    gemm = gemm_ceiling(max(3, args.reps), args.pause)
    print(f"GEMM ceiling (float32 {GEMM_N}³, {THREADS} threads): NumPy "
          f"{gemm['numpy_gflops']:.0f} GFLOP/s, torch {gemm['torch_gflops']:.0f} GFLOP/s; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'':4} {'workload':66} {'shenjing':>10} {'torch':>10} {'ratio':>6} {'spread':>12}")
    for name in names:
        r = compare(name, args.reps, args.pause)
        if args.memory:
            r["rss_shenjing_mb"] = peak_rss_mb("shenjing", name)
            r["rss_torch_mb"] = peak_rss_mb("torch", name)
        print(report_line(r, gemm["numpy_gflops"], args.memory), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(dict(r, **gemm)) + "\n")


if __name__ == "__main__":
    main()
