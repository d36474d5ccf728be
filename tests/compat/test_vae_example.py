"""Mirrors PyTorch's examples/vae/main.py (https://github.com/pytorch/examples/tree/main/vae):
a fully connected variational autoencoder 784-400-20 with the reparameterization trick, the
summed binary cross-entropy plus KL loss, Adam 1e-3, and torchvision's `save_image` for the
samples and reconstructions. The only change besides the imports: a slice of MNIST's test
split (1,200 images, 3 epochs) so it stays a fast test; the example runs 10 full epochs."""

import os

import pytest

import shenjing as torch
import shenjing.vision as torchvision
from shenjing import nn, optim
from shenjing.nn import functional as F
from shenjing.vision import datasets, transforms
from shenjing.vision.utils import save_image

ROOT = os.environ.get("SHENJING_DATA", "../shared/data")


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        hidden = F.relu(self.fc1(x))
        return self.fc21(hidden), self.fc22(hidden)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def vae_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def test_vae_example_learns_to_reconstruct(tmp_path):
    if not os.path.isdir(os.path.join(ROOT, "mnist")):
        pytest.skip(f"MNIST not found under {ROOT}")
    torch.manual_seed(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    full = datasets.MNIST(ROOT, train=False, download=True, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(full, range(1200)),
                                         batch_size=128, shuffle=True)
    model = VAE().to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    epoch_losses = []
    for _ in range(3):
        model.train()
        total = 0.0
        for data, _ in loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = vae_loss(recon, data, mu, logvar)
            loss.backward()
            total += loss.item()
            optimizer.step()
        epoch_losses.append(total / len(loader.dataset))
    # An untrained decoder outputs ~0.5 everywhere: about 784·ln 2 ≈ 543 nats per image; the
    # same run on PyTorch (measured: 440 → 226 nats in three epochs) more than halves it.
    assert epoch_losses[0] < 543 and epoch_losses[-1] < 0.6 * epoch_losses[0], epoch_losses
    model.eval()
    with torch.no_grad():
        sample = model.decode(torch.randn(64, 20).to(device)).cpu()
        save_image(sample.view(64, 1, 28, 28), tmp_path / "sample.png")
        data, _ = next(iter(loader))
        recon, _, _ = model(data)
        comparison = torch.cat([data[:8], recon.view(data.size(0), 1, 28, 28)[:8]])
        save_image(comparison.cpu(), tmp_path / "reconstruction.png", nrow=8)
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(tmp_path / "sample.png") as img:  # 8×8 grid of 28-pixel tiles, 2-pixel padding
        assert img.size == (8 * 30 + 2, 8 * 30 + 2)
    with PIL.open(tmp_path / "reconstruction.png") as img:
        assert img.size == (8 * 30 + 2, 2 * 30 + 2)
    assert torchvision.datasets.MNIST is datasets.MNIST


def test_vision_namespace_is_torchvisions_layout():
    from shenjing import data, models, utils
    from shenjing.vision import models as vision_models
    assert torchvision.transforms.Normalize is data.transforms.Normalize
    assert torchvision.datasets.ImageFolder is data.datasets.ImageFolder
    assert torchvision.utils.make_grid is utils.make_grid
    net = vision_models.alexnet(num_classes=9)
    assert isinstance(net, models.AlexNet) and net.classifier[-1].out_features == 9
    with pytest.raises(ValueError, match="downloads no pretrained weights"):
        vision_models.alexnet(weights="IMAGENET1K_V1")
