"""The seeds' models, PyTorch style (NCHW): seed CNNs, MLP, perceptron, AlexNet, TextCNN, char-LSTM.

`get_model(name, **kw)` builds one by the names the CLI and benchmarks use.
"""

from __future__ import annotations

from .. import nn
from ..nn import functional as F
from ..tensor import cat

__all__ = ["seed000_cnn", "seed003_cnn", "mlp", "Perceptron", "AlexNet", "TextCNN", "CharLSTM",
           "get_model", "MODELS"]


def seed000_cnn(in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
    """Seed 000 §3.4: Conv 32·3×3 → pool → Conv 64·3×3 → pool → Flatten → Dense 10 (28×28 in)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, num_classes),
    )


def seed003_cnn(in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
    """Seed 003 §5.2: Conv 32·3×3 → pool → Flatten → Dense 128 relu → Dense 10 (28×28 in)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Linear(128, num_classes),
    )


def mlp(sizes=(784, 256, 128, 10), activation: type = nn.ReLU) -> nn.Sequential:
    """Seed 001's multilayer perceptron: Linear layers with an activation between them."""
    layers: list = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class Perceptron(nn.Module):
    """Seed 000 §2.1.1: f(x) = sigmoid(w·x + b); train with hinge_loss(margin=0) + L2."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1)

    def forward(self, x):
        return self.linear(x).squeeze(-1).sigmoid()


class AlexNet(nn.Module):
    """Seed 004 §4.1's AlexNet, PyTorch's layout (features, avgpool 6×6, classifier)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


class TextCNN(nn.Module):
    """Seed 004 §4.2's TextCNN (Kim 2014): embedding, parallel convolutions, max over time."""

    def __init__(self, vocab_size: int, embed_dim: int = 100, n_filters: int = 100,
                 filter_sizes=(3, 4, 5), output_dim: int = 2, dropout: float = 0.5,
                 padding_idx: int | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.convs = nn.ModuleList([nn.Conv2d(1, n_filters, (k, embed_dim))
                                    for k in filter_sizes])
        self.fc = nn.Linear(len(filter_sizes) * n_filters, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text):
        """text: (N, L) token ids -> (N, output_dim) logits."""
        embedded = self.embedding(text).unsqueeze(1)  # (N, 1, L, E)
        conved = [F.relu(conv(embedded)).squeeze(3) for conv in self.convs]
        pooled = [c.amax(dim=2) for c in conved]
        return self.fc(self.dropout(cat(pooled, dim=1)))


class CharLSTM(nn.Module):
    """Character language model: embedding → LSTM → linear over the vocabulary."""

    def __init__(self, vocab_size: int = 100, embed_dim: int = 64, hidden_size: int = 256,
                 num_layers: int = 1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, state=None):
        """x: (N, L) character ids -> (N, L, vocab) logits and the LSTM state."""
        out, state = self.lstm(self.embedding(x), state)
        return self.fc(out), state


MODELS = {
    "seed000-cnn": seed000_cnn,
    "seed003-cnn": seed003_cnn,
    "mlp": mlp,
    "alexnet": AlexNet,
}


def get_model(name: str, **kwargs) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)
