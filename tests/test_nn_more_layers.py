"""The newer nn layers against torch 2.13 on the same weights and inputs: outputs, input
gradients and parameter gradients (random upstream gradient), plus float64 gradchecks of
the functional forms, torch's default initialization statistics and error messages."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
from nn_compare import compare, load_from_torch, to_sj
from op_specs import make_inputs
from op_specs_nn import OPS_NN

import shenjing as sj
from shenjing import nn
from shenjing.autograd import gradcheck
from shenjing.nn import functional as F

torch = pytest.importorskip("torch")


def _x(*shape, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


# (name, module factory given the library, input shapes)
CASES = [
    ("identity", lambda lib: lib.nn.Identity(3, foo=1), [(2, 3)]),
    ("gelu", lambda lib: lib.nn.GELU(), [(3, 5)]),
    ("gelu_tanh", lambda lib: lib.nn.GELU(approximate="tanh"), [(3, 5)]),
    ("silu", lambda lib: lib.nn.SiLU(), [(3, 5)]),
    ("mish", lambda lib: lib.nn.Mish(), [(3, 5)]),
    ("softplus", lambda lib: lib.nn.Softplus(), [(3, 5)]),
    ("softplus_beta_threshold", lambda lib: lib.nn.Softplus(beta=2.0, threshold=1.5), [(4, 5)]),
    ("hardtanh", lambda lib: lib.nn.Hardtanh(-0.7, 1.3), [(3, 5)]),
    ("relu6", lambda lib: lib.nn.ReLU6(), [(3, 5)]),
    ("pixel_shuffle", lambda lib: lib.nn.PixelShuffle(2), [(2, 8, 3, 4)]),
    ("pixel_shuffle_5d", lambda lib: lib.nn.PixelShuffle(3), [(2, 2, 9, 2, 3)]),
    ("pixel_unshuffle", lambda lib: lib.nn.PixelUnshuffle(2), [(2, 3, 4, 6)]),
    ("bilinear", lambda lib: lib.nn.Bilinear(4, 3, 5), [(6, 4), (6, 3)]),
    ("bilinear_nobias_3d", lambda lib: lib.nn.Bilinear(2, 3, 4, bias=False),
     [(2, 5, 2), (2, 5, 3)]),
    ("cosine_similarity", lambda lib: lib.nn.CosineSimilarity(), [(4, 6), (4, 6)]),
    ("cosine_similarity_dim", lambda lib: lib.nn.CosineSimilarity(dim=-1, eps=1e-6),
     [(2, 3, 5), (3, 5)]),
    ("group_norm", lambda lib: lib.nn.GroupNorm(2, 6), [(3, 6, 4, 5)]),
    ("group_norm_1d_noaffine", lambda lib: lib.nn.GroupNorm(3, 3, affine=False), [(4, 3, 7)]),
    ("group_norm_2d_input", lambda lib: lib.nn.GroupNorm(2, 4, eps=1e-3), [(5, 4)]),
    ("instance_norm1d", lambda lib: lib.nn.InstanceNorm1d(3), [(4, 3, 7)]),
    ("instance_norm1d_unbatched", lambda lib: lib.nn.InstanceNorm1d(3, affine=True), [(3, 7)]),
    ("instance_norm2d_affine", lambda lib: lib.nn.InstanceNorm2d(3, affine=True),
     [(2, 3, 4, 5)]),
    ("upsample_nearest", lambda lib: lib.nn.Upsample(scale_factor=2), [(2, 3, 4, 5)]),
    ("upsample_nearest_size", lambda lib: lib.nn.Upsample(size=(7, 3)), [(2, 3, 4, 5)]),
    ("upsample_nearest_frac", lambda lib: lib.nn.Upsample(scale_factor=1.7), [(1, 2, 5, 3)]),
    ("upsample_nearest_1d", lambda lib: lib.nn.Upsample(scale_factor=3), [(2, 3, 4)]),
    ("upsample_nearest_exact", lambda lib: lib.nn.Upsample(size=(5, 7), mode="nearest-exact"),
     [(1, 2, 3, 4)]),
    ("upsample_bilinear", lambda lib: lib.nn.Upsample(scale_factor=2, mode="bilinear"),
     [(2, 3, 4, 5)]),
    ("upsample_bilinear_align",
     lambda lib: lib.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
     [(2, 3, 4, 5)]),
    ("upsample_bilinear_size_down",
     lambda lib: lib.nn.Upsample(size=(3, 7), mode="bilinear"), [(1, 2, 5, 4)]),
    ("upsample_bilinear_size_align",
     lambda lib: lib.nn.Upsample(size=(6, 1), mode="bilinear", align_corners=True),
     [(1, 2, 5, 4)]),
    ("upsample_linear_1d", lambda lib: lib.nn.Upsample(scale_factor=2.5, mode="linear"),
     [(2, 3, 4)]),
    ("upsample_area_down", lambda lib: lib.nn.Upsample(size=(2, 3), mode="area"),
     [(2, 3, 5, 7)]),
    ("upsampling_bilinear2d", lambda lib: lib.nn.UpsamplingBilinear2d(scale_factor=2),
     [(1, 2, 3, 3)]),
    ("upsampling_nearest2d", lambda lib: lib.nn.UpsamplingNearest2d(size=5), [(1, 2, 3, 3)]),
    ("zero_pad2d", lambda lib: lib.nn.ZeroPad2d((1, 2, 0, 3)), [(2, 3, 4, 5)]),
    ("constant_pad1d", lambda lib: lib.nn.ConstantPad1d(2, 3.5), [(2, 3, 4)]),
    ("reflection_pad2d", lambda lib: lib.nn.ReflectionPad2d((2, 1, 3, 0)), [(2, 3, 4, 5)]),
    ("reflection_pad1d", lambda lib: lib.nn.ReflectionPad1d(3), [(2, 3, 4)]),
    ("replication_pad2d", lambda lib: lib.nn.ReplicationPad2d(2), [(1, 2, 3, 3)]),
    ("replication_pad1d", lambda lib: lib.nn.ReplicationPad1d((0, 4)), [(2, 2, 3)]),
    ("circular_pad2d", lambda lib: lib.nn.CircularPad2d((1, 3, 2, 0)), [(1, 2, 3, 4)]),
    ("circular_pad1d", lambda lib: lib.nn.CircularPad1d(2), [(2, 2, 3)]),
    ("conv_transpose2d", lambda lib: lib.nn.ConvTranspose2d(3, 4, 3), [(2, 3, 5, 4)]),
    ("conv_transpose2d_stride_pad",
     lambda lib: lib.nn.ConvTranspose2d(2, 3, (3, 2), stride=(2, 3), padding=(1, 1),
                                        output_padding=(1, 2)), [(2, 2, 4, 3)]),
    ("conv_transpose2d_dilation_groups",
     lambda lib: lib.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2,
                                        bias=False), [(2, 4, 5, 5)]),
    ("conv_transpose2d_outpad_gt_pad",
     lambda lib: lib.nn.ConvTranspose2d(2, 2, 2, stride=3, output_padding=2), [(1, 2, 3, 3)]),
    ("conv_transpose2d_unbatched", lambda lib: lib.nn.ConvTranspose2d(2, 3, 2, stride=2),
     [(2, 3, 3)]),
    ("conv_transpose1d", lambda lib: lib.nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1),
     [(2, 3, 6)]),
    ("conv_transpose1d_groups_dil",
     lambda lib: lib.nn.ConvTranspose1d(4, 4, 3, stride=3, output_padding=1, groups=4,
                                        dilation=2), [(2, 4, 5)]),
]


@pytest.mark.parametrize("name,factory,shapes", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_torch(name, factory, shapes):
    sj.manual_seed(0)
    m, tm = factory(sj), factory(torch)
    load_from_torch(m, tm)
    inputs = [_x(*s, seed=i + 1) for i, s in enumerate(shapes)]
    compare(torch, m, tm, inputs, name)


def test_instance_norm_running_stats_train_then_eval():
    tm = torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)
    m = nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)
    with torch.no_grad():
        tm.weight.uniform_(0.5, 1.5)
        tm.bias.uniform_(-1, 1)
    load_from_torch(m, tm)
    for step in range(3):
        compare(torch, m, tm, [_x(4, 3, 5, 6, seed=step, low=-1, high=3)], f"in_train{step}")
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(m.state_dict()[key].numpy(), tm.state_dict()[key].numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=key)
    m.eval()
    tm.eval()
    compare(torch, m, tm, [_x(2, 3, 4, 4, seed=9)], "in_eval")


def test_batchnorm_state_dict_keys_of_instance_and_group_norm_match_torch():
    for make in (lambda lib: lib.nn.InstanceNorm1d(4, affine=True, track_running_stats=True),
                 lambda lib: lib.nn.GroupNorm(2, 4), lambda lib: lib.nn.Bilinear(2, 3, 4),
                 lambda lib: lib.nn.ConvTranspose2d(4, 2, 3, groups=2)):
        assert list(make(sj).state_dict()) == list(make(torch).state_dict())


# (factory, torch's bound for every parameter: 1/sqrt(fan_in), fan_in from weight dim 1)
INITS = {
    "conv_transpose2d": (lambda lib: lib.nn.ConvTranspose2d(64, 32, 3, groups=2), 1 / 12.0),
    "conv_transpose1d": (lambda lib: lib.nn.ConvTranspose1d(16, 8, 5), 1 / np.sqrt(40)),
    "bilinear": (lambda lib: lib.nn.Bilinear(40, 30, 20), 1 / np.sqrt(40)),
}


@pytest.mark.parametrize("kind", sorted(INITS))
def test_default_init_bounds_match_torch(kind):
    """Uniform in +-bound: torch's samples stay inside it, and so must ours, while a big
    weight's samples fill it (max near the bound, std near bound / sqrt(3))."""
    make, bound = INITS[kind]
    m, tm = make(sj), make(torch)
    for (name, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
        got = p.numpy()
        assert got.shape == tuple(tp.shape), name
        assert float(tp.detach().abs().max()) <= bound * (1 + 1e-6), name  # the bound is right
        assert float(np.abs(got).max()) <= bound * (1 + 1e-6), name
        if got.size > 1000:
            assert float(np.abs(got).max()) > 0.98 * bound, name
            assert abs(float(got.std()) - bound / np.sqrt(3)) < 0.05 * bound, name


FUNCTIONAL = [
    ("softplus", lambda x: F.softplus(x, beta=1.5, threshold=2.0), [(3, 4)]),
    ("mish", lambda x: F.mish(x), [(3, 4)]),
    ("hardtanh", lambda x: F.hardtanh(x, -0.5, 0.5), [(3, 4)]),
    ("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), [(1, 4, 2, 3)]),
    ("bilinear", lambda a, b, w, c: F.bilinear(a, b, w, c), [(3, 2), (3, 4), (5, 2, 4), (5,)]),
    ("cosine_similarity", lambda a, b: F.cosine_similarity(a, b), [(3, 4), (3, 4)]),
    ("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)]),
    ("instance_norm", lambda x: F.instance_norm(x), [(2, 3, 4)]),
    ("interpolate_bilinear", lambda x: F.interpolate(x, size=(5, 3), mode="bilinear"),
     [(1, 2, 3, 4)]),
    ("interpolate_nearest", lambda x: F.interpolate(x, scale_factor=1.5), [(1, 2, 3, 4)]),
    ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                            output_padding=1),
     [(2, 2, 3, 3), (2, 3, 3, 3), (3,)]),
    ("conv_transpose1d", lambda x, w: F.conv_transpose1d(x, w, stride=2, groups=2, dilation=2),
     [(1, 4, 5), (4, 1, 3)]),
    ("pad_reflect", lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [(1, 2, 3, 4)]),
    ("pad_circular", lambda x: F.pad(x, (3, 1), mode="circular"), [(2, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", FUNCTIONAL, ids=[c[0] for c in FUNCTIONAL])
def test_functional_gradcheck_float64(name, fn, shapes):
    xs = [sj.tensor(_x(*s, seed=i).astype(np.float64), requires_grad=True)
          for i, s in enumerate(shapes)]
    assert fn(*xs).dtype == np.float64
    assert gradcheck(fn, xs)


def test_conv_transpose_output_size_argument():
    tm = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    m = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    load_from_torch(m, tm)
    x = _x(1, 2, 4, 4)
    for size in [(7, 7), (8, 8), (7, 8)]:
        compare(torch, m, tm, [x], f"ct_size{size}",
                call=lambda mod, v, size=size: mod(v, output_size=size))
    with pytest.raises(ValueError, match="output size"):
        m(to_sj(x), output_size=(10, 10))


def test_conv_transpose_refuses_bad_arguments():
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(2, 2, 3, stride=1, output_padding=1)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.ConvTranspose2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        nn.ConvTranspose2d(2, 2, 3)(sj.zeros(1, 3, 4, 4))


def test_dropout2d_on_2d_and_3d_inputs_warns_and_drops_as_torch():
    """2-D input: torch warns and drops single elements (mask over dims 0-1)."""
    x = sj.ones(200, 50)
    d = nn.Dropout2d(0.5)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        y = d(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    row_means = (y == 0).mean(1)
    assert 0 < row_means.min() and row_means.max() < 1  # elements, not whole rows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tw = [str(w.message) for w in _torch_warnings(torch.nn.Dropout2d(0.5), (4, 3))]
    assert any("2-D input" in w for w in tw)
    with pytest.warns(UserWarning, match="3D input to dropout2d"):
        y3 = nn.Dropout2d(0.5)(sj.ones(40, 30, 20)).numpy()
    assert np.all(y3 == y3[:, :, :1])  # a whole (n, c) channel is kept or dropped
    d.eval()
    with pytest.warns(UserWarning):
        assert np.array_equal(d(x).numpy(), x.numpy())


def _torch_warnings(module, shape):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        module(torch.ones(*shape))
    return w


def test_interpolate_refuses_bad_arguments():
    x = sj.zeros(1, 2, 3, 3)
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="mode"):
        F.interpolate(x, scale_factor=2, mode="cubic")
    with pytest.raises(ValueError, match="4-D"):
        F.interpolate(sj.zeros(1, 2, 3), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)


def test_pad_modes_refuse_too_wide_padding():
    with pytest.raises(ValueError, match="smaller than its size 3"):
        nn.ReflectionPad1d(3)(sj.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="at most its size 3"):
        F.pad(sj.zeros(1, 2, 3), (4, 0), mode="circular")
    with pytest.raises(ValueError, match="tuple of 4 ints"):
        nn.ZeroPad2d((1, 2, 3))


def test_group_norm_refuses_indivisible_channels():
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"\(N, 4, \*\)"):
        nn.GroupNorm(2, 4)(sj.zeros(2, 3, 5))


# ----------------------------------------------------------------------------- op rows
# tests/op_specs_nn.py's rows through test_ops.py's three checks, until the lead merges them.


def _outs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _sj_args(arrays, grad: bool, dtype=None) -> list:
    return [sj.tensor(a, dtype=dtype, requires_grad=grad) if a.dtype.kind == "f"
            else sj.tensor(a) for a in arrays]


def _torch_args(arrays, grad: bool) -> list:
    ts = [torch.from_numpy(a.copy()) for a in arrays]
    return [t.requires_grad_() if grad and t.is_floating_point() else t for t in ts]


@pytest.mark.parametrize("spec", OPS_NN, ids=str)
def test_op_row_forward_matches_torch(spec):
    arrays = make_inputs(spec)
    outs = _outs(spec.op(sj, *_sj_args(arrays, False)))
    touts = _outs((spec.torch_op or spec.op)(torch, *_torch_args(arrays, False)))
    assert len(outs) == len(touts)
    for o, t in zip(outs, touts):
        assert o.dtype == t.numpy().dtype and o.shape == tuple(t.shape)
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=spec.rtol, atol=spec.atol)


@pytest.mark.parametrize("spec", [s for s in OPS_NN if s.grad], ids=str)
def test_op_row_backward_matches_torch(spec):
    arrays = make_inputs(spec)
    xs = _sj_args(arrays, True)
    ts = _torch_args(arrays, True)
    outs, touts = _outs(spec.op(sj, *xs)), _outs((spec.torch_op or spec.op)(torch, *ts))
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + 1)
    ups = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
    for o, g in zip(outs, ups):
        o.backward(sj.tensor(g), retain_graph=True)
    want = torch.autograd.grad(touts, [t for t in ts if t.requires_grad],
                               [torch.from_numpy(g) for g in ups])
    for i, (x, w) in enumerate(zip([x for x in xs if x.requires_grad], want)):
        assert x.grad is not None and x.grad.dtype == x.dtype, f"{spec.name}: input {i}"
        np.testing.assert_allclose(x.grad.numpy(), w.numpy(), rtol=spec.grad_rtol,
                                   atol=spec.grad_atol, err_msg=f"{spec.name}: input {i}")


@pytest.mark.parametrize("spec", [s for s in OPS_NN if s.grad and s.gradcheck], ids=str)
def test_op_row_gradcheck_float64(spec):
    xs = _sj_args(make_inputs(spec), True, dtype=sj.float64)
    for k, o in enumerate(_outs(spec.op(sj, *xs))):
        assert o.dtype == np.float64
        assert gradcheck(lambda *v, k=k: _outs(spec.op(sj, *v))[k], xs)


def test_op_rows_cover_every_new_function():
    from shenjing.ops.attention import Attention
    from shenjing.ops.backward_hook import HookPack
    from shenjing.ops.conv_transpose import ConvTranspose

    covered = {c for s in OPS_NN for c in s.covers}
    assert {Attention, HookPack, ConvTranspose} <= covered
