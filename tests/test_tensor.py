"""The Tensor outside of autograd: creation, dtypes, attributes, conversion, repr, in-place
ops, __setitem__, comparisons and max/min's (values, indices) results, checked against torch
where torch defines the behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj


def _torch():
    return pytest.importorskip("torch")


def _same(t, expected_torch) -> None:
    """Same dtype, shape and values as a torch tensor."""
    e = expected_torch.detach().numpy()
    assert t.dtype == e.dtype and t.shape == e.shape
    if e.dtype.kind == "f":  # linspace may round its last bit differently
        np.testing.assert_array_max_ulp(t.numpy(), e, maxulp=1)
    else:
        np.testing.assert_array_equal(t.numpy(), e)


# ----------------------------------------------------------------------------- creation


@pytest.mark.parametrize("data, dtype", [
    ([1.0, 2.0], sj.float32),
    ([1, 2.5], sj.float32),
    (3.5, sj.float32),
    ([1, 2], sj.int64),
    (7, sj.int64),
    ([True, False], sj.bool),
    (np.array([1.0, 2.0]), sj.float64),  # NumPy arrays keep their dtype, as in torch
    (np.array([1, 2], dtype=np.int32), sj.int32),
    ([[1, 2], [3, 4]], sj.int64),
])
def test_tensor_default_dtypes(data, dtype):
    t = sj.tensor(data)
    assert t.dtype == dtype
    torch = _torch()
    _same(t, torch.tensor(data))


def test_tensor_copies_and_takes_a_dtype():
    a = np.array([1.0, 2.0], dtype=np.float32)
    t = sj.tensor(a)
    a[0] = 5.0
    assert t[0].item() == 1.0
    assert sj.tensor([1, 2], dtype=sj.float64).dtype == sj.float64
    assert sj.tensor([1.7], dtype=sj.int64).tolist() == [1]
    assert sj.from_numpy(a).numpy() is a


@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(2, 3),
    lambda lib: lib.zeros((2, 3)),
    lambda lib: lib.ones(4),
    lambda lib: lib.ones(2, 2, dtype=lib.float64),
    lambda lib: lib.full((2, 3), 1.5),
    lambda lib: lib.full((2,), 7),
    lambda lib: lib.full((2,), True),
    lambda lib: lib.zeros_like(lib.ones(2, 3, dtype=lib.float64)),
    lambda lib: lib.ones_like(lib.tensor([1, 2, 3])),
    lambda lib: lib.full_like(lib.ones(2), 4.0),
    lambda lib: lib.arange(5),
    lambda lib: lib.arange(1, 10, 3),
    lambda lib: lib.arange(0, 1, 0.25),
    lambda lib: lib.arange(2.0, 5.0),
    lambda lib: lib.linspace(0, 1, 5),
    lambda lib: lib.linspace(-2, 2, 4),
    lambda lib: lib.eye(3),
    lambda lib: lib.eye(2, 3),
], ids=lambda f: "")
def test_creation_matches_torch(make):
    torch = _torch()
    _same(make(sj), make(torch))


def test_empty_and_empty_like():
    e = sj.empty(2, 3)
    assert e.shape == (2, 3) and e.dtype == sj.float32
    e = sj.empty_like(sj.tensor([1, 2]))
    assert e.shape == (2,) and e.dtype == sj.int64


def test_creation_with_requires_grad_and_errors():
    assert sj.zeros(2, requires_grad=True).requires_grad
    assert sj.ones(2).requires_grad is False
    with pytest.raises(ValueError, match="negative"):
        sj.zeros(2, -1)


def test_random_creation_shapes_dtypes_and_ranges():
    sj.manual_seed(0)
    r = sj.rand(1000)
    assert r.dtype == sj.float32 and r.shape == (1000,)
    assert 0.0 <= r.min().item() and r.max().item() < 1.0 and 0.45 < r.mean().item() < 0.55
    n = sj.randn(100, 100)
    assert n.dtype == sj.float32 and abs(n.mean().item()) < 0.05
    assert 0.95 < n.std().item() < 1.05
    assert sj.randn(3, dtype=sj.float64).dtype == sj.float64
    i = sj.randint(2, 9, (500,))
    assert i.dtype == sj.int64 and i.min().item() == 2 and i.max().item() == 8
    assert sj.randint(5, (3,)).max().item() < 5
    p = sj.randperm(10)
    assert p.dtype == sj.int64 and sorted(p.tolist()) == list(range(10))
    assert sj.rand_like(sj.ones(2, 3)).shape == (2, 3)
    assert sj.randn_like(sj.ones(2, dtype=sj.float64)).dtype == sj.float64


def test_manual_seed_reproduces_every_random_creation():
    def draw():
        return [sj.rand(3), sj.randn(2, 2), sj.randint(0, 100, (4,)), sj.randperm(6)]

    sj.manual_seed(123)
    first = draw()
    sj.manual_seed(123)
    second = draw()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    sj.manual_seed(124)
    assert not np.array_equal(sj.rand(3).numpy(), first[0].numpy())


def test_generator_argument_is_an_independent_stream():
    g1 = sj.Generator().manual_seed(5)
    a = sj.randn(4, generator=g1)
    sj.manual_seed(0)
    sj.randn(10)  # the default stream moves; g1's does not care
    g2 = sj.Generator().manual_seed(5)
    np.testing.assert_array_equal(sj.randn(4, generator=g2).numpy(), a.numpy())


# ----------------------------------------------------------------------------- attributes


def test_attributes():
    t = sj.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert t.shape == (2, 3) and isinstance(t.shape, tuple)
    assert t.ndim == 2 and t.dim() == 2 and t.numel() == 6
    assert t.size() == (2, 3) and t.size(1) == 3 and t.size(-2) == 2
    assert t.dtype == sj.float32 and t.dtype == np.float32
    assert t.grad is None and t.requires_grad and t.is_leaf
    assert isinstance(t.numpy(), np.ndarray)
    assert isinstance(t.data, sj.Tensor) and not t.data.requires_grad  # torch's .data
    assert np.shares_memory(t.data.numpy(), t.numpy())
    assert len(t) == 2
    assert [row.tolist() for row in t] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def test_numpy_item_tolist_and_array_protocol():
    t = sj.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert np.shares_memory(t.numpy(), t.data.numpy())  # shared, as torch's .numpy() on CPU
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    v = t[0, 0].item()
    assert v == 1.5 and type(v) is float
    assert type(sj.tensor([3]).item()) is int
    assert float(sj.tensor(2.5)) == 2.5 and int(sj.tensor(4)) == 4
    with pytest.raises(ValueError, match="one element"):
        t.item()
    a = np.asarray(t)
    assert a.dtype == np.float32 and np.shares_memory(a, t.data)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_dtype_conversions():
    t = sj.tensor([1.7, -2.2])
    assert t.double().dtype == sj.float64 and t.float() is t
    assert t.long().tolist() == [1, -2] and t.long().dtype == sj.int64
    assert t.to(sj.float64).dtype == sj.float64 and t.to("cpu") is t
    assert t.bool().dtype == sj.bool and t.int().dtype == sj.int32
    assert t.type_as(sj.tensor([1])).dtype == sj.int64


# ----------------------------------------------------------------------------- repr


@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor([1.0, 2.0], requires_grad=True),
    lambda lib: lib.tensor([1.5, 2.25]),
    lambda lib: lib.tensor([-1.5, 2.25, 3.0]),
    lambda lib: lib.tensor([[1.5, 2.0], [3.0, 4.0]]),
    lambda lib: lib.tensor(2.5),
    lambda lib: lib.tensor(3.0),
    lambda lib: lib.tensor([1, 2, 3]),
    lambda lib: lib.tensor([True, False]),
    lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64),
    lambda lib: lib.tensor([1, 2], dtype=lib.int32),
    lambda lib: lib.zeros(0),
    lambda lib: lib.zeros(0, 4),
], ids=lambda f: "")
def test_repr_matches_torch(make):
    torch = _torch()
    assert repr(make(sj)) == repr(make(torch)).replace("torch.", "shenjing.")


def test_repr_names_the_grad_fn():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2.0) == "tensor([2., 4.], grad_fn=<MulBackward>)"


# ----------------------------------------------------------------------------- in place


def test_inplace_operators_on_a_plain_tensor_modify_it():
    t = sj.tensor([1.0, 2.0])
    buf = t.numpy()
    before = t
    t += 1.0
    t *= sj.tensor([2.0, 3.0])
    t -= 1.0
    t /= 2.0
    assert t is before and t.numpy() is buf
    np.testing.assert_array_equal(t.numpy(), [1.5, 4.0])


def test_inplace_on_a_leaf_that_requires_grad_raises():
    w = sj.tensor([1.0, 2.0], requires_grad=True)
    for update in (lambda: w.__iadd__(1.0), lambda: w.__imul__(2.0), lambda: w.add_(1.0),
                   lambda: w.mul_(2.0), lambda: w.zero_(), lambda: w.fill_(0.0)):
        with pytest.raises(RuntimeError, match="in[- ]place|no_grad"):
            update()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])


def test_inplace_on_a_leaf_under_no_grad_is_allowed():
    w = sj.tensor([1.0, 2.0], requires_grad=True)
    buf = w.numpy()
    with sj.no_grad():
        w -= 0.5 * sj.tensor([2.0, 2.0])
        w.add_(sj.tensor([1.0, 1.0]), alpha=0.5)
        w.mul_(2.0)
    assert w.numpy() is buf and w.requires_grad and w.is_leaf
    np.testing.assert_array_equal(w.numpy(), [1.0, 3.0])
    with sj.no_grad():
        w.zero_()
    assert w.tolist() == [0.0, 0.0]


def test_inplace_operator_on_a_non_leaf_keeps_the_gradient_right():
    x = sj.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y += x  # torch updates y in place; either way d(y)/d(x) is 4
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])


def test_setitem_on_a_plain_tensor():
    t = sj.zeros(3, 4)
    t[0] = 5.0
    t[1, ::2] = sj.tensor([1.0, 2.0])
    t[t > 4.0] = -1.0
    t[..., -1] = 7.0
    torch = _torch()
    e = torch.zeros(3, 4)
    e[0] = 5.0
    e[1, ::2] = torch.tensor([1.0, 2.0])
    e[e > 4.0] = -1.0
    e[..., -1] = 7.0
    _same(t, e)


def test_setitem_on_a_tensor_that_requires_grad():
    w = sj.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires"):
        w[0] = 2.0
    with sj.no_grad():
        w[0] = 2.0  # a leaf may be initialized under no_grad, as in torch
    assert w.tolist() == [2.0, 1.0, 1.0]
    y = w * 2.0
    y[0] = 0.0  # a non-leaf inside the graph: assignment is recorded, as torch's CopySlices
    y.sum().backward()
    assert w.grad.tolist() == [0.0, 2.0, 2.0]


# ----------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize("op", [
    lambda a, b: a == b, lambda a, b: a != b, lambda a, b: a < b, lambda a, b: a <= b,
    lambda a, b: a > b, lambda a, b: a >= b, lambda a, b: a > 1.5, lambda a, b: a == 2.0,
    lambda a, b: a.eq(b), lambda a, b: a.lt(b), lambda a, b: a.ge(b),
], ids=lambda f: "")
def test_comparisons_return_bool_tensors(op):
    torch = _torch()
    a, b = [1.0, 2.0, 3.0, 2.0], [1.0, 3.0, 2.0, 2.0]
    out = op(sj.tensor(a), sj.tensor(b))
    assert isinstance(out, sj.Tensor) and out.dtype == sj.bool and not out.requires_grad
    _same(out, op(torch.tensor(a), torch.tensor(b)))


def test_logical_ops_on_bool_tensors():
    m = sj.tensor([True, False, True])
    assert (~m).tolist() == [False, True, False]
    assert (m & sj.tensor([True, True, False])).tolist() == [True, False, False]
    assert (m | sj.tensor([False, True, False])).tolist() == [True, True, True]
    assert m.any().item() and not m.all().item()


# ----------------------------------------------------------------------------- max / min results


def test_max_with_dim_returns_values_and_indices():
    torch = _torch()
    data = [[1.0, 5.0, 3.0], [7.0, 2.0, 4.0]]
    x, tx = sj.tensor(data), torch.tensor(data)
    values, indices = sj.max(x, dim=1)
    tvalues, tindices = torch.max(tx, dim=1)
    _same(values, tvalues)
    _same(indices, tindices)
    r = x.max(dim=0, keepdim=True)
    assert r.values.shape == (1, 3) and r.indices.shape == (1, 3)
    _same(r.values, tx.max(dim=0, keepdim=True).values)
    _same(r.indices, tx.max(dim=0, keepdim=True).indices)
    m = x.min(1)
    _same(m.values, tx.min(1).values)
    _same(m.indices, tx.min(1).indices)
    assert x.max().item() == 7.0 and x.max().ndim == 0


def test_seed_accuracy_idiom():
    """`_, predicted = torch.max(outputs.data, 1)` then counting matches (seed 000)."""
    outputs = sj.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], requires_grad=True)
    labels = sj.tensor([1, 0, 0])
    _, predicted = sj.max(outputs.data, 1)
    assert predicted.dtype == sj.int64
    assert (predicted == labels).sum().item() == 2
    assert outputs.argmax(1).tolist() == [1, 0, 1]
