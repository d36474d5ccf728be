"""keras.ops against NumPy (values) and PyTorch 2.13 (values and input gradients under a
random upstream gradient), every number computed by shenjing's core."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras
from shenjing.autograd import gradcheck

ops = keras.ops
torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)
A = rng.normal(size=(3, 4)).astype(np.float32)
B = rng.normal(size=(3, 4)).astype(np.float32)
P = np.abs(A) + 0.5  # positive, for log/sqrt
C3 = np.arange(24, dtype=np.float32).reshape(2, 4, 3)

# (name, keras call, numpy reference) on A, B, P
VALUE_CASES = [
    ("add", lambda: ops.add(A, B), A + B),
    ("subtract", lambda: ops.subtract(A, 2.0), A - 2.0),
    ("multiply", lambda: ops.multiply(A, B), A * B),
    ("divide", lambda: ops.divide(A, P), A / P),
    ("divide_int", lambda: ops.divide(np.arange(4), 2), np.arange(4) / 2),
    ("matmul", lambda: ops.matmul(A, B.T), A @ B.T),
    ("dot_nd", lambda: ops.dot(A, C3), np.dot(A, C3)),
    ("einsum", lambda: ops.einsum("ij,kj->ik", A, B), np.einsum("ij,kj->ik", A, B)),
    ("einsum_trace", lambda: ops.einsum("ii", A[:3, :3]), np.einsum("ii", A[:3, :3])),
    ("einsum_batch", lambda: ops.einsum("bij,bjk->bik", A.reshape(1, 3, 4), B.T[None]),
     np.einsum("bij,bjk->bik", A.reshape(1, 3, 4), B.T[None])),
    ("reshape", lambda: ops.reshape(A, (4, -1)), A.reshape(4, -1)),
    ("transpose", lambda: ops.transpose(A), A.T),
    ("expand_dims", lambda: ops.expand_dims(A, -1), A[..., None]),
    ("squeeze", lambda: ops.squeeze(A[None, :, None]), A),
    ("concatenate", lambda: ops.concatenate([A, B], axis=-1), np.concatenate([A, B], -1)),
    ("stack", lambda: ops.stack([A, B], axis=1), np.stack([A, B], 1)),
    ("mean", lambda: ops.mean(A, axis=(0, 1), keepdims=True), A.mean((0, 1), keepdims=True)),
    ("sum", lambda: ops.sum(A, axis=0), A.sum(0)),
    ("max", lambda: ops.max(A, axis=1), A.max(1)),
    ("min", lambda: ops.min(A), A.min()),
    ("var", lambda: ops.var(A, axis=0), A.var(0)),
    ("std", lambda: ops.std(A), A.std()),
    ("argmax", lambda: ops.argmax(A, axis=1), A.argmax(1)),
    ("argmin", lambda: ops.argmin(A), A.argmin()),
    ("abs", lambda: ops.abs(A), np.abs(A)),
    ("exp", lambda: ops.exp(A), np.exp(A)),
    ("log", lambda: ops.log(P), np.log(P)),
    ("sqrt", lambda: ops.sqrt(P), np.sqrt(P)),
    ("square", lambda: ops.square(A), A * A),
    ("clip", lambda: ops.clip(A, -0.5, 0.5), np.clip(A, -0.5, 0.5)),
    ("where", lambda: ops.where(A > 0, A, B), np.where(A > 0, A, B)),
    ("cast", lambda: ops.cast(A * 10, "int32"), (A * 10).astype(np.int32)),
    ("ones", lambda: ops.ones((2, 3)), np.ones((2, 3))),
    ("zeros_like", lambda: ops.zeros_like(A), np.zeros_like(A)),
    ("ones_like", lambda: ops.ones_like(A), np.ones_like(A)),
    ("arange", lambda: ops.arange(1, 7, 2), np.arange(1, 7, 2)),
    ("linspace", lambda: ops.linspace(0, 1, 5), np.linspace(0, 1, 5)),
    ("sort", lambda: ops.sort(A, axis=0), np.sort(A, 0)),
    ("argsort", lambda: ops.argsort(A), np.argsort(A, kind="stable")),
    ("cumsum", lambda: ops.cumsum(A, axis=1), np.cumsum(A, 1)),
    ("cumsum_flat", lambda: ops.cumsum(A), np.cumsum(A)),
    ("tile", lambda: ops.tile(A, (2, 1, 3)), np.tile(A, (2, 1, 3))),
    ("repeat", lambda: ops.repeat(A, 2, axis=0), np.repeat(A, 2, 0)),
    ("pad", lambda: ops.pad(A, ((1, 0), (2, 1)), constant_values=5),
     np.pad(A, ((1, 0), (2, 1)), constant_values=5)),
    ("pad_reflect", lambda: ops.pad(A, ((1, 1), (2, 2)), mode="reflect"),
     np.pad(A, ((1, 1), (2, 2)), mode="reflect")),
    ("norm", lambda: ops.norm(A, axis=-1), np.linalg.norm(A, axis=-1)),
    ("norm_fro", lambda: ops.norm(A), np.linalg.norm(A)),
    ("norm_l1", lambda: ops.norm(A, ord=1, axis=0), np.linalg.norm(A, 1, axis=0)),
    ("logical_and", lambda: ops.logical_and(A > 0, B > 0), (A > 0) & (B > 0)),
    ("logical_or", lambda: ops.logical_or(A > 0, B > 0), (A > 0) | (B > 0)),
    ("logical_xor", lambda: ops.logical_xor(A > 0, B > 0), (A > 0) ^ (B > 0)),
    ("logical_not", lambda: ops.logical_not(A > 0), ~(A > 0)),
    ("equal", lambda: ops.equal(A, A[0]), A == A[0]),
    ("greater", lambda: ops.greater(A, B), A > B),
    ("less", lambda: ops.less(A, 0), A < 0),
    ("flip", lambda: ops.flip(A, axis=1), A[:, ::-1]),
    ("take", lambda: ops.take(A, np.array([[2, 0]]), axis=1), np.take(A, [[2, 0]], axis=1)),
    ("one_hot", lambda: ops.one_hot(np.array([0, 2, 5]), 4),
     np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])),
    ("split", lambda: ops.split(A, [1, 3], axis=1)[1], np.split(A, [1, 3], axis=1)[1]),
    ("prod", lambda: ops.prod(P, axis=0), P.prod(0)),
    ("logsumexp", lambda: ops.logsumexp(A, axis=1), np.log(np.exp(A).sum(1))),
    ("isnan", lambda: ops.isnan(np.array([1.0, np.nan])), [False, True]),
    ("isfinite", lambda: ops.isfinite(np.array([1.0, np.inf])), [True, False]),
    ("floor", lambda: ops.floor(A), np.floor(A)),
    ("round", lambda: ops.round(A * 10), np.round(A * 10)),
    ("mod", lambda: ops.mod(A, 0.7), np.mod(A, 0.7)),
    ("log2", lambda: ops.log2(P), np.log2(P)),
    ("outer", lambda: ops.outer(A[0], B[1]), np.outer(A[0], B[1])),
    ("tril", lambda: ops.tril(A, -1), np.tril(A, -1)),
    ("triu", lambda: ops.triu(A, 1), np.triu(A, 1)),
    ("diag_1d", lambda: ops.diag(A[0], 1), np.diag(A[0], 1)),
    ("diag_2d", lambda: ops.diag(A, -1), np.diag(A, -1)),
    ("trace", lambda: ops.trace(A, 1), np.trace(A, 1)),
]


@pytest.mark.parametrize("name,call,expected", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_values_match_numpy(name: str, call, expected) -> None:
    out = call()
    assert isinstance(out, sj.Tensor)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, rtol=1e-5, atol=1e-5)
    assert ops.shape(out) == np.shape(expected)


def test_top_k_matches_torch() -> None:
    x = np.array([[1.0, 5.0, 3.0, 5.0], [0.0, -1.0, 2.0, 1.0]], np.float32)
    values, indices = ops.top_k(x, 2)
    tv, ti = torch.topk(torch.tensor(x), 2)
    np.testing.assert_array_equal(values.numpy(), tv.numpy())
    np.testing.assert_array_equal(indices.numpy(), ti.numpy())
    with pytest.raises(ValueError, match="k must be"):
        ops.top_k(x, 5)


def test_convert_and_dtypes() -> None:
    assert ops.dtype(ops.convert_to_tensor([1.0, 2.0])) == "float32"
    assert ops.dtype(ops.convert_to_tensor([1, 2])) == "int32"
    assert ops.dtype(ops.convert_to_tensor(np.zeros(2))) == "float64"
    assert ops.dtype(ops.convert_to_tensor([1, 2], dtype="float16")) == "float16"
    t = sj.tensor([1.0], requires_grad=True)
    assert ops.convert_to_tensor(t) is t
    with pytest.raises(TypeError, match="cannot make a tensor"):
        ops.convert_to_tensor(["a", "b"])


def test_bad_axis_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="axis 2 is out of range for a 2-d"):
        ops.sum(A, axis=2)
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        ops.max_pool(np.zeros((1, 4, 4, 1)), 2, padding="full")


# differentiable functions: (name, keras fn, torch fn, inputs)
def _t(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


GRAD_CASES = [
    ("matmul", ops.matmul, torch.matmul, [A, B.T]),
    ("einsum", lambda a, b: ops.einsum("ij,kj->ik", a, b),
     lambda a, b: torch.einsum("ij,kj->ik", a, b), [A, B]),
    ("dot", ops.dot, lambda a, b: torch.tensordot(a, b, ([1], [1])).movedim(1, 1),
     [A, rng.normal(size=(2, 4, 5))]),
    ("divide", ops.divide, torch.div, [A, P]),
    ("sort", lambda a: ops.sort(a, axis=0), lambda a: torch.sort(a, 0).values, [A]),
    ("cumsum", lambda a: ops.cumsum(a, axis=0), lambda a: torch.cumsum(a, 0), [A]),
    ("top_k", lambda a: ops.top_k(a, 2)[0], lambda a: torch.topk(a, 2).values, [A]),
    ("std", lambda a: ops.std(a, axis=1), lambda a: a.std(1, unbiased=False), [A]),
    ("norm", lambda a: ops.norm(a, axis=0), lambda a: torch.linalg.norm(a, dim=0), [A]),
    ("tile", lambda a: ops.tile(a, (2, 2)), lambda a: a.repeat(2, 2), [A]),
    ("pad", lambda a: ops.pad(a, ((1, 2), (0, 1))),
     lambda a: torch.nn.functional.pad(a, (0, 1, 1, 2)), [A]),
    ("where", lambda a, b: ops.where(A > 0, a, b), lambda a, b: torch.where(
        torch.tensor(A > 0), a, b), [A, B]),
    ("tril", lambda a: ops.tril(a), torch.tril, [A]),
    ("diag", lambda a: ops.diag(a, 1), lambda a: torch.diag(a, 1), [A]),
    ("diag_1d", lambda a: ops.diag(a, -2), lambda a: torch.diag(a, -2), [A[0]]),
    ("outer", ops.outer, torch.outer, [A[0], B[1]]),
    ("take", lambda a: ops.take(a, np.array([2, 0, 2]), axis=1),
     lambda a: a[:, [2, 0, 2]], [A]),
    ("softmax", ops.softmax, lambda a: torch.softmax(a, -1), [A]),
    ("log_softmax", lambda a: ops.log_softmax(a, axis=0), lambda a: torch.log_softmax(a, 0),
     [A]),
    ("gelu", ops.gelu, lambda a: torch.nn.functional.gelu(a, approximate="tanh"), [A]),
    ("gelu_exact", lambda a: ops.gelu(a, approximate=False), torch.nn.functional.gelu, [A]),
    ("silu", ops.silu, torch.nn.functional.silu, [A]),
    ("leaky_relu", ops.leaky_relu, lambda a: torch.nn.functional.leaky_relu(a, 0.2), [A]),
    ("log_sigmoid", ops.log_sigmoid, torch.nn.functional.logsigmoid, [A]),
    ("bce_logits", lambda z: ops.binary_crossentropy((B > 0).astype(np.float32), z,
                                                     from_logits=True),
     lambda z: torch.nn.functional.binary_cross_entropy_with_logits(
         z, torch.tensor((B > 0).astype(np.float64)), reduction="none"), [A]),
    ("cce_logits", lambda z: ops.categorical_crossentropy(np.eye(4)[[0, 3, 1]], z,
                                                          from_logits=True),
     lambda z: torch.nn.functional.cross_entropy(z, torch.tensor([0, 3, 1]),
                                                 reduction="none"), [A]),
    ("scce_probs", lambda p: ops.sparse_categorical_crossentropy(np.array([0, 3, 1]), p),
     lambda p: torch.nn.functional.nll_loss(torch.log(p / p.sum(-1, keepdim=True)),
                                            torch.tensor([0, 3, 1]), reduction="none"), [P]),
]


@pytest.mark.parametrize("name,kfn,tfn,inputs", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_forward_and_gradients_match_torch(name: str, kfn, tfn, inputs) -> None:
    xs = [sj.tensor(np.asarray(x, np.float64), requires_grad=True) for x in inputs]
    ts = [_t(np.asarray(x, np.float64)) for x in inputs]
    out, ref = kfn(*xs), tfn(*ts)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-8)
    upstream = rng.normal(size=tuple(ref.shape))
    out.backward(sj.tensor(upstream))
    ref.backward(torch.tensor(upstream))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-8)


def test_gradcheck_composed_ops() -> None:
    x = sj.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    y = sj.tensor(rng.normal(size=(4, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: ops.einsum("ij,jk->ik", a, b), (x, y))
    assert gradcheck(lambda a: ops.cumsum(ops.sort(a, axis=1), axis=0), (x,))
    assert gradcheck(lambda a: ops.moments(a, axes=[0])[1], (x,))


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
def test_conv2d_matches_torch(padding: str, strides: int) -> None:
    x = rng.normal(size=(2, 7, 6, 3))
    k = rng.normal(size=(3, 3, 3, 4))
    xs, ks = sj.tensor(x, requires_grad=True), sj.tensor(k, requires_grad=True)
    out = ops.conv(xs, ks, strides=strides, padding=padding)
    xt, kt = _t(x.transpose(0, 3, 1, 2)), _t(k.transpose(3, 2, 0, 1))
    inp = xt
    if padding == "same":  # TensorFlow's rule: the odd extra pixel goes after
        pads = []
        for size in (6, 7):  # last dim first for F.pad
            total = max((-(-size // strides) - 1) * strides + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        inp = torch.nn.functional.pad(xt, pads)
    ref = torch.nn.functional.conv2d(inp, kt, stride=strides).permute(0, 2, 3, 1)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-8)
    g = rng.normal(size=ref.shape)
    out.backward(sj.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy().transpose(0, 2, 3, 1),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ks.grad.numpy(), kt.grad.numpy().transpose(2, 3, 1, 0),
                               rtol=1e-6, atol=1e-8)


def test_conv1d_and_depthwise_groups() -> None:
    x = rng.normal(size=(2, 9, 4))
    k = rng.normal(size=(3, 2, 6))  # 4 input channels in 2 groups
    out = ops.conv(x, k, dilation_rate=2)
    ref = torch.nn.functional.conv1d(torch.tensor(x.transpose(0, 2, 1)),
                                     torch.tensor(k.transpose(2, 1, 0)), dilation=2, groups=2)
    np.testing.assert_allclose(out.numpy(), ref.numpy().transpose(0, 2, 1), rtol=1e-6)


def test_pools_match_torch_and_same_average_excludes_padding() -> None:
    x = rng.normal(size=(1, 5, 5, 2))
    xt = torch.tensor(x.transpose(0, 3, 1, 2))
    out = ops.max_pool(x, 2)
    ref = torch.nn.functional.max_pool2d(xt, 2).permute(0, 2, 3, 1)
    np.testing.assert_allclose(out.numpy(), ref.numpy())
    out = ops.average_pool(x, 3, strides=2, padding="same")  # 5 -> 3, pad 1 each side
    ref = torch.nn.functional.avg_pool2d(xt, 3, 2, padding=1, count_include_pad=False)
    np.testing.assert_allclose(out.numpy(), ref.permute(0, 2, 3, 1).numpy(), rtol=1e-6)
    out = ops.max_pool(x, 3, strides=2, padding="same")
    ref = torch.nn.functional.max_pool2d(xt, 3, 2, padding=1)
    np.testing.assert_allclose(out.numpy(), ref.permute(0, 2, 3, 1).numpy())


def test_crossentropies_on_probabilities_clip_like_keras() -> None:
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    p = np.array([[0.0, 1.0], [0.5, 0.5]])
    out = ops.binary_crossentropy(y, p).numpy()
    eps = 1e-7
    expected = -(y * np.log(np.clip(p, eps, 1 - eps)) + (1 - y) * np.log(
        1 - np.clip(p, eps, 1 - eps)))
    np.testing.assert_allclose(out, expected, rtol=1e-4)
    cce = ops.categorical_crossentropy(y, p * 2).numpy()  # renormalised to sum 1
    np.testing.assert_allclose(cce, [-np.log(1 - eps), np.log(2)], rtol=1e-5)


def test_moments_and_activations_values() -> None:
    mean, var = ops.moments(A, axes=[0], keepdims=True)
    np.testing.assert_allclose(mean.numpy(), A.mean(0, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(var.numpy(), A.var(0, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(ops.relu(A).numpy(), np.maximum(A, 0))
    np.testing.assert_allclose(ops.sigmoid(A).numpy(), 1 / (1 + np.exp(-A)), rtol=1e-6)
    np.testing.assert_allclose(ops.hard_sigmoid(A).numpy(), np.clip(A / 6 + 0.5, 0, 1),
                               rtol=1e-6)


def test_layer_weights_enter_ops_with_their_gradient() -> None:
    dense = keras.layers.Dense(3, use_bias=False)
    dense.build((None, 4))
    kernel = dense.kernel  # Keras layout (4, 3), stored transposed by the nn layer
    x = rng.normal(size=(5, 4)).astype(np.float32)
    out = ops.matmul(x, kernel)
    np.testing.assert_allclose(out.numpy(), x @ kernel.numpy(), rtol=1e-5)
    g = rng.normal(size=(5, 3)).astype(np.float32)
    out.backward(sj.tensor(g))
    param = kernel.value
    grad = param.grad.numpy()
    expected = x.T @ g
    np.testing.assert_allclose(grad.T if grad.shape != expected.shape else grad, expected,
                               rtol=1e-5)
