"""Shared by the nn layer tests: run a shenjing module and its torch twin on the same weights
and inputs and compare outputs, input gradients and parameter gradients under a random
upstream gradient (never `.sum()`, which would hide transposed or mis-scaled gradients)."""

from __future__ import annotations

import zlib

import numpy as np

import shenjing as sj


def to_sj(a: np.ndarray, grad: bool = False) -> sj.Tensor:
    t = sj.tensor(np.array(a))
    return t.requires_grad_(True) if grad and t.dtype.kind == "f" else t


def to_torch(torch, a: np.ndarray, grad: bool = False):
    t = torch.from_numpy(np.array(a))
    return t.requires_grad_(True) if grad and t.is_floating_point() else t


def load_from_torch(sj_module, torch_module) -> None:
    """Copy torch's state_dict into the shenjing module with strict=True (names must agree)."""
    state = {k: v.detach().numpy().copy() for k, v in torch_module.state_dict().items()}
    sj_module.load_state_dict(state, strict=True)


def _flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [o for x in out for o in _flat(x)]
    return [out]


def compare(torch, sj_module, torch_module, inputs: list, name: str, call=None,
            rtol: float = 1e-4, atol: float = 1e-5, grad_rtol: float = 1e-4,
            grad_atol: float = 1e-5, check_params: bool = True) -> list:
    """Forward, input grads and parameter grads of both modules; returns shenjing outputs.

    `inputs` are arrays; float ones require grad. `call(module, *xs)` runs a module (default
    `module(*xs)`). Outputs that are None in torch must be None here too.
    """
    call = call or (lambda m, *xs: m(*xs))
    sj_module.zero_grad()
    xs = [to_sj(a, True) for a in inputs]
    ts = [to_torch(torch, a, True) for a in inputs]
    outs, touts = _flat(call(sj_module, *xs)), _flat(call(torch_module, *ts))
    assert len(outs) == len(touts), f"{name}: {len(outs)} outputs, torch {len(touts)}"
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    pairs = []
    for k, (o, t) in enumerate(zip(outs, touts)):
        if t is None:
            assert o is None, f"{name}: output {k} should be None"
            continue
        assert tuple(o.shape) == tuple(t.shape), f"{name}: output {k} {o.shape} vs {t.shape}"
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"{name}: output {k}")
        if t.requires_grad:
            assert o.requires_grad, f"{name}: output {k} does not require grad"
            pairs.append((o, t, rng.standard_normal(tuple(t.shape)).astype(o.dtype)))
    if not pairs:
        return outs
    for o, _, g in pairs:
        o.backward(sj.tensor(g), retain_graph=True)
    leaves_t = [t for t in ts if t.requires_grad]
    params_t = [p for p in torch_module.parameters() if p.requires_grad] if check_params else []
    grads = torch.autograd.grad([t for _, t, _ in pairs], leaves_t + params_t,
                                [torch.from_numpy(g) for _, _, g in pairs], allow_unused=True)
    leaves = [x for x in xs if x.requires_grad]
    for i, (x, g) in enumerate(zip(leaves, grads[:len(leaves)])):
        want = np.zeros(x.shape, x.dtype) if g is None else g.numpy()
        got = np.zeros(x.shape, x.dtype) if x.grad is None else x.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=grad_rtol, atol=grad_atol,
                                   err_msg=f"{name}: grad of input {i}")
    if check_params:
        named = dict(sj_module.named_parameters())
        tnamed = [n for n, p in torch_module.named_parameters() if p.requires_grad]
        for pname, g in zip(tnamed, grads[len(leaves):]):
            p = named[pname]
            want = np.zeros(p.shape, p.dtype) if g is None else g.numpy()
            got = np.zeros(p.shape, p.dtype) if p.grad is None else p.grad.numpy()
            np.testing.assert_allclose(got, want, rtol=grad_rtol, atol=grad_atol,
                                       err_msg=f"{name}: grad of parameter {pname}")
    return outs
