"""`shenjing serve`: a trained model behind HTTP, with input checks, batching and metrics.

    shenjing serve RUN_DIR [--host 127.0.0.1] [--port 8000]

POST /predict (JSON array, image upload or text), GET /health, GET /metrics (Prometheus text).
Needs the optional extra ``serve`` (Flask). The server listens on loopback unless told
otherwise, reads its model once at start-up, and never reads a file a request names.
"""

from __future__ import annotations

import argparse
import sys

from .app import DEFAULT_MAX_BODY_BYTES, ServerThread, create_app
from .model import CheckpointError, ServedModel, load_served_model

__all__ = ["create_app", "ServerThread", "ServedModel", "load_served_model", "CheckpointError",
           "serve", "add_serve_arguments", "run_serve", "register"]


def serve(checkpoint: str, host: str = "127.0.0.1", port: int = 8000, **options) -> None:
    """Load `checkpoint` and serve it until interrupted (Ctrl-C)."""
    served = load_served_model(checkpoint)
    app = create_app(served, **options)
    server = ServerThread(app, host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}, not loopback: anyone who can reach this "
              f"machine can query the model", file=sys.stderr)
    print(f"serving {served.name} (version {served.version}) at {server.url} "
          f"- POST /predict, GET /health, GET /metrics", flush=True)
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
        app.extensions["shenjing"]["batcher"].close()


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` subcommand's arguments (for the command line to register)."""
    parser.add_argument("checkpoint", help="a run directory or model file")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-batching", action="store_true",
                        help="answer each request with its own model call")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0,
                        help="how long the first request of a batch waits for company")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)


def run_serve(args: argparse.Namespace) -> int:
    """Run the `serve` subcommand from parsed arguments."""
    if not 0 <= args.port <= 65535:
        print(f"serve: --port must be in 0..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        serve(args.checkpoint, args.host, args.port, batching=not args.no_batching,
              max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
              max_body_bytes=args.max_body_bytes)
    except (CheckpointError, ImportError) as err:
        print(f"serve: {err}", file=sys.stderr)
        return 2
    return 0


def register(sub) -> None:
    """Add `serve` to the command line's subparsers (shenjing.cli's protocol)."""
    p = sub.add_parser("serve", help="serve a checkpoint over HTTP (predict, health, metrics)")
    add_serve_arguments(p)
    p.set_defaults(func=run_serve)
