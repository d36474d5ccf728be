"""The HTTP side of `shenjing serve`: a Flask app (WSGI) and a threaded server to run it.

Flask was chosen on purpose: it is small, mature and well kept (Pallets), its WSGI app runs in
any production WSGI server (waitress, gunicorn) unchanged, and Werkzeug underneath already
enforces body-size limits and parses multipart uploads, the two places where hand-written HTTP
handling usually goes wrong. Its request handlers are plain threads, which fits our batcher: a
request thread waits on a future while one worker thread runs the model.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from .batching import Batcher, Overloaded
from .inputs import RequestError, parse_request
from .metrics import ServerMetrics
from .model import ServedModel

__all__ = ["create_app", "ServerThread", "DEFAULT_MAX_BODY_BYTES"]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
ENDPOINTS = {"/predict": "predict", "/health": "health", "/metrics": "metrics"}


def _error(status: int, reason: str):
    from flask import jsonify

    response = jsonify({"error": reason, "status": status})
    response.status_code = status
    return response


def create_app(served: ServedModel, *, batching: bool = True, max_batch_size: int = 32,
               max_wait_ms: float = 5.0, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               top_k: int = 5) -> Any:
    """A Flask app serving `served` at POST /predict, GET /health and GET /metrics.

    The app's `batcher` (in `app.extensions["shenjing"]`) owns a worker thread; call
    `app.extensions["shenjing"]["batcher"].close()` when done with the app.
    """
    try:
        from flask import Flask, jsonify, request
        from werkzeug.exceptions import HTTPException
    except ImportError:
        raise ImportError("shenjing serve needs Flask: pip install 'shenjing[serve]'") from None

    metrics = ServerMetrics(served.name, served.version, served.classes)
    batcher = Batcher(served.predict_proba, enabled=batching, max_batch_size=max_batch_size,
                      max_wait_ms=max_wait_ms, on_batch=metrics.observe_batch)
    app = Flask("shenjing.serve")
    app.config.update(MAX_CONTENT_LENGTH=max_body_bytes, MAX_FORM_MEMORY_SIZE=max_body_bytes,
                      MAX_FORM_PARTS=16, JSON_SORT_KEYS=False)
    app.extensions["shenjing"] = {"batcher": batcher, "metrics": metrics, "served": served}
    k = max(1, min(top_k, len(served.classes)))

    @app.before_request
    def _start_clock() -> None:
        request.environ["shenjing.start"] = time.perf_counter()

    @app.after_request
    def _count(response):
        start = request.environ.get("shenjing.start", time.perf_counter())
        endpoint = ENDPOINTS.get(request.path, "other")
        metrics.observe_request(endpoint, request.method if endpoint != "other" else "-",
                                response.status_code, time.perf_counter() - start)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        return _error(err.code or 500, err.description or err.name)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        logging.getLogger("shenjing.serve").exception("request failed")
        return _error(500, f"internal error ({type(err).__name__})")

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "model": served.name, "version": served.version,
                        "task": served.task, "input_shape": list(served.input_shape),
                        "classes": served.classes})

    @app.get("/metrics")
    def prometheus():
        return metrics.render(), 200, {"Content-Type": "text/plain; version=0.0.4; "
                                                       "charset=utf-8"}

    @app.post("/predict")
    def predict():
        try:
            files = {name: f.read() for name, f in request.files.items()}
            batch = parse_request(request.content_type or "", request.get_data(cache=False),
                                  files, served)
        except RequestError as err:
            return _error(err.status, err.reason)
        try:
            probs = batcher.submit(batch)
        except Overloaded as err:
            return _error(503, str(err))
        labels = [served.classes[i] for i in probs.argmax(axis=1)]
        metrics.observe_predictions(labels)
        top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return jsonify({
            "model": served.name, "version": served.version,
            "predictions": [
                {"label": label, "index": int(row.argmax()),
                 "top": [{"label": served.classes[i], "probability": float(row[i])}
                         for i in order]}
                for label, row, order in zip(labels, probs, top)],
        })

    return app


class ServerThread:
    """Serve `app` on host:port from a background thread (port 0: an ephemeral port).

    Each connection gets `request_timeout` seconds of socket inactivity before it is
    dropped, so clients that open connections and then stall cannot hold threads forever.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 request_timeout: float = 30.0) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        handler = type("TimedRequestHandler", (WSGIRequestHandler,),
                       {"timeout": request_timeout})
        self.app = app
        self.server = make_server(host, port, app, threaded=True, request_handler=handler)
        self.host, self.port = host, self.server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="shenjing-serve")

    def start(self) -> "ServerThread":
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)
        self.server.server_close()
        batcher = self.app.extensions.get("shenjing", {}).get("batcher")
        if batcher is not None:
            batcher.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
