"""One table of op specs: every core op, the shapes it is tried on, and how to compare it.

A row's `op(lib, *tensors)` is written once against the API shenjing shares with PyTorch and
is run with `lib = shenjing` and `lib = torch` (a row whose torch spelling differs gives
`torch_op`). Inputs are drawn from each argument's domain with a per-row seed, so a failure
always reproduces. `covers` names the Function classes the row exercises: tests/test_ops.py
checks that the row really applies them and that every Function in the core op modules has
a row. Broadcasting, keepdim, negative dims, empty and 0-d tensors are rows of their own.

Tolerances are float32's: forward rtol 1e-5 (a few ulps after one or two roundings);
backward atol/rtol 1e-5 (products of O(1) values with an O(1) random upstream gradient).
A row changes them only where its arithmetic says so (outputs of 2e4 from 1e4 logits).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from shenjing.ops import elementwise as E
from shenjing.ops import linalg as L
from shenjing.ops import movement as M
from shenjing.ops import reduce as R

__all__ = ["Arg", "OpSpec", "OPS", "make_inputs"]


@dataclass(frozen=True)
class Arg:
    """One input: its shape and where its values come from.

    Floats are uniform in [low, high] (with `signed`, |x| is and the sign is random, which
    keeps denominators and log-of-abs away from 0); ints are uniform in [low, high);
    `zeros` lists flat positions set to exactly 0 (prod's zero cases).
    """

    shape: tuple
    low: float = -2.0
    high: float = 2.0
    kind: str = "float"  # "float" | "int" | "bool"
    signed: bool = False
    zeros: tuple = ()


@dataclass(frozen=True)
class OpSpec:
    name: str
    op: Callable[..., Any]
    args: tuple
    covers: tuple
    torch_op: Callable[..., Any] | None = None
    avoid: tuple = ()  # kinks (relu at 0, clamp's bounds): values kept ~0.05 away
    distinct: bool = False  # all float values pairwise distinct: no ties for max/min
    rtol: float = 1e-5
    atol: float = 1e-6
    grad_rtol: float = 1e-5
    grad_atol: float = 1e-5
    grad: bool = True  # differentiable (False: forward against torch only)
    gradcheck: bool = True

    def __repr__(self) -> str:
        return self.name


def _arg(a) -> Arg:
    return a if isinstance(a, Arg) else Arg(tuple(a))


def _assigned(a, index, v):
    """`a * 1` with `[index] = v` written in place: the graph form of x[index] = v."""
    c = a * 1
    c[index] = v
    return c


def _copied(a, v):
    c = a * 1
    c.copy_(v)
    return c


def row(name: str, op, args, covers, **kw) -> OpSpec:
    """A table row; `args` holds shapes or Args, `covers` one Function class or a tuple."""
    covers = covers if isinstance(covers, tuple) else (covers,)
    return OpSpec(name, op, tuple(_arg(a) for a in args), covers, **kw)


def make_inputs(spec: OpSpec) -> list[np.ndarray]:
    """The row's input arrays (float32 / int64 / bool), the same on every call."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    floats = [a for a in spec.args if a.kind == "float"]
    pool = None
    if spec.distinct:  # a jittered grid in a random order: gaps of at least half a step
        n = sum(int(np.prod(a.shape)) for a in floats)
        pool = iter((rng.permutation(n) + 0.5 + rng.uniform(-0.25, 0.25, n)) / max(n, 1))
    out = []
    for a in spec.args:
        if a.kind == "int":
            out.append(rng.integers(int(a.low), int(a.high), a.shape).astype(np.int64))
            continue
        if a.kind == "bool":
            out.append(rng.random(a.shape) < 0.5)
            continue
        size = int(np.prod(a.shape))
        u = rng.random(size) if pool is None else np.array([next(pool) for _ in range(size)])
        x = a.low + (a.high - a.low) * u
        for k in spec.avoid:
            near = np.abs(x - k) < 0.05
            x[near] = k + np.where(x[near] < k, -0.05, 0.05) - 0.1 * (x[near] - k)
        if a.signed:
            x *= rng.choice([-1.0, 1.0], size)
        x = x.reshape(a.shape)
        if a.zeros:
            x.reshape(-1)[list(a.zeros)] = 0.0
        out.append(x.astype(np.float32))
    return out


def _torch_nnf(lib):
    return lib.nn.functional


# Fixed non-differentiable operands (masks, indices): module constants, so both libraries
# and every test see the same ones.
MASK34 = np.array(
    [[True, False, True, True], [False, False, True, False], [True, True, False, True]]
)
MASK4 = np.array([True, False, False, True])
IDX_REPEAT = [0, 2, 0, 0, 1]
GATHER_IDX = np.array([[0, 0, 3], [2, 1, 2], [3, 3, 3]])

POS = dict(low=0.2, high=3.0)  # log, sqrt, fractional powers
NONZERO = dict(low=0.5, high=2.0, signed=True)  # denominators

# fmt: off
OPS: list[OpSpec] = [
    # ------------------------------------------------------------------ arithmetic
    row("add", lambda lib, a, b: a + b, [(3, 4), (3, 4)], E.Add),
    row("add_bcast_2d", lambda lib, a, b: a + b, [(3, 1), (1, 4)], E.Add),
    row("add_bcast_3d", lambda lib, a, b: a + b, [(2, 3, 4), (4,)], E.Add),
    row("add_0d_1d", lambda lib, a, b: a + b, [(), (3,)], E.Add),
    row("add_0d_0d", lambda lib, a, b: a + b, [(), ()], E.Add),
    row("add_empty", lambda lib, a, b: a + b, [(0, 3), (1, 3)], E.Add),
    row("add_scalar", lambda lib, a: a + 2.5, [(3, 4)], E.Add),
    row("radd_scalar", lambda lib, a: 2.5 + a, [(3, 4)], E.Add),
    row("add_fn", lambda lib, a, b: lib.add(a, b), [(2, 3), (3,)], E.Add),
    row("sub", lambda lib, a, b: a - b, [(3, 4), (3, 4)], E.Sub),
    row("sub_bcast", lambda lib, a, b: a - b, [(4,), (3, 4)], E.Sub),
    row("sub_scalar", lambda lib, a: a - 1.5, [(3, 4)], E.Sub),
    row("rsub_scalar", lambda lib, a: 1.5 - a, [(3, 4)], E.Sub),
    row("mul", lambda lib, a, b: a * b, [(3, 4), (3, 4)], E.Mul),
    row("mul_bcast", lambda lib, a, b: a * b, [(2, 1, 4), (3, 1)], E.Mul),
    row("mul_self", lambda lib, a: a * a, [(3, 4)], E.Mul),
    row("mul_scalar", lambda lib, a: a * 3.0, [(3, 4)], E.Mul),
    row("rmul_scalar", lambda lib, a: -0.5 * a, [(3, 4)], E.Mul),
    row("mul_0d", lambda lib, a, b: a * b, [(), (2, 3)], E.Mul),
    row("div", lambda lib, a, b: a / b, [(3, 4), Arg((3, 4), **NONZERO)], E.Div),
    row("div_bcast", lambda lib, a, b: a / b, [(2, 3, 4), Arg((3, 1), **NONZERO)], E.Div),
    row("div_scalar", lambda lib, a: a / 4.0, [(3, 4)], E.Div),
    row("rdiv_scalar", lambda lib, a: 2.0 / a, [Arg((3, 4), **NONZERO)], E.Div),
    row("pow_int", lambda lib, a: a ** 3, [(3, 4)], E.Pow),
    row("pow_square", lambda lib, a: a ** 2, [(3, 4)], E.Pow),
    row("pow_frac", lambda lib, a: a ** 2.5, [Arg((3, 4), **POS)], E.Pow),
    row("pow_neg", lambda lib, a: a ** -1.5, [Arg((3, 4), **POS)], E.Pow),
    row("rpow_scalar", lambda lib, a: 2.0 ** a, [(3, 4)], E.Pow),
    row("pow_tensor", lambda lib, a, b: a ** b, [Arg((3, 4), **POS), (3, 4)], E.Pow),
    row("pow_zero", lambda lib, a: a ** 0, [Arg((2, 3), zeros=(1,))], E.Pow),  # 0 ** 0 too
    row("pow_tensor_zero_base", lambda lib, a, b: a ** b,  # torch: d/db at a = 0 is 0
        [Arg((2, 3), **POS, zeros=(0, 4)), Arg((2, 3), 0.5, 2.0)], E.Pow, gradcheck=False),
    row("pow_tensor_bcast", lambda lib, a, b: a ** b, [Arg((2, 3), **POS), (3,)], E.Pow),
    row("neg", lambda lib, a: -a, [(3, 4)], E.Neg),
    row("neg_method", lambda lib, a: a.neg(), [(2, 0)], E.Neg),
    # ------------------------------------------------------------------ unary math
    row("abs", lambda lib, a: a.abs(), [(3, 4)], E.Abs, avoid=(0.0,)),
    row("abs_builtin", lambda lib, a: abs(a), [()], E.Abs, avoid=(0.0,)),
    row("exp", lambda lib, a: a.exp(), [(3, 4)], E.Exp),
    row("exp_0d", lambda lib, a: lib.exp(a), [()], E.Exp),
    row("exp_empty", lambda lib, a: a.exp(), [(0, 4)], E.Exp),
    row("log", lambda lib, a: a.log(), [Arg((3, 4), **POS)], E.Log),
    row("log1p", lambda lib, a: a.log1p(), [Arg((3, 4), low=-0.5, high=3.0)], E.Log1p),
    row("sqrt", lambda lib, a: a.sqrt(), [Arg((3, 4), **POS)], E.Sqrt),
    row("rsqrt", lambda lib, a: a.rsqrt(), [Arg((3, 4), **POS)], E.Rsqrt),
    row("sin", lambda lib, a: a.sin(), [Arg((3, 4), low=-4, high=4)], E.Sin),
    row("cos", lambda lib, a: lib.cos(a), [Arg((3, 4), low=-4, high=4)], E.Cos),
    row("tanh", lambda lib, a: a.tanh(), [Arg((3, 4), low=-4, high=4)], E.Tanh),
    row("sigmoid", lambda lib, a: a.sigmoid(), [Arg((3, 4), low=-6, high=6)], E.Sigmoid),
    row("sigmoid_saturated", lambda lib, a: lib.sigmoid(a),
        [Arg((2, 3), low=30, high=120, signed=True)], E.Sigmoid),
    row("relu", lambda lib, a: a.relu(), [(3, 4)], E.Relu, avoid=(0.0,)),
    # exactly at a kink: torch's conventions (relu' = 0, abs' = 0, clamp keeps its bounds);
    # central differences see the average of the two sides there, so no gradcheck
    row("relu_at_zero", lambda lib, a: a.relu(), [Arg((2, 3), zeros=(0, 4))], E.Relu,
        gradcheck=False),
    row("abs_at_zero", lambda lib, a: a.abs(), [Arg((2, 3), zeros=(2,))], E.Abs,
        gradcheck=False),
    row("clamp_at_bounds", lambda lib, a: a.clamp(0.0, 1.0),
        [Arg((2, 3), low=1.0, high=1.0, zeros=(0, 3))], E.Clamp, gradcheck=False),
    row("relu_fn_0d", lambda lib, a: lib.relu(a), [()], E.Relu, avoid=(0.0,)),
    row("leaky_relu", lambda lib, a: a.leaky_relu(0.1), [(3, 4)], E.LeakyRelu,
        torch_op=lambda lib, a: _torch_nnf(lib).leaky_relu(a, 0.1), avoid=(0.0,)),
    row("leaky_relu_default", lambda lib, a: a.leaky_relu(), [(5,)], E.LeakyRelu,
        torch_op=lambda lib, a: _torch_nnf(lib).leaky_relu(a), avoid=(0.0,)),
    row("sign", lambda lib, a: a.sign(), [(3, 4)], E.Sign, avoid=(0.0,)),
    row("clamp_both", lambda lib, a: a.clamp(-0.5, 0.7), [(3, 4)], E.Clamp, avoid=(-0.5, 0.7)),
    row("clamp_min", lambda lib, a: a.clamp(min=-0.5), [(3, 4)], E.Clamp, avoid=(-0.5,)),
    row("clamp_max", lambda lib, a: lib.clamp(a, max=0.3), [(3, 4)], E.Clamp, avoid=(0.3,)),
    row("clip", lambda lib, a: a.clip(-1.0, 1.0), [(3, 4)], E.Clamp, avoid=(-1.0, 1.0)),
    row("maximum", lambda lib, a, b: lib.maximum(a, b), [(3, 4), (3, 4)], E.Maximum,
        distinct=True),
    row("maximum_ties", lambda lib, a, b: lib.maximum(a, b),  # torch splits ties evenly
        [Arg((2, 3), -2, -0.5, zeros=(1, 4))] * 2, E.Maximum, gradcheck=False),
    row("maximum_bcast", lambda lib, a, b: a.maximum(b), [(3, 4), (4,)], E.Maximum,
        distinct=True),
    row("minimum", lambda lib, a, b: lib.minimum(a, b), [(3, 4), (3, 1)], E.Minimum,
        distinct=True),
    row("where", lambda lib, a, b: lib.where(lib.tensor(MASK34), a, b), [(3, 4), (3, 4)],
        E.Where),
    row("where_bcast", lambda lib, a, b: lib.where(lib.tensor(MASK4), a, b), [(3, 4), (3, 1)],
        E.Where),
    row("where_scalar", lambda lib, a: lib.where(lib.tensor(MASK34), a, 0.5), [(3, 4)],
        E.Where),
    row("where_method", lambda lib, a, b: a.where(lib.tensor(MASK4), b), [(2, 4), (4,)],
        E.Where),
    row("masked_fill", lambda lib, a: a.masked_fill(lib.tensor(MASK34), -1.0), [(3, 4)],
        E.Where),
    row("clone", lambda lib, a: a.clone() * 2.0, [(3, 4)], (E.Clone, E.Mul)),
    row("cast_to_float64", lambda lib, a: a.double() * 3.0, [(3, 4)], (E.Cast, E.Mul),
        gradcheck=False),  # a float64 input makes .double() a no-op: nothing to check
    row("cast_roundtrip", lambda lib, a: (a.double() * 3.0).float(), [(3, 4)], E.Cast,
        gradcheck=False),  # .float() rounds to float32: central differences need float64
    row("int_arith", lambda lib, a, b: (a + b) * a - b, [Arg((3, 4), -5, 5, "int")] * 2,
        (E.Add, E.Mul, E.Sub), grad=False),
    row("int_true_div", lambda lib, a, b: a / b, [Arg((3, 4), -5, 5, "int"),
                                                  Arg((3, 4), 1, 4, "int")], E.Div, grad=False),
    # integers meeting floats give the default float dtype, as torch (not NumPy's float64)
    row("int_times_float", lambda lib, a: a * 0.5 + (1.5 - a), [Arg((5,), -5, 5, "int")],
        (E.Mul, E.Add, E.Sub), grad=False),
    row("int_pow_float", lambda lib, a: a ** 0.5 + 2.0 ** a, [Arg((5,), 0, 6, "int")], E.Pow,
        grad=False),
    row("int_unary_float", lambda lib, a: (a.exp(), a.log(), a.sqrt(), a.sigmoid(), a.tanh()),
        [Arg((4,), 1, 6, "int")], (E.Exp, E.Log, E.Sqrt, E.Sigmoid, E.Tanh), grad=False),
    row("int_clamp_float", lambda lib, a: a.clamp(-0.5, 2.5), [Arg((6,), -3, 4, "int")],
        E.Clamp, grad=False),
    row("int_plus_float_0d", lambda lib, a: a + lib.tensor(1.5), [Arg((4,), -3, 4, "int")],
        E.Add, grad=False),
    row("where_scalars", lambda lib: lib.where(lib.tensor(MASK4), 1.0, 0.0), [], E.Where,
        grad=False),
    row("int_to_float", lambda lib, a: a.float() * 0.5, [Arg((5,), -5, 5, "int")], E.Mul,
        grad=False),
    row("one_hot", lambda lib, a: lib.one_hot(a, 4), [Arg((2, 3), 0, 4, "int")], (),
        torch_op=lambda lib, a: _torch_nnf(lib).one_hot(a, 4), grad=False),
    row("one_hot_infer", lambda lib, a: lib.one_hot(a), [Arg((5,), 0, 3, "int")], (),
        torch_op=lambda lib, a: _torch_nnf(lib).one_hot(a), grad=False),
    # ------------------------------------------------------------------ matmul
    row("matmul_2d", lambda lib, a, b: a @ b, [(3, 4), (4, 5)], L.MatMul),
    row("matmul_1d_1d", lambda lib, a, b: a @ b, [(4,), (4,)], L.MatMul),
    row("matmul_1d_2d", lambda lib, a, b: a @ b, [(4,), (4, 3)], L.MatMul),
    row("matmul_2d_1d", lambda lib, a, b: lib.matmul(a, b), [(3, 4), (4,)], L.MatMul),
    row("matmul_3d_2d", lambda lib, a, b: a @ b, [(2, 3, 4), (4, 5)], L.MatMul),
    row("matmul_bcast_4d_3d", lambda lib, a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)], L.MatMul),
    row("matmul_1d_3d", lambda lib, a, b: a @ b, [(4,), (2, 4, 3)], L.MatMul),
    row("matmul_3d_1d", lambda lib, a, b: a @ b, [(2, 3, 4), (4,)], L.MatMul),
    row("matmul_empty", lambda lib, a, b: a @ b, [(0, 3), (3, 2)], L.MatMul),
    row("mm", lambda lib, a, b: lib.mm(a, b), [(2, 3), (3, 2)], L.MatMul),
    # ------------------------------------------------------------------ reductions
    row("sum_all", lambda lib, a: a.sum(), [(3, 4)], R.Sum),
    row("sum_dim", lambda lib, a: a.sum(1), [(2, 3, 4)], R.Sum),
    row("sum_neg_keepdim", lambda lib, a: a.sum(dim=-1, keepdim=True), [(2, 3, 4)], R.Sum),
    row("sum_tuple", lambda lib, a: lib.sum(a, dim=(0, 2)), [(2, 3, 4)], R.Sum),
    row("sum_0d", lambda lib, a: a.sum(), [()], R.Sum),
    row("sum_empty", lambda lib, a: a.sum(0), [(0, 3)], R.Sum),
    row("sum_int", lambda lib, a: a.sum(1), [Arg((3, 4), -9, 9, "int")], R.Sum, grad=False),
    row("sum_bool", lambda lib, a: a.sum(), [Arg((3, 4), kind="bool")], R.Sum, grad=False),
    row("mean_all", lambda lib, a: a.mean(), [(3, 4)], R.Mean),
    row("mean_tuple_keepdim", lambda lib, a: a.mean((0, 2), keepdim=True), [(2, 3, 4)], R.Mean),
    row("mean_neg", lambda lib, a: lib.mean(a, -2), [(2, 3, 4)], R.Mean),
    row("prod_all", lambda lib, a: a.prod(), [Arg((2, 3), low=0.5, high=1.5, signed=True)],
        R.Prod),
    row("prod_dim", lambda lib, a: a.prod(1), [(3, 4)], R.Prod),
    row("prod_dim_keepdim", lambda lib, a: a.prod(-1, keepdim=True), [(2, 3, 2)], R.Prod),
    row("prod_one_zero", lambda lib, a: a.prod(1), [Arg((3, 4), zeros=(5,))], R.Prod),
    row("prod_two_zeros", lambda lib, a: a.prod(), [Arg((2, 3), zeros=(1, 4))], R.Prod),
    row("prod_0d", lambda lib, a: a.prod(), [()], R.Prod),
    row("max_all", lambda lib, a: a.max(), [(3, 4)], R.Amax, distinct=True),
    row("min_all", lambda lib, a: lib.min(a), [(3, 4)], R.Amin, distinct=True),
    row("max_dim", lambda lib, a: tuple(a.max(dim=1)), [(3, 4)], M.Gather, distinct=True),
    row("max_dim_keepdim", lambda lib, a: tuple(lib.max(a, -1, keepdim=True)), [(2, 3, 4)],
        M.Gather, distinct=True),
    row("max_dim_attrs", lambda lib, a: (a.max(0).values, a.max(0).indices), [(3, 4)],
        M.Gather, distinct=True),
    row("min_dim", lambda lib, a: tuple(a.min(0)), [(3, 4)], M.Gather, distinct=True),
    row("max_elementwise", lambda lib, a, b: lib.max(a, b), [(3, 4), (3, 4)], E.Maximum,
        distinct=True),
    row("amax_dim", lambda lib, a: a.amax(1), [(3, 4)], R.Amax, distinct=True),
    row("amax_tuple_keepdim", lambda lib, a: lib.amax(a, (0, 2), keepdim=True), [(2, 3, 4)],
        R.Amax, distinct=True),
    row("amin_neg", lambda lib, a: a.amin(-1), [(2, 3, 4)], R.Amin, distinct=True),
    row("amax_ties", lambda lib, a: a.amax(1), [Arg((2, 4), -2, -0.5, zeros=(1, 3, 6))],
        R.Amax, gradcheck=False),  # torch splits the gradient among tied maxima
    row("max_all_ties", lambda lib, a: a.max(), [Arg((2, 3), -2, -0.5, zeros=(0, 5))],
        R.Amax, gradcheck=False),
    row("amin_0d", lambda lib, a: a.amin(), [()], R.Amin),
    row("argmax", lambda lib, a: (a.argmax(), a.argmax(1), a.argmax(-1, keepdim=True)),
        [(3, 4)], (), distinct=True, grad=False),
    row("argmin", lambda lib, a: (lib.argmin(a), a.argmin(0)), [(3, 4)], (), distinct=True,
        grad=False),
    row("var", lambda lib, a: a.var(), [(3, 4)], R.Var),
    row("var_dim_c0", lambda lib, a: a.var(1, correction=0), [(3, 4)], R.Var),
    row("var_tuple_keepdim", lambda lib, a: a.var((0, 2), keepdim=True), [(2, 3, 4)], R.Var),
    row("var_unbiased_false", lambda lib, a: lib.var(a, -1, unbiased=False), [(2, 5)], R.Var),
    row("var_one_element", lambda lib, a: a.var(1), [(3, 1)], R.Var,
        gradcheck=False),  # no degrees of freedom: nan value and gradient, as torch
    row("std", lambda lib, a: a.std(), [(3, 4)], R.Std),
    row("std_dim_c1_keepdim", lambda lib, a: a.std(0, keepdim=True, correction=1), [(3, 4)],
        R.Std),
    row("std_c0", lambda lib, a: lib.std(a, dim=-1, correction=0), [(2, 3, 4)], R.Std),
    row("std_zero_spread", lambda lib, a: a.std(1), [Arg((2, 3), 1.5, 1.5)], R.Std),
    row("logsumexp", lambda lib, a: a.logsumexp(1), [(3, 4)], R.LogSumExp),
    row("logsumexp_tuple_keepdim", lambda lib, a: lib.logsumexp(a, (0, -1), keepdim=True),
        [(2, 3, 4)], R.LogSumExp),
    row("logsumexp_1e4", lambda lib, a: a.logsumexp(-1), [Arg((3, 4), -1e4, 1e4)],
        R.LogSumExp, rtol=1e-6, atol=0.0),
    row("norm", lambda lib, a: a.norm(), [(3, 4)], R.Norm2),
    row("norm_dim", lambda lib, a: lib.norm(a, dim=1), [(3, 4)], R.Norm2),
    row("norm_dim_keepdim", lambda lib, a: a.norm(2, dim=(0, 2), keepdim=True), [(2, 3, 4)],
        R.Norm2),
    row("norm_p1", lambda lib, a: a.norm(p=1, dim=-1), [(3, 4)], (E.Abs, R.Sum),
        avoid=(0.0,)),
    row("norm_pinf", lambda lib, a: a.norm(p=float("inf"), dim=1),
        [Arg((3, 4), low=0.1, high=2.0, signed=True)], (E.Abs, R.Amax), distinct=True),
    row("norm_p3", lambda lib, a: a.norm(p=3, dim=0), [(3, 4)], R.NormP, avoid=(0.0,)),
    row("norm_p1_5_keepdim", lambda lib, a: lib.norm(a, 1.5, (0, 2), keepdim=True),
        [(2, 3, 4)], R.NormP, avoid=(0.0,)),
    row("norm_p3_zero_vector", lambda lib, a: a.norm(p=3, dim=1),
        [Arg((2, 3), zeros=(0, 1, 2))], R.NormP),
    row("norm_p2_zero_vector", lambda lib, a: a.norm(dim=1), [Arg((2, 3), zeros=(3, 4, 5))],
        R.Norm2),
    row("softmax", lambda lib, a: a.softmax(-1), [(3, 4)], R.Softmax),
    row("softmax_dim0_3d", lambda lib, a: lib.softmax(a, 0), [(3, 2, 4)], R.Softmax),
    row("softmax_1e4", lambda lib, a: a.softmax(1), [Arg((3, 4), -1e4, 1e4)], R.Softmax),
    row("log_softmax", lambda lib, a: a.log_softmax(1), [(3, 4)], R.LogSoftmax),
    row("log_softmax_neg_dim", lambda lib, a: lib.log_softmax(a, -2), [(2, 3, 4)],
        R.LogSoftmax),
    # |output| reaches 2e4, where one float32 ulp is 2e-3: compare relative to that scale
    row("log_softmax_1e4", lambda lib, a: a.log_softmax(-1), [Arg((3, 4), -1e4, 1e4)],
        R.LogSoftmax, rtol=1e-6, atol=2e-3),
    # ------------------------------------------------------------------ movement
    row("reshape", lambda lib, a: a.reshape(4, 3), [(3, 4)], M.Reshape),
    row("reshape_infer", lambda lib, a: lib.reshape(a, (2, -1)), [(2, 3, 4)], M.Reshape),
    row("reshape_0d", lambda lib, a: a.reshape(1, 1), [()], M.Reshape),
    row("reshape_empty", lambda lib, a: a.reshape(3, 0), [(0, 3)], M.Reshape),
    row("view", lambda lib, a: a.view(-1), [(3, 4)], M.Reshape),
    row("flatten", lambda lib, a: a.flatten(), [(2, 3, 4)], M.Reshape),
    row("flatten_1_2", lambda lib, a: a.flatten(1, 2), [(2, 3, 4, 2)], M.Reshape),
    row("flatten_neg", lambda lib, a: lib.flatten(a, -2, -1), [(2, 3, 4)], M.Reshape),
    row("transpose", lambda lib, a: a.transpose(0, 2), [(2, 3, 4)], M.Permute),
    row("transpose_neg", lambda lib, a: lib.transpose(a, -1, -2), [(2, 3, 4)], M.Permute),
    row("permute", lambda lib, a: a.permute(2, 0, 1), [(2, 3, 4)], M.Permute),
    row("permute_neg", lambda lib, a: lib.permute(a, (-1, 0, 1)), [(2, 3, 4)], M.Permute),
    row("T", lambda lib, a: a.T, [(3, 4)], M.Permute),
    row("mT", lambda lib, a: a.mT, [(2, 3, 4)], M.Permute),
    row("squeeze", lambda lib, a: a.squeeze(), [(3, 1, 4, 1)], M.Reshape),
    row("squeeze_dim", lambda lib, a: a.squeeze(-1), [(3, 1, 4, 1)], M.Reshape),
    row("squeeze_dim_noop", lambda lib, a: lib.squeeze(a, 0), [(3, 1, 4)], M.Reshape),
    row("unsqueeze", lambda lib, a: a.unsqueeze(1), [(3, 4)], M.Reshape),
    row("unsqueeze_neg", lambda lib, a: lib.unsqueeze(a, -1), [(3, 4)], M.Reshape),
    row("expand", lambda lib, a: a.expand(2, 3, 4), [(3, 1)], M.Expand),
    row("expand_minus1", lambda lib, a: a.expand(2, -1, 4), [(3, 1)], M.Expand),
    row("broadcast_to", lambda lib, a: lib.broadcast_to(a, (3, 2, 4)), [(2, 1)], M.Expand),
    row("expand_0d", lambda lib, a: a.expand(2, 3), [()], M.Expand),
    row("repeat", lambda lib, a: a.repeat(2, 1, 3), [(3, 2)], M.Repeat),
    row("repeat_same_ndim", lambda lib, a: a.repeat(3, 2), [(2, 3)], M.Repeat),
    row("split_int", lambda lib, a: a.split(2, dim=1), [(3, 5)], M.GetItem),
    row("split_sections", lambda lib, a: lib.split(a, [1, 3, 1], -1), [(2, 5)], M.GetItem),
    row("chunk", lambda lib, a: a.chunk(3, 0), [(5, 2)], M.GetItem),
    row("cat", lambda lib, a, b, c: lib.cat([a, b, c], 1), [(2, 1), (2, 3), (2, 2)], M.Cat),
    row("cat_neg_dim", lambda lib, a, b: lib.cat([a, b], -1), [(2, 3, 2), (2, 3, 1)], M.Cat),
    row("cat_empty_piece", lambda lib, a, b: lib.cat([a, b]), [(0, 3), (2, 3)], M.Cat),
    row("stack", lambda lib, a, b: lib.stack([a, b], 1), [(2, 3), (2, 3)], (M.Reshape, M.Cat)),
    row("stack_neg", lambda lib, a, b, c: lib.stack([a, b, c], -1), [(3,), (3,), (3,)],
        (M.Reshape, M.Cat)),
    row("pad", lambda lib, a: lib.pad(a, (1, 2, 0, 1), value=0.5), [(2, 3)], M.Pad,
        torch_op=lambda lib, a: _torch_nnf(lib).pad(a, (1, 2, 0, 1), value=0.5)),
    row("pad_last", lambda lib, a: lib.pad(a, (2, 0)), [(2, 2, 3)], M.Pad,
        torch_op=lambda lib, a: _torch_nnf(lib).pad(a, (2, 0))),
    row("flip", lambda lib, a: a.flip(0), [(3, 4)], M.Flip),
    row("flip_dims", lambda lib, a: lib.flip(a, (0, -1)), [(2, 3, 4)], M.Flip),
    row("gather", lambda lib, a: a.gather(1, lib.tensor(GATHER_IDX)), [(3, 4)], M.Gather),
    row("gather_dim0", lambda lib, a: lib.gather(a, 0, lib.tensor(GATHER_IDX[:2])), [(4, 3)],
        M.Gather),
    # ------------------------------------------------------------------ indexing
    row("index_int", lambda lib, a: a[1], [(3, 4)], M.GetItem),
    row("setitem_slice", lambda lib, a, v: _assigned(a, (slice(None), 1), v), [(3, 4), (3,)],
        M.SetItem),
    row("setitem_broadcast", lambda lib, a, v: _assigned(a, (slice(0, 2),), v), [(3, 4), (1, 4)],
        M.SetItem),
    row("setitem_scalar_value", lambda lib, a: _assigned(a, (0, 2), 5.0), [(2, 3)], M.SetItem),
    row("copy_broadcast", lambda lib, a, v: _copied(a, v), [(2, 3), (3,)], M.SetItem),
    row("index_neg_int", lambda lib, a: a[-1, 2], [(3, 4)], M.GetItem),
    row("index_slices_steps", lambda lib, a: a[1:6:2, ::3], [(7, 8)], M.GetItem),
    row("index_none", lambda lib, a: a[None, :, 1, None], [(3, 4)], M.GetItem),
    row("index_ellipsis", lambda lib, a: a[..., 1:3], [(2, 3, 4)], M.GetItem),
    row("index_ellipsis_int", lambda lib, a: a[0, ..., -1], [(2, 3, 4)], M.GetItem),
    row("index_bool_mask", lambda lib, a: a[lib.tensor(MASK34)], [(3, 4)], M.GetItem),
    row("index_bool_rows", lambda lib, a: a[:, lib.tensor(MASK4)], [(3, 4)], M.GetItem),
    row("index_int_array_repeat", lambda lib, a: a[lib.tensor(IDX_REPEAT)], [(3, 4)],
        M.GetItem),
    row("index_int_list_repeat", lambda lib, a: a[:, [3, 3, 0, 3]], [(3, 4)], M.GetItem),
    row("index_2_arrays_repeat",
        lambda lib, a: a[lib.tensor([0, 2, 0, 0]), lib.tensor([1, 3, 1, 1])], [(3, 4)],
        M.GetItem),
    row("index_select", lambda lib, a: a.index_select(1, lib.tensor([2, 0, 2])), [(3, 4)],
        M.GetItem),
    row("narrow", lambda lib, a: a.narrow(1, 1, 2), [(3, 4)], M.GetItem),
    row("unbind", lambda lib, a: a.unbind(1), [(2, 3)], M.GetItem),
    row("index_empty", lambda lib, a: a[1:1], [(3, 4)], M.GetItem),
]
# fmt: on

from op_specs_layers import OPS_LAYERS  # noqa: E402  (conv, pooling, losses, nn_ops, rnn)
from op_specs_nn import OPS_NN  # noqa: E402  (attention, conv-transpose, backward hooks)
from op_specs_tensor import OPS_TENSOR  # noqa: E402  (Tensor-method rows; needs row/Arg)

OPS += OPS_TENSOR + OPS_LAYERS + OPS_NN
