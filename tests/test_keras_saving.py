"""model.save / load_model (.keras zip, .h5 HDF5) and save_weights / load_weights
(.weights.safetensors, .weights.h5): identical predictions after a round trip, resumable
optimizer state, atomic writes, and clear errors for damaged or foreign files."""

from __future__ import annotations

import glob
import json
import os
import zipfile

import numpy as np
import pytest

from shenjing import keras
from shenjing.keras import layers

h5py = pytest.importorskip("h5py")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(11)
    keras.backend.clear_session()


def _cnn():
    model = keras.Sequential([
        layers.Conv2D(4, (3, 3), activation="relu", input_shape=(10, 10, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.BatchNormalization(),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def _cnn_data(n=24):
    rng = np.random.default_rng(0)
    x = rng.random((n, 10, 10, 1)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 3, n), 3)
    return x, y


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_model_round_trip_predicts_identically(tmp_path, suffix):
    x, y = _cnn_data()
    model = _cnn()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / f"mnist_cnn{suffix}"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(la).__name__ for la in loaded.layers] == [type(la).__name__
                                                           for la in model.layers]
    assert [la.name for la in loaded.layers] == [la.name for la in model.layers]
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0),
                               rtol=1e-6)
    if suffix == ".keras":
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            config = json.loads(zf.read("config.json"))
        assert {"config.json", "metadata.json", "model.weights.safetensors"} <= names
        assert config["class_name"] == "Sequential"
        assert [la["class_name"] for la in config["config"]["layers"]][0] == "Conv2D"
        assert config["compile_config"]["loss"]["class_name"] == "CategoricalCrossentropy"
    else:
        with h5py.File(path, "r") as f:  # a real HDF5 file
            assert json.loads(f.attrs["model_config"])["class_name"] == "Sequential"
            assert f["model_weights/conv2d/kernel"].shape == (3, 3, 1, 4)


def test_resumed_training_matches_uninterrupted(tmp_path):
    x, y = _cnn_data()
    model = _cnn()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "ckpt.keras")
    loaded = keras.models.load_model(tmp_path / "ckpt.keras")
    assert loaded.optimizer.iterations == model.optimizer.iterations == 3
    loaded.layers[4].rate = model.layers[4].rate = 0.0  # no dropout randomness
    for m in (model, loaded):
        m.train_on_batch(x[:8], y[:8])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("suffix", [".weights.safetensors", ".weights.h5"])
def test_weights_round_trip_into_a_fresh_model(tmp_path, suffix):
    x, _ = _cnn_data()
    model = _cnn()
    path = tmp_path / f"m{suffix}"
    model.save_weights(path)
    other = _cnn()  # same code, different layer names (conv2d_1, ...) and weights
    assert other.layers[0].name != model.layers[0].name
    assert not np.allclose(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    if suffix.endswith("safetensors"):
        st = pytest.importorskip("safetensors.numpy")
        arrays = st.load_file(str(path))
        assert arrays["conv2d/kernel"].shape == (3, 3, 1, 4)  # Keras's layout
        assert arrays["dense/kernel"].shape == (64, 3)


def test_functional_and_recurrent_models_round_trip(tmp_path):
    tokens = keras.Input(shape=(6,), name="tokens", dtype="int64")
    side = keras.Input(shape=(3,), name="side")
    e = layers.Embedding(20, 4)(tokens)
    seq, h, c = layers.LSTM(5, return_sequences=True, return_state=True)(e)
    g = layers.Bidirectional(layers.GRU(3))(seq)
    shared = layers.Dense(4, activation="tanh")
    merged = layers.Concatenate()([g, h, shared(side), shared(layers.Dense(3)(side))])
    out = layers.Dense(2, activation="softmax")(layers.LayerNormalization()(merged))
    model = keras.Model([tokens, side], out, name="multi")
    model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy", "auc"])
    rng = np.random.default_rng(1)
    xt, xs = rng.integers(0, 20, (10, 6)), rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.integers(0, 2, 10)
    model.fit([xt, xs], y, epochs=1, verbose=0)
    for name in ("multi.keras", "multi.h5"):
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name)
        np.testing.assert_array_equal(loaded.predict([xt, xs], verbose=0),
                                      model.predict([xt, xs], verbose=0))
        assert loaded.count_params() == model.count_params()
        logs = loaded.evaluate([xt, xs], y, verbose=0, return_dict=True)
        assert set(logs) == {"loss", "accuracy", "auc"}


@keras.saving.register_keras_serializable(package="tests")
class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, inputs):
        return inputs * self.w * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class TwoLayer(keras.Model):
    def __init__(self, hidden=4, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(hidden, activation="relu")
        self.scale = Scale(3.0)
        self.out = layers.Dense(1)

    def call(self, inputs, training=False):
        return self.out(self.scale(self.hidden(inputs)))


def test_custom_layers_and_subclassed_models(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    model = TwoLayer(hidden=6)
    model.compile("adam", "mse")
    model.fit(x, x[:, :1], epochs=2, verbose=0)
    assert [w.name for w in model.scale.weights] == ["w"]
    model.save(tmp_path / "sub.keras")
    with pytest.raises(ValueError, match="Unknown model class 'TwoLayer'"):
        keras.models.load_model(tmp_path / "sub.keras")
    loaded = keras.models.load_model(tmp_path / "sub.keras",
                                     custom_objects={"TwoLayer": TwoLayer})
    assert loaded.hidden.units == 6
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    seq = keras.Sequential([layers.Dense(3, input_shape=(2,)), Scale(0.5)])
    seq.save(tmp_path / "seq.h5")  # Scale is registered: no custom_objects needed
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "seq.h5").predict(
        x, verbose=0), seq.predict(x, verbose=0))


def test_damaged_and_foreign_files_give_clear_errors(tmp_path):
    model = _cnn()
    good = tmp_path / "good.keras"
    model.save(good)
    data = good.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid .keras file"):
        keras.models.load_model(tmp_path / "cut.keras")
    (tmp_path / "noise.keras").write_bytes(b"hello, not a model at all")
    with pytest.raises(ValueError, match="neither a .keras archive"):
        keras.models.load_model(tmp_path / "noise.keras")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ValueError, match="has no config.json"):
        keras.models.load_model(tmp_path / "other.keras")
    model.save(tmp_path / "m.h5")
    h5 = (tmp_path / "m.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(h5[: len(h5) // 3])
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        keras.models.load_model(tmp_path / "cut.h5")
    model.save_weights(tmp_path / "w.weights.safetensors")
    with pytest.raises(ValueError, match="safetensors weights file"):
        keras.models.load_model(tmp_path / "w.weights.safetensors")
    small = keras.Sequential([layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \[.*'conv2d/kernel'"):
        small.load_weights(tmp_path / "w.weights.safetensors")
    with pytest.raises(FileNotFoundError):
        keras.models.load_model(tmp_path / "absent.keras")
    with pytest.raises(ValueError, match="Invalid filepath extension"):
        model.save(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="cannot be saved"):
        keras.Sequential([layers.Lambda(lambda t: t * 2, input_shape=(2,))]).save(
            tmp_path / "lambda.keras")


def test_saving_is_atomic(tmp_path, monkeypatch):
    from shenjing.keras import saving

    path = tmp_path / "model.keras"
    model = _cnn()
    model.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(saving, "st_save", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert glob.glob(str(tmp_path / ".*")) == []
    monkeypatch.undo()
    model.save(path, overwrite=True)
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


def test_unbuilt_model_cannot_be_saved(tmp_path):
    model = keras.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        model.save(tmp_path / "x.keras")
    model.predict(np.zeros((1, 3)), verbose=0)  # builds from the first batch
    model.save(tmp_path / "x.keras")
    assert keras.models.load_model(tmp_path / "x.keras").layers[0].kernel.shape == (3, 2)


def test_clone_json_and_missing_h5py(tmp_path, monkeypatch):
    import sys

    model = _cnn()
    clone = keras.models.clone_model(model)
    assert clone.count_params() == model.count_params()
    assert not np.allclose(clone.get_weights()[0], model.get_weights()[0])
    again = keras.models.model_from_json(model.to_json())
    assert [type(la) for la in again.layers] == [type(la) for la in model.layers]
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match="needs h5py, an optional dependency"):
        model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.keras")  # the native format needs nothing extra


class Shift(layers.Layer):
    """A custom layer without get_config: its JSON-able constructor arguments are recorded."""

    def __init__(self, offset, name=None):
        super().__init__(name=name)
        self.offset = offset

    def call(self, inputs):
        return inputs + self.offset


def test_custom_layer_without_get_config_round_trips(tmp_path):
    model = keras.Sequential([layers.Dense(2, input_shape=(3,)), Shift(1.5, name="shift")])
    model.save(tmp_path / "shift.keras")
    loaded = keras.models.load_model(tmp_path / "shift.keras", custom_objects={"Shift": Shift})
    assert loaded.layers[1].offset == 1.5 and loaded.layers[1].name == "shift"
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
