"""Command line: python -m shenjing {train, evaluate, info}.

`train` is the README's main job: it fetches a data set through shenjing's own loader,
trains a zoo model with the seed's settings (Adam, batch 128, 10 % held out for
validation), prints one line per epoch and the test accuracy, and can save the weights
as safetensors.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["main"]

IMAGE_SETS = ("mnist", "fashion-mnist")


def _load(dataset: str):
    from .data.datasets import load_idx_arrays

    if dataset not in IMAGE_SETS:
        raise SystemExit(f"unknown dataset {dataset!r}; choose one of {IMAGE_SETS}")
    (xtr, ytr), (xte, yte) = (load_idx_arrays(dataset, train=True),
                              load_idx_arrays(dataset, train=False))
    prep = lambda x: (x.astype(np.float32) / 255.0)[:, None, :, :]  # noqa: E731  NCHW in [0,1]
    return prep(xtr), ytr.astype(np.int64), prep(xte), yte.astype(np.int64)


def _accuracy(model, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> tuple[float, float]:
    import shenjing as sj

    from .nn import functional as F

    model.eval()
    correct, loss = 0, 0.0
    with sj.no_grad():
        for i in range(0, len(x), batch):
            out = model(sj.from_numpy(x[i:i + batch]))
            target = sj.from_numpy(y[i:i + batch])
            loss += F.cross_entropy(out, target, reduction="sum").item()
            correct += int((out.argmax(1).data == y[i:i + batch]).sum())
    return loss / len(x), correct / len(x)


def train(args: argparse.Namespace) -> float:
    import shenjing as sj

    from . import optim
    from .models import get_model
    from .nn import functional as F

    sj.manual_seed(args.seed)
    xtr, ytr, xte, yte = _load(args.dataset)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(xtr))
    n_val = int(len(xtr) * args.validation_split)
    xval, yval = xtr[perm[:n_val]], ytr[perm[:n_val]]
    xtr, ytr = xtr[perm[n_val:]], ytr[perm[n_val:]]
    model = get_model(args.model)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} ({n_params:,} parameters) on {args.dataset}: {len(xtr)} train, "
          f"{len(xval)} validation, {len(xte)} test images; Adam lr={args.lr}, "
          f"batch {args.batch_size}, {args.epochs} epochs")
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = rng.permutation(len(xtr))
        total, correct, seen = 0.0, 0, 0
        for i in range(0, len(xtr), args.batch_size):
            idx = order[i:i + args.batch_size]
            xb, yb = sj.from_numpy(xtr[idx]), sj.from_numpy(ytr[idx])
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((out.data.argmax(1) == ytr[idx]).sum())
            seen += len(idx)
        dt = time.perf_counter() - t0
        line = (f"epoch {epoch}/{args.epochs} - {dt:.1f}s - loss: {total / seen:.4f} - "
                f"accuracy: {correct / seen:.4f}")
        if n_val:
            vl, va = _accuracy(model, xval, yval)
            line += f" - val_loss: {vl:.4f} - val_accuracy: {va:.4f}"
        print(line, flush=True)
    test_loss, test_acc = _accuracy(model, xte, yte)
    print(f"test loss: {test_loss:.4f}")
    print(f"test accuracy: {test_acc:.4f}")
    if args.save:
        from .serialization import save

        save(model.state_dict(), args.save)
        print(f"saved weights to {args.save}")
    return test_acc


def evaluate(args: argparse.Namespace) -> float:
    from .models import get_model
    from .serialization import load

    model = get_model(args.model)
    model.load_state_dict(load(args.weights))
    _, _, xte, yte = _load(args.dataset)
    loss, acc = _accuracy(model, xte, yte)
    print(f"test loss: {loss:.4f}\ntest accuracy: {acc:.4f}")
    return acc


def info(args: argparse.Namespace) -> None:
    import os

    import shenjing

    print(f"shenjing {shenjing.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPU cores")
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        print(f"BLAS: {blas.get('name')} {blas.get('version')}")
    except Exception:  # noqa: BLE001 - informational only
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shenjing", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a zoo model and print its test accuracy")
    t.add_argument("--model", default="seed000-cnn")
    t.add_argument("--dataset", default="fashion-mnist", choices=IMAGE_SETS)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--validation-split", type=float, default=0.1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--save", default=None, help="write the weights here (.safetensors)")
    e = sub.add_parser("evaluate", help="evaluate saved weights on the test set")
    e.add_argument("--model", default="seed000-cnn")
    e.add_argument("--dataset", default="fashion-mnist", choices=IMAGE_SETS)
    e.add_argument("--weights", required=True)
    sub.add_parser("info", help="versions and the BLAS in use")
    args = parser.parse_args(argv)
    {"train": train, "evaluate": evaluate, "info": info}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
