"""nn.EmbeddingBag and F.embedding_bag against torch 2.13: outputs, weight and
per-sample-weight gradients under a random upstream gradient, float64 gradcheck, and the
errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
import shenjing.nn.functional as F
from shenjing.autograd import gradcheck

torch = pytest.importorskip("torch")

NUM, DIM = 11, 4
# bags: [0, 4) [4, 4) empty [4, 7) [7, 10); index 3 repeats inside the first bag
FLAT = np.array([3, 1, 3, 7, 0, 5, 10, 2, 2, 9])
OFFSETS = np.array([0, 4, 4, 7])


def _weight(dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((NUM, DIM)).astype(dtype)


def _both(mode: str, text: np.ndarray, offsets: np.ndarray | None, psw: np.ndarray | None = None,
          **kw) -> None:
    """Forward + backward through shenjing and torch on the same data; compare."""
    weight = _weight()
    ours_w = sj.tensor(weight, requires_grad=True)
    ref_w = torch.tensor(weight, requires_grad=True)
    ours_psw = None if psw is None else sj.tensor(psw, requires_grad=True)
    ref_psw = None if psw is None else torch.tensor(psw, requires_grad=True)
    ours = F.embedding_bag(sj.tensor(text), ours_w, None if offsets is None else
                           sj.tensor(offsets), mode=mode, per_sample_weights=ours_psw, **kw)
    ref = torch.nn.functional.embedding_bag(
        torch.tensor(text), ref_w, None if offsets is None else torch.tensor(offsets),
        mode=mode, per_sample_weights=ref_psw, **kw)
    upstream = np.random.default_rng(2).standard_normal(tuple(ref.shape))
    ours.backward(sj.tensor(upstream))
    ref.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_w.grad.numpy(), ref_w.grad.numpy(), rtol=1e-12, atol=1e-12)
    if psw is not None:
        np.testing.assert_allclose(ours_psw.grad.numpy(), ref_psw.grad.numpy(), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_offsets_match_torch(mode, padding_idx):
    _both(mode, FLAT, OFFSETS, padding_idx=padding_idx)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_include_last_offset_matches_torch(mode):
    _both(mode, FLAT, np.append(OFFSETS, FLAT.size), include_last_offset=True)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_fixed_length_bags_match_torch(mode):
    _both(mode, FLAT[:9].reshape(3, 3), None, padding_idx=3)


def test_per_sample_weights_match_torch():
    psw = np.random.default_rng(3).standard_normal(FLAT.size)
    _both("sum", FLAT, OFFSETS, psw=psw)
    _both("sum", FLAT, OFFSETS, psw=psw, padding_idx=5)
    _both("sum", FLAT[:8].reshape(2, 4), None, psw=psw[:8].reshape(2, 4))


def test_all_bags_empty_give_zeros():
    out = F.embedding_bag(sj.tensor(np.zeros(0, np.int64)), sj.tensor(_weight()),
                          sj.tensor(np.array([0, 0])), mode="max")
    assert out.shape == (2, DIM) and not out.numpy().any()


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_gradcheck_float64(mode):
    weight = sj.tensor(_weight(), requires_grad=True)
    text, offsets = sj.tensor(FLAT), sj.tensor(OFFSETS)
    assert gradcheck(lambda w: F.embedding_bag(text, w, offsets, mode=mode, padding_idx=0),
                     (weight,))


def test_gradcheck_per_sample_weights():
    weight = sj.tensor(_weight(), requires_grad=True)
    psw = sj.tensor(np.random.default_rng(4).standard_normal(FLAT.size), requires_grad=True)
    text, offsets = sj.tensor(FLAT), sj.tensor(OFFSETS)
    assert gradcheck(lambda w, p: F.embedding_bag(text, w, offsets, mode="sum",
                                                  per_sample_weights=p), (weight, psw))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_module_matches_torch_module(mode):
    ours = sj.nn.EmbeddingBag(NUM, DIM, mode=mode, padding_idx=0)
    ref = torch.nn.EmbeddingBag(NUM, DIM, mode=mode, padding_idx=0)
    assert not ours.weight.numpy()[0].any()  # the padding row starts at zero, as torch's
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ours.weight.numpy()))
    out = ours(sj.tensor(FLAT), sj.tensor(OFFSETS))
    ref_out = ref(torch.tensor(FLAT), torch.tensor(OFFSETS))
    upstream = np.random.default_rng(5).standard_normal(tuple(ref_out.shape)).astype(np.float32)
    (out * sj.tensor(upstream)).sum().backward()
    (ref_out * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(out.numpy(), ref_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-5,
                               atol=1e-6)
    assert out.dtype == sj.float32 and ours.weight.shape == (NUM, DIM)


def test_from_pretrained_freezes_and_keeps_the_table():
    bag = sj.nn.EmbeddingBag.from_pretrained(sj.tensor(_weight(np.float32)), mode="sum")
    assert not bag.weight.requires_grad
    out = bag(sj.tensor(np.array([[1, 2]])))
    np.testing.assert_allclose(out.numpy()[0], _weight(np.float32)[[1, 2]].sum(0), rtol=1e-6)


@pytest.mark.parametrize("call, error, words", [
    (lambda w: F.embedding_bag(sj.tensor(FLAT), w), ValueError, "offsets"),
    (lambda w: F.embedding_bag(sj.tensor(FLAT[:4].reshape(2, 2)), w, sj.tensor([0, 1])),
     ValueError, "offsets must be None"),
    (lambda w: F.embedding_bag(sj.tensor(FLAT), w, sj.tensor([1, 4])), ValueError,
     "start at 0"),
    (lambda w: F.embedding_bag(sj.tensor(FLAT), w, sj.tensor([0, 5, 3])), ValueError,
     "non-decreasing"),
    (lambda w: F.embedding_bag(sj.tensor(FLAT), w, sj.tensor([0, 4]), mode="min"), ValueError,
     "mode"),
    (lambda w: F.embedding_bag(sj.tensor(FLAT), w, sj.tensor([0, 4]), mode="mean",
                               per_sample_weights=sj.ones(FLAT.size)), ValueError,
     "per_sample_weights"),
    (lambda w: F.embedding_bag(sj.tensor(FLAT), w, sj.tensor([0, 4]),
                               include_last_offset=True), ValueError, "last offset"),
    (lambda w: F.embedding_bag(sj.tensor([0, 11]), w, sj.tensor([0])), IndexError,
     "out of range"),
    (lambda w: F.embedding_bag(sj.tensor([0.0, 1.0]), w, sj.tensor([0])), TypeError,
     "integer"),
])
def test_bad_input_is_refused_with_a_clear_error(call, error, words):
    with pytest.raises(error, match=words):
        call(sj.tensor(_weight()))


@pytest.mark.parametrize("changed", ["weight", "per_sample_weights"])
def test_in_place_change_after_forward_never_gives_a_wrong_gradient(changed):
    """torch raises here (it saved the tensor itself); shenjing's bag saves the gathered rows
    and weights it used, so an in-place change after forward leaves the gradient of the
    computation that ran: either way no silently wrong gradient."""
    def run(change: bool):
        weight = sj.tensor(_weight(), requires_grad=True)
        psw = sj.tensor(np.linspace(0.5, 1.5, FLAT.size), requires_grad=True)
        out = F.embedding_bag(sj.tensor(FLAT), weight, sj.tensor(OFFSETS), mode="sum",
                              per_sample_weights=psw)
        if change:
            with sj.no_grad():
                (weight if changed == "weight" else psw).mul_(2)
        try:
            out.backward(sj.tensor(np.random.default_rng(3).standard_normal(out.shape)))
        except RuntimeError as err:
            assert "modified by an inplace operation" in str(err)
            return None
        return weight.grad.numpy(), psw.grad.numpy()

    clean, changed_run = run(False), run(True)
    if changed_run is not None:
        for a, b in zip(clean, changed_run):
            np.testing.assert_array_equal(a, b)
