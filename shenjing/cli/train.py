"""`shenjing train MODEL --data DATASET`, `shenjing train --resume DIR` and
`shenjing finetune CHECKPOINT --data DATASET --freeze PREFIX... --new-head N`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import shenjing as sj

from ..models import TASKS, freeze, replace_head
from .checkpoint import build_model, load_model_file, load_state
from .common import CLIError
from .datasets import load_data
from .training import OPTIMIZERS, PARALLEL_ENV, build_optimizer, fit, head_kwargs, model_kwargs

TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 128, "lr": 1e-3, "optimizer": "adam",
                  "val_split": 0.1, "augment": False, "early_stopping": 0, "seed": 0,
                  "limit": None, "body_lr": None, "checkpoint_every": 0}
# what `train --resume` may change; everything else continues as the run was started
RESUME_MAY_CHANGE = ("epochs", "checkpoint_every")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _add_training_options(p: argparse.ArgumentParser) -> None:
    """Options shared by train and finetune; None means 'the default, or the resumed run's'."""
    p.add_argument("--data", "--dataset", help="mnist, fashion-mnist, an image folder, an "
                   "aclImdb-layout folder or .tar.gz, or a text file (character language model)")
    p.add_argument("--epochs", type=_positive_int, help="last epoch to train (default 10)")
    p.add_argument("--batch-size", type=_positive_int, help="default 128")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                   help="default adam; sgd uses momentum 0.9")
    p.add_argument("--val-split", "--validation-split", type=float,
                   help="fraction of the training set held out for validation (default 0.1)")
    p.add_argument("--augment", action="store_true", default=None,
                   help="shift training images by up to 2 pixels")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation metric")
    p.add_argument("--seed", type=int, help="seeds initialization, split and order (default 0)")
    p.add_argument("--limit", type=_positive_int, metavar="N",
                   help="use N training and N test examples (a fixed random subset)")
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/MODEL-DATA)")
    p.add_argument("--checkpoint-every", type=_non_negative_int, metavar="STEPS",
                   help="also save the full training state every STEPS optimizer steps, so "
                   "--resume can continue from the middle of an epoch (default 0: at the end "
                   "of each epoch only; Ctrl-C always saves before stopping)")
    p.add_argument("--max-steps", type=_positive_int, metavar="N",
                   help="pause after N optimizer steps in all (resumed ones included), "
                   "saving a checkpoint that --resume continues from")
    p.add_argument("--nproc", type=_positive_int, metavar="N",
                   help="data-parallel training in N processes (shenjing.distributed)")


def register(sub) -> None:
    t = sub.add_parser("train", help="train a zoo model; checkpoints, curves, test accuracy")
    t.add_argument("model", nargs="?", help=f"one of {', '.join(TASKS)}")
    t.add_argument("--model", dest="model_option", help=argparse.SUPPRESS)  # older spelling
    _add_training_options(t)
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR bit for bit, also "
                   "from the middle of an epoch (on the same machine and BLAS thread count)")
    t.set_defaults(func=train)
    f = sub.add_parser("finetune", help="transfer learning: freeze layers, new head, train")
    f.add_argument("checkpoint", help="a run directory or model.safetensors")
    _add_training_options(f)
    f.add_argument("--freeze", nargs="+", default=[], metavar="PREFIX",
                   help="module paths whose parameters stay fixed (e.g. 0 3 or features)")
    f.add_argument("--new-head", type=_positive_int, metavar="N_CLASSES",
                   help="replace the last Linear layer by a fresh one with N_CLASSES outputs")
    f.add_argument("--body-lr", type=float,
                   help="learning rate of the non-head layers that still train (default --lr)")
    f.set_defaults(func=finetune)


def _train_config(args: argparse.Namespace, base: dict) -> dict:
    cfg = dict(base)
    for key in TRAIN_DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    if not 0.0 <= cfg["val_split"] < 1.0:
        raise CLIError(f"--val-split must be in [0, 1), got {cfg['val_split']}")
    if not cfg["lr"] > 0:
        raise CLIError(f"--lr must be positive, got {cfg['lr']}")
    if cfg["early_stopping"] < 0:
        raise CLIError(f"--early-stopping must be >= 0, got {cfg['early_stopping']}")
    return cfg


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _maybe_distributed(args: argparse.Namespace) -> int | None:
    """With --nproc N (N > 1), rerun this command in N MPI processes that split every batch
    (see training.PARALLEL_ENV); returns their exit status, or None to train here."""
    if not args.nproc or args.nproc == 1 or os.environ.get(PARALLEL_ENV):
        return None
    try:
        from .. import distributed
    except ImportError as err:
        raise CLIError(f"--nproc needs shenjing.distributed, which is unavailable ({err}); "
                       "train in one process") from None
    if not distributed.is_available():
        raise CLIError("--nproc needs MPI: apt-get install openmpi-bin libopenmpi-dev and "
                       "pip install mpi4py")
    command = [sys.executable, "-m", "shenjing", *_without_nproc(args.argv)]
    return distributed.launch(command, args.nproc, env={**os.environ, PARALLEL_ENV: "1"})


def _data(spec: str | None, meta: dict | None, limit: int | None):
    if not spec:
        raise CLIError("--data is required (mnist, fashion-mnist, a folder or a file)")
    return load_data(spec, meta, limit=limit)


def train(args: argparse.Namespace) -> int:
    status = _maybe_distributed(args)
    if status is not None:
        return status
    args.model = args.model or args.model_option
    if args.resume:
        return _resume(args)
    if not args.model:
        raise CLIError("train: give a MODEL (or --resume DIR)")
    if args.model not in TASKS:
        raise CLIError(f"unknown model {args.model!r}; choose one of {', '.join(TASKS)}")
    cfg = _train_config(args, TRAIN_DEFAULTS)
    data = _data(args.data, None, cfg["limit"])
    kwargs = model_kwargs(args.model, data)
    sj.manual_seed(cfg["seed"])
    model = build_model({"model": args.model, "kwargs": kwargs}, None, args.model)
    config = {"model": args.model, "kwargs": kwargs, "task": data.task, "data": data.spec,
              "classes": data.classes, "meta": data.meta, "frozen": [], "head": None,
              "train": cfg}
    name = Path(data.spec).name.split(".")[0] or "data"
    out = Path(args.out or f"runs/{args.model}-{name}")
    fit(model, build_optimizer(model, cfg, None), data, config, out, max_steps=args.max_steps)
    return 0


def _resume(args: argparse.Namespace) -> int:
    state = load_state(args.resume)
    config = state["config"]
    if args.model and args.model != config["model"]:
        raise CLIError(f"--resume {args.resume} is a {config['model']} run, not {args.model}")
    if args.data and args.data != config["data"]:
        raise CLIError(f"--resume {args.resume} trained on {config['data']}, not {args.data}")
    changed = [k for k in TRAIN_DEFAULTS if k not in RESUME_MAY_CHANGE
               and getattr(args, k, None) is not None
               and getattr(args, k) != config["train"].get(k, TRAIN_DEFAULTS[k])]
    if changed:
        names = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise CLIError(f"--resume continues the run as it was; only --epochs may change (got "
                       f"{names}), besides --checkpoint-every and --max-steps")
    config["train"] = _train_config(args, config["train"])
    data = _data(config["data"], config["meta"], config["train"]["limit"])
    model = build_model(config, state["model"], f"--resume {args.resume}")
    optimizer = build_optimizer(model, config["train"], config.get("head"))
    fit(model, optimizer, data, config, Path(args.out or args.resume), state, args.max_steps)
    return 0


def finetune(args: argparse.Namespace) -> int:
    status = _maybe_distributed(args)
    if status is not None:
        return status
    model, base = load_model_file(args.checkpoint)
    if base["task"] == "charlm" and args.new_head:
        raise CLIError("--new-head: a character language model has no classification head")
    cfg = _train_config(args, {**TRAIN_DEFAULTS, "body_lr": args.body_lr})
    data = _data(args.data, base["meta"], cfg["limit"])
    if data.task != base["task"]:
        raise CLIError(f"{args.checkpoint} is a {base['task']} model; --data {data.spec} holds "
                       f"{data.task} data")
    kwargs, head = base["kwargs"], None
    if args.new_head:
        if args.new_head != len(data.classes):
            raise CLIError(f"--new-head {args.new_head}, but --data {data.spec} has "
                           f"{len(data.classes)} classes")
        sj.manual_seed(cfg["seed"])
        head = replace_head(model, args.new_head)
        kwargs = head_kwargs(base["model"], kwargs, args.new_head)
    elif data.task != "charlm" and len(data.classes) != len(base["classes"]):
        raise CLIError(f"{args.checkpoint} predicts {len(base['classes'])} classes, --data has "
                       f"{len(data.classes)}; add --new-head {len(data.classes)}")
    try:
        frozen = freeze(model, args.freeze)
    except ValueError as err:
        raise CLIError(f"--freeze: {err}") from None
    if frozen:
        print(f"frozen: {len(frozen)} parameter tensors under {', '.join(args.freeze)}")
    config = {"model": base["model"], "kwargs": kwargs, "task": data.task, "data": data.spec,
              "classes": data.classes, "meta": base["meta"], "frozen": list(args.freeze),
              "head": head, "train": cfg, "finetuned_from": str(args.checkpoint)}
    name = Path(data.spec).name.split(".")[0] or "data"
    out = Path(args.out or f"runs/{base['model']}-finetune-{name}")
    fit(model, build_optimizer(model, cfg, head), data, config, out, max_steps=args.max_steps)
    return 0
