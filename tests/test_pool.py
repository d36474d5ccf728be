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
