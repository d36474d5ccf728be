"""shenjing.utils.plot_history: seed 000's accuracy/loss figure as a PNG."""

from __future__ import annotations

import os

import numpy as np
import pytest

from shenjing.utils import plot_history

matplotlib_image = pytest.importorskip("matplotlib.image")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_RGB = (0xFF, 0xA5, 0x00)  # the seed's colours
VAL_RGB = (0x00, 0xCE, 0xD1)


class History:
    """What a Keras-style fit() returns: the per-epoch logs in `.history`."""

    def __init__(self, history: dict) -> None:
        self.history = history


def full_history() -> dict:
    return {
        "loss": [0.9, 0.5, 0.3, 0.2],
        "accuracy": [0.70, 0.85, 0.90, 0.93],
        "val_loss": [0.6, 0.4, 0.35, 0.33],
        "val_accuracy": [0.80, 0.88, 0.90, 0.91],
    }


def read_png(path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return (matplotlib_image.imread(path)[..., :3] * 255).round().astype(int)


def has_colour(pixels: np.ndarray, rgb: tuple[int, int, int]) -> bool:
    return bool((np.abs(pixels - np.array(rgb)).sum(axis=-1) <= 6).sum() > 20)


def test_history_object_gives_two_panels_with_train_and_validation(tmp_path):
    path = tmp_path / "history.png"
    returned = plot_history(History(full_history()), path)
    assert returned == path
    assert path.stat().st_size > 10_000  # a real figure, not an empty canvas
    pixels = read_png(path)
    assert pixels.shape[:2] == (400, 1200)  # two 6x4-inch panels at 100 dpi
    assert has_colour(pixels, TRAIN_RGB) and has_colour(pixels, VAL_RGB)
    assert [p.name for p in tmp_path.iterdir()] == ["history.png"]  # no temp file left


def test_plain_dict_and_tensor_like_values(tmp_path):
    class FakeTensor:
        def __init__(self, value: float) -> None:
            self.data = np.array(value, np.float32)

    history = {"loss": [FakeTensor(1.0), np.float32(0.5), 0.25], "accuracy": [0.1, 0.2, 0.3]}
    path = tmp_path / "dict.png"
    plot_history(history, path)
    pixels = read_png(path)
    assert pixels.shape[:2] == (400, 1200)
    assert has_colour(pixels, TRAIN_RGB)
    assert not has_colour(pixels, VAL_RGB)  # no val_ keys: no validation curve


def test_missing_metrics_are_skipped(tmp_path):
    path = tmp_path / "loss_only.png"
    plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, path)
    assert read_png(path).shape[:2] == (400, 600)  # one panel: accuracy is absent

    path = tmp_path / "custom.png"
    plot_history(full_history(), path, metrics=("loss", "accuracy", "auc"))
    assert read_png(path).shape[:2] == (400, 1200)


def test_overwrites_atomically(tmp_path):
    path = tmp_path / "h.png"
    path.write_bytes(b"old")
    plot_history(full_history(), path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert os.listdir(tmp_path) == ["h.png"]


@pytest.mark.parametrize("history", [{}, History({}), {"loss": [], "accuracy": []}])
def test_empty_history_raises(tmp_path, history):
    with pytest.raises(ValueError, match="history is empty"):
        plot_history(history, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_no_requested_metric_raises(tmp_path):
    with pytest.raises(ValueError, match=r"none of the metrics \('accuracy', 'loss'\).*'mae'"):
        plot_history({"mae": [0.3, 0.2]}, tmp_path / "x.png")


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="expected a History"):
        plot_history([0.5, 0.6], tmp_path / "x.png")
    with pytest.raises(TypeError, match=r"history\['loss'\] must be a sequence of numbers"):
        plot_history({"loss": ["high", "low"]}, tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot_history(full_history(), tmp_path / "missing_dir" / "x.png")
