"""Mirrors PyTorch's "Transfer Learning for Computer Vision" tutorial, fixed-feature-extractor
half: a network trained on one task (MNIST digits 0-4 here, standing in for ImageNet) has
every parameter frozen with `requires_grad = False`, its final `fc` replaced by a new
nn.Linear (`model.fc.in_features`), and only that layer trained on a new task (digits 5-9)
with SGD + momentum and lr_scheduler.StepLR, keeping the best weights with
copy.deepcopy(model.state_dict()) as the tutorial's train_model does."""

import copy
import os

import pytest

import shenjing as torch
import shenjing.nn as nn
import shenjing.optim as optim
from shenjing.data import transforms
from shenjing.data.datasets import MNIST
from shenjing.optim import lr_scheduler

ROOT = os.environ.get("SHENJING_DATA", "../shared/data")


class SmallNet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Flatten())
        self.fc = nn.Linear(16 * 4 * 4, classes)

    def forward(self, x):
        return self.fc(self.features(x))


def subset(data, digits, start, count):
    picked = [i for i in range(start, len(data.targets)) if int(data.targets[i]) in digits]
    return torch.utils.data.Subset(data, picked[:count])


def run_epochs(model, loader, optimizer, scheduler, epochs, offset):
    criterion = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for inputs, labels in loader:
            optimizer.zero_grad()
            with torch.set_grad_enabled(True):
                loss = criterion(model(inputs), labels - offset)
                loss.backward()
                optimizer.step()
        if scheduler is not None:
            scheduler.step()


def accuracy(model, loader, offset):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in loader:
            _, preds = torch.max(model(inputs), 1)
            correct += torch.sum(preds == labels - offset).item()
            total += labels.size(0)
    return correct / total


def test_frozen_features_new_head():
    if not os.path.isdir(os.path.join(ROOT, "mnist")):
        pytest.skip("MNIST not found")
    torch.manual_seed(0)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    data = MNIST(ROOT, train=False, download=False, transform=tf)
    loader = torch.utils.data.DataLoader
    pretrain = loader(subset(data, range(5), 0, 500), batch_size=32, shuffle=True)
    new_train = loader(subset(data, range(5, 10), 0, 300), batch_size=32, shuffle=True)
    new_val = loader(subset(data, range(5, 10), 6000, 300), batch_size=100)

    model = SmallNet(5)
    run_epochs(model, pretrain, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), None,
               2, 0)

    model_conv = model
    for param in model_conv.parameters():
        param.requires_grad = False
    num_ftrs = model_conv.fc.in_features
    model_conv.fc = nn.Linear(num_ftrs, 5)
    frozen_before = copy.deepcopy(model_conv.features.state_dict())
    optimizer_conv = optim.SGD(model_conv.fc.parameters(), lr=0.01, momentum=0.9)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_conv, step_size=2, gamma=0.1)

    best_acc, best_model_wts = 0.0, copy.deepcopy(model_conv.state_dict())
    for _ in range(3):
        run_epochs(model_conv, new_train, optimizer_conv, exp_lr_scheduler, 1, 5)
        acc = accuracy(model_conv, new_val, 5)
        if acc > best_acc:
            best_acc, best_model_wts = acc, copy.deepcopy(model_conv.state_dict())
    model_conv.load_state_dict(best_model_wts)

    for name, value in model_conv.features.state_dict().items():
        assert torch.equal(value, frozen_before[name]), f"frozen {name} changed"
    assert abs(optimizer_conv.param_groups[0]["lr"] - 0.001) < 1e-12
    assert accuracy(model_conv, new_val, 5) == best_acc
    assert best_acc > 0.8, best_acc  # chance is 0.2: the frozen features transfer
