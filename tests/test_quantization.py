"""Post-training int8 quantization: the arithmetic, the layers, save/load, and QDQ export
checked by onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import models, nn
from shenjing import quantization as Q
from shenjing.quantization.kernels import (
    dynamic_qparams,
    im2col,
    int_matmul,
    qgemm,
    quantize_activation,
    quantize_weight,
)

RNG = np.random.default_rng(0)


def floats(*shape) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- arithmetic


def test_weights_are_int8_per_channel_within_half_a_step():
    w = floats(6, 5) * np.arange(1, 7, dtype=np.float32)[:, None]
    q, s = quantize_weight(w)
    assert q.dtype == np.int8 and s.shape == (6,)
    assert np.abs(q).max() == 127  # each row uses the full symmetric range
    assert np.all(np.abs(q.astype(np.float32) * s[:, None] - w) <= s[:, None] / 2 + 1e-7)


def test_int_matmul_is_exact_in_both_precisions():
    for k in (64, 4096):  # float32 is exact for the first, float64 for the second
        a = RNG.integers(-255, 256, (7, k))
        b = RNG.integers(-127, 128, (k, 5))
        want = a.astype(np.int64) @ b.astype(np.int64)
        assert np.array_equal(np.asarray(int_matmul(a, b), dtype=np.int64), want)
        assert np.array_equal(int_matmul(a, b, use_blas=False).astype(np.int64), want)


def test_the_gemm_kernels_agree():
    x = floats(9, 300)
    scale, zero = dynamic_qparams(x)
    xq = quantize_activation(x, scale, zero)
    wq, ws = quantize_weight(floats(700, 300))
    bias = floats(700)
    ref = ((xq.astype(np.float64) - zero) * scale) @ (wq.astype(np.float64) * ws[:, None]).T
    for kernel in ("int", "dequant", "int32-numpy"):
        y = qgemm(xq, scale, zero, wq, ws, bias, kernel)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, ref + bias, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="kernel"):
        qgemm(xq, scale, zero, wq, ws, bias, "fast")


def test_dynamic_qparams_match_onnxruntime():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    h = onnx.helper
    node = h.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"])
    graph = h.make_graph([node], "dq", [h.make_tensor_value_info("x", 1, [None, 11])],
                         [h.make_tensor_value_info("q", 2, [None, 11]),
                          h.make_tensor_value_info("s", 1, []),
                          h.make_tensor_value_info("z", 2, [])])
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    proto.ir_version = 8
    session = ort.InferenceSession(proto.SerializeToString())
    for x in (floats(4, 11) * 3 + 1, np.abs(floats(4, 11)), -np.abs(floats(4, 11))):
        q, s, z = session.run(None, {"x": x})
        scale, zero = dynamic_qparams(x)
        assert np.float32(scale) == s and zero == z
        assert np.array_equal(quantize_activation(x, scale, zero), q)


def test_im2col_matches_a_direct_convolution():
    torch = pytest.importorskip("torch")
    x = floats(2, 3, 7, 6)
    w = floats(4, 3, 3, 2)
    cols, out = im2col(x, (3, 2), (2, 1), (1, 2), [(1, 1), (0, 2)], 0.0)
    y = (cols @ w.reshape(4, -1).T).reshape((2,) + out + (4,)).transpose(0, 3, 1, 2)
    xt = torch.nn.functional.pad(torch.tensor(x), (0, 2, 1, 1))
    want = torch.nn.functional.conv2d(xt, torch.tensor(w), stride=(2, 1), dilation=(1, 2))
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- layers


class _Net(nn.Module):
    """Conv (static), Linear and LSTM (dynamic) and an Embedding in one model."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 6)
        self.lstm = nn.LSTM(6, 8, batch_first=True, bidirectional=True)
        self.conv = nn.Conv1d(16, 5, 3, padding=1)
        self.fc = nn.Linear(5 * 7, 4)

    def forward(self, ids):
        out, _ = self.lstm(self.emb(ids))  # (N, 7, 16)
        return self.fc(self.conv(out.permute(0, 2, 1)).relu().flatten(1))


def test_quantize_dynamic_replaces_linear_and_lstm_only():
    model = _Net()
    q = Q.quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=Q.qint8)
    assert isinstance(q.fc, Q.DynamicQuantizedLinear)
    assert isinstance(q.lstm, Q.DynamicQuantizedLSTM)
    assert type(q.conv) is nn.Conv1d and type(q.emb) is nn.Embedding
    assert type(model.fc) is nn.Linear  # not in place
    state = q.state_dict()
    assert state["fc.weight_int8"].numpy().dtype == np.int8
    assert state["lstm.weight_hh_l0_reverse_int8"].numpy().dtype == np.int8
    assert not any(k.endswith("weight") for k in state if k.startswith(("fc", "lstm")))
    ids = sj.tensor(RNG.integers(0, 30, (3, 7)))
    with sj.no_grad():
        want, got = model(ids).numpy(), q(ids).numpy()
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
    assert not np.array_equal(got, want)


def test_dynamic_linear_is_the_quantized_function():
    lin = nn.Linear(12, 5)
    q = Q.quantize_dynamic(nn.Sequential(lin), {nn.Linear})[0]
    x = floats(4, 3, 12)
    s, z = dynamic_qparams(x.reshape(-1, 12))
    xd = (quantize_activation(x, s, z).astype(np.float64) - z) * s
    wd = q.weight_int8.numpy().astype(np.float64) * q.weight_scale.numpy()[:, None]
    want = xd @ wd.T + lin.bias.numpy()
    for kernel in Q.KERNELS:
        Q.set_kernel(q, kernel)
        np.testing.assert_allclose(q(sj.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)


def test_static_conv_matches_torch_on_the_dequantized_values():
    torch = pytest.importorskip("torch")
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, groups=1)
    batches = [sj.tensor(floats(4, 3, 9, 9)) for _ in range(3)]
    q = Q.quantize_static(nn.Sequential(conv), batches)[0]
    assert isinstance(q, Q.QuantizedConv2d)
    lo = min(float(b.numpy().min()) for b in batches)
    hi = max(float(b.numpy().max()) for b in batches)
    s, z = q.input_scale.numpy()[()], q.input_zero_point.numpy()[()]
    assert np.isclose(s, (hi - lo) / 255, rtol=1e-6)
    x = floats(2, 3, 9, 9)
    xd = (quantize_activation(x, s, z).astype(np.float32) - z) * s
    want = torch.nn.functional.conv2d(torch.tensor(xd), torch.tensor(q.dequantized_weight()),
                                      torch.tensor(conv.bias.numpy()), stride=2, padding=1)
    for kernel in Q.KERNELS:
        Q.set_kernel(q, kernel)
        np.testing.assert_allclose(q(sj.tensor(x)).numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


def test_grouped_conv1d_and_quantized_embedding():
    conv = nn.Conv1d(4, 6, 3, padding="same", groups=2)
    x = floats(3, 4, 8)
    q = Q.quantize_static(conv, [sj.tensor(x)])  # calibrated on x: no saturation
    with sj.no_grad():
        want = conv(sj.tensor(x)).numpy()
    assert np.abs(q(sj.tensor(x)).numpy() - want).max() < 0.05 * np.abs(want).max()
    emb = nn.Embedding(10, 4)
    qe = Q.quantize_dynamic(emb, {nn.Embedding})
    ids = RNG.integers(0, 10, (2, 5))
    rows = qe(sj.tensor(ids)).numpy()
    np.testing.assert_allclose(rows, qe.dequantized_weight()[ids], rtol=1e-6)
    assert np.abs(rows - emb.weight.numpy()[ids]).max() <= qe.weight_scale.numpy().max() / 2


def test_seed_cnn_is_about_a_quarter_of_its_float_size():
    model = models.seed000_cnn()
    q = Q.quantize_static(model, [sj.tensor(floats(8, 1, 28, 28))], dynamic_spec={nn.Linear})
    ratio = Q.model_size_bytes(q) / Q.model_size_bytes(model)
    assert 0.25 <= ratio <= 0.3


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match="BatchNorm2d"):
        Q.quantize_dynamic(nn.Sequential(nn.BatchNorm2d(3)), {nn.BatchNorm2d})
    with pytest.raises(ValueError, match="qint8"):
        Q.quantize_dynamic(nn.Linear(2, 2), dtype="float16")
    with pytest.raises(ValueError, match="calibration"):
        Q.convert(Q.prepare(nn.Sequential(nn.Conv2d(1, 2, 3))))
    with pytest.raises(ValueError, match="no batches"):
        Q.quantize_static(nn.Conv2d(1, 2, 3), [])
    with pytest.raises(ValueError, match="in_features=4"):
        Q.quantize_dynamic(nn.Sequential(nn.Linear(4, 2)))(sj.tensor(floats(2, 3)))


# ----------------------------------------------------------------------------- save / load


def test_save_and_load_keep_int8(tmp_path):
    model = _Net()
    q = Q.quantize_static(model, [sj.tensor(RNG.integers(0, 30, (4, 7)))],
                          dynamic_spec={nn.Linear, nn.LSTM, nn.Embedding})
    path = tmp_path / "q.safetensors"
    Q.save_quantized(q, path)
    raw = sj.load(path)["state"]
    assert raw["conv.weight_int8"].dtype == np.int8 and raw["fc.weight_int8"].dtype == np.int8
    assert raw["emb.weight_int8"].dtype == np.int8
    loaded = Q.load_quantized(_Net(), path)
    ids = sj.tensor(RNG.integers(0, 30, (3, 7)))
    assert np.array_equal(loaded(ids).numpy(), q(ids).numpy())
    (tmp_path / "float.safetensors").write_bytes(b"")
    sj.save(model.state_dict(), tmp_path / "float.safetensors")
    with pytest.raises(ValueError, match="quantized"):
        Q.load_quantized(_Net(), tmp_path / "float.safetensors")


# ----------------------------------------------------------------------------- ONNX (QDQ)


def _onnx_check(tmp_path, qmodel, example, other):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "q.onnx"
    from shenjing.onnx import export
    export(qmodel, sj.tensor(example), str(path), input_names=["x"],
                   dynamic_axes={"x": {0: "batch"}})
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": other})[0]
    want = qmodel(sj.tensor(other)).numpy()
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4
    return proto


def test_quantized_cnn_exports_as_qdq(tmp_path):
    model = models.seed003_cnn()
    q = Q.quantize_static(model, [sj.tensor(floats(8, 1, 28, 28))], dynamic_spec={nn.Linear})
    proto = _onnx_check(tmp_path, q, floats(2, 1, 28, 28), floats(5, 1, 28, 28))
    ops = [n.op_type for n in proto.graph.node]
    assert {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"} <= set(ops)
    int8 = [t for t in proto.graph.initializer if t.data_type == 3 and "zero" not in t.name]
    assert sum(np.prod(t.dims) for t in int8) == sum(
        p.numpy().size for n, p in model.named_parameters() if n.endswith("weight"))


def test_quantized_recurrent_model_exports_as_qdq(tmp_path):
    q = Q.quantize_static(_Net(), [sj.tensor(RNG.integers(0, 30, (4, 7)))],
                          dynamic_spec={nn.Linear, nn.LSTM, nn.Embedding})
    proto = _onnx_check(tmp_path, q, RNG.integers(0, 30, (2, 7)), RNG.integers(0, 30, (6, 7)))
    assert [n.op_type for n in proto.graph.node].count("LSTM") == 1


def test_prepare_calibrate_convert_equals_quantize_static():
    model = models.seed003_cnn()
    batches = [sj.tensor(floats(4, 1, 28, 28)) for _ in range(2)]
    prepared = Q.prepare(model)
    assert isinstance(prepared[0], Q.Observer) and type(model[0]) is nn.Conv2d
    with sj.no_grad():
        for b in batches:
            prepared(b)
    two_step = Q.convert(prepared)
    one_call = Q.quantize_static(model, batches)
    x = sj.tensor(floats(3, 1, 28, 28))
    assert np.array_equal(two_step(x).numpy(), one_call(x).numpy())
    assert two_step[0].input_scale.numpy() == one_call[0].input_scale.numpy()


def test_dynamic_gru_is_the_float_gru_on_dequantized_weights(tmp_path):
    gru = nn.GRU(5, 6, num_layers=2, batch_first=True)
    q = Q.quantize_dynamic(nn.Sequential(gru), {nn.GRU})[0]
    assert isinstance(q, Q.DynamicQuantizedGRU)
    ref = nn.GRU(5, 6, num_layers=2, batch_first=True)
    with sj.no_grad():
        for name, p in ref.named_parameters():
            p.copy_(sj.tensor(q.dequantized(name)))
    x = sj.tensor(floats(3, 4, 5))
    with sj.no_grad():
        got, want = q(x), ref(x)
    np.testing.assert_array_equal(got[0].numpy(), want[0].numpy())
    np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
    _onnx_check(tmp_path, _FirstOutput(q), floats(2, 4, 5), floats(5, 4, 5))


class _FirstOutput(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)[0]
