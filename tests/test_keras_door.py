"""Keras is a door: its numbers come from the core, its modules import one way, and the
channel layout of a model is planned once when it is built (issue 8, item 4)."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras, optim
from shenjing.autograd import gradcheck
from shenjing.keras import layers
from shenjing.nn import functional as F
from shenjing.nn import init

KERAS_DIR = pathlib.Path(keras.__file__).parent
RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- imports

def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(KERAS_DIR.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The module an ImportFrom imports from, then each imported name as a submodule."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{a.name}" for a in node.names]


def _keras_imports() -> tuple[dict[str, set], list[str]]:
    """Module-level import edges among shenjing.keras modules, and the function-level
    imports of shenjing.keras modules (file:line)."""
    files = {_module_name(p): p for p in KERAS_DIR.rglob("*.py")}
    edges: dict[str, set] = {m: set() for m in files}
    inner: list[str] = []
    for module, path in files.items():
        tree = ast.parse(path.read_text())
        is_package = path.name == "__init__.py"
        for node in tree.body:  # module level (TYPE_CHECKING blocks are not run)
            if isinstance(node, ast.ImportFrom):  # `from pkg import mod` imports pkg.mod
                target, *members = _resolve(module, is_package, node)
                loaded = [m for m in members if m in files] or [target]
                edges[module].update(t for t in loaded if t in files and t != module)
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and any(
                        t in files for t in _resolve(module, is_package, node)):
                    inner.append(f"{path.name}:{node.lineno}")
    return edges, inner


def test_keras_modules_import_without_cycles_or_function_level_imports():
    edges, inner = _keras_imports()
    assert not inner, f"function-level imports of keras modules: {inner}"
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in edges[m]:
            if state.get(t) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(path + [m, t])}")
            if t not in state:
                visit(t, path + [m])
        state[m] = 2

    for m in edges:
        if m not in state:
            visit(m, [])
    saving_deps = edges["shenjing.keras.saving"]
    assert not {"shenjing.keras.models", "shenjing.keras.model", "shenjing.keras.sequential",
                "shenjing.keras.functional"} & saving_deps
    assert "shenjing.keras.saving" in edges["shenjing.keras.model"]


def test_no_module_getattr_and_no_file_over_600_lines():
    for path in KERAS_DIR.rglob("*.py"):
        text = path.read_text()
        assert "def __getattr__(name" not in text, path
        assert len(text.splitlines()) <= 600, path


# --------------------------------------------------------------------------- activations

NEW_FUNCTIONAL = [("softsign", {}), ("selu", {}), ("hardsigmoid", {})]  # added for Keras


@pytest.mark.parametrize("name,kwargs", NEW_FUNCTIONAL)
def test_new_functional_activations_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    x = RNG.uniform(-8, 8, (4, 7)).astype(np.float32)
    x = np.where(np.abs(np.abs(x) - 3.0) < 0.01, 2.0, x)  # off hardsigmoid's corners
    g = RNG.standard_normal(x.shape).astype(np.float32)
    xs = sj.tensor(x, requires_grad=True)
    ys = getattr(F, name)(xs, **kwargs)
    ys.backward(sj.tensor(g))
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, name)(xt, **kwargs)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ys.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,kwargs", NEW_FUNCTIONAL)
def test_new_functional_activations_gradcheck(name, kwargs):
    x = RNG.uniform(-4, 4, (3, 5))
    x = np.where(np.abs(x) < 0.05, 0.3, x)  # away from the kinks at 0, -3 and 3
    x = np.where(np.abs(np.abs(x) - 3.0) < 0.05, 2.5, x)
    xs = sj.tensor(x, dtype=sj.float64, requires_grad=True)
    assert gradcheck(lambda t: getattr(F, name)(t, **kwargs), (xs,))


def test_keras_activations_are_the_core_functions():
    x = sj.tensor(RNG.standard_normal((3, 6)).astype(np.float32))
    a = keras.activations
    pairs = [(a.elu(x, 0.7), F.elu(x, 0.7)), (a.selu(x), F.selu(x)), (a.silu(x), F.silu(x)),
             (a.swish(x), F.silu(x)), (a.gelu(x), F.gelu(x)),
             (a.gelu(x, approximate=True), F.gelu(x, approximate="tanh")),
             (a.softplus(x), F.softplus(x)), (a.softsign(x), F.softsign(x)),
             (a.mish(x), F.mish(x)), (a.hard_sigmoid(x), F.hardsigmoid(x)),
             (a.relu6(x), F.relu6(x)), (a.leaky_relu(x), F.leaky_relu(x, 0.2)),
             (a.softmax(x), F.softmax(x, dim=-1))]
    for keras_value, core_value in pairs:
        np.testing.assert_array_equal(keras_value.numpy(), core_value.numpy())


def test_keras_relu_threshold_and_cap():
    x = sj.tensor(np.array([-2.0, 0.5, 1.0, 1.5, 3.0, 7.0], np.float32))
    y = keras.activations.relu(x, negative_slope=0.1, max_value=4.0, threshold=1.0).numpy()
    np.testing.assert_allclose(y, [-0.3, -0.05, 0.0, 1.5, 3.0, 4.0], rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- losses

def test_keras_losses_match_torch_losses_per_sample():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    pred = RNG.uniform(0.05, 0.95, (5, 4)).astype(np.float32)
    true = RNG.uniform(0, 1, (5, 4)).astype(np.float32)
    logits = RNG.standard_normal((5, 4)).astype(np.float32) * 3
    labels01 = RNG.integers(0, 2, (5, 4)).astype(np.float32)
    L = keras.losses
    pt, tt, lt = torch.tensor(pred), torch.tensor(true), torch.tensor(logits)
    cases = [
        (L.huber(true, pred, delta=0.3), tf.huber_loss(pt, tt, reduction="none", delta=0.3)
         .mean(-1)),
        (L.mean_squared_error(true, pred), tf.mse_loss(pt, tt, reduction="none").mean(-1)),
        (L.mean_absolute_error(true, pred), tf.l1_loss(pt, tt, reduction="none").mean(-1)),
        (L.binary_crossentropy(true, logits, from_logits=True),
         tf.binary_cross_entropy_with_logits(lt, tt, reduction="none").mean(-1)),
        (L.binary_crossentropy(true, pred),
         tf.binary_cross_entropy(pt, tt, reduction="none").mean(-1)),
        (L.kl_divergence(true, pred),
         tf.kl_div(pt.log(), tt, reduction="none").sum(-1)),
        (L.hinge(labels01, logits),
         (1 - (2 * torch.tensor(labels01) - 1) * lt).clamp(min=0).mean(-1)),
        (L.log_cosh(true, logits), torch.log(torch.cosh(lt - tt)).mean(-1)),
        (L.cosine_similarity(true, logits), -tf.cosine_similarity(tt, lt, dim=-1)),
    ]
    for ours, theirs in cases:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=2e-5, atol=1e-6)


def test_keras_sparse_crossentropy_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    logits = RNG.standard_normal((6, 5)).astype(np.float32)
    labels = RNG.integers(0, 5, 6)
    g = RNG.standard_normal(6).astype(np.float32)
    z = sj.tensor(logits, requires_grad=True)
    keras.losses.sparse_categorical_crossentropy(labels, z, from_logits=True).backward(
        sj.tensor(g))
    zt = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(zt, torch.tensor(labels), reduction="none").backward(
        torch.tensor(g))
    np.testing.assert_allclose(z.grad.numpy(), zt.grad.numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- initializers

def test_initializers_draw_through_nn_init():
    ours = keras.initializers.TruncatedNormal(stddev=0.3, seed=7)((50, 40))
    t = sj.zeros(50, 40, dtype=sj.float64)
    init.trunc_normal_(t, 0.0, 0.3, -0.6, 0.6, generator=sj.Generator(7))
    np.testing.assert_array_equal(ours, t.numpy().astype(np.float32))
    uni = keras.initializers.RandomUniform(-0.2, 0.2, seed=3)((6, 5))
    t = sj.zeros(6, 5, dtype=sj.float64)
    init.uniform_(t, -0.2, 0.2, generator=sj.Generator(3))
    np.testing.assert_array_equal(uni, t.numpy().astype(np.float32))
    q = keras.initializers.Orthogonal(gain=2.0, seed=1)((3, 4, 5))
    flat = q.reshape(12, 5).astype(np.float64)
    np.testing.assert_allclose(flat.T @ flat, 4.0 * np.eye(5), atol=1e-5)


# --------------------------------------------------------------------------- optimizers

def _keras_rmsprop_reference(w, grads, lr, rho, eps, momentum):
    v, m = np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        step = lr * g / np.sqrt(v + eps)
        m = momentum * m + step
        w = w - m
    return w


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_keras_rmsprop_is_optim_rmsprop_with_eps_inside_sqrt(momentum):
    w0 = RNG.standard_normal(6)
    grads = [RNG.standard_normal(6) for _ in range(5)]
    p = sj.nn.Parameter(sj.tensor(w0, dtype=sj.float64))
    opt = keras.optimizers.RMSprop(learning_rate=0.01, rho=0.8, epsilon=1e-3,
                                   momentum=momentum)
    opt.build([p])
    assert isinstance(opt._impl, optim.RMSprop)
    for g in grads:
        p.grad = sj.tensor(g, dtype=sj.float64)
        opt.step()
    np.testing.assert_allclose(p.numpy(), _keras_rmsprop_reference(
        w0, grads, 0.01, 0.8, 1e-3, momentum), rtol=1e-10)


def test_clipnorm_and_clipvalue_clip_like_keras():
    a = sj.nn.Parameter(sj.tensor(np.zeros(3), dtype=sj.float64))
    b = sj.nn.Parameter(sj.tensor(np.zeros(2), dtype=sj.float64))
    ga, gb = np.array([3.0, 4.0, 0.0]), np.array([0.1, -0.2])
    for kwargs, expected in (
            ({"clipnorm": 1.0}, (ga / 5.0, gb)),
            ({"global_clipnorm": 1.0}, (ga / np.sqrt(25.05), gb / np.sqrt(25.05))),
            ({"clipvalue": 0.15}, (np.clip(ga, -0.15, 0.15), np.clip(gb, -0.15, 0.15)))):
        with sj.no_grad():
            a.zero_()
            b.zero_()
        opt = keras.optimizers.SGD(learning_rate=1.0, **kwargs)
        opt.build([a, b])
        a.grad, b.grad = sj.tensor(ga.copy()), sj.tensor(gb.copy())
        opt.step()
        np.testing.assert_allclose(-a.numpy(), expected[0], rtol=1e-5)
        np.testing.assert_allclose(-b.numpy(), expected[1], rtol=1e-5)


# --------------------------------------------------------------------------- callbacks

def _keras_plateau_reference(values, lr, factor, patience, cooldown, min_delta, min_lr):
    """Keras 3's ReduceLROnPlateau rule, written out for mode='min'."""
    best, wait, counter, lrs = np.inf, 0, 0, []
    for v in values:
        if counter > 0:
            counter -= 1
            wait = 0
        if v < best - min_delta:
            best, wait = v, 0
        elif counter <= 0:
            wait += 1
            if wait >= patience and lr > np.float32(min_lr):
                lr = max(lr * factor, min_lr)
                counter, wait = cooldown, 0
        lrs.append(lr)
    return lrs


class _ScriptedLoss(keras.callbacks.Callback):
    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


@pytest.mark.parametrize("patience,cooldown", [(0, 0), (1, 0), (2, 2), (3, 1)])
def test_reduce_lr_on_plateau_follows_keras_rule(patience, cooldown):
    values = [1.0, 0.9, 0.95, 0.96, 0.97, 0.89, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6]
    x = RNG.standard_normal((8, 2)).astype(np.float32)
    model = keras.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")
    seen = []
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=patience,
                                                cooldown=cooldown, min_delta=0.02, min_lr=0.0)
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: seen.append(model.optimizer.learning_rate))
    model.optimizer.learning_rate = 1.0
    model.fit(x, x[:, :1], epochs=len(values), verbose=0,
              callbacks=[_ScriptedLoss(values), plateau, record])
    assert seen == _keras_plateau_reference(values, 1.0, 0.5, patience, cooldown, 0.02, 0.0)
    assert seen[-1] < 1.0


# --------------------------------------------------------------------------- fit's data

def test_fit_batches_arrays_through_the_dataloader():
    from shenjing.data import DataLoader
    from shenjing.keras.batching import Batches

    x = np.arange(10, dtype=np.float64).reshape(10, 1)
    y = np.arange(10)
    batches = Batches({"a": x, "b": x * 2}, y, None, batch_size=4, shuffle=True)
    assert isinstance(batches.source.loader, DataLoader)
    seen = []
    for xb, yb, sw in batches:
        assert xb["a"].dtype == np.float32 and sw is None
        np.testing.assert_array_equal(xb["a"][:, 0], yb)
        np.testing.assert_array_equal(xb["b"][:, 0], 2 * yb)
        seen.extend(yb.tolist())
    assert sorted(seen) == list(range(10)) and seen != list(range(10))
    assert batches.num_batches == 3
    assert len(list(Batches(x, y, None, batch_size=4, steps=2))) == 2
    model = keras.Sequential([layers.Dense(1, input_shape=(1,))])
    sj.manual_seed(5)
    expected = sj.rand(3).numpy()
    sj.manual_seed(5)
    model.predict(x, batch_size=4, verbose=0)  # unshuffled: the global stream is untouched
    np.testing.assert_array_equal(sj.rand(3).numpy(), expected)


# --------------------------------------------------------------------------- layout plan

def _conv_stack():
    sj.manual_seed(0)
    return keras.Sequential([
        layers.Conv2D(4, 3, activation="relu", input_shape=(9, 9, 2)),
        layers.MaxPooling2D(2), layers.Conv2D(3, 2, padding="same"), layers.Dropout(0.2),
        layers.Flatten(), layers.Dense(5, activation="softmax")])


def test_layout_is_planned_once_when_the_model_is_built():
    model = _conv_stack()
    plan = model._plan
    conversions = [len(step.convert) for step in plan.steps]
    assert conversions == [1, 0, 0, 0, 1, 0]  # into NCHW at the first conv, out at Flatten
    assert [step.channels_first for step in plan.steps] == [True, True, True, False, False,
                                                            False]
    assert plan.fusable_softmax and plan.logit_steps[-1].logits
    x = RNG.standard_normal((3, 9, 9, 2)).astype(np.float32)
    expected = sj.tensor(x)
    for layer in model.layers:  # each layer on its own takes and returns channels-last
        expected = layer(expected)
    np.testing.assert_allclose(model(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    logits = model._run_model(x, False, logits=True)
    np.testing.assert_allclose(F.softmax(logits, dim=-1).numpy(), expected.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_residual_merge_stays_channels_first():
    inp = keras.Input((6, 6, 3))
    a = layers.Conv2D(3, 3, padding="same")(inp)
    b = layers.Conv2D(3, 3, padding="same")(a)
    out = layers.GlobalAveragePooling2D()(layers.Add()([a, b]))
    model = keras.Model(inp, out)
    add_step = next(s for s in model._plan.steps if isinstance(s.node.layer, layers.Add))
    assert add_step.out_cf and not add_step.convert
    x = RNG.standard_normal((2, 6, 6, 3)).astype(np.float32)
    ya = model.layers[1](sj.tensor(x))
    yb = model.layers[2](ya)
    expected = (ya + yb).mean((1, 2))
    np.testing.assert_allclose(model(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_functional_config_loads_in_any_layer_order():
    inp = keras.Input((4,), name="in")
    h = layers.Dense(3, name="h")(inp)
    o = layers.Add(name="add")([layers.Dense(3, name="d1")(h), layers.Dense(3, name="d2")(h)])
    model = keras.Model(inp, o, name="m")
    config = model.get_config()
    config["layers"] = config["layers"][::-1]  # every consumer before its producers
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    broken = dict(config, layers=[e for e in config["layers"] if e["name"] != "h"])
    with pytest.raises(ValueError, match="cannot connect the layers"):
        keras.Model.from_config(broken)


def test_lstm_keeps_one_bias_through_the_public_module_api():
    layer = layers.LSTM(3)
    layer.build((None, 5, 2))
    names = [n for n, _ in layer.rnn.named_parameters()]
    assert names == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0"]
    assert layer.rnn.bias_hh_l0 is None
    bias = layer.get_weights()[2]
    np.testing.assert_array_equal(bias[3:6], 1.0)  # unit_forget_bias


# --------------------------------------------------------------------------- metrics

def test_keras_confusion_metrics_share_the_sklearn_style_computation():
    from shenjing import metrics as core_metrics

    labels = RNG.integers(0, 4, 40)
    probs = RNG.dirichlet(np.ones(4), 40)
    predicted = probs.argmax(-1)
    precision, recall, f1, _ = core_metrics.precision_recall_fscore_support(
        labels, predicted, labels=np.arange(4))
    onehot = np.eye(4)[labels]
    M = keras.metrics
    np.testing.assert_allclose(M.F1Score(average=None)(onehot, probs), f1, rtol=1e-12)
    assert M.F1Score(average="macro")(onehot, probs) == pytest.approx(f1.mean(), rel=1e-12)
    binary_true, binary_pred = labels == 1, probs[:, 1]
    p1, r1, _ = core_metrics.scores_from_counts(
        np.sum(binary_true & (binary_pred > 0.5)), np.sum(~binary_true & (binary_pred > 0.5)),
        np.sum(binary_true & (binary_pred <= 0.5)))
    assert M.Precision()(binary_true.astype(float), binary_pred) == pytest.approx(float(p1))
    assert M.Recall()(binary_true.astype(float), binary_pred) == pytest.approx(float(r1))
