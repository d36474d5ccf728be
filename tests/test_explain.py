"""shenjing.explain: saliency, integrated gradients, occlusion and Grad-CAM checked against
Captum's definitions written in torch on the same weights, completeness, text attributions,
the overlay and the `explain` command."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import shenjing as sj
from shenjing import explain, nn
from shenjing.models import get_model

torch = pytest.importorskip("torch")


def _pair(act="relu"):
    """The same small CNN in shenjing and torch (8x8 single-channel inputs, 3 classes)."""
    ours = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU() if act == "relu" else nn.Tanh(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 3))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3),
                                 torch.nn.ReLU() if act == "relu" else torch.nn.Tanh(),
                                 torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                 torch.nn.Linear(36, 3)).double()
    with torch.no_grad():
        for (_, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            b.copy_(torch.from_numpy(a.numpy().astype(np.float64)))
    return ours.double().eval(), theirs.eval()


def _x(n=3, seed=0):
    return np.random.default_rng(seed).random((n, 1, 8, 8))


def _torch_grads(model, x, target):
    xt = torch.from_numpy(x).requires_grad_(True)
    out = model(xt)
    out[torch.arange(len(x)), torch.as_tensor(target)].sum().backward()
    return xt.grad.numpy()


def test_saliency_is_captums_abs_gradient():
    ours, theirs = _pair()
    x, target = _x(), [0, 2, 1]
    expected = np.abs(_torch_grads(theirs, x, target))
    np.testing.assert_allclose(explain.saliency(ours, x, target).numpy(), expected, atol=1e-10)
    signed = explain.saliency(ours, sj.from_numpy(x), target, abs=False).numpy()
    np.testing.assert_allclose(signed, _torch_grads(theirs, x, target), atol=1e-10)
    assert np.any(signed < 0)


def _torch_ig(model, x, target, baseline, alphas, weights):
    """Captum's IntegratedGradients, written out: (x - x') * sum_i w_i grad f(x' + a_i (x - x'))."""
    total = np.zeros_like(x)
    for a, w in zip(alphas, weights):
        total += w * _torch_grads(model, baseline + a * (x - baseline), target)
    return (x - baseline) * total


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_middle"])
def test_integrated_gradients_matches_a_torch_implementation(method):
    ours, theirs = _pair()
    x, target = _x(), [1, 0, 2]
    baseline = np.full_like(x, 0.2)
    alphas, weights = explain.ig_alphas(16, method)
    expected = _torch_ig(theirs, x, target, baseline, alphas, weights)
    got = explain.integrated_gradients(ours, x, target, baselines=baseline, n_steps=16,
                                       method=method, internal_batch_size=10).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_ig_quadrature_points_are_captums():
    a, w = explain.ig_alphas(4, "gausslegendre")
    roots, weights = np.polynomial.legendre.leggauss(4)
    np.testing.assert_allclose(a, (roots + 1) / 2)
    np.testing.assert_allclose(w, weights / 2)
    a, w = explain.ig_alphas(5, "riemann_trapezoid")
    np.testing.assert_allclose(a, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(w, [0.125, 0.25, 0.25, 0.25, 0.125])
    np.testing.assert_allclose(explain.ig_alphas(4, "riemann_left")[0], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(explain.ig_alphas(4, "riemann_right")[0], [0.25, 0.5, 0.75, 1])


def _smooth_cnn():
    sj.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 13 * 13, 16), nn.Tanh(), nn.Linear(16, 10)).eval()
    with sj.no_grad():
        model[4].weight.mul_(5)
    return model


def test_integrated_gradients_completeness_within_one_percent():
    model = _smooth_cnn()
    x = np.random.default_rng(1).random((4, 1, 28, 28)).astype(np.float32)
    with sj.no_grad():  # explain, for each image, the class whose score moved most
        gaps = (model(sj.from_numpy(x)).numpy().astype(np.float64)
                - model(sj.zeros(4, 1, 28, 28)).numpy())
    target = np.abs(gaps).argmax(axis=1)
    gap = gaps[np.arange(4), target]
    attr, delta = explain.integrated_gradients(model, x, target=target,
                                               return_convergence_delta=True)
    total = attr.numpy().reshape(4, -1).sum(axis=1, dtype=np.float64)
    assert np.all(np.abs(gap) > 0.01)  # a real difference to account for
    assert np.all(np.abs(total - gap) <= 0.01 * np.abs(gap))
    np.testing.assert_allclose(delta.numpy(), total - gap, atol=1e-5)


def test_integrated_gradients_converges_on_a_relu_cnn():
    sj.manual_seed(0)
    model = get_model("seed000-cnn").eval()
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    rel = []
    for steps in (8, 64):
        _, delta = explain.integrated_gradients(model, x, target=[1, 2], n_steps=steps,
                                                method="riemann_trapezoid",
                                                return_convergence_delta=True)
        rel.append(np.abs(delta.numpy()).sum())
    assert rel[1] < rel[0] / 4


def test_occlusion_matches_a_brute_force_definition():
    ours, _ = _pair()
    x, target = _x(2), [2, 1]
    window, stride = (1, 3, 3), (1, 2, 2)
    got = explain.occlusion(ours, x, window, stride, target=target, baselines=0.5,
                            perturbations_per_eval=3).numpy()
    with sj.no_grad():
        def score(inp):
            return ours(sj.from_numpy(inp)).numpy()[np.arange(2), target]
        base = score(x)
        total, count = np.zeros_like(x), np.zeros(x.shape[1:])
        for i in range(0, 8 - 3 + 1, 2):
            for j in range(0, 8 - 3 + 1, 2):
                occluded = x.copy()
                occluded[:, :, i:i + 3, j:j + 3] = 0.5
                total[:, :, i:i + 3, j:j + 3] += (base - score(occluded))[:, None, None, None]
                count[:, i:i + 3, j:j + 3] += 1
    expected = np.where(count > 0, total / np.maximum(count, 1), 0)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert np.all(got[:, :, 7, :] == 0)  # the last row is covered by no window of stride 2


def test_occlusion_of_a_linear_model_is_weight_times_input():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2)).double()
    x = np.random.default_rng(2).random((2, 1, 2, 3))
    got = explain.occlusion(model, x, (1, 1, 1), target=1).numpy()
    np.testing.assert_allclose(got.reshape(2, 6), x.reshape(2, 6) * model[1].weight.numpy()[1],
                               atol=1e-12)


def test_grad_cam_matches_a_torch_implementation():
    ours, theirs = _pair("tanh")
    x, target = _x(), [0, 1, 2]
    got = explain.grad_cam(ours, x, ours[1], target=target, upsample=False).numpy()
    xt = torch.from_numpy(x)
    acts = theirs[1](theirs[0](xt))
    leaf = acts.detach().requires_grad_(True)
    out = theirs[4](theirs[3](theirs[2](leaf)))
    out[torch.arange(3), torch.as_tensor(target)].sum().backward()
    weights = leaf.grad.mean(dim=(2, 3), keepdim=True)
    expected = torch.relu((weights * leaf).sum(dim=1)).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10)
    assert np.any(expected > 0)
    big = explain.grad_cam(ours, x, ours[1], target=target).numpy()
    up = torch.nn.functional.interpolate(torch.from_numpy(expected)[:, None], size=(8, 8),
                                         mode="bilinear", align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(big, up, atol=1e-10)


def test_explaining_leaves_the_model_as_it_was():
    ours, _ = _pair()
    frozen = ours[0].bias
    frozen.requires_grad_(False)
    x = _x()
    for fn in (lambda: explain.saliency(ours, x),
               lambda: explain.integrated_gradients(ours, x, n_steps=4),
               lambda: explain.grad_cam(ours, x, ours[0]),
               lambda: explain.occlusion(ours, x, (1, 4, 4))):
        with sj.no_grad():
            fn()
            assert not sj.is_grad_enabled()
    assert sj.is_grad_enabled()
    assert all(p.grad is None for p in ours.parameters())
    assert [p.requires_grad for p in ours.parameters()] == [True, False, True, True]
    assert not any(m._forward_hooks for m in ours.modules())  # no hook left behind


def test_bad_arguments_raise_at_the_call():
    ours, _ = _pair()
    x = _x(2)
    with pytest.raises(ValueError, match="out of range"):
        explain.saliency(ours, x, target=3)
    with pytest.raises(ValueError, match="target"):
        explain.saliency(ours, x, target=[0, 1, 2])
    with pytest.raises(TypeError, match="Tensor or an ndarray"):
        explain.saliency(ours, x.tolist())
    with pytest.raises(ValueError, match="method"):
        explain.integrated_gradients(ours, x, 0, method="simpson")
    with pytest.raises(ValueError, match="not part of the model"):
        explain.grad_cam(ours, x, nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="sliding_window_shapes"):
        explain.occlusion(ours, x, (1, 9, 9))


def _text_model():
    sj.manual_seed(5)
    model = get_model("textcnn", vocab_size=12, embed_dim=6, n_filters=5, filter_sizes=(2, 3),
                      output_dim=2)
    return model.eval()


def test_token_attributions_add_up_and_match_embedding_ig():
    model = _text_model()
    ids = np.array([[2, 5, 7, 3, 1, 1], [4, 4, 9, 10, 11, 2]])
    scores, delta = explain.token_attributions(model, ids, target=[1, 0], n_steps=200,
                                               return_convergence_delta=True)
    assert scores.shape == (2, 6)
    with sj.no_grad():
        emb = model.embedding(sj.from_numpy(ids)).numpy()
    # the same quantity by hand: IG over the embedding output of a model fed embeddings
    fx = model(sj.from_numpy(ids)).numpy()[[0, 1], [1, 0]]

    def head(e):
        with explain.capture_output(model.embedding, replace=lambda _: e):
            return model(sj.from_numpy(ids)).numpy()[[0, 1], [1, 0]]

    gap = fx - head(np.zeros_like(emb))
    np.testing.assert_allclose(delta.numpy(), scores.numpy().sum(1) - gap, atol=1e-6)
    assert np.all(np.abs(delta.numpy()) <= 0.01 * np.abs(gap))
    sal = explain.token_attributions(model, ids, target=[1, 0], method="saliency").numpy()
    assert sal.shape == (2, 6) and np.all(sal >= 0)


def test_coloured_tokens_ansi_and_html():
    ansi = explain.tokens_to_ansi(["good", "bad"], [2.0, -1.0])
    assert "\x1b[48;2;0;255;0m" in ansi and "\x1b[48;2;255;128;128m" in ansi
    assert ansi.count("\x1b[0m") == 2
    page = explain.tokens_to_html(["<script>", "ok"], [0.5, 0.0])
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert 'title="0.5"' in page and "rgb(255,255,255)" in page


def test_overlay_blends_where_the_map_is():
    image = np.full((1, 4, 4), 0.5)
    amap = np.zeros((4, 4))
    amap[1, 2] = 3.0
    out = explain.overlay(image, amap, alpha=0.6, scale=2)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert np.all(out[0, 0] == 128)  # no attribution: the grey image unchanged
    assert tuple(out[2, 4]) == tuple(np.round(0.4 * 127.5 + 0.6 * np.array([255, 0, 0])))
    with pytest.raises(ValueError, match="must match"):
        explain.overlay(image, np.zeros((3, 3)))


def _cli_args(**kw):
    base = dict(image=None, text=None, method="integrated_gradients", target=None,
                out="map.png", html=None, steps=8, layer=None)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "occlusion",
                                    "grad_cam"])
def test_explain_command_writes_an_overlay(tmp_path, method, capsys):
    Image = pytest.importorskip("PIL.Image")
    from shenjing.explain.cli import run_explain

    sj.manual_seed(0)
    sj.save(get_model("seed000-cnn").state_dict(), tmp_path / "w.safetensors")
    (tmp_path / "w.json").write_text(json.dumps(
        {"model": "seed000-cnn", "classes": [str(i) for i in range(10)],
         "input_shape": [1, 28, 28]}))
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit).save(tmp_path / "digit.png")
    out = tmp_path / f"{method}.png"
    code = run_explain(_cli_args(checkpoint=str(tmp_path / "w.safetensors"),
                                 image=str(tmp_path / "digit.png"), method=method,
                                 out=str(out)))
    assert code == 0 and "written to" in capsys.readouterr().out
    with Image.open(out) as img:
        picture = np.asarray(img)
    assert picture.shape == (252, 252, 3)
    assert np.any(picture[..., 0] != picture[..., 2])  # coloured where the map is
    code = run_explain(_cli_args(checkpoint=str(tmp_path / "w.safetensors"),
                                 image=str(tmp_path / "w.json"), out=str(out)))
    assert code == 2 and "not a readable image" in capsys.readouterr().err


def test_explain_command_colours_text(tmp_path, capsys):
    from shenjing.explain.cli import run_explain

    itos = ["<unk>", "<pad>", "a", "good", "bad", "film"]
    model = get_model("textcnn", vocab_size=6, embed_dim=4, n_filters=3, filter_sizes=(2,),
                      output_dim=2)
    sj.save({"format": "shenjing-cli-model/1",
             "config": {"model": "textcnn", "task": "text",
                        "kwargs": {"vocab_size": 6, "embed_dim": 4, "n_filters": 3,
                                   "filter_sizes": [2], "output_dim": 2},
                        "classes": ["neg", "pos"], "meta": {"itos": itos, "max_len": 5}},
             "model": {k: v.numpy() for k, v in model.state_dict().items()}},
            tmp_path / "model.safetensors")
    assert run_explain(_cli_args(checkpoint=str(tmp_path), text="a good film")) == 0
    printed = capsys.readouterr().out
    assert printed.count("\x1b[0m") == 3 and "good" in printed
    page = tmp_path / "t.html"
    assert run_explain(_cli_args(checkpoint=str(tmp_path), text="a bad film",
                                 html=str(page))) == 0
    assert page.read_text().count("<span") == 3
    assert run_explain(_cli_args(checkpoint=str(tmp_path))) == 2
