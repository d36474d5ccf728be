"""The command line: `shenjing COMMAND ...` (console script) or `python -m shenjing COMMAND`.

Commands: train, finetune (module `train`), evaluate, predict (`evaluate`), generate
(`generate`), info, gradcheck (`info`); export, serve and explain are thin modules here that
re-export the command from the package that implements it.

Adding a command: write a module in this package with a `register(subparsers)` function that
adds its parser(s) with `subparsers.add_parser(name, help=...)` and `set_defaults(func=run)`,
where `run(args) -> int` returns the exit status; then add the module's name to `COMMANDS`
below. Report a user's mistake (arguments, paths, data) by raising `CLIError` (from
`shenjing.cli.common`), ValueError, TypeError or OSError with a message that names what was
wrong and what was expected: `main` prints it as one line on stderr and exits with status 1,
never with a traceback. Import heavy dependencies inside `run`, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .common import CLIError

__all__ = ["main", "COMMANDS", "CLIError", "build_parser"]

# modules of this package, in help order
COMMANDS = ["train", "evaluate", "generate", "info", "export", "serve", "explain"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shenjing", description="shenjing (神经): train, evaluate, predict, "
                     "fine-tune and generate from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ImportError as err:  # a command whose dependencies are missing: say so when used
            _unavailable(sub, name, err)
            continue
        module.register(sub)
    return parser


def _unavailable(sub, name: str, err: ImportError) -> None:
    def run(args: argparse.Namespace) -> int:
        raise CLIError(f"this command is unavailable: {err}")

    p = sub.add_parser(name, help=f"(unavailable: {err})")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for relaunching (train --nproc)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed: stop quietly
        return 141
    except (CLIError, ValueError, TypeError, OSError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"shenjing {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # Interrupted (a checkpoint was saved) says how to resume
        print(f"shenjing {args.command}: {err.args[0] if err.args else 'interrupted'}",
              file=sys.stderr)
        return 130
