"""Convolution and pooling, forward + backward: shenjing vs PyTorch in one process.

    python benchmarks/bench_conv.py [--reps 7] [--threads 2] [--only seed|alexnet] [--profile]

--threads sets both OpenBLAS's threads (NumPy's GEMMs) and torch's (default 2, the cores
here); --threads 1 compares single-threaded kernels, which background load disturbs less.

Times the seed CNN's conv/pool layers (Conv 1->32 3x3 on 128x1x28x28, MaxPool 2, Conv 32->64
3x3, MaxPool 2) and AlexNet's feature extractor at batch 8 on 3x227x227 (with its ReLUs and
the AdaptiveAvgPool2d((6, 6))), each as a whole stack and layer by layer. Both frameworks get
the same weights, input and random upstream gradient, and as many threads. Runs are
interleaved (shenjing, torch, shenjing, ...) so background load hits both alike; medians over
--reps runs, with the spread, and the ratio shenjing / torch (< 1: shenjing is faster).
PyTorch runs as users run it by default (no malloc tuning).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for both: OpenBLAS (set before NumPy loads) and torch")
    ap.add_argument("--only", choices=["seed", "alexnet"])
    ap.add_argument("--profile", action="store_true", help="cProfile the shenjing stacks")
    ap.add_argument("--gap", type=float, default=0.3,
                    help="seconds of pause before each timed run (idle threads stop spinning)")
    return ap.parse_args()


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:  # BLAS reads its thread count when NumPy is first imported
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import shenjing as sj  # noqa: E402
import shenjing.nn as snn  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("bench_conv.py needs torch as the reference: pip install torch")


def seed_layers() -> list:
    """(name, shenjing module, torch module) of the seed CNN's conv/pool layers."""
    return [("conv 1->32 3x3", snn.Conv2d(1, 32, 3), torch.nn.Conv2d(1, 32, 3)),
            ("maxpool 2", snn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
            ("conv 32->64 3x3", snn.Conv2d(32, 64, 3), torch.nn.Conv2d(32, 64, 3)),
            ("maxpool 2", snn.MaxPool2d(2), torch.nn.MaxPool2d(2))]


def alexnet_layers() -> list:
    """AlexNet's `features` and `avgpool`, as in torchvision and the seed."""
    spec = [("conv 3->64 11x11/4", dict(c=(3, 64, 11), stride=4, padding=2)), ("relu", None),
            ("maxpool 3/2", dict(k=3, s=2)),
            ("conv 64->192 5x5", dict(c=(64, 192, 5), padding=2)), ("relu", None),
            ("maxpool 3/2", dict(k=3, s=2)),
            ("conv 192->384 3x3", dict(c=(192, 384, 3), padding=1)), ("relu", None),
            ("conv 384->256 3x3", dict(c=(384, 256, 3), padding=1)), ("relu", None),
            ("conv 256->256 3x3", dict(c=(256, 256, 3), padding=1)), ("relu", None),
            ("maxpool 3/2", dict(k=3, s=2)), ("adaptive avgpool 6x6", "adaptive")]
    out = []
    for name, a in spec:
        if a is None:
            out.append((name, _SjRelu(), torch.nn.ReLU()))
        elif a == "adaptive":
            out.append((name, snn.AdaptiveAvgPool2d((6, 6)), torch.nn.AdaptiveAvgPool2d((6, 6))))
        elif "c" in a:
            kw = {k: v for k, v in a.items() if k != "c"}
            out.append((name, snn.Conv2d(*a["c"], **kw), torch.nn.Conv2d(*a["c"], **kw)))
        else:
            out.append((name, snn.MaxPool2d(a["k"], a["s"]), torch.nn.MaxPool2d(a["k"], a["s"])))
    return out


class _SjRelu(snn.Module):
    def forward(self, x):
        return x.relu()


def _sync(layers) -> None:
    for _, s, t in layers:
        for name, p in t.named_parameters():
            getattr(s, name).data[...] = p.detach().numpy()


def _step_fns(layers, x_np: np.ndarray, first_needs_grad: bool):
    """Forward + backward closures for both frameworks, with one fixed upstream gradient.

    shenjing gets x_np in its own memory layout (what its previous layer produced), torch a
    contiguous copy.
    """
    xs = sj.from_numpy(x_np.copy(order="K"))
    xs.requires_grad_(first_needs_grad)
    xt = torch.tensor(np.ascontiguousarray(x_np), requires_grad=first_needs_grad)
    with sj.no_grad():
        y = xs
        for _, s, _ in layers:
            y = s(y)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    # each framework gets the upstream gradient in the memory layout of its own output, as
    # its next layer would hand it back (shenjing: batch-innermost views; torch: contiguous)
    g_sj = np.empty_like(y.data)
    g_sj[...] = g
    gs, gt = sj.from_numpy(g_sj), torch.tensor(g)

    def run_sj():
        for _, s, _ in layers:
            s.zero_grad()
        xs.grad = None
        y = xs
        for _, s, _ in layers:
            y = s(y)
        y.backward(gs)

    def run_torch():
        for _, _, t in layers:
            t.zero_grad(set_to_none=True)
        xt.grad = None
        y = xt
        for _, _, t in layers:
            y = t(y)
        y.backward(gt)

    return run_sj, run_torch


def _time(fa, fb, reps: int) -> tuple:
    """Interleaved timings; a pause before each run lets the other library's idle threads
    stop spinning (OpenBLAS and OpenMP workers busy-wait for a while after each call, which
    would otherwise steal a core from whichever framework runs next)."""
    fa(), fb()  # warm-up
    ta, tb = [], []
    for _ in range(reps):
        for f, out in ((fa, ta), (fb, tb)):
            time.sleep(ARGS.gap if ARGS else 0.0)
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    return np.array(ta) * 1e3, np.array(tb) * 1e3


def _row(name: str, ta, tb) -> None:
    ma, mb = np.median(ta), np.median(tb)
    print(f"  {name:<24} shenjing {ma:8.2f} ms [{ta.min():7.2f}-{ta.max():7.2f}]   "
          f"torch {mb:8.2f} ms [{tb.min():7.2f}-{tb.max():7.2f}]   ratio {ma / mb:5.2f}")


def bench(title: str, layers, x_np: np.ndarray, reps: int, profile: bool) -> None:
    _sync(layers)
    print(f"{title}: input {x_np.shape}, forward + backward, median [min-max] of {reps}")
    fa, fb = _step_fns(layers, x_np, False)
    _row("whole stack", *_time(fa, fb, reps))
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(reps):
            fa()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    # layer by layer: each layer's own input (a gradient is wanted except for the first)
    inputs = [x_np]
    with sj.no_grad():
        for _, s, _ in layers[:-1]:
            inputs.append(s(sj.from_numpy(inputs[-1])).data)
    for i, (layer, h) in enumerate(zip(layers, inputs)):
        fa, fb = _step_fns([layer], h, i > 0)
        _row(layer[0], *_time(fa, fb, reps))
    print()


def main() -> None:
    args = ARGS
    torch.set_num_threads(args.threads)
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads); load average before: {_load()}\n")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    if args.only in (None, "seed"):
        x = rng.random((128, 1, 28, 28), dtype=np.float32)
        bench("seed CNN conv/pool layers, batch 128", seed_layers(), x, args.reps, args.profile)
    if args.only in (None, "alexnet"):
        x = rng.random((8, 3, 227, 227), dtype=np.float32)
        bench("AlexNet features, batch 8", alexnet_layers(), x, args.reps, args.profile)
    print(f"load average after: {_load()} (other processes on the machine skew both columns)")


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


if __name__ == "__main__":
    main()
