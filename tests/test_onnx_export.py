"""ONNX export checked by a client nobody here wrote: onnx.checker and onnxruntime.

Every zoo model and every listed layer is exported on one batch size, checked, run in
onnxruntime on another batch size, and compared with shenjing's own output (max |diff| ≤ 1e-4).
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import shenjing as sj  # noqa: E402
from shenjing import models, nn  # noqa: E402
from shenjing.onnx import UnsupportedOperatorError, export  # noqa: E402
from shenjing.onnx.trace import flatten_tensors  # noqa: E402

RNG = np.random.default_rng(0)
TOL = 1e-4


def floats(*shape) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def tokens(vocab: int, *shape) -> np.ndarray:
    return RNG.integers(0, vocab, shape).astype(np.int64)


def to_tensors(obj):
    if isinstance(obj, tuple):
        return tuple(to_tensors(o) for o in obj)
    return sj.tensor(obj)


def export_and_compare(tmp_path, model, example: tuple, other: tuple, batch_axes: list,
                       full_check: bool = True):
    """Export on `example`, run onnxruntime on `other` (another batch size), compare."""
    flat = flatten_tensors(to_tensors(example))
    names = [f"in{i}" for i in range(len(flat))]
    path = tmp_path / "model.onnx"
    export(model, to_tensors(example), str(path), input_names=names,
           dynamic_axes={n: {ax: "batch"} for n, ax in zip(names, batch_axes)})
    proto = onnx.load(str(path))
    if full_check:  # export itself ran the plain check_model before writing
        onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    other_flat = flatten_tensors(to_tensors(other))
    got = session.run(None, {n: t.numpy() for n, t in zip(names, other_flat)})
    model.eval()
    with sj.no_grad():
        want = [t.numpy() for t in flatten_tensors(model(*to_tensors(other)))]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert np.abs(g - w).max() <= TOL
    return proto


# ----------------------------------------------------------------------------- the zoo

ZOO_INPUTS = {  # name -> (kwargs, example input, other-batch input, batch axis)
    "seed000-cnn": ({}, floats(2, 1, 28, 28), floats(5, 1, 28, 28)),
    "seed003-cnn": ({}, floats(2, 1, 28, 28), floats(3, 1, 28, 28)),
    "mlp": ({}, floats(2, 784), floats(6, 784)),
    "perceptron": ({"in_features": 6}, floats(2, 6), floats(7, 6)),
    "alexnet": ({"num_classes": 10}, floats(1, 3, 63, 63), floats(2, 3, 63, 63)),
    "resnet": ({"blocks": (1, 2), "widths": (4, 8)}, floats(2, 1, 12, 12),
               floats(3, 1, 12, 12)),
    "textcnn": ({"vocab_size": 60, "embed_dim": 16, "n_filters": 8}, tokens(60, 2, 12),
                tokens(60, 5, 12)),
    "char-lstm": ({"vocab_size": 30, "embed_dim": 8, "hidden_size": 16, "num_layers": 2},
                  tokens(30, 2, 7), tokens(30, 4, 7)),
    "sequence-regressor": ({"input_size": 3, "hidden_size": 8}, floats(2, 6, 3),
                           floats(5, 6, 3)),
    "transformer": ({"vocab_size": 40, "d_model": 16, "nhead": 2, "dim_feedforward": 32,
                     "max_len": 20}, tokens(40, 2, 9), tokens(40, 5, 9)),
}


def _randomize_batch_norms(model):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _bn(m)
    return model


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_zoo_model_exports(tmp_path, name):
    if name not in ZOO_INPUTS:
        pytest.skip(f"no example input listed for zoo model {name!r}")
    kwargs, example, other = ZOO_INPUTS[name]
    model = _randomize_batch_norms(models.get_model(name, **kwargs))
    proto = export_and_compare(tmp_path, model, (example,), (other,), [0],
                               full_check=name != "alexnet")  # 230 MB: skip the re-check
    ops = [n.op_type for n in proto.graph.node]
    if name == "char-lstm":
        assert ops.count("LSTM") == 2 and len(proto.graph.output) == 3  # logits, h_n, c_n
    if name == "resnet":
        assert "BatchNormalization" not in ops  # every BatchNorm follows a conv: folded


def test_sequence_regressor_rnn_cell(tmp_path):
    model = models.get_model("sequence-regressor", input_size=2, hidden_size=5, cell="rnn")
    export_and_compare(tmp_path, model, (floats(2, 4, 2),), (floats(3, 4, 2),), [0])


# ----------------------------------------------------------------------------- layers


def _bn(layer):
    """A BatchNorm with non-trivial running statistics and affine parameters."""
    with sj.no_grad():
        n = layer.num_features
        layer.running_mean.copy_(sj.tensor(floats(n)))
        layer.running_var.copy_(sj.tensor(RNG.uniform(0.5, 2.0, n).astype(np.float32)))
        layer.weight.copy_(sj.tensor(floats(n)))
        layer.bias.copy_(sj.tensor(floats(n)))
    return layer


LAYERS = {
    "linear": (lambda: nn.Linear(5, 3), (2, 5)),
    "conv1d": (lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    "conv2d": (lambda: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2)),
               (2, 3, 9, 8)),
    "conv2d_groups_same": (lambda: nn.Conv2d(4, 6, 4, padding="same", groups=2), (2, 4, 7, 7)),
    "conv2d_reflect": (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
                       (2, 2, 6, 6)),
    "conv_bn_folded": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), _bn(nn.BatchNorm2d(4))),
                       (2, 3, 6, 6)),
    "batchnorm1d": (lambda: _bn(nn.BatchNorm1d(5)), (2, 5)),
    "layernorm": (lambda: nn.LayerNorm((4, 5)), (2, 3, 4, 5)),
    "maxpool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 10)),
    "maxpool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 10, 9)),
    "avgpool1d": (lambda: nn.AvgPool1d(2), (2, 3, 10)),
    "avgpool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                  (2, 3, 9, 9)),
    "adaptive_avg_tiling": (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 8, 9)),
    "adaptive_avg_uneven": (lambda: nn.AdaptiveAvgPool2d((3, 4)), (2, 3, 7, 6)),
    "adaptive_max": (lambda: nn.AdaptiveMaxPool2d(1), (2, 3, 5, 5)),
    "dropout": (lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)), (2, 4)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 4, 5)),
    "relu": (lambda: nn.ReLU(), (2, 7)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), (2, 7)),
    "elu": (lambda: nn.ELU(0.7), (2, 7)),
    "gelu": (lambda: nn.GELU(), (2, 7)),
    "gelu_tanh": (lambda: nn.GELU(approximate="tanh"), (2, 7)),
    "silu": (lambda: nn.SiLU(), (2, 7)),
    "sigmoid": (lambda: nn.Sigmoid(), (2, 7)),
    "tanh": (lambda: nn.Tanh(), (2, 7)),
    "softmax": (lambda: nn.Softmax(dim=1), (2, 7)),
    "log_softmax": (lambda: nn.LogSoftmax(dim=-1), (2, 3, 7)),
    "rnn_relu": (lambda: nn.RNN(4, 6, nonlinearity="relu", batch_first=True), (2, 5, 4)),
    "gru_2layer_bidir": (lambda: nn.GRU(4, 6, num_layers=2, bidirectional=True), (5, 2, 4)),
    "lstm_bidir": (lambda: nn.LSTM(4, 6, batch_first=True, bidirectional=True), (2, 5, 4)),
}
def _conv_transpose(name: str):
    return lambda: getattr(nn, name)(3, 4, 3, stride=2, padding=1)


for _optional in ("ConvTranspose1d", "ConvTranspose2d"):
    if hasattr(nn, _optional):
        LAYERS[_optional.lower()] = (_conv_transpose(_optional),
                                     (2, 3, 6) if _optional.endswith("1d") else (2, 3, 6, 5))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_exports(tmp_path, name):
    make, shape = LAYERS[name]
    model = make()
    batch_axis = 1 if name.startswith("gru") else 0
    other_shape = list(shape)
    other_shape[batch_axis] += 3
    proto = export_and_compare(tmp_path, model, (floats(*shape),), (floats(*other_shape),),
                               [batch_axis])
    ops = [n.op_type for n in proto.graph.node]
    if name == "conv_bn_folded":
        assert "BatchNormalization" not in ops and "Conv" in ops
    if name == "dropout":
        assert "Dropout" not in ops


def test_embedding_and_lstm_with_initial_state(tmp_path):
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 4)
            self.lstm = nn.LSTM(4, 5, num_layers=2)

        def forward(self, ids, h0, c0):
            out, (h, c) = self.lstm(self.emb(ids), (h0, c0))
            return out.transpose(0, 1).reshape(out.shape[1], -1), h + c

    example = (tokens(20, 6, 2), floats(2, 2, 5), floats(2, 2, 5))
    other = (tokens(20, 6, 3), floats(2, 3, 5), floats(2, 3, 5))
    export_and_compare(tmp_path, Tagger(), example, other, [1, 1, 1])


class _Custom(nn.Module):
    """A custom forward traced op by op: arithmetic, matmul, reductions, cat, indexing."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(sj.tensor(floats(4, 3)))

    def forward(self, x):
        h = (x @ self.w).tanh() * 2.0 - x[:, :3].exp().clamp(max=3.0)
        pooled = h.amax(dim=1, keepdim=True) + h.mean(dim=1, keepdim=True) + h.sum(1, True)
        both = sj.cat([h, pooled, x.permute(1, 0)[:1].transpose(0, 1)], dim=1)
        return both.softmax(dim=-1)[:, 1:] / (1.0 + both.abs()[:, 1:]) + sj.zeros(x.shape[0], 4)


def test_custom_forward_is_traced_op_by_op(tmp_path):
    export_and_compare(tmp_path, _Custom(), (floats(3, 4),), (floats(6, 4),), [0])


def test_keeps_training_mode_and_writes_file_object(tmp_path):
    import io
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    model.train()
    buf = io.BytesIO()
    export(model, sj.tensor(floats(2, 3)), buf)
    assert model.training and model[1].training
    onnx.checker.check_model(onnx.load_from_string(buf.getvalue()))


# ----------------------------------------------------------------------------- errors


class _WithLoss(nn.Module):
    def forward(self, x):
        return nn.functional.mse_loss(x, x * 2.0)


class _WithComparison(nn.Module):
    def forward(self, x):
        return x * (x > 0).float()


@pytest.mark.parametrize("model, needle", [(_WithLoss(), "mse"),
                                           (_WithComparison(), "outside")])
def test_unsupported_op_raises_and_writes_nothing(tmp_path, model, needle):
    # mixed signs: the exporter's second trace (other values) flips this mask for sure
    x = sj.tensor(np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], dtype=np.float32))
    path = tmp_path / "bad.onnx"
    with pytest.raises(UnsupportedOperatorError, match=needle):
        export(model, x, str(path))
    assert not path.exists()
    path.write_bytes(b"previous")
    with pytest.raises(UnsupportedOperatorError):
        export(model, x, str(path))
    assert path.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_bad_arguments_are_reported(tmp_path):
    model = nn.Linear(3, 2)
    x = sj.tensor(floats(2, 3))
    path = str(tmp_path / "x.onnx")
    with pytest.raises(TypeError, match="Module"):
        export(lambda t: t, x, path)
    with pytest.raises(ValueError, match="input_names"):
        export(model, x, path, input_names=["a", "b"])
    with pytest.raises(ValueError, match="opset"):
        export(model, x, path, opset_version=99)
    with pytest.raises(TypeError, match="keyword"):
        export(model, (x, {"bias": x}), path)
    with pytest.raises(ValueError, match="dynamic axes"):
        export(nn.Sequential(nn.Flatten(), nn.Linear(6, 2)), sj.tensor(floats(2, 2, 3)),
               path, input_names=["x"], dynamic_axes={"x": {1: "len"}})
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- front doors


def test_keras_model_export(tmp_path):
    from shenjing import keras
    model = keras.Sequential([
        keras.layers.Conv2D(4, (3, 3), activation="relu", input_shape=(10, 10, 1)),
        keras.layers.MaxPooling2D((2, 2)), keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax")])
    path = tmp_path / "keras.onnx"
    model.export(str(path), format="onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", 10, 10, 1]  # Keras layout, NHWC
    x = floats(5, 10, 10, 1)
    got = session.run(None, {"input": x})[0]
    assert np.abs(got - model.predict(x, verbose=0)).max() <= TOL
    with pytest.raises(ValueError, match="format"):
        model.export(str(tmp_path / "k.pb"), format="tf_saved_model")


def test_cli_export_command(tmp_path, capsys):
    from shenjing.cli import main
    from shenjing.cli.checkpoint import arrays_of, save_model
    net = models.seed003_cnn()
    save_model(tmp_path, {"model": "seed003-cnn", "kwargs": {}, "task": "image",
                          "meta": {"channels": 1, "size": 28}}, arrays_of(net.state_dict()))
    out = tmp_path / "cli.onnx"
    assert main(["export", str(tmp_path), str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = floats(3, 1, 28, 28)
    with sj.no_grad():
        want = net(sj.tensor(x)).numpy()
    assert np.abs(session.run(None, {"input": x})[0] - want).max() <= TOL
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "x.onnx")]) == 1
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


class _SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x)[0]


@pytest.mark.parametrize("make", [
    _SelfAttention,
    lambda: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True),
    lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(
        8, 2, dim_feedforward=16, batch_first=True, norm_first=True), 2),
], ids=["multihead_attention", "transformer_encoder_layer", "transformer_encoder"])
def test_attention_layers_with_dynamic_batch_and_length(tmp_path, make):
    model = make()
    path = tmp_path / "attn.onnx"
    export(model, sj.tensor(floats(2, 5, 8)), str(path), input_names=["x"],
           dynamic_axes={"x": {0: "batch", 1: "length"}})
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = floats(3, 7, 8)  # another batch size and another sequence length
    model.eval()
    with sj.no_grad():
        want = model(sj.tensor(x)).numpy()
    assert np.abs(session.run(None, {"x": x})[0] - want).max() <= TOL
