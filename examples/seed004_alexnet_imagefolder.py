"""Seed 004 §4.1: AlexNet trained on an ImageFolder through a DataLoader, run on shenjing.

Run from the repository root (the emoji set: 1,906 real 64×64 PNGs in 9 class folders):
    python examples/seed004_alexnet_imagefolder.py [--data ../shared/data/emoji] [--epochs 20]

Lines that differ from the seed, and why:
- imports: `import torch.nn as nn` -> `import shenjing.nn as nn`; `import torchvision.models
  as models` dropped (unused by the seed); `from torchvision import transforms` ->
  `from shenjing.data import transforms`; `from torchvision.datasets import ImageFolder` ->
  `from shenjing.data.datasets import ImageFolder`; `from torch.utils.data import DataLoader`
  -> `from shenjing.data import DataLoader`; the seed uses `torch` and `optim` without
  importing them: added `import shenjing as torch` and `import shenjing.optim as optim`.
- data: the seed's ImageNet download (an unsafe `tarfile.extractall`) is replaced by a local
  ImageFolder path (`--data`); the seed trains and tests on the same folder, which measures
  nothing, so the folder is split 80/20 with `random_split` (seeded) into train and test sets.
- `AlexNet()` -> `AlexNet(num_classes=len(dataset.classes))`: 9 classes, not ImageNet's 1000.
- added `model.eval()` before testing: the seed tests with Dropout still active.
- epochs and a per-epoch print are arguments/additions; the seed's 20 epochs stay the default.
The model, transforms (Resize(227), ToTensor()), DataLoader settings (batch 64, shuffle,
num_workers=2), loss, optimizer (Adam, default lr) and loops are the seed's.
"""

import argparse
import time

import shenjing as torch
import shenjing.nn as nn
import shenjing.optim as optim
from shenjing.data import DataLoader, random_split
from shenjing.data import transforms
from shenjing.data.datasets import ImageFolder


class AlexNet(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            # conv1
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),

            # conv2
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),

            # conv3
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),

            # conv4
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),

            # conv5
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )

        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        x = self.classifier(x)
        return x


parser = argparse.ArgumentParser()
parser.add_argument("--data", default="../shared/data/emoji")
parser.add_argument("--epochs", type=int, default=20)
args = parser.parse_args()
torch.manual_seed(0)

transform = transforms.Compose([transforms.Resize(227),
                                transforms.ToTensor()])

dataset = ImageFolder(args.data, transform=transform)
n_test = len(dataset) // 5
trainset, testset = random_split(dataset, [len(dataset) - n_test, n_test],
                                 generator=torch.Generator().manual_seed(0))
trainloader = DataLoader(trainset, batch_size=64, shuffle=True, num_workers=2)

model = AlexNet(num_classes=len(dataset.classes))
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters())

for epoch in range(args.epochs):
    t0, running = time.perf_counter(), 0.0
    for i, (inputs, labels) in enumerate(trainloader):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running += loss.item()
    print(f"epoch {epoch + 1}/{args.epochs}: loss {running / (i + 1):.4f} "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)

testloader = DataLoader(testset, batch_size=64, shuffle=False, num_workers=2)

model.eval()
correct = 0
total = 0
with torch.no_grad():
    for data in testloader:
        images, labels = data
        outputs = model(images)
        _, predicted = torch.max(outputs.data, dim=1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()

print('Accuracy of the network on the {} test images: {:.2f}%'.format(len(testset), 100 * correct / total))
