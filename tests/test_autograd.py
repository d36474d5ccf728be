"""Graph semantics of shenjing.autograd: reuse, diamonds, accumulation, grad modes, detach,
deep chains, freed graphs, flat memory over many steps, broadcasting, integer tensors, and
the public gradient checker itself."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import shenjing as sj
from shenjing.autograd import Function, GradcheckError, gradcheck
from shenjing.nn import Parameter


def _grad(x) -> np.ndarray:
    assert x.grad is not None
    return x.grad.numpy()


# ----------------------------------------------------------------------------- graph shapes


def test_reuse_of_a_tensor_sums_its_gradients():
    a = sj.tensor([1.0, -2.0, 3.0], requires_grad=True)
    b = a + a
    c = b + b
    c.sum().backward()
    np.testing.assert_array_equal(_grad(a), [4.0, 4.0, 4.0])


def test_same_tensor_twice_in_one_op():
    a = sj.tensor([1.5, -2.0], requires_grad=True)
    (a * a).sum().backward()
    np.testing.assert_array_equal(_grad(a), [3.0, -4.0])


def test_diamond():
    x = sj.tensor([0.3, -1.2, 2.0], dtype=sj.float64, requires_grad=True)
    y = x * x  # shared by both branches: its node must run once, with the summed gradient
    z = y.sin() + y.cos() * 3.0
    z.sum().backward()
    xv = x.numpy()
    yv = xv * xv
    np.testing.assert_allclose(_grad(x), (np.cos(yv) - 3.0 * np.sin(yv)) * 2 * xv, rtol=1e-12)


def test_diamond_with_different_path_lengths():
    x = sj.tensor([0.5, 1.5], dtype=sj.float64, requires_grad=True)
    a = x * 2.0
    b = a.exp().exp()  # long branch
    out = (a * b).sum()  # short branch meets it
    out.backward()
    xv = x.numpy()
    av = 2 * xv
    bv = np.exp(np.exp(av))
    expected = 2 * (bv + av * bv * np.exp(av))
    np.testing.assert_allclose(_grad(x), expected, rtol=1e-12)


def test_gradient_accumulates_across_backward_calls():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(_grad(x), [3.0 + 2.0, 3.0 + 4.0])
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(_grad(x), [3.0, 3.0])


def test_leaf_grad_does_not_alias_the_upstream_gradient():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    g = sj.tensor([1.0, 1.0])
    x.backward(g)
    (x * 1.0).backward(g)
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(_grad(x), [2.0, 2.0])


@pytest.mark.parametrize("graph", [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: (a + b).reshape(3, 2).clone().reshape(2, 3),
    lambda a, b: a.expand(2, 3) + b.T.T,
    lambda a, b: sj.cat([a, b], 0)[1:3],
    lambda a, b: (a + b) + (a * b),
], ids=lambda f: "")
def test_leaf_gradients_never_share_memory(graph):
    """Each leaf owns its .grad: no aliasing between leaves, nor with the caller's gradient."""
    a = sj.ones(2, 3, requires_grad=True)
    b = sj.full((2, 3), 2.0, requires_grad=True)
    out = graph(a, b)
    g = sj.ones(*out.shape)
    out.backward(g)
    arrays = [a.grad.numpy(), b.grad.numpy(), g.numpy()]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.shares_memory(arrays[i], arrays[j]), (i, j)
    assert a.grad.numpy().flags.writeable and b.grad.numpy().flags.writeable


class _SameArrayTwice(Function):
    """a + b whose backward hands one fresh array to both inputs."""

    array_level = True  # the engine's own op protocol: arrays in and out

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        t = g * 1.0
        return t, t


def test_one_array_returned_for_two_leaves_is_not_shared():
    a, b = sj.ones(3, requires_grad=True), sj.ones(3, requires_grad=True)
    _SameArrayTwice.apply(a, b).backward(sj.ones(3))
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.numpy()[0] = 5.0
    assert b.grad.tolist() == [1.0, 1.0, 1.0]


def test_leaves_and_non_leaves():
    x = sj.tensor([1.0], requires_grad=True)
    y = x * 2.0
    assert x.is_leaf and not y.is_leaf and y.requires_grad
    assert sj.tensor([1.0]).is_leaf
    y.sum().backward()
    assert y.grad is None  # only leaves keep .grad (no retain_grad)


def test_graph_is_recorded_only_when_an_input_requires_grad():
    a, b = sj.tensor([1.0]), sj.tensor([2.0])
    c = a * b
    assert not c.requires_grad and c.is_leaf and c.grad_fn is None


def test_autograd_grad_leaves_dot_grad_untouched():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    x.grad = sj.tensor([10.0, 10.0])
    (gx,) = sj.autograd.grad((x * x).sum(), [x])
    np.testing.assert_array_equal(gx.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(_grad(x), [10.0, 10.0])


# ----------------------------------------------------------------------------- grad modes


def test_no_grad_context_manager():
    x = sj.tensor([1.0], requires_grad=True)
    with sj.no_grad():
        y = x * 2.0
        assert not sj.is_grad_enabled()
    assert sj.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf


def test_no_grad_and_enable_grad_as_decorators():
    x = sj.tensor([1.0], requires_grad=True)

    @sj.no_grad()
    def frozen(t):
        return t * 2.0

    @sj.enable_grad()
    def recorded(t):
        return t * 2.0

    assert not frozen(x).requires_grad
    assert sj.is_grad_enabled()
    with sj.no_grad():
        assert recorded(x).requires_grad
        assert not sj.is_grad_enabled()
    assert frozen.__name__ == "frozen"

    @sj.no_grad  # without parentheses, as torch allows
    def bare(t):
        return t * 2.0

    assert not bare(x).requires_grad and bare.__name__ == "bare"
    assert sj.is_grad_enabled()


def test_enable_grad_inside_no_grad_and_nesting():
    x = sj.tensor([1.0], requires_grad=True)
    with sj.no_grad():
        with sj.enable_grad():
            assert (x * 2.0).requires_grad
            with sj.no_grad():
                assert not (x * 2.0).requires_grad
            assert sj.is_grad_enabled()
        assert not sj.is_grad_enabled()
    assert sj.is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(KeyError):
        with sj.no_grad():
            raise KeyError("boom")
    assert sj.is_grad_enabled()


def test_set_grad_enabled():
    x = sj.tensor([1.0], requires_grad=True)
    with sj.set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
    assert sj.is_grad_enabled()
    with sj.no_grad():
        with sj.set_grad_enabled(True):
            assert (x * 2.0).requires_grad
        assert not sj.is_grad_enabled()
    try:
        sj.set_grad_enabled(False)  # a plain call switches the mode, as in torch
        assert not sj.is_grad_enabled()
    finally:
        sj.set_grad_enabled(True)
    assert sj.is_grad_enabled()

    @sj.set_grad_enabled(False)
    def frozen(t):
        return t * 2.0

    assert sj.is_grad_enabled()  # decorating does not change the mode
    assert not frozen(x).requires_grad
    assert sj.is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.numpy(), x.numpy())
    (d * 5.0 + x).sum().backward()
    np.testing.assert_array_equal(_grad(x), [1.0, 1.0])
    y = (x * 3.0).detach()
    assert y.grad_fn is None and not y.requires_grad


# ----------------------------------------------------------------------------- deep and freed


def test_ten_thousand_op_chain():
    x = sj.tensor([0.5, -1.0], dtype=sj.float64, requires_grad=True)
    y = x
    for i in range(10_000):
        y = y * 1.0001 if i % 2 == 0 else y - 0.001
    y.sum().backward()
    np.testing.assert_allclose(_grad(x), [1.0001**5000] * 2, rtol=1e-12)


def test_deep_graph_without_backward_is_released():
    x = sj.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1.0
    del y  # freeing the chain must not overflow the C stack either
    gc.collect()


def test_second_backward_through_a_freed_graph_raises():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        loss.backward()


def test_backward_through_a_partly_freed_graph_raises():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (y * 2.0).sum().backward()


def test_retain_graph_allows_a_second_backward():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(_grad(x), [4.0, 8.0])


def test_backward_frees_saved_arrays():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    node = y.grad_fn
    assert node.saved
    y.sum().backward()
    assert not node.saved and not hasattr(node, "inputs")


def _mlp_step(params, x, target, lr):
    w1, b1, w2, b2 = params
    for p in params:
        p.grad = None
    h = (x @ w1 + b1).relu()
    logp = (h @ w2 + b2).log_softmax(dim=1)
    loss = -(logp * target).sum() / x.shape[0]
    loss.backward()
    with sj.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss.item()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _live_tensors() -> int:
    return sum(issubclass(type(o), sj.Tensor) for o in gc.get_objects())


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_is_flat_over_ten_thousand_training_steps():
    """Between step 1,000 and 10,000 neither tensors nor resident memory pile up.

    A leak of one small tensor per step would add 9,000 live tensors and about 1.5 MiB of
    RSS; steady state moves RSS by a few hundred KiB at most.
    """
    sj.manual_seed(0)
    params = [Parameter(sj.randn(8, 16) * 0.3), Parameter(sj.zeros(16)),
              Parameter(sj.randn(16, 4) * 0.3), Parameter(sj.zeros(4))]
    x = sj.randn(16, 8)
    target = sj.one_hot(sj.randint(0, 4, (16,)), 4).float()
    first = _mlp_step(params, x, target, 0.1)
    for _ in range(999):
        _mlp_step(params, x, target, 0.1)
    gc.collect()
    tensors, rss = _live_tensors(), _rss_bytes()
    for _ in range(9_000):
        last = _mlp_step(params, x, target, 0.1)
    gc.collect()
    assert last < 0.5 * first  # it trained
    assert _live_tensors() <= tensors
    grown = _rss_bytes() - rss
    assert grown < 1024 * 1024, f"RSS grew by {grown} bytes between step 1,000 and 10,000"


# ----------------------------------------------------------------------------- broadcasting, ints


def test_gradient_of_broadcast_inputs_is_reduced_to_their_shapes():
    a = sj.ones(3, 1, requires_grad=True)
    b = sj.ones(4, requires_grad=True)
    s = sj.tensor(2.0, requires_grad=True)
    out = (a + b) * s
    assert out.shape == (3, 4)
    out.backward(sj.ones(3, 4))
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,) and s.grad.shape == ()
    np.testing.assert_array_equal(_grad(a), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(_grad(b), np.full(4, 6.0))
    assert s.grad.item() == 24.0


def test_integer_tensors_never_require_grad():
    i = sj.tensor([1, 2, 3])
    assert i.dtype == sj.int64 and not i.requires_grad
    with pytest.raises(TypeError):
        i.requires_grad_()
    with pytest.raises(TypeError):
        sj.arange(3, requires_grad=True)
    x = sj.tensor([0.5, 1.5, 2.5], requires_grad=True)
    assert not x.long().requires_grad
    assert not x.argmax().requires_grad
    assert not (x > 1).requires_grad
    _, idx = x.reshape(1, 3).max(dim=1)
    assert idx.dtype == sj.int64 and not idx.requires_grad
    y = x * i
    assert y.requires_grad
    y.sum().backward()
    assert i.grad is None
    np.testing.assert_array_equal(_grad(x), [1.0, 2.0, 3.0])
    assert x.grad.dtype == sj.float32


def test_float64_graph_gives_float64_gradients():
    x = sj.tensor([1.0, 2.0], dtype=sj.float64, requires_grad=True)
    (x * 2.0 + 1.0).exp().sum().backward()
    assert x.grad.dtype == sj.float64


def test_float32_leaf_through_float64_cast_gets_float32_gradient():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * 3.0).sum().backward()
    assert x.grad.dtype == sj.float32
    np.testing.assert_array_equal(_grad(x), [3.0, 3.0])


# ----------------------------------------------------------------------------- gradcheck


class _WrongSquareSum(Function):
    """sum(x**2) with a backward that forgets the factor 2."""

    array_level = True  # the engine's own op protocol: arrays in and out

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.sum(a * a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * a


def test_gradcheck_returns_true_on_a_correct_op():
    x = sj.tensor([[0.3, -1.2], [2.0, 0.7]], dtype=sj.float64, requires_grad=True)
    y = sj.tensor([0.5, 1.5], dtype=sj.float64, requires_grad=True)
    assert gradcheck(lambda a, b: (a * b).sin() @ b, (x, y)) is True
    big = sj.tensor(np.linspace(-1, 1, 100).reshape(10, 10), dtype=sj.float64,
                    requires_grad=True)
    assert gradcheck(lambda a: a.tanh() * 2.0, big) is True  # random-direction path


def test_gradcheck_names_input_worst_element_and_both_values():
    ok = sj.tensor([1.0, 2.0], dtype=sj.float64, requires_grad=True)
    bad = sj.tensor([0.5, -1.0, 3.0], dtype=sj.float64, requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: a.sum() + _WrongSquareSum.apply(b), (ok, bad))
    msg = str(info.value)
    assert "input 1" in msg
    assert "(2,)" in msg  # the worst element: |2*3 - 3| is the largest error
    assert "analytical 3" in msg and "numerical 6" in msg
    assert not gradcheck(lambda b: _WrongSquareSum.apply(b), (bad,), raise_exception=False)


class _NanGradient(Function):
    """2 * x with a backward that returns NaN: a NaN must never pass as "close"."""

    array_level = True  # the engine's own op protocol: arrays in and out

    @staticmethod
    def forward(ctx, a):
        return a * 2.0

    @staticmethod
    def backward(ctx, g):
        return g * np.nan


def test_gradcheck_fails_on_nan_gradients():
    x = sj.tensor([1.0, 2.0], dtype=sj.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match="nan"):
        gradcheck(lambda a: _NanGradient.apply(a), (x,))


def test_gradcheck_requires_float64():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * 2.0, (x,))


def test_cat_and_stack_of_a_single_tensor_backpropagate():
    a = sj.tensor([1.0, 2.0], requires_grad=True)
    sj.cat([a]).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [1.0, 1.0])
    a.grad = None
    (sj.stack([a]) * 3).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [3.0, 3.0])
