"""Prometheus text-format metrics for the model server, written by hand (the format is small).

Exposed at GET /metrics: request counts by endpoint, method and status, a request-latency
histogram per endpoint, a batch-size histogram, predictions per class, and the served model's
name and version as an info gauge. Endpoints are the server's own route names, never the raw
request path, so hostile URLs cannot blow up the number of series.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter

__all__ = ["ServerMetrics", "LATENCY_BUCKETS", "BATCH_BUCKETS"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Histogram:
    """Cumulative-bucket histogram, as Prometheus expects (`le` upper bounds, then +Inf)."""

    def __init__(self, buckets: tuple) -> None:
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def lines(self, name: str, **labels: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            running += count
            le = "+Inf" if bound == float("inf") else _number(bound)
            out.append(f"{name}_bucket{_labels(**labels, le=le)} {running}")
        out.append(f"{name}_sum{_labels(**labels)} {_number(float(self.total))}")
        out.append(f"{name}_count{_labels(**labels)} {running}")
        return out


class ServerMetrics:
    """Thread-safe counters and histograms of one server; `render()` gives the exposition."""

    def __init__(self, model_name: str, model_version: str, classes: list[str]) -> None:
        self.model_name, self.model_version = model_name, model_version
        self._lock = threading.Lock()
        self._requests: Counter = Counter()
        self._latency: dict[str, _Histogram] = {}
        self._batch = _Histogram(BATCH_BUCKETS)
        self._predictions: Counter = Counter({c: 0 for c in classes})

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(endpoint, method, str(status))] += 1
            hist = self._latency.setdefault(endpoint, _Histogram(LATENCY_BUCKETS))
            hist.observe(seconds)

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self._batch.observe(size)

    def observe_predictions(self, labels: list[str]) -> None:
        with self._lock:
            self._predictions.update(labels)

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP shenjing_model_info The model being served.",
                "# TYPE shenjing_model_info gauge",
                f"shenjing_model_info"
                f"{_labels(model=self.model_name, version=self.model_version)} 1",
                "# HELP shenjing_requests_total HTTP requests by endpoint, method and status.",
                "# TYPE shenjing_requests_total counter",
            ]
            for (endpoint, method, status), n in sorted(self._requests.items()):
                lines.append(f"shenjing_requests_total"
                             f"{_labels(endpoint=endpoint, method=method, status=status)} {n}")
            lines += ["# HELP shenjing_request_duration_seconds Request latency.",
                      "# TYPE shenjing_request_duration_seconds histogram"]
            for endpoint, hist in sorted(self._latency.items()):
                lines += hist.lines("shenjing_request_duration_seconds", endpoint=endpoint)
            lines += ["# HELP shenjing_batch_size Examples per model call.",
                      "# TYPE shenjing_batch_size histogram"]
            lines += self._batch.lines("shenjing_batch_size")
            lines += ["# HELP shenjing_predictions_total Predicted class of each example.",
                      "# TYPE shenjing_predictions_total counter"]
            for label, n in self._predictions.items():
                lines.append(f"shenjing_predictions_total{_labels(label=label)} {n}")
        return "\n".join(lines) + "\n"
