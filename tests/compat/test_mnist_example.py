"""Mirrors PyTorch's examples/mnist/main.py: the Net with two convolutions, max-pooling,
dropout and F.log_softmax, trained with F.nll_loss, Adadelta and a StepLR(gamma=0.7)
schedule through train()/test() functions, on a real MNIST slice (narrower layers and a
few hundred images, so it stays a fast test)."""

import os

import pytest

import shenjing as torch
import shenjing.nn as nn
import shenjing.nn.functional as F
import shenjing.optim as optim
from shenjing.data import transforms
from shenjing.data.datasets import MNIST
from shenjing.optim.lr_scheduler import StepLR

ROOT = os.environ.get("SHENJING_DATA", "../shared/data")  # holds mnist/


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 12 * 12, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def train(model, device, train_loader, optimizer):
    model.train()
    for data, target in train_loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()


def test(model, device, test_loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    n = len(test_loader.dataset)
    return test_loss / n, correct / n


test.__test__ = False  # the example's name; not a pytest test itself


def test_mnist_example_learns_digits():
    if not os.path.isdir(os.path.join(ROOT, "mnist")):
        pytest.skip(f"MNIST not found under {ROOT}")
    torch.manual_seed(1)
    use_accel = torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])
    full = MNIST(ROOT, train=False, download=False, transform=transform)
    train_set = torch.utils.data.Subset(full, range(0, 600))
    test_set = torch.utils.data.Subset(full, range(5000, 5300))
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=32, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=100)
    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    for _ in range(3):
        train(model, device, train_loader, optimizer)
        scheduler.step()
    loss, accuracy = test(model, device, test_loader)
    assert abs(optimizer.param_groups[0]["lr"] - 0.7 ** 3) < 1e-9
    assert accuracy > 0.8, accuracy  # chance is 0.1
    assert loss < 0.7, loss
