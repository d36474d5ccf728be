"""MultiheadAttention, the Transformer family and scaled_dot_product_attention against torch
2.13: torch's state_dict loaded with strict=True, then outputs, input gradients and every
parameter gradient compared under a random upstream gradient; masks bool and float, both
layouts, kdim/vdim, bias_k/v, zero attention, norm_first, activations, subclassing."""

from __future__ import annotations

import numpy as np
import pytest
from nn_compare import compare, load_from_torch, to_sj

import shenjing as sj
from shenjing import nn
from shenjing.autograd import gradcheck
from shenjing.nn import functional as F

torch = pytest.importorskip("torch")

# torch's own notices about the inputs these tests give it on purpose (mixed mask types)
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")]

E, H, L, S, N = 8, 2, 5, 4, 3


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _pad_mask(n: int, s: int, seed: int = 3) -> np.ndarray:
    """(n, s) bool, True = padding; never a fully padded row."""
    m = np.random.default_rng(seed).random((n, s)) < 0.4
    m[:, 0] = False
    return m


def _causal_bool(l_: int, s: int) -> np.ndarray:
    return np.triu(np.ones((l_, s), bool), 1)


def _mha_call(kpm=None, am=None, **kw):
    def call(m, q, k, v):
        lib = torch if isinstance(q, torch.Tensor) else sj
        conv = (lambda a: None if a is None else (torch.from_numpy(a) if lib is torch
                                                  else to_sj(a)))
        return m(q, k, v, key_padding_mask=conv(kpm), attn_mask=conv(am), **kw)
    return call


MHA_CASES = [
    ("seq_first", dict(), [(L, N, E), (S, N, E), (S, N, E)], {}),
    ("batch_first", dict(batch_first=True), [(N, L, E), (N, S, E), (N, S, E)], {}),
    ("heads_not_averaged", dict(), [(L, N, E), (S, N, E), (S, N, E)],
     dict(average_attn_weights=False)),
    ("no_weights", dict(batch_first=True), [(N, L, E), (N, S, E), (N, S, E)],
     dict(need_weights=False)),
    ("key_padding_bool", dict(), [(L, N, E), (S, N, E), (S, N, E)],
     dict(kpm=_pad_mask(N, S))),
    ("key_padding_bool_bf_fused", dict(batch_first=True), [(N, L, E), (N, S, E), (N, S, E)],
     dict(kpm=_pad_mask(N, S), need_weights=False)),
    ("key_padding_float", dict(), [(L, N, E), (S, N, E), (S, N, E)],
     dict(kpm=np.where(_pad_mask(N, S), -1e9, 0.0).astype(np.float32))),
    ("attn_mask_bool", dict(), [(L, N, E), (S, N, E), (S, N, E)],
     dict(am=_causal_bool(L, S))),
    ("attn_mask_float_3d", dict(batch_first=True), [(N, L, E), (N, S, E), (N, S, E)],
     dict(am=_x(N * H, L, S, seed=7))),
    ("both_masks_fused", dict(), [(L, N, E), (S, N, E), (S, N, E)],
     dict(kpm=_pad_mask(N, S), am=_causal_bool(L, S), need_weights=False)),
    ("kdim_vdim", dict(kdim=6, vdim=3), [(L, N, E), (S, N, 6), (S, N, 3)], {}),
    ("kdim_vdim_bf_fused", dict(kdim=5, vdim=7, batch_first=True),
     [(N, L, E), (N, S, 5), (N, S, 7)], dict(need_weights=False)),
    ("no_bias", dict(bias=False), [(L, N, E), (S, N, E), (S, N, E)], {}),
    ("bias_kv", dict(add_bias_kv=True), [(L, N, E), (S, N, E), (S, N, E)],
     dict(kpm=_pad_mask(N, S), am=_causal_bool(L, S))),
    ("zero_attn_bf", dict(add_zero_attn=True, batch_first=True),
     [(N, L, E), (N, S, E), (N, S, E)], dict(kpm=_pad_mask(N, S))),
    ("bias_kv_zero_attn", dict(add_bias_kv=True, add_zero_attn=True, batch_first=True),
     [(N, L, E), (N, S, E), (N, S, E)], dict(need_weights=False)),
    ("unbatched", dict(), [(L, E), (S, E), (S, E)], dict(kpm=_pad_mask(1, S)[0])),
    ("one_head", dict(), [(L, N, E), (S, N, E), (S, N, E)], {}),
]


@pytest.mark.parametrize("name,kw,shapes,call_kw", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_multihead_attention_matches_torch(name, kw, shapes, call_kw):
    heads = 1 if name == "one_head" else H
    tm = torch.nn.MultiheadAttention(E, heads, **kw)
    m = nn.MultiheadAttention(E, heads, **kw)
    with torch.no_grad():  # non-zero biases, so their gradients and placement are checked
        for p in tm.parameters():
            if p.ndim == 1:
                p.uniform_(-0.5, 0.5)
    load_from_torch(m, tm)
    assert list(m.state_dict()) == list(tm.state_dict())
    inputs = [_x(*s, seed=i) for i, s in enumerate(shapes)]
    compare(torch, m, tm, inputs, name, call=_mha_call(**call_kw))


def test_multihead_attention_self_attention_same_tensor():
    tm = torch.nn.MultiheadAttention(E, H)
    m = nn.MultiheadAttention(E, H)
    load_from_torch(m, tm)
    compare(torch, m, tm, [_x(L, N, E)], "self", call=lambda mod, x: mod(x, x, x))


def test_multihead_attention_init_and_errors():
    m = nn.MultiheadAttention(64, 4)
    assert np.all(m.in_proj_bias.numpy() == 0) and np.all(m.out_proj.bias.numpy() == 0)
    bound = np.sqrt(6.0 / (64 + 192))  # xavier_uniform_ over the (3E, E) matrix, as torch
    w = m.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        m(sj.zeros(3, 2, 64), sj.zeros(3, 2, 64), sj.zeros(3, 2, 64),
          attn_mask=sj.zeros(2, 2))
    with pytest.raises(RuntimeError, match="is_causal"):
        m(sj.zeros(3, 2, 64), sj.zeros(3, 2, 64), sj.zeros(3, 2, 64), is_causal=True)
    with pytest.raises(ValueError, match=r"\(L, N, E\)"):
        m(sj.zeros(3, 2, 63), sj.zeros(3, 2, 64), sj.zeros(3, 2, 64))


def _layer_call(kind, mask=None, kpm=None, **kw):
    def call(m, *xs):
        lib_t = isinstance(xs[0], torch.Tensor)
        conv = (lambda a: None if a is None else (torch.from_numpy(a) if lib_t else to_sj(a)))
        if kind == "enc":
            return m(xs[0], conv(mask), conv(kpm), **kw)
        return m(xs[0], xs[1], tgt_mask=conv(mask), tgt_key_padding_mask=conv(kpm), **kw)
    return call


D_FF = 16
LAYER_CASES = [
    ("enc_post_relu", "enc", dict(), {}),
    ("enc_pre_gelu_bf", "enc", dict(norm_first=True, activation="gelu", batch_first=True), {}),
    ("enc_callable_masks", "enc", dict(activation=lambda x: x.sigmoid() * x),
     dict(mask=np.where(_causal_bool(L, L), -np.inf, 0.0).astype(np.float32),
          kpm=_pad_mask(N, L), is_causal=True)),
    ("enc_module_activation", "enc", dict(activation="_gelu_module"), {}),
    ("enc_no_bias", "enc", dict(bias=False, norm_first=True), dict(kpm=_pad_mask(N, L))),
    ("dec_post", "dec", dict(), dict(mask=_causal_bool(L, L))),
    ("dec_pre_gelu_bf", "dec", dict(norm_first=True, activation="gelu", batch_first=True),
     dict(kpm=_pad_mask(N, L))),
]


def _activation(lib, a):
    return lib.nn.GELU() if a == "_gelu_module" else a


@pytest.mark.parametrize("mode", ["train_p0", "eval_p01"])
@pytest.mark.parametrize("name,kind,kw,call_kw", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_transformer_layer_matches_torch(name, kind, kw, call_kw, mode):
    p = 0.0 if mode == "train_p0" else 0.1
    cls = "TransformerEncoderLayer" if kind == "enc" else "TransformerDecoderLayer"
    kwt = dict(kw, activation=_activation(torch, kw.get("activation", "relu")))
    kws = dict(kw, activation=_activation(sj, kw.get("activation", "relu")))
    tm = getattr(torch.nn, cls)(E, H, D_FF, dropout=p, **kwt)
    m = getattr(nn, cls)(E, H, D_FF, dropout=p, **kws)
    load_from_torch(m, tm)
    if mode == "eval_p01":
        tm.eval()
        m.eval()
    bf = kw.get("batch_first", False)
    shapes = [(N, L, E) if bf else (L, N, E)]
    if kind == "dec":
        shapes.append((N, S, E) if bf else (S, N, E))
    inputs = [_x(*s, seed=i) for i, s in enumerate(shapes)]
    compare(torch, m, tm, inputs, f"{name}_{mode}", call=_layer_call(kind, **call_kw))


def test_encoder_and_decoder_stacks_match_torch():
    for kind in ("enc", "dec"):
        if kind == "enc":
            layer = (torch.nn.TransformerEncoderLayer(E, H, D_FF, 0.0),
                     nn.TransformerEncoderLayer(E, H, D_FF, 0.0))
            tm = torch.nn.TransformerEncoder(layer[0], 2, torch.nn.LayerNorm(E),
                                             enable_nested_tensor=False)
            m = nn.TransformerEncoder(layer[1], 2, nn.LayerNorm(E))
            shapes = [(L, N, E)]
        else:
            layer = (torch.nn.TransformerDecoderLayer(E, H, D_FF, 0.0),
                     nn.TransformerDecoderLayer(E, H, D_FF, 0.0))
            tm = torch.nn.TransformerDecoder(layer[0], 3)
            m = nn.TransformerDecoder(layer[1], 3)
            shapes = [(L, N, E), (S, N, E)]
        # make the clones differ, as after training: a deep copy must not share weights
        with torch.no_grad():
            for p in tm.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        load_from_torch(m, tm)
        assert m.layers[0].linear1.weight is not m.layers[1].linear1.weight
        inputs = [_x(*s, seed=i) for i, s in enumerate(shapes)]
        compare(torch, m, tm, inputs, f"stack_{kind}",
                call=lambda mod, *xs, kind=kind: mod(*xs, mask=None) if kind == "enc" else mod(*xs))


class _SubTransformer(nn.Transformer):
    """The tutorials' pattern: subclass nn.Transformer and add a head."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.head = nn.Linear(kw["d_model"], 3)

    def forward(self, src, tgt, **kw):
        return self.head(super().forward(src, tgt, **kw))


class _TorchSubTransformer(torch.nn.Transformer):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.head = torch.nn.Linear(kw["d_model"], 3)

    def forward(self, src, tgt, **kw):
        return self.head(super().forward(src, tgt, **kw))


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_subclass_with_masks_matches_torch(batch_first):
    kw = dict(d_model=E, nhead=H, num_encoder_layers=2, num_decoder_layers=1,
              dim_feedforward=D_FF, dropout=0.0, batch_first=batch_first)
    tm, m = _TorchSubTransformer(**kw), _SubTransformer(**kw)
    load_from_torch(m, tm)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(L)
    np.testing.assert_array_equal(
        tgt_mask.numpy(), torch.nn.Transformer.generate_square_subsequent_mask(L).numpy())
    src_kpm, tgt_kpm = _pad_mask(N, S, 1), _pad_mask(N, L, 2)

    def call(mod, src, tgt):
        lib_t = isinstance(src, torch.Tensor)
        conv = (lambda a: torch.from_numpy(a) if lib_t else to_sj(a))
        return mod(src, tgt, tgt_mask=conv(tgt_mask.numpy()), src_key_padding_mask=conv(src_kpm),
                   tgt_key_padding_mask=conv(tgt_kpm), memory_key_padding_mask=conv(src_kpm))

    shapes = [(N, S, E), (N, L, E)] if batch_first else [(S, N, E), (L, N, E)]
    compare(torch, m, tm, [_x(*s, seed=i) for i, s in enumerate(shapes)], "sub", call=call)


def test_transformer_reinitializes_matrices_xavier_and_checks_batch():
    m = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
                       dim_feedforward=64)
    w = m.encoder.layers[0].linear1.weight.numpy()  # (64, 32): xavier bound sqrt(6/96)
    assert np.abs(w).max() <= np.sqrt(6 / 96) and np.abs(w).max() > 0.95 * np.sqrt(6 / 96)
    with pytest.raises(RuntimeError, match="batch size"):
        m(sj.zeros(3, 2, 32), sj.zeros(3, 4, 32))


SDPA_CASES = [
    ("plain", dict()),
    ("bool_mask", dict(attn_mask=np.random.default_rng(1).random((L, S)) < 0.7)),
    ("float_mask", dict(attn_mask=_x(1, L, S, seed=4))),
    ("causal", dict(is_causal=True)),
    ("scale", dict(scale=0.3)),
]


@pytest.mark.parametrize("name,kw", SDPA_CASES, ids=[c[0] for c in SDPA_CASES])
def test_scaled_dot_product_attention_matches_torch(name, kw):
    shapes = [(2, 3, L, 6), (2, 3, S, 6), (2, 3, S, 4)]
    if name == "causal":
        shapes[1], shapes[2] = (2, 3, L, 6), (2, 3, L, 4)
    if name == "bool_mask":
        kw["attn_mask"][:, 0] = True  # no row without an allowed position

    class Wrap:
        def __init__(self, lib):
            self.lib = lib

        def __call__(self, q, k, v):
            mask = kw.get("attn_mask")
            if mask is not None:
                mask = torch.from_numpy(mask) if self.lib is torch else to_sj(mask)
            f = torch.nn.functional if self.lib is torch else F
            return f.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=kw.get("is_causal", False),
                scale=kw.get("scale"))

        def parameters(self):
            return []

        def zero_grad(self):
            pass

    compare(torch, Wrap(sj), Wrap(torch), [_x(*s, seed=i) for i, s in enumerate(shapes)],
            name, check_params=False)


def test_scaled_dot_product_attention_in_row_blocks_matches_torch():
    """Shapes big enough that every product runs in single-thread-sized row blocks, with
    broadcast leading dims and a float mask."""
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal(s).astype(np.float32)
               for s in [(2, 3, 150, 40), (1, 3, 170, 40), (2, 1, 170, 24)])
    mask = rng.standard_normal((150, 170)).astype(np.float32)
    xs = [sj.tensor(a, requires_grad=True) for a in (q, k, v)]
    ts = [torch.from_numpy(a).requires_grad_() for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*xs, attn_mask=sj.tensor(mask))
    tout = torch.nn.functional.scaled_dot_product_attention(*ts, attn_mask=torch.from_numpy(mask))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = rng.standard_normal(tuple(tout.shape)).astype(np.float32)
    out.backward(sj.tensor(g))
    for x, tg in zip(xs, torch.autograd.grad(tout, ts, torch.from_numpy(g))):
        np.testing.assert_allclose(x.grad.numpy(), tg.numpy(), rtol=1e-4, atol=1e-4)


def test_attention_gradcheck_float64():
    rng = np.random.default_rng(0)
    q, k, v = (sj.tensor(rng.standard_normal(s), requires_grad=True)
               for s in [(2, 3, 4), (2, 5, 4), (2, 5, 3)])
    mask = sj.tensor(np.random.default_rng(1).random((3, 5)) < 0.8)
    mask[:, 0] = True
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=mask),
                     [q, k, v])
    m = nn.MultiheadAttention(4, 2, kdim=3, add_bias_kv=True).double()
    x, y = (sj.tensor(rng.standard_normal(s), requires_grad=True) for s in [(3, 2, 4),
                                                                             (2, 2, 3)])
    for need in (True, False):
        # projected on random directions (every input element is still checked)
        assert gradcheck(lambda a, b, need=need: m(a, b, a[:2], need_weights=need)[0], [x, y],
                         max_full=8)


def test_attention_dropout_in_training_only():
    sj.manual_seed(0)
    m = nn.MultiheadAttention(E, H, dropout=0.5)
    x = sj.tensor(_x(L, N, E))
    a, b = m(x, x, x, need_weights=False)[0], m(x, x, x, need_weights=False)[0]
    assert not np.allclose(a.numpy(), b.numpy())
    m.eval()
    a, b = m(x, x, x)[0], m(x, x, x)[0]
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_attention_dropout_backward_gradcheck_float64():
    """The same seed gives the same mask on every call, so the dropped-out attention is a
    fixed function whose gradient gradcheck can verify; some weights really are dropped."""
    rng = np.random.default_rng(2)
    q, k, v = (sj.tensor(rng.standard_normal(s), requires_grad=True)
               for s in [(2, 4, 3), (2, 5, 3), (2, 5, 2)])

    def fn(a, b, c):
        sj.manual_seed(11)
        return F.scaled_dot_product_attention(a, b, c, dropout_p=0.4)

    with sj.no_grad():
        dropped = fn(q, k, v).numpy()
        kept = F.scaled_dot_product_attention(q, k, v).numpy()
    assert not np.allclose(dropped, kept)
    assert gradcheck(fn, [q, k, v])
