"""`shenjing info` (versions, BLAS, threads, optional packages) and `shenjing gradcheck MODEL`
(the model's gradients against central differences in float64)."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform

import numpy as np

import shenjing as sj

from ..models import TASKS, get_model
from .common import CLIError, forward_logits

OPTIONAL = {"pillow": "image files", "matplotlib": "curves.png, confusion_matrix.png",
            "h5py": "Keras .h5 files", "tensorboardX": "TensorBoard logs",
            "tqdm": "progress bars", "torch": "tests (oracle)", "safetensors": "tests (oracle)"}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def register(sub) -> None:
    i = sub.add_parser("info", help="versions, BLAS, threads and optional packages found")
    i.set_defaults(func=info)
    g = sub.add_parser("gradcheck", help="check a zoo model's gradients in float64")
    g.add_argument("model", help=f"one of {', '.join(TASKS)}")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=gradcheck)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def info(args: argparse.Namespace) -> int:
    print(f"shenjing {sj.__version__}, Python {platform.python_version()} "
          f"({platform.system()} {platform.machine()}), NumPy {np.__version__}")
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        print(f"BLAS: {blas.get('name')} {blas.get('version')}")
    except Exception:  # noqa: BLE001 - show_config's layout differs between NumPy versions
        print("BLAS: unknown")
    threads = ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS if v in os.environ)
    print(f"CPU cores: {os.cpu_count()}; thread settings: {threads or 'none (BLAS default)'}")
    for package, why in OPTIONAL.items():
        version = _version(package)
        print(f"  {package:<13} {version or 'not installed':<15} {why}")
    return 0


SMALL = {  # small instances: a gradient check runs a float64 forward pass per direction
    "seed000-cnn": ({}, ("image", (2, 1, 28, 28))),
    "seed003-cnn": ({}, ("image", (2, 1, 28, 28))),
    "mlp": ({"sizes": (784, 32, 16, 10)}, ("image", (2, 1, 28, 28))),
    "perceptron": ({"in_features": 20}, ("image", (3, 20))),
    "alexnet": ({"num_classes": 5}, ("image", (1, 3, 63, 63))),
    "resnet": ({"blocks": (1, 1), "widths": (4, 8)}, ("image", (2, 1, 12, 12))),
    "textcnn": ({"vocab_size": 50, "embed_dim": 8, "n_filters": 4}, ("tokens", (2, 9, 50))),
    "transformer": ({"vocab_size": 30, "d_model": 8, "nhead": 2, "dim_feedforward": 16,
                     "padding_idx": 1, "max_len": 16}, ("tokens", (2, 9, 30))),
    "char-lstm": ({"vocab_size": 12, "embed_dim": 6, "hidden_size": 8}, ("tokens", (2, 7, 12))),
    "sequence-regressor": ({"hidden_size": 6}, ("image", (2, 7, 1))),
}


def gradcheck(args: argparse.Namespace) -> int:
    """Directional derivative of a random projection of the output along random directions
    in parameter and input space, against central differences (float64, eval mode)."""
    if args.model not in SMALL:
        raise CLIError(f"unknown model {args.model!r}; choose one of {', '.join(SMALL)}")
    kwargs, (kind, shape) = SMALL[args.model]
    sj.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = get_model(args.model, **kwargs).double().eval()
    params = [p for p in model.parameters() if p.requires_grad]
    if kind == "tokens":
        x = sj.tensor(rng.integers(0, shape[2], size=shape[:2]))
        inputs = []
    else:
        x = sj.tensor(rng.standard_normal(shape), requires_grad=True)
        inputs = [x]
    out0 = forward_logits(model, x)
    weight = rng.standard_normal(tuple(out0.shape))

    def objective() -> float:
        with sj.no_grad():
            return float((forward_logits(model, x).numpy() * weight).sum())

    loss = (forward_logits(model, x) * sj.tensor(weight)).sum()
    loss.backward()
    tensors = params + inputs
    directions = [rng.standard_normal(tuple(t.shape)) for t in tensors]
    norm = np.sqrt(sum(float((d * d).sum()) for d in directions))
    directions = [d / norm for d in directions]  # unit length: small steps, no ReLU kink crossed
    analytic = sum(float((t.grad.numpy() * d).sum()) for t, d in zip(tensors, directions))
    eps = 1e-6
    originals = [t.numpy().copy() for t in tensors]
    with sj.no_grad():
        for t, o, d in zip(tensors, originals, directions):
            t.copy_(sj.tensor(o + eps * d))
        plus = objective()
        for t, o, d in zip(tensors, originals, directions):
            t.copy_(sj.tensor(o - eps * d))
        minus = objective()
        for t, o in zip(tensors, originals):
            t.copy_(sj.tensor(o))
    numeric = (plus - minus) / (2 * eps)
    error = abs(analytic - numeric) / max(1e-3, abs(numeric))
    n = sum(int(t.numel()) for t in params)
    verdict = "OK" if error < 1e-5 else "FAILED"
    print(f"gradcheck {args.model} ({n:,} parameters, float64): {verdict}; directional "
          f"derivative {analytic:.10g} vs central difference {numeric:.10g}, relative error "
          f"{error:.2e}")
    if verdict != "OK":
        raise CLIError(f"gradcheck {args.model}: gradients disagree with central differences")
    return 0
