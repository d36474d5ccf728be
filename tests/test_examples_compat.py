"""The longer compatibility programs in examples/compat/, each run through its `main(argv)`
with tiny limits, so an API change that breaks one fails here rather than in a user's hands.

Every run must finish and train: its training loss falls and its final metric is a finite
number in a range an untrained or broken model would not reach. The full-size runs and
their numbers are in examples/compat/RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import shenjing as sj

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "compat"
DATA = Path(os.environ.get("SHENJING_DATA") or Path(__file__).resolve().parents[2] / "shared"
            / "data")


def _load(name: str):
    """Import examples/compat/<name>.py as a module (the folder is not a package)."""
    module_name = f"examples_compat_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")


def _falls(losses: list[float]) -> None:
    assert all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < losses[0], losses


def test_mnist_main(capsys):
    _need(DATA / "mnist")
    result = _load("mnist_main").main([
        "--data", str(DATA), "--epochs", "2", "--train-limit", "160", "--test-limit", "100",
        "--batch-size", "32", "--test-batch-size", "100", "--log-interval", "1000"])
    _falls(result["train_losses"])
    assert 0.5 < result["test_accuracy"] <= 1.0, result  # chance: 0.1
    assert "Test set: Average loss" in capsys.readouterr().out


def test_word_language_model():
    _need(DATA / "austen" / "austen.txt.gz")
    result = _load("word_language_model").main([
        "--data", str(DATA / "austen" / "austen.txt.gz"), "--epochs", "2",
        "--train-tokens", "3000", "--eval-tokens", "700", "--max-vocab", "300",
        "--emsize", "24", "--nhid", "24", "--bptt", "20", "--words", "5"])
    _falls(result["train_losses"])
    assert result["vocab_size"] == 300
    # a model that learnt nothing scores about the vocabulary size (uniform guessing)
    assert 1.0 < result["test_perplexity"] < 0.6 * result["vocab_size"], result


def test_text_classification_embeddingbag():
    _need(DATA / "rt_polarity.tar.gz")
    result = _load("text_classification_embeddingbag").main([
        "--archive", str(DATA / "rt_polarity.tar.gz"), "--epochs", "3",
        "--train-limit", "1500", "--test-limit", "400", "--log-interval", "1000"])
    _falls(result["train_losses"])
    assert result["train_losses"][-1] < 0.95 * result["train_losses"][0], result
    assert 0.5 < result["test_accuracy"] <= 1.0, result


def test_mean_embedding_bag_matches_torch():
    """nn.EmbeddingBag(mode="mean"), which the example's model uses, over flat ids + offsets:
    same outputs and weight gradients as torch's, empty bags included."""
    torch = pytest.importorskip("torch")
    model = _load("text_classification_embeddingbag").TextClassificationModel(12, 5, 2)
    assert isinstance(model.embedding, sj.nn.EmbeddingBag) and model.embedding.mode == "mean"
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((12, 5)).astype(np.float32)
    text = rng.integers(0, 12, 14)
    offsets = np.array([0, 3, 3, 9])  # the second bag is empty
    upstream = rng.standard_normal((4, 5)).astype(np.float32)

    ours = sj.nn.EmbeddingBag(12, 5, mode="mean")
    with sj.no_grad():
        ours.weight.copy_(sj.tensor(weight))
    out = ours(sj.tensor(text), sj.tensor(offsets))
    (out * sj.tensor(upstream)).sum().backward()

    ref = torch.nn.EmbeddingBag(12, 5, mode="mean")
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(weight))
    ref_out = ref(torch.from_numpy(text), torch.from_numpy(offsets))
    (ref_out * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(out.numpy(), ref_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_step_lr_takes_the_tutorials_whole_float_step_size():
    """The text-classification tutorial calls StepLR(optimizer, 1.0, gamma=0.1); torch
    accepts the whole float, so shenjing must too (and still refuse a fractional one)."""
    optimizer = sj.optim.SGD([sj.zeros(1, requires_grad=True)], lr=5.0)
    schedule = sj.optim.lr_scheduler.StepLR(optimizer, 2.0, gamma=0.1)
    seen = []
    for _ in range(5):
        optimizer.step()
        schedule.step()
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx([5.0, 0.5, 0.5, 0.05, 0.05])  # 5 * 0.1 ** (epoch // 2)
    with pytest.raises(ValueError, match="step_size"):
        sj.optim.lr_scheduler.StepLR(optimizer, 1.5)


def test_training_a_classifier(tmp_path):
    _need(DATA / "emoji")
    result = _load("training_a_classifier").main([
        "--data", str(DATA / "emoji"), "--limit", "240", "--epochs", "3", "--lr", "0.005",
        "--out", str(tmp_path)])
    _falls(result["epoch_losses"])
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert (tmp_path / "cifar_net.pth").is_file() and (tmp_path / "sample_grid.png").is_file()


def test_keras_mnist_convnet():
    _need(DATA / "mnist")
    result = _load("keras_mnist_convnet").main([
        "--epochs", "2", "--train-limit", "640", "--test-limit", "300", "--batch-size", "32",
        "--verbose", "0"])
    _falls(result["train_losses"])
    assert result["params"] == 34826  # the example's model summary
    assert 0.5 < result["test_accuracy"] <= 1.0, result  # chance: 0.1


def test_keras_text_classification():
    _need(DATA / "rt_polarity.tar.gz")
    result = _load("keras_text_classification").main([
        "--archive", str(DATA / "rt_polarity.tar.gz"), "--epochs", "4", "--batch-size", "16",
        "--train-limit", "640", "--test-limit", "160", "--max-features", "1000",
        "--sequence-length", "26", "--embedding-dim", "64", "--learning-rate", "3e-3",
        "--verbose", "0"])
    _falls(result["train_losses"])
    # an untrained model answers 0.5 for every text: loss ln 2 = 0.693
    assert result["train_losses"][-1] < math.log(2) - 0.02, result
    assert 0.0 <= result["test_accuracy"] <= 1.0 and math.isfinite(result["test_loss"])
    probabilities = result["sample_probabilities"]  # from the raw-string end-to-end model
    assert len(probabilities) == 2 and all(0.0 < p < 1.0 for p in probabilities), result


def test_keras_image_classification(tmp_path):
    _need(DATA / "emoji")
    result = _load("keras_image_classification").main([
        "--data", str(DATA / "emoji"), "--epochs", "2", "--batches", "6", "--image-size", "32",
        "--entry-filters", "8", "--block-sizes", "16,24", "--last-filters", "32",
        "--out", str(tmp_path), "--verbose", "0"])
    _falls(result["train_losses"])
    assert result["checkpoints"] == ["save_at_1.keras", "save_at_2.keras"]
    assert 0.0 <= result["val_accuracy"] <= 1.0 and math.isfinite(result["val_loss"])
