"""The fused kernels of issue 12 against their unfused definitions and PyTorch 2.13.

* `scatter_add_rows` (the Embedding gradient, scattered in rounds) equals `np.add.at` for
  heavy repeats, no repeats, empty input, int32 indices and float64.
* The Embedding gradient (with and without padding_idx) equals torch's under a random
  upstream gradient; float64 gradcheck.
* `dropout_keep` keeps a 1 - p fraction, is reproducible from the generator's state, and
  Dropout / attention dropout apply exactly `x * keep / (1 - p)` forward and backward
  (attention checked against torch's unfused softmax(q kᵀ s) · mask @ v with the same mask,
  outputs and q/k/v gradients); float64 gradchecks with a fixed mask.
"""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing.autograd import gradcheck
from shenjing.ops.attention import Attention
from shenjing.ops.nn_ops import Dropout, dropout_keep, scatter_add_rows


def _reference_scatter(idx, rows, n):
    out = np.zeros((n, rows.shape[1]), dtype=rows.dtype)
    np.add.at(out, idx, rows)
    return out


@pytest.mark.parametrize("max_rounds", [1, 8, 10**9])  # the sorted tail after 1 / 8 / no rounds
@pytest.mark.parametrize("case", ["heavy_repeats", "no_repeats", "sparse", "int32", "float64",
                                  "padded"])
def test_scatter_add_rows_equals_add_at(case, max_rounds):
    rng = np.random.default_rng(1)
    n, d = 50, 7
    dtype = np.float64 if case == "float64" else np.float32
    if case == "no_repeats":
        idx = rng.permutation(n)[:30]
    elif case == "sparse":
        idx = rng.integers(0, 5000, 400)
        n = 5000
    elif case == "padded":  # a padded text batch: id 0 hundreds of times among rare ids
        idx = np.where(rng.random(600) < 0.7, 0, rng.integers(1, n, 600))
    else:
        idx = rng.integers(0, 6, 300)  # up to ~80 repeats of one row: many rounds
    if case == "int32":
        idx = idx.astype(np.int32)
    rows = rng.standard_normal((idx.size, d)).astype(dtype)
    got = scatter_add_rows(idx, rows, n, max_rounds=max_rounds)
    assert got.dtype == dtype and got.shape == (n, d)
    np.testing.assert_allclose(got, _reference_scatter(idx, rows, n), rtol=1e-5, atol=1e-5)


def test_scatter_add_rows_empty():
    got = scatter_add_rows(np.zeros(0, np.int64), np.zeros((0, 3), np.float32), 4)
    assert got.shape == (4, 3) and not got.any()


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_gradient_matches_torch(padding_idx):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((40, 5)).astype(np.float32)
    idx = rng.integers(0, 40, (16, 30))  # 480 lookups into 40 rows: many repeats
    upstream = rng.standard_normal((16, 30, 5)).astype(np.float32)
    w = sj.tensor(weight, requires_grad=True)
    out = sj.nn.functional.embedding(sj.from_numpy(idx), w, padding_idx=padding_idx)
    out.backward(sj.from_numpy(upstream))
    tw = torch.tensor(weight, requires_grad=True)
    tout = torch.nn.functional.embedding(torch.from_numpy(idx), tw, padding_idx=padding_idx)
    tout.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy())
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_embedding_gradcheck_float64():
    rng = np.random.default_rng(3)
    w = sj.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    idx = sj.from_numpy(rng.integers(0, 6, (4, 5)))
    assert gradcheck(lambda w: sj.nn.functional.embedding(idx, w), (w,))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keep_fraction_and_reproducibility(p):
    n = 1_000_001  # odd: the last 32-bit word of the raw stream is cut off
    keep = dropout_keep(np.random.default_rng(4), (n,), p)
    assert keep.dtype == bool and keep.shape == (n,)
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(keep.mean() - (1 - p)) < 5 * sigma
    again = dropout_keep(np.random.default_rng(4), (n,), p)
    np.testing.assert_array_equal(keep, again)
    other = dropout_keep(np.random.default_rng(5), (n,), p)
    assert (keep != other).any()


def test_dropout_keep_edges():
    assert dropout_keep(np.random.default_rng(0), (3, 4), 0.0).all()
    assert not dropout_keep(np.random.default_rng(0), (3, 4), 1.0).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_applies_its_mask_forward_and_backward(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 33)).astype(dtype)
    upstream = rng.standard_normal((8, 33)).astype(dtype)
    p = 0.3
    keep = dropout_keep(np.random.default_rng(7), x.shape, p)
    xt = sj.tensor(x, requires_grad=True)
    out = Dropout.apply(xt, p=p, rng=np.random.default_rng(7))
    out.backward(sj.from_numpy(upstream))
    assert out.dtype == dtype and xt.grad.dtype == dtype
    scale = dtype(1.0 / (1.0 - p))
    np.testing.assert_array_equal(out.numpy(), x * keep * scale)
    np.testing.assert_array_equal(xt.grad.numpy(), upstream * keep * scale)


def test_dropout_channel_mask_and_gradcheck():
    rng = np.random.default_rng(8)
    x = sj.tensor(rng.standard_normal((4, 6, 5)), requires_grad=True)
    out = Dropout.apply(x, p=0.5, rng=np.random.default_rng(9), mask_shape=(4, 6, 1))
    zeroed = (out.numpy() == 0).all(axis=2)
    assert zeroed.any() and (~zeroed).any()  # whole channels dropped, others kept
    assert gradcheck(lambda x: Dropout.apply(x, p=0.5, rng=np.random.default_rng(9)), (x,))


def _qkv(rng, dtype):
    return [rng.standard_normal((2, 3, 7, 4)).astype(dtype) for _ in range(3)]


def test_attention_dropout_matches_torch_with_the_same_mask():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    q, k, v = _qkv(rng, np.float32)
    upstream = rng.standard_normal((2, 3, 7, 4)).astype(np.float32)
    p, scale = 0.25, 0.5
    tensors = [sj.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = Attention.apply(*tensors, scale=scale, dropout_p=p, rng=np.random.default_rng(11))
    out.backward(sj.from_numpy(upstream))
    keep = dropout_keep(np.random.default_rng(11), (2, 3, 7, 7), p)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    weights = torch.softmax(tq @ tk.transpose(-1, -2) * scale, dim=-1)
    tout = (weights * torch.from_numpy(keep) / (1 - p)) @ tv
    tout.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(tensors, (tq, tk, tv)):
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-4,
                                   atol=1e-5)


def test_attention_dropout_gradcheck_float64():
    rng = np.random.default_rng(12)
    tensors = [sj.tensor(a, requires_grad=True) for a in _qkv(rng, np.float64)]

    def attend(q, k, v):
        return Attention.apply(q, k, v, scale=0.5, dropout_p=0.3, rng=np.random.default_rng(13))

    assert gradcheck(attend, tensors)
