"""Keras 3 layer options (issue 9): MultiHeadAttention(attention_axes), Conv1D/2DTranspose
(output_padding), GroupNormalization(axis), and the TextVectorization / StringLookup /
IntegerLookup options.

The differentiable layers are compared with computations written here from torch ops on the
same weights (outputs, input grads and weight grads under a random upstream gradient); the
text layers with expectations derived by hand from Keras 3's documented rules."""

import math

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras

torch = pytest.importorskip("torch")
L = keras.layers
RNG = np.random.default_rng(7)


def _close(a, b, tol=1e-4):
    a = a.numpy() if hasattr(a, "numpy") and not isinstance(a, np.ndarray) else a
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _backward_both(y, yt):
    """Backpropagate the same random upstream gradient through both outputs."""
    g = RNG.standard_normal(tuple(y.shape)).astype(np.float32)
    (y * sj.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()


# --------------------------------------------------------------------------- MultiHeadAttention

def _mha_weights(layer, c, heads, kd, out):
    """Random Keras-layout weights set on the layer; returned as torch leaves."""
    shapes = [(c, heads, kd), (heads, kd)] * 3 + [(heads, kd, out), (out,)]
    arrays = [(RNG.standard_normal(s) * 0.4).astype(np.float32) for s in shapes]
    layer.set_weights(arrays)
    return [torch.tensor(a, requires_grad=True) for a in arrays]


def _torch_mha_2d(q, k, v, w, mask=None):
    """Keras's 2-D attention over (rows, cols) of (B, H, W, C), written with einsum."""
    wq, bq, wk, bk, wv, bv, wo, bo = w
    qp = torch.einsum("bijc,cnh->bijnh", q, wq) + bq
    kp = torch.einsum("bklc,cnh->bklnh", k, wk) + bk
    vp = torch.einsum("bklc,cnh->bklnh", v, wv) + bv
    scores = torch.einsum("bijnh,bklnh->bnijkl", qp, kp) / math.sqrt(wq.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~torch.tensor(mask)[:, None], -1e9)
    b, n, i, j, kk, ll = scores.shape
    weights = torch.softmax(scores.reshape(b, n, i, j, kk * ll), -1).reshape(scores.shape)
    att = torch.einsum("bnijkl,bklnh->bijnh", weights, vp)
    return torch.einsum("bijnh,nho->bijo", att, wo) + bo, weights


def test_mha_2d_attention_axes_matches_torch_einsum():
    b, h, w, c, heads, kd = 2, 3, 4, 6, 2, 3
    q = RNG.standard_normal((b, h, w, c)).astype(np.float32)
    kv = RNG.standard_normal((b, 2, 5, c)).astype(np.float32)  # other spatial sizes
    mask = RNG.random((b, h, w, 2, 5)) > 0.3
    mask[..., 0, 0] = True  # every query sees something
    layer = L.MultiHeadAttention(heads, kd, attention_axes=(1, 2))
    layer.build([(None, h, w, c), (None, 2, 5, c)])
    wt = _mha_weights(layer, c, heads, kd, c)
    qs, vs = sj.tensor(q, requires_grad=True), sj.tensor(kv, requires_grad=True)
    y, scores = layer(qs, vs, attention_mask=mask, return_attention_scores=True)
    qt, vt = torch.tensor(q, requires_grad=True), torch.tensor(kv, requires_grad=True)
    yt, scores_t = _torch_mha_2d(qt, vt, vt, wt, mask)
    assert tuple(y.shape) == (b, h, w, c) and tuple(scores.shape) == (b, heads, h, w, 2, 5)
    _close(y, yt)
    _close(scores, scores_t)
    _backward_both(y, yt)
    _close(qs.grad, qt.grad)
    _close(vs.grad, vt.grad)
    # parameter grads: the query kernel (torch Linear layout) and the output bias
    _close(layer.query_dense.weight.grad.numpy().T.reshape(c, heads, kd), wt[0].grad)
    _close(layer.attention_output_dense.bias.grad, wt[7].grad)
    # the fast path (no scores) gives the same output; None attends over (1, 2) too
    _close(layer(q, kv, attention_mask=mask), yt)
    default = L.MultiHeadAttention(heads, kd)
    default.build([(None, h, w, c), (None, 2, 5, c)])
    default.set_weights(layer.get_weights())
    _close(default(q, kv, attention_mask=mask), yt)


def test_mha_attention_over_one_inner_axis_batches_the_other():
    b, t, u, c, heads, kd, vd, out = 2, 3, 4, 5, 3, 2, 4, 7
    q = RNG.standard_normal((b, t, u, c)).astype(np.float32)
    kv = RNG.standard_normal((b, t, 6, c)).astype(np.float32)
    layer = L.MultiHeadAttention(heads, kd, value_dim=vd, output_shape=out,
                                 attention_axes=-2)
    layer.build([(None, t, u, c), (None, t, 6, c)])
    shapes = [(c, heads, kd), (heads, kd), (c, heads, kd), (heads, kd), (c, heads, vd),
              (heads, vd), (heads, vd, out), (out,)]
    arrays = [(RNG.standard_normal(s) * 0.4).astype(np.float32) for s in shapes]
    layer.set_weights(arrays)
    wq, bq, wk, bk, wv, bv, wo, bo = [torch.tensor(a, requires_grad=True) for a in arrays]
    qs = sj.tensor(q, requires_grad=True)
    y, scores = layer(qs, kv, return_attention_scores=True)
    qt = torch.tensor(q, requires_grad=True)
    kvt = torch.tensor(kv)
    qp = torch.einsum("btuc,cnh->btunh", qt, wq) + bq
    kp = torch.einsum("btvc,cnh->btvnh", kvt, wk) + bk
    vp = torch.einsum("btvc,cnh->btvnh", kvt, wv) + bv
    weights = torch.softmax(torch.einsum("btunh,btvnh->btnuv", qp, kp) / math.sqrt(kd), -1)
    yt = torch.einsum("btuno,nop->btup",
                      torch.einsum("btnuv,btvno->btuno", weights, vp), wo) + bo
    assert tuple(scores.shape) == (b, t, heads, u, 6) and tuple(y.shape) == (b, t, u, out)
    _close(y, yt)
    _close(scores, weights)
    _backward_both(y, yt)
    _close(qs.grad, qt.grad)
    _close(layer.value_dense.weight.grad.numpy().T.reshape(c, heads, vd), wv.grad)
    assert layer.compute_output_shape  # symbolic shapes agree with the eager ones
    inp_q, inp_v = keras.Input((t, u, c)), keras.Input((t, 6, c))
    sym, sym_scores = layer(inp_q, inp_v, return_attention_scores=True)
    assert tuple(sym.shape) == (None, t, u, out)
    assert tuple(sym_scores.shape) == (None, t, heads, u, 6)


def test_mha_scores_and_mask_match_torch_multihead_attention():
    e, heads = 8, 4
    q = RNG.standard_normal((2, 5, e)).astype(np.float32)
    v = RNG.standard_normal((2, 6, e)).astype(np.float32)
    mask = RNG.random((2, 5, 6)) > 0.4
    mask[:, :, 0] = True
    layer = L.MultiHeadAttention(heads, e // heads)
    layer.build([(None, 5, e), (None, 6, e)])
    ws = [(RNG.standard_normal((e, e)) * 0.3).astype(np.float32) for _ in range(4)]
    bs = [(RNG.standard_normal(e) * 0.1).astype(np.float32) for _ in range(4)]
    kw = []
    for i in range(3):
        kw += [ws[i].reshape(e, heads, e // heads), bs[i].reshape(heads, e // heads)]
    layer.set_weights(kw + [ws[3].reshape(heads, e // heads, e), bs[3]])
    mha = torch.nn.MultiheadAttention(e, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(np.concatenate([w.T for w in ws[:3]])))
        mha.in_proj_bias.copy_(torch.tensor(np.concatenate(bs[:3])))
        mha.out_proj.weight.copy_(torch.tensor(ws[3].T))
        mha.out_proj.bias.copy_(torch.tensor(bs[3]))
    qs = sj.tensor(q, requires_grad=True)
    y, scores = layer(qs, v, attention_mask=mask, return_attention_scores=True)
    qt = torch.tensor(q, requires_grad=True)
    # torch's mask says where NOT to attend, per (batch * heads)
    tmask = torch.tensor(~mask).repeat_interleave(heads, 0)
    yt, wt = mha(qt, torch.tensor(v), torch.tensor(v), attn_mask=tmask,
                 average_attn_weights=False)
    _close(y, yt)
    _close(scores, wt)
    _backward_both(y, yt)
    _close(qs.grad, qt.grad)
    _close(layer.attention_output_dense.weight.grad, mha.out_proj.weight.grad)


def test_mha_causal_mask_equals_explicit_lower_triangle():
    q = RNG.standard_normal((2, 5, 6)).astype(np.float32)
    mask = RNG.random((2, 5, 5)) > 0.3
    mask[:, :, 0] = True  # every query keeps a key under the causal mask too
    layer = L.MultiHeadAttention(2, 3)
    causal, scores = layer(q, q, attention_mask=mask, use_causal_mask=True,
                           return_attention_scores=True)
    both = mask & np.tril(np.ones((5, 5), bool))
    _close(causal, layer(q, q, attention_mask=both))
    s = scores.numpy()
    assert np.all(s[np.broadcast_to(~both[:, None], s.shape)] < 1e-6)  # nothing leaks
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-5)


def test_mha_query_value_key_masks_fold_into_the_attention_mask():
    q = RNG.standard_normal((2, 4, 6)).astype(np.float32)
    v = RNG.standard_normal((2, 5, 6)).astype(np.float32)
    qm = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    vm = np.array([[1, 1, 1, 1, 0], [1, 0, 1, 0, 1]], bool)
    km = np.array([[1, 0, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
    extra = RNG.random((2, 4, 5)) > 0.2
    extra[:, :, 0] = True
    layer = L.MultiHeadAttention(2, 3)
    explicit = qm[:, :, None] & vm[:, None, :] & km[:, None, :] & extra
    _, want = layer(q, v, attention_mask=explicit, return_attention_scores=True)
    _, got = layer(q, v, attention_mask=extra, query_mask=qm, value_mask=vm, key_mask=km,
                   return_attention_scores=True)
    _close(got, want)
    blocked = np.broadcast_to(~(vm[:, None, :] & km[:, None, :])[:, None], got.shape)
    assert np.all(got.numpy()[blocked & np.broadcast_to(qm[:, None, :, None], got.shape)]
                  < 1e-6)  # masked keys get no weight in the unmasked query rows


def test_mha_attention_axes_errors_and_config():
    with pytest.raises(ValueError, match="attention_axes"):
        L.MultiHeadAttention(2, 2, attention_axes=(3,))(np.zeros((1, 2, 3, 4), np.float32),
                                                         np.zeros((1, 2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="non-attention axes"):
        L.MultiHeadAttention(2, 2, attention_axes=(2,))(np.zeros((1, 2, 3, 4), np.float32),
                                                         np.zeros((1, 5, 3, 4), np.float32))
    layer = L.MultiHeadAttention(2, 3, attention_axes=(1, 2))
    clone = L.MultiHeadAttention.from_config(layer.get_config())
    assert clone.attention_axes == (1, 2)


# --------------------------------------------------------------------------- Conv transpose

def _keras_length(n, k, s, d, padding, op):
    """Keras 3's deconv output length (keras.src.utils.conv_utils, from its docs)."""
    k = k + (k - 1) * (d - 1)
    if op is None:
        return n * s + max(k - s, 0) if padding == "valid" else n * s
    pad = k // 2 if padding == "same" else 0
    return (n - 1) * s + k - 2 * pad + op


def _window(full, axis, n, k, s, d, padding, op):
    """Keras's output window of the full transposed conv: TensorFlow's SAME split (the
    smaller half of the crop first), zeros past the end."""
    length = _keras_length(n, k, s, d, padding, op)
    k_eff = d * (k - 1) + 1
    start = max((n - 1) * s + k_eff - length, 0) // 2 if padding == "same" else 0
    short = start + length - full.shape[axis]
    if short > 0:
        pad = [0, 0] * (full.ndim - axis - 1) + [0, short]
        full = torch.nn.functional.pad(full, pad)
    return full.narrow(axis, start, length)


CASES_2D = [  # kernel, strides, dilation, padding, output_padding
    ((3, 3), (2, 2), (1, 1), "valid", (1, 1)),
    ((3, 2), (2, 3), (1, 1), "same", (1, 2)),
    ((4, 4), (2, 2), (1, 1), "same", (0, 1)),
    ((2, 2), (3, 3), (1, 1), "valid", None),   # k < s: Keras gives n * s, torch n*s-1
    ((3, 3), (2, 2), (2, 1), "same", (1, 0)),
    ((5, 1), (3, 2), (1, 1), "same", (2, 1)),
    ((1, 3), (2, 2), (1, 1), "valid", (1, 0)),
]


@pytest.mark.parametrize("k,s,d,padding,op", CASES_2D)
def test_conv2d_transpose_output_padding_matches_torch(k, s, d, padding, op):
    n = (4, 5)
    x = RNG.standard_normal((2,) + n + (3,)).astype(np.float32)
    layer = L.Conv2DTranspose(4, k, strides=s, padding=padding, output_padding=op,
                              dilation_rate=d)
    layer.build((None,) + n + (3,))
    kernel = RNG.standard_normal(k + (4, 3)).astype(np.float32)
    bias = RNG.standard_normal(4).astype(np.float32)
    layer.set_weights([kernel, bias])
    kt = torch.tensor(kernel.transpose(3, 2, 0, 1), requires_grad=True)  # (in, out, kh, kw)
    bt = torch.tensor(bias, requires_grad=True)
    xs, xt = sj.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = layer(xs)
    full = torch.nn.functional.conv_transpose2d(xt.permute(0, 3, 1, 2), kt, stride=s,
                                                dilation=d)
    ops = op or (None, None)
    for axis in (2, 3):
        i = axis - 2
        full = _window(full, axis, n[i], k[i], s[i], d[i], padding, ops[i])
    yt = (full + bt[:, None, None]).permute(0, 2, 3, 1)
    expected = tuple(_keras_length(n[i], k[i], s[i], d[i], padding, ops[i]) for i in (0, 1))
    assert tuple(y.shape) == (2,) + expected + (4,)
    assert layer.compute_output_shape((None,) + n + (3,)) == (None,) + expected + (4,)
    _close(y, yt)
    _backward_both(y, yt)
    _close(xs.grad, xt.grad)
    _close(layer.conv.weight.grad, kt.grad)
    _close(layer.conv.bias.grad, bt.grad)


def test_conv_transpose_valid_output_padding_is_torch_module():
    """'valid' with output_padding is exactly torch's ConvTranspose(output_padding=p)."""
    x = RNG.standard_normal((2, 7, 3)).astype(np.float32)
    layer = L.Conv1DTranspose(5, 3, strides=3, output_padding=2)
    layer.build((None, 7, 3))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 5, 3)
    mod = torch.nn.ConvTranspose1d(3, 5, 3, stride=3, output_padding=2)
    with torch.no_grad():
        mod.weight.copy_(torch.tensor(kernel.transpose(2, 1, 0)))
        mod.bias.copy_(torch.tensor(bias))
    xs, xt = sj.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = layer(xs), mod(xt.permute(0, 2, 1)).permute(0, 2, 1)
    assert tuple(y.shape) == (2, 6 * 3 + 3 + 2, 5)
    _close(y, yt)
    _backward_both(y, yt)
    _close(xs.grad, xt.grad)
    _close(layer.conv.weight.grad, mod.weight.grad)
    # 'same', even kernel: Keras crops k // 2 from each side, as torch's padding does
    layer = L.Conv2DTranspose(2, 4, strides=2, padding="same", output_padding=0)
    x2 = RNG.standard_normal((1, 3, 5, 3)).astype(np.float32)
    layer.build((None, 3, 5, 3))
    kernel, bias = layer.get_weights()
    mod = torch.nn.ConvTranspose2d(3, 2, 4, stride=2, padding=2)
    with torch.no_grad():
        mod.weight.copy_(torch.tensor(kernel.transpose(3, 2, 0, 1)))
        mod.bias.copy_(torch.tensor(bias))
    _close(layer(x2), mod(torch.tensor(x2).permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
    assert layer(x2).shape[1:3] == (4, 8)


@pytest.mark.parametrize("k,s,padding,op", [(3, 2, "same", 1), (4, 3, "valid", 2),
                                            (2, 2, "same", None), (1, 4, "same", 3)])
def test_conv1d_transpose_output_padding_matches_torch(k, s, padding, op):
    n = 6
    x = RNG.standard_normal((2, n, 3)).astype(np.float32)
    layer = L.Conv1DTranspose(2, k, strides=s, padding=padding, output_padding=op)
    layer.build((None, n, 3))
    kernel, bias = layer.get_weights()
    kt = torch.tensor(kernel.transpose(2, 1, 0), requires_grad=True)
    bt = torch.tensor(RNG.standard_normal(2).astype(np.float32), requires_grad=True)
    layer.set_weights([kernel, bt.detach().numpy()])
    xs, xt = sj.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = layer(xs)
    full = torch.nn.functional.conv_transpose1d(xt.permute(0, 2, 1), kt, stride=s)
    yt = (_window(full, 2, n, k, s, 1, padding, op) + bt[:, None]).permute(0, 2, 1)
    assert y.shape[1] == _keras_length(n, k, s, 1, padding, op)
    _close(y, yt)
    _backward_both(y, yt)
    _close(xs.grad, xt.grad)
    _close(layer.conv.weight.grad, kt.grad)


def test_conv_transpose_output_padding_errors_and_config():
    with pytest.raises(ValueError, match="smaller than the strides"):
        L.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="output_padding must be"):
        L.Conv1DTranspose(2, 3, strides=2, output_padding=(1, 1))
    layer = L.Conv2DTranspose(2, 3, strides=(2, 3), output_padding=(1, 2), padding="same")
    clone = L.Conv2DTranspose.from_config(layer.get_config())
    assert clone.output_padding == (1, 2)
    model = keras.Sequential([keras.Input((4, 4, 3)), L.Conv2D(2, 3, padding="same"),
                              L.Conv2DTranspose(2, 3, strides=2, output_padding=1),
                              L.Conv2DTranspose(1, 2, strides=2, padding="same",
                                                output_padding=1)])
    # (4 - 1) * 2 + 3 + 1 = 10, then (10 - 1) * 2 + 2 % 2 + 1 = 19
    assert model.output_shape == (None, 19, 19, 1)
    assert model.predict(np.zeros((1, 4, 4, 3), np.float32), verbose=0).shape == (1, 19, 19, 1)


# --------------------------------------------------------------------------- GroupNormalization

def _gn_pair(groups, c, axis, shape):
    layer = L.GroupNormalization(groups=groups, axis=axis)
    layer.build((None,) + shape[1:])
    gamma = RNG.standard_normal(c).astype(np.float32)
    beta = RNG.standard_normal(c).astype(np.float32)
    layer.set_weights([gamma, beta])
    gn = torch.nn.GroupNorm(c if groups == -1 else groups, c, eps=1e-3)
    with torch.no_grad():
        gn.weight.copy_(torch.tensor(gamma))
        gn.bias.copy_(torch.tensor(beta))
    return layer, gn


@pytest.mark.parametrize("shape,axis,groups,to_torch", [
    ((2, 6, 4, 5), 1, 3, (0, 1, 2, 3)),        # channels-first images
    ((2, 4, 7), 1, 2, (0, 1, 2)),              # channels-first sequences
    ((2, 3, 6, 5), 2, 2, (0, 2, 1, 3)),        # channels in the middle
    ((2, 3, 6, 5), -2, -1, (0, 2, 1, 3)),      # negative axis; groups=-1: instance norm
    ((3, 6), 1, 3, (0, 1)),                    # plain features
])
def test_group_normalization_axes_match_torch(shape, axis, groups, to_torch):
    c = shape[axis]
    layer, gn = _gn_pair(groups, c, axis, shape)
    x = RNG.standard_normal(shape).astype(np.float32) * 2 + 1
    xs, xt = sj.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = layer(xs)
    back = tuple(np.argsort(to_torch))
    yt = gn(xt.permute(*to_torch)).permute(*back)
    _close(y, yt)
    _backward_both(y, yt)
    _close(xs.grad, xt.grad)
    _close(layer.gn.weight.grad, gn.weight.grad)
    _close(layer.gn.bias.grad, gn.bias.grad)


def test_group_normalization_axis1_in_a_model_and_errors():
    layer = L.GroupNormalization(groups=2, axis=1)
    conv = L.Conv2D(4, 3, padding="same")
    model = keras.Sequential([keras.Input((4, 5, 6)), conv, layer])
    x = RNG.standard_normal((2, 4, 5, 6)).astype(np.float32)
    out = model.predict(x, verbose=0)
    # axis 1 is the rows of the channels-last conv output: normalized over (rows, cols, ch)
    h = conv(x).numpy()
    g = h.reshape(2, 2, 2, 5, 4)
    ref = (g - g.mean((2, 3, 4), keepdims=True)) / np.sqrt(g.var((2, 3, 4), keepdims=True)
                                                           + 1e-3)
    _close(out, ref.reshape(h.shape))
    with pytest.raises(ValueError, match="divisible"):
        L.GroupNormalization(groups=4, axis=1)(np.zeros((1, 6, 2), np.float32))
    with pytest.raises(ValueError, match="non-batch axis"):
        L.GroupNormalization(groups=1, axis=0)(np.zeros((1, 6, 2), np.float32))
    assert L.GroupNormalization.from_config(layer.get_config()).axis == 1


# --------------------------------------------------------------------------- TextVectorization

def _ids(layer, data):
    return layer(data).numpy().tolist()


def test_text_vectorization_ngrams_int_and_tuple():
    vocab = ["a", "b", "a b", "a b c"]
    two = L.TextVectorization(ngrams=2, vocabulary=vocab)
    # unigrams first, then bigrams; "c" and "b c" are unknown (1)
    assert _ids(two, ["a b c"]) == [[2, 3, 1, 4, 1]]
    only_pairs = L.TextVectorization(ngrams=(2,), vocabulary=vocab)
    assert _ids(only_pairs, ["a b c", "a"]) == [[4, 1], [0, 0]]
    ends = L.TextVectorization(ngrams=(1, 3), vocabulary=vocab)
    assert _ids(ends, ["A, b C!"]) == [[2, 3, 1, 5]]
    learnt = L.TextVectorization(ngrams=2)
    learnt.adapt(["x y", "y x y"])
    # counts: y 3, x 2, "x y" 2, "y x" 1; ties ("x", "x y") high to low
    assert learnt.get_vocabulary() == ["", "[UNK]", "y", "x y", "x", "y x"]
    for bad in (0, (0, 2), "2", 1.5):
        with pytest.raises(ValueError, match="ngrams"):
            L.TextVectorization(ngrams=bad)


def test_text_vectorization_adapt_order_and_sequence_length():
    tv = L.TextVectorization(output_sequence_length=3)
    tv.adapt(["b a", "a c b", "d"])
    # a and b twice, c and d once; ties broken by the token, high to low
    assert tv.get_vocabulary() == ["", "[UNK]", "b", "a", "d", "c"]
    assert tv.get_vocabulary(include_special_tokens=False) == ["b", "a", "d", "c"]
    assert tv.vocabulary_size() == 6
    assert _ids(tv, ["a b a b", "c", ""]) == [[3, 2, 3], [5, 0, 0], [0, 0, 0]]
    free = L.TextVectorization(vocabulary=["b", "a"])
    assert _ids(free, ["a q", "b b b", "a"]) == [[3, 1, 0], [2, 2, 2], [3, 0, 0]]
    capped = L.TextVectorization(max_tokens=4)
    capped.adapt(["z z z y y x"])
    assert capped.get_vocabulary() == ["", "[UNK]", "z", "y"]
    with pytest.raises(ValueError, match="output_sequence_length"):
        L.TextVectorization(output_mode="multi_hot", output_sequence_length=3)


def test_text_vectorization_bag_modes_and_pad_to_max_tokens():
    count = L.TextVectorization(output_mode="count", vocabulary=["x", "y"])
    assert count.get_vocabulary() == ["[UNK]", "x", "y"]  # no "" outside "int" mode
    assert _ids(count, ["x y x z", ""]) == [[1, 2, 1], [0, 0, 0]]
    padded = L.TextVectorization(max_tokens=6, output_mode="multi_hot", pad_to_max_tokens=True,
                                 vocabulary=["x", "y"])
    assert _ids(padded, ["x y x z"]) == [[1, 1, 1, 0, 0, 0]]
    assert padded.compute_output_shape((None,)) == (None, 6)
    with pytest.raises(ValueError, match="pad_to_max_tokens"):
        L.TextVectorization(output_mode="count", pad_to_max_tokens=True)
    with pytest.raises(ValueError, match="max_tokens"):
        L.TextVectorization(max_tokens=3, vocabulary=["a", "b"])  # "", "[UNK]", a, b


def test_text_vectorization_tf_idf_adapted_and_given():
    tv = L.TextVectorization(output_mode="tf_idf")
    tv.adapt(["a a b", "b c", "c"])
    # counts a 2, b 2, c 2 -> c, b, a; documents holding: a 1, b 2, c 2 of 3
    assert tv.get_vocabulary() == ["[UNK]", "c", "b", "a"]
    idf_c = idf_b = math.log(1 + 3 / (1 + 2))
    idf_a = math.log(1 + 3 / (1 + 1))
    oov = (idf_c + idf_b + idf_a) / 3
    np.testing.assert_allclose(tv(["a b z z"]).numpy(), [[2 * oov, 0, idf_b, idf_a]],
                               rtol=1e-6)
    given = L.TextVectorization(output_mode="tf_idf", vocabulary=["x", "y"],
                                idf_weights=[0.5, 1.5], max_tokens=5, pad_to_max_tokens=True)
    np.testing.assert_allclose(given(["x x q", "y"]).numpy(),
                               [[1.0, 1.0, 0, 0, 0], [0, 0, 1.5, 0, 0]])
    with pytest.raises(ValueError, match="idf_weights"):
        L.TextVectorization(output_mode="tf_idf", vocabulary=["x"])
    with pytest.raises(ValueError, match="idf_weights"):
        L.TextVectorization(vocabulary=["x"], idf_weights=[1.0])
    clone = L.TextVectorization.from_config(tv.get_config())
    np.testing.assert_allclose(clone(["a b z z"]).numpy(), tv(["a b z z"]).numpy(), rtol=1e-6)


def test_text_vectorization_split_and_standardize_options():
    chars = L.TextVectorization(split="character", standardize=None, vocabulary=["a", "b"])
    assert _ids(chars, ["abca", "B"]) == [[2, 3, 1, 2], [1, 0, 0, 0]]
    dashes = L.TextVectorization(split=lambda s: s.split("-"), standardize="lower",
                                 vocabulary=["a", "b"])
    assert _ids(dashes, ["A-b-C"]) == [[2, 3, 1]]
    whole = L.TextVectorization(split=None, standardize=None, vocabulary=["a b"])
    assert _ids(whole, ["a b", "a"]) == [2, 1]  # one token per string, input's shape
    assert _ids(whole, [["a b"], ["a"]]) == [[2], [1]]
    lower = L.TextVectorization(standardize="lower", vocabulary=["hi!"])
    assert _ids(lower, ["HI! hi"]) == [[2, 1]]
    strip = L.TextVectorization(standardize="strip_punctuation", vocabulary=["Hi"])
    assert _ids(strip, ["Hi! hi"]) == [[2, 1]]
    raw = L.TextVectorization(standardize=None, vocabulary=["Hi!"])
    assert _ids(raw, ["Hi! hi!"]) == [[2, 1]]
    custom = L.TextVectorization(standardize=lambda s: s.replace("x", "y"), vocabulary=["y"])
    assert _ids(custom, ["x y z"]) == [[2, 2, 1]]
    with pytest.raises(ValueError, match="standardize"):
        L.TextVectorization(standardize="upper")
    with pytest.raises(ValueError, match="split"):
        L.TextVectorization(split="comma")
    with pytest.raises(ValueError, match="last dimension of 1"):
        L.TextVectorization(vocabulary=["a"])([["a", "b"]])


def test_vocabulary_argument_rules():
    with_specials = L.TextVectorization(vocabulary=["", "[UNK]", "a"])
    assert with_specials.get_vocabulary() == ["", "[UNK]", "a"]
    for bad, message in ((["a", ""], "mask token"), (["a", "a"], "repeats"), ([], "empty")):
        with pytest.raises(ValueError, match=message):
            L.TextVectorization(vocabulary=bad)
    with pytest.raises(ValueError, match="cannot adapt"):
        with_specials.adapt(["a b"])
    sl = L.StringLookup(vocabulary=["[UNK]", "p", "q"])
    assert sl.get_vocabulary() == ["[UNK]", "p", "q"]
    with pytest.raises(ValueError, match="OOV token"):
        L.StringLookup(vocabulary=["p", "[UNK]"], invert=True)


# --------------------------------------------------------------------------- String/IntegerLookup

def test_string_lookup_output_modes():
    vocab = ["a", "b", "c"]
    one = L.StringLookup(vocabulary=vocab, output_mode="one_hot")
    assert _ids(one, ["a", "z"]) == [[0, 1, 0, 0], [1, 0, 0, 0]]
    assert _ids(one, [["c"], ["b"]]) == [[0, 0, 0, 1], [0, 0, 1, 0]]  # last dim 1: encoded
    assert np.shape(_ids(one, [["a", "b"]])) == (1, 2, 4)  # else a new axis
    assert one.compute_output_shape((None, 1)) == (None, 4)
    assert one.compute_output_shape((None, 2)) == (None, 2, 4)
    batch = [["a", "a", "z"], ["c", "b", "c"]]
    assert _ids(L.StringLookup(vocabulary=vocab, output_mode="multi_hot"), batch) == \
        [[1, 1, 0, 0], [0, 0, 1, 1]]
    count = L.StringLookup(vocabulary=vocab, output_mode="count")
    assert _ids(count, batch) == [[1, 2, 0, 0], [0, 0, 1, 2]]
    assert _ids(count, ["a", "b", "a"]) == [0, 2, 1, 0]  # a 1-D input is one sample
    tfidf = L.StringLookup(output_mode="tf_idf")
    tfidf.adapt([["a", "b"], ["a", "a"], ["c", "b"]])  # each row one document
    assert tfidf.get_vocabulary() == ["[UNK]", "a", "b", "c"]
    idf_a = idf_b = math.log(1 + 3 / 3)
    idf_c = math.log(1 + 3 / 2)
    np.testing.assert_allclose(tfidf([["a", "a", "q"]]).numpy(),
                               [[(idf_a + idf_b + idf_c) / 3, 2 * idf_a, 0, 0]], rtol=1e-6)
    wide = L.StringLookup(vocabulary=vocab, output_mode="count", max_tokens=7,
                          pad_to_max_tokens=True)
    assert _ids(wide, [["b", "b"]]) == [[0, 0, 2, 0, 0, 0, 0]]


def test_string_lookup_mask_oov_and_invert():
    masked = L.StringLookup(mask_token="", vocabulary=["a"])
    assert masked.get_vocabulary() == ["", "[UNK]", "a"]
    assert _ids(masked, ["", "a", "q"]) == [0, 2, 1]
    hot = L.StringLookup(mask_token="", vocabulary=["a"], output_mode="multi_hot")
    assert hot.get_vocabulary() == ["[UNK]", "a"]  # no mask slot outside "int"
    assert _ids(hot, [["", "a", "q"], ["", "", ""]]) == [[1, 1], [0, 0]]  # mask dropped
    two = L.StringLookup(mask_token="", num_oov_indices=2, vocabulary=["a"])
    out = two(np.array(["a", "p", "q", "p", ""])).numpy()
    assert out[0] == 3 and out[4] == 0 and set(out[1:4]) <= {1, 2} and out[1] == out[3]
    strict = L.StringLookup(num_oov_indices=0, vocabulary=["a", "b"])
    assert _ids(strict, ["b", "a"]) == [1, 0]
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        strict(np.array(["c"]))
    inv = L.StringLookup(vocabulary=["a", "b"], mask_token="", invert=True)
    assert inv(np.array([[0, 1, 2], [3, 7, -1]])).tolist() == [["", "[UNK]", "a"],
                                                                ["b", "[UNK]", "[UNK]"]]
    with pytest.raises(ValueError, match="invert"):
        L.StringLookup(invert=True, output_mode="multi_hot")
    with pytest.raises(ValueError, match="max_tokens"):
        L.StringLookup(max_tokens=1)
    with pytest.raises(ValueError, match="num_oov_indices"):
        L.StringLookup(num_oov_indices=-1)


def test_integer_lookup_options():
    il = L.IntegerLookup()
    il.adapt(np.array([3, 1, 3, 1, 2]))
    assert il.get_vocabulary() == [-1, 3, 1, 2]  # 3 and 1 tie: high to low
    buckets = L.IntegerLookup(num_oov_indices=3, vocabulary=[10, 20])
    # unknown t goes to bucket t mod 3 (Keras's floormod), vocabulary after the 3 OOV ids
    assert _ids(buckets, [10, 20, 7, 8, 9]) == [3, 4, 1, 2, 0]
    masked = L.IntegerLookup(num_oov_indices=3, vocabulary=[10, 20], mask_token=0)
    assert masked.get_vocabulary() == [0, -1, -1, -1, 10, 20]
    assert _ids(masked, [0, 10, 20, 7, 8, 9]) == [0, 4, 5, 2, 3, 1]
    inv = L.IntegerLookup(vocabulary=[10, 20], mask_token=0, invert=True)
    back = inv(np.array([0, 1, 2, 3, 9]))
    assert back.numpy().tolist() == [0, -1, 10, 20, -1]
    multi = L.IntegerLookup(vocabulary=[5, 6], output_mode="multi_hot")
    assert _ids(multi, [[6, 6], [9, 5]]) == [[0, 0, 1], [1, 1, 0]]
    tfidf = L.IntegerLookup(output_mode="tf_idf", vocabulary=[5, 6], idf_weights=[2.0, 4.0])
    assert _ids(tfidf, [[6, 6, 1]]) == [[3.0, 0.0, 8.0]]  # OOV weight: the mean, 3


def test_adapt_from_an_iterable_of_batches_and_one_hot_text():
    tv = L.TextVectorization()
    tv.adapt(iter([np.array(["a b", "b"]), np.array(["c b"])]))
    assert tv.get_vocabulary() == ["", "[UNK]", "b", "c", "a"]
    sl = L.StringLookup(output_mode="tf_idf")
    # from an iterable, each 1-D batch is one document (2 documents here)
    sl.adapt(iter([["a", "b", "a"], ["b"], ["c"]]), steps=2)
    assert sl.get_vocabulary() == ["[UNK]", "b", "a"]
    idf_b, idf_a = math.log(1 + 2 / 3), math.log(1 + 2 / 2)
    np.testing.assert_allclose(sl.idf_weights, [(idf_a + idf_b) / 2, idf_b, idf_a], rtol=1e-6)
    one = L.TextVectorization(output_mode="one_hot", split=None, vocabulary=["a b", "c"])
    assert _ids(one, ["a b", "c", "z"]) == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="same number of tokens"):
        L.TextVectorization(output_mode="one_hot", vocabulary=["a"])(["a a", "a"])


def test_vocabulary_from_a_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("earth\nwind\nand\nfire\n\n", encoding="utf-8")
    tv = L.TextVectorization(vocabulary=str(path), output_sequence_length=4)
    assert tv.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    assert _ids(tv, ["fire and water"]) == [[5, 4, 1, 0]]
    ints = tmp_path / "ints.txt"
    ints.write_text("7\n3\n", encoding="utf-8")
    assert _ids(L.IntegerLookup(vocabulary=ints), [3, 7, 5]) == [2, 1, 0]
    with pytest.raises(ValueError, match="does not exist"):
        L.StringLookup(vocabulary=str(tmp_path / "missing.txt"))
