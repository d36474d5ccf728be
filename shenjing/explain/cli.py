"""`shenjing explain CHECKPOINT IMAGE --method ... --out map.png`, and `--text` for text models.

Image models: the image is read and prepared as the model was trained (channels, size, [0, 1]),
the chosen attribution is computed for the predicted class (or --target), and the map is
blended over the image into a PNG. Text models: the text's tokens are printed coloured by
their integrated-gradients attribution (ANSI), or written as HTML with --html.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["add_explain_arguments", "run_explain", "register", "METHODS"]

METHODS = ("saliency", "integrated_gradients", "occlusion", "grad_cam")


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    """The `explain` subcommand's arguments (for the command line to register)."""
    parser.add_argument("checkpoint", help="a run directory or model file")
    parser.add_argument("image", nargs="?", help="an image file (image models)")
    parser.add_argument("--text", help="a text to explain (text models)")
    parser.add_argument("--method", choices=METHODS, default="integrated_gradients")
    parser.add_argument("--target", type=int, default=None,
                        help="class index to explain (default: the predicted class)")
    parser.add_argument("--out", default="map.png", help="PNG to write (image models)")
    parser.add_argument("--html", default=None, help="HTML file to write (text models)")
    parser.add_argument("--steps", type=int, default=50, help="integrated-gradients steps")
    parser.add_argument("--layer", default=None,
                        help="Grad-CAM layer name (default: the last Conv2d)")


def _last_conv(model):
    from ..nn import Conv2d

    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, Conv2d)]
    if not convs:
        raise ValueError("grad_cam needs a model with a Conv2d layer")
    return convs[-1][1]


def _image_map(served, args: argparse.Namespace) -> str:
    from PIL import Image

    from ..io import atomic_write
    from ..serve.inputs import decode_image
    from . import grad_cam, integrated_gradients, occlusion, overlay, saliency

    x = decode_image(Path(args.image).read_bytes(), served)
    model = served.model
    probs = served.predict_proba(x)[0]
    target = int(probs.argmax()) if args.target is None else args.target
    if args.method == "saliency":
        amap = saliency(model, x, target).numpy()[0].sum(axis=0)
    elif args.method == "integrated_gradients":
        amap = integrated_gradients(model, x, target, n_steps=args.steps).numpy()[0].sum(axis=0)
    elif args.method == "occlusion":
        c, h, w = x.shape[1:]
        side = max(2, min(h, w) // 7)
        amap = occlusion(model, x, (c, side, side), strides=(c, max(1, side // 2),
                                                             max(1, side // 2)),
                         target=target).numpy()[0].sum(axis=0)
    else:
        layer = model.get_submodule(args.layer) if args.layer else _last_conv(model)
        amap = grad_cam(model, x, layer, target).numpy()[0]
    scale = max(1, 256 // max(x.shape[2:]))
    picture = overlay(x[0], np.maximum(amap, 0) if args.method == "grad_cam" else amap,
                      scale=scale)
    with atomic_write(args.out, "wb") as f:
        Image.fromarray(picture).save(f, format="PNG")
    return (f"{args.method} map for class {served.classes[target]!r} "
            f"(p={probs[target]:.3f}) written to {args.out}")


def _text_map(served, args: argparse.Namespace) -> str:
    from ..data import tokenize
    from ..io import atomic_write
    from . import token_attributions, tokens_to_ansi, tokens_to_html

    tokens = tokenize(args.text)[:served.input_shape[0]]
    ids = served.encode_texts([args.text])
    probs = served.predict_proba(ids)[0]
    target = int(probs.argmax()) if args.target is None else args.target
    method = "saliency" if args.method == "saliency" else "integrated_gradients"
    scores = token_attributions(served.model, ids, target, method=method,
                                n_steps=args.steps).numpy()[0][:len(tokens)]
    head = f"class {served.classes[target]!r} (p={probs[target]:.3f}), {method}:"
    if args.html:
        with atomic_write(args.html, "w") as f:
            f.write(f"<!doctype html><meta charset='utf-8'><p>{head}</p>"
                    f"{tokens_to_html(tokens, scores)}\n")
        return f"{head} written to {args.html}"
    return f"{head}\n{tokens_to_ansi(tokens, scores)}"


def run_explain(args: argparse.Namespace) -> int:
    """Run the `explain` subcommand from parsed arguments; prints the result."""
    from ..serve.inputs import RequestError
    from ..serve.model import CheckpointError, load_served_model

    try:
        served = load_served_model(args.checkpoint)
        if served.task == "text":
            if not args.text:
                raise ValueError("this is a text model: give the text with --text")
            print(_text_map(served, args))
        else:
            if not args.image:
                raise ValueError("this is an image model: give an IMAGE file")
            print(_image_map(served, args))
    except RequestError as err:
        print(f"explain: {args.image}: {err.reason}", file=sys.stderr)
        return 2
    except (CheckpointError, ValueError, OSError, ImportError) as err:
        print(f"explain: {err}", file=sys.stderr)
        return 2
    return 0


def register(sub) -> None:
    """Add `explain` to the command line's subparsers (shenjing.cli's protocol)."""
    p = sub.add_parser("explain", help="attribution map of an image, or coloured text tokens")
    add_explain_arguments(p)
    p.set_defaults(func=run_explain)
