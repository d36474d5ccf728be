"""Seed 004 §4.1's AlexNet and a small ResNet of basic blocks (torchvision's parameter names)."""

from __future__ import annotations

from .. import nn

__all__ = ["AlexNet", "BasicBlock", "ResNet"]


class AlexNet(nn.Module):
    """AlexNet in PyTorch's layout (features, avgpool 6×6, classifier); 3×H×W in, H, W ≥ 63."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
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


class BasicBlock(nn.Module):
    """Two 3×3 conv + batch-norm layers with an identity (or 1×1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet(nn.Module):
    """A small ResNet for small images (He et al. 2016, CIFAR variant): a 3×3 stem, stages of
    basic blocks (the first block of each later stage halves the resolution), global average
    pooling and a linear head.

    Args:
        blocks: basic blocks per stage, e.g. (2, 2, 2).
        widths: channels per stage, e.g. (16, 32, 64).
        in_channels, num_classes: input channels and classes.
    """

    def __init__(self, blocks=(2, 2, 2), widths=(16, 32, 64), in_channels: int = 1,
                 num_classes: int = 10) -> None:
        super().__init__()
        blocks, widths = tuple(blocks), tuple(widths)
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1:
            raise ValueError(f"ResNet: blocks {blocks} and widths {widths} must be non-empty, "
                             "of equal length, with at least one block per stage")
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        in_planes = widths[0]
        for stage, (count, planes) in enumerate(zip(blocks, widths), start=1):
            stride = 1 if stage == 1 else 2
            layers = []
            for i in range(count):
                layers.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            setattr(self, f"layer{stage}", nn.Sequential(*layers))
        self.num_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for stage in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{stage}")(x)
        return self.fc(self.avgpool(x).flatten(1))
