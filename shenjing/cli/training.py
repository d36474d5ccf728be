"""The training loop behind `train` and `finetune`: epochs with a progress bar, validation,
best-weights tracking, early stopping, checkpoints after every epoch, resume bit for bit,
history.csv, a TensorBoard log and the loss/accuracy curves.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from pathlib import Path

import numpy as np

import shenjing as sj

from .. import optim
from ..models import TASKS, param_groups, trainable_parameters
from ..nn import functional as F
from .checkpoint import arrays_of, save_model, save_state
from .common import CLIError, Progress, batches, forward_logits, warn
from .datasets import Data

__all__ = ["PARALLEL_ENV", "OPTIMIZERS", "model_kwargs", "head_kwargs", "build_optimizer", "fit",
           "evaluate_arrays"]

OPTIMIZERS = {
    "adam": lambda params, lr: optim.Adam(params, lr=lr),
    "adamw": lambda params, lr: optim.AdamW(params, lr=lr),
    "sgd": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9),
    "rmsprop": lambda params, lr: optim.RMSprop(params, lr=lr),
    "adagrad": lambda params, lr: optim.Adagrad(params, lr=lr),
}
PARALLEL_ENV = "SHENJING_CLI_PARALLEL"  # set by `train --nproc N` in the processes it starts
TASK_OF_DATA = {"image": "images", "text": "labelled texts (an aclImdb-layout folder or archive)",
                "charlm": "a plain text file"}


def model_kwargs(name: str, data: Data) -> dict:
    """Constructor arguments of zoo model `name` for `data` (channels, classes, vocabulary)."""
    task = TASKS.get(name)
    if task is None:
        raise CLIError(f"unknown model {name!r}; choose one of {', '.join(TASKS)}")
    if task not in TASK_OF_DATA:
        raise CLIError(f"model {name!r} is not trained from the command line (it is a "
                       f"{task} model); use it from Python, see shenjing.models")
    if task != data.task:
        raise CLIError(f"model {name!r} takes {TASK_OF_DATA[task]}, but --data {data.spec} "
                       f"holds {TASK_OF_DATA[data.task]}")
    k = len(data.classes)
    meta = data.meta
    if task == "charlm":
        return {"vocab_size": len(meta["chars"]), "chars": meta["chars"]}
    if name == "transformer":
        return {"vocab_size": len(meta["itos"]), "num_classes": k, "max_len": meta["max_len"],
                "padding_idx": meta["itos"].index("<pad>")}
    if task == "text":
        return {"vocab_size": len(meta["itos"]), "output_dim": k,
                "padding_idx": meta["itos"].index("<pad>")}
    channels, size = meta["channels"], meta["size"]
    if name == "mlp":
        return {"sizes": (channels * size * size, 256, 128, k)}
    if name == "alexnet":
        if size < 63:
            raise CLIError(f"alexnet needs images of at least 63×63, --data gives {size}×{size}")
        return {"in_channels": channels, "num_classes": k}
    if name == "resnet":
        return {"in_channels": channels, "num_classes": k}
    return {"in_channels": channels, "num_classes": k, "image_size": size}


def head_kwargs(name: str, kwargs: dict, num_classes: int) -> dict:
    """`kwargs` with the number of outputs changed (what `replace_head` did to the model)."""
    new = dict(kwargs)
    if name == "mlp":
        new["sizes"] = (*tuple(kwargs["sizes"])[:-1], num_classes)
    elif name == "textcnn":
        new["output_dim"] = num_classes
    elif name == "char-lstm":
        raise CLIError("char-lstm has no classification head to replace")
    else:
        new["num_classes"] = num_classes
    return new


def build_optimizer(model, train_cfg: dict, head: str | None):
    """The optimizer over trainable parameters; with body_lr, the head gets lr, the rest body_lr."""
    params = trainable_parameters(model)
    if not params:
        raise CLIError("every parameter is frozen; nothing to train")
    if train_cfg.get("body_lr") is not None and head is not None:
        params = param_groups(model, {head: train_cfg["lr"]}, default_lr=train_cfg["body_lr"])
    return OPTIMIZERS[train_cfg["optimizer"]](params, train_cfg["lr"])


def _loss_and_hits(logits, target: np.ndarray):
    flat = logits.reshape(-1, logits.shape[-1])
    loss = F.cross_entropy(flat, sj.from_numpy(target.reshape(-1)))
    hits = int((flat.numpy().argmax(-1) == target.reshape(-1)).sum())
    return loss, hits


def evaluate_arrays(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500):
    """(mean loss, accuracy) over (x, y) in eval mode; per character for a language model."""
    model.eval()
    total, hits, count = 0.0, 0, 0
    with sj.no_grad():
        for idx in batches(len(x), batch_size):
            loss, h = _loss_and_hits(forward_logits(model, sj.from_numpy(x[idx])), y[idx])
            n = y[idx].size
            total += loss.item() * n
            hits, count = hits + h, count + n
    return total / count, hits / count


def _shift(x: np.ndarray, rng: np.random.Generator, pad: int = 2) -> np.ndarray:
    """Augmentation: translate each image by up to `pad` pixels (zeros fill in)."""
    h, w = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    offsets = rng.integers(0, 2 * pad + 1, size=(len(x), 2))
    return np.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(offsets)])


def _write_history(path: Path, history: dict[str, list]) -> None:
    from ..io import atomic_write

    keys = list(history)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])
    with atomic_write(path, "w") as f:
        f.write(buf.getvalue())


def _tensorboard(directory: Path):
    try:
        from ..utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(directory / "tensorboard"))
    except ImportError as err:
        warn(f"no TensorBoard log ({err})")
        return None


def _split(data: Data, val_split: float, seed: int):
    n = len(data.x_train)
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(n * val_split)
    if n - n_val < 1:
        raise CLIError(f"--val-split {val_split} leaves no training examples out of {n}")
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val])


class _Replicas:
    """Data parallelism across the MPI processes `train --nproc` starts: every process holds
    the same model (same seed), takes its share of each batch, and the gradients are
    averaged before each step, so the replicas stay equal; process 0 prints and saves."""

    def __init__(self) -> None:
        self.dist, self.rank, self.world = None, 0, 1
        if os.environ.get(PARALLEL_ENV) == "1":
            from .. import distributed as dist

            if not dist.is_initialized():
                dist.init_process_group(backend="mpi")
            self.dist, self.rank, self.world = dist, dist.get_rank(), dist.get_world_size()
            if self.rank:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the process's life

    def share(self, idx: np.ndarray) -> np.ndarray:
        return idx[self.rank::self.world] if self.world > 1 else idx

    def average_gradients(self, model) -> None:
        if self.world > 1:
            for p in trainable_parameters(model):
                if p.grad is not None:
                    self.dist.all_reduce(p.grad)
                    with sj.no_grad():
                        p.grad.mul_(1.0 / self.world)


def fit(model, optimizer, data: Data, config: dict, out: Path, state: dict | None = None) -> dict:
    """Train until `epochs` or early stopping, checkpointing each epoch; then restore the best
    weights, report the test metrics and write the curves. Returns the final summary."""
    cfg = config["train"]
    if cfg["augment"] and data.task != "image":
        raise CLIError(f"--augment shifts images; --data {data.spec} holds {data.task} data")
    xtr, ytr, xval, yval = _split(data, cfg["val_split"], cfg["seed"])
    charlm = data.task == "charlm"
    monitor, sign = ("val_loss", -1.0) if charlm or not len(xval) else ("val_accuracy", 1.0)
    if not len(xval):
        monitor = "loss"
    shuffle = np.random.default_rng(cfg["seed"] + 1)
    history: dict[str, list] = {}
    best = {"metric": -math.inf, "epoch": 0, "weights": arrays_of(model.state_dict())}
    start, step, wait = 0, 0, 0
    if state is not None:  # resume: everything the next epoch depends on
        optimizer.load_state_dict(state["optimizer"])
        shuffle.bit_generator.state = state["rng"]["shuffle"]
        sj.random.default_generator.set_state(state["rng"]["sj"])
        start, step = state["position"]["epoch"], state["position"]["step"]
        wait, history = state["early_stopping"]["wait"], state["history"]
        best = {"metric": state["best"]["metric"], "epoch": state["best"]["epoch"],
                "weights": state["best"]["weights"]}
    replicas = _Replicas()
    saving = replicas.rank == 0
    out.mkdir(parents=True, exist_ok=True)
    writer = _tensorboard(out) if saving else None
    patience = cfg["early_stopping"]
    epochs = cfg["epochs"]
    if patience and wait >= patience:
        print(f"early stopping had already ended this run at epoch {start}")
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in trainable_parameters(model))
    print(f"{config['model']} ({n_params:,} parameters, {n_train:,} trainable) on {data.spec}: "
          f"{len(xtr)} train, {len(xval)} validation, {len(data.x_test)} test; "
          f"{cfg['optimizer']} lr={cfg['lr']}, batch {cfg['batch_size']}, epochs "
          f"{start + 1}..{epochs}", flush=True)
    epoch = start
    while epoch < epochs and not (patience and wait >= patience):
        epoch += 1
        model.train()
        order = shuffle.permutation(len(xtr))
        steps = math.ceil(len(xtr) / cfg["batch_size"])
        bar = Progress(epoch, epochs, steps)
        total, hits, count = 0.0, 0, 0
        for idx in batches(len(xtr), cfg["batch_size"], order):
            xb = xtr[idx]
            if cfg["augment"]:
                xb = _shift(xb, shuffle)
            mine = replicas.share(np.arange(len(idx)))
            idx, xb = idx[mine], xb[mine]
            loss, h = _loss_and_hits(forward_logits(model, sj.from_numpy(xb)), ytr[idx])
            optimizer.zero_grad()
            loss.backward()
            replicas.average_gradients(model)
            optimizer.step()
            step += 1
            n = ytr[idx].size
            total, hits, count = total + loss.item() * n, hits + h, count + n
            bar.update({"loss": total / count, "accuracy": hits / count})
        logs = {"loss": total / count, "accuracy": hits / count}
        if len(xval):
            logs["val_loss"], logs["val_accuracy"] = evaluate_arrays(model, xval, yval)
        seconds = bar.close(logs)
        for key, value in {**logs, "seconds": seconds}.items():
            history.setdefault(key, []).append(value)
            if writer is not None:
                writer.add_scalar(f"epoch/{key}", value, epoch)
        score = sign * logs[monitor] if monitor != "loss" else -logs["loss"]
        if score > best["metric"]:
            best = {"metric": score, "epoch": epoch, "weights": arrays_of(model.state_dict())}
            wait = 0
        else:
            wait += 1
        if not saving:
            continue
        save_state(out, {
            "config": config, "model": arrays_of(model.state_dict()),
            "optimizer": optimizer.state_dict(),
            "rng": {"shuffle": shuffle.bit_generator.state,
                    "sj": sj.random.default_generator.get_state()},
            "position": {"epoch": epoch, "step": step}, "history": history,
            "early_stopping": {"wait": wait}, "best": best})
        save_model(out, config, best["weights"])
        _write_history(out / "history.csv", history)
        if patience and wait >= patience:
            print(f"early stopping: {monitor} has not improved for {patience} epochs; "
                  f"best was epoch {best['epoch']}")
    if writer is not None:
        writer.close()
    model.load_state_dict(best["weights"])
    return _finish(model, data, out, history if saving else {}, best, epoch, monitor)


def _finish(model, data: Data, out: Path, history: dict, best: dict, epoch: int,
            monitor: str) -> dict:
    test_loss, test_acc = evaluate_arrays(model, data.x_test, data.y_test)
    outputs = ["model.safetensors (best weights)", "checkpoint.safetensors (for --resume)",
               "history.csv"]
    if history:
        try:
            from ..utils import plot_history

            plot_history(history, out / "curves.png")
            outputs.append("curves.png")
        except ImportError as err:
            warn(f"no curves.png ({err})")
    if (out / "tensorboard").is_dir():
        outputs.append("tensorboard/")
    if best["epoch"]:
        print(f"restored the best weights: epoch {best['epoch']} of {epoch} (by {monitor})")
    print(f"test loss: {test_loss:.4f}")
    if data.task == "charlm":
        print(f"test bits per character: {test_loss / math.log(2):.4f}")
    print(f"test accuracy: {test_acc:.4f}")
    print(f"outputs in {out}/: {', '.join(outputs)}")
    return {"test_loss": test_loss, "test_accuracy": test_acc, "best_epoch": best["epoch"]}
