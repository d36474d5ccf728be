"""Image classifiers of the seeds: the seed CNNs, the MLP and the perceptron (NCHW input).

Layer names follow PyTorch's `nn.Sequential` numbering, so a torch model built the same way
has the same `state_dict` keys and its weights load unchanged.
"""

from __future__ import annotations

from .. import nn

__all__ = ["seed000_cnn", "seed003_cnn", "MLP", "mlp", "Perceptron", "ACTIVATIONS"]

ACTIVATIONS: dict[str, type] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                                "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


def _check_size(model: str, image_size: int, smallest: int) -> None:
    if not isinstance(image_size, int) or image_size < smallest:
        raise ValueError(f"{model}: image_size must be an int >= {smallest}, got {image_size!r}")


def seed000_cnn(in_channels: int = 1, num_classes: int = 10,
                image_size: int = 28) -> nn.Sequential:
    """Seed 000 §3.4: Conv 32·3×3 → pool → Conv 64·3×3 → pool → Flatten → Dense (28×28 in)."""
    _check_size("seed000_cnn", image_size, 10)
    side = ((image_size - 2) // 2 - 2) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * side * side, num_classes),
    )


def seed003_cnn(in_channels: int = 1, num_classes: int = 10,
                image_size: int = 28) -> nn.Sequential:
    """Seed 003 §5.2: Conv 32·3×3 → pool → Flatten → Dense 128 relu → Dense (28×28 in)."""
    _check_size("seed003_cnn", image_size, 4)
    side = (image_size - 2) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * side * side, 128), nn.ReLU(), nn.Linear(128, num_classes),
    )


class MLP(nn.Sequential):
    """Seed 001's multilayer perceptron: Flatten, then Linear layers with an activation
    (and optional dropout) between them; no activation after the last layer (logits).

    Args:
        sizes: layer widths, input first: (784, 256, 128, 10).
        activation: a name from `ACTIVATIONS` or a Module class.
        dropout: probability of the Dropout after each hidden activation (0: none).
    """

    def __init__(self, sizes=(784, 256, 128, 10), activation: str | type = "relu",
                 dropout: float = 0.0) -> None:
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP: sizes needs at least two positive widths, got {sizes}")
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(f"MLP: unknown activation {activation!r}; choose one of "
                                 f"{sorted(ACTIVATIONS)}")
            activation = ACTIVATIONS[activation]
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout}")
        layers: list = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(activation())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
        self.sizes = sizes


def mlp(sizes=(784, 256, 128, 10), activation: str | type = "relu",
        dropout: float = 0.0) -> MLP:
    """The older function name for `MLP`."""
    return MLP(sizes, activation, dropout)


class Perceptron(nn.Module):
    """Seed 000 §2.1.1: f(x) = sigmoid(w·x + b); train with hinge_loss(margin=0) + L2.

    Images are flattened, so it takes (N, C, H, W) as well as (N, in_features).
    """

    def __init__(self, in_features: int = 784) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1)

    def forward(self, x):
        if x.ndim > 2:
            x = x.flatten(1)
        return self.linear(x).squeeze(-1).sigmoid()
