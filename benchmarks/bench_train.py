"""Training throughput, shenjing vs PyTorch 2.13 CPU, side by side (issue 3's W1–W6).

    python benchmarks/bench_train.py W1 [W2 ...] [--reps 7] [--memory]
    python benchmarks/bench_train.py all

Each workload is defined once as a function of the library (`torch` or `shenjing`), so
torch.nn and shenjing.nn build the same architecture; shenjing then loads torch's initial
weights, and both train on the same batch with the same optimizer. Timing happens in one process,
interleaved (shenjing, torch, shenjing, torch, ...) after a warm-up, with a pause before
each timed block (an idle OpenBLAS or OpenMP pool spins for ~0.1 s and would steal a core
from the other library's next block), with
`torch.set_num_threads` equal to NumPy's BLAS threads; the medians' ratio is reported with
the spread (min–max of the per-rep ratios). `--memory` runs every workload again in two
fresh processes, one per framework (the other is never imported), and reports each one's
peak resident set size. PyTorch runs as users run it by default (glibc malloc untuned); for
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

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

THREADS = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))


# ----------------------------------------------------------------------------- workloads
def w1_model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 5 * 5, 10))


def w2_model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Linear(128, 10))


def w3_model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, 10))


def w4_model(lib):
    nn = lib.nn
    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(100, 64)
            self.lstm = nn.LSTM(64, 256, batch_first=True)
            self.fc = nn.Linear(256, 100)

        def forward(self, x):
            out, _ = self.lstm(self.embedding(x))
            return self.fc(out).reshape(-1, 100)

    return CharLSTM()


def w5_model(lib):
    nn = lib.nn
    class TextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(25000, 100)
            self.convs = nn.ModuleList([nn.Conv2d(1, 100, (k, 100)) for k in (3, 4, 5)])
            self.dropout = nn.Dropout(0.5)
            self.fc = nn.Linear(300, 2)

        def forward(self, text):
            e = self.embedding(text).unsqueeze(1)
            pooled = [c(e).relu().squeeze(3).amax(dim=2) for c in self.convs]
            return self.fc(self.dropout(lib.cat(pooled, dim=1)))

    return TextCNN()


def w6_model(lib):
    nn = lib.nn
    class AlexNet(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2))
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
                nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(),
                nn.Linear(4096, num_classes))

        def forward(self, x):
            x = self.avgpool(self.features(x))
            return self.classifier(x.reshape(x.shape[0], -1))

    return AlexNet()


def image_batch(n, c, h, w, classes):
    rng = np.random.default_rng(0)
    return (rng.random((n, c, h, w), dtype=np.float32),
            rng.integers(0, classes, n).astype(np.int64))


def token_batch(n, length, vocab, classes, per_position=False):
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, (n, length)).astype(np.int64)
    y = rng.integers(0, classes, n * length if per_position else n).astype(np.int64)
    return x, y


WORKLOADS = {
    # name: (model, batch, optimizer (name, kwargs), steps per rep, description)
    "W1": (w1_model, lambda: image_batch(128, 1, 28, 28, 10), ("Adam", {"lr": 1e-3}), 8,
           "seed-000 CNN, batch 128, Adam"),
    "W2": (w2_model, lambda: image_batch(32, 1, 28, 28, 10), ("Adam", {"lr": 1e-3}), 30,
           "seed-003 CNN, batch 32, Adam"),
    "W3": (w3_model, lambda: image_batch(128, 1, 28, 28, 10), ("Adam", {"lr": 1e-3}), 100,
           "MLP 784-256-128-10, batch 128, Adam"),
    "W4": (w4_model, lambda: token_batch(64, 64, 100, 100, per_position=True),
           ("Adam", {"lr": 1e-3}), 6, "char-LSTM (emb 64, LSTM 256, vocab 100), seq 64, batch 64"),
    "W5": (w5_model, lambda: token_batch(64, 400, 25000, 2), ("Adam", {"lr": 1e-3}), 3,
           "TextCNN (emb 25,000×100, 3/4/5×100), seq 400, batch 64, Adam"),
    "W6": (w6_model, lambda: image_batch(8, 3, 224, 224, 1000),
           ("SGD", {"lr": 0.01, "momentum": 0.9}), 2, "AlexNet 224×224, batch 8, SGD momentum"),
}


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
    }


def peak_rss_mb(framework: str, name: str) -> float:
    """Peak RSS (VmHWM) of a fresh process that imports one framework and trains `name`.

    VmHWM belongs to the process's own address space; ru_maxrss would not do here, since
    Linux carries it across fork and exec from this (torch-loaded) parent.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {here!r});"
            f"import bench_train as b; _, s = b.make_runner({framework!r}, {name!r});"
            f"[s() for _ in range({max(3, WORKLOADS[name][3])})];"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workloads", nargs="+", help="W1..W6 or all")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS")
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds of sleep before each timed block (idle BLAS threads spin)")
    parser.add_argument("--json", help="append results as JSON lines to this file")
    args = parser.parse_args()
    names = list(WORKLOADS) if args.workloads == ["all"] else args.workloads
    print(f"{'':4} {'workload':58} {'shenjing':>10} {'torch':>10} {'ratio':>6} {'spread':>12}"
          + ("  peak RSS MB (sj / torch)" if args.memory else ""))
    for name in names:
        r = compare(name, args.reps, args.pause)
        line = (f"{name:4} {r['description']:58} {r['shenjing_ms']:8.1f}ms {r['torch_ms']:8.1f}ms "
                f"{r['ratio']:6.2f} {r['ratio_min']:5.2f}–{r['ratio_max']:.2f}")
        if args.memory:
            r["rss_shenjing_mb"] = peak_rss_mb("shenjing", name)
            r["rss_torch_mb"] = peak_rss_mb("torch", name)
            line += f"  {r['rss_shenjing_mb']:7.0f} / {r['rss_torch_mb']:.0f}"
        print(line, flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
