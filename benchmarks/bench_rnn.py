"""W4: a character LSTM language model, one training step, shenjing vs PyTorch in one process.

Model (both sides): Embedding(100, 64) -> LSTM(64, 256, batch_first=True) -> Linear(256, 100),
cross-entropy over all 64 x 64 positions, Adam(lr=1e-3); forward + backward + step, from the
same weights and data (the first losses are checked to agree). PyTorch runs as users run it
by default, with torch.set_num_threads(2) (its CPU LSTM is oneDNN's fused RNN).

Runs are interleaved A B A B after a warm-up; medians with the min-max spread are reported,
because background load on a 2-core machine moves both. Each run is preceded by a short
sleep (--pause): idle OpenBLAS workers spin for about 0.1 s after a call, and a spinning
pool steals a core from the other library's next step (without the pause torch measured
up to 1.9x its standalone time). glibc's malloc settings change torch's time a lot (page
faults); to see that, run with
MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000000 MALLOC_TOP_PAD_=1000000000.

    python benchmarks/bench_rnn.py [--reps 15] [--pause 0.3] [--layer] [--profile]

--layer also times the LSTM layer alone (forward + backward with a random upstream
gradient); --profile prints a cProfile of shenjing's W4 steps.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import shenjing as sj  # noqa: E402
import shenjing.nn.functional as F  # noqa: E402
from shenjing import nn, optim  # noqa: E402

VOCAB, EMBED, HIDDEN, SEQ, BATCH = 100, 64, 256, 64, 64


class CharLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.lstm = nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, VOCAB)

    def forward(self, x):
        out, _ = self.lstm(self.embed(x))
        return self.fc(out)


def _torch_model(torch):
    class TorchCharLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, EMBED)
            self.lstm = torch.nn.LSTM(EMBED, HIDDEN, batch_first=True)
            self.fc = torch.nn.Linear(HIDDEN, VOCAB)

        def forward(self, x):
            out, _ = self.lstm(self.embed(x))
            return self.fc(out)

    return TorchCharLM()


def _steps(torch, layer_only: bool):
    """(shenjing step, torch step) closures on the same data and weights."""
    rng = np.random.default_rng(0)
    if layer_only:
        x = rng.standard_normal((BATCH, SEQ, EMBED)).astype(np.float32)
        g = rng.standard_normal((BATCH, SEQ, HIDDEN)).astype(np.float32)
        sm = nn.LSTM(EMBED, HIDDEN, batch_first=True)
        tm = torch.nn.LSTM(EMBED, HIDDEN, batch_first=True)
        sm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
        xs, xt, gt = sj.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True), \
            torch.tensor(g)

        def sj_step():
            out, _ = sm(xs)
            out.backward(g)

        def torch_step():
            out, _ = tm(xt)
            out.backward(gt)

        return sj_step, torch_step

    tokens = rng.integers(0, VOCAB, size=(BATCH, SEQ + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    tm = _torch_model(torch)
    sm = CharLM()
    sm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    s_opt = optim.Adam(sm.parameters(), lr=1e-3)
    t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    xs, ys = sj.tensor(x), sj.tensor(y)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def sj_step():
        s_opt.zero_grad()
        loss = F.cross_entropy(sm(xs).reshape(-1, VOCAB), ys.reshape(-1))
        loss.backward()
        s_opt.step()
        return loss.item()

    def torch_step():
        t_opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tm(xt).reshape(-1, VOCAB), yt.reshape(-1))
        loss.backward()
        t_opt.step()
        return loss.item()

    first = sj_step(), torch_step()  # same weights and data: the first losses agree
    assert abs(first[0] - first[1]) < 1e-4, f"losses differ: {first}"
    return sj_step, torch_step


def _interleaved(a, b, reps: int, pause: float, warmup: int = 3):
    """Time a and b alternately, sleeping `pause` seconds before each run (see above)."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for _ in range(reps):
        time.sleep(pause)
        t0 = time.perf_counter()
        a()
        ta.append(time.perf_counter() - t0)
        time.sleep(pause)
        t0 = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t0)
    return np.array(ta) * 1e3, np.array(tb) * 1e3


def _report(name: str, ts: np.ndarray, tt: np.ndarray) -> None:
    ms, mt = np.median(ts), np.median(tt)
    print(f"{name}: shenjing {ms:7.1f} ms [{ts.min():.1f}-{ts.max():.1f}]   "
          f"torch {mt:7.1f} ms [{tt.min():.1f}-{tt.max():.1f}]   ratio {ms / mt:.3f}x "
          f"(per-rep ratios median {np.median(ts / tt):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--pause", type=float, default=0.3, help="seconds of sleep between runs")
    ap.add_argument("--layer", action="store_true", help="also time the LSTM layer alone")
    ap.add_argument("--profile", action="store_true", help="cProfile shenjing's W4 step")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    print(f"W4 char-LSTM: batch {BATCH}, sequence {SEQ}, vocab {VOCAB}, embed {EMBED}, "
          f"hidden {HIDDEN}; torch {torch.__version__} with 2 threads, numpy {np.__version__}")
    if args.layer:
        _report("LSTM layer fwd+bwd ", *_interleaved(*_steps(torch, True), args.reps, args.pause))
    sj_step, torch_step = _steps(torch, False)
    _report("W4 step (fwd+bwd+Adam)", *_interleaved(sj_step, torch_step, args.reps, args.pause))
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            sj_step()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
