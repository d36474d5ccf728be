"""The training workloads of bench_train.py (W1–W7, W5b), each defined once as a function of
the library (`torch` or `shenjing`), so torch.nn and shenjing.nn build the same architecture
with the same parameter names (shenjing then loads torch's initial weights).

`WORKLOADS[name]` is (build(lib), batch() -> (x, y) NumPy arrays, (optimizer name, kwargs),
steps per timed block, description). `step_flops(model, x)` counts a torch model's
convolution and linear multiply-adds in one training step (see its docstring).
"""

from __future__ import annotations

import numpy as np


def w1_model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 5 * 5, 10))


def w2_model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Linear(128, 10))


def w3_model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, 10))


def w4_model(lib):
    nn = lib.nn

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(100, 64)
            self.lstm = nn.LSTM(64, 256, batch_first=True)
            self.fc = nn.Linear(256, 100)

        def forward(self, x):
            out, _ = self.lstm(self.embedding(x))
            return self.fc(out).reshape(-1, 100)

    return CharLSTM()


def w5_model(lib):
    """TextCNN with (k, E) Conv2d windows over the (N, 1, T, E) embedded sequence."""
    nn = lib.nn

    class TextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(25000, 100)
            self.convs = nn.ModuleList([nn.Conv2d(1, 100, (k, 100)) for k in (3, 4, 5)])
            self.dropout = nn.Dropout(0.5)
            self.fc = nn.Linear(300, 2)

        def forward(self, text):
            e = self.embedding(text).unsqueeze(1)
            pooled = [c(e).relu().squeeze(3).amax(dim=2) for c in self.convs]
            return self.fc(self.dropout(lib.cat(pooled, dim=1)))

    return TextCNN()


def w5b_model(lib):
    """The same TextCNN written as most PyTorch TextCNNs are: Conv1d over (N, E, T)."""
    nn = lib.nn

    class TextCNN1d(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(25000, 100)
            self.convs = nn.ModuleList([nn.Conv1d(100, 100, k) for k in (3, 4, 5)])
            self.dropout = nn.Dropout(0.5)
            self.fc = nn.Linear(300, 2)

        def forward(self, text):
            e = self.embedding(text).transpose(1, 2)  # (N, T, E) -> (N, E, T)
            pooled = [c(e).relu().amax(dim=2) for c in self.convs]
            return self.fc(self.dropout(lib.cat(pooled, dim=1)))

    return TextCNN1d()


def w6_model(lib):
    nn = lib.nn

    class AlexNet(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2))
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
                nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(),
                nn.Linear(4096, num_classes))

        def forward(self, x):
            x = self.avgpool(self.features(x))
            return self.classifier(x.reshape(x.shape[0], -1))

    return AlexNet()


def w7_model(lib):
    """A small Transformer encoder classifier: token + learned position embeddings, two
    post-norm encoder layers (d_model 128, 4 heads, feed-forward 512), mean-pool, Linear."""
    nn = lib.nn

    class TinyTransformer(nn.Module):
        def __init__(self, vocab=10000, d_model=128, max_len=128):
            super().__init__()
            self.embedding = nn.Embedding(vocab, d_model)
            self.position = nn.Embedding(max_len, d_model)
            layer = nn.TransformerEncoderLayer(d_model=d_model, nhead=4, dim_feedforward=512,
                                               dropout=0.1, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=2)
            self.fc = nn.Linear(d_model, 2)

        def forward(self, tokens):
            positions = lib.arange(tokens.shape[1])
            h = self.encoder(self.embedding(tokens) + self.position(positions))
            return self.fc(h.mean(dim=1))

    return TinyTransformer()


def image_batch(n, c, h, w, classes):
    rng = np.random.default_rng(0)
    return (rng.random((n, c, h, w), dtype=np.float32),
            rng.integers(0, classes, n).astype(np.int64))


def token_batch(n, length, vocab, classes, per_position=False):
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, (n, length)).astype(np.int64)
    y = rng.integers(0, classes, n * length if per_position else n).astype(np.int64)
    return x, y


ADAM = ("Adam", {"lr": 1e-3})
WORKLOADS = {
    # name: (model, batch, optimizer (name, kwargs), steps per rep, description)
    "W1": (w1_model, lambda: image_batch(128, 1, 28, 28, 10), ADAM, 8,
           "seed-000 CNN, batch 128, Adam"),
    "W2": (w2_model, lambda: image_batch(32, 1, 28, 28, 10), ADAM, 30,
           "seed-003 CNN, batch 32, Adam"),
    "W3": (w3_model, lambda: image_batch(128, 1, 28, 28, 10), ADAM, 100,
           "MLP 784-256-128-10, batch 128, Adam"),
    "W4": (w4_model, lambda: token_batch(64, 64, 100, 100, per_position=True), ADAM, 6,
           "char-LSTM (emb 64, LSTM 256, vocab 100), seq 64, batch 64"),
    "W5": (w5_model, lambda: token_batch(64, 400, 25000, 2), ADAM, 3,
           "TextCNN (emb 25,000×100, 3/4/5×100), seq 400, batch 64, Adam"),
    "W5b": (w5b_model, lambda: token_batch(64, 400, 25000, 2), ADAM, 3,
            "TextCNN as nn.Conv1d over (N, E, T), seq 400, batch 64, Adam"),
    "W6": (w6_model, lambda: image_batch(8, 3, 224, 224, 1000),
           ("SGD", {"lr": 0.01, "momentum": 0.9}), 2, "AlexNet 224×224, batch 8, SGD momentum"),
    "W7": (w7_model, lambda: token_batch(32, 128, 10000, 2), ADAM, 6,
           "Transformer encoder (2×d128, 4 heads, ff 512), seq 128, batch 32, Adam"),
}


def step_flops(model, x) -> float:
    """Floating-point operations of the conv and linear layers in one training step of a
    torch `model` on batch `x`: forward multiply-adds M, backward 2M (input gradient and
    weight gradient) except the input gradient of a layer fed by the batch itself, which no
    one needs; each multiply-add counts as 2 FLOPs. Elementwise work, pooling and the loss
    are left out, so this is the work a GEMM could do at the machine's ceiling.
    """
    import torch

    macs = []  # (forward multiply-adds, whether the layer's input needs a gradient)

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Linear):
            per_output = module.in_features
        else:  # ConvNd
            per_output = (module.in_channels // module.groups) * int(np.prod(module.kernel_size))
        macs.append((output.numel() * per_output, inputs[0].requires_grad))

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return 2.0 * sum(m * (3 if needs_input_grad else 2) for m, needs_input_grad in macs)
