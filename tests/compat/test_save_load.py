"""Mirrors PyTorch's "Saving and Loading Models" tutorial: save a model's state_dict, load it
into a fresh instance and call eval(); save a general checkpoint (epoch, model and optimizer
state, loss) and resume training from it. Saving a whole model object is the one deliberate
difference: shenjing never pickles, and says how to save the state_dict instead."""

import pytest

import shenjing as torch
import shenjing.nn as nn
import shenjing.nn.functional as F
import shenjing.optim as optim


class TheModelClass(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        return self.fc2(F.relu(self.fc1(x)))


def test_state_dict_and_checkpoint_round_trip(tmp_path):
    model = TheModelClass()
    optimizer = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    x, target = torch.randn(4, 3, 32, 32), torch.tensor([1, 2, 3, 4])
    for _ in range(2):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        optimizer.step()
    assert list(model.state_dict()) == ["conv1.weight", "conv1.bias", "conv2.weight",
                                        "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight",
                                        "fc2.bias"]
    assert model.state_dict()["conv1.weight"].size() == torch.Size([6, 3, 5, 5])

    path = tmp_path / "model_weights.pth"
    torch.save(model.state_dict(), path)
    restored = TheModelClass()
    restored.load_state_dict(torch.load(path, weights_only=True))
    restored.eval()
    model.eval()
    assert torch.equal(restored(x), model(x))

    ckpt = tmp_path / "checkpoint.tar"
    torch.save({"epoch": 2, "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(), "loss": loss}, ckpt)
    model2 = TheModelClass()
    optimizer2 = optim.SGD(model2.parameters(), lr=0.001, momentum=0.9)
    checkpoint = torch.load(ckpt)
    model2.load_state_dict(checkpoint["model_state_dict"])
    optimizer2.load_state_dict(checkpoint["optimizer_state_dict"])
    assert checkpoint["epoch"] == 2 and abs(float(checkpoint["loss"]) - loss.item()) < 1e-6
    model.train()
    model2.train()
    for m, o in ((model, optimizer), (model2, optimizer2)):  # resumed = continued
        o.zero_grad()
        F.cross_entropy(m(x), target).backward()
        o.step()
    assert torch.allclose(model2.fc2.weight, model.fc2.weight, atol=1e-6)

    with pytest.raises(TypeError, match="state_dict"):
        torch.save(model, tmp_path / "model.pth")
