"""nn.utils.prune against torch.nn.utils.prune on the same weights, and prune_channels."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import shenjing as sj
from shenjing import nn, optim
from shenjing.nn import functional as F
from shenjing.nn.utils import prune

torch = pytest.importorskip("torch")
tprune = pytest.importorskip("torch.nn.utils.prune")


def _pair_linear(n_in=12, n_out=7):
    ours = nn.Linear(n_in, n_out)
    theirs = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().copy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.numpy().copy()))
    return ours, theirs


def _pair_conv(c_in=3, c_out=6, k=3):
    ours = nn.Conv2d(c_in, c_out, k)
    theirs = torch.nn.Conv2d(c_in, c_out, k)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().copy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.numpy().copy()))
    return ours, theirs


def _same_state(ours, theirs):
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key in ours_sd:
        np.testing.assert_array_equal(ours_sd[key].numpy(), theirs_sd[key].numpy(), err_msg=key)


def test_l1_unstructured_names_masks_and_outputs_match_torch():
    ours, theirs = _pair_conv()
    prune.l1_unstructured(ours, "weight", amount=0.4)
    tprune.l1_unstructured(theirs, "weight", amount=0.4)
    assert [n for n, _ in ours.named_parameters()] == ["bias", "weight_orig"]
    assert [n for n, _ in ours.named_buffers()] == ["weight_mask"]
    _same_state(ours, theirs)
    assert int((ours.weight_mask.numpy() == 0).sum()) == round(0.4 * ours.weight_orig.numel())
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(ours(sj.from_numpy(x)).numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    assert prune.is_pruned(ours) and prune.is_pruned(nn.Sequential(ours))
    hooks = list(ours._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0], prune.L1Unstructured)


@pytest.mark.parametrize("amount", [3, 0.25, 0.0, 1.0])
def test_l1_unstructured_counts_and_fractions(amount):
    ours, theirs = _pair_linear()
    prune.l1_unstructured(ours, "bias", amount=amount)
    tprune.l1_unstructured(theirs, "bias", amount=amount)
    _same_state(ours, theirs)


def test_stacked_pruning_prunes_only_live_entries_as_torch():
    ours, theirs = _pair_conv(4, 8)
    steps = [("l1_unstructured", dict(amount=0.3)), ("l1_unstructured", dict(amount=0.3)),
             ("ln_structured", dict(amount=0.5, n=2, dim=0)),
             ("ln_structured", dict(amount=1, n=1, dim=1)),
             ("l1_unstructured", dict(amount=5))]
    for fn, kwargs in steps:
        getattr(prune, fn)(ours, "weight", **kwargs)
        getattr(tprune, fn)(theirs, "weight", **kwargs)
        _same_state(ours, theirs)


@pytest.mark.parametrize("n,dim", [(2, 0), (1, 1), (float("inf"), 0), (3, -1), (-np.inf, 0)])
def test_ln_structured_matches_torch(n, dim):
    ours, theirs = _pair_conv(4, 6)
    prune.ln_structured(ours, "weight", amount=0.5, n=n, dim=dim)
    tprune.ln_structured(theirs, "weight", amount=0.5, n=n, dim=dim)
    _same_state(ours, theirs)


@pytest.mark.parametrize("dim", [0, -1])
def test_ln_structured_frobenius_on_linear_matches_torch(dim):
    ours, theirs = _pair_linear(5, 4)  # 0.5 of 5 columns rounds to 2, as Python's round
    prune.ln_structured(ours, "weight", amount=0.5, n="fro", dim=dim)
    tprune.ln_structured(theirs, "weight", amount=0.5, n="fro", dim=dim)
    _same_state(ours, theirs)


def test_global_unstructured_matches_torch_and_prunes_across_layers():
    (c1, t1), (c2, t2), (fc, tfc) = _pair_conv(1, 4), _pair_conv(4, 8), _pair_linear(8, 10)
    with sj.no_grad():
        fc.weight.mul_(0.01)  # a layer of small weights loses most of them
    with torch.no_grad():
        tfc.weight.mul_(0.01)
    ours = [(c1, "weight"), (c2, "weight"), (fc, "weight")]
    theirs = [(t1, "weight"), (t2, "weight"), (tfc, "weight")]
    prune.global_unstructured(ours, pruning_method=prune.L1Unstructured, amount=0.6)
    tprune.global_unstructured(theirs, pruning_method=tprune.L1Unstructured, amount=0.6)
    for a, b in zip((c1, c2, fc), (t1, t2, tfc)):
        _same_state(a, b)
    assert (fc.weight_mask.numpy() == 0).mean() > 0.95
    # a second global round stacks on the first
    prune.global_unstructured(ours, pruning_method=prune.L1Unstructured, amount=50)
    tprune.global_unstructured(theirs, pruning_method=tprune.L1Unstructured, amount=50)
    for a, b in zip((c1, c2, fc), (t1, t2, tfc)):
        _same_state(a, b)


def test_gradient_reaches_orig_masked_as_torch():
    ours, theirs = _pair_linear()
    prune.l1_unstructured(ours, "weight", amount=0.5)
    tprune.l1_unstructured(theirs, "weight", amount=0.5)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 12)).astype(np.float32)
    g = rng.standard_normal((5, 7)).astype(np.float32)
    ours(sj.from_numpy(x)).backward(sj.from_numpy(g))
    theirs(torch.from_numpy(x)).backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours.weight_orig.grad.numpy(), theirs.weight_orig.grad.numpy(),
                               atol=1e-5)
    assert np.all(ours.weight_orig.grad.numpy()[ours.weight_mask.numpy() == 0] == 0)


def test_fine_tuning_keeps_pruned_weights_zero():
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    prune.l1_unstructured(model[0], "weight", amount=0.7)
    mask = model[0].weight_mask.numpy().copy()
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    x, y = sj.randn(32, 6), sj.randint(0, 3, (32,))
    for _ in range(5):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model(x)
    assert np.all(model[0].weight.numpy()[mask == 0] == 0)
    assert np.any(model[0].weight.numpy()[mask == 1] != 0)


def test_remove_makes_pruning_permanent_as_torch():
    ours, theirs = _pair_conv()
    for fn, kwargs in [("l1_unstructured", dict(amount=0.3)),
                       ("ln_structured", dict(amount=2, n=2, dim=0))]:
        getattr(prune, fn)(ours, "weight", **kwargs)
        getattr(tprune, fn)(theirs, "weight", **kwargs)
    prune.remove(ours, "weight")
    tprune.remove(theirs, "weight")
    _same_state(ours, theirs)
    assert isinstance(ours.weight, nn.Parameter) and not prune.is_pruned(ours)
    assert not ours._forward_pre_hooks and not theirs._forward_pre_hooks
    x = sj.randn(1, 3, 6, 6)
    np.testing.assert_allclose(ours(x).numpy(), theirs(torch.from_numpy(x.numpy())).detach()
                               .numpy(), atol=1e-5)


def test_custom_from_mask_and_identity():
    ours, theirs = _pair_linear(4, 3)
    mask = np.array([[1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 1, 0]], dtype=np.float32)
    prune.custom_from_mask(ours, "weight", mask)
    tprune.custom_from_mask(theirs, "weight", torch.from_numpy(mask))
    prune.identity(ours, "bias")
    tprune.identity(theirs, "bias")
    _same_state(ours, theirs)


def test_random_unstructured_counts_live_entries_and_is_seeded():
    def pruned(seed):
        sj.manual_seed(seed)
        m = nn.Linear(10, 10)
        sj.manual_seed(seed + 1)
        prune.random_unstructured(m, "weight", amount=0.5)
        prune.random_unstructured(m, "weight", amount=0.5)
        return m.weight_mask.numpy()

    mask = pruned(3)
    assert int(mask.sum()) == 25  # half of the 50 left after the first round
    np.testing.assert_array_equal(mask, pruned(3))
    assert not np.array_equal(mask, pruned(4))
    m = nn.Conv2d(2, 8, 3)
    prune.random_structured(m, "weight", amount=3, dim=0)
    alive = m.weight_mask.numpy().reshape(8, -1)
    assert sorted(set(alive.min(1))) == [0.0, 1.0] and int(alive.max(1).sum()) == 5
    assert np.all(alive.min(1) == alive.max(1))  # whole filters


def test_pruned_state_dict_round_trips(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    prune.ln_structured(model[3], "weight", amount=0.5, n=1, dim=0)
    sj.save(model.state_dict(), tmp_path / "m.safetensors")
    other = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    prune.identity(other[0], "weight")
    prune.identity(other[3], "weight")
    other.load_state_dict(sj.load(tmp_path / "m.safetensors"))
    x = sj.randn(2, 1, 8, 8)
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())


def test_bad_arguments_raise_at_the_call():
    m = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="amount"):
        prune.l1_unstructured(m, "weight", amount=1.5)
    with pytest.raises(ValueError, match="amount"):
        prune.l1_unstructured(m, "weight", amount=9)
    with pytest.raises(TypeError, match="amount"):
        prune.l1_unstructured(m, "weight", amount="half")
    with pytest.raises(ValueError, match="has no parameter 'kernel'"):
        prune.l1_unstructured(m, "kernel", amount=0.5)
    with pytest.raises(ValueError, match="pruned before"):
        prune.remove(m, "weight")
    with pytest.raises(IndexError, match="dim"):
        prune.ln_structured(m, "weight", amount=1, n=2, dim=3)
    with pytest.raises(ValueError, match="importance_scores"):
        prune.l1_unstructured(m, "weight", amount=1, importance_scores=np.ones(3))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]  # nothing half-done
    prune.l1_unstructured(m, "weight", amount=2)
    with pytest.raises(ValueError, match="amount"):
        prune.l1_unstructured(m, "weight", amount=7)  # only 6 entries are still alive
    assert len(m._forward_pre_hooks) == 1 and int(m.weight_mask.numpy().sum()) == 6
    prune.l1_unstructured(m, "weight", amount=1)
    assert len(m._forward_pre_hooks) == 1 and int(m.weight_mask.numpy().sum()) == 5
    assert len(m._forward_pre_hooks[next(iter(m._forward_pre_hooks))]) == 2  # a container
    with pytest.raises(TypeError, match="unstructured"):
        prune.global_unstructured([(m, "weight")], prune.LnStructured, amount=1, n=2)


# ---------------------------------------------------------------------------- prune_channels
def _bn_model():
    model = nn.Sequential(
        nn.Conv2d(2, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 2 * 2, 10), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(10, 3))
    with sj.no_grad():
        bn = model[1]
        bn.running_mean.copy_(sj.randn(8) * 0.1)
        bn.running_var.copy_(sj.rand(8) + 0.5)
        bn.weight.copy_(sj.randn(8))
        bn.bias.copy_(sj.randn(8))
    return model.eval()


def _keep(weight: np.ndarray, n_keep: int) -> np.ndarray:
    norms = np.linalg.norm(weight.reshape(weight.shape[0], -1), axis=1)
    return np.sort(np.argsort(-norms)[:n_keep])


def test_prune_channels_equals_zeroing_the_next_layers_inputs():
    model = _bn_model()
    small = prune_channels_checked(model, 0.5)
    assert small[0].weight.shape == (4, 2, 3, 3) and small[1].num_features == 4
    assert small[4].weight.shape == (3, 4, 3, 3) and small[7].weight.shape == (5, 12)
    assert small[10].weight.shape == (3, 5)
    # reference: the original model with the removed channels cut off at the next layer
    ref = copy.deepcopy(model)
    # each layer ranks its filters on the weights left after its inputs were pruned
    k0 = _keep(model[0].weight.numpy(), 4)
    k4 = _keep(model[4].weight.numpy()[:, k0], 3)
    cols4 = (k4[:, None] * 4 + np.arange(4)).reshape(-1)
    k7 = _keep(model[7].weight.numpy()[:, cols4], 5)
    with sj.no_grad():
        for i, keep, block in ((4, k0, 1), (7, k4, 4), (10, k7, 1)):
            w = ref[i].weight.numpy().copy()
            cut = np.setdiff1d(np.arange(w.shape[1] // block), keep)
            cols = (cut[:, None] * block + np.arange(block)).reshape(-1)
            w[:, cols] = 0
            ref[i].weight.copy_(sj.from_numpy(w))
    x = sj.randn(5, 2, 10, 10)
    with sj.no_grad():
        np.testing.assert_allclose(small(x).numpy(), ref(x).numpy(), atol=1e-5)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def prune_channels_checked(model, amount):
    before = copy.deepcopy(model.state_dict())
    small = prune.prune_channels(model, amount)
    for key, value in model.state_dict().items():  # the original is untouched
        np.testing.assert_array_equal(value.numpy(), before[key].numpy())
    return small


def test_prune_channels_trains_and_handles_masks():
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16, 4))
    prune.ln_structured(model[0], "weight", amount=0.5, n=2, dim=0)
    small = prune.prune_channels(model, 0.5)
    assert not prune.is_pruned(small) and prune.is_pruned(model)
    assert small[0].weight.shape == (3, 1, 3, 3)
    # the channels the mask removed are exactly the ones dropped
    kept = model[0].weight_mask.numpy().reshape(6, -1).max(1) == 1
    np.testing.assert_array_equal(small[0].weight.numpy(), model[0].weight_orig.numpy()[kept])
    opt = optim.Adam(small.parameters(), lr=1e-2)
    x, y = sj.randn(8, 1, 6, 6), sj.randint(0, 4, (8,))
    loss = F.cross_entropy(small(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert small[3].weight.grad.shape == (4, 48)


def test_prune_channels_stops_at_layers_it_cannot_follow():
    model = nn.Sequential(nn.Linear(4, 8), nn.Softmax(dim=1), nn.Linear(8, 2))
    small = prune.prune_channels(model, 0.5)
    assert small[0].weight.shape == (8, 4)  # softmax mixes channels: left alone
    with pytest.raises(TypeError, match="Sequential"):
        prune.prune_channels(nn.Linear(3, 3), 0.5)
    with pytest.raises(ValueError, match="amount"):
        prune.prune_channels(model, 1.0)


def test_prune_channels_linear_with_batchnorm1d():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(),
                          nn.Linear(8, 3))
    with sj.no_grad():
        model[2].running_mean.copy_(sj.randn(8))
        model[2].running_var.copy_(sj.rand(8) + 0.5)
        model[2].bias.copy_(sj.randn(8))
    model.eval()
    small = prune.prune_channels(model, 0.25)
    keep = _keep(model[1].weight.numpy(), 6)
    np.testing.assert_array_equal(small[2].running_mean.numpy(),
                                  model[2].running_mean.numpy()[keep])
    assert small[1].weight.shape == (6, 6) and small[4].weight.shape == (3, 6)
    ref = copy.deepcopy(model)
    with sj.no_grad():
        w = ref[4].weight.numpy().copy()
        w[:, np.setdiff1d(np.arange(8), keep)] = 0
        ref[4].weight.copy_(sj.from_numpy(w))
    x = sj.randn(4, 2, 3)
    with sj.no_grad():
        np.testing.assert_allclose(small(x).numpy(), ref(x).numpy(), atol=1e-5)


def test_importance_scores_choose_the_pruned_entries_as_torch():
    (c1, t1), (fc, tfc) = _pair_conv(1, 4), _pair_linear(8, 6)
    rng = np.random.default_rng(7)
    s1 = rng.random(c1.weight.shape).astype(np.float32)
    s2 = rng.random(fc.weight.shape).astype(np.float32)
    prune.l1_unstructured(c1, "weight", amount=10, importance_scores=sj.from_numpy(s1))
    tprune.l1_unstructured(t1, "weight", amount=10, importance_scores=torch.from_numpy(s1))
    _same_state(c1, t1)
    prune.global_unstructured([(c1, "bias"), (fc, "weight")], prune.L1Unstructured,
                              importance_scores={(fc, "weight"): s2}, amount=0.5)
    tprune.global_unstructured([(t1, "bias"), (tfc, "weight")], tprune.L1Unstructured,
                               importance_scores={(tfc, "weight"): torch.from_numpy(s2)},
                               amount=0.5)
    _same_state(c1, t1)
    _same_state(fc, tfc)
