"""Mid-epoch checkpoints of `shenjing train`: `--checkpoint-every STEPS`, `--max-steps N` and
Ctrl-C save the whole training state in the middle of an epoch (model, optimizer, both random
generators, the epoch's shuffled order, the running loss/accuracy totals, early stopping's
progress), and `--resume DIR` continues from there bit for bit, also in a new process.

Everything runs on a small real slice of MNIST through the command line's own data path:
`--limit 200` keeps 180 training images, batches of 32 make 6 steps per epoch; `--augment`
draws from the shuffle generator at every step, so a resume that restored the generator at
the wrong point would train on other images."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_cli import DATA, TRAIN, _data_home  # noqa: F401  (the same slice and data home)

import shenjing as sj
from shenjing.cli import main
from shenjing.cli import training as cli_training
from shenjing.cli.checkpoint import load_state

pytestmark = pytest.mark.skipif(not (DATA / "mnist").is_dir(), reason="needs ../shared/data")
REPO = Path(sj.__file__).resolve().parents[1]
STEPS_PER_EPOCH = 6


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def shenjing_process(*argv, **kwargs) -> subprocess.Popen:
    """`python -m shenjing ARGV` in a new process, so nothing but the files on disk carries
    over from the test's process. The environment (BLAS threads included: they change the
    rounding of sums) stays the test's, as bit-identity needs."""
    env = {**os.environ, "SHENJING_DATA": str(DATA), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "shenjing", *map(str, argv)], cwd=REPO,
                            env=env, text=True, **kwargs)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """Two uninterrupted epochs: the run every resumed one must equal."""
    out = tmp_path_factory.mktemp("straight")
    assert cli(*TRAIN, "--epochs", 2, "--out", out) == 0
    return out


def assert_same_run(got: Path, expected: Path) -> None:
    """Equal weights (last and best), optimizer state, generators, position and history
    (wall times aside) in two run directories' checkpoints."""
    a, b = sj.load(got / "checkpoint.safetensors"), sj.load(expected / "checkpoint.safetensors")
    assert a["position"] == b["position"] and a["partial"] is None and b["partial"] is None
    for key in b["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key], err_msg=key)
        np.testing.assert_array_equal(a["best"]["weights"][key], b["best"]["weights"][key])
    for i, s in b["optimizer"]["state"].items():
        assert a["optimizer"]["state"][i]["step"] == s["step"]
        for moment in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(a["optimizer"]["state"][i][moment], s[moment])
    assert a["rng"] == b["rng"]
    for key, values in b["history"].items():
        if key != "seconds":
            assert a["history"][key] == values, key  # exact floats, not approximately
    assert a["best"]["epoch"] == b["best"]["epoch"] and a["early_stopping"] == b["early_stopping"]
    best_a = sj.load(got / "model.safetensors")["model"]
    best_b = sj.load(expected / "model.safetensors")["model"]
    assert all(np.array_equal(best_a[k], best_b[k]) for k in best_b)


def test_max_steps_pauses_mid_epoch_and_a_new_process_resumes_bit_for_bit(straight, tmp_path,
                                                                          capsys):
    out = tmp_path / "paused"
    k = 4
    assert cli(*TRAIN, "--epochs", 2, "--max-steps", k, "--out", out) == 0
    printed = capsys.readouterr().out
    assert (f"stopped at step {k} (--max-steps) in epoch 1 after step {k} of "
            f"{STEPS_PER_EPOCH}; checkpoint saved; resume with: shenjing train --resume {out}"
            in printed)
    assert "Epoch 1/2" not in printed and "test accuracy" not in printed
    state = load_state(out)
    assert state["position"] == {"epoch": 0, "step": k}
    partial = state["partial"]
    assert (partial["epoch"], partial["batch"], partial["count"]) == (1, k, 32 * k)
    assert sorted(partial["order"].tolist()) == list(range(180))
    assert 0 < partial["hits"] <= partial["count"] and partial["total"] > 0
    assert state["history"] == {} and state["best"]["epoch"] == 0

    child = shenjing_process("train", "--resume", out, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    stdout, stderr = child.communicate(timeout=240)
    assert child.returncode == 0, stderr[-2000:]
    assert f"resuming epoch 1 after step {k} of {STEPS_PER_EPOCH}" in stdout
    assert "Epoch 1/2" in stdout and "Epoch 2/2" in stdout and "test accuracy" in stdout
    assert_same_run(out, straight)


def test_checkpoint_every_saves_mid_epoch_and_resumes_from_any_of_them(straight, tmp_path,
                                                                      monkeypatch):
    """With --checkpoint-every 4 the state is saved at steps 4, 8, 12 (12 is the end of epoch
    2) besides each epoch's end; resuming a copy of the step-8 checkpoint (as after a crash
    there) ends exactly where the uninterrupted run ended."""
    out, crash = tmp_path / "every", tmp_path / "crash"
    saved = []
    original = cli_training.save_state

    def recording_save(directory, state):
        path = original(directory, state)
        partial = state["partial"]
        saved.append((state["position"]["step"], partial and partial["batch"]))
        if state["position"]["step"] == 8:
            shutil.copytree(directory, crash, ignore=shutil.ignore_patterns("tensorboard"))
        return path

    monkeypatch.setattr(cli_training, "save_state", recording_save)
    assert cli(*TRAIN, "--epochs", 2, "--checkpoint-every", 4, "--out", out) == 0
    assert saved == [(4, 4), (6, None), (8, 2), (12, None)]
    assert_same_run(out, straight)  # saving changes nothing about training
    monkeypatch.setattr(cli_training, "save_state", original)
    assert load_state(crash)["partial"]["epoch"] == 2
    assert cli("train", "--resume", crash) == 0
    assert_same_run(crash, straight)


def test_resume_of_a_mid_epoch_checkpoint_may_stop_again(straight, tmp_path, capsys):
    """Pause at step 3, resume and pause at step 9 (epoch 2), resume to the end."""
    out = tmp_path / "twice"
    assert cli(*TRAIN, "--epochs", 2, "--max-steps", 3, "--out", out) == 0
    assert cli("train", "--resume", out, "--max-steps", 9) == 0
    assert "in epoch 2 after step 3 of 6" in capsys.readouterr().out
    assert sj.load(out / "checkpoint.safetensors")["position"] == {"epoch": 1, "step": 9}
    code = main(["train", "--resume", str(out), "--max-steps", "9"])
    _, err = capsys.readouterr()
    assert code == 1 and err == ("shenjing train: error: --max-steps 9: this run has already "
                                 "taken 9 steps\n")
    assert cli("train", "--resume", out) == 0
    assert_same_run(out, straight)


def _ctrl_c_not_ignored() -> None:
    """In the child before exec: a test run started in the background of a shell inherits
    SIGINT ignored, and the command line respects that; undo it for this child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_in_a_subprocess_saves_a_checkpoint_that_resumes_exactly(tmp_path, capsys):
    out = tmp_path / "sigint"
    child = shenjing_process(*TRAIN, "--epochs", 50, "--out", out, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=_ctrl_c_not_ignored)
    try:
        header = child.stdout.readline()  # printed once the Ctrl-C handler is in place
        assert header.startswith("seed000-cnn ("), header
        time.sleep(1.0)  # into the first epochs
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, stderr[-2000:]
    # one line (besides notes about optional dependencies, were one missing)
    lines = [line for line in stderr.splitlines() if not line.startswith("shenjing: note:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    resume = f"checkpoint saved; resume with: shenjing train --resume {out}"
    match = re.fullmatch(r"shenjing train: interrupted (?:in epoch (\d+) after step \d+ of 6|"
                         r"at the end of epoch (\d+)); " + re.escape(resume), lines[0])
    assert match, stderr
    epoch = int(match.group(1) or match.group(2))
    assert "test accuracy" not in stdout
    state = load_state(out)  # the checkpoint is whole and loads
    assert state["position"]["step"] >= 1
    # finish the interrupted epoch in this process; it must equal `epoch` straight epochs
    assert cli("train", "--resume", out, "--epochs", epoch) == 0
    expected = tmp_path / "expected"
    assert cli(*TRAIN, "--epochs", epoch, "--out", expected) == 0
    capsys.readouterr()
    assert_same_run(out, expected)


def test_options_are_checked(tmp_path, capsys):
    for argv, message in (
        (["--checkpoint-every", "-1"], "--checkpoint-every: expected an integer >= 0, got -1"),
        (["--max-steps", "0"], "--max-steps: expected a positive integer, got 0"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main([*TRAIN, *argv, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("\n") == 1, err


def test_a_paused_finetune_resumes_exactly_with_its_layers_still_frozen(straight, tmp_path,
                                                                         capsys):
    tune = ["finetune", straight, "--data", "mnist", "--limit", 100, "--freeze", "0", "3",
            "--new-head", 10, "--epochs", 1, "--batch-size", 16]
    assert cli(*tune, "--out", tmp_path / "whole") == 0
    assert cli(*tune, "--max-steps", 2, "--out", tmp_path / "paused") == 0
    assert "in epoch 1 after step 2 of 6" in capsys.readouterr().out
    assert cli("train", "--resume", tmp_path / "paused") == 0
    assert_same_run(tmp_path / "paused", tmp_path / "whole")
    base = sj.load(straight / "model.safetensors")["model"]
    tuned = sj.load(tmp_path / "paused" / "checkpoint.safetensors")["model"]
    for key in ("0.weight", "0.bias", "3.weight", "3.bias"):
        np.testing.assert_array_equal(tuned[key], base[key], err_msg=key)
    assert not np.array_equal(tuned["7.weight"], base["7.weight"])


def test_ctrl_c_at_a_known_step_in_process(straight, tmp_path, capsys, monkeypatch):
    """A real SIGINT delivered during step 3's forward pass: the step finishes, the state
    after step 3 is saved, exit status 130, Ctrl-C handling is restored afterwards."""
    out = tmp_path / "known"
    calls = []
    original = cli_training._loss_and_hits

    def interrupting(logits, target):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return original(logits, target)

    monkeypatch.setattr(cli_training, "_loss_and_hits", interrupting)
    handler = signal.getsignal(signal.SIGINT)
    assert cli(*TRAIN, "--epochs", 2, "--out", out) == 130
    assert signal.getsignal(signal.SIGINT) is handler
    err = capsys.readouterr().err
    assert err == (f"shenjing train: interrupted in epoch 1 after step 3 of 6; checkpoint "
                   f"saved; resume with: shenjing train --resume {out}\n")
    assert load_state(out)["position"] == {"epoch": 0, "step": 3}
    monkeypatch.setattr(cli_training, "_loss_and_hits", original)
    assert cli("train", "--resume", out) == 0
    assert_same_run(out, straight)


def test_checkpoints_from_before_mid_epoch_saving_still_resume(straight, tmp_path, capsys):
    """A checkpoint written before this feature (no "partial", no checkpoint_every) resumes."""
    old = tmp_path / "old"
    shutil.copytree(straight, old, ignore=shutil.ignore_patterns("tensorboard"))
    state = sj.load(old / "checkpoint.safetensors")
    del state["partial"], state["config"]["train"]["checkpoint_every"]
    sj.save(state, old / "checkpoint.safetensors")
    assert cli("train", "--resume", old, "--epochs", 3, "--checkpoint-every", 4) == 0
    assert "Epoch 3/3" in capsys.readouterr().out
    assert sj.load(old / "checkpoint.safetensors")["position"] == {"epoch": 3, "step": 18}
