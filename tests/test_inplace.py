"""In-place safety as in PyTorch: version counters, `.data`, integer requires_grad, promotion.

Each case runs the same program on shenjing and on torch 2.13: where torch raises, shenjing
raises with torch's message; where torch computes, shenjing computes the same gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import nn, optim

torch = pytest.importorskip("torch")

VERSION_ERROR = "modified by an inplace operation"


def _both(program):
    """Run `program(lib)` on shenjing and torch; return both results (or both exceptions)."""
    out = []
    for lib in (sj, torch):
        try:
            out.append(program(lib))
        except RuntimeError as e:
            out.append(e)
    return out


def _raises_like_torch(program):
    mine, theirs = _both(program)
    assert isinstance(theirs, RuntimeError) and VERSION_ERROR in str(theirs)
    assert isinstance(mine, RuntimeError), f"shenjing computed {mine!r} where torch raised"
    assert VERSION_ERROR in str(mine)
    assert "is at version" in str(mine) and "expected version" in str(mine)


def _same_grads(program):
    mine, theirs = _both(program)
    assert not isinstance(theirs, Exception), theirs
    assert not isinstance(mine, Exception), mine
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=1e-6)


def _leaf(lib, values):
    return lib.tensor(values, requires_grad=True)


VIEWS = {
    "reshape": lambda x: x.reshape(4, 1),
    "view": lambda x: x.view(4, 1),
    "index": lambda x: x[:, None],
    "unsqueeze": lambda x: x.unsqueeze(1),
    "transpose": lambda x: x.reshape(1, 4).t(),
    "expand": lambda x: x.unsqueeze(1).expand(4, 3),
}


@pytest.mark.parametrize("make_view", VIEWS.values(), ids=VIEWS.keys())
def test_view_shares_its_base_version_counter(make_view):
    """A node that saved a view sees an in-place change of the base (and vice versa), as in
    torch: without a shared counter the gradient would silently use the changed values."""
    def base_changed(lib):
        x = _leaf(lib, [0.0, 1.0, 2.0, 3.0])
        w = _leaf(lib, np.full((4, 3), 3.0))
        y = (make_view(x) * w).sum()  # Mul saved the view for w's gradient
        with lib.no_grad():
            x.mul_(2)
        y.backward()
        return (w.grad,)

    def view_changed(lib):
        x = _leaf(lib, [0.0, 1.0, 2.0, 3.0])
        y = x.exp()  # Exp saved its output: change it through a view of it
        with lib.no_grad():
            make_view(y)[0].zero_()
        y.sum().backward()
        return (x.grad,)

    _raises_like_torch(base_changed)
    if make_view is not VIEWS["expand"]:  # torch refuses in-place writes into an expand
        _raises_like_torch(view_changed)


# ----------------------------------------------------------------------------- must raise


def test_weight_scaled_in_place_after_use():
    def program(lib):
        x, w = _leaf(lib, [1.0, 2.0]), _leaf(lib, [3.0, 4.0])
        y = (x * w).sum()
        with lib.no_grad():
            w.mul_(10)
        y.backward()
        return x.grad

    _raises_like_torch(program)


def test_setitem_on_a_saved_weight():
    def program(lib):
        x, w = _leaf(lib, [1.0, 2.0]), _leaf(lib, [3.0, 4.0])
        y = (x * w).sum()
        with lib.no_grad():
            w[0] = 100
        y.backward()
        return x.grad

    _raises_like_torch(program)


def test_output_saved_by_exp_changed_under_no_grad():
    def program(lib):
        x = _leaf(lib, [0.5, 1.0])
        y = x.exp()
        with lib.no_grad():
            y.mul_(2)
        y.sum().backward()
        return x.grad

    _raises_like_torch(program)


def test_detached_alias_shares_the_counter():
    def program(lib):
        x, w = _leaf(lib, [1.0, 2.0]), _leaf(lib, [3.0, 4.0])
        y = (x * w).sum()
        w.detach().zero_()
        y.backward()
        return x.grad

    _raises_like_torch(program)


@pytest.mark.parametrize("op", ["add_", "copy_", "fill_", "clamp_", "sub_", "div_"])
def test_every_in_place_method_bumps_the_version(op):
    args = {"add_": (1.0,), "copy_": (None,), "fill_": (2.0,), "clamp_": (0.0, 1.0),
            "sub_": (1.0,), "div_": (2.0,)}[op]

    def program(lib):
        x, w = _leaf(lib, [1.0, 2.0]), _leaf(lib, [3.0, 4.0])
        y = (x * w).sum()
        with lib.no_grad():
            a = tuple(lib.ones(2) if v is None else v for v in args)
            getattr(w, op)(*a)
        y.backward()
        return x.grad

    _raises_like_torch(program)


def test_gan_style_second_backward_after_optimizer_step():
    def program(lib):
        lib.manual_seed(0)
        net = (sj if lib is sj else torch).nn.Linear(3, 1)
        opt = (sj if lib is sj else torch).optim.SGD(net.parameters(), lr=0.1)
        x = lib.ones(4, 3, requires_grad=True)  # the generator's output, as in a GAN
        h = lib.tanh(net(x)) * net(x)  # linear saves the weight for x's gradient
        loss = h.sum()
        loss.backward(retain_graph=True)
        opt.step()
        loss.backward()  # the retained graph saved the old weight
        return net.weight.grad

    _raises_like_torch(program)


# ----------------------------------------------------------------------------- must work


def test_in_place_on_a_tensor_no_node_saved():
    def program(lib):
        x = _leaf(lib, [1.0, 2.0])
        y = x + 1  # Add saves nothing
        with lib.no_grad():
            c = lib.ones(2)
            c.mul_(3)
        (y * 2).sum().backward()
        return (x.grad,)

    _same_grads(program)


def test_non_leaf_add_in_place_is_recorded():
    def program(lib):
        x = _leaf(lib, [1.0, 2.0, 3.0])
        y = x * 2
        y.add_(1)
        y.mul_(3)  # mul by a constant needs no old value
        z = y * y
        z.sum().backward()
        return x.grad, y.detach()

    _same_grads(program)


def test_residual_plus_equals_on_a_non_leaf():
    def program(lib):
        x, w = _leaf(lib, [[1.0, -2.0], [0.5, 3.0]]), _leaf(lib, [[0.2, 0.1], [-0.3, 0.4]])
        out = x @ w
        out += x  # ResNet's `out += identity`
        out.relu().sum().backward()
        return x.grad, w.grad

    _same_grads(program)


def test_setitem_on_a_non_leaf_routes_gradients():
    def program(lib):
        x, v = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]]), _leaf(lib, [5.0, 6.0])
        y = x * 2
        y[0] = v * 3
        (y * y).sum().backward()
        return x.grad, v.grad

    _same_grads(program)


def test_optimizer_updates_leaves_in_place_under_no_grad():
    net = nn.Linear(2, 1)
    before = net.weight.numpy()
    opt = optim.SGD(net.parameters(), lr=0.1)
    net(sj.ones(3, 2)).sum().backward()
    v0 = net.weight._version_value
    opt.step()
    assert net.weight.numpy() is before  # same storage, updated in place
    assert net.weight._version_value > v0


def test_leaf_in_place_under_grad_mode_raises_like_torch():
    for lib in (sj, torch):
        w = _leaf(lib, [1.0, 2.0])
        with pytest.raises(RuntimeError, match="leaf"):
            w.add_(1)


# ----------------------------------------------------------------------------- .data


def test_data_is_a_tensor_sharing_storage_without_grad():
    out = sj.tensor([[0.1, 0.9, 0.3], [0.8, 0.1, 0.2]], requires_grad=True)
    d = out.data
    assert isinstance(d, sj.Tensor) and not d.requires_grad and d.is_leaf
    _, idx = sj.max(out.data, 1)  # the seed's `torch.max(outputs.data, dim=1)`
    assert idx.tolist() == [1, 0]
    assert out.data.max(1)[1].tolist() == [1, 0]
    out.data.add_(1.0)  # changes the storage, as torch's p.data.add_
    np.testing.assert_allclose(out.numpy()[0, 0], 1.1, rtol=1e-6)


def test_data_methods_used_by_manual_updates_match_torch():
    for lib in (sj, torch):
        lib.manual_seed(0)
    p_sj = sj.tensor([1.0, 2.0, 3.0], requires_grad=True)
    p_t = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for p in (p_sj, p_t):
        p.data.add_(p.data * -0.5)
        p.data.copy_(p.data * 4)
    np.testing.assert_allclose(p_sj.numpy(), p_t.detach().numpy())
    p_sj.data.normal_()
    assert p_sj.requires_grad and np.isfinite(p_sj.numpy()).all()
    assert not np.allclose(p_sj.numpy(), p_t.detach().numpy())


def test_data_changes_are_invisible_to_autograd_as_in_torch():
    def program(lib):
        x, w = _leaf(lib, [1.0, 2.0]), _leaf(lib, [3.0, 4.0])
        y = (x * w).sum()
        w.data.mul_(10)  # .data has its own counter: no error, the new values are used
        y.backward()
        return (x.grad,)

    _same_grads(program)


def test_data_setter_replaces_storage():
    p = sj.tensor([1.0, 2.0], requires_grad=True)
    p.data = sj.tensor([5.0, 6.0])
    assert p.tolist() == [5.0, 6.0] and p.requires_grad


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [sj.int64, sj.int32, sj.bool_])
def test_requires_grad_on_integer_tensor_raises_when_set(dtype):
    t = sj.tensor([1, 2, 3], dtype=dtype)
    with pytest.raises(TypeError, match="floating-point"):
        t.requires_grad = True
    assert not t.requires_grad
    tt = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="floating point"):
        tt.requires_grad = True


@pytest.mark.parametrize("program", [
    lambda lib: lib.tensor([1, 2, 3]) / lib.tensor([2, 2, 2]),
    lambda lib: lib.tensor([1, 2, 3]) * 0.5,
    lambda lib: lib.tensor([1, 2, 3]).exp(),
    lambda lib: lib.tensor([4, 9]).sqrt(),
    lambda lib: lib.tensor([1, 2]) / 3,
], ids=["int/int", "int*float", "int.exp", "int.sqrt", "int/pyint"])
@pytest.mark.parametrize("default", ["float32", "float64"])
def test_promotion_follows_the_default_dtype(program, default):
    sj.set_default_dtype(getattr(sj, default))
    torch.set_default_dtype(getattr(torch, default))
    try:
        mine, theirs = program(sj), program(torch)
    finally:
        sj.set_default_dtype(sj.float32)
        torch.set_default_dtype(torch.float32)
    assert str(mine.dtype) == str(theirs.dtype).replace("torch.", "shenjing.")
    np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6)


# ----------------------------------------------------------------------------- hooks


def test_register_hook_and_retain_grad_match_torch():
    def program(lib):
        x = _leaf(lib, [1.0, -2.0, 3.0])
        y = x * 2
        y.retain_grad()
        seen = []
        y.register_hook(lambda g: seen.append(g.tolist()))
        x.register_hook(lambda g: g * 10)  # a leaf hook may replace the gradient
        (y * y).sum().backward()
        return x.grad, y.grad, lib.tensor(seen[0])

    _same_grads(program)


def test_removed_hook_is_not_called():
    x = _leaf(sj, [1.0, 2.0])
    calls = []
    h = x.register_hook(lambda g: calls.append(1))
    h.remove()
    (x * 3).sum().backward()
    assert calls == [] and x.grad.tolist() == [3.0, 3.0]
