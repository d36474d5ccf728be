"""Callbacks: Keras's order of hooks (with DESIGN.md's fixes), EarlyStopping restoring the
best weights whatever stopped training, ModelCheckpoint, LR callbacks, CSVLogger, TensorBoard."""

from __future__ import annotations

import csv
import glob
import os

import numpy as np
import pytest

from shenjing import keras
from shenjing.keras import layers
from shenjing.keras.callbacks import Callback


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(3)
    keras.backend.clear_session()


def _data(n=20):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x.sum(1) > 0).astype(np.int64)


def _model(lr=0.1):
    model = keras.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(keras.optimizers.SGD(lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class Spy(Callback):
    hooks = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
             "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
             "on_predict_batch_begin", "on_predict_batch_end"]

    def __init__(self):
        super().__init__()
        self.calls = []
        for hook in self.hooks:
            setattr(self, hook, self._recorder(hook))

    def _recorder(self, hook):
        def record(*args):
            logs = args[-1] if args else None
            index = args[0] if len(args) == 2 else None
            self.calls.append((hook, index, None if logs is None else sorted(logs)))
        return record


class Scripted(Callback):
    """Overwrites logs[key] at each epoch end with a scripted sequence (runs first)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Snapshots(Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


# --------------------------------------------------------------------------- order

def test_hook_order_in_fit_is_keras_order():
    x, y = _data(8)
    spy = Spy()
    _model().fit(x, y, batch_size=4, epochs=2, validation_data=(x[:3], y[:3]), callbacks=[spy],
                 verbose=0)
    train_keys = ["accuracy", "loss"]
    epoch_keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    expected = [("on_train_begin", None, [])]
    for epoch in range(2):
        expected.append(("on_epoch_begin", epoch, []))
        for b in range(2):
            expected += [("on_train_batch_begin", b, []), ("on_train_batch_end", b, train_keys)]
        expected += [("on_test_begin", None, []), ("on_test_batch_begin", 0, []),
                     ("on_test_batch_end", 0, train_keys), ("on_test_end", None, train_keys),
                     ("on_epoch_end", epoch, epoch_keys)]
    expected.append(("on_train_end", None, epoch_keys))
    assert spy.calls == expected


def test_train_end_gets_a_dict_even_without_epochs():
    x, y = _data(4)
    spy = Spy()
    hist = _model().fit(x, y, epochs=2, initial_epoch=2, callbacks=[spy], verbose=0)
    assert spy.calls == [("on_train_begin", None, []), ("on_train_end", None, [])]
    assert hist.history == {}


def test_evaluate_and_predict_hooks():
    x, y = _data(6)
    model = _model()
    spy = Spy()
    model.evaluate(x, y, batch_size=4, callbacks=[spy], verbose=0)
    assert [c[0] for c in spy.calls] == ["on_test_begin", "on_test_batch_begin",
                                         "on_test_batch_end", "on_test_batch_begin",
                                         "on_test_batch_end", "on_test_end"]
    spy.calls.clear()
    model.predict(x, batch_size=6, callbacks=[spy], verbose=0)
    assert [c[0] for c in spy.calls] == ["on_predict_begin", "on_predict_batch_begin",
                                         "on_predict_batch_end", "on_predict_end"]


def test_progress_line_is_printed_before_user_callbacks(capsys):
    x, y = _data(8)
    shout = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: print(f"USER {e}"))
    _model().fit(x, y, batch_size=4, epochs=2, callbacks=[shout], verbose=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2"
    assert out[1].startswith("2/2 [====") and out[2] == "USER 0"
    assert out[3] == "Epoch 2/2" and out[5] == "USER 1"


def test_verbose_touches_only_the_progress_bar():
    x, y = _data(8)
    for verbose in (0, 1, 2):
        keras.utils.set_random_seed(0)
        spy, hist = Spy(), None
        model = _model()
        hist = model.fit(x, y, batch_size=4, epochs=2, callbacks=[spy], verbose=verbose)
        if verbose == 0:
            ref_calls, ref_hist = spy.calls, hist.history
        assert spy.calls == ref_calls and hist.history == ref_hist


# --------------------------------------------------------------------------- EarlyStopping

def test_early_stopping_patience_and_verbose(capsys):
    x, y = _data()
    model = _model(lr=0.0)  # nothing improves after the first epoch
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=2, verbose=1)
    hist = model.fit(x, y, epochs=10, callbacks=[stop], verbose=0)
    assert len(hist.history["loss"]) == 3 and stop.stopped_epoch == 2
    assert "Epoch 3: early stopping" in capsys.readouterr().out


@pytest.mark.parametrize("ended_by", ["epoch_limit", "other_callback", "itself"])
def test_restore_best_weights_whatever_ended_training(ended_by):
    x, y = _data()
    model = _model()
    vals = [3.0, 1.0, 2.0, 2.5, 2.6]
    snaps = Snapshots()
    stoppers = []
    if ended_by == "other_callback":
        stoppers.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda e, logs: setattr(model, "stop_training", e == 3)))
    patience = 2 if ended_by == "itself" else 10
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                          restore_best_weights=True)
    hist = model.fit(x, y, epochs=5, validation_data=(x, y), verbose=0,
                     callbacks=[Scripted("val_loss", vals), snaps, *stoppers, early])
    n = {"epoch_limit": 5, "other_callback": 4, "itself": 4}[ended_by]
    assert len(hist.history["loss"]) == n
    assert not np.allclose(snaps.weights[-1][0], snaps.weights[1][0])
    for now, best in zip(model.get_weights(), snaps.weights[1]):
        np.testing.assert_array_equal(now, best)
    assert early.best_epoch == 1


def test_early_stopping_auto_mode_and_unknown_monitor():
    assert keras.callbacks.monitor_mode("val_accuracy", "auto") == "max"
    assert keras.callbacks.monitor_mode("val_loss", "auto") == "min"
    x, y = _data()
    with pytest.raises(ValueError, match="mode='max'"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[
            Scripted("weird", [1.0]), keras.callbacks.EarlyStopping(monitor="weird")])


# --------------------------------------------------------------------------- ModelCheckpoint

def test_model_checkpoint_save_best_only_with_formatted_names(tmp_path):
    x, y = _data()
    model = _model()
    snaps = Snapshots()
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.keras")
    ck = keras.callbacks.ModelCheckpoint(pattern, save_best_only=True)
    model.fit(x, y, epochs=4, validation_data=(x, y), verbose=0,
              callbacks=[Scripted("val_loss", [3.0, 1.0, 2.0, 0.5]), snaps, ck])
    names = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "*")))
    assert names == ["ckpt-01-3.00.keras", "ckpt-02-1.00.keras", "ckpt-04-0.50.keras"]
    loaded = keras.models.load_model(tmp_path / "ckpt-02-1.00.keras")
    for a, b in zip(loaded.get_weights(), snaps.weights[1]):
        np.testing.assert_array_equal(a, b)
    best = tmp_path / "best.weights.safetensors"
    ck2 = keras.callbacks.ModelCheckpoint(str(best), monitor="val_accuracy",
                                          save_best_only=True, save_weights_only=True)
    model2, snaps2 = _model(), Snapshots()
    model2.fit(x, y, epochs=3, validation_data=(x, y), verbose=0,
               callbacks=[Scripted("val_accuracy", [0.5, 0.9, 0.7]), snaps2, ck2])
    model2.load_weights(best)
    for a, b in zip(model2.get_weights(), snaps2.weights[1]):
        np.testing.assert_array_equal(a, b)
    assert not glob.glob(str(tmp_path / ".*.tmp"))  # atomic writes leave no temp files


def test_model_checkpoint_errors():
    with pytest.raises(ValueError, match="must end in one of .keras"):
        keras.callbacks.ModelCheckpoint("model.pt")
    ck = keras.callbacks.ModelCheckpoint("m-{nope}.keras")
    x, y = _data()
    with pytest.raises(ValueError, match="failed to format the filepath"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[ck])


# --------------------------------------------------------------------------- learning rate

def test_reduce_lr_on_plateau_and_scheduler():
    x, y = _data()
    model = _model(lr=0.0)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                                min_lr=0.0)
    model.optimizer.learning_rate = 0.4
    hist = model.fit(x, y, epochs=4, callbacks=[Scripted("loss", [1.0, 1.0, 1.0, 1.0]),
                                                plateau], verbose=0)
    assert hist.history["learning_rate"] == pytest.approx([0.4, 0.4, 0.2, 0.1])
    assert model.optimizer.learning_rate == pytest.approx(0.05)

    model = _model(lr=0.1)
    sched = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    hist = model.fit(x, y, epochs=3, callbacks=[sched], verbose=0)
    assert hist.history["learning_rate"] == pytest.approx([0.05, 0.025, 0.0125])
    one_arg = keras.callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))
    hist = model.fit(x, y, epochs=2, callbacks=[one_arg], verbose=0)
    assert hist.history["learning_rate"] == pytest.approx([0.1, 0.05])
    bad = keras.callbacks.LearningRateScheduler(lambda epoch, lr: "fast")
    with pytest.raises(ValueError, match="must return a float"):
        model.fit(x, y, epochs=1, callbacks=[bad], verbose=0)


# --------------------------------------------------------------------------- loggers

def test_csv_logger(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    model = _model()
    model.fit(x, y, epochs=2, validation_split=0.25, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(path))])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1"]
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(path), append=True)])
    rows = list(csv.reader(open(path)))
    assert len(rows) == 4 and rows[3][0] == "0"


def test_tensorboard_writes_event_files(tmp_path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    x, y = _data()
    tb = keras.callbacks.TensorBoard(log_dir=str(tmp_path), histogram_freq=1)
    hist = _model().fit(x, y, epochs=2, validation_data=(x, y), callbacks=[tb], verbose=0)
    train = ea.EventAccumulator(str(tmp_path / "train"))
    train.Reload()
    val = ea.EventAccumulator(str(tmp_path / "validation"))
    val.Reload()
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(
        train.Tags()["scalars"])
    losses = [e.value for e in train.Scalars("epoch_loss")]
    np.testing.assert_allclose(losses, hist.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([e.value for e in val.Scalars("epoch_loss")],
                               hist.history["val_loss"], rtol=1e-6)
    assert any("kernel" in t for t in train.Tags()["histograms"])


def test_lambda_callback_rejects_unknown_hooks():
    with pytest.raises(TypeError, match="unknown hook 'on_epoch_ends'"):
        keras.callbacks.LambdaCallback(on_epoch_ends=print)
    with pytest.raises(TypeError, match="Callback instances"):
        x, y = _data()
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[print])
