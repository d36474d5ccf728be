"""Transfer and incremental learning: freezing (PyTorch and Keras ways), new heads,
discriminative learning rates against torch.optim, and training on data that arrives in parts."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras, models, optim
from shenjing.nn import functional as F


def _batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)


def _train(model, opt, steps=3):
    x, y = _batch()
    for _ in range(steps):
        loss = F.cross_entropy(model(sj.tensor(x)), sj.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_frozen_parameters_stay_bit_identical():
    model = models.seed000_cnn()
    names = models.freeze(model, ["0", "3"])
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias"]
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    # all parameters given to AdamW (weight decay would move them if they were not skipped)
    _train(model, optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1))
    after = model.state_dict()
    for k in names:
        assert np.array_equal(after[k].numpy(), before[k]), k
    assert not np.array_equal(after["7.weight"].numpy(), before["7.weight"])
    models.unfreeze(model, ["3"])
    assert model[3].weight.requires_grad and not model[0].weight.requires_grad


def test_bad_prefix_names_the_available_paths():
    with pytest.raises(ValueError, match=r"under 'features'; module paths are \['0', '3', '7'\]"):
        models.freeze(models.seed000_cnn(), ["features"])
    with pytest.raises(ValueError, match="non-empty"):
        models.freeze(models.seed000_cnn(), [""])


def test_prefix_matches_whole_path_components():
    model = models.ResNet((1, 1), (4, 8))
    frozen = models.freeze(model, ["layer1"])
    assert frozen and all(n.startswith("layer1.") for n in frozen)
    assert model.bn1.weight.requires_grad  # "bn1" is not under "layer1"


def test_replace_head():
    model = models.seed003_cnn()
    models.freeze(model, ["0", "4", "6"])
    path = models.replace_head(model, 3)
    assert path == "6" and model[6].out_features == 3 and model[6].weight.requires_grad
    assert model(sj.randn(2, 1, 28, 28)).shape == (2, 3)
    assert models.trainable_parameters(model) == [model[6].weight, model[6].bias]
    text = models.TextCNN(30, 8, 4, (2,), 2)
    assert models.replace_head(text, 5) == "fc" and text.fc.out_features == 5
    with pytest.raises(ValueError, match="positive int"):
        models.replace_head(model, 0)


def test_discriminative_learning_rates_match_torch():
    torch = pytest.importorskip("torch")
    model = models.seed003_cnn()
    models.freeze(model, ["0"])
    groups = models.param_groups(model, {"4": 1e-3}, default_lr=1e-1)
    assert [g["lr"] for g in groups] == [1e-3, 1e-1]
    assert groups[0]["params"] == [model[4].weight, model[4].bias]
    tmodel = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(5408, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    tmodel.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    tmodel[0].requires_grad_(False)
    topt = torch.optim.SGD([{"params": tmodel[4].parameters(), "lr": 1e-3},
                            {"params": tmodel[6].parameters(), "lr": 1e-1}], lr=0.5, momentum=0.9)
    opt = optim.SGD(groups, lr=0.5, momentum=0.9)
    x, y = _batch()
    for _ in range(3):
        for m, o, lib in ((model, opt, sj), (tmodel, topt, torch)):
            loss = (F if lib is sj else torch.nn.functional).cross_entropy(
                m(lib.tensor(x)), lib.tensor(y))
            o.zero_grad()
            loss.backward()
            o.step()
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k].numpy(), v.numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=k)


def _keras_model():
    sj.manual_seed(0)
    model = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(5,)),
                              keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    return model


def _chunks():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    return x, rng.integers(0, 3, 64)


def test_keras_trainable_false_keeps_weights():
    model = _keras_model()
    x, y = _chunks()
    model.layers[0].trainable = False
    frozen = [w.copy() for w in model.layers[0].get_weights()]
    head = [w.copy() for w in model.layers[1].get_weights()]
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(model.layers[0].get_weights(), frozen):
        assert np.array_equal(a, b)
    assert not np.array_equal(model.layers[1].get_weights()[0], head[0])


def test_keras_fit_again_keeps_optimizer_state():
    """Two fits on two chunks == one fit on both (same batches): Adam's moments carry over."""
    x, y = _chunks()
    whole = _keras_model()
    whole.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    parts = _keras_model()
    parts.fit(x[:32], y[:32], epochs=1, batch_size=16, shuffle=False, verbose=0)
    parts.fit(x[32:], y[32:], epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(whole.get_weights(), parts.get_weights()):
        np.testing.assert_array_equal(a, b)
    restarted = _keras_model()  # a fresh optimizer for the second chunk gives other weights
    restarted.fit(x[:32], y[:32], epochs=1, batch_size=16, shuffle=False, verbose=0)
    restarted.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    restarted.fit(x[32:], y[32:], epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert not np.array_equal(restarted.get_weights()[0], whole.get_weights()[0])


def test_partial_fit_on_arriving_chunks_equals_one_pass():
    x, y = _chunks()

    def fresh():
        sj.manual_seed(0)
        model = models.MLP((5, 8, 3))
        return model, optim.Adam(model.parameters(), lr=1e-2)

    whole, opt = fresh()
    models.partial_fit(whole, opt, F.cross_entropy, x, y, batch_size=16, shuffle=False)
    parts, opt = fresh()
    with sj.no_grad():  # the first chunk's loss is the untrained model's loss on it
        first = F.cross_entropy(parts(sj.tensor(x[:16])), sj.tensor(y[:16])).item()
    losses = [models.partial_fit(parts, opt, F.cross_entropy, x[i:i + 16], y[i:i + 16],
                                 batch_size=16, shuffle=False) for i in range(0, 64, 16)]
    assert losses[0] == pytest.approx(first, rel=1e-6)
    for (k, a), b in zip(whole.state_dict().items(), parts.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    with pytest.raises(ValueError, match="equal length"):
        models.partial_fit(parts, opt, F.cross_entropy, x[:3], y[:2])
