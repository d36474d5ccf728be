"""The zoo's Keras side (`shenjing.models.keras_zoo`): the seeds' Keras models, weight copies
to and from the PyTorch-style zoo (kernel layouts and the flatten order converted) giving
equal outputs, and the seed-000 recipe (`compile` + `fit` on MNIST) training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras, models

DATA = Path(os.environ.get("SHENJING_DATA", Path(__file__).resolve().parents[2] / "shared/data"))

# (torch-style builder, Keras builder) with the same sizes; the MLP reads 3-channel images, so
# that its flatten order matters as much as the CNNs'
TWINS = {
    "seed000-cnn": (lambda: models.seed000_cnn(), lambda **kw: models.seed000_cnn_keras(**kw)),
    "seed003-cnn": (lambda: models.seed003_cnn(3, 7, 16),
                    lambda **kw: models.seed003_cnn_keras(3, 7, 16, **kw)),
    "mlp": (lambda: models.MLP((3 * 16 * 16, 32, 16, 7), "tanh", dropout=0.3),
            lambda **kw: models.mlp_keras((3 * 16 * 16, 32, 16, 7), "tanh", dropout=0.3,
                                          input_shape=(16, 16, 3), **kw)),
}
CHANNELS = {"seed000-cnn": (1, 28), "seed003-cnn": (3, 16), "mlp": (3, 16)}


def _images(name: str, n: int = 6) -> np.ndarray:
    c, size = CHANNELS[name]
    return np.random.default_rng(1).standard_normal((n, c, size, size)).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _torch_style_logits(model, x_nchw: np.ndarray) -> np.ndarray:
    model.eval()
    with sj.no_grad():
        return model(sj.from_numpy(x_nchw)).numpy()


@pytest.mark.parametrize("name", list(TWINS))
def test_copied_weights_give_equal_outputs(name):
    build_torch, build_keras = TWINS[name]
    torch_style = build_torch()
    x = _images(name)
    expected = _torch_style_logits(torch_style, x)
    nhwc = x.transpose(0, 2, 3, 1)
    logits_model = build_keras(output_activation=None)
    names = models.copy_torch_weights(torch_style, logits_model)
    got = np.asarray(logits_model.predict(nhwc, verbose=0))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert sorted(names.values()) == sorted(torch_style.state_dict())
    seed_model = build_keras()  # the seeds' softmax output
    models.copy_torch_weights(torch_style, seed_model)
    np.testing.assert_allclose(np.asarray(seed_model(nhwc)), _softmax(expected), atol=1e-6)


@pytest.mark.parametrize("name", list(TWINS))
def test_keras_weights_copy_back_exactly(name):
    build_torch, build_keras = TWINS[name]
    keras_model = build_keras()  # its own (Keras, glorot) initialization
    torch_style = build_torch()
    names = models.copy_keras_weights(keras_model, torch_style)
    assert set(names) == set(torch_style.state_dict())
    x = _images(name)
    np.testing.assert_allclose(_softmax(_torch_style_logits(torch_style, x)),
                               np.asarray(keras_model(x.transpose(0, 2, 3, 1))), atol=1e-6)
    again = build_keras()
    models.copy_torch_weights(torch_style, again)
    for a, b in zip(again.get_weights(), keras_model.get_weights()):
        np.testing.assert_array_equal(a, b)  # both conversions are pure permutations


def test_the_flatten_permutation_is_needed():
    """Transposing the first dense kernel alone (ignoring NCHW vs NHWC flatten order) gives
    other outputs: the equality above depends on the permutation."""
    torch_style, keras_model = models.seed000_cnn(), models.seed000_cnn_keras(
        output_activation=None)
    models.copy_torch_weights(torch_style, keras_model)
    dense = keras_model.get_layer("dense")
    dense.set_weights([torch_style[7].weight.numpy().T, torch_style[7].bias.numpy()])
    x = _images("seed000-cnn")
    got = np.asarray(keras_model(x.transpose(0, 2, 3, 1)))
    assert np.abs(got - _torch_style_logits(torch_style, x)).max() > 1e-2


def test_layers_have_the_seed_sessions_names():
    first, second = models.seed000_cnn_keras(), models.seed000_cnn_keras()
    expected = ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dense"]
    assert [layer.name for layer in first.layers] == expected
    assert [layer.name for layer in second.layers] == expected  # stable, not a global count
    assert [layer.name for layer in models.seed003_cnn_keras().layers][-2:] == ["dense",
                                                                               "dense_1"]
    assert [w.shape for w in first.get_weights()] == [(3, 3, 1, 32), (32,), (3, 3, 32, 64),
                                                      (64,), (1600, 10), (10,)]
    assert models.KERAS_MODELS["mlp"] is models.mlp_keras


def test_mismatched_models_and_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="Sequential has 3 layers with weights, the Keras "
                                         "model 'mlp' 1"):
        models.copy_torch_weights(models.seed000_cnn(), models.mlp_keras((784, 10)))
    with pytest.raises(ValueError, match=r"'3' \(Conv2d, bias True\) does not match Keras "
                                         r"layer 'dense' \(Dense, bias True\)"):
        models.copy_torch_weights(models.seed000_cnn(), models.seed003_cnn_keras())
    with pytest.raises(ValueError, match=r"dense/kernel would get shape \(1600, 10\), but it "
                                         r"has \(1600, 5\)"):
        models.copy_torch_weights(models.seed000_cnn(), models.seed000_cnn_keras(num_classes=5))
    with pytest.raises(ValueError, match=r"'0' \(Conv2d, bias True\) does not match Keras "
                                         r"layer 'dense' \(Dense, bias True\)"):
        models.copy_torch_weights(models.seed003_cnn(), models.mlp_keras((784, 8, 8, 10)))
    with pytest.raises(ValueError, match="only Conv2d and Linear"):
        models.copy_torch_weights(models.ResNet((1,), (4,)), models.mlp_keras((4, 10)))
    with pytest.raises(ValueError, match="activation must be one of"):
        models.mlp_keras(activation="leaky_relu")
    with pytest.raises(ValueError, match=r"input_shape \(28, 28, 3\) holds 2352 values"):
        models.mlp_keras(input_shape=(28, 28, 3))
    with pytest.raises(ValueError, match="image_size must be an int >= 10"):
        models.seed000_cnn_keras(image_size=8)


@pytest.mark.skipif(not (DATA / "mnist").is_dir(), reason="needs ../shared/data")
def test_seed000_recipe_trains_on_mnist(monkeypatch):
    """Seed 000 §3.4's program: one-hot labels, categorical cross-entropy, Adam, 2 epochs on
    1,000 MNIST images. The training loss falls to under 40 % of the untrained model's
    (measured: 2.31 -> 0.50), and held-out accuracy ends far above chance."""
    monkeypatch.setenv("SHENJING_DATA", str(DATA))
    (x, y), (xt, yt) = keras.datasets.mnist.load_data()
    x = x[:1000].astype("float32")[..., None] / 255
    xt = xt[:500].astype("float32")[..., None] / 255
    y, yt = keras.utils.to_categorical(y[:1000], 10), keras.utils.to_categorical(yt[:500], 10)
    keras.utils.set_random_seed(0)
    model = models.seed000_cnn_keras()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    before, _ = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    after, _ = model.evaluate(x, y, verbose=0)
    assert before == pytest.approx(np.log(10), rel=0.05)  # untrained: about uniform
    assert after < 0.4 * before
    assert history.history["loss"][1] < history.history["loss"][0]
    _, test_accuracy = model.evaluate(xt, yt, verbose=0)
    assert test_accuracy > 0.7
    # and the trained Keras model, copied into the PyTorch-style zoo model, predicts the same
    torch_style = models.seed000_cnn()
    models.copy_keras_weights(model, torch_style)
    np.testing.assert_allclose(_softmax(_torch_style_logits(torch_style,
                                                            xt.transpose(0, 3, 1, 2))),
                               np.asarray(model.predict(xt, verbose=0)), atol=1e-5)
