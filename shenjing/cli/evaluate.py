"""`shenjing evaluate CHECKPOINT... --data DATASET` (one model, or an ensemble averaging
probabilities) and `shenjing predict CHECKPOINT INPUT...` (top-k classes)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from ..metrics import accuracy_score, classification_report, confusion_matrix
from ..nn.utils.fusion import fold_batchnorm
from .checkpoint import load_model_file, resolve_model_path
from .common import CLIError, predict_proba, warn
from .datasets import encode_texts, image_array, load_data, load_image, read_text


def register(sub) -> None:
    e = sub.add_parser("evaluate", help="test metrics of a checkpoint, or of an ensemble")
    e.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="run directories or model files; several are averaged (ensemble)")
    e.add_argument("--data", required=True, help="the data set, as for train")
    e.add_argument("--limit", type=int, metavar="N",
                   help="only N test examples (the same fixed subset as train --limit)")
    e.add_argument("--out", metavar="DIR",
                   help="where confusion_matrix.png goes (default: the first checkpoint's run)")
    e.set_defaults(func=evaluate)
    p = sub.add_parser("predict", help="top-k classes of images, text lines or a .npy array")
    p.add_argument("checkpoint")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, text files (one input per line) or .npy arrays")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=predict)


def _load_models(paths: list[str]):
    """The checkpoints' models for inference: eval mode, BatchNorm folded into its conv."""
    models = [(fold_batchnorm(m), cfg) for m, cfg in (load_model_file(p) for p in paths)]
    first = models[0][1]
    for path, (_, cfg) in zip(paths[1:], models[1:]):
        if cfg["task"] != first["task"] or cfg["classes"] != first["classes"]:
            raise CLIError(f"cannot ensemble {paths[0]} and {path}: they predict different "
                           "classes or tasks")
        if cfg["meta"] != first["meta"]:
            raise CLIError(f"cannot ensemble {paths[0]} and {path}: they read their inputs "
                           "differently (vocabulary or image size)")
    return models


def _plot_confusion(matrix: np.ndarray, classes: list[str], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warn("no confusion_matrix.png (matplotlib is not installed)")
        return False
    from ..io import atomic_write

    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 1.0 + 0.6 * k))
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true",
           title="Confusion matrix")
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return True


def evaluate(args: argparse.Namespace) -> int:
    models = _load_models(args.checkpoints)
    config = models[0][1]
    data = load_data(args.data, config["meta"], limit=args.limit)
    if data.task != config["task"]:
        raise CLIError(f"{args.checkpoints[0]} is a {config['task']} model; --data {args.data} "
                       f"holds {data.task} data")
    x, y = data.x_test, data.y_test
    proba = np.mean([predict_proba(model, x) for model, _ in models], axis=0)
    what = f"ensemble of {len(models)}" if len(models) > 1 else str(args.checkpoints[0])
    if data.task == "charlm":
        nll = -np.mean(np.log(np.take_along_axis(proba, y[..., None], -1) + 1e-300))
        print(f"{what} on {args.data}: {y.size} characters")
        print(f"test bits per character: {nll / math.log(2):.4f}")
        print(f"test accuracy: {float((proba.argmax(-1) == y).mean()):.4f}")
        return 0
    if data.classes != config["classes"]:
        raise CLIError(f"{args.checkpoints[0]} predicts classes {config['classes'][:5]}..., but "
                       f"--data {args.data} has {data.classes[:5]}...")
    pred = proba.argmax(-1)
    labels = list(range(len(data.classes)))
    print(f"{what} on {args.data}: {len(y)} test examples")
    print(f"test accuracy: {accuracy_score(y, pred):.4f}\n")
    print(classification_report(y, pred, target_names=data.classes, digits=4))
    matrix = confusion_matrix(y, pred, labels=labels)
    width = max(5, len(str(matrix.max())) + 1)
    print("confusion matrix (rows: true, columns: predicted)")
    print(" " * 14 + "".join(f"{i:>{width}}" for i in labels))
    for i, row in enumerate(matrix):
        print(f"{i:>3} {data.classes[i][:10]:<10}" + "".join(f"{v:>{width}}" for v in row))
    out = Path(args.out) if args.out else resolve_model_path(args.checkpoints[0]).parent
    out.mkdir(parents=True, exist_ok=True)
    if _plot_confusion(matrix, data.classes, out / "confusion_matrix.png"):
        print(f"confusion matrix written to {out / 'confusion_matrix.png'}")
    return 0


def _inputs(paths: list[str], config: dict) -> tuple[list[str], np.ndarray]:
    """(names, model-ready array) for every input path."""
    from ..data.datasets import IMG_EXTENSIONS

    meta, task = config["meta"], config["task"]
    names, rows = [], []
    for spec in paths:
        path = Path(spec)
        if not path.is_file():
            raise CLIError(f"input {spec}: no such file")
        if path.suffix == ".npy":
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as err:
                raise CLIError(f"input {spec}: not a plain .npy array ({err})") from None
            expected = ((meta["channels"], meta["size"], meta["size"]) if task == "image"
                        else (meta.get("max_len"),))
            if array.shape == expected or (task == "image" and array.shape == expected[1:]):
                array = array[None]
            if array.shape[1:] not in (expected, expected[1:]):
                raise CLIError(f"input {spec}: shape {array.shape}; expected (N, "
                               f"{', '.join(map(str, expected))}) for this model")
            array = array.reshape(len(array), *expected)
            rows.extend(array.astype(np.float32 if task == "image" else np.int64))
            names.extend(f"{path.name}[{i}]" for i in range(len(array)))
        elif task == "image" and path.suffix.lower() in IMG_EXTENSIONS:
            rows.append(image_array(load_image(path, meta["channels"], meta["size"])[None])[0])
            names.append(path.name)
        elif task == "text":
            lines = [line for line in read_text(path).splitlines() if line.strip()]
            rows.extend(encode_texts(lines, meta))
            names.extend(line[:40] for line in lines)
        else:
            raise CLIError(f"input {spec}: a {task} model takes "
                           f"{'image files' if task == 'image' else 'text files'} or .npy arrays")
    if not rows:
        raise CLIError("no inputs to predict (the text files are empty)")
    return names, np.stack(rows)


def predict(args: argparse.Namespace) -> int:
    model, config = load_model_file(args.checkpoint)
    if config["task"] == "charlm":
        raise CLIError("predict: a character language model continues text; use "
                       "`shenjing generate`")
    if args.top_k < 1:
        raise CLIError(f"--top-k must be >= 1, got {args.top_k}")
    names, x = _inputs(args.inputs, config)
    proba = predict_proba(model, x)
    k = min(args.top_k, proba.shape[1])
    top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    classes = config["classes"]
    results = [{"input": name, "top": [{"class": classes[j], "index": int(j),
                                        "probability": round(float(p[j]), 6)} for j in t]}
               for name, p, t in zip(names, proba, top)]
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return 0
    width = max(len(n) for n in names)
    for r in results:
        cells = "  ".join(f"{c['class']} {c['probability']:.3f}" for c in r["top"])
        print(f"{r['input']:<{width}}  {cells}")
    return 0
