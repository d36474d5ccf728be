"""Names public example programs needed: shenjing.multinomial / Tensor.multinomial, Keras's
DepthwiseConv1D/2D and SeparableConv1D/2D (against torch's grouped + 1x1 convolutions),
keras.utils.load_img / img_to_array / array_to_img / save_img, and string inputs
(keras.Input(dtype="string")) feeding TextVectorization inside a functional model."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras
from shenjing.keras import layers

# ----------------------------------------------------------------------------- multinomial


def _chi_square(counts: np.ndarray, expected: np.ndarray) -> float:
    return float(((counts - expected) ** 2 / expected).sum())


def test_multinomial_with_replacement_follows_the_weights():
    """20,000 draws from unnormalized weights 1:2:3:4 (and a zero): chi-square with 3
    degrees of freedom under 16.27 (p = 0.001); the zero-weight category never appears."""
    sj.manual_seed(0)
    weights = sj.tensor([1.0, 2.0, 0.0, 3.0, 4.0])
    draws = sj.multinomial(weights, 20000, replacement=True).numpy()
    assert draws.shape == (20000,) and draws.dtype == np.int64
    counts = np.bincount(draws, minlength=5)
    assert counts[2] == 0
    expected = 20000 * np.array([1, 2, 3, 4]) / 10
    assert _chi_square(counts[[0, 1, 3, 4]], expected) < 16.27


def test_multinomial_without_replacement_draws_ordered_pairs_as_torch_defines():
    """Two draws without replacement per row: P(i then j) = p_i p_j / (1 - p_i). 12 ordered
    pairs (11 degrees of freedom): chi-square under 31.26 (p = 0.001)."""
    sj.manual_seed(1)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    rows = sj.tensor(np.tile(p * 7, (20000, 1)))  # scaled: weights need not sum to 1
    draws = rows.multinomial(2).numpy()
    assert draws.shape == (20000, 2) and np.all(draws[:, 0] != draws[:, 1])
    counts = np.zeros((4, 4))
    np.add.at(counts, (draws[:, 0], draws[:, 1]), 1)
    expected = 20000 * p[:, None] * p[None, :] / (1 - p[:, None])
    off = ~np.eye(4, dtype=bool)
    assert _chi_square(counts[off], expected[off]) < 31.26


def test_multinomial_without_replacement_takes_every_category_once():
    sj.manual_seed(2)
    draws = sj.multinomial(sj.tensor([[5.0, 1.0, 1e-3], [1.0, 1.0, 1.0]]), 3).numpy()
    assert sorted(draws[0]) == [0, 1, 2] and sorted(draws[1]) == [0, 1, 2]


def test_multinomial_is_reproducible_under_manual_seed_and_generators():
    weights = sj.tensor([0.5, 1.0, 2.0, 0.25, 3.0])
    sj.manual_seed(7)
    first = sj.multinomial(weights, 50, replacement=True).numpy()
    sj.manual_seed(7)
    assert np.array_equal(first, weights.multinomial(50, replacement=True).numpy())
    a = sj.multinomial(weights, 3, generator=sj.Generator(3)).numpy()
    b = sj.multinomial(weights, 3, generator=sj.Generator(3)).numpy()
    assert np.array_equal(a, b)


@pytest.mark.parametrize("weights, n, replacement, words", [
    ([1.0, -0.5, 2.0], 1, True, "non-negative"),
    ([0.0, 0.0], 1, True, "positive sum"),
    ([[1.0, 1.0], [0.0, 0.0]], 1, False, "positive sum"),
    ([1.0, 2.0, 3.0], 4, False, "cannot draw 4 samples without replacement from 3"),
    ([1.0, 0.0, 3.0], 3, False, "fewer than 3 categories of non-zero weight"),
    ([1.0, float("nan")], 1, True, "finite"),
    ([1.0, 2.0], 0, True, "num_samples"),
    ([[[1.0]]], 1, True, "1-D or 2-D"),
])
def test_multinomial_refuses_bad_weights(weights, n, replacement, words):
    with pytest.raises(ValueError, match=words):
        sj.multinomial(sj.tensor(weights), n, replacement=replacement)


# ----------------------------------------------------------------- depthwise / separable conv


def _torch_depthwise_separable(torch, x, depthwise, pointwise, bias, nd, stride, padding,
                               dilation):
    """torch's grouped convolution (groups = in channels) then an optional 1x1 one, on
    Keras-layout weights; x channels-last."""
    cin, mult = depthwise.shape[-2:]
    kernel = depthwise.shape[:nd]
    conv = torch.nn.functional.conv1d if nd == 1 else torch.nn.functional.conv2d
    w = depthwise.permute(nd, nd + 1, *range(nd)).reshape(cin * mult, 1, *kernel)
    xf = x.permute(0, nd + 1, *range(1, nd + 1))
    y = conv(xf, w, None if pointwise is not None else bias, stride=stride, padding=padding,
             dilation=dilation, groups=cin)
    if pointwise is not None:
        y = conv(y, pointwise.permute(nd + 1, nd, *range(nd)), bias)
    return y.permute(0, *range(2, nd + 2), 1)


CASES = [  # (class, nd, kwargs, torch padding)
    (layers.DepthwiseConv2D, 2, dict(kernel_size=3, depth_multiplier=2), 0),
    (layers.DepthwiseConv2D, 2, dict(kernel_size=(3, 2), padding="same", dilation_rate=2), "same"),
    (layers.DepthwiseConv2D, 2, dict(kernel_size=2, strides=2, use_bias=False), 0),
    (layers.SeparableConv2D, 2, dict(filters=5, kernel_size=3, depth_multiplier=2,
                                     padding="same"), "same"),
    (layers.SeparableConv2D, 2, dict(filters=4, kernel_size=3, strides=(2, 1)), 0),
    (layers.DepthwiseConv1D, 1, dict(kernel_size=3, depth_multiplier=3, padding="same"), "same"),
    (layers.SeparableConv1D, 1, dict(filters=6, kernel_size=2, dilation_rate=2,
                                     use_bias=False), 0),
]


@pytest.mark.parametrize("cls, nd, kwargs, torch_padding", CASES)
def test_depthwise_and_separable_match_torch(cls, nd, kwargs, torch_padding):
    """Outputs, input gradients and every weight's gradient (Keras layout) under a random
    upstream gradient equal torch's grouped convolution + 1x1 convolution."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2,) + (7, 6)[:nd] + (3,)).astype(np.float32)
    layer = cls(**kwargs)
    layer.build(x.shape)
    names = [w.name for w in layer.weights]
    separable = cls in (layers.SeparableConv1D, layers.SeparableConv2D)
    assert names == ["depthwise_kernel"] + ["pointwise_kernel"] * separable + \
        ["bias"] * kwargs.get("use_bias", True)
    mult = kwargs.get("depth_multiplier", 1)
    k = kwargs["kernel_size"]
    assert layer.weights[0].shape == ((k,) * nd if isinstance(k, int) else k) + (3, mult)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in layer.weights]
    layer.set_weights(weights)

    xs = sj.tensor(x, requires_grad=True)
    y = layer(xs)
    tw = [torch.tensor(w, requires_grad=True) for w in weights]
    tx = torch.tensor(x, requires_grad=True)
    bias = tw[-1] if kwargs.get("use_bias", True) else None
    ref = _torch_depthwise_separable(
        torch, tx, tw[0], tw[1] if separable else None, bias, nd, kwargs.get("strides", 1),
        torch_padding, kwargs.get("dilation_rate", 1))
    assert tuple(y.shape) == tuple(ref.shape)
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + tuple(ref.shape[1:])
    np.testing.assert_allclose(y.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    upstream = rng.standard_normal(tuple(ref.shape)).astype(np.float32)
    (y * sj.tensor(upstream)).sum().backward()
    (ref * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for weight, t in zip(layer.weights, tw):
        grad = weight.value.grad.numpy()
        np.testing.assert_allclose(weight._to_keras(grad), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_output_shape_is_known_before_the_call():
    layer = layers.DepthwiseConv2D(3, depth_multiplier=4, padding="same", strides=2)
    assert layer.compute_output_shape((None, 9, 8, 3)) == (None, 5, 4, 12)
    sep = layers.SeparableConv1D(7, 3)
    assert sep.compute_output_shape((None, 10, 2)) == (None, 8, 7)


def test_config_round_trip_and_saved_model(tmp_path):
    inputs = keras.Input(shape=(8, 8, 3))
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu",
                               depthwise_regularizer=keras.regularizers.L2(0.01))(inputs)
    x = layers.SeparableConv2D(4, 3, pointwise_initializer="he_normal",
                               pointwise_regularizer="l1")(x)
    outputs = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, outputs)
    config = model.layers[2].get_config()
    assert config["filters"] == 4 and config["depth_multiplier"] == 1
    assert "groups" not in config
    clone = layers.SeparableConv2D.from_config(config)
    assert clone.get_config() == config
    depthwise_config = model.layers[1].get_config()
    assert depthwise_config["depth_multiplier"] == 2 and "filters" not in depthwise_config
    # the regularizers see Keras-layout kernels
    kernel = model.layers[1].weights[0].numpy()
    pointwise = model.layers[2].weights[1].numpy()
    total = sum(float(loss.numpy()) for loss in model.losses)
    np.testing.assert_allclose(total, 0.01 * (kernel ** 2).sum() + 0.01 * np.abs(pointwise).sum(),
                               rtol=1e-5)
    data = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    path = tmp_path / "separable.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=1e-6)
    assert [w.name for w in loaded.layers[2].weights] == ["depthwise_kernel",
                                                         "pointwise_kernel", "bias"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="depth_multiplier"):
        layers.DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(ValueError, match="filters"):
        layers.SeparableConv2D(0, 3)
    with pytest.raises(NotImplementedError, match="pointwise_constraint"):
        layers.SeparableConv2D(2, 3, pointwise_constraint="non_neg")


# ----------------------------------------------------------------------------- image utils


def test_image_round_trip_through_files(tmp_path):
    pytest.importorskip("PIL")
    utils = keras.utils
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (6, 10, 3)).astype(np.float32)
    utils.save_img(tmp_path / "a.png", pixels, scale=False)
    img = utils.load_img(tmp_path / "a.png")
    assert img.size == (10, 6) and img.mode == "RGB"
    arr = utils.img_to_array(img)
    assert arr.dtype == np.float32 and arr.shape == (6, 10, 3)
    np.testing.assert_array_equal(arr, pixels)
    assert utils.img_to_array(img, data_format="channels_first").shape == (3, 6, 10)
    small = utils.img_to_array(utils.load_img(tmp_path / "a.png", target_size=(3, 5),
                                              interpolation="nearest"))
    assert small.shape == (3, 5, 3)
    np.testing.assert_array_equal(small, pixels[1::2, 1::2])  # PIL's nearest: cell centres
    gray = utils.img_to_array(utils.load_img(tmp_path / "a.png", color_mode="grayscale"))
    assert gray.shape == (6, 10, 1)
    rgba = utils.load_img(tmp_path / "a.png", color_mode="rgba")
    assert rgba.mode == "RGBA"
    crop = utils.load_img(tmp_path / "a.png", target_size=(6, 6), keep_aspect_ratio=True)
    np.testing.assert_array_equal(utils.img_to_array(crop), pixels[:, 2:8])


def test_array_to_img_scales_to_the_byte_range():
    pytest.importorskip("PIL")
    x = np.array([[[-1.0], [0.0]], [[1.0], [3.0]]])
    img = keras.utils.array_to_img(x)
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), [[0, 63], [127, 255]])
    unscaled = keras.utils.array_to_img(np.full((2, 2, 3), 7.0), scale=False)
    assert unscaled.mode == "RGB" and np.asarray(unscaled).max() == 7
    with pytest.raises(ValueError, match="channel count 2"):
        keras.utils.array_to_img(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="3-D"):
        keras.utils.array_to_img(np.zeros((2, 2)))


def test_image_errors_name_the_file(tmp_path):
    pytest.importorskip("PIL")
    missing = tmp_path / "nowhere.png"
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        keras.utils.load_img(missing)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="broken.jpg"):
        keras.utils.load_img(broken)
    with pytest.raises(ValueError, match="color_mode"):
        keras.utils.load_img(broken, color_mode="cmyk")
    with pytest.raises(ValueError, match="noext"):
        keras.utils.save_img(tmp_path / "noext", np.zeros((2, 2, 3)))
    assert not (tmp_path / "noext").exists()


# ----------------------------------------------------------------------------- string inputs


def _text_model():
    raw = np.array(["the movie was great", "terrible film, awful", "great great fun", "bad"])
    vectorizer = layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorizer.adapt(raw)
    ids = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(20, 4)(ids)
    x = layers.GlobalAveragePooling1D()(x)
    model = keras.Model(ids, layers.Dense(1, activation="sigmoid")(x))
    return raw, vectorizer, model


@pytest.mark.parametrize("shape", [(1,), ()])
def test_string_input_feeds_text_vectorization_end_to_end(shape):
    """The 'Text classification from scratch' end-to-end model: raw strings in, the same
    probabilities as applying the vectorizer and the model in turn."""
    raw, vectorizer, model = _text_model()
    strings = keras.Input(shape=shape, dtype="string")
    assert strings.dtype == "string"
    end_to_end = keras.Model(strings, model(vectorizer(strings)))
    end_to_end.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    expected = model.predict(vectorizer(raw), verbose=0)
    got = end_to_end.predict(raw[:, None] if shape else raw, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    if shape:  # a 1-D batch of strings is accepted for shape (1,), as Keras does
        np.testing.assert_allclose(end_to_end.predict(raw, verbose=0), expected, rtol=1e-6)
    loss, accuracy = end_to_end.evaluate(raw, np.array([1, 0, 1, 0]), verbose=0)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
    assert end_to_end.layers[0].get_config()["dtype"] == "string"


def test_string_input_into_a_numeric_layer_is_a_clear_error():
    strings = keras.Input(shape=(1,), dtype="string")
    with pytest.raises(TypeError, match="cannot take string inputs.*TextVectorization"):
        layers.Dense(3)(strings)
    assert keras.Input(shape=(2,), dtype=str).dtype == "string"
    assert keras.Input(shape=(2,), dtype="int64").dtype == "int64"


def test_string_input_in_a_sequential_model():
    raw, vectorizer, model = _text_model()
    seq = keras.Sequential([keras.Input(shape=(1,), dtype="string"), vectorizer,
                            model.layers[1], model.layers[2], model.layers[3]])
    np.testing.assert_allclose(seq.predict(raw, verbose=0),
                               model.predict(vectorizer(raw), verbose=0), rtol=1e-6)
    seq.compile(loss="binary_crossentropy", optimizer="adam")
    history = seq.fit(raw[:, None], np.array([1, 0, 1, 0]), epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    with pytest.raises(TypeError, match="cannot take string inputs"):
        keras.Sequential([keras.Input(shape=(1,), dtype="string"), layers.Dense(1)])
