"""The per-rank side of tests/test_distributed.py (run under mpirun; not collected by pytest).

`python distributed_worker.py OUT_DIR` trains each model with DistributedDataParallel
and saves every rank's final parameters (and a few facts about the run) to OUT_DIR; the test
trains the same models in one process on the whole batch with `train_single` and compares.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import shenjing as sj
from shenjing import nn, optim
from shenjing.models import MLP, seed000_cnn
from shenjing.nn import functional as F

STEPS = 3
GLOBAL_BATCH = 8


class LSTMClassifier(nn.Module):
    """An LSTM over a short sequence, then a linear head on the last step."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(5, 12, batch_first=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def build(name: str, seed: int) -> nn.Module:
    sj.manual_seed(seed)
    if name == "cnn":
        return seed000_cnn()
    if name == "mlp":
        return MLP()
    return LSTMClassifier()


def batch(name: str, step: int) -> tuple:
    """The global batch of `step` (inputs, integer labels), the same on every rank."""
    rng = np.random.default_rng(1000 + step)
    shape = {"cnn": (1, 28, 28), "mlp": (1, 28, 28), "lstm": (6, 5)}[name]
    classes = {"cnn": 10, "mlp": 10, "lstm": 3}[name]
    x = rng.standard_normal((GLOBAL_BATCH,) + shape).astype(np.float32)
    y = rng.integers(0, classes, GLOBAL_BATCH)
    return x, y


def step_loss(model, x: np.ndarray, y: np.ndarray):
    return F.cross_entropy(model(sj.from_numpy(x)), sj.from_numpy(y))


def train_single(name: str, micro_batches: int = 1) -> dict:
    """Reference: one process, the whole global batch, `micro_batches` accumulated backwards."""
    model = build(name, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(STEPS):
        x, y = batch(name, step)
        opt.zero_grad()
        for part in np.array_split(np.arange(GLOBAL_BATCH), micro_batches):
            step_loss(model, x[part], y[part]).backward()
        opt.step()
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _local_rows(rows: np.ndarray, rank: int, world: int) -> np.ndarray:
    return np.array_split(rows, world)[rank]


def train_ddp(name: str, micro_batches: int = 1, bucket_cap_mb: float = 25.0,
              mode: str | None = None) -> tuple[dict, dict]:
    """DDP on this rank's share of each global batch; micro-batches all but the last under
    no_sync. Ranks start from different weights: DDP must broadcast rank 0's."""
    import shenjing.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    ddp = nn.parallel.DistributedDataParallel(build(name, seed=rank), bucket_cap_mb=bucket_cap_mb)
    if mode is not None:
        ddp.reducer_mode = mode
    opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    facts = {"unsynced_grad_gap": 0.0, "replica_gap": 0.0}
    for step in range(STEPS):
        x, y = batch(name, step)
        opt.zero_grad()
        parts = np.array_split(np.arange(GLOBAL_BATCH), micro_batches)
        for i, part in enumerate(parts):
            mine = _local_rows(part, rank, world)
            if i < len(parts) - 1:
                with ddp.no_sync():
                    step_loss(ddp, x[mine], y[mine]).backward()
                facts["unsynced_grad_gap"] = max(facts["unsynced_grad_gap"], _rank_gap(ddp))
            else:
                step_loss(ddp, x[mine], y[mine]).backward()
        opt.step()
        facts["replica_gap"] = max(facts["replica_gap"], _rank_gap(ddp, "data"))
    facts.update(ddp.reducer_stats)
    return {k.removeprefix("module."): v.numpy().copy() for k, v in ddp.state_dict().items()}, \
        facts


def train_keras(seed: int) -> list:
    """Keras fit, 27 samples in global batches of 8 (the last one 3: uneven shares); under
    DataParallel when a distribution is set. Returns the final weights."""
    from shenjing import keras

    sj.manual_seed(seed)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(6,)),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((27, 6)).astype(np.float32)
    y = rng.integers(0, 3, 27)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return [np.asarray(w) for w in model.get_weights()]


def _rank_gap(ddp, what: str = "grad") -> float:
    """Largest difference between any rank's gradients (or parameters) and rank 0's."""
    import shenjing.distributed as dist

    gap = 0.0
    for p in ddp.parameters():
        mine = p.grad.numpy() if what == "grad" else p.numpy()
        theirs = sj.from_numpy(mine.copy())
        dist.broadcast(theirs, src=0)
        gap = max(gap, float(np.abs(theirs.numpy() - mine).max()))
    gathered = [sj.zeros(1) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, sj.tensor([gap]))
    return max(float(g.numpy()[0]) for g in gathered)


def main_train(out_dir: str) -> None:
    import shenjing.distributed as dist

    dist.init_process_group(backend="mpi", timeout=60)
    rank = dist.get_rank()
    runs = {"cnn": {"bucket_cap_mb": 0.05}, "mlp": {}, "lstm": {},
            "mlp_no_sync": {"micro_batches": 2},
            "cnn_nodes": {"bucket_cap_mb": 0.05, "mode": "nodes"},
            "lstm_nodes": {"mode": "nodes"}}
    report = {}
    for run, kwargs in runs.items():
        params, facts = train_ddp(run.split("_")[0], **kwargs)
        np.savez(os.path.join(out_dir, f"{run}_rank{rank}.npz"), **params)
        report[run] = facts
    from shenjing import keras

    keras.distribution.set_distribution(keras.distribution.DataParallel())
    weights = train_keras(seed=rank)
    keras.distribution.set_distribution(None)
    np.savez(os.path.join(out_dir, f"keras_rank{rank}.npz"), *weights)
    with open(os.path.join(out_dir, f"facts_rank{rank}.json"), "w") as f:
        json.dump(report, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main_train(sys.argv[1])
