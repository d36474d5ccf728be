"""`shenjing export CHECKPOINT model.onnx`: a trained command-line checkpoint as ONNX.

`register(subparsers)` adds the command (the CLI package lists it in its COMMANDS); the
example input is built from what the checkpoint's config records about its data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["register", "run", "example_input"]


def register(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint's model as an ONNX file "
                       "(opset 17, dynamic batch size)")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a run directory or model file")
    p.add_argument("output", metavar="OUTPUT", help="where the .onnx file goes")
    p.add_argument("--input-shape", default=None,
                   help="one example's shape without the batch axis, e.g. 1,28,28 (default: "
                        "from the checkpoint's data)")
    p.set_defaults(func=run)


def example_input(config: dict, input_shape: str | None = None) -> np.ndarray:
    """A one-example batch shaped as the checkpoint's data: images (1, C, H, W) float32,
    token or character ids (1, L) int64."""
    meta, task = config.get("meta") or {}, config.get("task")
    if input_shape:
        try:
            shape = tuple(int(s) for s in input_shape.split(","))
        except ValueError:
            raise ValueError(f"--input-shape must be comma-separated integers like 1,28,28, "
                             f"got {input_shape!r}") from None
        dtype = np.float32 if task in (None, "image") else np.int64
        return np.zeros((1,) + shape, dtype=dtype)
    if task == "image":
        return np.zeros((1, meta["channels"], meta["size"], meta["size"]), np.float32)
    if task == "text":
        return np.zeros((1, meta["max_len"]), np.int64)
    if task == "charlm":
        return np.zeros((1, meta["seq_len"]), np.int64)
    raise ValueError(f"cannot tell the input shape of a {task!r} checkpoint; pass "
                     f"--input-shape")


def run(args: Any) -> int:
    import shenjing as sj

    from ..cli.checkpoint import load_model_file
    from .exporter import export

    model, config = load_model_file(args.checkpoint)
    x = sj.from_numpy(example_input(config, args.input_shape))
    export(model, x, args.output, input_names=["input"],
           dynamic_axes={"input": {0: "batch"}})
    print(f"wrote {args.output} (opset 17, input 'input' of shape (batch, "
          f"{', '.join(map(str, x.shape[1:]))}))")
    return 0
