"""The non-differentiable Tensor methods and the `torch.*` namespaces of issue 9, against
PyTorch 2.13 where it has the same call: `import shenjing as torch` must work as `torch`."""

from __future__ import annotations

import math

import numpy as np
import pytest

import shenjing as sj

torch = pytest.importorskip("torch")

A = np.array([[1.5, -2.0, np.nan], [np.inf, 0.0, -np.inf]], dtype=np.float32)
B = np.array([[3.0, -1.0, 2.5], [-4.0, 2.0, 7.0]], dtype=np.float32)
BOOL1 = np.array([[True, False, True], [False, False, True]])
BOOL2 = np.array([[True, True, False], [False, True, True]])


def _same(ours, theirs) -> None:
    expected = theirs.numpy() if hasattr(theirs, "numpy") else np.asarray(theirs)
    got = ours.numpy()
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ["isnan", "isinf", "isfinite", "sign", "nan_to_num"])
def test_unary_elementwise_matches_torch(name):
    x = A if name != "sign" else np.nan_to_num(A)  # sign(nan): NumPy nan, torch 0 (see report)
    _same(getattr(sj, name)(sj.tensor(x)), getattr(torch, name)(torch.tensor(x)))
    _same(getattr(sj.tensor(x), name)(), getattr(torch.tensor(x), name)())


@pytest.mark.parametrize("name", ["floor_divide", "remainder", "fmod"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_division_family_matches_torch(name, dtype):
    a = np.array([[7, -7, 5], [-5, 9, -1]]).astype(dtype)
    b = np.array([[2, 2, -3], [-3, 4, 3]]).astype(dtype)
    _same(getattr(sj, name)(sj.tensor(a), sj.tensor(b)), getattr(torch, name)(
        torch.tensor(a), torch.tensor(b)))
    _same(getattr(sj.tensor(a), name)(3), getattr(torch.tensor(a), name)(3))


def test_division_family_int_by_float_gives_the_default_float():
    a = np.array([7, -7, 5])
    for name in ("remainder", "fmod"):
        _same(getattr(sj.tensor(a), name)(1.5), getattr(torch.tensor(a), name)(1.5))
        _same(getattr(sj.tensor(a), name)(sj.tensor([2.0, 2.5, -1.5])),
              getattr(torch.tensor(a), name)(torch.tensor([2.0, 2.5, -1.5])))
    _same(sj.tensor([True, False]).nan_to_num(), torch.tensor([True, False]).nan_to_num())


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
def test_logical_ops_match_torch(name):
    for x, y in ((BOOL1, BOOL2), (B, BOOL2.astype(np.float32))):
        _same(getattr(sj, name)(sj.tensor(x), sj.tensor(y)),
              getattr(torch, name)(torch.tensor(x), torch.tensor(y)))
    _same(sj.logical_not(sj.tensor(B)), torch.logical_not(torch.tensor(B)))


def test_any_all_isclose_allclose():
    x, y = B, B + np.float32(1e-6)
    _same(sj.isclose(sj.tensor(x), sj.tensor(y)), torch.isclose(torch.tensor(x),
                                                                 torch.tensor(y)))
    _same(sj.tensor(A).isclose(sj.tensor(A), equal_nan=True),
          torch.tensor(A).isclose(torch.tensor(A), equal_nan=True))
    assert sj.allclose(sj.tensor(x), sj.tensor(y)) is True
    assert sj.tensor(x).allclose(sj.tensor(x + 1)) is False
    for dim in (None, 0, 1):
        args = () if dim is None else (dim,)
        _same(sj.tensor(BOOL1).any(*args), torch.tensor(BOOL1).any(*args))
        _same(sj.tensor(BOOL1).all(*args), torch.tensor(BOOL1).all(*args))


def test_argsort_matches_torch():
    x = np.array([[3.0, 1.0, 2.0, 0.5], [-1.0, 4.0, 0.0, 2.0]], dtype=np.float32)
    for kw in ({}, {"dim": 0}, {"descending": True}):
        _same(sj.argsort(sj.tensor(x), **kw), torch.argsort(torch.tensor(x), **kw))
    values, indices = sj.tensor(x).sort(descending=True)
    assert (values.numpy() == np.sort(x)[:, ::-1]).all() and indices.dtype == np.int64
    top = sj.tensor(x).topk(2)
    _same(top.indices, torch.tensor(x).topk(2).indices)


def test_int_scans_and_triangles_keep_torch_dtypes():
    x = np.arange(1, 7).reshape(2, 3)
    _same(sj.tensor(x).cumsum(1), torch.tensor(x).cumsum(1))
    _same(sj.tensor(x).cumprod(0), torch.tensor(x).cumprod(0))
    _same(sj.tensor(BOOL1).cumsum(1), torch.tensor(BOOL1).cumsum(1))
    _same(sj.tensor(x).tril(), torch.tensor(x).tril())
    _same(sj.tensor(x).triu(1), torch.tensor(x).triu(1))


def test_new_constructors_follow_the_source_tensor():
    x = sj.tensor([[1.0, 2.0]], dtype=sj.float64)
    t = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    _same(x.new_zeros(2, 3), t.new_zeros(2, 3))
    _same(x.new_ones((2,)), t.new_ones((2,)))
    _same(x.new_full((2, 2), 7), t.new_full((2, 2), 7))
    _same(x.new_tensor([1, 2]), t.new_tensor([1, 2]))
    assert x.new_empty(3).shape == (3,) and x.new_empty(3).dtype == np.float64
    assert x.new_zeros(2, dtype=sj.int64).dtype == np.int64
    assert x.new_ones(1, requires_grad=True).requires_grad
    _same(x.type_as(sj.tensor([1])), t.type_as(torch.tensor([1])))
    _same(sj.tensor([1.0, 2.0]).view_as(sj.zeros(2, 1)), torch.tensor([1.0, 2.0]).view_as(
        torch.zeros(2, 1)))
    _same(sj.tensor([[1.0], [2.0]]).expand_as(sj.zeros(2, 3)),
          torch.tensor([[1.0], [2.0]]).expand_as(torch.zeros(2, 3)))


def test_inplace_scatter_family_matches_torch():
    idx = np.array([[0, 2, 1], [1, 0, 2]])
    src = B.copy()
    for name, args in (("scatter_", (0, idx, src)), ("scatter_add_", (0, idx, src)),
                       ("index_add_", (1, np.array([2, 0, 2]), src)),
                       ("masked_fill_", (BOOL1, -3.0))):
        ours, theirs = sj.zeros(3, 3) if name != "masked_fill_" else sj.tensor(B), (
            torch.zeros(3, 3) if name != "masked_fill_" else torch.tensor(B))
        if name.startswith("index"):
            ours, theirs = sj.zeros(2, 3), torch.zeros(2, 3)
        version = ours._version_value
        out = getattr(ours, name)(*[sj.tensor(a) if isinstance(a, np.ndarray) else a
                                    for a in args])
        getattr(theirs, name)(*[torch.tensor(a) if isinstance(a, np.ndarray) else a
                                for a in args])
        assert out is ours and ours._version_value == version + 1, name
        _same(ours, theirs)
    _same(sj.zeros(3, 3).scatter_(0, sj.tensor(idx[:1]), value=5.0),
          torch.zeros(3, 3).scatter_(0, torch.tensor(idx[:1]), value=5.0))


@pytest.mark.parametrize("name,args", [
    ("masked_fill_", (sj.tensor([True, False, True]), 0.0)),
    ("scatter_", (0, sj.tensor([2, 0]), sj.tensor([9.0, 8.0]))),
    ("scatter_add_", (0, sj.tensor([2, 2]), sj.tensor([9.0, 8.0]))),
    ("index_add_", (0, sj.tensor([1]), sj.tensor([4.0]))),
])
def test_inplace_change_of_a_saved_tensor_raises_at_backward(name, args):
    w = sj.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = w.exp()
    y = (h * h).sum()  # Mul saved h
    with sj.no_grad():
        getattr(h, name)(*args)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_inplace_in_graph_rebinds_and_gradients_flow():
    w = sj.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = w * 1
    h.masked_fill_(sj.tensor([False, True, False]), 0.0)
    h.index_add_(0, sj.tensor([0, 0]), w[:2] * 2)
    h.sum().backward()
    tw = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    th = tw * 1
    th.masked_fill_(torch.tensor([False, True, False]), 0.0)
    th.index_add_(0, torch.tensor([0, 0]), tw[:2] * 2)
    th.sum().backward()
    np.testing.assert_allclose(h.detach().numpy(), th.detach().numpy())
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy())


def test_retain_grad_and_register_hook_match_torch():
    def run(lib):
        w = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        h = w * w
        h.retain_grad()
        seen = []
        h.register_hook(lambda g: seen.append(g.clone()))
        handle = w.register_hook(lambda g: g * 10)
        (h * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        handle.remove()
        return h.grad.numpy(), seen[0].numpy(), w.grad.numpy()

    for ours, theirs in zip(run(sj), run(torch)):
        np.testing.assert_allclose(ours, theirs)


def test_size_is_a_tuple_that_prints_as_shenjing_size():
    x = sj.zeros(2, 3, 4)
    assert isinstance(x.shape, sj.Size) and isinstance(x.size(), sj.Size)
    assert x.shape == (2, 3, 4) and x.size() == torch.zeros(2, 3, 4).size()
    assert repr(x.shape) == "shenjing.Size([2, 3, 4])" and str(x.size()) == repr(x.shape)
    assert isinstance(x.shape[1:], sj.Size) and x.shape[1:] == (3, 4)
    assert x.shape[-1] == 4 and x.size(1) == 3 and x.shape.numel() == 24
    assert sj.zeros(x.shape[:2]).shape == (2, 3)


def test_dtypes_print_with_the_shenjing_prefix_in_tensors():
    x = sj.tensor([1.0], dtype=sj.float64)
    assert "dtype=shenjing.float64" in repr(x) and x.type() == "shenjing.float64"
    assert x.dtype is sj.float64 and str(sj.float32) == "shenjing.float32"  # as torch's


def test_linalg_norms_match_torch():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    cases = [((), {}), ((), {"dim": 1}), ((), {"ord": 1, "dim": 0}),
             ((), {"ord": math.inf}), ((), {"ord": "fro"}), ((), {"ord": -math.inf}),
             ((), {"ord": 1}), ((), {"dim": (0, 1), "keepdim": True})]
    for args, kw in cases:
        np.testing.assert_allclose(sj.linalg.norm(sj.tensor(x), *args, **kw).numpy(),
                                   torch.linalg.norm(torch.tensor(x), *args, **kw).numpy(),
                                   rtol=1e-5, err_msg=str(kw))
    for kw in ({"ord": 3}, {"ord": 0}, {"ord": -math.inf, "dim": 1}):
        np.testing.assert_allclose(sj.linalg.vector_norm(sj.tensor(x), **kw).numpy(),
                                   torch.linalg.vector_norm(torch.tensor(x), **kw).numpy(),
                                   rtol=1e-5)
    np.testing.assert_allclose(sj.linalg.matrix_norm(sj.tensor(x), ord=-1).numpy(),
                               torch.linalg.matrix_norm(torch.tensor(x), ord=-1).numpy())
    with pytest.raises(ValueError, match="nuclear"):
        sj.linalg.matrix_norm(sj.tensor(x), ord="nuc")
    w = sj.tensor(x, requires_grad=True)
    sj.linalg.norm(w).backward()
    np.testing.assert_allclose(w.grad.numpy(), x / np.linalg.norm(x), rtol=1e-5)


def test_namespaces_are_reachable_as_in_torch():
    assert sj.utils.data.DataLoader is sj.data.DataLoader
    assert sj.utils.data.TensorDataset is sj.data.TensorDataset
    assert callable(sj.nn.functional.relu) and callable(sj.nn.init.xavier_uniform_)
    assert callable(sj.nn.utils.clip_grad_norm_)
    assert sj.optim.lr_scheduler.StepLR is not None
    sj.backends.cudnn.benchmark = True
    sj.backends.cudnn.deterministic = True
    assert sj.backends.mps.is_available() is False and sj.backends.cudnn.benchmark
    assert sj.accelerator.is_available() is False
    assert sj.accelerator.current_accelerator() is None
    assert sj.cuda.is_available() is False
    device = sj.device("cuda" if sj.cuda.is_available() else "cpu")
    x = sj.ones(2).to(device)
    assert x.cpu() is x and x.device == "cpu" and str(device) == "cpu"


def test_cuda_raises_torchs_error_naming_shenjing():
    with pytest.raises(AssertionError, match="shenjing not compiled with CUDA enabled"):
        sj.ones(1).cuda()
    with pytest.raises(RuntimeError, match="CUDA"):
        sj.ones(1).cuda()


def test_grad_mode_spellings():
    w = sj.ones(2, requires_grad=True)
    with sj.no_grad():
        assert not (w * 2).requires_grad
    with sj.inference_mode():
        assert not (w * 2).requires_grad
    assert (w * 2).requires_grad

    @sj.inference_mode()
    def f(t):
        return t * 2

    @sj.inference_mode
    def g(t):
        return t * 2

    assert not f(w).requires_grad and not g(w).requires_grad
    with sj.inference_mode(False):
        assert (w * 2).requires_grad


def test_manual_seed_repeats_random_draws():
    sj.manual_seed(3)
    a = sj.randn(4)
    sj.manual_seed(3)
    assert np.array_equal(a.numpy(), sj.randn(4).numpy())


def test_saving_a_whole_module_refuses_with_the_state_dict_recipe(tmp_path):
    model = sj.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"model\.state_dict\(\)"):
        sj.save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    sj.save(model.state_dict(), tmp_path / "w.safetensors")
    clone = sj.nn.Linear(2, 2)
    clone.load_state_dict(sj.load(tmp_path / "w.safetensors"))
    assert np.array_equal(clone.weight.numpy(), model.weight.numpy())


@pytest.mark.parametrize("call,error", [
    (lambda: sj.mm(sj.ones(2, 3, 4), sj.ones(4, 2)), ValueError),
    (lambda: sj.bmm(sj.ones(2, 3, 4), sj.ones(3, 4, 2)), ValueError),
    (lambda: sj.ones(3, 3).scatter(0, sj.tensor([[5]]), sj.ones(1, 1)), IndexError),
    (lambda: sj.ones(3, 3).scatter(0, sj.tensor([[0.5]]), sj.ones(1, 1)), TypeError),
    (lambda: sj.ones(3).topk(4), ValueError),
    (lambda: sj.ones(3).kthvalue(0), ValueError),
    (lambda: sj.ones(3).tril(), ValueError),
    (lambda: sj.einsum("ij,jk->ik", sj.ones(2, 3)), ValueError),
    (lambda: sj.einsum("ii->i", sj.ones(2, 2)), ValueError),
    (lambda: sj.ones(3).repeat_interleave(sj.tensor([1, 2])), ValueError),
])
def test_bad_arguments_raise_clear_errors(call, error):
    with pytest.raises(error):
        call()


def test_nonzero_and_one_argument_where_match_torch():
    x = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]], dtype=np.float32)
    _same(sj.nonzero(sj.tensor(x)), torch.nonzero(torch.tensor(x)))
    _same(sj.tensor(x).argwhere(), torch.tensor(x).argwhere())
    for ours, theirs in zip(sj.where(sj.tensor(x) > 0), torch.where(torch.tensor(x) > 0)):
        _same(ours, theirs)
    ours = sj.tensor(x)[sj.tensor(x).nonzero(as_tuple=True)]
    _same(ours, torch.tensor(x)[torch.tensor(x).nonzero(as_tuple=True)])


def test_module_cuda_raises_like_tensor_cuda():
    model = sj.nn.Linear(2, 2)
    with pytest.raises(AssertionError, match="not compiled with CUDA"):
        model.cuda()
    assert model.cpu() is model and model.to(sj.device("cpu")) is model
