"""Pruning the seed-000 CNN on MNIST: accuracy against sparsity, with fine-tuning after, and
the speed of channel pruning's smaller dense model.

    python benchmarks/bench_prune.py [--train 12000] [--finetune 6000] [--test 5000]
                                     [--sparsities 0.5 0.8 0.9] [--methods masks channels]

Bounded on purpose (a few minutes on 2 cores): one epoch of Adam on the first --train MNIST
training images, then for each sparsity (50, 80, 90 %) and each way of pruning,
  * unstructured: `prune.global_unstructured(..., L1Unstructured)` over all conv and linear
    weights (masks; the model keeps its shape), fine-tuned with the masks in place;
  * channels: `prune.prune_channels` (that share of each hidden layer's filters removed: a
    smaller dense model), fine-tuned as it is;
test accuracy on the first --test test images right after pruning and after one fine-tuning
epoch on --finetune images, parameter counts, and inference latency (median of 7 runs at
batch 500, no graph) against the dense model.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import shenjing as sj  # noqa: E402
from shenjing import optim  # noqa: E402
from shenjing.data.datasets import load_idx_arrays  # noqa: E402
from shenjing.models import get_model  # noqa: E402
from shenjing.nn import functional as F  # noqa: E402
from shenjing.nn.utils import prune  # noqa: E402

SPARSITIES = (0.5, 0.8, 0.9)


def _data(n_train: int, n_test: int):
    root = os.environ.get("SHENJING_DATA") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
    (xtr, ytr), (xte, yte) = (load_idx_arrays("mnist", train=True, root=root),
                              load_idx_arrays("mnist", train=False, root=root))
    prep = lambda x: (x.astype(np.float32) / 255.0)[:, None]  # noqa: E731
    return prep(xtr[:n_train]), ytr[:n_train].astype(np.int64), prep(xte[:n_test]), \
        yte[:n_test].astype(np.int64)


def train_epoch(model, x, y, lr=1e-3, batch=128, seed=0) -> None:
    model.train()
    opt = optim.Adam(model.parameters(), lr=lr)
    order = np.random.default_rng(seed).permutation(len(x))
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        loss = F.cross_entropy(model(sj.from_numpy(x[idx])), sj.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()


def accuracy(model, x, y, batch=1000) -> float:
    model.eval()
    with sj.no_grad():
        pred = np.concatenate([model(sj.from_numpy(x[i:i + batch])).numpy().argmax(1)
                               for i in range(0, len(x), batch)])
    return float((pred == y).mean())


def latency_ms(model, reference, x, reps=7) -> tuple[float, float]:
    """Median ms per call of `model` and of `reference`, runs interleaved so that background
    load hits both alike."""
    model.eval()
    reference.eval()
    times: dict[int, list] = {0: [], 1: []}
    with sj.no_grad():
        for _ in range(reps + 1):
            for k, m in enumerate((model, reference)):
                t0 = time.perf_counter()
                m(sj.from_numpy(x))
                times[k].append(time.perf_counter() - t0)
    return tuple(1000 * float(np.median(times[k][1:])) for k in (0, 1))


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def weighted(model) -> list:
    return [(m, "weight") for m in model.modules() if isinstance(m, (sj.nn.Conv2d, sj.nn.Linear))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=12000)
    ap.add_argument("--finetune", type=int, default=6000)
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--sparsities", type=float, nargs="+", default=list(SPARSITIES))
    ap.add_argument("--methods", nargs="+", default=["masks", "channels"],
                    choices=["masks", "channels"])
    args = ap.parse_args()
    xtr, ytr, xte, yte = _data(args.train, args.test)
    sj.manual_seed(0)
    dense = get_model("seed000-cnn")
    t0 = time.perf_counter()
    train_epoch(dense, xtr, ytr)
    base_acc = accuracy(dense, xte, yte)
    probe = xte[:500]
    base_ms = latency_ms(dense, dense, probe)[0]
    print(f"dense seed-000 CNN: {n_params(dense):,} parameters, test accuracy {base_acc:.4f} "
          f"after 1 epoch on {args.train} images ({time.perf_counter() - t0:.0f} s), "
          f"{base_ms:.1f} ms per 500 images\n")
    xft, yft = xtr[:args.finetune], ytr[:args.finetune]
    print("| pruning | sparsity | parameters | accuracy pruned | after fine-tune | "
          "latency (batch 500) vs dense, interleaved |")
    print("|---|---|---|---|---|---|")
    print(f"| none | 0 % | {n_params(dense):,} | {base_acc:.4f} | - | {base_ms:.1f} ms |")
    for amount in args.sparsities if "masks" in args.methods else ():
        masked = copy.deepcopy(dense)
        prune.global_unstructured(weighted(masked), prune.L1Unstructured, amount=amount)
        zeros = sum(int((m.weight_mask.numpy() == 0).sum()) for m, _ in weighted(masked))
        total = sum(m.weight_mask.numel() for m, _ in weighted(masked))
        before = accuracy(masked, xte, yte)
        train_epoch(masked, xft, yft, seed=1)
        after = accuracy(masked, xte, yte)
        still = sum(int((m.weight.numpy() == 0).sum()) for m, _ in weighted(masked))
        assert still >= zeros, "fine-tuning revived pruned weights"
        ms, ref = latency_ms(masked, dense, probe)
        print(f"| global L1 unstructured (masks) | {amount:.0%} of weights ({zeros}/{total}) "
              f"| {n_params(dense):,} dense | {before:.4f} | {after:.4f} | "
              f"{ms:.1f} vs {ref:.1f} ms ({ref / ms:.2f}x) |")
    for amount in args.sparsities if "channels" in args.methods else ():
        small = prune.prune_channels(dense, amount)
        before = accuracy(small, xte, yte)
        train_epoch(small, xft, yft, seed=1)
        after = accuracy(small, xte, yte)
        shape = f"{small[0].out_channels}+{small[3].out_channels} filters"
        ms, ref = latency_ms(small, dense, probe)
        print(f"| channels (smaller dense model) | {amount:.0%} of filters ({shape}) | "
              f"{n_params(small):,} | {before:.4f} | {after:.4f} | {ms:.1f} vs {ref:.1f} ms "
              f"({ref / ms:.1f}x faster) |")


if __name__ == "__main__":
    main()
