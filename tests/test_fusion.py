"""Folding eval-mode BatchNorm into the preceding conv/linear, against torch's fusion."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import nn
from shenjing.nn.utils.fusion import fold_batchnorm, fuse_conv_bn_eval, fuse_linear_bn_eval

torch = pytest.importorskip("torch")


def _trained_bn(bn, shape):
    """Give a BatchNorm non-trivial running statistics and affine parameters."""
    bn.train()
    with sj.no_grad():
        for _ in range(3):
            bn(sj.randn(*shape) * 3 + 1)
        bn.weight.copy_(sj.rand(bn.num_features) + 0.5)
        bn.bias.copy_(sj.randn(bn.num_features))
    return bn.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_conv_bn_fusion_matches_torch_and_the_unfused_pair(bias):
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=bias).eval()
    bn = _trained_bn(nn.BatchNorm2d(4), (8, 4, 5, 5))
    fused = fuse_conv_bn_eval(conv, bn)
    x = sj.randn(2, 3, 6, 6)
    np.testing.assert_allclose(fused(x).numpy(), bn(conv(x)).numpy(), rtol=1e-4, atol=1e-5)
    tconv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=bias).eval()
    tconv.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                           for k, v in conv.state_dict().items()})
    tbn = torch.nn.BatchNorm2d(4).eval()
    tbn.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                         for k, v in bn.state_dict().items()})
    tfused = torch.nn.utils.fusion.fuse_conv_bn_eval(tconv, tbn)
    np.testing.assert_allclose(fused.weight.numpy(), tfused.weight.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(fused.bias.numpy(), tfused.bias.detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_linear_bn_fusion():
    lin = nn.Linear(5, 3).eval()
    bn = _trained_bn(nn.BatchNorm1d(3), (16, 3))
    x = sj.randn(4, 5)
    np.testing.assert_allclose(fuse_linear_bn_eval(lin, bn)(x).numpy(), bn(lin(x)).numpy(),
                               rtol=1e-4, atol=1e-5)


def test_fold_batchnorm_copies_and_folds_a_model():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), _trained_bn(nn.BatchNorm2d(4), (8, 4, 3, 3)),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    model.eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original untouched
    x = sj.randn(5, 1, 6, 6)
    with sj.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_fusion_refuses_training_mode_and_mismatched_channels():
    conv, bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn_eval(conv, bn)
    with pytest.raises(ValueError, match="output channels"):
        fuse_conv_bn_eval(nn.Conv2d(3, 5, 3).eval(), bn.eval())


def test_a_model_without_pairs_is_returned_itself_in_eval_mode():
    plain = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    assert fold_batchnorm(plain) is plain and not plain.training
