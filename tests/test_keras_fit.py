"""shenjing.keras compile/fit/evaluate/predict: learning, Keras's reporting rules, losses,
metrics and optimizers checked against NumPy transcriptions of Keras's formulas."""

from __future__ import annotations

import os

import numpy as np
import pytest

from shenjing import keras
from shenjing.data import DataLoader, TensorDataset
from shenjing.keras import layers
from shenjing.tensor import Tensor

# ../shared/data beside the checkout, as in CI
DATA = os.environ.get("SHENJING_DATA_TEST",
                      os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(7)
    keras.backend.clear_session()


def _blobs(n=200, d=2, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, d)) + np.where(y[:, None] == 1, 2.0, -2.0)
    return x, y


def _logreg(lr=0.1, metrics=("accuracy",), optimizer=None):
    model = keras.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(2,))])
    model.compile(optimizer=optimizer or keras.optimizers.SGD(lr), loss="binary_crossentropy",
                  metrics=list(metrics))
    return model


# --------------------------------------------------------------------------- learning

def test_fit_learns_a_separable_problem_and_reports_history():
    x, y = _blobs()
    model = _logreg()
    hist = model.fit(x, y, epochs=5, batch_size=16, validation_split=0.2, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 5 for v in hist.history.values())
    assert hist.epoch == [0, 1, 2, 3, 4] and model.history is hist
    assert hist.history["accuracy"][-1] >= 0.95 and hist.history["val_accuracy"][-1] >= 0.95
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc >= 0.95
    pred = model.predict(x, verbose=0)
    assert isinstance(pred, np.ndarray) and pred.shape == (200, 1) and pred.dtype == np.float32
    np.testing.assert_allclose(acc, np.mean((pred[:, 0] > 0.5) == y))


def test_logged_loss_is_the_running_mean_over_the_epoch():
    """With lr=0 nothing changes, so the epoch's running mean (weighted by batch size, a short
    last batch included) must equal evaluate() over the same data; val_ is the held-out tail."""
    x, y = _blobs(103)
    model = _logreg(lr=0.0)
    seen = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(
        dict(logs)))
    hist = model.fit(x, y, epochs=1, batch_size=10, validation_split=0.3, callbacks=[cb],
                     shuffle=False, verbose=0)
    n_train = int(np.floor(103 * 0.7))
    assert len(seen) == int(np.ceil(n_train / 10))
    loss, acc = model.evaluate(x[:n_train], y[:n_train], batch_size=7, verbose=0)
    np.testing.assert_allclose(hist.history["loss"][0], loss, rtol=1e-5)
    np.testing.assert_allclose(seen[-1]["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(hist.history["accuracy"][0], acc, rtol=1e-6)
    vloss, vacc = model.evaluate(x[n_train:], y[n_train:], verbose=0)
    np.testing.assert_allclose(hist.history["val_loss"][0], vloss, rtol=1e-5)
    for i in (0, 1, 2):  # batch i logs the mean over batches 0..i
        running = model.evaluate(x[:10 * (i + 1)], y[:10 * (i + 1)], verbose=0)[0]
        np.testing.assert_allclose(seen[i]["loss"], running, rtol=1e-5)
    assert not np.isclose(seen[0]["loss"], seen[2]["loss"])


def test_evaluate_return_forms_and_batch_methods():
    x, y = _blobs(40)
    model = _logreg(metrics=())
    out = model.evaluate(x, y, verbose=0)
    assert isinstance(out, float)
    model = _logreg(metrics=["accuracy", "mse"])
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(res) == ["loss", "accuracy", "mse"]
    assert model.metrics_names == ["loss", "accuracy", "mse"]
    before = model.get_weights()
    logs = model.train_on_batch(x[:8], y[:8])
    assert len(logs) == 3
    assert not np.allclose(before[0], model.get_weights()[0])
    np.testing.assert_allclose(model.predict_on_batch(x[:4]), model.predict(x[:4], verbose=0))
    assert model.test_on_batch(x[:8], y[:8], return_dict=True).keys() == res.keys()


def test_inputs_float64_cast_uint8_accepted_and_dataloader():
    rng = np.random.default_rng(0)
    x8 = rng.integers(0, 256, (64, 4, 4, 1)).astype(np.uint8)
    y = (x8.reshape(64, -1).mean(1) > 127).astype(np.int64)
    model = keras.Sequential([layers.Conv2D(2, 2, input_shape=(4, 4, 1)), layers.Flatten(),
                              layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x8, y, epochs=1, verbose=0)
    p8 = model.predict(x8, verbose=0)
    p64 = model.predict(x8.astype(np.float64), verbose=0)
    assert p8.dtype == p64.dtype == np.float32
    np.testing.assert_allclose(p8, p64, rtol=1e-6)
    assert all(p.dtype == np.float32 for p in model.parameters())
    loader = DataLoader(TensorDataset(x8.astype(np.float32), y), batch_size=16, shuffle=True)
    hist = model.fit(loader, epochs=2, validation_data=loader, verbose=0)
    assert len(hist.history["val_accuracy"]) == 2
    ev = model.evaluate(loader, verbose=0)
    np.testing.assert_allclose(ev[0], model.evaluate(x8.astype(np.float32), y, verbose=0)[0],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="validation_split is only supported for NumPy"):
        model.fit(loader, validation_split=0.1, verbose=0)


def test_mnist_slice_reaches_known_accuracy(monkeypatch):
    monkeypatch.setenv("SHENJING_DATA", DATA)
    if not os.path.exists(os.path.join(DATA, "mnist")):
        pytest.skip("MNIST not available")
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.dtype == np.uint8 and x_test.shape == (10000, 28, 28)
    x, y = x_train[:2000] / 255.0, y_train[:2000]  # float64, as seed 003 passes it
    model = keras.Sequential([layers.Flatten(input_shape=(28, 28)),
                              layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    _, acc = model.evaluate(x_test[:1000] / 255.0, y_test[:1000], verbose=0)
    assert acc >= 0.80  # 0.83-0.84 measured over seeds; chance is 0.10


# --------------------------------------------------------------------------- non-finite loss

def _nan_data():
    x, y = _blobs(40)
    x = x.copy()
    x[25] = np.nan  # batch 3 (1-based) with batch_size 10, no shuffling
    return x, y


def test_nan_loss_raises_naming_epoch_and_batch_before_updating():
    x, y = _nan_data()
    model = _logreg()
    model.fit(x[:20], y[:20], epochs=1, batch_size=10, verbose=0)
    x[:20] = _blobs(40)[0][:20]
    w_before = None

    def remember(batch, logs):
        nonlocal w_before
        w_before = model.get_weights()

    cb = keras.callbacks.LambdaCallback(on_train_batch_end=remember)
    with pytest.raises(keras.NonFiniteLossError, match=r"epoch 1, batch 3 of 4") as err:
        model.fit(x, y, epochs=2, batch_size=10, shuffle=False, callbacks=[cb], verbose=0)
    assert isinstance(err.value, FloatingPointError)
    for a, b in zip(w_before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the bad batch was not applied


def test_terminate_on_nan_stops_quietly(capsys):
    x, y = _nan_data()
    model = _logreg()
    hist = model.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0,
                     callbacks=[keras.callbacks.TerminateOnNaN()])
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out
    assert len(hist.history["loss"]) == 1 and np.isnan(hist.history["loss"][0])


# --------------------------------------------------------------------------- losses

def test_losses_match_keras_formulas():
    eps = 1e-7
    y1 = np.eye(3, dtype=np.float32)[[0, 2, 1, 1]]
    p = np.array([[0.7, 0.2, 0.1], [0.0, 0.1, 0.9], [0.3, 0.3, 0.4], [0.2, 0.8, 0.0]],
                 np.float32)
    L = keras.losses
    ref = -np.sum(y1 * np.log(np.clip(p / p.sum(-1, keepdims=True), eps, 1 - eps)), -1)
    np.testing.assert_allclose(L.get("categorical_crossentropy")(y1, p).numpy(), ref.mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(L.get("sparse_categorical_crossentropy")([0, 2, 1, 1], p).numpy(),
                               ref.mean(), rtol=1e-5)
    yb = np.array([[1.0], [0.0], [1.0]], np.float32)
    pb = np.array([[0.9], [1.0], [0.0]], np.float32)
    pc = np.clip(pb, eps, 1 - eps)
    np.testing.assert_allclose(L.get("binary_crossentropy")(yb, pb).numpy(),
                               np.mean(-(yb * np.log(pc) + (1 - yb) * np.log(1 - pc))),
                               rtol=1e-5)
    np.testing.assert_allclose(L.get("mse")(y1, p).numpy(), np.mean((y1 - p) ** 2), rtol=1e-6)
    np.testing.assert_allclose(L.get("mae")(y1, p).numpy(), np.mean(np.abs(y1 - p)), rtol=1e-6)
    np.testing.assert_allclose(L.get("hinge")(y1, p).numpy(),
                               np.mean(np.maximum(1 - (2 * y1 - 1) * p, 0)), rtol=1e-6)
    t, q = np.clip(y1, eps, 1), np.clip(p, eps, 1)
    np.testing.assert_allclose(L.get("kl_divergence")(y1, p).numpy(),
                               np.mean(np.sum(t * np.log(t / q), -1)), rtol=1e-5)
    np.testing.assert_allclose(
        L.CategoricalCrossentropy()(y1, p, sample_weight=[1, 0, 2, 1]).numpy(),
        np.sum(ref * [1, 0, 2, 1]) / 4, rtol=1e-5)  # sum_over_batch_size
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        L.get("categorical_crossentropy")([0, 2, 1, 1], p)
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 3\)"):
        L.get("sparse_categorical_crossentropy")([0, 3, 1, 1], p)


@pytest.mark.parametrize("loss, labels", [("categorical_crossentropy", "onehot"),
                                          ("sparse_categorical_crossentropy", "sparse")])
def test_fused_softmax_crossentropy_equals_keras_value_and_gradient(loss, labels):
    """fit evaluates softmax + cross-entropy from the logits; it must be Keras's value and
    gradient, including the clipping of saturated probabilities."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4)).astype(np.float32) * 8  # some saturated softmaxes
    y = rng.integers(0, 3, 6)
    target = np.eye(3, dtype=np.float32)[y] if labels == "onehot" else y
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("sgd", loss)
    assert model._output_is_softmax()
    fused, _ = model._compute_loss(x, target, None, training=True)
    fused.backward()
    g_fused = model.layers[0].linear.weight.grad.numpy().copy()
    model.layers[0].linear.weight.grad = None
    plain = keras.losses.get(loss)(target, model(x))
    plain.backward()
    np.testing.assert_allclose(float(fused.numpy()), float(plain.numpy()), rtol=1e-5)
    np.testing.assert_allclose(g_fused, model.layers[0].linear.weight.grad.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_accuracy_is_resolved_from_the_loss_shapes():
    x, y = _blobs(30)
    m = _logreg()
    m.fit(x, y, epochs=1, verbose=0)
    assert isinstance(m.metrics[1], keras.metrics.BinaryAccuracy)
    for loss, target, cls in [("sparse_categorical_crossentropy", y,
                               keras.metrics.SparseCategoricalAccuracy),
                              ("categorical_crossentropy", np.eye(2)[y],
                               keras.metrics.CategoricalAccuracy)]:
        model = keras.Sequential([layers.Dense(2, activation="softmax", input_shape=(2,))])
        model.compile("adam", loss, metrics=["accuracy"])
        model.fit(x, target, epochs=1, verbose=0)
        assert isinstance(model.metrics[1], cls) and model.metrics[1].name == "accuracy"


def test_class_weight_and_regularization_enter_the_loss():
    x, y = _blobs(20)
    model = keras.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(2,),
                                           kernel_regularizer=keras.regularizers.l2(0.5))])
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy")
    p = np.clip(model.predict(x, verbose=0)[:, 0], 1e-7, 1 - 1e-7)
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    penalty = 0.5 * np.sum(model.get_weights()[0] ** 2)
    w = np.where(y == 1, 3.0, 1.0)
    hist = model.fit(x, y, batch_size=20, class_weight={0: 1.0, 1: 3.0}, verbose=0)
    np.testing.assert_allclose(hist.history["loss"][0], np.mean(per * w) + penalty, rtol=1e-5)


# --------------------------------------------------------------------------- optimizers

def _one_param_model(opt):
    model = keras.Sequential([layers.Dense(1, use_bias=False, input_shape=(3,),
                                           kernel_initializer="ones")])
    model.compile(opt, "mse")
    return model


def _grads_of_mse(w, x, y):
    return 2 * x.T @ (x @ w - y) / len(x)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd_momentum", "adagrad", "adamw"])
def test_optimizers_follow_keras_update_rules(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    opt = {"adam": keras.optimizers.Adam(0.1), "rmsprop": keras.optimizers.RMSprop(0.01),
           "sgd_momentum": keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
           "adagrad": keras.optimizers.Adagrad(0.1),
           "adamw": keras.optimizers.AdamW(0.1, weight_decay=0.1)}[name]
    model = _one_param_model(opt)
    w = np.ones((3, 1))
    m = np.zeros_like(w)
    v = np.zeros_like(w) + (0.1 if name == "adagrad" else 0.0)
    for t in range(1, 4):
        model.train_on_batch(x, y)
        g = _grads_of_mse(w, x, y)
        if name in ("adam", "adamw"):  # Keras: eps outside sqrt(v), bias-corrected lr
            if name == "adamw":
                w = w - w * 0.1 * 0.1
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            lr_t = 0.1 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            w = w - lr_t * m / (np.sqrt(v) + 1e-7)
        elif name == "rmsprop":  # Keras: eps inside the sqrt, rho 0.9
            v = 0.9 * v + 0.1 * g * g
            w = w - 0.01 * g / np.sqrt(v + 1e-7)
        elif name == "sgd_momentum":  # Keras: m = mu m - lr g; w += mu m - lr g
            m = 0.9 * m - 0.05 * g
            w = w + 0.9 * m - 0.05 * g
        else:  # Adagrad: acc += g²; w -= lr g / sqrt(acc + eps) ~ torch's sqrt(acc) + eps
            v = v + g * g
            w = w - 0.1 * g / (np.sqrt(v) + 1e-7)
        np.testing.assert_allclose(model.get_weights()[0], w, rtol=2e-5, atol=1e-6,
                                   err_msg=f"step {t}")
    assert opt.iterations == 3


def test_optimizer_defaults_and_learning_rate_property():
    assert keras.optimizers.get("adam").learning_rate == 0.001
    assert keras.optimizers.get("adam").epsilon == 1e-7
    rms = keras.optimizers.get("rmsprop")
    assert (rms.learning_rate, rms.rho, rms.epsilon) == (0.001, 0.9, 1e-7)
    assert keras.optimizers.get("sgd").learning_rate == 0.01
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    opt = keras.optimizers.SGD(sched)
    model = _one_param_model(opt)
    x, y = np.ones((2, 3), np.float32), np.zeros((2, 1), np.float32)
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    assert opt.learning_rate == pytest.approx(0.025)


def test_clipnorm_limits_each_gradient():
    model = _one_param_model(keras.optimizers.SGD(1.0, clipnorm=0.5))
    x = np.full((4, 3), 10.0, np.float32)
    y = np.zeros((4, 1), np.float32)
    model.train_on_batch(x, y)
    step = np.ones((3, 1)) - model.get_weights()[0]
    np.testing.assert_allclose(np.linalg.norm(step), 0.5, rtol=1e-5)


def test_frozen_layer_is_not_trained():
    x, y = _blobs(40)
    model = keras.Sequential([layers.Dense(4, activation="relu", input_shape=(2,)),
                              layers.Dense(1, activation="sigmoid")])
    model.layers[0].trainable = False
    model.compile("adam", "binary_crossentropy")
    frozen = model.layers[0].get_weights()
    head = model.layers[1].get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(frozen, model.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(head[0], model.layers[1].get_weights()[0])
    model.trainable = False
    assert model.trainable_weights == [] and not any(p.requires_grad
                                                     for p in model.parameters())


# --------------------------------------------------------------------------- metrics

def test_confusion_metrics_and_auc():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.6, 0.4, 0.8, 0.1, 0.3, 0.7, 0.2])
    M = keras.metrics
    assert M.Precision()(y, p) == pytest.approx(3 / 4)
    assert M.Recall()(y, p) == pytest.approx(3 / 4)
    pos, neg = p[y == 1], p[y == 0]
    exact = np.mean(pos[:, None] > neg[None, :])
    assert M.AUC()(y, p) == pytest.approx(exact, abs=0.01)
    onehot = np.eye(3)[[0, 1, 2, 2]]
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.1, 0.1, 0.8]])
    f1 = M.F1Score(average=None)(onehot, probs)
    np.testing.assert_allclose(f1, [1.0, 2 / 3, 2 / 3], rtol=1e-5)
    assert M.get("f1_score")(onehot, probs) == pytest.approx(np.mean([1, 2 / 3, 2 / 3]), 1e-5)
    # integer labels against (N, C) predictions are one-hot encoded for these metrics
    assert M.Precision()(np.array([0, 1, 2, 2]), probs) == pytest.approx(2 / 3)
    m = M.SparseTopKCategoricalAccuracy(k=2)
    assert m(np.array([0, 2, 0, 1]), probs) == pytest.approx(0.75)  # row 2 misses, ties count


def test_unknown_names_are_clear():
    model = keras.Sequential([layers.Dense(1, input_shape=(2,))])
    with pytest.raises(ValueError, match="Unknown optimizer identifier: 'adamm'"):
        model.compile("adamm", "mse")
    with pytest.raises(ValueError, match="Unknown loss identifier: 'msee'"):
        model.compile("adam", "msee")
    with pytest.raises(RuntimeError, match="compile"):
        keras.Sequential([layers.Dense(1, input_shape=(2,))]).fit(np.zeros((2, 2)),
                                                                    np.zeros(2), verbose=0)


def test_custom_loss_function_on_tensors():
    def my_loss(y_true, y_pred):
        return ((y_pred - y_true) ** 2).mean(-1) * 2.0

    x, y = _blobs(32)
    model = keras.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", my_loss)
    hist = model.fit(x, y.astype(np.float32)[:, None], epochs=2, verbose=0)
    assert hist.history["loss"][1] < hist.history["loss"][0]
    assert isinstance(my_loss(Tensor(np.zeros((1, 1))), Tensor(np.ones((1, 1)))), Tensor)


def test_fine_tuning_a_frozen_base_model_nested_in_a_sequential():
    """Seed 002 §3.2.5: reuse a trained model as a frozen feature extractor."""
    x, y = _blobs(64)
    base = keras.Sequential([layers.Dense(8, activation="relu", input_shape=(2,)),
                             layers.Dense(8, activation="relu")], name="base")
    base.trainable = False
    model = keras.Sequential([base, layers.Dense(1, activation="sigmoid")])
    assert model.built  # the nested model knows its input shape
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert " base (Sequential)" in "\n".join(lines) and "Trainable params: 9 " in \
        "\n".join(lines)
    opt = keras.optimizers.Adam(0.05)
    model.compile(opt, "binary_crossentropy", metrics=["accuracy"])
    frozen = base.get_weights()
    model.fit(x, y, epochs=3, verbose=0)
    for a, b in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the same optimizer object compiled into another model is rebuilt on that model's weights
    other = _logreg(optimizer=opt)
    before = other.get_weights()[0].copy()
    other.fit(x, y, epochs=1, verbose=0)
    assert not np.allclose(before, other.get_weights()[0])
