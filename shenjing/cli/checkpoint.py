"""Checkpoints of the command line: safetensors files written through `sj.save` (JSON for
everything that is not an array; never pickle).

A run directory holds
  model.safetensors       {"format": MODEL_FORMAT, "config", "model"}: the best weights, what
                          evaluate / predict / finetune / generate read;
  checkpoint.safetensors  {"format": STATE_FORMAT, "config", "model", "optimizer", "rng",
                          "position", "history", "best", "early_stopping", "partial"}:
                          everything `--resume` needs to continue bit for bit. "partial" is
                          None at an epoch's end; in a mid-epoch checkpoint (--checkpoint-every,
                          --max-steps, Ctrl-C) it holds the epoch's shuffled order, the batches
                          done, the running loss/accuracy totals and the elapsed seconds.
`config` says how to rebuild the model (zoo name and constructor arguments) and its data
(task, `--data`, class names, vocabulary or image size, frozen prefixes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import shenjing as sj

from ..models import get_model
from .common import CLIError

__all__ = ["MODEL_FILE", "STATE_FILE", "save_model", "load_model_file", "build_model",
           "save_state", "load_state", "arrays_of"]

MODEL_FILE, STATE_FILE = "model.safetensors", "checkpoint.safetensors"
MODEL_FORMAT, STATE_FORMAT = "shenjing-cli-model/1", "shenjing-cli-checkpoint/1"


def arrays_of(state_dict: dict) -> dict[str, np.ndarray]:
    """A module's state dict as plain NumPy copies (what `sj.save` stores)."""
    return {k: np.array(v.numpy() if hasattr(v, "numpy") else v) for k, v in state_dict.items()}


def _read(path: Path, fmt: str, what: str) -> dict:
    if not path.exists():
        raise CLIError(f"{what} {path}: no such file or folder")
    try:
        obj = sj.load(path)
    except (ValueError, OSError, KeyError) as err:
        raise CLIError(f"{what} {path}: not a readable checkpoint ({err})") from None
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise CLIError(f"{what} {path}: not a shenjing command-line checkpoint (expected format "
                       f"{fmt!r}; plain weights files load with shenjing.load)")
    return obj


def build_model(config: dict, weights: dict | None, source: str) -> Any:
    """The zoo model `config` describes, frozen as recorded, with `weights` loaded."""
    from ..models import freeze

    try:
        model = get_model(config["model"], **config["kwargs"])
        if config.get("frozen"):
            freeze(model, config["frozen"])
        if weights is not None:
            model.load_state_dict(weights)
    except (KeyError, ValueError, TypeError) as err:
        raise CLIError(f"{source}: weights do not fit model {config.get('model')!r} ({err})") \
            from None
    return model


def resolve_model_path(path: str | Path) -> Path:
    """A run directory means its model.safetensors."""
    path = Path(path).expanduser()
    return path / MODEL_FILE if path.is_dir() else path


def load_model_file(path: str | Path) -> tuple[Any, dict]:
    """(model with its best weights, config) from a run directory or a model file."""
    path = resolve_model_path(path)
    obj = _read(path, MODEL_FORMAT, "checkpoint")
    return build_model(obj["config"], obj["model"], str(path)), obj["config"]


def save_model(directory: Path, config: dict, model_state: dict) -> Path:
    path = directory / MODEL_FILE
    sj.save({"format": MODEL_FORMAT, "config": config, "model": model_state}, path)
    return path


def save_state(directory: Path, state: dict) -> Path:
    path = directory / STATE_FILE
    sj.save({"format": STATE_FORMAT, **state}, path)
    return path


def load_state(directory: str | Path) -> dict:
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise CLIError(f"--resume {directory}: no such run directory")
    return _read(directory / STATE_FILE, STATE_FORMAT, "--resume")
