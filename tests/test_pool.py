"""Max / average / adaptive pooling, 1-D and 2-D: against torch (output and input gradient
under a random upstream gradient, ties included), central differences in float64, dtypes,
return_indices, repr, and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
import shenjing.nn as nn
from shenjing.autograd import gradcheck
from shenjing.nn import functional_conv as F


def _torch():
    return pytest.importorskip("torch")


def _compare(fn, tfn, x_np: np.ndarray, exact: bool = False, seed: int = 1):
    """fn(x) vs tfn(xt): output and input gradient under one random upstream gradient."""
    torch = _torch()
    x = sj.tensor(x_np, requires_grad=True)
    xt = torch.tensor(x_np, requires_grad=True)
    y, yt = fn(x), tfn(xt)
    assert y.shape == tuple(yt.shape) and y.dtype == x_np.dtype
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(x_np.dtype)
    y.backward(sj.tensor(g))
    yt.backward(torch.tensor(g))
    assert x.grad.dtype == x_np.dtype
    if exact:  # max pooling only moves values: results must be bit-identical
        np.testing.assert_array_equal(y.numpy(), yt.detach().numpy())
    else:
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _ties(*shape, seed=0):
    """Small integers (many equal values in a window) and whole windows of zeros, as after
    a ReLU: torch sends each window's gradient to the first maximum in scan order."""
    x = np.random.default_rng(seed).integers(0, 3, shape).astype(np.float32)
    x[..., :4, :4] = 0.0
    return x


MAX2D_CASES = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2},  # AlexNet's overlapping windows
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 2, "stride": 2, "ceil_mode": True},  # odd size: a clipped last window
    {"kernel_size": (2, 3), "stride": (1, 2)},
    {"kernel_size": 3, "stride": 1, "padding": 1, "dilation": 2},
    {"kernel_size": (2, 1), "stride": 3},  # stride > kernel
    {"kernel_size": 4},  # large tiles: the reduction path
    {"kernel_size": (5, 4), "ceil_mode": True},
]


@pytest.mark.parametrize("kwargs", MAX2D_CASES)
@pytest.mark.parametrize("make", [_randn, _ties])
def test_max_pool2d_matches_torch(kwargs, make):
    torch = _torch()
    x = make(2, 3, 11, 9)
    _compare(lambda t: F.max_pool2d(t, **kwargs),
             lambda t: torch.nn.functional.max_pool2d(t, **kwargs), x, exact=True)


def test_max_over_time_textcnn():
    """TextCNN's F.max_pool2d(conv_out, (T, 1)): one window over the whole time axis."""
    torch = _torch()
    for x in (_randn(4, 10, 37, 1), _ties(4, 10, 37, 1)):
        _compare(lambda t: F.max_pool2d(t, (37, 1)),
                 lambda t: torch.nn.functional.max_pool2d(t, (37, 1)), x, exact=True)


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2,
                                    "padding": 1, "dilation": 2, "ceil_mode": True}])
def test_max_pool1d_matches_torch(kwargs):
    torch = _torch()
    for x in (_randn(2, 3, 15), _ties(2, 3, 15)):
        _compare(lambda t: F.max_pool1d(t, **kwargs),
                 lambda t: torch.nn.functional.max_pool1d(t, **kwargs), x, exact=True)


@pytest.mark.parametrize("kwargs", [
    {"kernel_size": 3, "stride": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 2, "padding": 1, "dilation": 2},
    {"kernel_size": 4},
])
def test_return_indices_match_torch(kwargs):
    torch = _torch()
    for x in (_randn(2, 3, 10, 9), _ties(2, 3, 10, 9)):
        out, idx = F.max_pool2d(sj.tensor(x), return_indices=True, **kwargs)
        tout, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True,
                                                    **kwargs)
        np.testing.assert_array_equal(out.numpy(), tout.numpy())
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    out, idx = nn.MaxPool1d(3, 2, return_indices=True)(sj.tensor(_ties(2, 3, 11)))
    tout, tidx = torch.nn.MaxPool1d(3, 2, return_indices=True)(torch.tensor(_ties(2, 3, 11)))
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


AVG2D_CASES = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": (2, 3), "stride": (2, 2), "ceil_mode": True, "count_include_pad": False},
    {"kernel_size": 2, "stride": 1, "padding": 1, "divisor_override": 3},
    {"kernel_size": 4},  # large tiles: the reduction path
    {"kernel_size": (5, 4), "ceil_mode": True},
]


@pytest.mark.parametrize("kwargs", AVG2D_CASES)
def test_avg_pool2d_matches_torch(kwargs):
    torch = _torch()
    _compare(lambda t: F.avg_pool2d(t, **kwargs),
             lambda t: torch.nn.functional.avg_pool2d(t, **kwargs), _randn(2, 3, 11, 9))


@pytest.mark.parametrize("kwargs", [{"kernel_size": 3}, {"kernel_size": 4, "stride": 3,
                                    "padding": 2, "ceil_mode": True,
                                    "count_include_pad": False}])
def test_avg_pool1d_matches_torch(kwargs):
    torch = _torch()
    _compare(lambda t: F.avg_pool1d(t, **kwargs),
             lambda t: torch.nn.functional.avg_pool1d(t, **kwargs), _randn(2, 3, 16))


ADAPTIVE_CASES = [
    ((6, 6), (2, 3, 6, 6)),  # AlexNet at 224 / 227: 6x6 maps, an identity
    ((6, 6), (2, 3, 13, 13)),  # bins of 2 and 3, overlapping
    ((6, 6), (1, 2, 5, 5)),  # more outputs than inputs
    (4, (2, 3, 8, 12)),  # tiles: the plain pool kernels
    ((None, 3), (2, 3, 7, 7)),
    ((1, 1), (2, 3, 7, 5)),  # global pooling
    ((3, 2), (2, 3, 10, 7)),
]


@pytest.mark.parametrize("size, shape", ADAPTIVE_CASES)
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool2d_matches_torch(size, shape, kind):
    torch = _torch()
    fn = getattr(F, f"adaptive_{kind}_pool2d")
    tfn = getattr(torch.nn.functional, f"adaptive_{kind}_pool2d")
    for make in ((_randn, _ties) if kind == "max" else (_randn,)):
        _compare(lambda t: fn(t, size), lambda t: tfn(t, size), make(*shape),
                 exact=kind == "max")


@pytest.mark.parametrize("size, length", [(4, 10), (3, 9), (7, 5)])
def test_adaptive_pool1d_matches_torch(size, length):
    torch = _torch()
    x = _ties(2, 3, length)
    _compare(lambda t: F.adaptive_max_pool1d(t, size),
             lambda t: torch.nn.functional.adaptive_max_pool1d(t, size), x, exact=True)
    _compare(lambda t: F.adaptive_avg_pool1d(t, size),
             lambda t: torch.nn.functional.adaptive_avg_pool1d(t, size), _randn(2, 3, length))


def test_adaptive_max_return_indices_match_torch():
    torch = _torch()
    for size, shape in ((3, (2, 3, 10, 7)), (2, (2, 3, 8, 8))):
        x = _ties(*shape)
        out, idx = nn.AdaptiveMaxPool2d(size, return_indices=True)(sj.tensor(x))
        _, tidx = torch.nn.AdaptiveMaxPool2d(size, return_indices=True)(torch.tensor(x))
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_modules_match_functional_and_accept_unbatched_and_any_layout():
    torch = _torch()
    x = _randn(2, 3, 9, 8)
    layers = [(nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
              (nn.AvgPool2d(2, count_include_pad=False, padding=1),
               torch.nn.AvgPool2d(2, count_include_pad=False, padding=1)),
              (nn.AdaptiveAvgPool2d((None, 5)), torch.nn.AdaptiveAvgPool2d((None, 5))),
              (nn.AdaptiveMaxPool2d(4), torch.nn.AdaptiveMaxPool2d(4))]
    chwn = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    for layer, tlayer in layers:
        ref = tlayer(torch.tensor(x)).numpy()
        for inp, expected in ((x, ref), (chwn, ref), (x[0], ref[0])):
            np.testing.assert_allclose(layer(sj.from_numpy(inp)).numpy(), expected, rtol=1e-5,
                                       atol=1e-6)
        assert repr(layer) == repr(tlayer)
    for layer, tlayer in [(nn.MaxPool1d(3), torch.nn.MaxPool1d(3)),
                          (nn.AvgPool1d(3, 2), torch.nn.AvgPool1d(3, 2)),
                          (nn.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4)),
                          (nn.AdaptiveMaxPool1d(4), torch.nn.AdaptiveMaxPool1d(4))]:
        s = _randn(3, 13)
        np.testing.assert_allclose(layer(sj.tensor(s)).numpy(), tlayer(torch.tensor(s)).numpy(),
                                   rtol=1e-5, atol=1e-6)
        assert repr(layer) == repr(tlayer)


def _x64(*shape, seed=0):
    # distinct values well apart, so no max is within eps of a tie
    n = int(np.prod(shape))
    v = np.random.default_rng(seed).permutation(n) / n + 0.1
    return sj.tensor(v.reshape(shape), dtype=sj.float64, requires_grad=True)


@pytest.mark.parametrize("fn", [
    lambda t: F.max_pool2d(t, 2),
    lambda t: F.max_pool2d(t, 3, 2, padding=1, ceil_mode=True),
    lambda t: F.max_pool2d(t, (2, 3), 1, dilation=(2, 1)),
    lambda t: F.max_pool2d(t, 4),
    lambda t: F.max_pool1d(t.reshape(2, 2, 30), 3, 2),
    lambda t: F.avg_pool2d(t, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
    lambda t: F.avg_pool2d(t, 4),
    lambda t: F.avg_pool1d(t.reshape(2, 2, 30), 4, 3, padding=1),
    lambda t: F.adaptive_avg_pool2d(t, (4, 3)),
    lambda t: F.adaptive_max_pool2d(t, (4, 3)),
    lambda t: F.adaptive_max_pool2d(t, (3, 2)),
])
def test_pool_gradcheck_float64(fn):
    x = _x64(2, 2, 6, 5)
    assert gradcheck(fn, (x,))
    assert fn(x).dtype == np.float64


def test_float32_stays_float32():
    x = sj.tensor(_randn(2, 3, 10, 10), requires_grad=True)
    for fn in (lambda t: F.max_pool2d(t, 3, 2), lambda t: F.avg_pool2d(t, 3, 2, padding=1,
                                                                     ceil_mode=True),
               lambda t: F.adaptive_avg_pool2d(t, 3), lambda t: F.adaptive_max_pool2d(t, 3)):
        x.grad = None
        y = fn(x)
        y.sum().backward()
        assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_errors_name_the_layer_and_sizes():
    with pytest.raises(ValueError, match=r"MaxPool2d: expected input of shape \(N, C, H, W\) "
                                         r"\(or unbatched \(C, H, W\)\), got \(28, 28\)"):
        nn.MaxPool2d(2)(sj.zeros(28, 28))
    with pytest.raises(ValueError, match=r"max_pool2d: input of spatial size \(2, 2\) is smaller "
                                         r"than the kernel size \(3, 3\)"):
        F.max_pool2d(sj.zeros(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match="padding .* must be at most half of the kernel size"):
        F.avg_pool2d(sj.zeros(1, 1, 8, 8), 2, padding=2)
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d: output_size must be"):
        nn.AdaptiveAvgPool2d((0, 2))(sj.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        F.max_pool1d(sj.zeros(1, 1, 8), 0)
    with pytest.raises(TypeError, match="expected a floating-point input"):
        F.max_pool2d(sj.zeros(1, 1, 4, 4, dtype=sj.int64), 2)


# ----------------------------------------------------------------------------- compiled kernel
# and nn.Sequential's ReLU + max pool fusion (MaxPool(relu=True))

def _pair_of_pools(torch, kernel, stride, relu):
    one = len(kernel) == 1
    sj_pool = (nn.MaxPool1d if one else nn.MaxPool2d)(kernel, stride)
    t_pool = (torch.nn.MaxPool1d if one else torch.nn.MaxPool2d)(kernel, stride)
    if relu:
        return nn.Sequential(nn.ReLU(), sj_pool), torch.nn.Sequential(torch.nn.ReLU(), t_pool)
    return sj_pool, t_pool


@pytest.mark.parametrize("relu", [False, True], ids=["pool", "relu-pool"])
@pytest.mark.parametrize("shape,kernel,stride", [
    ((4, 3, 11, 11), (2, 2), None), ((2, 5, 9, 13), (3, 2), None), ((3, 2, 8, 8), (4, 4), None),
    ((2, 3, 10), (3,), None), ((2, 4, 13, 12), (3, 3), (2, 2)), ((2, 2, 9, 11), (2, 2), (3, 3)),
    ((2, 3, 11), (4,), (3,))], ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("frame", [False, True], ids=["nchw", "frame"])
def test_unpadded_max_pool_paths_equal_torch(kernel_path, relu, shape, kernel, stride, frame):
    """Tie-heavy inputs (one decimal), odd sizes with uncovered rows/columns, overlapping
    windows and windows with gaps, NCHW input or the batch-innermost frame a conv produces:
    values bit-identical to torch, gradients too (to rounding where windows overlap and
    gradients add up in another order)."""
    torch = _torch()
    rng = np.random.default_rng(7)
    x_np = np.round(rng.standard_normal(shape), 1).astype(np.float32)
    if frame:  # the memory layout of a conv output (see ops/conv.py)
        perm = (1,) + tuple(range(2, len(shape))) + (0,)
        x_np = np.ascontiguousarray(x_np.transpose(perm)).transpose(np.argsort(perm))
    m, tm = _pair_of_pools(torch, kernel, stride, relu)
    x, xt = sj.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    y, yt = m(x), tm(xt)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(sj.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.numpy(), yt.detach().numpy())
    if stride is None or stride[0] >= kernel[0]:
        np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())
    else:
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_compiled_pool_keeps_a_byte_per_output_not_the_input(monkeypatch):
    from shenjing import compiled
    if not compiled.available():
        pytest.skip("shenjing._ckernels was not built")
    calls = []
    kern = compiled.kernels()
    real = kern.max_pool_forward
    monkeypatch.setattr(kern, "max_pool_forward", lambda *a: calls.append(1) or real(*a))
    x = sj.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32),
                  requires_grad=True)
    with compiled.use_compiled(True):
        y = nn.MaxPool2d(2)(x)
    (saved,) = y.grad_fn.saved
    assert calls == [1] and saved.dtype == np.uint8 and saved.shape == (3, 3, 3, 2)


def test_nan_window_gives_nan_and_the_same_gradient_on_both_paths():
    from shenjing import compiled
    if not compiled.available():
        pytest.skip("shenjing._ckernels was not built")
    x_np = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    x_np[0, 0, 1, 1] = np.nan
    results = []
    for flag in (False, True):
        x = sj.tensor(x_np, requires_grad=True)
        with compiled.use_compiled(flag):
            y = F.max_pool2d(x, 2)
        y.backward(sj.ones_like(y))
        results.append((y.numpy(), x.grad.numpy()))
    assert np.isnan(results[0][0][0, 0, 0, 0]) and np.isnan(results[1][0][0, 0, 0, 0])
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_sequential_runs_relu_then_max_pool_as_one_op():
    conv = nn.Conv2d(1, 2, 3)
    seq = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))
    x = sj.randn(2, 1, 8, 8)
    y = seq(x)
    assert type(y.grad_fn).__name__ == "MaxPool" and y.grad_fn.inputs[0].grad_fn is not None
    assert type(y.grad_fn.inputs[0].grad_fn).__name__ == "Conv"  # no ReLU node between
    unfused = F.max_pool2d(sj.nn.functional.relu(conv(x)), 2)
    np.testing.assert_array_equal(y.detach().numpy(), unfused.detach().numpy())


def test_hooked_or_custom_relu_and_indices_pool_are_not_fused():
    x = sj.randn(2, 3, 6, 6)
    relu = nn.ReLU()
    seen = []
    relu.register_forward_hook(lambda mod, args, out: seen.append(out.numpy().min()))
    y = nn.Sequential(relu, nn.MaxPool2d(2))(x)
    assert seen == [0.0]  # the hook saw the ReLU's own output
    np.testing.assert_array_equal(y.numpy(), np.maximum(F.max_pool2d(x, 2).numpy(), 0))

    class Doubling(nn.ReLU):
        def forward(self, t):
            return t * 2

    y2 = nn.Sequential(Doubling(), nn.MaxPool2d(2))(x)
    np.testing.assert_array_equal(y2.numpy(), F.max_pool2d(x * 2, 2).numpy())
    out, idx = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))(x)
    assert idx.dtype == np.int64 and out.shape == idx.shape


def test_compiled_pool_routes_by_the_forward_values_after_an_in_place_change():
    """The compiled pool keeps the winners, not its input (README: deliberate differences):
    changing the input in place before backward neither raises nor moves the gradient."""
    from shenjing import compiled
    if not compiled.available():
        pytest.skip("shenjing._ckernels was not built")
    x = sj.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), requires_grad=True)
    with compiled.use_compiled(True):
        y = x * 1.0
        p = F.max_pool2d(y, 2)
        with sj.no_grad():
            y[0, 0, 0, 0] = 100.0  # would win now; the forward's winner was (1, 1)
        p.sum().backward()
    want = np.zeros((4, 4), np.float32)
    want[1::2, 1::2] = 1.0
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], want)
