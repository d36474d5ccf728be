"""Mirrors PyTorch's "Quickstart" tutorial: FashionMNIST through DataLoader, the
NeuralNetwork class (Flatten + a Linear/ReLU stack), the accelerator-or-CPU device line,
CrossEntropyLoss with SGD in train()/test() loops, then saving and reloading the
state_dict and predicting a class name; on a real 1,200-image slice."""

import os

import pytest

import shenjing as torch
from shenjing import nn
from shenjing.data.datasets import FashionMNIST
from shenjing.data.transforms import ToTensor
from shenjing.utils.data import DataLoader, Subset

ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
            nn.Linear(128, 10))

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def train(dataloader, model, loss_fn, optimizer, device):
    model.train()
    for X, y in dataloader:
        X, y = X.to(device), y.to(device)
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test(dataloader, model, loss_fn, device):
    size, num_batches = len(dataloader.dataset), len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    return test_loss / num_batches, correct / size


test.__test__ = False  # the tutorial's name; not a pytest test itself


def test_quickstart_trains_and_reloads(tmp_path):
    if not os.path.isdir(ROOT):
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    torch.manual_seed(0)
    data = FashionMNIST(root=ROOT, train=False, download=False, transform=ToTensor())
    training_data, test_data = Subset(data, range(1200)), Subset(data, range(8000, 8500))
    train_dataloader = DataLoader(training_data, batch_size=32, shuffle=True)
    test_dataloader = DataLoader(test_data, batch_size=64)
    X, y = next(iter(test_dataloader))
    assert X.shape == torch.Size([64, 1, 28, 28]) and y.dtype == torch.int64

    device = (torch.accelerator.current_accelerator().type
              if torch.accelerator.is_available() else "cpu")
    model = NeuralNetwork().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.15)
    for _ in range(4):
        train(train_dataloader, model, loss_fn, optimizer, device)
    loss, accuracy = test(test_dataloader, model, loss_fn, device)
    assert accuracy > 0.6 and loss < 1.0, (accuracy, loss)  # chance: 0.1, 2.3

    torch.save(model.state_dict(), tmp_path / "model.pth")
    model = NeuralNetwork().to(device)
    model.load_state_dict(torch.load(tmp_path / "model.pth", weights_only=True))
    model.eval()
    x, y = test_data[0][0], test_data[0][1]
    with torch.no_grad():
        pred = model(x.to(device))
        predicted, actual = CLASSES[pred[0].argmax(0)], CLASSES[y]
    assert predicted in CLASSES and actual == CLASSES[data[8000][1]]
