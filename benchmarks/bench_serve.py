"""Throughput and latency of `shenjing serve` on loopback: 1, 8 and 32 concurrent clients,
dynamic batching on and off.

    python benchmarks/bench_serve.py [--seconds 4] [--model seed000-cnn]

The server runs in a child process (this script with --serve-only) on 127.0.0.1 and an
ephemeral port, serving the seed-000 CNN (random weights: speed does not depend on them).
Each client is a thread that POSTs one 1x28x28 image as a JSON array per request, new
connection each time (Werkzeug answers HTTP/1.0), for --seconds per setting after a short
warm-up. Reported: requests/s, median and 99th-percentile latency, and the mean examples
per model call read from the server's /metrics. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

CLIENTS = (1, 8, 32)


def serve_only(model: str, batching: bool) -> None:
    """Child process: serve until stdin closes; print the port first."""
    import logging

    import shenjing as sj
    from shenjing.models import get_model
    from shenjing.serve import ServedModel, ServerThread, create_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sj.manual_seed(0)
    served = ServedModel(model=get_model(model), name=model, version="bench", task="image",
                         input_shape=(1, 28, 28), classes=[str(i) for i in range(10)])
    with ServerThread(create_app(served, batching=batching, max_batch_size=32,
                                 max_wait_ms=5.0)) as server:
        print(server.port, flush=True)
        sys.stdin.read()


def _post(port: int, body: bytes) -> float:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"server answered {resp.status}")
    finally:
        conn.close()
    return time.perf_counter() - t0


def _load(port: int, clients: int, seconds: float, body: bytes) -> list[float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    def client():
        mine = []
        while time.perf_counter() < stop:
            mine.append(_post(port, body))
        latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def _mean_batch(port: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("shenjing_batch_size_")}
    return values["shenjing_batch_size_sum"], values["shenjing_batch_size_count"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--model", default="seed000-cnn")
    ap.add_argument("--serve-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-batching", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_only:
        serve_only(args.model, not args.no_batching)
        return
    body = json.dumps(np.random.default_rng(0).random((1, 28, 28)).round(4).tolist()).encode()
    print(f"{args.model}, one 1x28x28 image per request, {args.seconds:g} s per setting, "
          f"loopback\n")
    print("| batching | clients | requests/s | p50 latency | p99 latency | examples per "
          "model call |")
    print("|---|---|---|---|---|---|")
    for batching in (True, False):
        cmd = [sys.executable, os.path.abspath(__file__), "--serve-only", "--model", args.model]
        child = subprocess.Popen(cmd + ([] if batching else ["--no-batching"]),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            port = int(child.stdout.readline())
            _load(port, 4, 1.0, body)  # warm-up
            for clients in CLIENTS:
                s0, c0 = _mean_batch(port)
                t0 = time.perf_counter()
                lat = np.array(_load(port, clients, args.seconds, body)) * 1000
                elapsed = time.perf_counter() - t0
                s1, c1 = _mean_batch(port)
                per_call = (s1 - s0) / max(c1 - c0, 1)
                print(f"| {'on' if batching else 'off'} | {clients} | {len(lat) / elapsed:.0f} "
                      f"| {np.percentile(lat, 50):.1f} ms | {np.percentile(lat, 99):.1f} ms "
                      f"| {per_call:.1f} |", flush=True)
        finally:
            child.stdin.close()
            child.wait(timeout=30)


if __name__ == "__main__":
    main()
