"""`shenjing generate CHECKPOINT --prompt TEXT --length N --temperature T --seed S`."""

from __future__ import annotations

import argparse

from .checkpoint import load_model_file
from .common import CLIError


def register(sub) -> None:
    g = sub.add_parser("generate", help="continue a prompt with a character language model")
    g.add_argument("checkpoint")
    g.add_argument("--prompt", default="\n", help="text to continue (default: a new line)")
    g.add_argument("--length", type=int, default=300, help="characters to add (default 300)")
    g.add_argument("--temperature", type=float, default=0.8,
                   help="sampling temperature; 0 picks the likeliest character (default 0.8)")
    g.add_argument("--seed", type=int, default=0, help="same seed, same text (default 0)")
    g.set_defaults(func=generate)


def generate(args: argparse.Namespace) -> int:
    model, config = load_model_file(args.checkpoint)
    if config["task"] != "charlm":
        raise CLIError(f"generate: {args.checkpoint} is a {config['task']} model, not a "
                       "character language model")
    if args.length < 0 or not args.temperature >= 0:
        raise CLIError("--length and --temperature must be >= 0")
    try:
        text = model.generate(args.prompt, args.length, args.temperature, seed=args.seed)
    except ValueError as err:
        raise CLIError(str(err)) from None
    print(text)
    return 0
