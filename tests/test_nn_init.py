"""shenjing.nn.init: gains and fans equal torch's, each fill has the documented bounds and
spread, works in place under no graph, keeps the dtype and follows sj.manual_seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import shenjing as sj
import shenjing.nn as nn
from shenjing.nn import init


def _torch():
    return pytest.importorskip("torch")


def test_calculate_gain_matches_torch():
    torch = _torch()
    cases = [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
             ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
             ("leaky_relu", math.sqrt(5)), ("selu", None)]
    for name, param in cases:
        assert init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param), rel=1e-12), name
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("shape", [(5, 7), (16, 3, 3, 3), (8, 4, 5)])
def test_fan_in_and_fan_out_match_torch(shape):
    torch = _torch()
    ours = init._calculate_fan_in_and_fan_out(sj.zeros(*shape))
    assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))


def test_fan_of_a_vector_is_an_error():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(sj.zeros(5))


def _sample(fn, shape=(400, 500), dtype=sj.float32, **kw):
    t = sj.zeros(*shape, dtype=dtype)
    out = fn(t, **kw)
    assert out is t and t.dtype == dtype
    return t.numpy()


@pytest.mark.parametrize("dtype", [sj.float32, sj.float64])
def test_uniform_and_normal(dtype):
    u = _sample(init.uniform_, dtype=dtype, a=-2.0, b=3.0)
    assert u.min() >= -2.0 and u.max() < 3.0 and u.min() < -1.99 and u.max() > 2.99
    assert abs(u.mean() - 0.5) < 0.02 and abs(u.std() - 5 / math.sqrt(12)) < 0.01
    z = _sample(init.normal_, dtype=dtype, mean=1.0, std=0.5)
    assert abs(z.mean() - 1.0) < 0.005 and abs(z.std() - 0.5) < 0.005


def test_xavier_and_kaiming_bounds_and_spread():
    fan_in, fan_out = 500, 400  # weight (400, 500)
    b = math.sqrt(6 / (fan_in + fan_out))
    w = _sample(init.xavier_uniform_, gain=2.0)
    assert np.abs(w).max() <= 2 * b and np.abs(w).max() > 0.99 * 2 * b
    w = _sample(init.xavier_normal_)
    assert abs(w.std() - math.sqrt(2 / (fan_in + fan_out))) < 0.01 * w.std()
    w = _sample(init.kaiming_uniform_, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    w = _sample(init.kaiming_uniform_, mode="fan_out", nonlinearity="relu")
    assert np.abs(w).max() <= math.sqrt(2) * math.sqrt(3 / fan_out)
    assert np.abs(w).max() > math.sqrt(2) * math.sqrt(3 / fan_in)  # fan_out is smaller
    w = _sample(init.kaiming_normal_, a=0.2, nonlinearity="leaky_relu")
    std = math.sqrt(2 / (1 + 0.2**2)) / math.sqrt(fan_in)
    assert abs(w.std() - std) < 0.01 * std
    w = _sample(init.kaiming_uniform_, a=math.sqrt(5))  # Linear's default: 1/sqrt(fan_in)
    assert np.abs(w).max() <= 1 / math.sqrt(fan_in)
    with pytest.raises(ValueError, match="fan_in"):
        init.kaiming_normal_(sj.zeros(3, 3), mode="fan_avg")


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (4, 3, 2, 2)])
def test_orthogonal(shape):
    w = _sample(init.orthogonal_, shape=shape, gain=2.0)
    flat = w.reshape(shape[0], -1) / 2.0
    small = min(flat.shape)
    gram = flat @ flat.T if flat.shape[0] == small else flat.T @ flat
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)


def test_trunc_normal_bounds_and_spread():
    w = _sample(init.trunc_normal_, mean=0.5, std=1.0, a=-1.0, b=1.5)
    assert w.min() >= -1.0 and w.max() <= 1.5
    torch = _torch()
    ref = torch.nn.init.trunc_normal_(torch.zeros(400, 500), 0.5, 1.0, -1.0, 1.5).numpy()
    assert abs(w.mean() - ref.mean()) < 0.01 and abs(w.std() - ref.std()) < 0.01
    far = _sample(init.trunc_normal_, shape=(100,), a=8.0, b=9.0)  # a deep tail
    assert far.min() >= 8.0 and far.max() <= 9.0


def test_constant_fills_and_eye():
    assert (_sample(init.constant_, val=0.25) == 0.25).all()
    assert (_sample(init.ones_) == 1).all()
    t = sj.ones(3, 3)
    assert not init.zeros_(t).numpy().any()
    np.testing.assert_array_equal(init.eye_(sj.zeros(2, 3)).numpy(), np.eye(2, 3))


def test_init_on_parameters_records_no_graph_and_follows_the_seed():
    layer = nn.Linear(20, 30)
    sj.manual_seed(5)
    out = init.xavier_uniform_(layer.weight)
    first = layer.weight.numpy().copy()
    assert out is layer.weight and layer.weight.requires_grad and layer.weight.is_leaf
    assert layer.weight.grad is None
    sj.manual_seed(5)
    init.xavier_uniform_(layer.weight)
    np.testing.assert_array_equal(layer.weight.numpy(), first)
    g = sj.Generator(3)
    a = init.normal_(sj.zeros(5), generator=g).numpy().copy()
    np.testing.assert_array_equal(init.normal_(sj.zeros(5), generator=sj.Generator(3)).numpy(),
                                  a)


def test_init_refuses_integer_tensors():
    with pytest.raises(TypeError, match="floating-point"):
        init.uniform_(sj.zeros(3, dtype=sj.int64))
