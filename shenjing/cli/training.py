"""The training loop behind `train` and `finetune`: epochs with a progress bar, validation,
best-weights tracking, early stopping, checkpoints after every epoch, resume bit for bit,
history.csv, a TensorBoard log and the loss/accuracy curves.
"""

from __future__ import annotations

import csv
import io
import math
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np

import shenjing as sj

from .. import optim
from ..models import TASKS, param_groups, trainable_parameters
from ..nn import functional as F
from .checkpoint import arrays_of, save_model, save_state
from .common import CLIError, Interrupted, Progress, batches, forward_logits, warn
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


class _StopRequest:
    """Ctrl-C while training: the step under way finishes, a checkpoint is saved, then the run
    stops (`Interrupted`, exit status 130). A second Ctrl-C stops at once, as usual (the last
    checkpoint, written atomically, stays intact). Only installed in the main thread of a
    single-process run: the processes of `--nproc` would stop at different steps."""

    def __init__(self, active: bool) -> None:
        self.requested = False
        self._previous = None
        self.active = active and threading.current_thread() is threading.main_thread()

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self) -> _StopRequest:
        if self.active and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            self.active = False  # Ctrl-C is ignored here (a background job): keep it so
        if self.active:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.signal(signal.SIGINT, self._previous)


class _Paused(Exception):
    """The run stops here (Ctrl-C or --max-steps) with a checkpoint saved; args[0] says where."""


class _Run:
    """One training run: everything a checkpoint holds, and the steps that advance it.

    `epoch` counts finished epochs; `partial` (resumed from a mid-epoch checkpoint) holds the
    interrupted epoch's shuffled order, how many of its batches are done, the running
    loss/accuracy totals and its elapsed seconds.
    """

    def __init__(self, model, optimizer, data: Data, config: dict, out: Path,
                 state: dict | None) -> None:
        self.model, self.optimizer, self.data, self.config, self.out = (
            model, optimizer, data, config, out)
        self.cfg = cfg = config["train"]
        if cfg["augment"] and data.task != "image":
            raise CLIError(f"--augment shifts images; --data {data.spec} holds {data.task} "
                           "data")
        self.xtr, self.ytr, self.xval, self.yval = _split(data, cfg["val_split"], cfg["seed"])
        if not len(self.xval):
            self.monitor, self.sign = "loss", -1.0
        else:
            self.monitor, self.sign = (("val_loss", -1.0) if data.task == "charlm" else
                                       ("val_accuracy", 1.0))
        self.shuffle = np.random.default_rng(cfg["seed"] + 1)
        self.history: dict[str, list] = {}
        self.best = {"metric": -math.inf, "epoch": 0, "weights": arrays_of(model.state_dict())}
        self.epoch, self.step, self.wait, self.partial = 0, 0, 0, None
        if state is not None:  # resume: everything the next step depends on
            optimizer.load_state_dict(state["optimizer"])
            self.shuffle.bit_generator.state = state["rng"]["shuffle"]
            sj.random.default_generator.set_state(state["rng"]["sj"])
            self.epoch, self.step = state["position"]["epoch"], state["position"]["step"]
            self.wait, self.history = state["early_stopping"]["wait"], state["history"]
            self.best = {key: state["best"][key] for key in ("metric", "epoch", "weights")}
            self.partial = state.get("partial")
        self.replicas = _Replicas()
        self.saving = self.replicas.rank == 0
        self.steps = math.ceil(len(self.xtr) / cfg["batch_size"])

    def stopped_early(self) -> bool:
        patience = self.cfg["early_stopping"]
        return bool(patience) and self.wait >= patience

    def print_header(self) -> None:
        cfg, model = self.cfg, self.model
        if self.stopped_early():
            print(f"early stopping had already ended this run at epoch {self.epoch}")
        n_params = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in trainable_parameters(model))
        print(f"{self.config['model']} ({n_params:,} parameters, {n_train:,} trainable) on "
              f"{self.data.spec}: {len(self.xtr)} train, {len(self.xval)} validation, "
              f"{len(self.data.x_test)} test; {cfg['optimizer']} lr={cfg['lr']}, batch "
              f"{cfg['batch_size']}, epochs {self.epoch + 1}..{cfg['epochs']}", flush=True)
        if self.partial is not None and self.epoch < cfg["epochs"]:
            print(f"resuming epoch {self.partial['epoch']} after step {self.partial['batch']} "
                  f"of {self.steps}", flush=True)

    def checkpoint(self, partial: dict | None = None) -> None:
        """Save the whole state (atomically); `partial` describes an unfinished epoch."""
        if self.saving:
            save_state(self.out, {
                "config": self.config, "model": arrays_of(self.model.state_dict()),
                "optimizer": self.optimizer.state_dict(),
                "rng": {"shuffle": self.shuffle.bit_generator.state,
                        "sj": sj.random.default_generator.get_state()},
                "position": {"epoch": self.epoch, "step": self.step},
                "history": self.history, "early_stopping": {"wait": self.wait},
                "best": self.best, "partial": partial})

    def train_epoch(self, stop: _StopRequest, max_steps: int | None) -> tuple[dict, Progress]:
        """The optimizer steps of the next epoch (or the rest of an interrupted one); returns
        its (loss, accuracy) logs and progress bar. Raises `_Paused` after saving a mid-epoch
        checkpoint when Ctrl-C was pressed or the step count reached `max_steps`."""
        cfg, model, optimizer, replicas = self.cfg, self.model, self.optimizer, self.replicas
        epoch, every = self.epoch + 1, cfg.get("checkpoint_every") or 0
        model.train()
        if self.partial is not None:
            p, self.partial = self.partial, None
            order, first = np.asarray(p["order"]), p["batch"]
            total, hits, count = p["total"], p["hits"], p["count"]
            bar = Progress(epoch, cfg["epochs"], self.steps, done=first, elapsed=p["seconds"])
        else:
            order, first, total, hits, count = self.shuffle.permutation(len(self.xtr)), 0, 0.0, \
                0, 0
            bar = Progress(epoch, cfg["epochs"], self.steps)
        for b, idx in enumerate(batches(len(self.xtr), cfg["batch_size"], order)):
            if b < first:
                continue
            xb = self.xtr[idx]
            if cfg["augment"]:
                xb = _shift(xb, self.shuffle)
            mine = replicas.share(np.arange(len(idx)))
            idx, xb = idx[mine], xb[mine]
            loss, h = _loss_and_hits(forward_logits(model, sj.from_numpy(xb)), self.ytr[idx])
            optimizer.zero_grad()
            loss.backward()
            replicas.average_gradients(model)
            optimizer.step()
            self.step += 1
            n = self.ytr[idx].size
            total, hits, count = total + loss.item() * n, hits + h, count + n
            bar.update({"loss": total / count, "accuracy": hits / count})
            if b + 1 == self.steps:
                break  # the epoch's end: end_epoch saves its checkpoint
            pause = stop.requested or self.step == max_steps
            if pause or (every and self.step % every == 0):
                self.checkpoint({"epoch": epoch, "batch": b + 1, "order": order, "total": total,
                                 "hits": hits, "count": count, "seconds": bar.elapsed()})
            if pause:
                bar.abort()
                raise _Paused(f"in epoch {epoch} after step {b + 1} of {self.steps}")
        return {"loss": total / count, "accuracy": hits / count}, bar

    def end_epoch(self, logs: dict, bar: Progress, writer) -> None:
        """Validate, record the history, track the best weights, save the epoch's files."""
        self.epoch += 1
        if len(self.xval):
            logs["val_loss"], logs["val_accuracy"] = evaluate_arrays(self.model, self.xval,
                                                                     self.yval)
        seconds = bar.close(logs)
        for key, value in {**logs, "seconds": seconds}.items():
            self.history.setdefault(key, []).append(value)
            if writer is not None:
                writer.add_scalar(f"epoch/{key}", value, self.epoch)
        if self.sign * logs[self.monitor] > self.best["metric"]:
            self.best = {"metric": self.sign * logs[self.monitor], "epoch": self.epoch,
                         "weights": arrays_of(self.model.state_dict())}
            self.wait = 0
        else:
            self.wait += 1
        if self.saving:
            self.checkpoint()
            save_model(self.out, self.config, self.best["weights"])
            _write_history(self.out / "history.csv", self.history)


def fit(model, optimizer, data: Data, config: dict, out: Path, state: dict | None = None,
        max_steps: int | None = None) -> dict:
    """Train until `epochs` or early stopping, checkpointing each epoch (and every
    `checkpoint_every` steps); then restore the best weights, report the test metrics and write
    the curves. Returns the final summary.

    `state` (a checkpoint) resumes a run bit for bit, also from the middle of an epoch.
    `max_steps` pauses the run after that many optimizer steps in all (a checkpoint to resume
    from is saved; summary {"stopped_at_step": N}); Ctrl-C does the same, raising `Interrupted`.
    """
    run = _Run(model, optimizer, data, config, out, state)
    if max_steps is not None and max_steps <= run.step:
        raise CLIError(f"--max-steps {max_steps}: this run has already taken {run.step} steps")
    epochs = run.cfg["epochs"]
    out.mkdir(parents=True, exist_ok=True)
    writer = _tensorboard(out) if run.saving else None
    try:
        with _StopRequest(active=run.replicas.world == 1) as stop:
            run.print_header()
            while run.epoch < epochs and not run.stopped_early():
                run.end_epoch(*run.train_epoch(stop, max_steps), writer)
                if run.stopped_early():
                    print(f"early stopping: {run.monitor} has not improved for "
                          f"{run.cfg['early_stopping']} epochs; best was epoch "
                          f"{run.best['epoch']}")
                elif run.epoch < epochs and (stop.requested or run.step == max_steps):
                    raise _Paused(f"at the end of epoch {run.epoch}")
    except _Paused as pause:
        hint = f"checkpoint saved; resume with: shenjing train --resume {out}"
        if stop.requested:
            raise Interrupted(f"interrupted {pause}; {hint}") from None
        print(f"stopped at step {run.step} (--max-steps) {pause}; {hint}")
        return {"stopped_at_step": run.step}
    finally:
        if writer is not None:
            writer.close()
    model.load_state_dict(run.best["weights"])
    return _finish(model, data, out, run.history if run.saving else {}, run.best, run.epoch,
                   run.monitor)


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
