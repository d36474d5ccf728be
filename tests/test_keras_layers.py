"""shenjing.keras layers: shapes and parameter counts from Keras's formulas, numerics against
torch (weights copied with the NHWC<->NCHW / (in, out)<->(out, in) transposes) and against
NumPy transcriptions of Keras's documented equations (RNN gate orders, TF 'same' padding,
BatchNormalization's moving statistics)."""

from __future__ import annotations

import numpy as np
import pytest

from shenjing import keras
from shenjing.keras import layers
from shenjing.tensor import Tensor


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    keras.backend.clear_session()


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _out_shape(layer, input_shape):
    return keras.Sequential([keras.Input(shape=input_shape), layer]).layers[-1].output_shape


# --------------------------------------------------------------------------- shapes & params

@pytest.mark.parametrize("layer, in_shape, out_shape, params", [
    (lambda: layers.Dense(7), (5,), (None, 7), 5 * 7 + 7),
    (lambda: layers.Dense(4, use_bias=False), (3, 6), (None, 3, 4), 6 * 4),
    (lambda: layers.Conv2D(32, (3, 3)), (28, 28, 1), (None, 26, 26, 32), 3 * 3 * 1 * 32 + 32),
    (lambda: layers.Conv2D(8, 3, strides=2, padding="same"), (9, 10, 3), (None, 5, 5, 8),
     3 * 3 * 3 * 8 + 8),
    (lambda: layers.Conv2D(6, (2, 4), strides=(2, 1)), (9, 10, 3), (None, 4, 7, 6),
     2 * 4 * 3 * 6 + 6),
    (lambda: layers.Conv2D(4, 3, dilation_rate=2, padding="same"), (9, 9, 2), (None, 9, 9, 4),
     3 * 3 * 2 * 4 + 4),
    (lambda: layers.Conv1D(5, 3), (10, 4), (None, 8, 5), 3 * 4 * 5 + 5),
    (lambda: layers.Conv1D(5, 3, padding="causal"), (10, 4), (None, 10, 5), 3 * 4 * 5 + 5),
    (lambda: layers.Conv1D(5, 4, strides=3, padding="same"), (10, 4), (None, 4, 5),
     4 * 4 * 5 + 5),
    (lambda: layers.MaxPooling2D((2, 2)), (26, 26, 32), (None, 13, 13, 32), 0),
    (lambda: layers.MaxPooling2D(3, strides=2, padding="same"), (7, 8, 2), (None, 4, 4, 2), 0),
    (lambda: layers.AveragePooling2D(), (7, 9, 3), (None, 3, 4, 3), 0),
    (lambda: layers.MaxPooling1D(2), (9, 3), (None, 4, 3), 0),
    (lambda: layers.GlobalAveragePooling2D(), (5, 6, 7), (None, 7), 0),
    (lambda: layers.GlobalAveragePooling2D(keepdims=True), (5, 6, 7), (None, 1, 1, 7), 0),
    (lambda: layers.GlobalMaxPooling1D(), (5, 6), (None, 6), 0),
    (lambda: layers.Flatten(), (5, 5, 64), (None, 1600), 0),
    (lambda: layers.Reshape((3, -1)), (4, 6), (None, 3, 8), 0),
    (lambda: layers.Permute((2, 1)), (4, 6), (None, 6, 4), 0),
    (lambda: layers.Dropout(0.5), (4, 6), (None, 4, 6), 0),
    (lambda: layers.Activation("relu"), (4,), (None, 4), 0),
    (lambda: layers.BatchNormalization(), (5, 5, 6), (None, 5, 5, 6), 4 * 6),
    (lambda: layers.BatchNormalization(), (6,), (None, 6), 4 * 6),
    (lambda: layers.LayerNormalization(), (3, 6), (None, 3, 6), 2 * 6),
    (lambda: layers.Embedding(100, 8), (7,), (None, 7, 8), 100 * 8),
    (lambda: layers.SimpleRNN(5), (7, 3), (None, 5), 3 * 5 + 5 * 5 + 5),
    (lambda: layers.LSTM(5, return_sequences=True), (7, 3), (None, 7, 5),
     4 * (3 * 5 + 5 * 5 + 5)),
    (lambda: layers.GRU(5), (7, 3), (None, 5), 3 * (3 * 5 + 5 * 5 + 2 * 5)),
    (lambda: layers.Bidirectional(layers.LSTM(4)), (7, 3), (None, 8), 2 * 4 * (3 * 4 + 16 + 4)),
    (lambda: layers.Bidirectional(layers.GRU(4, return_sequences=True), merge_mode="sum"),
     (7, 3), (None, 7, 4), 2 * 3 * (3 * 4 + 16 + 8)),
])
def test_output_shape_and_param_count(layer, in_shape, out_shape, params):
    layer = layer()
    assert _out_shape(layer, in_shape) == out_shape
    assert layer.count_params() == params
    # the symbolic shape is the real one
    x = np.random.default_rng(0).integers(0, 5, (2,) + in_shape) if isinstance(
        layer, layers.Embedding) else _rand(2, *in_shape)
    y = layer(x)
    assert y.shape == (2,) + out_shape[1:]
    assert y.dtype == np.float32


def test_lstm_return_state_shapes():
    inp = keras.Input(shape=(6, 3))
    out, h, c = layers.LSTM(4, return_state=True, return_sequences=True)(inp)
    assert out.shape == (None, 6, 4) and h.shape == (None, 4) and c.shape == (None, 4)
    model = keras.Model(inp, [out, h, c])
    ys = model.predict(_rand(2, 6, 3), verbose=0)
    assert [y.shape for y in ys] == [(2, 6, 4), (2, 4), (2, 4)]
    np.testing.assert_allclose(ys[0][:, -1], ys[1], rtol=1e-6)  # last output is h


def test_seed_model_summaries():
    """Seed 000's and seed 003's CNNs: Keras's parameter counts, per layer and in total."""
    seed000 = keras.Sequential([
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(10, activation="softmax")])
    seed003 = keras.Sequential([
        keras.layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])
    for model, rows, total in [
        (seed000, [("conv2d (Conv2D)", "(None, 26, 26, 32)", "320"),
                   ("max_pooling2d (MaxPooling2D)", "(None, 13, 13, 32)", "0"),
                   ("conv2d_1 (Conv2D)", "(None, 11, 11, 64)", "18,496"),
                   ("max_pooling2d_1 (MaxPooling2D)", "(None, 5, 5, 64)", "0"),
                   ("flatten (Flatten)", "(None, 1600)", "0"),
                   ("dense (Dense)", "(None, 10)", "16,010")], "34,826"),
        (seed003, [("conv2d_2 (Conv2D)", "(None, 26, 26, 32)", "320"),
                   ("max_pooling2d_2 (MaxPooling2D)", "(None, 13, 13, 32)", "0"),
                   ("flatten_1 (Flatten)", "(None, 5408)", "0"),
                   ("dense_1 (Dense)", "(None, 128)", "692,352"),
                   ("dense_2 (Dense)", "(None, 10)", "1,290")], "693,962")]:
        lines: list[str] = []
        model.summary(print_fn=lines.append)
        table = [line.split() for line in lines]
        for name, shape, params in rows:
            row = next(t for t in table if t[:2] == name.split())
            assert " ".join(row[2:-1]) == shape and row[-1] == params
        assert f"Total params: {total} " in "\n".join(lines)
        assert f"Trainable params: {total} " in "\n".join(lines)
        assert "Non-trainable params: 0 " in "\n".join(lines)


def test_summary_counts_frozen_and_batchnorm_as_non_trainable():
    model = keras.Sequential([layers.Dense(4, input_shape=(3,)), layers.BatchNormalization(),
                              layers.Dense(2)])
    model.layers[0].trainable = False
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 42 " in text  # Dense 3*4+4, BN 4*4, Dense 4*2+2
    assert "Trainable params: 18 " in text


# --------------------------------------------------------------------------- numerics vs torch

def test_dense_matches_torch_forward_and_backward():
    torch = pytest.importorskip("torch")
    layer = layers.Dense(6, activation="tanh")
    x = _rand(4, 5)
    y = layer(Tensor(x, requires_grad=True))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (5, 6) and bias.shape == (6,)
    assert np.all(bias == 0)  # Keras's zeros, not torch's uniform
    xt = torch.tensor(x, requires_grad=True)
    kt = torch.tensor(kernel, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    yt = torch.tanh(xt @ kt + bt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = _rand(4, 6, seed=3)
    xs = Tensor(x, requires_grad=True)
    layer(xs).backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.linear.weight.grad.numpy().T, kt.grad.numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(layer.linear.bias.grad.numpy(), bt.grad.numpy(), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("kwargs, hw", [
    (dict(filters=5, kernel_size=3), (9, 8)),
    (dict(filters=5, kernel_size=3, strides=2, padding="same"), (9, 8)),
    (dict(filters=4, kernel_size=(2, 3), strides=(2, 2), padding="same"), (8, 7)),
    (dict(filters=4, kernel_size=2, padding="same"), (6, 6)),
    (dict(filters=4, kernel_size=3, dilation_rate=2, activation="relu"), (9, 9)),
])
def test_conv2d_matches_torch_with_tf_same_padding(kwargs, hw):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = layers.Conv2D(**kwargs)
    x = _rand(2, *hw, 3)
    xs = Tensor(x, requires_grad=True)
    y = layer(xs)
    kernel, bias = layer.get_weights()
    assert kernel.shape == layer.kernel_size + (3, kwargs["filters"])
    # TensorFlow 'same': out = ceil(n/s), the odd padding row/column at the bottom/right
    pads = []
    for n, k, s, d in zip(hw, layer.kernel_size, layer.strides, layer.dilation_rate):
        if layer.padding == "same":
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        else:
            pads.append((0, 0))
    xt = torch.tensor(x, requires_grad=True)
    xp = F.pad(xt.permute(0, 3, 1, 2), (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    wt = torch.tensor(kernel.transpose(3, 2, 0, 1), requires_grad=True)
    yt = F.conv2d(xp, wt, torch.tensor(bias), stride=layer.strides,
                  dilation=layer.dilation_rate)
    if kwargs.get("activation") == "relu":
        yt = F.relu(yt)
    yt = yt.permute(0, 2, 3, 1)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = _rand(*y.shape, seed=5)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.conv.weight.grad.numpy(), wt.grad.numpy(), rtol=1e-4,
                               atol=1e-4)


def test_conv1d_causal_matches_torch():
    torch = pytest.importorskip("torch")
    layer = layers.Conv1D(4, 3, padding="causal", dilation_rate=2)
    x = _rand(2, 10, 3)
    y = layer(x)
    kernel, bias = layer.get_weights()
    xt = torch.nn.functional.pad(torch.tensor(x).permute(0, 2, 1), (4, 0))
    yt = torch.nn.functional.conv1d(xt, torch.tensor(kernel.transpose(2, 1, 0)),
                                    torch.tensor(bias), dilation=2).permute(0, 2, 1)
    np.testing.assert_allclose(y.numpy(), yt.numpy(), rtol=1e-5, atol=1e-5)


def test_pooling_same_padding_matches_tensorflow_rules():
    x = _rand(2, 7, 5, 3)
    mp = layers.MaxPooling2D(pool_size=3, strides=2, padding="same")(x).numpy()
    ap = layers.AveragePooling2D(pool_size=3, strides=2, padding="same")(x).numpy()
    assert mp.shape == ap.shape == (2, 4, 3, 3)
    # TF: pad total (out-1)*s + k - n, extra at the end; average over real cells only
    for i in range(4):
        for j in range(3):
            r0, c0 = i * 2 - 1, j * 2 - 1  # pad before = 1 on both axes here
            win = x[:, max(r0, 0):r0 + 3, max(c0, 0):c0 + 3, :]
            np.testing.assert_allclose(mp[:, i, j], win.max((1, 2)), rtol=1e-6)
            np.testing.assert_allclose(ap[:, i, j], win.mean((1, 2)), rtol=1e-5)


def test_flatten_uses_channels_last_order_inside_a_conv_model():
    """The executor keeps conv blocks channels-first; Flatten must still give HWC order."""
    model = keras.Sequential([layers.Conv2D(2, 1, input_shape=(3, 3, 2), use_bias=False),
                              layers.Flatten()])
    model.layers[0].set_weights([np.eye(2, dtype=np.float32).reshape(1, 1, 2, 2)])
    x = _rand(1, 3, 3, 2)
    np.testing.assert_allclose(model.predict(x, verbose=0), x.reshape(1, -1), rtol=1e-6)


def _keras_lstm(x, kernel, rec, bias, u):
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros((x.shape[0], u))
    c = np.zeros((x.shape[0], u))
    outs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ rec + bias
        i, f, cc, o = np.split(z, 4, axis=1)  # Keras gate order i, f, c, o
        c = sig(f) * c + sig(i) * np.tanh(cc)
        h = sig(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, 1), h, c


def _keras_gru(x, kernel, rec, bias, u):
    """Keras 3 GRU (reset_after=True): gates z, r, h; bias rows (input, recurrent)."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros((x.shape[0], u))
    outs = []
    for t in range(x.shape[1]):
        xz, xr, xh = np.split(x[:, t] @ kernel + bias[0], 3, axis=1)
        hz, hr, hh = np.split(h @ rec + bias[1], 3, axis=1)
        z, r = sig(xz + hz), sig(xr + hr)
        cand = np.tanh(xh + r * hh)
        h = z * h + (1 - z) * cand
        outs.append(h)
    return np.stack(outs, 1), h


def test_lstm_matches_keras_equations():
    layer = layers.LSTM(4, return_sequences=True, return_state=True)
    x = _rand(3, 5, 2)
    y, h, c = layer(x)
    kernel, rec, bias = layer.get_weights()
    assert kernel.shape == (2, 16) and rec.shape == (4, 16) and bias.shape == (16,)
    np.testing.assert_allclose(bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])  # forget 1
    np.testing.assert_allclose(rec @ rec.T, np.eye(4), atol=1e-5)  # orthogonal rows
    rng = np.random.default_rng(1)
    new = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in (kernel, rec, bias)]
    layer.set_weights(new)
    y, h, c = layer(x)
    ry, rh, rc = _keras_lstm(x, *new, 4)
    np.testing.assert_allclose(y.numpy(), ry, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h.numpy(), rh, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c.numpy(), rc, rtol=1e-4, atol=1e-5)


def test_gru_and_simple_rnn_match_keras_equations():
    gru = layers.GRU(3, return_sequences=True)
    x = _rand(2, 6, 4)
    gru(x)
    rng = np.random.default_rng(2)
    ws = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in gru.get_weights()]
    assert [w.shape for w in ws] == [(4, 9), (3, 9), (2, 9)]
    gru.set_weights(ws)
    np.testing.assert_allclose(gru(x).numpy(), _keras_gru(x, *ws, 3)[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([w for w in gru.get_weights()][2], ws[2])  # round trip
    rnn = layers.SimpleRNN(3, go_backwards=True)
    rnn(x)
    k, r, b = rnn.get_weights()
    h = np.zeros((2, 3))
    for t in reversed(range(6)):
        h = np.tanh(x[:, t] @ k + h @ r + b)
    np.testing.assert_allclose(rnn(x).numpy(), h, rtol=1e-4, atol=1e-5)


def test_bidirectional_concatenates_forward_and_reversed_backward():
    bi = layers.Bidirectional(layers.SimpleRNN(2, return_sequences=True))
    x = _rand(1, 4, 3)
    y = bi(x).numpy()
    fwd = bi.forward_layer(x).numpy()
    bwd = bi.backward_layer(x).numpy()[:, ::-1]
    np.testing.assert_allclose(y, np.concatenate([fwd, bwd], -1), rtol=1e-6)


def test_batch_normalization_keras_statistics():
    bn = layers.BatchNormalization(momentum=0.9)
    x = _rand(8, 3, 3, 4) * 2 + 1
    y = bn(x, training=True).numpy()
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)
    gamma, beta, mm, mv = bn.get_weights()
    np.testing.assert_allclose(mm, 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mv, 0.9 + 0.1 * var, rtol=1e-5)  # biased variance, as Keras
    y_inf = bn(x).numpy()  # inference: moving statistics
    np.testing.assert_allclose(y_inf, (x - mm) / np.sqrt(mv + 1e-3), rtol=1e-4, atol=1e-4)
    bn.trainable = False  # frozen BN runs in inference mode and keeps its statistics
    np.testing.assert_allclose(bn(x, training=True).numpy(), y_inf, rtol=1e-6)
    np.testing.assert_allclose(bn.get_weights()[3], mv)


def test_layer_normalization_and_embedding():
    ln = layers.LayerNormalization()
    x = _rand(2, 3, 5)
    np.testing.assert_allclose(ln(x).numpy(), (x - x.mean(-1, keepdims=True)) /
                               np.sqrt(x.var(-1, keepdims=True) + 1e-3), rtol=1e-4, atol=1e-5)
    emb = layers.Embedding(10, 3)
    table = emb.get_weights()[0]
    assert np.abs(table).max() <= 0.05  # Keras's 'uniform' initializer
    ids = np.array([[1, 2], [9, 0]])
    np.testing.assert_allclose(emb(ids).numpy(), table[ids])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 10\)"):
        emb(np.array([[10]]))


def test_dropout_only_in_training():
    d = layers.Dropout(0.5)
    x = np.ones((200, 50), np.float32)
    np.testing.assert_array_equal(d(x).numpy(), x)
    y = d(x, training=True).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.4 < (y == 0).mean() < 0.6


def test_activations_and_initializers_follow_keras():
    x = Tensor(np.array([-2.0, -0.5, 0.0, 0.5, 3.0], np.float32))
    A = keras.activations
    np.testing.assert_allclose(A.get("leaky_relu")(x).numpy(), [-0.4, -0.1, 0, 0.5, 3.0], rtol=1e-6)
    np.testing.assert_allclose(A.get("hard_sigmoid")(x).numpy(),
                               np.clip((x.numpy() + 3) / 6, 0, 1), rtol=1e-6)
    np.testing.assert_allclose(A.get("softplus")(x).numpy(), np.log1p(np.exp(x.numpy())), rtol=1e-5)
    np.testing.assert_allclose(A.get("elu")(x).numpy(),
                               np.where(x.numpy() > 0, x.numpy(), np.exp(x.numpy()) - 1), rtol=1e-5)
    np.testing.assert_allclose(A.relu(x, max_value=1.0, negative_slope=0.1).numpy(),
                               [-0.2, -0.05, 0, 0.5, 1.0], rtol=1e-6)
    init = keras.initializers
    w = init.get("glorot_uniform")((300, 200))
    limit = np.sqrt(6 / 500)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    w = init.get("he_normal")((400, 300))
    assert abs(w.std() - np.sqrt(2 / 400)) < 0.05 * np.sqrt(2 / 400)
    assert np.abs(w).max() <= 2 * np.sqrt(2 / 400) / 0.87962566103423978 + 1e-6  # truncated
    assert init.compute_fans((3, 3, 16, 32)) == (144, 288)
    q = init.Orthogonal(seed=1)((5, 5))
    np.testing.assert_allclose(q @ q.T, np.eye(5), atol=1e-6)
    d = layers.Dense(3, kernel_initializer="ones", bias_initializer=init.Constant(0.5))
    d.build((None, 2))
    np.testing.assert_array_equal(d.get_weights()[0], np.ones((2, 3)))
    np.testing.assert_array_equal(d.get_weights()[1], np.full(3, 0.5))


def test_regularizer_penalty_enters_model_losses():
    reg = keras.regularizers.l2(0.01)
    d = layers.Dense(3, kernel_regularizer=reg, input_shape=(4,))
    model = keras.Sequential([d])
    (penalty,) = model.losses
    np.testing.assert_allclose(float(penalty.numpy()), 0.01 * np.sum(d.get_weights()[0] ** 2),
                               rtol=1e-5)
    l1l2 = keras.regularizers.l1_l2(l1=0.1, l2=0.2)
    w = Tensor(np.array([1.0, -2.0], np.float32))
    np.testing.assert_allclose(float(l1l2(w).numpy()), 0.1 * 3 + 0.2 * 5, rtol=1e-6)


def test_weights_views_trainable_flags_and_set_weights_errors():
    d = layers.Dense(2, input_shape=(3,))
    assert [w.name for w in d.weights] == ["kernel", "bias"]
    assert d.kernel.shape == (3, 2)
    d.trainable = False
    assert d.trainable_weights == [] and len(d.non_trainable_weights) == 2
    assert not d.linear.weight.requires_grad
    with pytest.raises(ValueError, match="weight 'kernel' has shape"):
        d.set_weights([np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(ValueError, match="expects 2 weights"):
        d.set_weights([np.zeros((3, 2))])


def test_bad_inputs_name_the_layer():
    model = keras.Sequential([layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match=r"expected shape \(None, 3\), found shape \(4, 5\)"):
        model.predict(np.zeros((4, 5)), verbose=0)
    with pytest.raises(ValueError, match="conv2d.*rank 4"):
        keras.Sequential([layers.Conv2D(2, 3, input_shape=(5, 5))])
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to Dense"):
        layers.Dense(3, unit=4)
    with pytest.raises(ValueError, match="Unknown activation function identifier: 'relux'"):
        layers.Dense(3, activation="relux")


def test_functional_api_shared_layers_and_multiple_inputs():
    a, b = keras.Input(shape=(4,), name="a"), keras.Input(shape=(4,), name="b")
    shared = layers.Dense(3, name="shared")
    merged = layers.Concatenate()([shared(a), shared(b)])
    out = layers.Dense(1)(merged)
    model = keras.Model(inputs=[a, b], outputs=out)
    assert [la.name for la in model.layers][:3] == ["a", "b", "shared"]
    xa, xb = _rand(5, 4), _rand(5, 4, seed=1)
    y = model.predict([xa, xb], verbose=0)
    y_dict = model.predict({"a": xa, "b": xb}, verbose=0)
    k, bias = shared.get_weights()
    k2, b2 = model.layers[-1].get_weights()
    ref = np.concatenate([xa @ k + bias, xb @ k + bias], 1) @ k2 + b2
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y_dict, y)
    assert model.count_params() == 4 * 3 + 3 + 6 + 1


def test_transfer_learning_reuses_layers_of_a_sequential():
    base = keras.Sequential([layers.Dense(5, activation="relu", input_shape=(3,)),
                             layers.Dense(4, activation="relu"), layers.Dense(2)])
    features = keras.Model(inputs=base.inputs, outputs=base.layers[-2].output)
    x = _rand(6, 3)
    k1, b1, k2, b2 = base.get_weights()[:4]
    np.testing.assert_allclose(features.predict(x, verbose=0),
                               np.maximum(np.maximum(x @ k1 + b1, 0) @ k2 + b2, 0), rtol=1e-5)
    assert features.layers[1] is base.layers[0]  # shared weights, not copies


def test_conv_block_is_transposed_once_on_entry_and_once_at_flatten(monkeypatch):
    """Seed 000's CNN: NHWC -> NCHW before the first Conv2D, back to NHWC at Flatten, and no
    other layout change in between (Conv2D, MaxPooling2D run channels-first)."""
    from shenjing.ops.movement import Permute

    model = keras.Sequential([
        layers.Conv2D(4, (3, 3), activation="relu", input_shape=(12, 12, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(6, (3, 3), activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.1),
        layers.Flatten(),
        layers.Dense(3, activation="softmax")])
    calls = []
    original = Permute.apply.__func__

    def spy(cls, *args, **kwargs):
        calls.append(kwargs.get("dims"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Permute, "apply", classmethod(spy))
    x = _rand(2, 12, 12, 1)
    y = model(x, training=True)
    assert calls == [(0, 3, 1, 2), (0, 2, 3, 1)]
    assert y.shape == (2, 3)
    monkeypatch.undo()
    # and the result is the layer-by-layer channels-last computation
    ref = x
    for layer in model.layers:
        ref = layer(ref)
    np.testing.assert_allclose(model(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
