"""An image classifier trained the way PyTorch's "Training a Classifier" tutorial does it.

Mirrors: PyTorch tutorial "Training a Classifier" (Deep Learning with PyTorch: A 60 Minute
Blitz, the CIFAR-10 tutorial)
    https://pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html
Written anew for shenjing (only the imports name shenjing): a torchvision-style dataset with
`Compose([ToTensor(), Normalize((0.5,)*3, (0.5,)*3)])`, DataLoaders of batch 4, the
tutorial's LeNet-like `Net` (conv 3->6, 5x5 -> maxpool -> conv 6->16, 5x5 -> maxpool ->
fc 400->120->84->classes), CrossEntropyLoss, SGD(lr=0.001, momentum=0.9), the running-loss
print every `--print-every` mini-batches, a grid of sample images through
`utils.save_image`, the model saved with `torch.save(net.state_dict(), PATH)` and loaded
into a fresh Net, overall test accuracy, then per-class accuracy.

What changed, and why:
- data: the emoji ImageFolder (../shared/data/emoji, 1,906 real 64x64 Noto emoji in 9
  classes) resized to 32x32, with a seeded 80/20 `random_split` for train/test, instead
  of CIFAR-10 (10 classes, 50,000 + 10,000 images), which is not available offline.
  The emoji are in RGBA; ImageFolder's loader converts them to RGB as torchvision's does.
- epochs 2 -> 12: the tutorial's 2 epochs over 50,000 images are 25,000 SGD steps; 12
  epochs over 1,525 images are about 4,600 steps and take under 2 minutes here.
- the checkpoint and the image grid go to a temporary folder (or `--out`), not the
  working directory; `main(argv)` returns the metrics for tests/test_examples_compat.py.

Run: OPENBLAS_NUM_THREADS=1 python examples/compat/training_a_classifier.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import shenjing as torch
import shenjing.nn as nn
import shenjing.nn.functional as F
import shenjing.optim as optim
from shenjing.data import transforms
from shenjing.data.datasets import ImageFolder

DEFAULT_ROOT = os.path.join(os.environ.get("SHENJING_DATA") or str(
    Path(__file__).resolve().parents[3] / "shared" / "data"), "emoji")


class Net(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="'Training a Classifier' on the emoji folder")
    p.add_argument("--data", default=DEFAULT_ROOT, help="an ImageFolder root")
    p.add_argument("--epochs", type=int, default=12, help="the tutorial runs 2 (on CIFAR-10)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--limit", type=int, default=0, help="images used in all (0: every one)")
    p.add_argument("--print-every", type=int, default=200)
    p.add_argument("--out", default=None, help="folder for cifar_net.pth and the grid PNG")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    transform = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor(),
                                    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    dataset = ImageFolder(args.data, transform=transform)
    classes = tuple(dataset.classes)
    if args.limit:
        keep = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(1))
        dataset = torch.utils.data.Subset(dataset, keep[: args.limit].tolist())
    n_test = len(dataset) // 5
    trainset, testset = torch.utils.data.random_split(
        dataset, [len(dataset) - n_test, n_test], generator=torch.Generator().manual_seed(42))
    trainloader = torch.utils.data.DataLoader(trainset, batch_size=args.batch_size,
                                              shuffle=True)
    testloader = torch.utils.data.DataLoader(testset, batch_size=args.batch_size,
                                             shuffle=False)
    print(f"{len(trainset)} training / {len(testset)} test images, classes: {classes}")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        images, labels = next(iter(trainloader))
        torch.utils.save_image(images / 2 + 0.5, out / "sample_grid.png")  # unnormalized
        print("sample:", " ".join(f"{classes[labels[j]]:5s}" for j in range(len(labels))))

        net = Net(len(classes))
        criterion = nn.CrossEntropyLoss()
        optimizer = optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
        started = time.perf_counter()
        epoch_losses = []
        for epoch in range(args.epochs):
            running_loss, epoch_loss = 0.0, 0.0
            for i, data in enumerate(trainloader, 0):
                inputs, labels = data
                optimizer.zero_grad()
                loss = criterion(net(inputs), labels)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
                epoch_loss += loss.item()
                if i % args.print_every == args.print_every - 1:
                    print(f"[{epoch + 1}, {i + 1:5d}] loss: "
                          f"{running_loss / args.print_every:.3f}")
                    running_loss = 0.0
            epoch_losses.append(epoch_loss / len(trainloader))
        print("Finished Training")

        path = out / "cifar_net.pth"
        torch.save(net.state_dict(), path)
        net = Net(len(classes))
        net.load_state_dict(torch.load(path, weights_only=True))

    correct, total = 0, 0
    correct_pred = {name: 0 for name in classes}
    total_pred = {name: 0 for name in classes}
    with torch.no_grad():
        for images, labels in testloader:
            predictions = net(images).argmax(1)
            total += labels.size(0)
            correct += (predictions == labels).sum().item()
            for label, prediction in zip(labels, predictions):
                total_pred[classes[label]] += 1
                correct_pred[classes[label]] += int(label == prediction)
    seconds = time.perf_counter() - started
    accuracy = correct / total
    print(f"Accuracy of the network on the {total} test images: {100 * accuracy:.1f} %")
    for name, count in correct_pred.items():
        if total_pred[name]:
            print(f"Accuracy for class: {name:20s} is "
                  f"{100 * count / total_pred[name]:.1f} %")
    print(f"final: test accuracy {100 * accuracy:.2f}% over {len(classes)} classes "
          f"in {seconds:.0f} s")
    return {"test_accuracy": accuracy, "epoch_losses": epoch_losses, "seconds": seconds}


if __name__ == "__main__":
    main()
