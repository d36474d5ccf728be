"""Zoo models side by side with PyTorch 2.13: same architecture, same initial weights, same
batch order, same optimizer and hyper-parameters; a few seeds; test metric and wall time.

    SHENJING_DATA=../shared/data python benchmarks/parity_zoo.py TASK [--seeds 0 1 2]
        [--epochs E] [--limit N]

TASK: mlp-fashion (MLP 784-256-128-10 on Fashion-MNIST), perceptron-mnist01 (the perceptron on
MNIST 0 vs 1, binary cross-entropy), seed000-mnist, seed000-fashion, seed003-mnist (the seed
CNNs), textcnn-rt (TextCNN on the Rotten Tomatoes archive, random embeddings). Adam, lr 1e-3.
Dropout masks are drawn by each library, so models with dropout agree only statistically.
Prints one line per seed and framework, then mean ± standard deviation and the time ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import shenjing as sj
from shenjing import models, optim
from shenjing.cli.datasets import load_data
from shenjing.nn import functional as SF

tnn = torch.nn


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
    itos = data.meta.get("itos")
    return {"seed000": lambda: models.seed000_cnn(num_classes=len(data.classes)),
            "seed003": lambda: models.seed003_cnn(num_classes=len(data.classes)),
            "mlp": lambda: models.MLP((784, 256, 128, len(data.classes))),
            "perceptron": lambda: models.Perceptron(784),
            "textcnn": lambda: models.TextCNN(len(itos), output_dim=2,
                                              padding_idx=itos.index("<pad>"))}[task.split("-")[0]]()


def dataset(task, limit):
    spec = {"mlp-fashion": "fashion-mnist", "seed000-fashion": "fashion-mnist",
            "textcnn-rt": "../shared/data/rt_polarity.tar.gz"}.get(task, "mnist")
    data = load_data(spec, limit=limit)
    if task == "perceptron-mnist01":
        for part in ("train", "test"):
            x, y = getattr(data, f"x_{part}"), getattr(data, f"y_{part}")
            keep = y <= 1
            setattr(data, f"x_{part}", x[keep])
            setattr(data, f"y_{part}", y[keep].astype(np.float32))
    return data


def run(lib, model, data, task, epochs, seed, batch_size):
    binary = task.startswith("perceptron")
    if lib is torch:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = (tnn.functional.binary_cross_entropy if binary
                   else tnn.functional.cross_entropy)
        tensor = torch.from_numpy
    else:
        opt = optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = SF.binary_cross_entropy if binary else SF.cross_entropy
        tensor = sj.from_numpy
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(data.x_train))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = loss_fn(model(tensor(data.x_train[idx])), tensor(data.y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    preds = []
    with (torch.no_grad() if lib is torch else sj.no_grad()):
        for i in range(0, len(data.x_test), 1000):
            out = model(tensor(data.x_test[i:i + 1000]))
            out = out.detach().numpy() if lib is torch else out.numpy()
            preds.append(out > 0.5 if binary else out.argmax(1))
    return float((np.concatenate(preds) == data.y_test).mean()), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=["mlp-fashion", "perceptron-mnist01", "seed000-mnist",
                                         "seed000-fashion", "seed003-mnist", "textcnn-rt"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="training/test examples")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data = dataset(args.task, args.limit)
    print(f"{args.task}: {len(data.x_train)} train, {len(data.x_test)} test, {args.epochs} "
          f"epoch(s), Adam 1e-3, batch {args.batch_size}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    results = {"shenjing": [], "torch": []}
    for seed in args.seeds:
        sj.manual_seed(seed)
        model = shenjing_model(args.task, data)
        tmodel = torch_model(args.task, data)
        tmodel.load_state_dict({k: torch.tensor(np.array(v.numpy()))
                                for k, v in model.state_dict().items()})
        for name, lib, m in (("shenjing", sj, model), ("torch", torch, tmodel)):
            acc, seconds = run(lib, m, data, args.task, args.epochs, seed, args.batch_size)
            results[name].append((acc, seconds))
            print(f"  seed {seed} {name:<8} test accuracy {acc:.4f}  train {seconds:.1f} s",
                  flush=True)
    for name, rows in results.items():
        accs = 100 * np.array([a for a, _ in rows])
        spread = accs.std(ddof=1) if len(accs) > 1 else 0.0
        print(f"{name:<8} {accs.mean():.2f} ± {spread:.2f} % (min {accs.min():.2f}, "
              f"max {accs.max():.2f})")
    ratio = sum(s for _, s in results["shenjing"]) / sum(s for _, s in results["torch"])
    print(f"train wall-time ratio shenjing/torch: {ratio:.2f}")


if __name__ == "__main__":
    main()
