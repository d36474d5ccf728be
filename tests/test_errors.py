"""Bad input fails at the user's call with shenjing's own message: the op, and expected vs
actual (shapes, dims, dtypes), raised from shenjing's code rather than from inside NumPy."""

from __future__ import annotations

import os

import numpy as np
import pytest

import shenjing as sj

SHENJING_DIR = os.path.dirname(sj.__file__)


def _raised_by_shenjing(info: pytest.ExceptionInfo) -> None:
    """The innermost frame is shenjing's, and no NumPy exception is chained to it."""
    last = str(info.traceback[-1].path)
    assert last.startswith(SHENJING_DIR), f"raised from {last}, not from shenjing"
    exc = info.value
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def _expect(exc_type, fn, *fragments: str) -> str:
    with pytest.raises(exc_type) as info:
        fn()
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    _raised_by_shenjing(info)
    return msg


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("a, b", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (4,)),
                                  ((5,), (4, 2)), ((2, 3, 4), (3, 5, 6))])
def test_matmul_inner_mismatch_names_op_and_shapes(a, b):
    _expect(ValueError, lambda: sj.ones(*a) @ sj.ones(*b), "matmul", str(a), str(b))


def test_matmul_batch_mismatch_and_0d():
    _expect(ValueError, lambda: sj.matmul(sj.ones(2, 3, 4), sj.ones(3, 4, 5)),
            "matmul", "(2, 3, 4)", "(3, 4, 5)")
    _expect(ValueError, lambda: sj.ones(3) @ sj.tensor(2.0), "matmul", "(3,)", "()")


@pytest.mark.parametrize("name, op", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a ** b),
    ("maximum", lambda a, b: sj.maximum(a, b)), ("minimum", lambda a, b: sj.minimum(a, b)),
    ("where", lambda a, b: sj.where(sj.ones(2, 3) > 0, a, b)),
])
def test_broadcast_mismatch_names_op_and_both_shapes(name, op):
    a = sj.ones(2, 3, requires_grad=True)
    _expect(ValueError, lambda: op(a, sj.ones(4)), name, "(2, 3)", "(4,)")


def test_broadcast_mismatch_with_the_tensor_on_the_right():
    _expect(ValueError, lambda: np.ones(4) + sj.ones(2, 3), "add", "(4,)", "(2, 3)")


def test_inplace_with_a_mismatched_shape():
    t = sj.zeros(2, 3)
    _expect(ValueError, lambda: t.__iadd__(sj.ones(4)), "(2, 3)", "(4,)")
    _expect(ValueError, lambda: t.__imul__(sj.ones(2, 2, 3)), "(2, 3)", "(2, 2, 3)")


def test_reshape_to_an_incompatible_shape_names_both():
    _expect(ValueError, lambda: sj.ones(2, 3).reshape(4, 2), "reshape", "(2, 3)", "(4, 2)")
    _expect(ValueError, lambda: sj.ones(2, 3).view(-1, 4), "(2, 3)", "(-1, 4)")


def test_cat_and_stack_with_mismatched_shapes():
    _expect(ValueError, lambda: sj.cat([sj.ones(2, 3), sj.ones(3, 2)], dim=1),
            "cat", "(2, 3)", "(3, 2)")
    _expect(ValueError, lambda: sj.cat([sj.ones(2, 3), sj.ones(2)]), "cat", "(2,)")
    _expect(ValueError, lambda: sj.cat([]), "cat")
    _expect(ValueError, lambda: sj.stack([sj.ones(2), sj.ones(3)]), "stack", "(2,)", "(3,)")


def test_expand_and_movement_errors():
    _expect(ValueError, lambda: sj.ones(3, 2).expand(3, 4), "(3, 2)", "(3, 4)")
    _expect(ValueError, lambda: sj.ones(2, 3).split([1, 1], 1), "split", "[1, 1]", "3")
    _expect(ValueError, lambda: sj.ones(2, 3).permute(0, 0), "permute", "(0, 0)")
    _expect(ValueError, lambda: sj.pad(sj.ones(2), (1, 2, 3)), "pad")
    _expect(ValueError, lambda: sj.ones(2, 3).repeat(2), "repeat")


def test_backward_gradient_of_the_wrong_shape():
    y = sj.ones(2, 3, requires_grad=True) * 2.0
    _expect(ValueError, lambda: y.backward(sj.ones(3, 2)), "(3, 2)", "(2, 3)")


# ----------------------------------------------------------------------------- autograd


def test_backward_on_a_non_scalar_without_gradient():
    y = sj.ones(2, 3, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="gradient") as info:
        y.backward()
    assert "(2, 3)" in str(info.value)


def test_backward_on_a_tensor_without_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        sj.ones(2).sum().backward()


@pytest.mark.parametrize("make", [
    lambda: sj.tensor([1, 2], requires_grad=True),
    lambda: sj.ones(2, dtype=sj.int64, requires_grad=True),
    lambda: sj.tensor([True]).requires_grad_(),
    lambda: sj.arange(4).requires_grad_(True),
], ids=["tensor", "ones", "bool", "requires_grad_"])
def test_requires_grad_on_an_integer_tensor(make):
    _expect(TypeError, make, "floating", "dtype")


# ----------------------------------------------------------------------------- dims


@pytest.mark.parametrize("dim", [5, -4])
@pytest.mark.parametrize("call", [
    lambda x, d: x.sum(dim=d), lambda x, d: x.mean(d), lambda x, d: x.prod(d),
    lambda x, d: x.amax(d), lambda x, d: x.amin((0, d)), lambda x, d: x.max(dim=d),
    lambda x, d: x.min(d), lambda x, d: x.argmax(d), lambda x, d: x.var(d),
    lambda x, d: x.std(d), lambda x, d: x.logsumexp(d), lambda x, d: x.norm(dim=d),
    lambda x, d: x.softmax(d), lambda x, d: x.log_softmax(d), lambda x, d: x.transpose(0, d),
    lambda x, d: x.squeeze(d), lambda x, d: x.flatten(0, d), lambda x, d: x.flip(d),
    lambda x, d: x.split(1, dim=d), lambda x, d: x.chunk(2, d), lambda x, d: x.narrow(d, 0, 1),
    lambda x, d: x.gather(d, sj.zeros(2, 3, dtype=sj.int64)), lambda x, d: x.permute(0, d),
    lambda x, d: sj.cat([x, x], dim=d), lambda x, d: x.size(d), lambda x, d: x.unbind(d),
], ids=lambda f: "")
def test_dim_out_of_range_names_the_dim_and_ndim(call, dim):
    x = sj.ones(2, 3, requires_grad=True)
    _expect(IndexError, lambda: call(x, dim), f"dimension {dim} ", "2 dimension")


def test_unsqueeze_and_stack_accept_one_more_dim():
    x = sj.ones(2, 3)
    assert x.unsqueeze(2).shape == (2, 3, 1) and x.unsqueeze(-3).shape == (1, 2, 3)
    _expect(IndexError, lambda: x.unsqueeze(3), "3", "3 dimension")
    _expect(IndexError, lambda: sj.stack([x, x], dim=3), "3", "3 dimension")


# ----------------------------------------------------------------------------- values, dtypes


def test_index_out_of_bounds():
    _expect(IndexError, lambda: sj.ones(3)[5], "index", "5", "(3,)")


def test_item_of_a_multi_element_tensor():
    _expect(ValueError, lambda: sj.ones(2).item(), "item", "(2,)")


def test_other_value_errors():
    _expect(ValueError, lambda: sj.ones(2).clamp(), "clamp")
    _expect(ValueError, lambda: sj.ones(2).norm(p=-1), "norm", "-1")
    _expect(ValueError, lambda: sj.one_hot(sj.tensor([0, 5]), 3), "one_hot", "3", "5")
    _expect(TypeError, lambda: sj.one_hot(sj.tensor([0.0, 1.0]), 3), "one_hot", "float32")
    _expect(TypeError, lambda: sj.tensor(["a", "b"]), "dtype")
    _expect(TypeError, lambda: sj.ones(2).mean(dtype=sj.int64), "mean", "int64")
    _expect(ValueError, lambda: sj.randint(5, 5, (2,)), "randint")
