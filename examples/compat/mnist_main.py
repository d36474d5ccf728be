"""Handwritten digits with a small convnet, the way PyTorch's MNIST example trains it.

Mirrors: pytorch/examples, mnist/main.py
    https://github.com/pytorch/examples/blob/main/mnist/main.py
Written anew for shenjing (only the imports name shenjing): the two-convolution `Net` with
dropout and `log_softmax`, `nll_loss`, Adadelta at lr 1.0 with `StepLR(step_size=1,
gamma=0.7)`, separate `train()`/`test()` functions with the example's log lines, its
command-line flags (`--batch-size`, `--test-batch-size`, `--epochs`, `--lr`, `--gamma`,
`--no-accel`, `--dry-run`, `--seed`, `--log-interval`, `--save-model`) and the
`torch.accelerator` device choice.

What changed, and why:
- epochs 14 -> 1 and `--train-limit 12000` images per epoch (the first 12,000 of the 60,000),
  so the default run ends in under 3 minutes on one core; `--train-limit 0 --epochs 14` is
  the example's own schedule. The whole 10,000-image test set is scored.
- MNIST is read from the local IDX files (`--data`, default `$SHENJING_DATA` or
  ../shared/data) with `download=False`: the machine is offline.
- `main(argv)` returns the final metrics so tests/test_examples_compat.py can run it small.

Run: OPENBLAS_NUM_THREADS=1 python examples/compat/mnist_main.py
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import shenjing as torch
import shenjing.nn as nn
import shenjing.nn.functional as F
import shenjing.optim as optim
from shenjing.data import transforms
from shenjing.data.datasets import MNIST
from shenjing.optim.lr_scheduler import StepLR

DEFAULT_DATA = os.environ.get("SHENJING_DATA") or str(
    Path(__file__).resolve().parents[3] / "shared" / "data")


class Net(nn.Module):
    """conv(1->32) -> conv(32->64) -> maxpool -> dropout -> fc(9216->128) -> dropout -> fc(10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def train(args, model, device, train_loader, optimizer, epoch) -> float:
    """One pass over the training loader; returns the mean training loss."""
    model.train()
    total, seen = 0.0, 0
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(data)
        seen += len(data)
        if batch_idx % args.log_interval == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/"
                  f"{len(train_loader.dataset)} "
                  f"({100.0 * batch_idx / len(train_loader):.0f}%)]\tLoss: {loss.item():.6f}")
        if args.dry_run:
            break
    return total / max(seen, 1)


def test(model, device, test_loader) -> tuple[float, float]:
    """Average negative log-likelihood and accuracy over the test loader."""
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            correct += output.argmax(dim=1).eq(target).sum().item()
    n = len(test_loader.dataset)
    test_loss /= n
    print(f"\nTest set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{n} "
          f"({100.0 * correct / n:.2f}%)\n")
    return test_loss, correct / n


test.__test__ = False  # the example's function name; not a pytest test


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="shenjing MNIST example")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-batch-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1, help="the example's default is 14")
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--no-accel", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--save-model", action="store_true")
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder holding mnist/")
    parser.add_argument("--train-limit", type=int, default=12000,
                        help="training images per epoch (0: all 60,000)")
    parser.add_argument("--test-limit", type=int, default=0, help="test images (0: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    use_accel = not args.no_accel and torch.accelerator.is_available()
    torch.manual_seed(args.seed)
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])
    train_set = MNIST(args.data, train=True, download=False, transform=transform)
    test_set = MNIST(args.data, train=False, download=False, transform=transform)
    if args.train_limit:
        train_set = torch.utils.data.Subset(train_set, range(args.train_limit))
    if args.test_limit:
        test_set = torch.utils.data.Subset(test_set, range(args.test_limit))
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size,
                                               shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=args.test_batch_size)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    started = time.perf_counter()
    train_losses = []
    for epoch in range(1, args.epochs + 1):
        train_losses.append(train(args, model, device, train_loader, optimizer, epoch))
        test_loss, accuracy = test(model, device, test_loader)
        scheduler.step()
    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")
    seconds = time.perf_counter() - started
    print(f"final: test accuracy {100 * accuracy:.2f}%, test loss {test_loss:.4f} "
          f"({seconds:.0f} s)")
    return {"test_accuracy": accuracy, "test_loss": test_loss, "train_losses": train_losses,
            "seconds": seconds}


if __name__ == "__main__":
    main()
