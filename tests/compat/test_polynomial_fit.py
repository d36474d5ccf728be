"""Mirrors PyTorch's "Learning PyTorch with Examples" tutorial (the sin(x) polynomial fit):
first with raw tensors and autograd, updating weights by hand under no_grad, then the same
fit with nn.Sequential + nn.Flatten and an optimizer. Only the import line differs."""

import math

import shenjing as torch


def fit_with_autograd() -> float:
    dtype = torch.float
    device = torch.device("cpu")
    x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
    y = torch.sin(x)
    a, b, c, d = (torch.randn((), device=device, dtype=dtype, requires_grad=True)
                  for _ in range(4))
    learning_rate = 1e-6
    for _ in range(2000):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            for p in (a, b, c, d):
                p -= learning_rate * p.grad
                p.grad = None
    return loss.item()


def fit_with_nn() -> float:
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)
    p = torch.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    loss_fn = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    for _ in range(1500):
        loss = loss_fn(model(xx), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    linear_layer = model[0]
    assert linear_layer.weight[:, 0].item() > 0.5  # the x term of sin's series is ~ +0.85
    return loss.item()


def test_polynomial_fit_with_autograd_and_nn():
    assert fit_with_autograd() < 50.0  # the tutorial's fit ends near 9 (start: ~1e5)
    assert fit_with_nn() < 50.0
