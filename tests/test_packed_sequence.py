"""nn.utils.rnn against torch 2.13: pad_sequence, pack/pad round trips with enforce_sorted
both ways, and RNN / LSTM / GRU over the same PackedSequence (packed outputs, final states,
input and weight gradients under random upstream gradients)."""

from __future__ import annotations

import numpy as np
import pytest
from nn_compare import load_from_torch

import shenjing as sj
from shenjing import nn
from shenjing.nn.utils import rnn as R

torch = pytest.importorskip("torch")
TR = None


def setup_module():
    global TR
    TR = torch.nn.utils.rnn


def _seqs(lengths, feat=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, feat)).astype(np.float32) for n in lengths]


def test_namespaces_reachable_as_in_torch():
    assert sj.nn.utils.rnn.pad_sequence is R.pad_sequence
    assert R.PackedSequence._fields == TR.PackedSequence._fields


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_torch_with_gradients(batch_first, side):
    arrays = _seqs([3, 5, 1], feat=2)
    xs = [sj.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.from_numpy(a).requires_grad_() for a in arrays]
    out = R.pad_sequence(xs, batch_first=batch_first, padding_value=-1.5, padding_side=side)
    tout = TR.pad_sequence(ts, batch_first=batch_first, padding_value=-1.5, padding_side=side)
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    g = np.random.default_rng(1).standard_normal(tout.shape).astype(np.float32)
    out.backward(sj.tensor(g))
    tout.backward(torch.from_numpy(g))
    for x, t in zip(xs, ts):
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce", [([5, 3, 3, 1], True), ([2, 5, 1, 4], False),
                                             ([4, 4, 2], False), ([3], True)])
def test_pack_and_pad_round_trip_match_torch(lengths, enforce, batch_first):
    arrays = _seqs(lengths, feat=2, seed=len(lengths))
    t_pad = TR.pad_sequence([torch.from_numpy(a) for a in arrays], batch_first=batch_first)
    x = sj.tensor(t_pad.numpy(), requires_grad=True)
    tx = t_pad.clone().requires_grad_()
    packed = R.pack_padded_sequence(x, sj.tensor(lengths), batch_first, enforce)
    tpacked = TR.pack_padded_sequence(tx, torch.tensor(lengths), batch_first, enforce)
    np.testing.assert_array_equal(packed.data.numpy(), tpacked.data.detach().numpy())
    np.testing.assert_array_equal(packed.batch_sizes.numpy(), tpacked.batch_sizes.numpy())
    for mine, theirs in ((packed.sorted_indices, tpacked.sorted_indices),
                         (packed.unsorted_indices, tpacked.unsorted_indices)):
        assert (mine is None) == (theirs is None)
        if mine is not None:
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    padded, lens = R.pad_packed_sequence(packed, batch_first, padding_value=9.0,
                                         total_length=6)
    tpadded, tlens = TR.pad_packed_sequence(tpacked, batch_first, padding_value=9.0,
                                            total_length=6)
    np.testing.assert_array_equal(padded.numpy(), tpadded.detach().numpy())
    np.testing.assert_array_equal(lens.numpy(), tlens.numpy())
    g = np.random.default_rng(2).standard_normal(tpadded.shape).astype(np.float32)
    padded.backward(sj.tensor(g))
    tpadded.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_pack_sequence_and_unpack():
    arrays = _seqs([2, 4, 3])
    packed = R.pack_sequence([sj.tensor(a) for a in arrays], enforce_sorted=False)
    tpacked = TR.pack_sequence([torch.from_numpy(a) for a in arrays], enforce_sorted=False)
    np.testing.assert_array_equal(packed.data.numpy(), tpacked.data.numpy())
    for mine, a in zip(R.unpack_sequence(packed), arrays):
        np.testing.assert_array_equal(mine.numpy(), a)


def test_packing_refuses_bad_lengths():
    x = sj.zeros(4, 3, 2)
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        R.pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(ValueError, match="expected 3 lengths"):
        R.pack_padded_sequence(x, [2, 1])
    with pytest.raises(RuntimeError, match="exceeds"):
        R.pack_padded_sequence(x, [5, 1, 1])
    with pytest.raises(RuntimeError, match="positive"):
        R.pack_padded_sequence(x, [3, 2, 0])


RNN_CASES = [
    ("lstm", "LSTM", dict()),
    ("gru", "GRU", dict()),
    ("rnn_tanh", "RNN", dict()),
    ("rnn_relu_2layer", "RNN", dict(nonlinearity="relu", num_layers=2)),
    ("lstm_bi_2layer", "LSTM", dict(num_layers=2, bidirectional=True)),
    ("gru_bi", "GRU", dict(bidirectional=True)),
    ("lstm_batch_first", "LSTM", dict(batch_first=True)),
]


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("name,cls,kw", RNN_CASES, ids=[c[0] for c in RNN_CASES])
def test_rnn_over_packed_sequence_matches_torch(name, cls, kw, with_hx, enforce_sorted):
    lengths = [6, 4, 4, 1] if enforce_sorted else [3, 6, 1, 4]
    n_in, H = 3, 5
    tm = getattr(torch.nn, cls)(n_in, H, **kw)
    m = getattr(nn, cls)(n_in, H, **kw)
    load_from_torch(m, tm)
    bf = kw.get("batch_first", False)
    arrays = _seqs(lengths, feat=n_in, seed=7)
    t_pad = TR.pad_sequence([torch.from_numpy(a) for a in arrays], batch_first=bf)
    x = sj.tensor(t_pad.numpy(), requires_grad=True)
    tx = t_pad.clone().requires_grad_()
    D = 2 if kw.get("bidirectional") else 1
    rng = np.random.default_rng(3)
    hx = None
    if with_hx:
        shape = (kw.get("num_layers", 1) * D, len(lengths), H)
        hx = [rng.standard_normal(shape).astype(np.float32) for _ in range(2 if cls == "LSTM"
                                                                            else 1)]
    tstates = None if hx is None else [torch.from_numpy(h).requires_grad_() for h in hx]
    states = None if hx is None else [sj.tensor(h, requires_grad=True) for h in hx]

    def arg(s):
        return None if s is None else (tuple(s) if cls == "LSTM" else s[0])

    out, h_n = m(R.pack_padded_sequence(x, lengths, bf, enforce_sorted), arg(states))
    tout, th_n = tm(TR.pack_padded_sequence(tx, lengths, bf, enforce_sorted), arg(tstates))
    assert isinstance(out, R.PackedSequence)
    np.testing.assert_array_equal(out.batch_sizes.numpy(), tout.batch_sizes.numpy())
    finals = list(h_n) if cls == "LSTM" else [h_n]
    tfinals = list(th_n) if cls == "LSTM" else [th_n]
    results = [out.data] + finals
    expected = [tout.data] + tfinals
    for k, (r, e) in enumerate(zip(results, expected)):
        np.testing.assert_allclose(r.numpy(), e.detach().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: output {k}")
    grads = [rng.standard_normal(tuple(e.shape)).astype(np.float32) for e in expected]
    for r, g in zip(results, grads):
        r.backward(sj.tensor(g), retain_graph=True)
    leaves_t = [tx] + (tstates or []) + list(tm.parameters())
    tgrads = torch.autograd.grad(expected, leaves_t, [torch.from_numpy(g) for g in grads])
    leaves = [x] + (states or []) + [dict(m.named_parameters())[n]
                                     for n, _ in tm.named_parameters()]
    for k, (leaf, tg) in enumerate(zip(leaves, tgrads)):
        np.testing.assert_allclose(leaf.grad.numpy(), tg.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=f"{name}: gradient {k}")


def test_packed_output_pads_back_to_zeros_past_each_length():
    m = nn.GRU(2, 3)
    x = sj.randn(5, 3, 2)
    out, _ = m(R.pack_padded_sequence(x, [5, 2, 4], enforce_sorted=False))
    padded, lens = R.pad_packed_sequence(out)
    assert lens.tolist() == [5, 2, 4]
    assert np.all(padded.numpy()[2:, 1] == 0) and np.all(padded.numpy()[4:, 2] == 0)
    assert np.all(padded.numpy()[:2, 1] != 0)
