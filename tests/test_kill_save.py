"""SIGKILL during a save: the previous file is always intact and loadable, and the next save
removes the temporary files the killed writer left.

Writers run in forked children (the parent already imported shenjing, so a fork costs a few
milliseconds) that save in a loop; the parent kills each at a random moment, 50 kills in all:
20 of `sj.save`, 15 of Keras `ModelCheckpoint` inside `fit`, 15 of the TensorBoard writer.
"""

from __future__ import annotations

import os
import random
import signal
import struct
import time
from pathlib import Path

import numpy as np
import pytest

import shenjing as sj

KILLS_SAVE, KILLS_CHECKPOINT, KILLS_TENSORBOARD = 20, 15, 15

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def fork_and_kill(child, delay: float) -> None:
    """Run child() in a forked process, SIGKILL it after `delay` seconds, reap it."""
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
        "the writer finished or failed before it was killed: make it save longer"


def state(k: int) -> dict:
    """A checkpoint whose every value says which save made it (about 2 MB)."""
    return {"step": k, "w": np.full((512, 512), k, np.float32), "b": np.full(1000, k)}


def check_state(loaded: dict) -> int:
    k = loaded["step"]
    assert np.all(loaded["w"] == k) and np.all(loaded["b"] == k) and loaded["w"].shape == (
        512, 512)
    return k


def test_kill_during_sj_save(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "ckpt.safetensors"
    sj.save(state(0), path)
    interrupted, last = 0, 0

    def writer():
        k = last + 1
        while True:
            sj.save(state(k), path)
            k += 1

    for _ in range(KILLS_SAVE):
        fork_and_kill(writer, rng.uniform(0.002, 0.05))
        last = check_state(sj.load(path))  # an old or a new checkpoint, never a broken one
        interrupted += len(os.listdir(tmp_path)) > 1
        sj.save(state(last), path)
        assert os.listdir(tmp_path) == [path.name]  # the dead writer's temp is gone
    assert interrupted > 0, "no kill landed inside a save; the test checks nothing"


def test_kill_during_keras_model_checkpoint(tmp_path):
    from shenjing import keras

    rng = random.Random(1)
    path = tmp_path / "best.keras"
    model = keras.Sequential([keras.layers.Dense(64, activation="relu", input_shape=(32,)),
                              keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).random((64, 32), np.float32)
    y = np.zeros((64, 4), np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(path)
    checkpoint = keras.callbacks.ModelCheckpoint(str(path), monitor="loss", save_freq=1)

    def trainer():
        model.fit(x, y, batch_size=8, epochs=10_000, verbose=0, callbacks=[checkpoint])

    for _ in range(KILLS_CHECKPOINT):
        fork_and_kill(trainer, rng.uniform(0.005, 0.08))
        restored = keras.models.load_model(path)
        assert restored.predict(x[:2], verbose=0).shape == (2, 4)
        model.save(path)
        assert os.listdir(tmp_path) == [path.name]


MASK_DELTA = 0xA282EAD8


def read_records(path: Path) -> tuple[int, int]:
    """(complete records with valid CRCs, bytes of a torn record at the end)."""
    crc32c = pytest.importorskip("tensorboardX.crc32c").crc32c

    def masked(data: bytes) -> int:
        crc = crc32c(data)
        return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF

    data, pos, records = path.read_bytes(), 0, 0
    while pos + 12 <= len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert masked(header) == length_crc, f"corrupt record header at byte {pos}"
        end = pos + 12 + length + 4
        if end > len(data):
            break  # the record being written when the writer died: readers skip it
        (data_crc,) = struct.unpack("<I", data[end - 4:end])
        assert masked(data[pos + 12:end - 4]) == data_crc, f"corrupt record at byte {pos}"
        records, pos = records + 1, end
    return records, len(data) - pos


def test_kill_during_tensorboard_writer(tmp_path):
    pytest.importorskip("tensorboardX")
    from shenjing.utils.tensorboard import SummaryWriter

    rng = random.Random(2)
    with SummaryWriter(str(tmp_path)) as writer:
        for step in range(10):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
    [previous] = os.listdir(tmp_path)
    before = (tmp_path / previous).read_bytes()

    def logger():
        with SummaryWriter(str(tmp_path), max_queue=1) as child_writer:
            step = 0
            while True:
                child_writer.add_scalar("loss", float(step), step)
                if step % 50 == 0:  # a bigger record now and then (the CRC check is slow)
                    child_writer.add_histogram("w", np.arange(100.0) * step, step)
                step += 1

    for _ in range(KILLS_TENSORBOARD):
        fork_and_kill(logger, rng.uniform(0.01, 0.1))
    assert (tmp_path / previous).read_bytes() == before
    assert read_records(tmp_path / previous) == (11, 0)  # file version event + 10 scalars
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 1 + KILLS_TENSORBOARD and not any(f.endswith(".tmp") for f in files)
    written = [read_records(tmp_path / name)[0] for name in files if name != previous]
    assert sum(written) > KILLS_TENSORBOARD  # the killed writers did log; all records intact
