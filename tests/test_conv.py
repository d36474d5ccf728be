"""Conv1d / Conv2d and F.conv1d / F.conv2d: against torch (output, input, weight and bias
gradients under a random upstream gradient), central differences in float64, dtypes,
initialization, repr, and the errors users see."""

from __future__ import annotations

import math

import numpy as np
import pytest

import shenjing as sj
import shenjing.nn as nn
from shenjing.autograd import gradcheck
from shenjing.nn import functional_conv as F


def _torch():
    return pytest.importorskip("torch")


def _close(actual: np.ndarray, expected: np.ndarray, what: str, rtol: float = 1e-4) -> None:
    """float32 comparison scaled to the reference's magnitude (sums of many products)."""
    scale = max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-5 * scale, err_msg=what)


def _compare_layer(layer, tlayer, x_np: np.ndarray, input_grad: bool = True, seed: int = 1):
    """Copy torch's weights in, run both with one random upstream gradient, compare all."""
    torch = _torch()
    layer.load_state_dict({k: v.detach().numpy() for k, v in tlayer.state_dict().items()})
    x = sj.tensor(x_np, requires_grad=input_grad)
    xt = torch.tensor(x_np, requires_grad=input_grad)
    y, yt = layer(x), tlayer(xt)
    assert y.shape == tuple(yt.shape)
    assert y.dtype == x_np.dtype
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(x_np.dtype)
    y.backward(sj.tensor(g))
    yt.backward(torch.tensor(g))
    _close(y.numpy(), yt.detach().numpy(), "output")
    if input_grad:
        assert x.grad.dtype == x_np.dtype
        _close(x.grad.numpy(), xt.grad.numpy(), "input gradient")
    for name, p in tlayer.named_parameters():
        mine = getattr(layer, name).grad
        assert mine is not None and mine.dtype == x_np.dtype, name
        _close(mine.numpy(), p.grad.numpy(), f"{name} gradient")
    return y


CONV2D_CASES = [
    # (N, C, H, W), Conv2d(args, kwargs)
    ((2, 3, 9, 8), (3, 4, 3), {}),
    ((2, 3, 9, 8), (3, 4, 3), {"stride": 2}),
    ((2, 3, 9, 8), (3, 4, 3), {"padding": 1}),
    ((1, 2, 11, 7), (2, 5, (3, 5)), {"stride": (2, 1), "padding": (2, 1)}),
    ((2, 3, 10, 9), (3, 4, 3), {"dilation": 2, "padding": 1}),
    ((2, 3, 10, 9), (3, 4, (2, 3)), {"dilation": (1, 2), "stride": (3, 2)}),
    ((2, 3, 9, 9), (3, 6, 4), {"padding": "same"}),  # even kernel: odd pad goes last
    ((2, 3, 9, 9), (3, 6, (2, 3)), {"padding": "same", "dilation": (3, 2)}),
    ((2, 3, 9, 9), (3, 6, 3), {"padding": "valid", "bias": False}),
    ((2, 4, 7, 6), (4, 6, 3), {"groups": 2, "padding": 1}),
    ((2, 4, 7, 6), (4, 8, 3), {"groups": 4, "stride": 2}),  # depthwise, multiplier 2
    ((2, 3, 13, 7), (3, 2, 2), {"stride": 3}),  # stride > kernel: some inputs get no gradient
    ((2, 1, 28, 28), (1, 32, 3), {}),  # the seed CNN's first layer
    ((1, 3, 227, 227), (3, 8, 11), {"stride": 4, "padding": 2}),  # AlexNet's first layer
    ((3, 1, 12, 100), (1, 10, (4, 100)), {}),  # TextCNN: a kernel over the whole embedding
    # whole-width kernels (conv_shift.py's path): channels > 1, padding, dilation, no bias
    ((2, 3, 9, 5), (3, 4, (3, 5)), {"padding": (1, 0), "dilation": (2, 1)}),
    ((2, 2, 7, 3), (2, 3, (2, 5)), {"padding": 1, "bias": False}),
    ((2, 3, 8, 8), (3, 4, 3), {"padding": 1, "padding_mode": "reflect"}),
    ((2, 3, 8, 8), (3, 4, 3), {"padding": 2, "padding_mode": "replicate"}),
    ((2, 3, 8, 8), (3, 4, (3, 2)), {"padding": (1, 2), "padding_mode": "circular"}),
]


@pytest.mark.parametrize("shape, args, kwargs", CONV2D_CASES)
def test_conv2d_matches_torch(shape, args, kwargs):
    torch = _torch()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    _compare_layer(nn.Conv2d(*args, **kwargs), torch.nn.Conv2d(*args, **kwargs), x)


CONV1D_CASES = [
    ((2, 3, 11), (3, 4, 3), {}),
    ((2, 3, 11), (3, 4, 3), {"stride": 2, "padding": 1}),
    ((2, 3, 12), (3, 4, 4), {"padding": "same", "dilation": 2}),
    ((2, 4, 10), (4, 6, 3), {"groups": 2, "bias": False}),
    ((1, 2, 9), (2, 3, 3), {"padding": 2, "padding_mode": "reflect"}),
    ((3, 5, 16), (5, 4, 5), {"padding": 3, "dilation": 3}),
    ((2, 6, 8), (6, 7, 1), {"bias": False}),
]


@pytest.mark.parametrize("shape, args, kwargs", CONV1D_CASES)
def test_conv1d_matches_torch(shape, args, kwargs):
    torch = _torch()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    _compare_layer(nn.Conv1d(*args, **kwargs), torch.nn.Conv1d(*args, **kwargs), x)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv1d(100, 100, 5), (8, 100, 60)),  # a TextCNN written with Conv1d
    (lambda: nn.Conv2d(1, 100, (5, 100)), (8, 1, 60, 100)),  # ... with whole-width Conv2d
])
def test_stride_one_text_convolutions_keep_no_columns(make, shape):
    """The shift-and-add path (conv_shift.py) saves the input frame and the weights for
    backward, not the k-times-larger im2col columns (issue 12's W5/W5b memory)."""
    x = sj.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32),
                  requires_grad=True)
    y = make()(x)
    saved = sum(a.nbytes for a in y.grad_fn.saved)
    assert saved <= x.numpy().nbytes + 100 * 100 * 5 * 4 + 4096, saved


def test_first_layer_without_input_gradient():
    torch = _torch()
    x = np.random.default_rng(0).random((4, 1, 12, 12), dtype=np.float32)
    _compare_layer(nn.Conv2d(1, 5, 3), torch.nn.Conv2d(1, 5, 3), x, input_grad=False)


def test_functional_matches_torch_and_accepts_any_memory_layout():
    torch = _torch()
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((3, 4, 7, 9)).astype(np.float32)
    w_np = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b_np = rng.standard_normal(6).astype(np.float32)
    ref = torch.nn.functional.conv2d(torch.tensor(x_np), torch.tensor(w_np), torch.tensor(b_np),
                                     stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2)
    # the same values held batch-innermost (what the kernels produce) and in Fortran order
    for arr in (x_np, np.ascontiguousarray(x_np.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2),
                np.asfortranarray(x_np)):
        out = F.conv2d(sj.from_numpy(arr), sj.tensor(w_np), sj.tensor(b_np), stride=(1, 2),
                       padding=(1, 0), dilation=(2, 1), groups=2)
        _close(out.numpy(), ref.numpy(), "output")


def test_chain_conv_pool_conv_matches_torch():
    """Batch-innermost views flow between layers; the composed gradients still match."""
    torch = _torch()
    x_np = np.random.default_rng(0).standard_normal((4, 2, 14, 14)).astype(np.float32)
    c1, c2 = nn.Conv2d(2, 6, 3), nn.Conv2d(6, 5, 3, padding=1)
    t1, t2 = torch.nn.Conv2d(2, 6, 3), torch.nn.Conv2d(6, 5, 3, padding=1)
    for m, t in ((c1, t1), (c2, t2)):
        m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x, xt = sj.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    y = c2(nn.MaxPool2d(2)(c1(x).relu())).reshape(4, -1)
    yt = t2(torch.nn.functional.max_pool2d(t1(xt).relu(), 2)).reshape(4, -1)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    y.backward(sj.tensor(g))
    yt.backward(torch.tensor(g))
    _close(y.numpy(), yt.detach().numpy(), "output")
    _close(x.grad.numpy(), xt.grad.numpy(), "input gradient")
    _close(c1.weight.grad.numpy(), t1.weight.grad.numpy(), "c1 weight gradient")
    _close(c2.bias.grad.numpy(), t2.bias.grad.numpy(), "c2 bias gradient")


def test_unbatched_inputs_match_batched():
    rng = np.random.default_rng(0)
    conv2, conv1 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv1d(3, 4, 3, stride=2)
    x = sj.tensor(rng.standard_normal((3, 6, 5)).astype(np.float32), requires_grad=True)
    y = conv2(x)
    assert y.shape == (4, 6, 5)
    np.testing.assert_allclose(y.numpy(), conv2(x.reshape(1, 3, 6, 5)).numpy()[0], rtol=1e-6)
    y.sum().backward()
    assert x.grad.shape == (3, 6, 5)
    s = sj.tensor(rng.standard_normal((3, 9)).astype(np.float32))
    np.testing.assert_allclose(conv1(s).numpy(), conv1(s.reshape(1, 3, 9)).numpy()[0],
                               rtol=1e-6)


@pytest.mark.parametrize("kwargs", [
    {},
    {"stride": 2, "padding": 1},
    {"dilation": (2, 1), "padding": (0, 1), "groups": 2},
    {"padding": "same"},
])
def test_conv2d_gradcheck_float64(kwargs):
    rng = np.random.default_rng(0)
    x = sj.tensor(rng.standard_normal((2, 4, 5, 4)), dtype=sj.float64, requires_grad=True)
    w = sj.tensor(rng.standard_normal((2, 4 // kwargs.get("groups", 1), 3, 2)),
                  dtype=sj.float64, requires_grad=True)
    b = sj.tensor(rng.standard_normal(2), dtype=sj.float64, requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), (x, w, b))


def test_conv1d_gradcheck_float64():
    rng = np.random.default_rng(0)
    x = sj.tensor(rng.standard_normal((2, 3, 7)), dtype=sj.float64, requires_grad=True)
    w = sj.tensor(rng.standard_normal((2, 3, 3)), dtype=sj.float64, requires_grad=True)
    assert gradcheck(lambda x, w: F.conv1d(x, w, stride=2, padding=1, dilation=2), (x, w))


def test_padding_mode_gradcheck_float64():
    layer = nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect").double()
    x = sj.tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 4)), dtype=sj.float64,
                  requires_grad=True)
    assert gradcheck(layer, (x,))


def test_float64_layer_keeps_float64():
    layer = nn.Conv2d(2, 3, 3).double()
    x = sj.tensor(np.ones((1, 2, 5, 5)), dtype=sj.float64, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float64
    assert layer.weight.grad.dtype == np.float64 and layer.bias.grad.dtype == np.float64


def test_default_init_like_torch():
    layer = nn.Conv2d(4, 64, (3, 5), groups=2)
    assert layer.weight.shape == (64, 2, 3, 5) and layer.bias.shape == (64,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    bound = 1 / math.sqrt(2 * 3 * 5)
    w = layer.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    # uniform on [-bound, bound]: std = bound / sqrt(3)
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert nn.Conv1d(3, 4, 5, bias=False).bias is None
    sj.manual_seed(7)
    a = nn.Conv2d(3, 8, 3).weight.numpy().copy()
    sj.manual_seed(7)
    np.testing.assert_array_equal(a, nn.Conv2d(3, 8, 3).weight.numpy())


@pytest.mark.parametrize("cls, args, kwargs", [
    ("Conv2d", (1, 32, 3), {}),
    ("Conv2d", (3, 64, 11), {"stride": 4, "padding": 2}),
    ("Conv2d", (4, 8, (3, 5)), {"padding": "same", "dilation": 2, "groups": 2,
                                "bias": False}),
    ("Conv2d", (3, 8, 3), {"padding": 1, "padding_mode": "reflect"}),
    ("Conv1d", (3, 8, 5), {"stride": 2, "padding": "valid"}),
])
def test_repr_matches_torch(cls, args, kwargs):
    torch = _torch()
    assert repr(getattr(nn, cls)(*args, **kwargs)) == repr(getattr(torch.nn, cls)(*args, **kwargs))


def test_wrong_channels_message():
    with pytest.raises(ValueError) as e:
        nn.Conv2d(3, 8, 3)(sj.zeros(8, 1, 28, 28))
    assert str(e.value) == ("Conv2d(in_channels=3): expected input of shape (N, 3, H, W), "
                            "got (8, 1, 28, 28)")
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, L\)"):
        nn.Conv1d(3, 8, 3)(sj.zeros(2, 4, 10))


def test_wrong_ndim_names_the_layout():
    with pytest.raises(ValueError, match=r"Conv2d\(in_channels=1\): expected input of shape "
                                         r"\(N, 1, H, W\) \(or unbatched \(1, H, W\)\), "
                                         r"got \(28, 28\)"):
        nn.Conv2d(1, 8, 3)(sj.zeros(28, 28))
    with pytest.raises(ValueError, match=r"conv2d: expected input of shape"):
        F.conv2d(sj.zeros(1, 1, 1, 5, 5), sj.zeros(2, 1, 3, 3))


def test_input_smaller_than_kernel_names_both_sizes():
    with pytest.raises(ValueError, match=r"input of spatial size \(2, 2\) is smaller than the "
                                         r"kernel size \(3, 3\)"):
        nn.Conv2d(1, 4, 3)(sj.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"\(4, 4\) \(padded to \(6, 6\)\) is smaller than the "
                                         r"kernel size \(4, 4\) \(dilated to \(7, 7\)\)"):
        F.conv2d(sj.zeros(1, 1, 4, 4), sj.zeros(1, 1, 4, 4), padding=1, dilation=2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="not supported for strided"):
        nn.Conv2d(1, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(TypeError, match="dtype shenjing.float64 does not match the weight dtype "
                                        "shenjing.float32"):
        nn.Conv2d(1, 4, 3)(sj.zeros(1, 1, 5, 5, dtype=sj.float64))
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-D weight"):
        F.conv2d(sj.zeros(1, 1, 5, 5), sj.zeros(2, 1, 3))
    with pytest.raises(ValueError, match=r"conv2d: expected a bias of shape \(2,\)"):
        F.conv2d(sj.zeros(1, 1, 5, 5), sj.zeros(2, 1, 3, 3), sj.zeros(3))
    with pytest.raises(TypeError, match="conv2d: expected input to be a Tensor"):
        F.conv2d(np.zeros((1, 1, 5, 5)), sj.zeros(2, 1, 3, 3))


def test_no_graph_without_grad_and_frozen_weights():
    layer = nn.Conv2d(2, 3, 3)
    with sj.no_grad():
        assert not layer(sj.ones(1, 2, 5, 5)).requires_grad
    layer.requires_grad_(False)
    x = sj.ones(1, 2, 5, 5, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and layer.weight.grad is None and layer.bias.grad is None


def test_recycled_buffers_never_overwrite_live_results():
    """Large temporaries are recycled across calls; anything still referenced must survive."""
    rng = np.random.default_rng(0)
    layer, pool = nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2)  # buffers of several MB
    x = sj.tensor(rng.standard_normal((16, 3, 64, 64)).astype(np.float32), requires_grad=True)
    y1 = pool(layer(x))
    ref = y1.numpy().copy()
    g = sj.tensor(rng.standard_normal(y1.shape).astype(np.float32))
    y1.backward(g, retain_graph=True)
    grads = x.grad.numpy().copy(), layer.weight.grad.numpy().copy()
    for scale in (2.0, -1.0):  # more steps through the same shapes
        pool(layer(x * scale)).backward(g)
    np.testing.assert_array_equal(y1.numpy(), ref)
    x.grad, layer.weight.grad = None, None
    y1.backward(g)  # the retained graph still holds its own columns and outputs
    np.testing.assert_array_equal(x.grad.numpy(), grads[0])
    np.testing.assert_array_equal(layer.weight.grad.numpy(), grads[1])


def test_shift_path_random_shapes_match_torch_float64():
    """40 seeded random stride-1 convolutions that take conv_shift.py's path (1-D with
    padding and dilation, whole-width 2-D with width padding, unbatched, with and without
    bias): outputs and all gradients equal torch's to float64 rounding."""
    torch = _torch()
    rng = np.random.default_rng(7)
    for _ in range(40):
        unbatched, bias = rng.random() < 0.25, rng.random() < 0.7
        cin, cout, N = (int(v) for v in rng.integers(1, 4, 3))
        if rng.random() < 0.5:
            k, d, p = int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(0, 3))
            L = int(rng.integers(max(d * (k - 1) + 1 - 2 * p, 1), 12))
            x_shape, w_shape = ((cin, L) if unbatched else (N, cin, L)), (cout, cin, k)
            kw = {"padding": p, "dilation": d}
            name = "conv1d"
        else:
            W, pw, kh = int(rng.integers(1, 5)), int(rng.integers(0, 2)), int(rng.integers(2, 4))
            dh, ph = int(rng.integers(1, 3)), int(rng.integers(0, 2))
            H = int(rng.integers(max(dh * (kh - 1) + 1 - 2 * ph, 1), 10))
            x_shape = (cin, H, W) if unbatched else (N, cin, H, W)
            w_shape, kw = (cout, cin, kh, W + 2 * pw), {"padding": (ph, pw), "dilation": (dh, 1)}
            name = "conv2d"
        arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (cout,))]
        ours = [sj.tensor(a, requires_grad=True) for a in arrays]
        theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
        y = getattr(F, name)(ours[0], ours[1], ours[2] if bias else None, **kw)
        yt = getattr(torch.nn.functional, name)(theirs[0], theirs[1],
                                                theirs[2] if bias else None, **kw)
        g = rng.standard_normal(tuple(yt.shape))
        y.backward(sj.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), atol=1e-12)
        for a, b in zip(ours[:3 if bias else 2], theirs):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-12)
