"""The model a server answers with: loaded once at start-up from a checkpoint, never per request.

Two checkpoint layouts are read:
  * the command line's run directory (or its ``model.safetensors``): one safetensors file
    holding ``{"format": "shenjing-cli-model/1", "config": {...}, "model": state_dict}``,
    where config names the zoo model and its arguments, the task, the class names and what
    inputs look like (image channels and size, or vocabulary and sequence length);
  * a plain ``sj.save(model.state_dict(), "w.safetensors")`` file with a JSON file beside it
    (``w.json``, or ``model.json`` in the same folder) naming the zoo model the same way:
    ``{"model": "seed000-cnn", "kwargs": {}, "task": "image", "classes": [...],
    "input_shape": [1, 28, 28]}``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import shenjing as sj
from shenjing.nn.utils.fusion import fold_batchnorm

__all__ = ["ServedModel", "load_served_model", "CheckpointError"]

CLI_MODEL_FORMAT = "shenjing-cli-model/1"


class CheckpointError(ValueError):
    """The checkpoint cannot be served (missing, unreadable, or not describing a model)."""


@dataclass
class ServedModel:
    """A model in eval mode plus what the server needs to validate inputs and name outputs."""

    model: Any
    name: str
    version: str
    task: str  # "image" (float inputs of input_shape) or "text" (token ids of input_shape)
    input_shape: tuple[int, ...]
    classes: list[str]
    itos: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in ("image", "text"):
            raise CheckpointError(f"cannot serve task {self.task!r}; expected 'image' or 'text'")
        self.model = fold_batchnorm(self.model)  # eval mode, BatchNorm folded into its conv
        self._vocab = None
        if self.itos is not None:
            from ..data import Vocab

            self._vocab = Vocab(self.itos)

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Token ids (N, max_len) padded with the pad index, as the command line trains."""
        from ..data import tokenize

        if self._vocab is None:
            raise CheckpointError(f"{self.name}: this checkpoint has no vocabulary")
        length = self.input_shape[0]
        pad = self._vocab.pad_index if self._vocab.pad_index is not None else 0
        out = np.full((len(texts), length), pad, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = self._vocab.lookup_indices(tokenize(text))[:length]
            out[row, :len(ids)] = ids
        return out

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, classes), computed without building a graph."""
        with sj.no_grad():
            out = self.model(sj.from_numpy(batch))
            logits = out[0] if isinstance(out, tuple) else out
            if logits.requires_grad or logits.grad_fn is not None:
                raise RuntimeError("a prediction built an autograd graph")  # invariant
            z = logits.numpy().astype(np.float64)
        if z.ndim != 2 or z.shape[1] != len(self.classes):
            raise RuntimeError(f"{self.name}: expected logits of shape (N, {len(self.classes)}),"
                               f" got {z.shape}")
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


def _file_version(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def _find(config: dict, key: str) -> Any:
    """`key` at the top of config, in its "meta" (the data description), or in another of
    its dict values."""
    if key in config:
        return config[key]
    nested = [config.get("meta")] + [v for k, v in config.items() if k != "meta"]
    for value in nested:
        if isinstance(value, dict) and key in value:
            return value[key]
    return None


def _describe(config: dict, source: str) -> dict:
    task = config.get("task", "image")
    classes = _find(config, "classes")
    shape = _find(config, "input_shape")
    itos = _find(config, "itos")
    if shape is None and task == "image":
        channels, size = _find(config, "channels"), _find(config, "size")
        if channels is None or size is None:
            raise CheckpointError(f"{source}: the config says neither input_shape nor image "
                                  f"channels and size")
        shape = (int(channels), int(size), int(size))
    if shape is None and task == "text":
        shape = (int(_find(config, "max_len")),)
    if not classes:
        raise CheckpointError(f"{source}: the config lists no class names")
    return {"task": task, "classes": [str(c) for c in classes],
            "input_shape": tuple(int(d) for d in shape),
            "itos": list(itos) if itos is not None else None}


def _build(config: dict, weights: dict, source: str):
    from ..models import get_model

    try:
        model = get_model(config["model"], **config.get("kwargs", {}))
        model.load_state_dict(weights)
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{source}: weights do not fit model {config.get('model')!r} "
                              f"({err})") from None
    return model


def load_served_model(path: str | Path) -> ServedModel:
    """Load a checkpoint (see the module docstring) for serving or explaining."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        obj = sj.load(path)
    except (ValueError, OSError, KeyError) as err:
        raise CheckpointError(f"checkpoint {path}: not a readable safetensors file ({err})") \
            from None
    if isinstance(obj, dict) and obj.get("format") == CLI_MODEL_FORMAT:
        config, weights = obj["config"], obj["model"]
    else:
        sidecar = next((p for p in (path.with_suffix(".json"), path.parent / "model.json")
                        if p.is_file()), None)
        if sidecar is None:
            raise CheckpointError(f"checkpoint {path}: plain weights need a JSON file beside "
                                  f"them ({path.with_suffix('.json').name} or model.json) "
                                  f"naming the zoo model")
        try:
            config = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{sidecar}: not readable JSON ({err})") from None
        weights = obj
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"checkpoint {path}: the config names no zoo model")
    described = _describe(config, str(path))
    model = _build(config, weights, str(path))
    version = str(config.get("version") or _file_version(path))
    return ServedModel(model=model, name=str(config["model"]), version=version, **described)
