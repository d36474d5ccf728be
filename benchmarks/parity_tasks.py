"""Task pieces for `parity_zoo.py` beyond image/text classification: the torch twins of the
zoo's AlexNet, CharLSTM and SequenceRegressor, the character-LM and time-series data, and
their train-and-evaluate loops (the same loop drives both libraries).

Each `run_*` returns (test metric, train seconds); the data order comes from
`np.random.default_rng(seed)`, so shenjing and torch see the same batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

import shenjing as sj
from shenjing import models, optim
from shenjing.nn import functional as SF

tnn = torch.nn


# ---------------------------------------------------------------------------- torch twins
class TorchAlexNet(tnn.Module):
    """torchvision's AlexNet layout (same state_dict keys as `shenjing.models.AlexNet`)."""

    def __init__(self, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(3, 64, 11, stride=4, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
            tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
            tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
        self.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
        self.classifier = tnn.Sequential(
            tnn.Dropout(dropout), tnn.Linear(256 * 36, 4096), tnn.ReLU(),
            tnn.Dropout(dropout), tnn.Linear(4096, 4096), tnn.ReLU(),
            tnn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class TorchCharLSTM(tnn.Module):
    """Embedding → LSTM → Linear, as `shenjing.models.CharLSTM`."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256) -> None:
        super().__init__()
        self.embedding = tnn.Embedding(vocab_size, embed_dim)
        self.lstm = tnn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.fc = tnn.Linear(hidden_size, vocab_size)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embedding(x), state)
        return self.fc(out), state


class TorchSequenceRegressor(tnn.Module):
    """LSTM → Linear at every step, as `shenjing.models.SequenceRegressor`."""

    def __init__(self, hidden_size: int = 32) -> None:
        super().__init__()
        self.rnn = tnn.LSTM(1, hidden_size, batch_first=True)
        self.fc = tnn.Linear(hidden_size, 1)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


def _lib(model) -> tuple:
    """(tensor constructor, no-grad context, ndarray getter, optimizer module) of a model."""
    if isinstance(model, tnn.Module):
        return torch.from_numpy, torch.no_grad, lambda t: t.detach().numpy(), torch.optim
    return sj.from_numpy, sj.no_grad, lambda t: t.numpy(), optim


# ------------------------------------------------------------ character language model
def run_charlm(model, data, seed: int, steps: int, batch_size: int, lr: float,
               eval_chars: int, eval_streams: int = 100, eval_chunk: int = 250):
    """`steps` Adam updates on random training windows (drawn by `seed`), then bits per
    character on the first `eval_chars` held-out characters, read as `eval_streams`
    contiguous streams in chunks of `eval_chunk` steps with the LSTM state carried."""
    tensor, no_grad, arr, opt_mod = _lib(model)
    torch_side = isinstance(model, tnn.Module)
    loss_fn = tnn.functional.cross_entropy if torch_side else SF.cross_entropy
    opt = opt_mod.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    picks = rng.permutation(len(data.x_train))[:steps * batch_size].reshape(steps, batch_size)
    vocab = len(data.classes)
    model.train()
    start = time.perf_counter()
    for idx in picks:
        logits, _ = model(tensor(data.x_train[idx]))
        loss = loss_fn(logits.reshape(-1, vocab), tensor(data.y_train[idx].reshape(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    xs, ys = data.x_test.reshape(-1), data.y_test.reshape(-1)
    per_stream = min(eval_chars, len(xs)) // eval_streams
    xs = xs[:per_stream * eval_streams].reshape(eval_streams, per_stream)
    ys = ys[:per_stream * eval_streams].reshape(eval_streams, per_stream)
    model.eval()
    total, state = 0.0, None
    with no_grad():
        for i in range(0, per_stream, eval_chunk):
            logits, state = model(tensor(np.ascontiguousarray(xs[:, i:i + eval_chunk])), state)
            target = tensor(np.ascontiguousarray(ys[:, i:i + eval_chunk]).reshape(-1))
            nll = loss_fn(logits.reshape(-1, vocab), target, reduction="sum")
            total += float(arr(nll))
    return total / xs.size / np.log(2.0), seconds


# --------------------------------------------------------------------------- time series
@dataclass
class Series:
    """Windows of a standardized series: x (N, L, 1) inputs, y (N, L, 1) next values."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: float
    std: float
    classes: tuple = ()
    meta: dict | None = None

    def original(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean


def load_series(name: str, window: int, test_fraction: float = 0.2) -> Series:
    """statsmodels' `sunspots` (yearly, 1700-2008) or `co2` (weekly, 1958-2001, gaps filled
    by linear interpolation): windows of `window` values, each predicting the next value at
    every step; chronological split, the last `test_fraction` of the targets are the test
    set; standardized with the training part's mean and standard deviation."""
    from statsmodels import datasets  # only the benchmark needs statsmodels (`bench` extra)

    if name == "sunspots":
        values = datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float64)
    elif name == "co2":
        values = datasets.co2.load_pandas().data["co2"].interpolate().to_numpy(np.float64)
    else:
        raise ValueError(f"unknown series {name!r}; expected 'sunspots' or 'co2'")
    cut = int(round(len(values) * (1 - test_fraction)))
    mean, std = values[:cut].mean(), values[:cut].std()
    z = ((values - mean) / std).astype(np.float32)
    starts = np.arange(len(z) - window)
    x = np.stack([z[s:s + window] for s in starts])[..., None]
    y = np.stack([z[s + 1:s + window + 1] for s in starts])[..., None]
    train = starts + window < cut  # the window's last target lies before the cut
    return Series(name, x[train], y[train], x[~train], y[~train], float(mean), float(std))


def train_epochs(model, opt, loss_fn, tensor, data, epochs: int, batch_size: int,
                 seed: int) -> float:
    """`epochs` passes over data.x_train/y_train in a per-seed shuffled order (the same for
    both libraries); returns the seconds spent."""
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
    return time.perf_counter() - start


def run_seqreg(model, data: Series, seed: int, epochs: int, batch_size: int, lr: float):
    """Adam on the sequence MSE Σ_t (Y_t − Ŷ_t)² (batch mean); test RMSE, in the series'
    units, of the last step's prediction of the value after each test window."""
    tensor, no_grad, arr, opt_mod = _lib(model)
    loss_fn = ((lambda p, t: tnn.functional.mse_loss(p, t, reduction="sum") / p.shape[0])
               if isinstance(model, tnn.Module) else models.sequence_mse)
    opt = opt_mod.Adam(model.parameters(), lr=lr)
    seconds = train_epochs(model, opt, loss_fn, tensor, data, epochs, batch_size, seed)
    model.eval()
    with no_grad():
        pred = arr(model(tensor(data.x_test)))[:, -1, 0]
    return rmse(data.original(pred), data.original(data.y_test[:, -1, 0])), seconds


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def persistence_rmse(data: Series) -> float:
    """Test RMSE of predicting each window's last value as the next one."""
    return rmse(data.original(data.x_test[:, -1, 0]), data.original(data.y_test[:, -1, 0]))
