"""The progress bar: Keras's exact line format, one line per epoch off a terminal, in-place
redrawing on one, verbose=2's summary line and silence with verbose=0."""

from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest

from shenjing import keras
from shenjing.keras import layers
from shenjing.keras.progbar import Progbar, format_time, format_value

NUM = r"\d\.\d{4}"
TIME = r"\d+(?:s|ms|us)/step"
BAR = re.compile(rf"^(\d+)/(\d+) \[(=+)\] - \d+s {TIME} - loss: {NUM} - accuracy: {NUM}"
                 rf"( - val_loss: {NUM} - val_accuracy: {NUM})?$")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(5)


def _fit(verbose, epochs=3, n=40, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = keras.Sequential([layers.Dense(2, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=verbose, **kwargs)
    return model, x, y


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_non_terminal_prints_one_keras_line_per_epoch(capsys):
    _fit(1, validation_split=0.2)
    lines = capsys.readouterr().out.split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert lines[0::2] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    for line in lines[1::2]:
        m = BAR.match(line)
        assert m, line
        assert m.group(1) == m.group(2) == "4"  # 32 training samples / batch 8
        assert len(m.group(3)) == 30 and m.group(4)
    assert "\r" not in "".join(lines)


def test_terminal_redraws_in_place(monkeypatch):
    term = _Terminal()
    monkeypatch.setattr(sys, "stdout", term)
    _fit(1, epochs=1, n=400)
    out = term.getvalue()
    frames = out.split("\r")
    assert frames[0] == ""  # single epoch: no "Epoch 1/1" header, as Keras
    assert re.match(r"^ 1/50 \[\.{30}\] - ETA: \d+s - loss: \d\.\d{4} - accuracy: \d\.\d{4}",
                    frames[1])
    final = frames[-1]
    assert final.endswith("\n") and BAR.match(final.rstrip("\n").rstrip())
    assert out.count("\n") == 1


def test_verbose_2_and_0(capsys):
    _fit(2, epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0::2] == ["Epoch 1/2", "Epoch 2/2"]
    for line in lines[1::2]:
        assert re.match(rf"^5/5 - \d+s - loss: {NUM} - accuracy: {NUM} - \d+(?:s|ms|us)/epoch"
                        rf" - {TIME}$", line), line
    _fit(0)
    assert capsys.readouterr().out == ""


def test_evaluate_and_predict_bars(capsys):
    model, x, y = _fit(0)
    capsys.readouterr()
    model.evaluate(x, y, batch_size=16)
    out = capsys.readouterr().out
    assert re.match(rf"^3/3 \[={{30}}\] - \d+s {TIME} - loss: {NUM} - accuracy: {NUM}\n$", out)
    model.predict(x, batch_size=16)
    assert re.match(rf"^3/3 \[={{30}}\] - \d+s {TIME}\n$", capsys.readouterr().out)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_value_and_time_formatting():
    assert format_value(0.123456) == "0.1235"
    assert format_value(0.0001234) == "1.2340e-04"
    assert format_value(12.5) == "12.5000"
    assert format_time(2.4, "step") == " 2s/step"
    assert format_time(0.0114, "step") == " 11ms/step"
    assert format_time(0.00025, "step") == " 250us/step"


def test_standalone_progbar_averages_stateless_values(capsys):
    bar = Progbar(4, dynamic=False)
    bar.update(2, [("loss", 1.0)])
    bar.update(4, [("loss", 3.0)], finalize=False)
    assert capsys.readouterr().out == ""  # not a terminal: nothing before the end
    bar = Progbar(4, dynamic=False, stateful_metrics=["acc"])
    bar.add(2, [("loss", 1.0), ("acc", 0.5)])
    bar.add(2, [("loss", 3.0), ("acc", 0.75)])
    out = capsys.readouterr().out
    assert re.match(r"^4/4 \[={30}\] - \d+s \d+(?:s|ms|us)/step - loss: 3\.0000 - "
                    r"acc: 0\.7500\n$", out)
    bar = Progbar(10, dynamic=True, interval=0.0)
    bar.update(3, [("loss", 2.0)])
    bar.update(6, [("loss", 4.0)])
    out = capsys.readouterr().out
    assert "loss: 3.0000" in out.split("\r")[-1]  # running average of 2 and 4 (3 steps each)
    assert "[=================>............]" in out
