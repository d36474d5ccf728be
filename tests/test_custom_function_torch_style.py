"""Custom autograd Functions written as in PyTorch's tutorials run unchanged on shenjing:
forward/backward on tensors, ctx.saved_tensors, needs_input_grad, mark_non_differentiable,
mark_dirty, setup_context (torch 2 style), once_differentiable, several outputs. Each program
runs on both libraries (the class is built from the library) and outputs and gradients under
a random upstream gradient must agree; gradcheck in float64 checks the backward numerically."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing.autograd import Function, gradcheck

torch = pytest.importorskip("torch")


def legendre_p3(lib):
    """The tutorial's P3(x) = (5x^3 - 3x) / 2 with its hand-written backward."""

    class LegendrePolynomial3(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    return LegendrePolynomial3


def my_relu(lib):
    """The tutorial's MyReLU: clamp, clone, masked assignment."""

    class MyReLU(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0
            return grad_input

    return MyReLU


def scaled_linear(lib):
    """torch 2 style: forward without ctx, setup_context, a non-tensor argument, and
    needs_input_grad deciding which gradients are computed."""

    class ScaledLinear(lib.autograd.Function):
        @staticmethod
        def forward(x, weight, bias, scale):
            out = x.mm(weight.t()) * scale
            return out if bias is None else out + bias

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, weight, bias, scale = inputs
            ctx.save_for_backward(x, weight)
            ctx.scale = scale

        @staticmethod
        def backward(ctx, grad):
            x, weight = ctx.saved_tensors
            gx = gw = gb = None
            if ctx.needs_input_grad[0]:
                gx = grad.mm(weight) * ctx.scale
            if ctx.needs_input_grad[1]:
                gw = grad.t().mm(x) * ctx.scale
            if ctx.needs_input_grad[2]:
                gb = grad.sum(0)
            return gx, gw, gb, None

    return ScaledLinear


def sort_with_indices(lib):
    """Two outputs, the integer one marked non-differentiable."""

    class Sort(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            values, indices = x.sort(dim=-1)
            ctx.mark_non_differentiable(indices)
            ctx.save_for_backward(indices)
            return values, indices

        @staticmethod
        def backward(ctx, grad_values, grad_indices):
            (indices,) = ctx.saved_tensors
            return grad_values.new_zeros(grad_values.shape).scatter(-1, indices, grad_values)

    return Sort


def product_and_sum(lib):
    """Two differentiable outputs of different dtypes from two inputs."""

    class ProductAndSum(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b, (a + b).double()

        @staticmethod
        def backward(ctx, g_product, g_sum):
            a, b = ctx.saved_tensors
            g_sum = g_sum.float()
            return g_product * b + g_sum, g_product * a + g_sum

    return ProductAndSum


def _pair(shape, seed, lib_dtype="float32"):
    rng = np.random.default_rng(seed)
    arr = rng.standard_normal(shape).astype(lib_dtype)
    return (sj.tensor(arr, requires_grad=True), torch.tensor(arr, requires_grad=True))


def _close(mine, theirs, tol=1e-5):
    np.testing.assert_allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("make", [legendre_p3, my_relu])
def test_tutorial_functions_match_torch(make):
    (x, tx), up = _pair((4, 5), 0), np.random.default_rng(1).standard_normal((4, 5))
    out, tout = make(sj).apply(x * 1.0), make(torch).apply(tx * 1.0)
    out.backward(sj.tensor(up, dtype=sj.float32))
    tout.backward(torch.tensor(up, dtype=torch.float32))
    _close(out, tout)
    _close(x.grad, tx.grad)
    assert out.requires_grad and out.grad_fn is not None and type(out.grad_fn).__name__ in (
        "LegendrePolynomial3", "MyReLU")


def test_legendre_fit_follows_torch_step_for_step():
    """The tutorial's training loop (y = a + b * P3(c + d * x) fitted to sin) for 50 steps."""
    results = []
    for lib in (sj, torch):
        p3 = legendre_p3(lib).apply
        x = lib.linspace(-np.pi, np.pi, 200, dtype=lib.float64)
        y = lib.sin(x)
        params = [lib.full((), v, dtype=lib.float64, requires_grad=True)
                  for v in (0.0, -1.0, 0.0, 0.3)]
        for _ in range(50):
            a, b, c, d = params
            loss = (a + b * p3(c + d * x) - y).pow(2).sum()
            loss.backward()
            with lib.no_grad():
                for p in params:
                    p -= 5e-5 * p.grad
                    p.grad = None
        results.append([loss.item()] + [p.item() for p in params])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10, atol=1e-12)


def test_gradcheck_of_custom_functions_in_float64():
    x = sj.tensor(np.random.default_rng(2).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(legendre_p3(sj).apply, (x,))
    w = sj.tensor(np.random.default_rng(3).standard_normal((2, 4)), requires_grad=True)
    b = sj.tensor(np.random.default_rng(4).standard_normal(2), requires_grad=True)
    assert gradcheck(lambda x, w, b: scaled_linear(sj).apply(x, w, b, 0.5), (x, w, b))
    y = (x.detach() * 2.0 + 1.0).requires_grad_()
    assert gradcheck(lambda a, c: product_and_sum(sj).apply(a, c)[0] * 2.0
                     + product_and_sum(sj).apply(a, c)[1], (x, y))


def test_setup_context_style_and_needs_input_grad_match_torch():
    (x, tx), (w, tw) = _pair((3, 4), 5), _pair((2, 4), 6)
    x.requires_grad_(False)
    tx.requires_grad_(False)
    up = np.random.default_rng(7).standard_normal((3, 2)).astype(np.float32)
    out = scaled_linear(sj).apply(x, w, None, 2.0)
    tout = scaled_linear(torch).apply(tx, tw, None, 2.0)
    out.backward(sj.tensor(up))
    tout.backward(torch.tensor(up))
    _close(out, tout)
    _close(w.grad, tw.grad)
    assert x.grad is None and tx.grad is None


def test_needs_input_grad_seen_in_forward_and_backward():
    seen = {}

    def probe(lib):
        class Probe(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b, k):
                seen[lib.__name__, "forward"] = (ctx.needs_input_grad, lib.is_grad_enabled())
                return a * b * k

            @staticmethod
            def backward(ctx, g):
                seen[lib.__name__, "backward"] = (ctx.needs_input_grad, lib.is_grad_enabled())
                return g, g, None

        return Probe

    for lib in (sj, torch):
        a, b = lib.ones(2, requires_grad=True), lib.ones(2)
        probe(lib).apply(a, b, 3).sum().backward()
    assert seen["shenjing", "forward"] == seen["torch", "forward"] == ((True, False, False),
                                                                        False)
    assert seen["shenjing", "backward"] == seen["torch", "backward"]


def test_forward_records_no_graph_inside():
    inner = {}

    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            y = x * x
            inner["y"] = (y.requires_grad, y.grad_fn)
            ctx.save_for_backward(x)
            return y

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            assert isinstance(x, sj.Tensor) and isinstance(g, sj.Tensor)
            return 2 * x * g

    x = sj.tensor([3.0], requires_grad=True)
    out = Square.apply(x)
    assert inner["y"] == (False, None) and out.requires_grad
    out.backward()
    assert x.grad.tolist() == [6.0]
    with sj.no_grad():
        assert not Square.apply(x).requires_grad


def test_non_differentiable_output_and_scatter_backward_match_torch():
    (x, tx), up = _pair((3, 5), 8), np.random.default_rng(9).standard_normal((3, 5))
    values, indices = sort_with_indices(sj).apply(x)
    tvalues, tindices = sort_with_indices(torch).apply(tx)
    assert not indices.requires_grad and not tindices.requires_grad and values.requires_grad
    assert indices.dtype is sj.int64
    np.testing.assert_array_equal(indices.numpy(), tindices.numpy())
    values.backward(sj.tensor(up, dtype=sj.float32))
    tvalues.backward(torch.tensor(up, dtype=torch.float32))
    _close(x.grad, tx.grad)


def test_two_differentiable_outputs_match_torch():
    (a, ta), (b, tb) = _pair((2, 3), 10), _pair((2, 3), 11)
    rng = np.random.default_rng(12)
    up1, up2 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    p, s = product_and_sum(sj).apply(a, b)
    tp, ts = product_and_sum(torch).apply(ta, tb)
    assert p.dtype is sj.float32 and s.dtype is sj.float64
    _close(p, tp)
    _close(s, ts)
    ((p * sj.tensor(up1)).sum() + (s * sj.tensor(up2)).sum()).backward()
    ((tp * torch.tensor(up1)).sum() + (ts * torch.tensor(up2)).sum()).backward()
    _close(a.grad, ta.grad)
    _close(b.grad, tb.grad)
    # only one output used: the other's gradient is materialized as zeros, as in torch
    for t in (a, b, ta, tb):
        t.grad = None
    product_and_sum(sj).apply(a, b)[1].sum().backward()
    product_and_sum(torch).apply(ta, tb)[1].sum().backward()
    _close(a.grad, ta.grad)


def test_mark_dirty_rebinds_the_changed_input_as_torch():
    def double_in_place(lib):
        class DoubleInPlace(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                x.mul_(2)
                ctx.mark_dirty(x)
                return x

            @staticmethod
            def backward(ctx, g):
                return g * 2

        return DoubleInPlace

    (x, tx), up = _pair((4,), 13), np.random.default_rng(14).standard_normal(4)
    results = []
    for lib, leaf in ((sj, x), (torch, tx)):
        h = leaf * 3.0
        out = double_in_place(lib).apply(h)
        assert out is h and out.requires_grad
        (out * lib.tensor(up, dtype=lib.float32)).sum().backward()
        results.append((out.detach().numpy().copy(), leaf.grad.numpy().copy()))
        with pytest.raises(RuntimeError, match="leaf"):
            double_in_place(lib).apply(leaf)
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)


def test_saved_tensor_changed_in_place_raises_as_torch():
    for lib in (sj, torch):
        x = lib.tensor([1.0, -2.0], requires_grad=True)
        h = x * 1.0
        out = my_relu(lib).apply(h)
        h.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()


def test_gradient_returned_for_a_broadcast_input_is_summed_as_torch():
    def add_bias(lib):
        class AddBias(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, bias):
                return x + bias

            @staticmethod
            def backward(ctx, g):
                return g, g  # the bias gradient still has x's shape

        return AddBias

    (x, tx), (b, tb) = _pair((3, 4), 15), _pair((4,), 16)
    add_bias(sj).apply(x, b).sum().backward()
    add_bias(torch).apply(tx, tb).sum().backward()
    _close(b.grad, tb.grad)


def test_backward_mistakes_raise_clear_errors():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    class GradForANumber(Function):
        @staticmethod
        def forward(ctx, a, k):
            return a * k

        @staticmethod
        def backward(ctx, g):
            return g * 2, g

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, g):
            return sj.ones(5)

    a = sj.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 1 gradients; expected 2"):
        TooFew.apply(a, a).sum().backward()
    with pytest.raises(RuntimeError, match="input 1, which is not a tensor"):
        GradForANumber.apply(a, 2.0).sum().backward()
    with pytest.raises(RuntimeError, match=r"shape \[5\] for input 0, which has shape \[3\]"):
        WrongShape.apply(a).backward()


def test_returned_gradient_never_aliases_a_saved_tensor():
    class Dot(Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return (x * w).sum()

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return w, x  # right for g == 1, and exactly the saved tensors

    x, w = sj.tensor([1.0, 2.0], requires_grad=True), sj.tensor([3.0, 4.0], requires_grad=True)
    Dot.apply(x, w).backward()
    assert x.grad.tolist() == [3.0, 4.0] and w.grad.tolist() == [1.0, 2.0]
    assert not np.shares_memory(x.grad.numpy(), w.numpy())
    assert not np.shares_memory(w.grad.numpy(), x.numpy())


def test_once_differentiable_and_materialize_grads_are_accepted():
    once = sj.autograd.function.once_differentiable

    class Cube(sj.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        @once
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * g

    x = sj.tensor([2.0], requires_grad=True)
    Cube.apply(x).backward()
    assert x.grad.tolist() == [12.0]


def test_builtin_ops_stay_array_level_and_user_functions_can_opt_in():
    from shenjing.ops.elementwise import Exp

    assert Exp.array_level and Exp.apply.__func__ is Function.apply.__func__
    assert not legendre_p3(sj).array_level
    seen = []

    class RawDouble(Function):
        array_level = True  # shenjing's own op protocol: arrays in and out

        @staticmethod
        def forward(ctx, a):
            seen.append(type(a))
            return a * 2

        @staticmethod
        def backward(ctx, g):
            seen.append(type(g))
            return g * 2

    x = sj.ones(2, requires_grad=True)
    RawDouble.apply(x).sum().backward()
    assert seen == [np.ndarray, np.ndarray] and x.grad.tolist() == [2.0, 2.0]


def test_setup_context_sees_forward_defaults_as_torch():
    seen = {}

    def power(lib):
        class Power(lib.autograd.Function):
            @staticmethod
            def forward(x, exponent=3.0):
                return x ** exponent

            @staticmethod
            def setup_context(ctx, inputs, output):
                seen[lib.__name__] = len(inputs)
                x, exponent = inputs
                ctx.save_for_backward(x)
                ctx.exponent = exponent

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return g * ctx.exponent * x ** (ctx.exponent - 1), None

        return Power

    (x, tx), up = _pair((3,), 17), np.random.default_rng(18).standard_normal(3)
    power(sj).apply(x).backward(sj.tensor(up, dtype=sj.float32))
    power(torch).apply(tx).backward(torch.tensor(up, dtype=torch.float32))
    assert seen["shenjing"] == seen["torch"] == 2
    _close(x.grad, tx.grad)


def test_onnx_export_traces_through_a_custom_function():
    """forward's own output tensor is what apply returns, so the ONNX tracer follows it
    (a new tensor there would be captured as a constant)."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import io

    from shenjing.onnx.exporter import export

    p3 = legendre_p3(sj)

    class Model(sj.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = sj.nn.Linear(4, 3)

        def forward(self, x):
            return p3.apply(self.lin(x)) * 2.0

    model, buf = Model(), io.BytesIO()
    export(model, (sj.randn(2, 4),), buf)
    session = ort.InferenceSession(buf.getvalue())
    x = np.random.default_rng(19).standard_normal((2, 4)).astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model(sj.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_retain_graph_runs_a_custom_backward_twice_as_torch():
    grads = []
    for lib in (sj, torch):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        out = legendre_p3(lib).apply(x).sum()
        out.backward(retain_graph=True)
        out.backward()
        grads.append(x.grad.numpy().copy())
        with pytest.raises(RuntimeError):
            out.backward()  # the graph was freed by the second call
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)
    assert sj.autograd.function.FunctionCtx is Function
