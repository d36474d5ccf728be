"""The Keras 3 layers added for issue 9, each compared with the torch.nn computation on the
same weights (outputs, input grads and weight grads under a random upstream gradient), or
with Keras's documented shapes where torch has no equivalent."""

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras

torch = pytest.importorskip("torch")
L = keras.layers
RNG = np.random.default_rng(0)


def _run_both(layer, x, torch_fn, inputs_more=()):
    """Output and input grad of a shenjing layer and of torch_fn(x_torch) (channels-last)."""
    xs = sj.tensor(x, requires_grad=True)
    y = layer(xs, *[sj.tensor(m) for m in inputs_more])
    g = RNG.standard_normal(tuple(y.shape)).astype(np.float32)
    (y * sj.tensor(g)).sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_fn(xt)
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    return layer


@pytest.mark.parametrize("strides,padding,k", [(2, "same", 3), (2, "valid", 3), (1, "same", 4),
                                               (3, "same", 2), (2, "same", 4)])
def test_conv2d_transpose_matches_torch(strides, padding, k):
    x = RNG.standard_normal((2, 5, 4, 3)).astype(np.float32)
    layer = L.Conv2DTranspose(4, k, strides=strides, padding=padding)
    layer.build((None, 5, 4, 3))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (k, k, 4, 3)
    kt = torch.tensor(kernel.transpose(3, 2, 0, 1), requires_grad=True)
    bt = torch.tensor(RNG.standard_normal(4).astype(np.float32), requires_grad=True)
    layer.set_weights([kernel, bt.detach().numpy()])

    def ref(xt):
        extra = max(strides - k, 0) if padding == "same" else 0  # k < s: zeros + bias
        y = torch.nn.functional.conv_transpose2d(xt.permute(0, 3, 1, 2), kt, bt, stride=strides,
                                                 output_padding=extra)
        if padding == "same":  # TensorFlow's crop: the smaller half first
            for axis, n in ((2, 5), (3, 4)):
                lo = (y.shape[axis] - n * strides) // 2
                y = y.narrow(axis, lo, n * strides)
        return y.permute(0, 2, 3, 1)

    _run_both(layer, x, ref)
    assert layer.compute_output_shape((None, 5, 4, 3))[1:3] == (
        (5 * strides, 4 * strides) if padding == "same" else (4 * strides + k, 3 * strides + k))


def test_conv1d_transpose_grads_match_torch():
    x = RNG.standard_normal((2, 6, 3)).astype(np.float32)
    layer = L.Conv1DTranspose(5, 3, strides=2)
    layer.build((None, 6, 3))
    kernel, bias = layer.get_weights()
    kt = torch.tensor(kernel.transpose(2, 1, 0), requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    _run_both(layer, x, lambda xt: torch.nn.functional.conv_transpose1d(
        xt.permute(0, 2, 1), kt, bt, stride=2).permute(0, 2, 1))
    np.testing.assert_allclose(layer.conv.weight.grad.numpy(), kt.grad.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_padding_cropping_shapes_and_values():
    x = RNG.standard_normal((2, 4, 5, 3)).astype(np.float32)
    y = L.ZeroPadding2D(((1, 2), (3, 0)))(x).numpy()
    assert y.shape == (2, 7, 8, 3)
    np.testing.assert_array_equal(y[:, 1:5, 3:8], x)
    assert np.all(y[:, 0] == 0) and np.all(y[:, :, :3] == 0)
    z = L.Cropping2D(((1, 0), (2, 1)))(x).numpy()
    np.testing.assert_array_equal(z, x[:, 1:, 2:4])
    s = RNG.standard_normal((2, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(L.Cropping1D((1, 2))(s).numpy(), s[:, 1:4])
    np.testing.assert_array_equal(L.ZeroPadding1D(2)(s).numpy()[:, 2:8], s)
    _run_both(L.ZeroPadding1D((1, 3)), s,
              lambda t: torch.nn.functional.pad(t, (0, 0, 1, 3)))
    with pytest.raises(ValueError, match="cropping"):
        L.Cropping1D((3, 3))(s)


def test_upsampling_and_repeat_vector_match_torch():
    x = RNG.standard_normal((2, 3, 4, 2)).astype(np.float32)
    _run_both(L.UpSampling2D((2, 3)), x, lambda t: torch.nn.functional.interpolate(
        t.permute(0, 3, 1, 2), scale_factor=(2, 3), mode="nearest").permute(0, 2, 3, 1))
    _run_both(L.UpSampling2D(2, interpolation="bilinear"), x,
              lambda t: torch.nn.functional.interpolate(
                  t.permute(0, 3, 1, 2), scale_factor=2, mode="bilinear",
                  align_corners=False).permute(0, 2, 3, 1))
    s = RNG.standard_normal((2, 4, 3)).astype(np.float32)
    _run_both(L.UpSampling1D(3), s, lambda t: t.repeat_interleave(3, dim=1))
    v = RNG.standard_normal((2, 5)).astype(np.float32)
    _run_both(L.RepeatVector(4), v, lambda t: t.unsqueeze(1).expand(2, 4, 5))


def test_group_normalization_matches_torch():
    x = RNG.standard_normal((3, 4, 5, 6)).astype(np.float32)
    layer = L.GroupNormalization(groups=3)
    layer.build((None, 4, 5, 6))
    gamma = RNG.standard_normal(6).astype(np.float32)
    beta = RNG.standard_normal(6).astype(np.float32)
    layer.set_weights([gamma, beta])
    gn = torch.nn.GroupNorm(3, 6, eps=1e-3)
    with torch.no_grad():
        gn.weight.copy_(torch.tensor(gamma))
        gn.bias.copy_(torch.tensor(beta))
    _run_both(layer, x, lambda t: gn(t.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
    np.testing.assert_allclose(layer.gn.weight.grad.numpy(), gn.weight.grad.numpy(),
                               rtol=1e-4, atol=1e-4)


def test_multi_head_attention_matches_torch():
    e, heads = 8, 2
    q = RNG.standard_normal((2, 5, e)).astype(np.float32)
    v = RNG.standard_normal((2, 6, e)).astype(np.float32)
    layer = L.MultiHeadAttention(num_heads=heads, key_dim=e // heads)
    ws = RNG.standard_normal((4, e, e)).astype(np.float32) * 0.3
    bs = RNG.standard_normal((4, e)).astype(np.float32) * 0.1
    layer.build([(None, 5, e), (None, 6, e)])
    names = [w.name for w in layer.weights]
    assert names[:2] == ["query/kernel", "query/bias"] and layer.weights[0].shape == (e, 2, 4)
    keras_weights = []
    for i in range(3):
        keras_weights += [ws[i].reshape(e, heads, e // heads), bs[i].reshape(heads, e // heads)]
    keras_weights += [ws[3].reshape(heads, e // heads, e), bs[3]]
    layer.set_weights(keras_weights)
    mha = torch.nn.MultiheadAttention(e, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(np.concatenate([w.T for w in ws[:3]])))
        mha.in_proj_bias.copy_(torch.tensor(bs[:3].reshape(-1)))
        mha.out_proj.weight.copy_(torch.tensor(ws[3].T))
        mha.out_proj.bias.copy_(torch.tensor(bs[3]))
    vt = torch.tensor(v)
    _run_both(layer, q, lambda t: mha(t, vt, vt, need_weights=False)[0], inputs_more=(v,))
    np.testing.assert_allclose(layer.query_dense.weight.grad.numpy(),
                               mha.in_proj_weight.grad[:e].numpy(), rtol=1e-3, atol=1e-4)
    out, scores = layer(q, v, return_attention_scores=True)
    assert tuple(scores.shape) == (2, heads, 5, 6)
    np.testing.assert_allclose(scores.numpy().sum(-1), 1.0, rtol=1e-5)
    qt = torch.tensor(q)
    banned = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)  # torch: True = not allowed
    want = mha(qt, qt, qt, attn_mask=banned, need_weights=False)[0].detach().numpy()
    np.testing.assert_allclose(layer(q, q, use_causal_mask=True).numpy(), want, rtol=1e-4,
                               atol=1e-5)
    keep = ~banned.numpy()[None].repeat(2, 0)  # Keras: True = attend
    out_m, scores_m = layer(q, q, attention_mask=keep, return_attention_scores=True)
    np.testing.assert_allclose(out_m.numpy(), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(scores_m.numpy()[:, :, 0, 1:], 0.0)


def test_attention_and_dot_match_torch():
    q = RNG.standard_normal((2, 4, 3)).astype(np.float32)
    v = RNG.standard_normal((2, 5, 3)).astype(np.float32)
    vt = torch.tensor(v)
    _run_both(L.Attention(), q, lambda t: torch.softmax(t @ vt.transpose(1, 2), -1) @ vt,
              inputs_more=(v,))
    a = RNG.standard_normal((3, 4)).astype(np.float32)
    b = RNG.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(L.Dot(axes=1)([a, b]).numpy(), (a * b).sum(1, keepdims=True),
                               rtol=1e-5)
    cos = L.Dot(axes=1, normalize=True)([a, b]).numpy()[:, 0]
    np.testing.assert_allclose(cos, torch.nn.functional.cosine_similarity(
        torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-4)


def test_time_distributed_equals_dense_per_step():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    td = L.TimeDistributed(L.Dense(5))
    y = td(x).numpy()
    kernel, bias = td.layer.get_weights()
    np.testing.assert_allclose(y, x @ kernel + bias, rtol=1e-5, atol=1e-6)
    assert td.compute_output_shape((None, 3, 4)) == (None, 3, 5)


def test_noise_and_spatial_dropout_act_only_in_training():
    x = np.ones((4, 6, 5, 8), np.float32)
    sd = L.SpatialDropout2D(0.5)
    np.testing.assert_array_equal(sd(x).numpy(), x)
    y = sd(x, training=True).numpy()
    per_channel = y.reshape(4, -1, 8)
    assert np.all(per_channel.min(1) == per_channel.max(1))  # whole maps kept or dropped
    assert set(np.unique(y)) <= {0.0, 2.0} and (y == 0).any()
    gn = L.GaussianNoise(0.5)
    np.testing.assert_array_equal(gn(x).numpy(), x)
    noisy = gn(np.zeros((200, 50), np.float32), training=True).numpy()
    assert abs(noisy.std() - 0.5) < 0.02


def test_normalization_adapt_and_augmentations():
    data = RNG.normal(3.0, 2.0, (500, 4)).astype(np.float32)
    norm = L.Normalization()
    norm.adapt(data)
    out = norm(data).numpy()
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-3)
    inv = L.Normalization(mean=3.0, variance=4.0, invert=True)
    np.testing.assert_allclose(inv(np.zeros((1, 4), np.float32)).numpy(), 3.0)
    img = RNG.random((8, 5, 6, 3)).astype(np.float32)
    flip = L.RandomFlip("horizontal", seed=1)
    np.testing.assert_array_equal(flip(img).numpy(), img)
    flipped = flip(img, training=True).numpy()
    for i in range(8):
        assert np.array_equal(flipped[i], img[i]) or np.array_equal(flipped[i], img[i, :, ::-1])
    contrast = L.RandomContrast(0.5, seed=0)(img, training=True).numpy()
    np.testing.assert_allclose(contrast.mean((1, 2)), img.mean((1, 2)), atol=1e-5)


def test_functional_forms_and_positional_inputs_in_a_model(tmp_path):
    a, b = keras.Input((6,)), keras.Input((6,))
    merged = keras.layers.concatenate([keras.layers.average([a, b]),
                                       keras.layers.maximum([a, b]),
                                       keras.layers.minimum([a, b]),
                                       keras.layers.multiply([a, b]),
                                       keras.layers.subtract([a, b]),
                                       keras.layers.dot([a, b], axes=1)])
    model = keras.Model([a, b], merged)
    xa = RNG.standard_normal((3, 6)).astype(np.float32)
    xb = RNG.standard_normal((3, 6)).astype(np.float32)
    want = np.concatenate([(xa + xb) / 2, np.maximum(xa, xb), np.minimum(xa, xb), xa * xb,
                           xa - xb, (xa * xb).sum(1, keepdims=True)], axis=1)
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), want, rtol=1e-5, atol=1e-6)
    seq = keras.Input((5, 8))
    ctx = keras.Input((7, 8))
    att = L.MultiHeadAttention(2, 4)(seq, ctx)  # two positional tensors
    up = L.Conv1DTranspose(4, 3, strides=2, padding="same")(att)
    out = L.GroupNormalization(2)(L.Cropping1D((1, 1))(L.ZeroPadding1D(1)(up)))
    m2 = keras.Model([seq, ctx], L.GlobalAveragePooling1D()(L.UpSampling1D(2)(out)))
    xs, xc = RNG.standard_normal((2, 5, 8)), RNG.standard_normal((2, 7, 8))
    before = m2.predict([xs, xc], verbose=0)
    path = tmp_path / "m.keras"
    m2.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again.predict([xs, xc], verbose=0), before, rtol=1e-5,
                               atol=1e-6)


# --------------------------------------------------------------------------- masking

@pytest.mark.parametrize("cls", [L.SimpleRNN, L.LSTM, L.GRU])
def test_masked_rnn_equals_running_on_the_unpadded_sequences(cls):
    keras.backend.clear_session()
    emb = L.Embedding(12, 5, mask_zero=True)
    rnn = cls(4, return_sequences=True, return_state=False)
    ids = np.array([[0, 0, 3, 4, 5, 6],      # pre-padded (pad_sequences' default)
                    [2, 7, 1, 0, 0, 0],      # post-padded
                    [9, 0, 8, 0, 0, 11]])    # holes: the state is carried over them
    seq = rnn(emb(ids)).numpy()
    for i, row in enumerate(ids):
        kept = row[row != 0][None]
        alone = rnn(emb(kept)).numpy()[0]
        seen = np.cumsum(row != 0) - 1
        for t in range(len(row)):  # a masked step repeats the previous output (Keras 3)
            want = np.zeros(4, np.float32) if seen[t] < 0 else alone[seen[t]]
            np.testing.assert_allclose(seq[i, t], want, rtol=1e-5, atol=1e-6)
    last = cls(4)
    last.build((None, 6, 5))
    final = last(emb(ids)).numpy()
    for i, row in enumerate(ids):
        np.testing.assert_allclose(final[i], last(emb(row[row != 0][None])).numpy()[0],
                                   rtol=1e-5, atol=1e-6)


def test_masked_lstm_gradients_match_the_unpadded_run():
    keras.backend.clear_session()
    x = RNG.standard_normal((1, 5, 3)).astype(np.float32)
    x[:, :2] = 0.0  # two masked leading steps
    lstm = L.LSTM(4)
    masked_in = sj.tensor(x, requires_grad=True)
    out = lstm(L.Masking()(masked_in))
    g = RNG.standard_normal((1, 4)).astype(np.float32)
    (out * sj.tensor(g)).sum().backward()
    grads_masked = [w.value.grad.numpy().copy() for w in lstm.weights]
    for w in lstm.weights:
        w.value.grad = None
    short = sj.tensor(x[:, 2:], requires_grad=True)
    out2 = lstm(short)
    (out2 * sj.tensor(g)).sum().backward()
    np.testing.assert_allclose(out.numpy(), out2.numpy(), rtol=1e-5, atol=1e-6)
    for a, w in zip(grads_masked, lstm.weights):
        np.testing.assert_allclose(a, w.value.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(masked_in.grad.numpy()[:, 2:], short.grad.numpy(), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_array_equal(masked_in.grad.numpy()[:, :2], 0.0)


def test_mask_flows_through_a_functional_model_and_bidirectional():
    keras.backend.clear_session()
    inp = keras.Input((6,), dtype="int64")
    h = L.Embedding(20, 4, mask_zero=True)(inp)
    h = L.Dropout(0.1)(h)
    out = L.Bidirectional(L.GRU(3))(h)
    model = keras.Model(inp, out)
    ids = np.array([[0, 0, 0, 5, 6, 7], [0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    y = model.predict(ids, verbose=0)
    np.testing.assert_allclose(y[1], 0.0)  # an all-padding sequence keeps the zero state
    short = keras.Model(inp, out)
    np.testing.assert_allclose(short.predict(np.array([[5, 6, 7, 0, 0, 0]]), verbose=0)[0],
                               y[0], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- text / lookup

def test_text_vectorization_vocab_order_and_padding():
    tv = L.TextVectorization(output_sequence_length=5)
    tv.adapt(["The cat sat.", "the dog SAT", "a cat!"])
    # "" (padding) and "[UNK]" first, then by frequency, ties by token high to low (Keras)
    assert tv.get_vocabulary() == ["", "[UNK]", "the", "sat", "cat", "dog", "a"]
    ids = tv(["the cat ran", "Dog, dog a the cat sat"]).numpy()
    np.testing.assert_array_equal(ids, [[2, 4, 1, 0, 0], [5, 5, 6, 2, 4]])
    capped = L.TextVectorization(max_tokens=4)
    capped.adapt(["b b b a a c"])
    assert capped.get_vocabulary() == ["", "[UNK]", "b", "a"]
    assert capped(["c a"]).numpy().tolist() == [[1, 3]]  # no length: the longest row
    hot = L.TextVectorization(output_mode="multi_hot", vocabulary=["x", "y"])
    # outside "int" mode the mask token "" has no slot: ["[UNK]", "x", "y"]
    np.testing.assert_array_equal(hot(["y y", "z"]).numpy(), [[0, 0, 1], [1, 0, 0]])


def test_string_and_integer_lookup_adapt_and_invert():
    sl = L.StringLookup()
    sl.adapt(np.array([["a", "b", "b"], ["c", "b", "a"]]))
    assert sl.get_vocabulary() == ["[UNK]", "b", "a", "c"]
    np.testing.assert_array_equal(sl(np.array([["a", "zz"], ["c", "b"]])).numpy(),
                                  [[2, 0], [3, 1]])
    masked = L.StringLookup(mask_token="", vocabulary=["x", "y"])
    assert masked(np.array(["", "y", "q"])).numpy().tolist() == [0, 3, 1]
    inv = L.StringLookup(vocabulary=["x", "y"], invert=True)
    assert inv(np.array([0, 1, 2])).tolist() == ["[UNK]", "x", "y"]
    il = L.IntegerLookup()
    il.adapt(np.array([7, 7, 3, 9, 3, 7]))
    assert il.get_vocabulary() == [-1, 7, 3, 9]
    assert il(np.array([7, 3, 5])).numpy().tolist() == [1, 2, 0]
    two_oov = L.StringLookup(num_oov_indices=2, vocabulary=["x"])
    out = two_oov(np.array(["x", "p", "p", "r"])).numpy()
    assert out[0] == 2 and out[1] == out[2] and set(out[1:]) <= {0, 1}
    onehot = L.IntegerLookup(vocabulary=[4, 5], output_mode="one_hot")(np.array([5, 4, 8]))
    np.testing.assert_array_equal(onehot.numpy(), np.eye(3)[[2, 1, 0]])


def test_text_vectorization_feeds_an_embedding_model():
    tv = L.TextVectorization(output_sequence_length=4)
    tv.adapt(["good movie", "bad movie", "good good fun"])
    inp = keras.Input((4,), dtype="int64")
    model = keras.Model(inp, L.GlobalAveragePooling1D()(
        L.Embedding(tv.vocabulary_size(), 3)(inp)))
    out = model.predict(tv(["good fun", "unknown words here"]).numpy(), verbose=0)
    assert out.shape == (2, 3) and np.isfinite(out).all()


def test_geometric_augmentations_resample_as_keras_describes():
    img = RNG.random((2, 6, 6, 3)).astype(np.float32)
    quarter = L.RandomRotation((0.25, 0.25), fill_mode="constant")  # +90 degrees
    np.testing.assert_array_equal(quarter(img).numpy(), img)  # inference: unchanged
    np.testing.assert_allclose(quarter(img, training=True).numpy(),
                               np.rot90(img, 1, axes=(1, 2)), atol=1e-5)
    shift = L.RandomTranslation((0.5, 0.5), (0.0, 0.0), fill_mode="constant",
                                interpolation="nearest")  # 3 rows down
    xs = sj.tensor(img, requires_grad=True)
    moved = shift(xs, training=True)
    np.testing.assert_array_equal(moved.numpy()[:, 3:], img[:, :3])
    np.testing.assert_array_equal(moved.numpy()[:, :3], 0.0)
    g = RNG.standard_normal(img.shape).astype(np.float32)
    (moved * sj.tensor(g)).sum().backward()
    want = np.zeros_like(g)
    want[:, :3] = g[:, 3:]
    np.testing.assert_allclose(xs.grad.numpy(), want)
    reflected = L.RandomTranslation((0.5, 0.5), (0.0, 0.0), fill_mode="reflect",
                                    interpolation="nearest")(img, training=True).numpy()
    np.testing.assert_array_equal(reflected[:, :3], img[:, 2::-1])  # c b a | a b c ...
    same = L.RandomZoom((0.0, 0.0))(img, training=True).numpy()
    np.testing.assert_allclose(same, img, atol=1e-6)
    wide = np.zeros((1, 5, 5, 1), np.float32)
    wide[0, 2, 2] = 1.0
    out = L.RandomZoom((1.0, 1.0), fill_mode="constant")(wide, training=True).numpy()
    assert out[0, 2, 2, 0] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)


def test_global_average_pooling_1d_averages_unmasked_steps_only():
    keras.backend.clear_session()
    inp = keras.Input((5,), dtype="int64")
    emb = L.Embedding(10, 3, mask_zero=True)
    model = keras.Model(inp, L.GlobalAveragePooling1D()(emb(inp)))
    ids = np.array([[0, 0, 4, 5, 6], [7, 0, 0, 0, 0]])
    table = emb.get_weights()[0]
    want = np.stack([table[[4, 5, 6]].mean(0), table[7]])
    np.testing.assert_allclose(model.predict(ids, verbose=0), want, rtol=1e-5, atol=1e-7)
    plain = L.GlobalAveragePooling1D()(table[ids]).numpy()  # no mask: every step counts
    np.testing.assert_allclose(plain, table[ids].mean(1), rtol=1e-5)
