"""shenjing.utils.tensorboard: events written through tensorboardX, read back by TensorBoard."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from shenjing.utils.tensorboard import SummaryWriter

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


class FakeTensor:
    """Stands in for shenjing.tensor.Tensor (duck-typed on an ndarray `.data`)."""

    def __init__(self, data) -> None:
        self.data = np.asarray(data)


def read_events(log_dir) -> event_accumulator.EventAccumulator:
    accumulator = event_accumulator.EventAccumulator(
        str(log_dir),
        size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0},
    )
    accumulator.Reload()
    return accumulator


def test_scalars_from_floats_numpy_and_tensors(tmp_path):
    losses = [2.5, 1.25, 0.625]
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("Training Loss", losses[0], global_step=1)
        writer.add_scalar("Training Loss", np.float32(losses[1]), global_step=2)
        writer.add_scalar("Training Loss", FakeTensor(np.float32(losses[2])), global_step=3)
        writer.add_scalar("Training Accuracy", FakeTensor([0.75]), global_step=10, walltime=1234.5)
    events = read_events(tmp_path)
    loss = events.Scalars("Training Loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [e.value for e in loss] == losses
    (acc,) = events.Scalars("Training Accuracy")
    assert (acc.step, acc.value, acc.wall_time) == (10, 0.75, 1234.5)


def test_add_scalars_writes_one_run_per_key(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalars(
                "loss", {"train": 1.0 / (step + 1), "val": FakeTensor(2.0 * step)}, step
            )
    train = read_events(tmp_path / "loss_train").Scalars("loss")
    val = read_events(tmp_path / "loss_val").Scalars("loss")
    assert [(e.step, e.value) for e in train] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert [(e.step, e.value) for e in val] == [(0, 0.0), (1, 2.0), (2, 4.0)]


def test_histogram(tmp_path):
    values = np.random.default_rng(0).standard_normal((50, 20)).astype(np.float32)
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("fc.weight", FakeTensor(values), 7)
        writer.add_histogram("ints", np.arange(10), 8, bins="auto")
    (event,) = read_events(tmp_path).Histograms("fc.weight")
    histogram = event.histogram_value
    assert event.step == 7
    assert histogram.num == values.size
    assert histogram.min == pytest.approx(values.min())
    assert histogram.max == pytest.approx(values.max())
    assert histogram.sum == pytest.approx(values.astype(np.float64).sum(), abs=1e-6)
    assert histogram.sum_squares == pytest.approx((values.astype(np.float64) ** 2).sum())
    assert sum(histogram.bucket) == values.size
    (ints,) = read_events(tmp_path).Histograms("ints")
    assert (ints.step, ints.histogram_value.num, ints.histogram_value.max) == (8, 10, 9)


def _decode_png(encoded: bytes) -> np.ndarray:
    image_module = pytest.importorskip("PIL.Image")
    return np.asarray(image_module.open(io.BytesIO(encoded)))


def test_images_chw_hwc_and_float(tmp_path):
    rng = np.random.default_rng(1)
    chw = rng.integers(0, 256, (3, 6, 5), dtype=np.uint8)
    hwc = rng.integers(0, 256, (4, 7, 3), dtype=np.uint8)
    gray = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("chw", FakeTensor(chw), 1)
        writer.add_image("hwc", hwc, 2, dataformats="HWC")
        writer.add_image("gray", gray, 3, dataformats="HW")
        writer.add_images("batch", rng.random((4, 1, 8, 8)), 4)
    events = read_events(tmp_path)
    (image,) = events.Images("chw")
    assert (image.step, image.width, image.height) == (1, 5, 6)
    np.testing.assert_array_equal(_decode_png(image.encoded_image_string), chw.transpose(1, 2, 0))
    (image,) = events.Images("hwc")
    assert image.step == 2
    np.testing.assert_array_equal(_decode_png(image.encoded_image_string), hwc)
    (image,) = events.Images("gray")
    pixels = _decode_png(image.encoded_image_string)[..., 0].astype(int)
    np.testing.assert_allclose(pixels, gray * 255, atol=1)  # floats in [0, 1] scaled to bytes
    (image,) = events.Images("batch")
    assert image.step == 4


def test_text(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_text("notes", "**epoch 1**: 训练开始", 1)
        writer.add_text("notes", "done", 2)
    events = read_events(tmp_path).Tensors("notes/text_summary")
    assert [e.step for e in events] == [1, 2]
    texts = [e.tensor_proto.string_val[0].decode("utf-8") for e in events]
    assert texts == ["**epoch 1**: 训练开始", "done"]


def test_flush_makes_events_visible_before_close(tmp_path):
    writer = SummaryWriter(tmp_path, flush_secs=3600)
    writer.add_scalar("x", 1.0, 0)
    writer.flush()
    assert [e.value for e in read_events(tmp_path).Scalars("x")] == [1.0]
    writer.close()


def test_automatic_flush_by_count_and_by_time(tmp_path):
    writer = SummaryWriter(tmp_path / "count", max_queue=3, flush_secs=3600)
    for step in range(3):
        writer.add_scalar("x", float(step), step)
    assert [e.step for e in read_events(tmp_path / "count").Scalars("x")] == [0, 1, 2]
    writer.close()

    writer = SummaryWriter(tmp_path / "time", max_queue=1000, flush_secs=0.2)
    writer.add_scalar("y", 3.0, 1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.1)
        accumulator = read_events(tmp_path / "time")
        if "y" in accumulator.Tags()["scalars"]:
            break
    assert [e.value for e in accumulator.Scalars("y")] == [3.0]
    writer.close()


def test_logging_after_close_opens_a_new_file_and_keeps_the_old(tmp_path):
    writer = SummaryWriter(tmp_path)
    writer.add_scalar("x", 1.0, 0)
    writer.close()
    writer.add_scalar("x", 2.0, 1)  # same second, same directory: must not overwrite
    writer.close()
    assert len(os.listdir(tmp_path)) == 2
    assert [(e.step, e.value) for e in read_events(tmp_path).Scalars("x")] == [(0, 1.0), (1, 2.0)]


def test_purge_step_hides_stale_events_of_a_crashed_run(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(5):
            writer.add_scalar("loss", float(step), step)
    time.sleep(1.1)  # event files are ordered by their timestamp in seconds
    with SummaryWriter(tmp_path, purge_step=3) as writer:
        writer.add_scalar("loss", 30.0, 3)
    steps = [(e.step, e.value) for e in read_events(tmp_path).Scalars("loss")]
    assert steps == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)]


def test_default_log_dir_is_like_pytorch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = SummaryWriter(comment="_lr0.1")
    writer.add_scalar("x", 1.0, 0)
    writer.close()
    log_dir = writer.get_logdir()
    pattern = rf"runs{re.escape(os.sep)}[A-Z][a-z]{{2}}\d{{2}}_\d{{2}}-\d{{2}}-\d{{2}}_"
    assert re.fullmatch(pattern + re.escape(socket.gethostname() + "_lr0.1"), log_dir)
    assert os.listdir(tmp_path / log_dir)[0].startswith("events.out.tfevents")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda w: w.add_scalar("loss", np.ones(3), 0),
            ValueError,
            r"add_scalar\('loss'\).*shape \(3,\)",
        ),
        (lambda w: w.add_scalar("loss", "high", 0), ValueError, r"expected a single real number"),
        (lambda w: w.add_scalar(3, 1.0, 0), TypeError, r"tag must be a str"),
        (lambda w: w.add_scalars("m", {}, 0), ValueError, r"non-empty dict"),
        (
            lambda w: w.add_histogram("h", np.array([]), 0),
            ValueError,
            r"add_histogram\('h'\): values are empty",
        ),
        (lambda w: w.add_histogram("h", np.array([1.0, np.nan]), 0), ValueError, r"nan or inf"),
        (
            lambda w: w.add_image("img", np.zeros((8, 8)), 0),
            ValueError,
            r"'CHW' expects a 3-d array, got shape \(8, 8\)",
        ),
        (
            lambda w: w.add_image("img", np.zeros((5, 8, 8)), 0),
            ValueError,
            r"expected 1, 3 or 4 channels",
        ),
        (
            lambda w: w.add_image("img", np.zeros((3, 8, 8)), 0, dataformats="CWH"),
            ValueError,
            r"dataformats must be one of",
        ),
        (lambda w: w.add_text("t", 42, 0), TypeError, r"expected a str, got int"),
    ],
)
def test_bad_arguments_are_caught_at_the_call(tmp_path, call, error, message):
    with SummaryWriter(tmp_path) as writer, pytest.raises(error, match=message):
        call(writer)


def test_missing_tensorboardx_is_a_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install tensorboardX"):
        SummaryWriter(tmp_path)


def test_import_shenjing_utils_without_optional_dependencies(tmp_path):
    code = (
        "import sys\n"
        "for name in ('matplotlib', 'tensorboardX', 'tensorboard'):\n"
        "    sys.modules[name] = None\n"
        "import shenjing.utils\n"
        "from shenjing.utils import plot_history\n"
        "from shenjing.utils.tensorboard import SummaryWriter\n"
        "try:\n"
        "    SummaryWriter('unused')\n"
        "except ImportError as err:\n"
        "    assert 'pip install tensorboardX' in str(err)\n"
        "else:\n"
        "    raise SystemExit('expected ImportError')\n"
        "try:\n"
        "    plot_history({'loss': [1.0]}, 'unused.png')\n"
        "except ImportError as err:\n"
        "    assert 'pip install matplotlib' in str(err)\n"
        "else:\n"
        "    raise SystemExit('expected ImportError')\n"
        "assert shenjing.utils.tensorboard.SummaryWriter is SummaryWriter\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
