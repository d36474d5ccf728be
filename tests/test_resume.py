"""Exact resume (issue 7): train N epochs, save, resume in a NEW process for M epochs, and
get bit for bit the weights of N + M uninterrupted epochs.

Two programs, each with every source of randomness a real one has (weight init, Dropout,
shuffled batches) and state beyond the weights (Adam's moments and step, a learning-rate
schedule):

* PyTorch style: an nn.Sequential with Dropout, Adam + StepLR, a shuffled DataLoader (with 0
  and 2 workers); the checkpoint is one `sj.save` file holding the model's, optimizer's and
  scheduler's state_dicts and `sj.get_rng_state()`.
* Keras style: a Sequential with Dropout, compiled with Adam on an ExponentialDecay schedule,
  `fit(shuffle=True)`; the checkpoint is `model.save("….keras")` (weights and optimizer
  state) plus the RNG state, resumed with `load_model` and `fit(initial_epoch=N)`.

The resumed halves run in one child process (`python tests/test_resume.py resume DIR`), so
nothing but the files carries over.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import shenjing as sj

FIRST, TOTAL = 2, 4  # epochs before the checkpoint, epochs in all
WORKERS = (0, 2)


def make_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 6)).astype(np.float32)
    y = (x @ rng.standard_normal((6, 3))).argmax(1).astype(np.int64)
    return x, y


# ----------------------------------------------------------------------------- PyTorch style
def torch_style(start: int, stop: int, workers: int, ckpt_in: Path | None = None,
                ckpt_out: Path | None = None) -> dict[str, np.ndarray]:
    """Train epochs [start, stop) from a fresh seed, or from `ckpt_in`; save to `ckpt_out`."""
    from shenjing import nn, optim
    from shenjing.data import DataLoader, TensorDataset

    sj.manual_seed(1234)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
    opt = optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    x, y = make_data()
    loader = DataLoader(TensorDataset(sj.from_numpy(x), sj.from_numpy(y)), batch_size=16,
                        shuffle=True, num_workers=workers)
    if ckpt_in is not None:
        state = sj.load(ckpt_in)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sj.set_rng_state(state["rng"])
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(start, stop):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        sched.step()
    if ckpt_out is not None:
        sj.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "rng": sj.get_rng_state()}, ckpt_out)
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- Keras style
def keras_model():
    from shenjing import keras

    keras.utils.set_random_seed(42)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(3)])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=3,
                                                           decay_rate=0.8)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def keras_fit(model, initial_epoch: int, epochs: int) -> list[np.ndarray]:
    x, y = make_data()
    model.fit(x, y, batch_size=16, epochs=epochs, initial_epoch=initial_epoch, shuffle=True,
              verbose=0)
    return [np.array(w) for w in model.get_weights()]


def keras_first_half(folder: Path) -> None:
    model = keras_model()
    keras_fit(model, 0, FIRST)
    model.save(folder / "keras_model.keras")
    sj.save({"rng": sj.get_rng_state()}, folder / "keras_rng.safetensors")


def keras_resume(folder: Path) -> list[np.ndarray]:
    from shenjing import keras

    keras_model()  # the same program: its construction consumes the generator as before
    model = keras.models.load_model(folder / "keras_model.keras")
    sj.set_rng_state(sj.load(folder / "keras_rng.safetensors")["rng"])
    return keras_fit(model, FIRST, TOTAL)


# ----------------------------------------------------------------------------- the child
def resume_in_this_process(folder: Path) -> None:
    """The child's work: every resumed half, results written to `folder`."""
    results = {}
    for workers in WORKERS:
        weights = torch_style(FIRST, TOTAL, workers, ckpt_in=folder / f"torch_{workers}.st")
        results.update({f"torch_{workers}/{k}": v for k, v in weights.items()})
    results.update({f"keras/{i}": w for i, w in enumerate(keras_resume(folder))})
    sj.save(results, folder / "resumed.safetensors")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("resume")
    for workers in WORKERS:
        torch_style(0, FIRST, workers, ckpt_out=folder / f"torch_{workers}.st")
    keras_first_half(folder)
    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(repo), *filter(None, [os.environ.get("PYTHONPATH")])]))
    child = subprocess.run([sys.executable, __file__, "resume", str(folder)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    return folder, sj.load(folder / "resumed.safetensors")


@pytest.mark.parametrize("workers", WORKERS)
def test_pytorch_style_loop_resumes_bit_for_bit(resumed, workers):
    _, results = resumed
    straight = torch_style(0, TOTAL, workers)
    first_half = torch_style(0, FIRST, workers)
    for name, expected in straight.items():
        got = results[f"torch_{workers}/{name}"]
        np.testing.assert_array_equal(got, expected, err_msg=name)
        # and the resumed epochs did train: the weights moved on from the checkpoint
        assert not np.array_equal(got, first_half[name]), name


def test_keras_fit_initial_epoch_resumes_bit_for_bit(resumed):
    _, results = resumed
    straight = keras_fit(keras_model(), 0, TOTAL)
    got = [results[f"keras/{i}"] for i in range(len(straight))]
    for i, (g, e) in enumerate(zip(got, straight)):
        np.testing.assert_array_equal(g, e, err_msg=f"weight {i}")
    first_half = keras_fit(keras_model(), 0, FIRST)
    assert not np.array_equal(got[0], first_half[0])


def test_rng_state_round_trip_and_bad_states():
    sj.manual_seed(7)
    sj.rand(3)
    state = sj.get_rng_state()
    assert state.dtype == sj.uint8 and state.shape == (45,)
    expected = sj.randn(4).numpy().copy()
    sj.manual_seed(99)  # move elsewhere, then restore
    sj.set_rng_state(state)
    np.testing.assert_array_equal(sj.randn(4).numpy(), expected)
    assert sj.initial_seed() == 7
    with pytest.raises(ValueError, match="45 bytes"):
        sj.set_rng_state(sj.from_numpy(np.zeros(10, np.uint8)))
    with pytest.raises(ValueError, match="uint8"):
        sj.set_rng_state(np.zeros(45, np.float32))


def test_without_the_rng_state_the_resume_differs(resumed):
    # the RNG state is what makes the resume exact: without it, Dropout masks and batch
    # order differ and so do the weights (this guards the test against being vacuous)
    folder, _ = resumed
    from shenjing import nn, optim  # noqa: F401  (the same imports as torch_style)

    state = sj.load(folder / "torch_0.st")
    sj.manual_seed(5)
    state["rng"] = sj.get_rng_state()  # some other generator state
    sj.save(state, folder / "torch_0_norng.st")
    got = torch_style(FIRST, TOTAL, 0, ckpt_in=folder / "torch_0_norng.st")
    straight = torch_style(0, TOTAL, 0)
    assert any(not np.array_equal(got[k], straight[k]) for k in straight)

    # Keras: the same without the RNG state, or without the optimizer state
    from shenjing import keras

    straight = keras_fit(keras_model(), 0, TOTAL)
    for drop in ("rng", "optimizer"):
        keras_model()
        model = keras.models.load_model(folder / "keras_model.keras",
                                        compile=drop == "rng")
        if drop == "optimizer":  # a fresh optimizer: Adam's moments and step start over
            model.compile(optimizer=keras.optimizers.Adam(
                keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=3,
                                                            decay_rate=0.8)),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        if drop != "rng":
            sj.set_rng_state(sj.load(folder / "keras_rng.safetensors")["rng"])
        got = keras_fit(model, FIRST, TOTAL)
        assert any(not np.array_equal(g, e) for g, e in zip(got, straight)), drop


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "resume":
        sys.exit("usage: python tests/test_resume.py resume FOLDER")
    resume_in_this_process(Path(sys.argv[2]))
