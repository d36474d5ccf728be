"""Zoo models side by side with PyTorch 2.13: same architecture, same initial weights, same
batch order, same optimizer and hyper-parameters; a few seeds; test metric and wall time.

    SHENJING_DATA=../shared/data python benchmarks/parity_zoo.py TASK [--seeds 0 1 2]
        [--epochs E] [--limit N] [--batch-size B] [--lr LR] [--steps S] [--image-size P]

TASK: mlp-fashion (MLP 784-256-128-10 on Fashion-MNIST), perceptron-mnist01 (the perceptron on
MNIST 0 vs 1, binary cross-entropy), seed000-mnist, seed000-fashion, seed003-mnist (the seed
CNNs), textcnn-rt (TextCNN on the Rotten Tomatoes archive, random embeddings), alexnet-emoji
(AlexNet on the emoji ImageFolder, resized to --image-size), charlstm-austen (CharLSTM, --steps
Adam updates on random windows, bits per character on the held-out last 10 %; prints a sample),
seqreg-sunspots / seqreg-co2 (SequenceRegressor on statsmodels' series, test RMSE against the
persistence baseline). Adam, lr 1e-3 unless --lr. Dropout masks are drawn by each library, so
models with dropout agree only statistically. Prints the largest output difference of the two
models at initialization, one line per seed and framework, then mean ± standard deviation,
whether the issue's bar is met, and the train wall-time ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

import shenjing as sj
from shenjing import models, optim
from shenjing.cli.datasets import load_data
from shenjing.nn import functional as SF

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parity_tasks as pt  # noqa: E402

tnn = torch.nn
DATA = os.environ.get("SHENJING_DATA", "../shared/data")
TASKS = ["mlp-fashion", "perceptron-mnist01", "seed000-mnist", "seed000-fashion",
         "seed003-mnist", "textcnn-rt", "alexnet-emoji", "charlstm-austen", "seqreg-sunspots",
         "seqreg-co2"]


class TorchTextCNN(tnn.Module):
    def __init__(self, vocab_size, output_dim, padding_idx):
        super().__init__()
        self.embedding = tnn.Embedding(vocab_size, 100, padding_idx=padding_idx)
        self.convs = tnn.ModuleList([tnn.Conv2d(1, 100, (k, 100)) for k in (3, 4, 5)])
        self.fc = tnn.Linear(300, output_dim)
        self.dropout = tnn.Dropout(0.5)

    def forward(self, t):
        e = self.embedding(t).unsqueeze(1)
        pooled = [torch.relu(c(e)).squeeze(3).amax(2) for c in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, 1)))


class TorchPerceptron(tnn.Module):
    def __init__(self):
        super().__init__()
        self.linear = tnn.Linear(784, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(x.flatten(1)).squeeze(-1))


def torch_model(task, data):
    k = len(data.classes)
    if task.startswith("alexnet"):
        return pt.TorchAlexNet(k)
    if task.startswith("charlstm"):
        return pt.TorchCharLSTM(k)
    if task.startswith("seqreg"):
        return pt.TorchSequenceRegressor()
    if task.startswith("seed000"):
        return tnn.Sequential(tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2),
                              tnn.Conv2d(32, 64, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                              tnn.Linear(1600, k))
    if task.startswith("seed003"):
        return tnn.Sequential(tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                              tnn.Linear(5408, 128), tnn.ReLU(), tnn.Linear(128, k))
    if task.startswith("mlp"):
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 256), tnn.ReLU(),
                              tnn.Linear(256, 128), tnn.ReLU(), tnn.Linear(128, k))
    if task.startswith("perceptron"):
        return TorchPerceptron()
    itos = data.meta["itos"]
    return TorchTextCNN(len(itos), k, itos.index("<pad>"))


def shenjing_model(task, data):
    itos = (data.meta or {}).get("itos")
    return {"alexnet": lambda: models.AlexNet(num_classes=len(data.classes)),
            "charlstm": lambda: models.CharLSTM(len(data.classes),
                                                chars="".join(data.meta["chars"])),
            "seqreg": lambda: models.SequenceRegressor(),
            "seed000": lambda: models.seed000_cnn(num_classes=len(data.classes)),
            "seed003": lambda: models.seed003_cnn(num_classes=len(data.classes)),
            "mlp": lambda: models.MLP((784, 256, 128, len(data.classes))),
            "perceptron": lambda: models.Perceptron(784),
            "textcnn": lambda: models.TextCNN(len(itos), output_dim=2,
                                              padding_idx=itos.index("<pad>"))}[task.split("-")[0]]()


def dataset(task, args):
    """The task's data through the command line's loaders (or statsmodels for seqreg-*)."""
    if task.startswith("seqreg"):
        return pt.load_series(task.split("-")[1], args.window)
    spec = {"mlp-fashion": "fashion-mnist", "seed000-fashion": "fashion-mnist",
            "textcnn-rt": f"{DATA}/rt_polarity.tar.gz", "alexnet-emoji": f"{DATA}/emoji",
            "charlstm-austen": f"{DATA}/austen/austen.txt.gz"}.get(task, "mnist")
    data = load_data(spec, limit=args.limit, image_size=args.image_size, seq_len=args.seq_len)
    if task == "perceptron-mnist01":
        for part in ("train", "test"):
            x, y = getattr(data, f"x_{part}"), getattr(data, f"y_{part}")
            keep = y <= 1
            setattr(data, f"x_{part}", x[keep])
            setattr(data, f"y_{part}", y[keep].astype(np.float32))
    return data


def run(lib, model, data, task, epochs, seed, batch_size, lr=1e-3):
    """Classification: `epochs` of Adam in a per-seed order; test accuracy, train seconds."""
    binary = task.startswith("perceptron")
    if lib is torch:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = (tnn.functional.binary_cross_entropy if binary
                   else tnn.functional.cross_entropy)
        tensor = torch.from_numpy
    else:
        opt = optim.Adam(model.parameters(), lr=lr)
        loss_fn = SF.binary_cross_entropy if binary else SF.cross_entropy
        tensor = sj.from_numpy
    seconds = pt.train_epochs(model, opt, loss_fn, tensor, data, epochs, batch_size, seed)
    model.eval()
    preds = []
    with (torch.no_grad() if lib is torch else sj.no_grad()):
        for i in range(0, len(data.x_test), 500):
            out = model(tensor(data.x_test[i:i + 500]))
            out = out.detach().numpy() if lib is torch else out.numpy()
            preds.append(out > 0.5 if binary else out.argmax(1))
    return float((np.concatenate(preds) == data.y_test).mean()), seconds


METRICS = {"charlstm": ("bits per character", 1.0, "{:.4f}"),
           "seqreg": ("test RMSE", 1.0, "{:.3f}")}  # name, scale, format; else accuracy %


def train_and_test(args, model, data, seed):
    """(test metric, train seconds) of one model (either library) on the task."""
    kind = args.task.split("-")[0]
    if kind == "charlstm":
        return pt.run_charlm(model, data, seed, args.steps, args.batch_size, args.lr,
                             args.eval_chars)
    if kind == "seqreg":
        return pt.run_seqreg(model, data, seed, args.epochs, args.batch_size, args.lr)
    return run(torch if isinstance(model, tnn.Module) else sj, model, data, args.task,
               args.epochs, seed, args.batch_size, args.lr)


def init_difference(model, tmodel, data):
    """Largest |shenjing − torch| output on a few test inputs at initialization (eval mode)."""
    model.eval()
    tmodel.eval()
    x = np.ascontiguousarray(data.x_test[:8])
    with sj.no_grad(), torch.no_grad():
        a, b = model(sj.from_numpy(x)), tmodel(torch.from_numpy(x))
    a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
    return float(np.abs(a.numpy() - b.numpy()).max())


def summary(results, kind, baseline=None):
    """Mean ± spread per library, the bar of issue 10 and the wall-time ratio."""
    name, scale, fmt = METRICS.get(kind, ("test accuracy", 100.0, "{:.2f}"))
    stats = {}
    for lib, rows in results.items():
        vals = scale * np.array([v for v, _ in rows])
        spread = vals.std(ddof=1) if len(vals) > 1 else 0.0
        stats[lib] = (vals.mean(), spread)
        print(f"{lib:<8} {name} {fmt.format(vals.mean())} ± {fmt.format(spread)} "
              f"(min {fmt.format(vals.min())}, max {fmt.format(vals.max())})")
    gap = abs(stats["shenjing"][0] - stats["torch"][0])
    tolerance = max(stats["torch"][1], 0.3)
    print(f"|mean difference| {fmt.format(gap)}; bar max(torch spread, 0.3) = "
          f"{fmt.format(tolerance)}: {'met' if gap <= tolerance else 'NOT met'}")
    if baseline is not None:
        print(f"persistence baseline {name} {fmt.format(baseline)}")
    ratio = sum(s for _, s in results["shenjing"]) / sum(s for _, s in results["torch"])
    print(f"train wall-time ratio shenjing/torch: {ratio:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="training/test examples")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=64, help="alexnet-emoji input side")
    parser.add_argument("--steps", type=int, default=300, help="charlstm-austen updates")
    parser.add_argument("--seq-len", type=int, default=64, help="charlstm-austen window")
    parser.add_argument("--eval-chars", type=int, default=100_000,
                        help="charlstm-austen: held-out characters scored")
    parser.add_argument("--window", type=int, default=20, help="seqreg: window length L")
    parser.add_argument("--sample-length", type=int, default=400)
    parser.add_argument("--no-dropout", action="store_true",
                        help="set every dropout probability to 0 in both models (diagnostic: "
                        "then only float rounding separates the two libraries)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread each (run with OPENBLAS_NUM_THREADS=1 for shenjing)
    kind = args.task.split("-")[0]
    data = dataset(args.task, args)
    schedule = (f"{args.steps} steps of {args.batch_size} x {args.seq_len}"
                if kind == "charlstm" else f"{args.epochs} epoch(s), batch {args.batch_size}")
    print(f"{args.task}: {len(data.x_train)} train, {len(data.x_test)} test, {schedule}, "
          f"Adam {args.lr:g}, torch {torch.__version__}, {torch.get_num_threads()} torch "
          f"threads{', dropout off' if args.no_dropout else ''}", flush=True)
    results = {"shenjing": [], "torch": []}
    for seed in args.seeds:
        sj.manual_seed(seed)
        torch.manual_seed(seed)  # torch's dropout masks
        model = shenjing_model(args.task, data)
        tmodel = torch_model(args.task, data)
        tmodel.load_state_dict({k: torch.tensor(np.array(v.numpy()))
                                for k, v in model.state_dict().items()})
        if args.no_dropout:
            for m in (*model.modules(), *tmodel.modules()):
                if type(m).__name__.startswith("Dropout"):
                    m.p = 0.0
        gap = init_difference(model, tmodel, data)
        print(f"  seed {seed} initial outputs max |diff| {gap:.2e}", flush=True)
        for name, m in (("shenjing", model), ("torch", tmodel)):
            value, seconds = train_and_test(args, m, data, seed)
            results[name].append((value, seconds))
            print(f"  seed {seed} {name:<8} {value:.4f}  train {seconds:.1f} s", flush=True)
        if kind == "charlstm" and seed == args.seeds[0]:
            text = model.generate("It is a truth", length=args.sample_length, temperature=0.8,
                                  seed=seed)
            print(f"  shenjing sample (seed {seed}, temperature 0.8):\n{text}\n", flush=True)
    summary(results, kind, pt.persistence_rmse(data) if kind == "seqreg" else None)


if __name__ == "__main__":
    main()
