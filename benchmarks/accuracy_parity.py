"""Same model, same data, same hyper-parameters: does shenjing reach PyTorch's accuracy?

    python benchmarks/accuracy_parity.py [--dataset fashion-mnist] [--epochs 10] [--model W1]

Trains the seed-000 CNN (or another bench_train workload on 28×28 images) in shenjing and in
PyTorch 2.13 from the *same* initial weights, on the same shuffled batch order, with Adam
(lr 1e-3, batch 128), and prints both test accuracies after every epoch. Dropout-free
models then differ only by floating-point rounding, so the two curves should agree within
run-to-run noise (a few tenths of a percent).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="W1", choices=["W1", "W2", "W3"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    import shenjing as sj
    from shenjing.data.datasets import load_idx_arrays
    from shenjing.nn import functional as SF

    torch.set_num_threads(bench_train.THREADS)
    (xtr, ytr), (xte, yte) = (load_idx_arrays(args.dataset, train=True),
                              load_idx_arrays(args.dataset, train=False))
    xtr = (xtr.astype(np.float32) / 255)[:, None]
    xte = (xte.astype(np.float32) / 255)[:, None]
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)

    build = bench_train.WORKLOADS[args.model][0]
    torch.manual_seed(args.seed)
    tmodel = build(torch)
    smodel = build(sj)
    smodel.load_state_dict({k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()})
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    sopt = sj.optim.Adam(smodel.parameters(), lr=1e-3)
    rng = np.random.default_rng(args.seed)

    def test_acc_torch() -> float:
        with torch.no_grad():
            out = torch.cat([tmodel(torch.from_numpy(xte[i:i + 1000]))
                             for i in range(0, len(xte), 1000)])
        return float((out.argmax(1).numpy() == yte).mean())

    def test_acc_sj() -> float:
        with sj.no_grad():
            preds = [smodel(sj.from_numpy(xte[i:i + 1000])).data.argmax(1)
                     for i in range(0, len(xte), 1000)]
        return float((np.concatenate(preds) == yte).mean())

    print(f"{args.model} on {args.dataset}, Adam lr=1e-3, batch {args.batch_size}, same initial "
          f"weights and batch order")
    print(f"{'epoch':>5} {'shenjing acc':>13} {'torch acc':>10} {'sj loss':>8} {'torch loss':>10}"
          f" {'sj s':>6} {'torch s':>7}")
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(xtr))
        s_time = t_time = 0.0
        s_loss = t_loss = 0.0
        for i in range(0, len(xtr), args.batch_size):
            idx = order[i:i + args.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            t0 = time.perf_counter()
            loss = SF.cross_entropy(smodel(sj.from_numpy(xb)), sj.from_numpy(yb))
            sopt.zero_grad()
            loss.backward()
            sopt.step()
            s_loss += loss.item() * len(idx)
            t1 = time.perf_counter()
            tl = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(xb)),
                                                   torch.from_numpy(yb))
            topt.zero_grad()
            tl.backward()
            topt.step()
            t_loss += tl.item() * len(idx)
            t2 = time.perf_counter()
            s_time += t1 - t0
            t_time += t2 - t1
        print(f"{epoch:5d} {test_acc_sj():13.4f} {test_acc_torch():10.4f} "
              f"{s_loss / len(xtr):8.4f} {t_loss / len(xtr):10.4f} {s_time:6.1f} {t_time:7.1f}",
              flush=True)


if __name__ == "__main__":
    main()
