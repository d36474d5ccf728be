"""The command line on small real slices: train / resume / evaluate / predict / finetune /
generate / info / gradcheck, and every mistake as one line on stderr with a non-zero exit."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import shenjing as sj
from shenjing.cli import main
from shenjing.cli.checkpoint import load_model_file
from shenjing.cli.common import predict_proba
from shenjing.cli.datasets import load_data

DATA = Path(os.environ.get("SHENJING_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
pytestmark = pytest.mark.skipif(not (DATA / "mnist").is_dir(), reason="needs ../shared/data")
TRAIN = ["train", "seed000-cnn", "--data", "mnist", "--limit", "200", "--batch-size", "32",
         "--augment"]


@pytest.fixture(scope="module", autouse=True)
def _data_home():
    old = os.environ.get("SHENJING_DATA")
    os.environ["SHENJING_DATA"] = str(DATA)
    yield
    if old is None:
        del os.environ["SHENJING_DATA"]
    else:
        os.environ["SHENJING_DATA"] = old


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys, *argv, match: str) -> None:
    """The command exits non-zero with exactly one line on stderr that contains `match`."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    assert code != 0
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert match in err, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two epochs straight, and one epoch that a test resumes."""
    root = tmp_path_factory.mktemp("runs")
    assert main([*TRAIN, "--epochs", "2", "--out", str(root / "two")]) == 0
    assert main([*TRAIN, "--epochs", "1", "--out", str(root / "one")]) == 0
    return root


def test_train_writes_its_outputs(runs, capsys):
    two = runs / "two"
    for name in ("model.safetensors", "checkpoint.safetensors", "history.csv", "curves.png"):
        assert (two / name).is_file(), name
    assert any((two / "tensorboard").iterdir())
    lines = (two / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy,seconds" and len(lines) == 3
    state = sj.load(two / "checkpoint.safetensors")
    assert state["position"] == {"epoch": 2, "step": 12}  # 180 images, batches of 32
    val = [float(r.split(",")[4]) for r in lines[1:]]
    best = sj.load(two / "model.safetensors")["model"]
    expected = state["model"] if val[1] > val[0] else state["best"]["weights"]
    for k, v in best.items():
        assert np.array_equal(v, expected[k])


def test_train_prints_test_accuracy_and_where_outputs_went(tmp_path, capsys):
    code, out, _ = run(capsys, *TRAIN, "--epochs", "1", "--val-split", "0", "--out", tmp_path)
    assert code == 0
    model, _ = load_model_file(tmp_path)
    data = load_data("mnist", limit=200)
    acc = float((predict_proba(model, data.x_test).argmax(1) == data.y_test).mean())
    assert f"test accuracy: {acc:.4f}" in out
    assert f"outputs in {tmp_path}/: model.safetensors" in out


def test_resume_is_bit_identical(runs, capsys):
    code, out, _ = run(capsys, "train", "--resume", runs / "one", "--epochs", "2")
    assert code == 0 and "Epoch 2/2" in out and "Epoch 1/2" not in out
    a = sj.load(runs / "one" / "checkpoint.safetensors")
    b = sj.load(runs / "two" / "checkpoint.safetensors")
    for k in b["model"]:
        assert np.array_equal(a["model"][k], b["model"][k]), k
    for i, s in b["optimizer"]["state"].items():
        assert np.array_equal(a["optimizer"]["state"][i]["exp_avg_sq"], s["exp_avg_sq"])
    assert a["history"]["loss"] == b["history"]["loss"]
    assert a["rng"] == b["rng"]


def test_evaluate_single_and_ensemble(runs, tmp_path, capsys):
    data = load_data("mnist", limit=200)
    models = [load_model_file(runs / r)[0] for r in ("one", "two")]
    proba = np.mean([predict_proba(m, data.x_test) for m in models], axis=0)
    acc = float((proba.argmax(1) == data.y_test).mean())
    code, out, _ = run(capsys, "evaluate", runs / "one", runs / "two", "--data", "mnist",
                       "--limit", 200, "--out", tmp_path)
    assert code == 0 and "ensemble of 2" in out and f"test accuracy: {acc:.4f}" in out
    assert "precision    recall  f1-score" in out and "confusion matrix" in out
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_json_and_table(runs, tmp_path, capsys):
    x = load_data("mnist", limit=3).x_test
    np.save(tmp_path / "x.npy", x)
    code, out, _ = run(capsys, "predict", runs / "two", tmp_path / "x.npy", "--json",
                       "--top-k", 2)
    assert code == 0
    result = json.loads(out)
    proba = predict_proba(load_model_file(runs / "two")[0], x)
    for r, p in zip(result, proba):
        assert [c["index"] for c in r["top"]] == list(np.argsort(-p)[:2])
        assert r["top"][0]["probability"] == pytest.approx(p.max(), abs=1e-6)
    code, out, _ = run(capsys, "predict", runs / "two", tmp_path / "x.npy")
    assert code == 0 and out.startswith("x.npy[0]") and len(out.splitlines()) == 3


def test_finetune_freezes_and_replaces_head(runs, tmp_path, capsys):
    code, out, _ = run(capsys, "finetune", runs / "two", "--data", "mnist", "--limit", 100,
                       "--freeze", "0", "3", "--new-head", 10, "--epochs", 1,
                       "--out", tmp_path)
    assert code == 0 and "frozen: 4 parameter tensors" in out
    before = sj.load(runs / "two" / "model.safetensors")["model"]
    after = sj.load(tmp_path / "model.safetensors")
    assert after["config"]["frozen"] == ["0", "3"] and after["config"]["head"] == "7"
    for k in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert np.array_equal(after["model"][k], before[k]), k
    assert not np.array_equal(after["model"]["7.weight"], before["7.weight"])
    fails(capsys, "finetune", runs / "two", "--data", "mnist", "--limit", 10, "--freeze",
          "features",
          "--out", tmp_path / "x", match="--freeze: freeze: no parameter of Sequential lies "
          "under 'features'; module paths are ['0', '3', '7']")
    fails(capsys, "finetune", runs / "two", "--data", "mnist", "--limit", 10, "--new-head", 3,
          "--out", tmp_path / "x", match="--new-head 3, but --data mnist has 10 classes")


def test_generate_is_reproducible(tmp_path, capsys):
    text = gzip.decompress((DATA / "austen" / "austen.txt.gz").read_bytes())[:8000]
    (tmp_path / "austen.txt").write_bytes(text)
    code, out, _ = run(capsys, "train", "char-lstm", "--data", tmp_path / "austen.txt",
                       "--epochs", 1, "--limit", 8, "--batch-size", 4, "--out", tmp_path / "lm")
    assert code == 0 and "test bits per character" in out
    gen = ["generate", tmp_path / "lm", "--prompt", "Emma", "--length", 40]
    first = run(capsys, *gen, "--seed", 3)[1]
    assert first.startswith("Emma") and len(first) == 4 + 40 + 1
    assert run(capsys, *gen, "--seed", 3)[1] == first
    assert run(capsys, *gen, "--seed", 4)[1] != first
    fails(capsys, *gen[:2], "--prompt", "Emma\u00e9", match="are not in the model's vocabulary")
    fails(capsys, "evaluate", tmp_path / "lm", "--data", "mnist", "--limit", 5,
          match="is a charlm model; --data mnist holds image data")
    fails(capsys, "generate", tmp_path / "lm" / "history.csv", match="not a readable checkpoint")


def test_error_paths_are_one_line(runs, tmp_path, capsys, monkeypatch):
    fails(capsys, "train", "seed000-cnn", "--data", tmp_path / "missing", "--out", tmp_path,
          match="no such file or folder")
    fails(capsys, "train", "vgg99", "--data", "mnist", match="unknown model 'vgg99'")
    fails(capsys, "train", "textcnn", "--data", "mnist", "--limit", 10, "--out", tmp_path,
          match="model 'textcnn' takes labelled texts")
    fails(capsys, "train", "seed000-cnn", "--epochs", "zero", match="invalid _positive_int")
    text = tmp_path / "tiny.txt"
    text.write_text("abc " * 300)
    fails(capsys, "train", "char-lstm", "--data", text, "--augment", "--out", tmp_path / "lm",
          match="--augment shifts images; --data")
    fails(capsys, "train", "--resume", tmp_path / "nowhere", match="no such run directory")
    fails(capsys, "train", "--resume", runs / "two", "--lr", "0.5",
          match="only --epochs may change (got --lr)")
    import shenjing.distributed

    monkeypatch.setattr(shenjing.distributed, "is_available", lambda: False)
    fails(capsys, *TRAIN, "--nproc", 2, "--out", tmp_path, match="--nproc needs MPI")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes((runs / "two" / "model.safetensors").read_bytes()[:300])
    fails(capsys, "evaluate", corrupt, "--data", "mnist", match="not a readable checkpoint")
    obj = sj.load(runs / "two" / "model.safetensors")
    obj["model"]["7.weight"] = obj["model"]["7.weight"][:5]
    sj.save(obj, tmp_path / "mismatch.safetensors")
    fails(capsys, "predict", tmp_path / "mismatch.safetensors", corrupt,
          match="weights do not fit model 'seed000-cnn'")
    sj.save({"w": np.zeros(3)}, tmp_path / "plain.safetensors")
    fails(capsys, "evaluate", tmp_path / "plain.safetensors", "--data", "mnist",
          match="not a shenjing command-line checkpoint")
    fails(capsys, "predict", runs / "two", tmp_path / "nothing.png", match="no such file")


def test_info_and_gradcheck(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0 and f"NumPy {np.__version__}" in out and "BLAS" in out
    code, out, _ = run(capsys, "gradcheck", "mlp")
    assert code == 0 and "gradcheck mlp (25,818 parameters, float64): OK" in out


def test_python_dash_m_exit_status():
    env = {**os.environ, "SHENJING_DATA": str(DATA)}
    proc = subprocess.run([sys.executable, "-m", "shenjing", "evaluate", "no/such/run",
                           "--data", "mnist"], capture_output=True, text=True, env=env,
                          cwd=Path(sj.__file__).parents[1])
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "shenjing evaluate: error: checkpoint no/such/run: no such file or " \
        "folder\n"


def test_early_stopping_restores_the_best_epoch(tmp_path, capsys):
    """At lr 1e-7 validation accuracy cannot rise: patience 1 stops after epoch 2 and the
    epoch-1 weights are what model.safetensors holds."""
    code, out, _ = run(capsys, "train", "mlp", "--data", "mnist", "--limit", 100, "--lr", 1e-7,
                       "--epochs", 5, "--early-stopping", 1, "--out", tmp_path)
    assert code == 0 and "Epoch 3/5" not in out
    assert "early stopping: val_accuracy has not improved for 1 epochs; best was epoch 1" in out
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 3
    state = sj.load(tmp_path / "checkpoint.safetensors")
    best = sj.load(tmp_path / "model.safetensors")["model"]
    assert state["best"]["epoch"] == 1
    assert all(np.array_equal(best[k], state["best"]["weights"][k]) for k in best)
    assert not all(np.array_equal(best[k], state["model"][k]) for k in best)


def test_mismatched_and_corrupted_checkpoints_are_one_line(runs, tmp_path, capsys):
    """A checkpoint of another model, a run resumed as another model, a truncated
    checkpoint.safetensors under --resume: each one clear line on stderr, exit status 1."""
    obj = sj.load(runs / "two" / "model.safetensors")
    obj["config"]["model"] = "seed003-cnn"  # seed-000 weights, labelled as the seed-003 CNN
    sj.save(obj, tmp_path / "other.safetensors")
    for command in (["evaluate", tmp_path / "other.safetensors", "--data", "mnist"],
                    ["predict", tmp_path / "other.safetensors", tmp_path / "x.npy"],
                    ["finetune", tmp_path / "other.safetensors", "--data", "mnist"]):
        fails(capsys, *command, match="other.safetensors: weights do not fit model "
              "'seed003-cnn' (")
    fails(capsys, "train", "seed003-cnn", "--resume", runs / "two",
          match=f"--resume {runs / 'two'} is a seed000-cnn run, not seed003-cnn")
    broken = tmp_path / "broken"
    broken.mkdir()
    whole = (runs / "two" / "checkpoint.safetensors").read_bytes()
    (broken / "checkpoint.safetensors").write_bytes(whole[:len(whole) // 2])
    fails(capsys, "train", "--resume", broken,
          match=f"--resume {broken / 'checkpoint.safetensors'}: not a readable checkpoint (")
    (broken / "checkpoint.safetensors").write_bytes(b"\x00" * 64)
    fails(capsys, "train", "--resume", broken, match="not a readable checkpoint")
