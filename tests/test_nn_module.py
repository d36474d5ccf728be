"""Module behaviour against torch.nn for equivalent models: registration, parameter and
state_dict names and order, loading (strict errors naming keys and shapes), train/eval,
freezing, dtype conversion, lazy layers, containers and repr; plus shenjing.nn.utils
(gradient clipping and parameter vectors) against torch.nn.utils."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from test_nn_layers import load_from_torch, randn

import shenjing as sj
import shenjing.nn as nn
import shenjing.nn.functional as F
from shenjing.nn import utils


def _torch():
    return pytest.importorskip("torch")


class Net:
    """The same architecture written against either library's nn namespace."""

    @staticmethod
    def build(lib_nn):
        class Model(lib_nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = lib_nn.Embedding(20, 6, padding_idx=0)
                self.body = lib_nn.Sequential(
                    lib_nn.Linear(6, 8), lib_nn.BatchNorm1d(8), lib_nn.ReLU(),
                    lib_nn.Dropout(0.5), lib_nn.Linear(8, 8), lib_nn.LayerNorm(8))
                self.heads = lib_nn.ModuleList([lib_nn.Linear(8, 3), lib_nn.Linear(8, 2)])
                self.extra = lib_nn.ModuleDict({"proj": lib_nn.Linear(5, 5, bias=False)})

            def forward(self, idx):
                h = self.body(self.embed(idx).mean(1))
                return self.heads[0](h), self.heads[1](h)

        return Model()


def test_parameter_and_state_dict_names_match_torch():
    torch = _torch()
    m, tm = Net.build(nn), Net.build(torch.nn)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in tm.parameters()]
    assert list(m.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert [n for n, _ in m.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [n for n, _ in m.named_children()] == [n for n, _ in tm.named_children()]
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in tm.parameters())


def test_loading_torch_weights_gives_torch_outputs():
    torch = _torch()
    m, tm = Net.build(nn).eval(), Net.build(torch.nn).eval()
    m.load_state_dict(tm.state_dict())  # torch tensors load directly
    idx = np.random.default_rng(0).integers(0, 20, (4, 5))
    for ours, theirs in zip(m(sj.tensor(idx)), tm(torch.from_numpy(idx))):
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_state_dict_shares_memory_and_round_trips():
    m = Net.build(nn)
    sd = m.state_dict()
    assert not any(t.requires_grad for t in sd.values())
    sd["heads.0.bias"].numpy()[...] = 7.0
    assert (m.heads[0].bias.numpy() == 7.0).all()
    copy = Net.build(nn)
    copy.load_state_dict({k: v.numpy().copy() for k, v in sd.items()})
    for k, v in copy.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy())


def test_load_state_dict_strict_errors_name_keys_and_shapes():
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    sd = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    missing = dict(sd)
    del missing["2.bias"]
    with pytest.raises(KeyError, match=r"missing keys \['2.bias'\]"):
        m.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected keys \['head.weight'\]"):
        m.load_state_dict({**sd, "head.weight": np.zeros(2)})
    result = m.load_state_dict({**missing, "head.weight": np.zeros(2)}, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["head.weight"]
    with pytest.raises(ValueError) as e:
        m.load_state_dict({**sd, "0.weight": np.zeros((4, 5))})
    assert "'0.weight'" in str(e.value) and "(4, 5)" in str(e.value) and "(4, 3)" in str(e.value)


def test_train_eval_propagates_and_switches_dropout():
    m = Net.build(nn)
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    x = sj.randn(4, 8)
    assert m.body[3](x) is x  # Dropout in eval
    m.train()
    assert all(mod.training for mod in m.modules())
    m.body.eval()
    assert m.training and not m.body[1].training and m.heads[0].training


def test_requires_grad_false_freezes_for_fine_tuning():
    sj.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    m[0].requires_grad_(False)
    loss = F.cross_entropy(m(sj.randn(5, 4)), sj.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    assert m[0].weight.grad is None and m[0].bias.grad is None
    assert m[2].weight.grad is not None and m[2].bias.grad is not None
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_to_float64_converts_parameters_and_float_buffers():
    m = Net.build(nn)
    assert m.to(sj.float64) is m
    for name, t in list(m.named_parameters()) + list(m.named_buffers()):
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float64
        assert t.dtype == expected, name
    out = m(sj.tensor(np.random.default_rng(0).integers(0, 20, (4, 5))))
    assert out[0].dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())


def test_lazy_linear_in_a_model_is_built_on_first_call_and_loadable():
    sj.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(None, 10), nn.ReLU(), nn.Linear(None, 3))
    assert list(m.parameters()) == []
    y = m(sj.randn(2, 3, 4))
    assert y.shape == (2, 3)
    assert [tuple(p.shape) for p in m.parameters()] == [(10, 12), (10,), (3, 10), (3,)]
    fresh = nn.Sequential(nn.Flatten(), nn.Linear(None, 10), nn.ReLU(), nn.Linear(None, 3))
    fresh.load_state_dict(m.state_dict())
    x = sj.randn(2, 3, 4)
    np.testing.assert_array_equal(fresh(x).numpy(), m(x).numpy())


def test_repr_matches_torch():
    torch = _torch()

    def build(n):
        return n.Sequential(OrderedDict([
            ("features", n.Sequential(n.Linear(6, 8), n.BatchNorm1d(8), n.ReLU(inplace=True),
                                      n.Dropout(0.25))),
            ("norm", n.LayerNorm(8)), ("flat", n.Flatten()), ("out", n.Linear(8, 3)),
            ("act", n.LogSoftmax(dim=1))]))

    assert repr(build(nn)) == repr(build(torch.nn))


def test_registration_rules():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(sj.ones(3))
            self.plain = sj.ones(2)  # a Tensor attribute is neither parameter nor buffer
            self.register_buffer("stat", sj.zeros(2))
            self.register_buffer("scratch", sj.zeros(2), persistent=False)
            self.child = nn.Linear(2, 2)

    m = M()
    assert [n for n, _ in m.named_parameters()] == ["w", "child.weight", "child.bias"]
    assert list(m.state_dict()) == ["w", "stat", "child.weight", "child.bias"]
    assert [n for n, _ in m.named_buffers()] == ["stat", "scratch"]
    m.child = None
    assert [n for n, _ in m.named_parameters()] == ["w"]
    with pytest.raises(TypeError, match="Parameter or None"):
        m.w = sj.ones(3)
    del m.w
    assert list(m.named_parameters()) == []

    class Early(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Early()


def test_shared_parameters_are_listed_once():
    torch = _torch()
    for lib in (nn, torch.nn):
        a = lib.Linear(4, 4)
        b = lib.Linear(4, 4)
        b.weight = a.weight
        m = lib.Sequential(a, b)
        assert len(list(m.parameters())) == 3
        assert list(m.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_state_dict_lists_a_shared_module_under_every_name_like_torch():
    torch = _torch()
    a, ta = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert list(nn.Sequential(a, a).state_dict()) == list(
        torch.nn.Sequential(ta, ta).state_dict())
    state = {k: v.detach().numpy() for k, v in torch.nn.Sequential(ta, ta).state_dict().items()}
    nn.Sequential(a, a).load_state_dict(state)  # strict: every torch key is known
    np.testing.assert_array_equal(a.weight.data, ta.weight.detach().numpy())


def test_containers():
    layers = [nn.Linear(2, 2) for _ in range(3)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[1] is layers[1] and seq[-1] is layers[2]
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == layers[1:]
    seq.append(nn.ReLU())
    assert len(seq) == 4 and isinstance(seq[3], nn.ReLU)
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    ml = nn.ModuleList(layers[:2])
    ml.append(layers[2])
    ml.insert(0, nn.ReLU())
    assert [type(m).__name__ for m in ml] == ["ReLU", "Linear", "Linear", "Linear"]
    assert [n for n, _ in ml.named_parameters()][:2] == ["1.weight", "1.bias"]
    md = nn.ModuleDict({"a": layers[0]})
    md["b"] = layers[1]
    assert list(md.keys()) == ["a", "b"] and "b" in md and md["a"] is layers[0]
    assert len(list(md.parameters())) == 4
    seen = []
    seq.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Linear", "Linear", "ReLU", "Sequential"]
    assert seq.get_submodule("1") is layers[1]


# ----------------------------------------------------------------------------- utils


def _grads_pair(seed=0, scale=1.0):
    """Two parameter lists (shenjing, torch) holding the same random gradients."""
    torch = _torch()
    shapes = [(3, 4), (4,), (2, 2, 2)]
    ours, theirs = [], []
    for i, s in enumerate(shapes):
        g = randn(*s, seed=seed + i, scale=scale)
        p = nn.Parameter(sj.zeros(*s))
        p.grad = sj.tensor(g)
        tp = torch.nn.Parameter(torch.zeros(*s))
        tp.grad = torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(tp)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = _torch()
    ours, theirs = _grads_pair()
    total = utils.clip_grad_norm_(ours, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, sj.Tensor) and total.dtype == np.float32
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-5)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_nonfinite_and_single_tensor():
    ours, _ = _grads_pair()
    ours[0].grad.numpy()[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    p = nn.Parameter(sj.zeros(2))
    p.grad = sj.tensor([3.0, 4.0])
    assert utils.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert utils.clip_grad_norm_([nn.Parameter(sj.zeros(2))], 1.0).item() == 0.0


def test_clip_grad_value_and_vectors_match_torch():
    torch = _torch()
    ours, theirs = _grads_pair(scale=2.0)
    utils.clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, tp in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())
    m, tm = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    load_from_torch(m, tm)
    vec = utils.parameters_to_vector(m.parameters())
    np.testing.assert_array_equal(
        vec.numpy(), torch.nn.utils.parameters_to_vector(tm.parameters()).detach().numpy())
    utils.vector_to_parameters(vec * 2.0, m.parameters())
    np.testing.assert_array_equal(m.bias.numpy(), tm.bias.detach().numpy() * 2)
    with pytest.raises(ValueError, match="8 elements"):
        utils.vector_to_parameters(sj.zeros(5), m.parameters())
