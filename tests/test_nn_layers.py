"""shenjing.nn layers against torch.nn (same weights via state_dict, same input, a random
upstream gradient), gradcheck in float64 for every fused op in shenjing.ops.nn_ops, default
initializations, dropout statistics, and the messages bad input gets."""

from __future__ import annotations

import math

import numpy as np
import pytest

import shenjing as sj
import shenjing.nn as nn
import shenjing.nn.functional as F
from shenjing.autograd import Function, gradcheck
from shenjing.ops import nn_ops

# ----------------------------------------------------------------------------- helpers


def _torch():
    return pytest.importorskip("torch")


def load_from_torch(sj_module, torch_module) -> None:
    """Copy a torch module's state_dict into the shenjing module (strict)."""
    sj_module.load_state_dict({k: v.detach().numpy().copy()
                               for k, v in torch_module.state_dict().items()})


def compare_with_torch(sj_fn, torch_fn, arrays, *, grad=None, sj_params=None,
                       torch_params=None, rtol=1e-5, atol=1e-6, grad_rtol=1e-4,
                       grad_atol=1e-5, seed=0):
    """Run sj_fn and torch_fn on the same inputs; compare outputs (values, dtype, shape),
    then backpropagate one random upstream gradient and compare the gradients of every
    float input (`grad[i]` False excludes input i) and of the named parameters."""
    torch = _torch()
    grad = [a.dtype.kind == "f" for a in arrays] if grad is None else grad
    sj_in = [sj.tensor(a.copy(), requires_grad=bool(g)) for a, g in zip(arrays, grad)]
    t_in = [torch.from_numpy(a.copy()).requires_grad_(bool(g)) for a, g in zip(arrays, grad)]
    out = sj_fn(*sj_in)
    tout = torch_fn(*t_in)
    expected = tout.detach().numpy()
    assert out.dtype == expected.dtype, (out.dtype, expected.dtype)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=atol)
    if not out.requires_grad:
        return out
    up = np.random.default_rng(seed).standard_normal(expected.shape).astype(expected.dtype)
    out.backward(sj.tensor(up))
    tout.backward(torch.from_numpy(up))
    for i, (a, b) in enumerate(zip(sj_in, t_in)):
        if grad[i]:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=grad_rtol,
                                       atol=grad_atol, err_msg=f"gradient of input {i}")
    for name, p in (sj_params or {}).items():
        tp = torch_params[name]
        assert (p.grad is None) == (tp.grad is None), name
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=grad_rtol,
                                       atol=grad_atol, err_msg=f"gradient of {name}")
    return out


def compare_modules(sj_module, torch_module, *arrays, **kw):
    """compare_with_torch for two modules holding the same weights."""
    load_from_torch(sj_module, torch_module)
    return compare_with_torch(sj_module, torch_module, list(arrays),
                              sj_params=dict(sj_module.named_parameters()),
                              torch_params=dict(torch_module.named_parameters()), **kw)


def randn(*shape, seed=0, scale=1.0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def t64(a, requires_grad=True):
    return sj.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# ----------------------------------------------------------------------------- Linear


@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 7), (7,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    torch = _torch()
    tm = torch.nn.Linear(7, 5, bias=bias)
    m = nn.Linear(7, 5, bias=bias)
    compare_modules(m, tm, randn(*shape))


def test_linear_float64_and_gradcheck():
    m = nn.Linear(3, 2).double()
    x = t64(randn(2, 2, 3))
    assert m(x).dtype == np.float64
    w, b = t64(randn(2, 3, seed=1)), t64(randn(2, seed=2))
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), (x, w, b))
    assert gradcheck(lambda x, w: F.linear(x, w), (x, w))


def test_linear_default_init_is_torch_kaiming_uniform():
    sj.manual_seed(0)
    m = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = m.weight.numpy(), m.bias.numpy()
    assert w.dtype == np.float32 and w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound
    # U(-a, a) has std a / sqrt(3); 120,000 samples pin it to about 0.3%
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound


def test_linear_bad_input_messages():
    m = nn.Linear(7, 5)
    with pytest.raises(ValueError) as e:
        m(sj.randn(4, 6))
    assert str(e.value) == ("Linear(in_features=7): expected input with 7 features in its "
                            "last dimension, got shape (4, 6)")
    with pytest.raises(TypeError, match="float64.*float32"):
        m(sj.randn(4, 7, dtype=sj.float64))
    with pytest.raises(ValueError, match="expects 7"):
        F.linear(sj.randn(4, 6), m.weight, m.bias)
    with pytest.raises(ValueError, match="positive integer"):
        nn.Linear(0, 5)


def test_lazy_linear_builds_on_first_call():
    sj.manual_seed(0)
    m = nn.Linear(None, 4)
    assert m._lazy and m.weight is None and list(m.parameters()) == []
    y = m(sj.randn(3, 6))
    assert y.shape == (3, 4) and m.in_features == 6 and not m._lazy
    assert m.weight.shape == (4, 6) and m.bias.shape == (4,)
    assert np.abs(m.weight.numpy()).max() <= 1 / math.sqrt(6)
    assert repr(m) == "Linear(in_features=6, out_features=4, bias=True)"
    assert nn.Linear(None, 2)(sj.randn(3, 5, dtype=sj.float64)).dtype == np.float64


@pytest.mark.parametrize("bias", [True, False])
def test_lazy_linear_loads_a_state_dict(bias):
    src = nn.Linear(6, 4, bias=bias)
    lazy = nn.Linear(None, 4, bias=bias)
    lazy.load_state_dict(src.state_dict())
    assert lazy.in_features == 6
    x = sj.randn(2, 6)
    np.testing.assert_array_equal(lazy(x).numpy(), src(x).numpy())
    assert list(lazy.state_dict()) == list(src.state_dict())


# ----------------------------------------------------------------------------- Embedding


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(padding_idx):
    torch = _torch()
    tm = torch.nn.Embedding(10, 4, padding_idx=padding_idx)
    m = nn.Embedding(10, 4, padding_idx=padding_idx)
    idx = np.array([[1, 2, 2, 9], [9, 0, 2, 1], [3, 3, 3, 3]], dtype=np.int64)
    out = compare_modules(m, tm, idx)
    assert out.shape == (3, 4, 4)
    if padding_idx is not None:
        assert not m.weight.grad.numpy()[padding_idx].any()


def test_embedding_backward_accumulates_repeats_and_no_repeats():
    w = sj.tensor(randn(6, 3), requires_grad=True)
    for idx in (np.array([4, 1, 4, 4, 0]), np.array([5, 1, 3])):
        w.grad = None
        up = randn(len(idx), 3, seed=4)
        F.embedding(sj.tensor(idx), w).backward(sj.tensor(up))
        expected = np.zeros((6, 3), np.float32)
        np.add.at(expected, idx, up)
        np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_embedding_gradcheck():
    w = t64(randn(5, 3))
    idx = sj.tensor(np.array([[0, 4, 4], [2, 0, 1]]))
    assert gradcheck(lambda w: F.embedding(idx, w), (w,))
    # (with padding_idx the padding row's gradient is zero by definition, not by calculus)


def test_embedding_init_and_padding_row():
    sj.manual_seed(0)
    m = nn.Embedding(1000, 64, padding_idx=0)
    w = m.weight.numpy()
    assert not w[0].any()
    rest = w[1:]
    assert abs(rest.mean()) < 0.02 and abs(rest.std() - 1) < 0.02


def test_embedding_max_norm_matches_torch():
    torch = _torch()
    tm = torch.nn.Embedding(8, 5, max_norm=1.0)
    m = nn.Embedding(8, 5, max_norm=1.0)
    load_from_torch(m, tm)
    idx = np.array([0, 3, 3, 7])
    out = m(sj.tensor(idx))
    tout = tm(torch.from_numpy(idx))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.weight.numpy(), tm.weight.detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_embedding_bad_indices():
    m = nn.Embedding(25000, 8)
    with pytest.raises(IndexError) as e:
        m(sj.tensor([[1, 25003]]))
    assert "25003" in str(e.value) and "25000" in str(e.value)
    assert str(e.value).startswith("Embedding(num_embeddings=25000)")
    with pytest.raises(IndexError, match="-1"):
        m(sj.tensor([-1, 2]))
    with pytest.raises(TypeError, match="integer"):
        m(sj.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)


def test_embedding_from_pretrained():
    vectors = randn(4, 3)
    m = nn.Embedding.from_pretrained(sj.tensor(vectors))
    assert not m.weight.requires_grad
    np.testing.assert_array_equal(m(sj.tensor([2])).numpy()[0], vectors[2])
    assert nn.Embedding.from_pretrained(vectors, freeze=False).weight.requires_grad


# ----------------------------------------------------------------------------- dropout


def test_dropout_statistics_and_gradient():
    sj.manual_seed(0)
    p = 0.3
    x = sj.ones(200, 500, requires_grad=True)
    y = nn.Dropout(p)(x)
    vals = y.numpy()
    zero = vals == 0
    assert abs(zero.mean() - p) < 0.005  # 100,000 draws: std of the fraction is 0.0014
    np.testing.assert_allclose(vals[~zero], 1 / (1 - p), rtol=1e-6)
    up = randn(200, 500)
    y.backward(sj.tensor(up))
    np.testing.assert_allclose(x.grad.numpy(), up * vals, rtol=1e-6)
    assert y.dtype == np.float32
    assert F.dropout(sj.ones(10, dtype=sj.float64), 0.5).dtype == np.float64


def test_dropout_eval_identity_and_edge_probabilities():
    m = nn.Dropout(0.5).eval()
    x = sj.randn(4, 5)
    assert m(x) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    assert y.shape == x.shape and not y.numpy().any()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(bad)
        with pytest.raises(ValueError, match="between 0 and 1"):
            F.dropout(x, bad)


def test_dropout_is_reproducible_with_manual_seed():
    x = sj.ones(50, 50)
    sj.manual_seed(123)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    sj.manual_seed(123)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)
    assert not np.array_equal(a, b)
    g = sj.Generator(7)
    c = F.dropout(x, 0.5, generator=g).numpy()
    np.testing.assert_array_equal(F.dropout(x, 0.5, generator=sj.Generator(7)).numpy(), c)


def test_dropout_gradcheck_with_a_fixed_mask():
    x = t64(randn(4, 5, seed=7))
    # a fresh generator with the same seed on every call gives the same mask each time
    assert gradcheck(lambda x: F.dropout(x, 0.4, generator=sj.Generator(3)), (x,))
    x4 = t64(randn(2, 3, 2, 2, seed=8))
    assert gradcheck(lambda x: F.dropout2d(x, 0.5, generator=sj.Generator(4)), (x4,))


def test_dropout2d_zeroes_whole_channels():
    sj.manual_seed(1)
    x = sj.ones(8, 16, 5, 5)
    y = nn.Dropout2d(0.5)(x).numpy()
    per_channel = y.reshape(8, 16, 25)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0 < (per_channel[..., 0] == 0).mean() < 1
    with pytest.warns(UserWarning, match="2-D input to dropout2d"):  # torch warns and runs
        F.dropout2d(sj.ones(3, 4), 0.5)
    assert nn.Dropout2d(0.5).eval()(x) is x


# ----------------------------------------------------------------------------- activations


ACTIVATIONS = [
    ("ReLU", lambda n: n.ReLU(), 1.0),
    ("LeakyReLU", lambda n: n.LeakyReLU(0.2), 1.0),
    ("ELU", lambda n: n.ELU(alpha=0.7), 1.0),
    ("GELU", lambda n: n.GELU(), 3.0),
    ("GELU-tanh", lambda n: n.GELU(approximate="tanh"), 3.0),
    ("SiLU", lambda n: n.SiLU(), 3.0),
    ("Sigmoid", lambda n: n.Sigmoid(), 3.0),
    ("Tanh", lambda n: n.Tanh(), 3.0),
    ("Softmax", lambda n: n.Softmax(dim=1), 3.0),
    ("LogSoftmax", lambda n: n.LogSoftmax(dim=-1), 3.0),
    ("Flatten", lambda n: n.Flatten(), 1.0),
    ("Unflatten", lambda n: n.Unflatten(1, (2, 3)), 1.0),
]


@pytest.mark.parametrize("name,make,scale", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_modules_match_torch(name, make, scale):
    torch = _torch()
    x = randn(4, 6, seed=5, scale=scale)
    x[np.abs(x) < 0.05] = 0.3  # away from kinks
    compare_with_torch(make(nn), make(torch.nn), [x])
    x64 = sj.tensor(x.astype(np.float64))
    assert make(nn)(x64).dtype == np.float64


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_extreme_inputs_match_torch(approximate):
    torch = _torch()
    x = np.array([-40, -12, -6, -3, -1e-3, 0, 1e-3, 3, 6, 12, 40], dtype=np.float32)
    compare_with_torch(lambda t: F.gelu(t, approximate), lambda t: torch.nn.functional.gelu(
        t, approximate=approximate), [x])
    # float64 against torch's float64 to near double precision
    x64 = np.linspace(-9, 9, 201)
    ours = F.gelu(sj.tensor(x64), approximate).numpy()
    ref = torch.nn.functional.gelu(torch.from_numpy(x64), approximate=approximate).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fn", [
    lambda x: F.gelu(x), lambda x: F.gelu(x, "tanh"), lambda x: F.elu(x, 0.7),
    lambda x: F.silu(x), lambda x: F.leaky_relu(x, 0.2)], ids=["gelu", "gelu_tanh", "elu",
                                                                 "silu", "leaky_relu"])
def test_activation_gradcheck(fn):
    x = randn(3, 5, seed=6, scale=2.0).astype(np.float64)
    x[np.abs(x) < 0.05] = 0.4
    assert gradcheck(fn, (t64(x),))


def test_softmax_implicit_dim_warns_like_torch():
    x = sj.randn(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = F.softmax(x)
    np.testing.assert_allclose(y.numpy().sum(1), 1, rtol=1e-6)


def test_activation_reprs_match_torch():
    torch = _torch()
    for _, make, _ in ACTIVATIONS:
        assert repr(make(nn)) == repr(make(torch.nn))
    assert repr(nn.ReLU(inplace=True)) == repr(torch.nn.ReLU(inplace=True))
    assert repr(nn.Dropout(0.25)) == repr(torch.nn.Dropout(0.25))
    assert repr(nn.Embedding(25000, 100, padding_idx=1)) == repr(
        torch.nn.Embedding(25000, 100, padding_idx=1))


def test_unflatten_bad_size():
    with pytest.raises(ValueError, match="Unflatten"):
        nn.Unflatten(1, (4, 4))(sj.ones(2, 6))


# ----------------------------------------------------------------------------- BatchNorm


BN_CASES = [
    ("1d-2d", lambda n, **kw: n.BatchNorm1d(5, **kw), (16, 5)),
    ("1d-3d", lambda n, **kw: n.BatchNorm1d(5, **kw), (8, 5, 7)),
    ("2d", lambda n, **kw: n.BatchNorm2d(5, **kw), (6, 5, 4, 3)),
]


@pytest.mark.parametrize("name,make,shape", BN_CASES, ids=[c[0] for c in BN_CASES])
@pytest.mark.parametrize("kw", [{}, {"momentum": None}, {"affine": False}, {"bias": False},
                                {"track_running_stats": False}, {"momentum": 0.3, "eps": 1e-3}],
                         ids=["default", "cumulative", "no-affine", "no-bias", "no-tracking",
                              "custom"])
def test_batchnorm_train_then_eval_matches_torch(name, make, shape, kw):
    torch = _torch()
    tm, m = make(torch.nn, **kw), make(nn, **kw)
    with torch.no_grad():  # non-trivial affine parameters
        if tm.weight is not None:
            tm.weight.copy_(torch.from_numpy(randn(5, seed=8) + 1))
        if tm.bias is not None:
            tm.bias.copy_(torch.from_numpy(randn(5, seed=9)))
    load_from_torch(m, tm)
    params = dict(m.named_parameters()), dict(tm.named_parameters())
    for step in range(4):
        for p in list(params[0].values()) + list(params[1].values()):
            p.grad = None
        x = randn(*shape, seed=10 + step, scale=2.0) + 0.5 * step
        compare_with_torch(m, tm, [x], sj_params=params[0], torch_params=params[1],
                           rtol=1e-4, atol=1e-5, grad_rtol=1e-3, grad_atol=1e-4, seed=step)
    sd, tsd = m.state_dict(), tm.state_dict()
    assert list(sd) == list(tsd)
    for k in sd:
        np.testing.assert_allclose(sd[k].numpy(), tsd[k].numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=k)
    m.eval()
    tm.eval()
    compare_with_torch(m, tm, [randn(*shape, seed=20)], sj_params=params[0],
                       torch_params=params[1], rtol=1e-4, atol=1e-5, grad_rtol=1e-3,
                       grad_atol=1e-4)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2), (3, 3, 2, 2)])
def test_batch_norm_gradcheck(training, shape):
    x = t64(randn(*shape, seed=11, scale=2.0))
    w, b = t64(randn(3, seed=12) + 1), t64(randn(3, seed=13))
    rm, rv = sj.tensor(randn(3, seed=14).astype(np.float64)), sj.tensor(
        np.abs(randn(3, seed=15)).astype(np.float64) + 0.5)

    def fn(x, w, b):
        # fresh copies of the buffers: gradcheck calls fn many times
        return F.batch_norm(x, sj.tensor(rm.numpy().copy()), sj.tensor(rv.numpy().copy()),
                            w, b, training=training)

    assert gradcheck(fn, (x, w, b))
    assert gradcheck(lambda x: F.batch_norm(x, None, None, training=True), (x,))


def test_norm_layers_default_init_matches_torch():
    torch = _torch()
    for ours, theirs in ((nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)),
                         (nn.BatchNorm1d(3, affine=False), torch.nn.BatchNorm1d(3, affine=False)),
                         (nn.LayerNorm((2, 3)), torch.nn.LayerNorm((2, 3)))):
        sd, tsd = ours.state_dict(), theirs.state_dict()
        assert list(sd) == list(tsd)
        for k in sd:
            assert sd[k].dtype == tsd[k].numpy().dtype, k
            np.testing.assert_array_equal(sd[k].numpy(), tsd[k].numpy(), err_msg=k)
        assert repr(ours) == repr(theirs)


def test_batchnorm_bad_input_names_both_channel_counts():
    with pytest.raises(ValueError) as e:
        nn.BatchNorm2d(16)(sj.ones(8, 3, 28, 28))
    assert str(e.value) == ("BatchNorm2d(16): expected input of shape (N, 16, H, W), got "
                            "(8, 3, 28, 28)")
    with pytest.raises(ValueError, match=r"\(N, 4\) or \(N, 4, L\), got \(2, 4, 3, 3\)"):
        nn.BatchNorm1d(4)(sj.ones(2, 4, 3, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(sj.ones(1, 4))
    assert nn.BatchNorm1d(4).eval()(sj.ones(1, 4)).shape == (1, 4)


def test_batchnorm_float64_module():
    m = nn.BatchNorm2d(3).double()
    y = m(sj.randn(4, 3, 2, 2, dtype=sj.float64))
    assert y.dtype == np.float64 and m.running_mean.dtype == np.float64
    assert m.num_batches_tracked.dtype == np.int64 and int(m.num_batches_tracked) == 1


# ----------------------------------------------------------------------------- LayerNorm


@pytest.mark.parametrize("normalized,shape", [(6, (4, 6)), ((3, 4), (2, 5, 3, 4)), (5, (5,))])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_matches_torch(normalized, shape, affine):
    torch = _torch()
    tm = torch.nn.LayerNorm(normalized, elementwise_affine=affine)
    m = nn.LayerNorm(normalized, elementwise_affine=affine)
    if affine:
        with torch.no_grad():
            tm.weight.copy_(torch.from_numpy(randn(*tm.weight.shape, seed=1) + 1))
            tm.bias.copy_(torch.from_numpy(randn(*tm.bias.shape, seed=2)))
    compare_modules(m, tm, randn(*shape, seed=3, scale=3.0) + 2.0, rtol=1e-5, atol=1e-5)
    assert repr(m) == repr(tm)


def test_layer_norm_gradcheck():
    x = t64(randn(3, 2, 4, seed=4, scale=2.0))
    w, b = t64(randn(2, 4, seed=5) + 1), t64(randn(2, 4, seed=6))
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (2, 4), w, b), (x, w, b))
    assert gradcheck(lambda x: F.layer_norm(x, 4), (x,))


def test_layernorm_shape_mismatch_names_both():
    with pytest.raises(ValueError) as e:
        nn.LayerNorm(10)(sj.ones(4, 7))
    assert str(e.value) == ("LayerNorm((10,)): expected input whose last 1 dimension(s) are "
                            "(10,), got shape (4, 7)")


# ----------------------------------------------------------------------------- misc


def test_pad_and_one_hot_match_torch():
    torch = _torch()
    compare_with_torch(lambda x: F.pad(x, (1, 2, 0, 1), value=0.5),
                       lambda x: torch.nn.functional.pad(x, (1, 2, 0, 1), value=0.5),
                       [randn(2, 3, 4)])
    idx = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(F.one_hot(sj.tensor(idx), 5).numpy(),
                                  torch.nn.functional.one_hot(torch.from_numpy(idx), 5).numpy())


def test_functional_rejects_non_tensors_and_int_inputs():
    with pytest.raises(TypeError, match="relu: expected a Tensor"):
        F.relu(np.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        F.gelu(sj.tensor([1, 2]))
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


def test_every_nn_op_function_is_tested():
    """Each Function in shenjing.ops.nn_ops is compared with torch and gradchecked above."""
    tested = {nn_ops.Linear, nn_ops.Embedding, nn_ops.Dropout, nn_ops.BatchNorm,
              nn_ops.LayerNorm, nn_ops.Gelu, nn_ops.Elu, nn_ops.Silu}
    found = {c for c in vars(nn_ops).values()
             if isinstance(c, type) and issubclass(c, Function) and c is not Function}
    assert found == tested
