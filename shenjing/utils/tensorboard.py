"""TensorBoard logging with PyTorch's `SummaryWriter` API (``torch.utils.tensorboard``).

The event files themselves (TFRecord framing around protobuf `Event`s) are written by
tensorboardX, an optional dependency: a small, well-kept library that does exactly that, so
shenjing does not hand-write the format. This module converts shenjing Tensors and other
array-likes to NumPy and checks arguments at the user's call.

It behaves like PyTorch's writer where tensorboardX's own `SummaryWriter` differs, which is why
it uses tensorboardX's summary builders and its `EventsWriter` (the record writer) directly:
- tags are kept as given ("Training Loss" stays "Training Loss"; tensorboardX would write
  "Training_Loss");
- `add_scalars` writes each curve to ``<log_dir>/<main_tag>_<key>`` as PyTorch does;
- `flush()` guarantees the events are on disk when it returns (tensorboardX's background
  queue does not), so a reader started right after sees them;
- event files are named ``events.out.tfevents.<time>.<host>.<pid>.<n>`` as PyTorch names them,
  so two writers in one directory within the same second never overwrite each other.
Events are written as they are logged and flushed every `max_queue` events or `flush_secs`
seconds, whichever comes first. The default log directory is PyTorch's too,
``runs/<Mon DD_HH-MM-SS>_<hostname><comment>``.

Example (seed 004's training loop)::

    from shenjing.utils.tensorboard import SummaryWriter
    with SummaryWriter() as writer:
        writer.add_scalar("Training Loss", loss, global_step=step)
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from datetime import datetime
from typing import Any, Self

import numpy as np

__all__ = ["SummaryWriter"]


def _import_tensorboardx() -> Any:
    try:
        import tensorboardX
        import tensorboardX.event_file_writer
        import tensorboardX.proto.event_pb2
        import tensorboardX.summary
    except ImportError as err:
        raise ImportError(
            "shenjing.utils.tensorboard.SummaryWriter needs the optional package tensorboardX "
            "(pip install tensorboardX): it writes TensorBoard's event-file format (TFRecord and "
            "protobuf), which shenjing deliberately does not reimplement"
        ) from err
    return tensorboardX


def _to_numpy(value: Any) -> np.ndarray:
    """NumPy view of an ndarray, a shenjing Tensor (anything whose `.numpy()` gives an ndarray)
    or an array-like."""
    if isinstance(value, np.ndarray):
        return value
    to_numpy = getattr(value, "numpy", None)
    array = to_numpy() if callable(to_numpy) and hasattr(value, "requires_grad") else None
    if not isinstance(array, np.ndarray):
        array = getattr(value, "data", None)  # older duck-typed tensors: an ndarray `.data`
    return array if isinstance(array, np.ndarray) else np.asarray(value)


def _check_tag(method: str, tag: Any) -> None:
    if not isinstance(tag, str):
        raise TypeError(f"SummaryWriter.{method}: tag must be a str, got {type(tag).__name__}")


def _to_float(method: str, tag: str, value: Any) -> float:
    """One number out of a Python number, NumPy scalar or one-element Tensor/array."""
    array = _to_numpy(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        raise ValueError(
            f"SummaryWriter.{method}({tag!r}): expected a single real number, "
            f"got {array.dtype} of shape {array.shape}"
        )
    return float(array.reshape(()))


def _tensorflow_bins() -> list[float]:
    """TensorBoard's default histogram buckets: +-1e-12 growing by 10% to 1e20, and 0."""
    edges, value = [], 1e-12
    while value < 1e20:
        edges.append(value)
        value *= 1.1
    return [-v for v in reversed(edges)] + [0.0] + edges


def _default_log_dir(comment: str) -> str:
    current_time = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", f"{current_time}_{socket.gethostname()}{comment}")


_file_counter = itertools.count()  # makes event-file names unique within the process


class _EventFile:
    """One event file: events written as they come, flushed every `max_queue` events or
    `flush_secs` seconds (by a one-shot timer armed when the first unflushed event arrives)."""

    def __init__(
        self, tbx: Any, log_dir: str, max_queue: int, flush_secs: float, filename_suffix: str
    ) -> None:
        os.makedirs(log_dir, exist_ok=True)
        suffix = f".{os.getpid()}.{next(_file_counter)}{filename_suffix}"
        self._writer = tbx.event_file_writer.EventsWriter(os.path.join(log_dir, "events"), suffix)
        self._max_queue = max(1, max_queue)
        self._flush_secs = flush_secs
        self._lock = threading.Lock()
        self._pending = 0
        self._timer: threading.Timer | None = None
        self._closed = False

    def write(self, event: Any) -> None:
        with self._lock:
            self._writer.write_event(event)
            self._pending += 1
            if self._pending >= self._max_queue:
                self._flush_locked()
            elif self._timer is None:
                self._timer = threading.Timer(self._flush_secs, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._closed:
            self._writer.flush()
        self._pending = 0

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            if not self._closed:
                self._writer.close()
                self._closed = True


class SummaryWriter:
    """Writes scalars, histograms, images and text for TensorBoard to `log_dir`.

    Args:
        log_dir: the run directory; default ``runs/<datetime>_<hostname><comment>``.
        comment: suffix of the default log_dir (ignored when log_dir is given, like PyTorch).
        purge_step: on resuming a crashed run, hide events at or after this step.
        max_queue: at most this many events wait in memory before being flushed to disk.
        flush_secs: at most this many seconds pass before logged events are flushed.
        filename_suffix: suffix of the event file's name.

    After `close`, logging again reopens a new event file in the same directory (as PyTorch).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ) -> None:
        self._tbx = _import_tensorboardx()
        self.log_dir = os.fspath(log_dir) if log_dir is not None else _default_log_dir(comment)
        self.purge_step = purge_step
        self._options = {
            "max_queue": max_queue,
            "flush_secs": flush_secs,
            "filename_suffix": filename_suffix,
        }
        self._files: dict[str, _EventFile] = {}  # log dir -> its open event file
        self._main()  # create the directory and event file now, as PyTorch does

    def get_logdir(self) -> str:
        """The directory the event files go to (PyTorch's name for `log_dir`)."""
        return self.log_dir

    def _main(self) -> _EventFile:
        return self._file_for(self.log_dir)

    def _file_for(self, log_dir: str) -> _EventFile:
        """The open event file of `log_dir`; a new one after `close` (as PyTorch does)."""
        event_file = self._files.get(log_dir)
        if event_file is None:
            event_file = _EventFile(self._tbx, log_dir, **self._options)
            if self.purge_step is not None:  # tells TensorBoard to drop later, stale events
                pb = self._tbx.proto.event_pb2
                event_file.write(pb.Event(step=self.purge_step, file_version="brain.Event:2"))
                start = pb.SessionLog(status=pb.SessionLog.START)
                event_file.write(pb.Event(step=self.purge_step, session_log=start))
            self._files[log_dir] = event_file
        return event_file

    def _write(
        self,
        summary: Any,
        global_step: int | None,
        walltime: float | None,
        log_dir: str | None = None,
    ) -> None:
        event = self._tbx.proto.event_pb2.Event(summary=summary)
        event.wall_time = time.time() if walltime is None else float(walltime)
        if global_step is not None:
            event.step = int(global_step)
        self._file_for(log_dir or self.log_dir).write(event)

    @staticmethod
    def _retag(summary: Any, tag: str) -> Any:
        """Put back the tag tensorboardX's builders rewrite to TensorFlow's op-name rules."""
        summary.value[0].tag = tag
        return summary

    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Log one number (a float, a NumPy scalar or a one-element Tensor) under `tag`."""
        _check_tag("add_scalar", tag)
        value = _to_float("add_scalar", tag, scalar_value)
        self._write(self._retag(self._tbx.summary.scalar(tag, value), tag), global_step, walltime)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Log several numbers on one chart, e.g. ``{"train": 0.3, "val": 0.4}``.

        Like PyTorch, each key becomes its own run, ``<log_dir>/<main_tag>_<key>``, in which the
        value is logged under `main_tag`.
        """
        _check_tag("add_scalars", main_tag)
        if not isinstance(tag_scalar_dict, dict) or not tag_scalar_dict:
            raise ValueError(
                f"SummaryWriter.add_scalars({main_tag!r}): expected a non-empty dict of "
                f"name -> number, got {tag_scalar_dict!r}"
            )
        values = {}
        for key, value in tag_scalar_dict.items():
            _check_tag("add_scalars", key)
            values[key] = _to_float("add_scalars", f"{main_tag}/{key}", value)
        walltime = time.time() if walltime is None else walltime
        for key, value in values.items():
            run = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{key}")
            summary = self._retag(self._tbx.summary.scalar(main_tag, value), main_tag)
            self._write(summary, global_step, walltime, log_dir=run)

    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: int | None = None,
        bins: str | int = "tensorflow",
        walltime: float | None = None,
        max_bins: int | None = None,
    ) -> None:
        """Log the distribution of `values` (weights, gradients, activations).

        `bins` is "tensorflow" (TensorBoard's exponential buckets), a NumPy bin rule such as
        "auto", or a number of bins.
        """
        _check_tag("add_histogram", tag)
        array = _to_numpy(values)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"SummaryWriter.add_histogram({tag!r}): expected real numbers, got {array.dtype}"
            )
        if array.size == 0:
            raise ValueError(f"SummaryWriter.add_histogram({tag!r}): values are empty")
        array = array.astype(np.float64).reshape(-1)
        if not np.isfinite(array).all():
            raise ValueError(
                f"SummaryWriter.add_histogram({tag!r}): values contain nan or inf "
                "(a diverged model?); expected finite numbers"
            )
        if isinstance(bins, str) and bins == "tensorflow":
            bins = _tensorflow_bins()
        summary = self._tbx.summary.histogram(tag, array, bins, max_bins=max_bins)
        self._write(self._retag(summary, tag), global_step, walltime)

    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        """Log one image: uint8 in [0, 255] or float in [0, 1], laid out as `dataformats`.

        `dataformats` is "CHW" (default, as in `nn`), "HWC" (as in `keras`) or "HW"
        (grayscale); C is 1, 3 or 4.
        """
        self._add_image("add_image", tag, img_tensor, global_step, walltime, dataformats)

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """Log a batch of images as one grid; `dataformats` is "NCHW" or "NHWC"."""
        self._add_image("add_images", tag, img_tensor, global_step, walltime, dataformats)

    def _add_image(
        self,
        method: str,
        tag: str,
        img: Any,
        global_step: int | None,
        walltime: float | None,
        dataformats: str,
    ) -> None:
        _check_tag(method, tag)
        array = _to_numpy(img)
        allowed = ("NCHW", "NHWC") if method == "add_images" else ("CHW", "HWC", "HW")
        if dataformats not in allowed:
            raise ValueError(
                f"SummaryWriter.{method}({tag!r}): dataformats must be one of {allowed}, "
                f"got {dataformats!r}"
            )
        if array.ndim != len(dataformats):
            raise ValueError(
                f"SummaryWriter.{method}({tag!r}): dataformats {dataformats!r} expects a "
                f"{len(dataformats)}-d array, got shape {array.shape}"
            )
        if "C" in dataformats and array.shape[dataformats.index("C")] not in (1, 3, 4):
            raise ValueError(
                f"SummaryWriter.{method}({tag!r}): expected 1, 3 or 4 channels on axis "
                f"{dataformats.index('C')} ({dataformats!r}), got shape {array.shape}"
            )
        if array.dtype.kind not in "biuf":
            raise TypeError(f"SummaryWriter.{method}({tag!r}): expected numbers, got {array.dtype}")
        summary = self._tbx.summary.image(tag, array, dataformats=dataformats)
        self._write(self._retag(summary, tag), global_step, walltime)

    def add_text(
        self,
        tag: str,
        text_string: str,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Log a piece of text (Markdown, rendered by TensorBoard) under ``<tag>/text_summary``."""
        _check_tag("add_text", tag)
        if not isinstance(text_string, str):
            raise TypeError(
                f"SummaryWriter.add_text({tag!r}): expected a str, got {type(text_string).__name__}"
            )
        self._write(self._tbx.summary.text(tag, text_string), global_step, walltime)

    def flush(self) -> None:
        """Write buffered events to disk now."""
        for event_file in self._files.values():
            event_file.flush()

    def close(self) -> None:
        """Flush and close the event files."""
        files, self._files = self._files, {}
        for event_file in files.values():
            event_file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SummaryWriter(log_dir={self.log_dir!r})"
