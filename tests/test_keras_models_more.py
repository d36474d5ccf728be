"""Keras 3 model features of issue 9: multi-input/multi-output compile/fit/evaluate with lists
and dicts, per-output log names, from_config of a functional model, nested models as layers,
custom layers with add_weight/add_loss, custom Metric and Loss subclasses, and compile()
without a loss when the model adds its own."""

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras

L = keras.layers


def _two_io_model():
    keras.backend.clear_session()
    a = keras.Input((8,), name="a")
    b = keras.Input((4,), name="b")
    h = L.concatenate([L.Dense(16, activation="relu")(a), L.Dense(16, activation="relu")(b)])
    out1 = L.Dense(3, activation="softmax", name="out1")(h)
    out2 = L.Dense(1, name="out2")(h)
    return keras.Model(inputs=[a, b], outputs=[out1, out2])


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    xa = rng.standard_normal((n, 8)).astype(np.float32)
    xb = rng.standard_normal((n, 4)).astype(np.float32)
    y1 = (xa[:, 0] > 0).astype(np.int64) + (xb[:, 0] > 0.5)
    y2 = (xa[:, :2].sum(1, keepdims=True) - xb[:, 1:2]).astype(np.float32)
    return xa, xb, y1, y2


def test_multi_output_dict_compile_fit_and_log_names():
    model = _two_io_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss={"out1": "sparse_categorical_crossentropy", "out2": "mse"},
                  loss_weights={"out1": 1.0, "out2": 0.5},
                  metrics={"out1": ["accuracy"], "out2": ["mae"]})
    xa, xb, y1, y2 = _data()
    hist = model.fit({"a": xa, "b": xb}, {"out1": y1, "out2": y2}, epochs=8, batch_size=32,
                     verbose=0)
    h = hist.history
    assert set(h) == {"loss", "out1_loss", "out2_loss", "out1_accuracy", "out2_mae"}
    assert h["loss"][-1] < h["loss"][0] * 0.7
    # the total is the weighted sum of the per-output losses (checked on one batch)
    logs = model.evaluate({"a": xa, "b": xb}, {"out1": y1, "out2": y2}, batch_size=96,
                          verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs["out1_loss"] + 0.5 * logs["out2_loss"],
                               rtol=1e-5)
    p1, p2 = model.predict([xa, xb], verbose=0)
    want_acc = float(np.mean(p1.argmax(1) == y1))
    np.testing.assert_allclose(logs["out1_accuracy"], want_acc, rtol=1e-6)
    np.testing.assert_allclose(logs["out2_mae"], np.abs(p2 - y2).mean(), rtol=1e-4)


def test_multi_output_lists_and_weights_change_the_total():
    model = _two_io_model()
    model.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights=[0.0, 2.0], metrics=[["accuracy"], []])
    xa, xb, y1, y2 = _data(32)
    logs = model.evaluate([xa, xb], [y1, y2], batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], 2.0 * logs["out2_loss"], rtol=1e-5)
    assert "out1_accuracy" in logs and "out2_accuracy" not in logs
    with pytest.raises(ValueError, match="output names"):
        model.compile("sgd", loss={"nope": "mse"})
        model.evaluate([xa, xb], [y1, y2], verbose=0)


def test_functional_from_config_and_nested_model_as_layer():
    model = _two_io_model()
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    xa, xb, _, _ = _data(8)
    for got, want in zip(clone.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    inner = keras.Sequential([keras.Input((8,)), L.Dense(5, activation="tanh")])
    x = keras.Input((8,))
    outer = keras.Model(x, L.Dense(2)(inner(x)))
    kernel, bias = outer.layers[-1].get_weights()
    want = np.tanh(xa @ inner.layers[0].get_weights()[0] + inner.layers[0].get_weights()[1])
    np.testing.assert_allclose(outer.predict(xa, verbose=0), want @ kernel + bias, rtol=1e-5,
                               atol=1e-6)
    assert len(outer.trainable_weights) == 4


class ScaledDense(keras.layers.Layer):
    """A custom layer with add_weight and an activity penalty through add_loss."""

    def __init__(self, units, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.units, self.rate = units, rate

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="ones")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        out = inputs @ self.w + self.b
        self.add_loss(self.rate * (out * out).mean())
        return out


def test_custom_layer_add_weight_add_loss_and_compile_without_loss():
    layer = ScaledDense(2, rate=0.5)
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    out = layer(x).numpy()
    np.testing.assert_allclose(out, x @ np.ones((2, 2)))
    np.testing.assert_allclose(float(layer.losses[0].numpy()), 0.5 * (out ** 2).mean(),
                               rtol=1e-6)
    layer(x[:1])
    assert len(layer.losses) == 1  # only the latest call's terms
    inp = keras.Input((2,))
    model = keras.Model(inp, ScaledDense(2, rate=1.0)(inp))
    model.compile(optimizer=keras.optimizers.SGD(0.05))  # no loss: minimize add_loss terms
    h = model.fit(x, epochs=5, batch_size=3, verbose=0).history["loss"]
    assert h[-1] < h[0] * 0.5
    bare = keras.Model(inp, L.Dense(1)(inp))
    bare.compile("sgd")
    with pytest.raises(ValueError, match="without a loss"):
        bare.fit(x, np.zeros((3, 1)), verbose=0)


class PositiveRate(keras.metrics.Metric):
    """A custom metric with add_variable: the fraction of predictions above 0.5."""

    def __init__(self, name="positive_rate", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.hits.assign_add(np.sum(np.asarray(y_pred) > 0.5))
        self.total.assign_add(np.asarray(y_pred).size)

    def result(self):
        return self.hits / self.total


class HalfSquared(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return ((y_pred - y_true) ** 2).mean(-1) * 0.5


def test_custom_metric_and_loss_subclasses_in_fit():
    m = PositiveRate()
    m.update_state(None, np.array([0.1, 0.7, 0.9, 0.2]))
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    m.update_state(None, np.array([0.9]))
    assert m.result() == pytest.approx(1.0)
    keras.backend.clear_session()
    inp = keras.Input((3,))
    model = keras.Model(inp, L.Dense(1, activation="sigmoid")(inp))
    model.compile(keras.optimizers.Adam(0.05), loss=HalfSquared(), metrics=[PositiveRate()])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    h = model.fit(x, y, epochs=10, batch_size=16, verbose=0).history
    assert h["loss"][-1] < h["loss"][0]
    pred = model.predict(x, verbose=0)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["positive_rate"], np.mean(pred > 0.5), rtol=1e-6)
    np.testing.assert_allclose(logs["loss"], 0.5 * np.mean((pred - y) ** 2), rtol=1e-4)

    def custom_mae(y_true, y_pred):
        return (y_pred - y_true).abs().mean(-1)

    model.compile("sgd", loss=custom_mae)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), np.abs(pred - y).mean(),
                               rtol=1e-4)


def test_dict_outputs_model_and_save_round_trip(tmp_path):
    keras.backend.clear_session()
    inp = keras.Input((6,), name="features")
    h = L.Dense(8, activation="relu")(inp)
    model = keras.Model(inp, {"score": L.Dense(1, name="score")(h),
                              "label": L.Dense(2, activation="softmax", name="label")(h)})
    model.compile("adam", loss={"score": "mse", "label": "sparse_categorical_crossentropy"},
                  metrics={"label": "accuracy"})
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = {"score": x[:, :1].copy(), "label": (x[:, 1] > 0).astype(np.int64)}
    logs = model.fit({"features": x}, y, epochs=2, verbose=0).history
    assert {"score_loss", "label_loss", "label_accuracy"} <= set(logs)
    out = model.predict(x, verbose=0)
    assert set(out) == {"score", "label"} and out["label"].shape == (40, 2)
    path = tmp_path / "dict.keras"
    model.save(path)
    again = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(again.predict(x, verbose=0)["score"], out["score"], rtol=1e-5)
    _ = sj  # the core stays importable next to the Keras door


def test_save_round_trip_of_models_with_the_new_layers(tmp_path):
    keras.backend.clear_session()
    rng = np.random.default_rng(3)
    inp = keras.Input((5, 4))
    h = L.Normalization()
    h.adapt(rng.normal(2.0, 3.0, (50, 5, 4)))
    x = L.TimeDistributed(L.Dense(6))(h(inp))
    x = L.Masking()(x)
    x = L.LSTM(6, return_sequences=True)(x)
    x = L.Attention(use_scale=True)([x, x])
    x = L.SpatialDropout1D(0.3)(L.GaussianNoise(0.1)(x))
    x = L.Permute((2, 1))(x)
    x = L.Reshape((6, 5, 1))(x)
    x = L.Conv2DTranspose(2, 3, strides=2, padding="same")(x)
    x = L.UpSampling2D(1)(L.Cropping2D(1)(L.ZeroPadding2D(1)(x)))
    x = L.RandomFlip()(L.RandomZoom(0.1)(L.RandomRotation(0.1)(x)))
    x = L.GroupNormalization(2)(x)
    out = L.Dense(1)(L.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, L.RepeatVector(2)(out))
    data = rng.standard_normal((3, 5, 4)).astype(np.float32)
    before = model.predict(data, verbose=0)
    path = tmp_path / "new_layers.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again.predict(data, verbose=0), before, rtol=1e-5, atol=1e-6)
    types = {type(la).__name__ for la in again.layers}
    assert {"TimeDistributed", "Attention", "Conv2DTranspose", "GroupNormalization",
            "Normalization", "RandomRotation"} <= types
    model.compile("adam", "mse")
    model.fit(data, np.zeros((3, 2, 1)), epochs=1, verbose=0)  # augmentations run in fit


class WeightedSum(keras.layers.Layer):
    """A custom layer whose call takes two positional tensors, as Keras 3 allows."""

    def build(self, input_shape):
        self.alpha = self.add_weight(shape=(1,), initializer="ones", name="alpha")

    def call(self, a, b):
        return a * self.alpha + b


def test_custom_layer_called_with_two_positional_tensors(tmp_path):
    keras.backend.clear_session()
    a, b = keras.Input((3,)), keras.Input((3,))
    model = keras.Model([a, b], WeightedSum()(a, b))
    xa, xb = np.ones((2, 3), np.float32), np.full((2, 3), 2.0, np.float32)
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), 3.0)
    layer = WeightedSum()
    np.testing.assert_allclose(layer(xa, xb).numpy(), 3.0)
    path = tmp_path / "pos.keras"
    model.save(path)
    again = keras.models.load_model(path, custom_objects={"WeightedSum": WeightedSum})
    np.testing.assert_allclose(again.predict([xa, xb], verbose=0), 3.0)
