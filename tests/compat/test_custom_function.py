"""Mirrors PyTorch's "Defining new autograd functions" tutorial: a Legendre polynomial
P3 layer written as a custom `torch.autograd.Function` (forward / backward staticmethods,
ctx.save_for_backward, ctx.saved_tensors, `.apply`) fitting sin(x), plus the MyReLU example
(clamp, clone, masked assignment): forward and backward receive and return tensors, as in
torch."""

import math

import shenjing as torch


class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


class MyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


def test_legendre_fit_and_my_relu():
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)
    a = torch.full((), 0.0, requires_grad=True)
    b = torch.full((), -1.0, requires_grad=True)
    c = torch.full((), 0.0, requires_grad=True)
    d = torch.full((), 0.3, requires_grad=True)
    first = None
    for _ in range(1000):
        P3 = LegendrePolynomial3.apply
        y_pred = a + b * P3(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        first = loss.item() if first is None else first
        loss.backward()
        with torch.no_grad():
            for p in (a, b, c, d):
                p -= 5e-6 * p.grad
                p.grad = None
    assert loss.item() < first / 10 and loss.item() < 100

    z = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    out = MyReLU.apply(z)
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert out.tolist() == [0.0, 0.5, 2.0] and z.grad.tolist() == [0.0, 2.0, 3.0]
    assert torch.autograd.gradcheck(MyReLU.apply, (torch.tensor([-1.0, 0.5], dtype=torch.double,
                                                                requires_grad=True),))
