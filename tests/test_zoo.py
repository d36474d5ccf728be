"""The zoo against PyTorch: the same architecture built in torch, its state_dict exported with
safetensors.torch and loaded by `load_torch_safetensors`, gives the same outputs (and, for the
small models, the same gradients); plus the models' own behaviour (generation, errors)."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import models

torch = pytest.importorskip("torch")
tnn = torch.nn
st_torch = pytest.importorskip("safetensors.torch")


def _torch_seed000(k=10):
    return tnn.Sequential(tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(32, 64, 3),
                          tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(64 * 25, k))


def _torch_seed003(k=10):
    return tnn.Sequential(tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                          tnn.Linear(32 * 13 * 13, 128), tnn.ReLU(), tnn.Linear(128, k))


def _torch_mlp():
    return tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 32), tnn.Tanh(), tnn.Dropout(0.2),
                          tnn.Linear(32, 16), tnn.Tanh(), tnn.Dropout(0.2), tnn.Linear(16, 10))


class _TorchBlock(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                             tnn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + idt)


class _TorchResNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm2d(4)
        self.relu = tnn.ReLU()
        self.layer1 = tnn.Sequential(_TorchBlock(4, 4, 1), _TorchBlock(4, 4, 1))
        self.layer2 = tnn.Sequential(_TorchBlock(4, 8, 2))
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(8, 3)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(self.avgpool(x).flatten(1))


class _TorchTextCNN(tnn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = tnn.Embedding(40, 8, padding_idx=1)
        self.convs = tnn.ModuleList([tnn.Conv2d(1, 5, (k, 8)) for k in (2, 3)])
        self.fc = tnn.Linear(10, 2)
        self.dropout = tnn.Dropout(0.5)

    def forward(self, t):
        e = self.embedding(t).unsqueeze(1)
        pooled = [torch.relu(c(e)).squeeze(3).amax(2) for c in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, 1)))


class _TorchCharLSTM(tnn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = tnn.Embedding(12, 6)
        self.lstm = tnn.LSTM(6, 10, num_layers=2, batch_first=True)
        self.fc = tnn.Linear(10, 12)

    def forward(self, x):
        return self.fc(self.lstm(self.embedding(x))[0])


class _TorchSeqReg(tnn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = (tnn.LSTM if cell == "lstm" else tnn.RNN)(2, 7, batch_first=True)
        self.fc = tnn.Linear(7, 1)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


class _TorchTransformer(tnn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = tnn.Embedding(30, 8, padding_idx=1)
        self.pos_embedding = tnn.Embedding(12, 8)
        layer = tnn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True)
        self.encoder = tnn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = tnn.Linear(8, 3)

    def forward(self, t):
        pad = t == 1
        x = self.embedding(t) + self.pos_embedding(torch.arange(t.shape[1]).expand_as(t))
        x = self.encoder(x, src_key_padding_mask=pad)
        keep = (~pad).float()[..., None]
        return self.fc((x * keep).sum(1) / keep.sum(1))


def _first(out):
    return out[0] if isinstance(out, tuple) else out


CASES = {
    "seed000-cnn": (lambda: models.seed000_cnn(), _torch_seed000, "image", (3, 1, 28, 28)),
    "seed003-cnn": (lambda: models.seed003_cnn(), _torch_seed003, "image", (3, 1, 28, 28)),
    "mlp": (lambda: models.MLP((784, 32, 16, 10), "tanh", 0.2), _torch_mlp, "image",
            (3, 1, 28, 28)),
    "resnet": (lambda: models.ResNet((2, 1), (4, 8), in_channels=1, num_classes=3),
               _TorchResNet, "image", (4, 1, 10, 10)),
    "textcnn": (lambda: models.TextCNN(40, 8, 5, (2, 3), 2, padding_idx=1), _TorchTextCNN,
                "tokens40", (3, 9)),
    "transformer": (lambda: models.TransformerClassifier(30, 3, 8, 2, 2, 16, 0.0, 12, 1),
                    _TorchTransformer, "tokens30", (3, 9)),
    "char-lstm": (lambda: models.CharLSTM(12, 6, 10, num_layers=2), _TorchCharLSTM, "tokens12",
                  (2, 8)),
    "sequence-rnn": (lambda: models.SequenceRegressor(2, 7, cell="rnn"),
                     lambda: _TorchSeqReg("rnn"), "image", (3, 6, 2)),
    "sequence-lstm": (lambda: models.SequenceRegressor(2, 7, cell="lstm"),
                      lambda: _TorchSeqReg("lstm"), "image", (3, 6, 2)),
}


def _inputs(kind, shape, rng):
    if kind == "image":
        x = rng.standard_normal(shape).astype(np.float32)
        return sj.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ids = rng.integers(0, int(kind[6:]), size=shape)
    ids[0, -3:] = 1  # padding at the end of one row (the pad index of the text models)
    return sj.tensor(ids), torch.tensor(ids)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("training", [False, True])
def test_torch_weights_load_and_match(name, training, tmp_path):
    """Same outputs, input and parameter gradients as torch after loading torch's weights
    (training mode too where there is no dropout: batch-norm batch statistics)."""
    build, build_torch, kind, shape = CASES[name]
    if name == "transformer" and not hasattr(sj.nn, "TransformerEncoder"):
        pytest.skip("shenjing.nn.TransformerEncoder is not there yet")
    torch.manual_seed(1)
    tmodel = build_torch()
    has_dropout = any(isinstance(m, tnn.Dropout) and m.p > 0 for m in tmodel.modules())
    if training and has_dropout:
        pytest.skip("dropout masks differ between libraries")
    if isinstance(tmodel, _TorchResNet):  # non-trivial running statistics for eval mode
        for m in tmodel.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "torch.safetensors"
    st_torch.save_file({k: v.contiguous() for k, v in tmodel.state_dict().items()}, str(path))
    model = models.load_torch_safetensors(build(), path)
    assert list(model.state_dict()) == list(tmodel.state_dict())
    model.train(training)
    tmodel.train(training)
    rng = np.random.default_rng(0)
    x, tx = _inputs(kind, shape, rng)
    out, tout = _first(model(x)), _first(tmodel(tx))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    upstream = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    (out * sj.tensor(upstream)).sum().backward()
    (tout * torch.tensor(upstream)).sum().backward()
    if kind == "image":
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-3, atol=1e-5)
    tparams = dict(tmodel.named_parameters())
    for pname, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[pname].grad.numpy(), rtol=1e-3,
                                   atol=1e-4, err_msg=pname)


def test_alexnet_matches_torch(tmp_path):
    torch.manual_seed(0)
    tmodel = tnn.Sequential()  # torchvision's layout, written out
    features = tnn.Sequential(
        tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1),
        tnn.ReLU(), tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
    classifier = tnn.Sequential(tnn.Dropout(), tnn.Linear(9216, 4096), tnn.ReLU(), tnn.Dropout(),
                                tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Linear(4096, 5))
    tmodel.add_module("features", features)
    tmodel.add_module("avgpool", tnn.AdaptiveAvgPool2d((6, 6)))
    tmodel.add_module("classifier", classifier)
    path = tmp_path / "alexnet.safetensors"
    st_torch.save_file(tmodel.state_dict(), str(path))
    model = models.load_torch_safetensors(models.AlexNet(num_classes=5), path).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 67, 67)).astype(np.float32)
    with torch.no_grad():
        tx = tmodel.avgpool(features(torch.tensor(x)))
        expected = classifier.eval()(tx.flatten(1)).numpy()
    np.testing.assert_allclose(model(sj.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_perceptron_matches_formula():
    model = models.Perceptron(6)
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    w, b = model.linear.weight.numpy(), model.linear.bias.numpy()
    expected = 1 / (1 + np.exp(-(x @ w.T + b)[:, 0]))
    np.testing.assert_allclose(model(sj.tensor(x)).numpy(), expected, rtol=1e-6)
    assert model(sj.tensor(x.reshape(4, 1, 2, 3))).shape == (4,)


def test_sequence_mse_is_sum_over_time_mean_over_batch():
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 5, 2))
    got = models.sequence_mse(sj.tensor(p), sj.tensor(t)).item()
    assert got == pytest.approx(((p - t) ** 2).sum() / 3)
    with pytest.raises(ValueError, match="differs from target shape"):
        models.sequence_mse(sj.tensor(p), sj.tensor(t[:, :4]))


def test_char_lstm_generate_is_reproducible_and_checked():
    sj.manual_seed(0)
    model = models.CharLSTM(5, 4, 8, chars="abcd ")
    a = model.generate("ab", 30, temperature=1.0, seed=7)
    assert a == model.generate("ab", 30, temperature=1.0, seed=7)
    assert a.startswith("ab") and len(a) == 32 and set(a) <= set("abcd ")
    assert a != model.generate("ab", 30, temperature=1.0, seed=8)
    greedy = model.generate("ab", 10, temperature=0)
    assert greedy == model.generate("ab", 10, temperature=0, seed=99)
    # greedy decoding picks the argmax of the model's own next-character logits
    logits, _ = model(sj.tensor(np.array([model.encode(greedy[:-1])])))
    assert "abcd "[int(logits.numpy()[0, -1].argmax())] == greedy[-1]
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        model.generate("xyz", 5)
    with pytest.raises(ValueError, match="empty"):
        model.generate("", 5)
    with pytest.raises(ValueError, match="chars has 3 characters"):
        models.CharLSTM(5, chars="abc")


def test_registry_and_constructor_errors():
    assert set(models.TASKS) == set(models.MODELS)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        models.get_model("nope")
    with pytest.raises(ValueError, match="unknown activation"):
        models.MLP((4, 2), activation="swishy")
    with pytest.raises(ValueError, match="at least two"):
        models.MLP((4,))
    with pytest.raises(ValueError, match="cell must be"):
        models.SequenceRegressor(cell="gru3")
    with pytest.raises(ValueError, match="of equal length"):
        models.ResNet((1, 1), (8,))
    net = models.seed000_cnn(in_channels=3, num_classes=4, image_size=32)
    assert net(sj.randn(2, 3, 32, 32)).shape == (2, 4)
    assert isinstance(models.mlp(), models.MLP)


def test_mismatched_torch_weights_are_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    st_torch.save_file(_torch_seed000(k=7).state_dict(), str(path))
    with pytest.raises(ValueError, match=r"'7.weight' has shape \(7, 1600\)"):
        models.load_torch_safetensors(models.seed000_cnn(), path)
    st_torch.save_file(_torch_seed003().state_dict(), str(path))
    with pytest.raises(ValueError, match="missing keys"):
        models.load_torch_safetensors(models.seed000_cnn(), path)
