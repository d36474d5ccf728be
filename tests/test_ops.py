"""Every row of tests/op_specs.py: forward and backward against PyTorch, gradcheck in float64.

Plus the guards that keep the table honest: every Function class in the core op modules has
a row, and every row really runs the Function classes it claims to cover.
"""

from __future__ import annotations

import importlib
import zlib

import numpy as np
import pytest
from op_specs import OPS, OpSpec, make_inputs

import shenjing as sj
from shenjing.autograd import Function

# Every module of the package is searched for Function classes; each needs a row. The few
# exempt ones say why (each is tested in its own file).
EXEMPT = {
    "shenjing.nn.parallel._GradReady": "identity marker DDP inserts to see gradients arrive; "
                                       "tested under MPI in test_distributed.py",
    "shenjing.quantization": "int8 inference kernels (no backward); test_quantization.py",
    "shenjing.ops.nn_ops.Dropout": "a random mask torch cannot reproduce; test_nn_layers.py "
                                   "checks statistics, gradient and gradcheck on a fixed mask",
}


def _package_modules() -> list[str]:
    import pkgutil

    names = []
    for m in pkgutil.walk_packages(sj.__path__, "shenjing."):
        if m.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(m.name)
        except ImportError:  # an optional dependency (flask, mpi4py, onnx) is missing
            continue
        names.append(m.name)
    return names

# torch warns where a row asks for what the row means to ask (var of one element)
pytestmark = pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0")

GRAD_OPS = [s for s in OPS if s.grad]
GRADCHECK_OPS = [s for s in GRAD_OPS if s.gradcheck]


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _is_float(x) -> bool:
    return np.dtype(x.dtype).kind == "f" if isinstance(x, np.ndarray) else x.dtype.kind == "f"


def _torch_run(torch, spec: OpSpec, arrays: list, requires_grad: bool):
    ts = [torch.from_numpy(a.copy()) for a in arrays]
    if requires_grad:
        for t in ts:
            if t.is_floating_point():
                t.requires_grad_(True)
    return ts, _outputs((spec.torch_op or spec.op)(torch, *ts))


def _sj_inputs(arrays: list, requires_grad: bool, dtype=None) -> list:
    out = []
    for a in arrays:
        if _is_float(a):
            out.append(sj.tensor(a, dtype=dtype, requires_grad=requires_grad))
        else:
            out.append(sj.tensor(a))
    return out


def test_table_names_are_unique():
    names = [s.name for s in OPS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("spec", OPS, ids=str)
def test_forward_matches_torch(spec: OpSpec):
    torch = pytest.importorskip("torch")
    arrays = make_inputs(spec)
    outs = _outputs(spec.op(sj, *_sj_inputs(arrays, requires_grad=False)))
    _, touts = _torch_run(torch, spec, arrays, requires_grad=False)
    assert len(outs) == len(touts)
    for k, (o, t) in enumerate(zip(outs, touts)):
        expected = t.numpy()
        assert isinstance(o, sj.Tensor), f"output {k} is a {type(o).__name__}, not a Tensor"
        assert o.dtype == expected.dtype, f"output {k}: dtype {o.dtype}, torch {expected.dtype}"
        assert o.shape == expected.shape, f"output {k}: shape {o.shape}, torch {expected.shape}"
        if _is_float(expected):
            assert np.isfinite(o.numpy()).all() == np.isfinite(expected).all()
            np.testing.assert_allclose(
                o.numpy(),
                expected,
                rtol=spec.rtol,
                atol=spec.atol,
                err_msg=f"{spec.name}: output {k}",
            )
        else:
            np.testing.assert_array_equal(o.numpy(), expected, err_msg=f"{spec.name}: {k}")


@pytest.mark.parametrize("spec", GRAD_OPS, ids=str)
def test_backward_matches_torch(spec: OpSpec):
    """Input gradients for a random upstream gradient on every float output."""
    torch = pytest.importorskip("torch")
    arrays = make_inputs(spec)
    xs = _sj_inputs(arrays, requires_grad=True)
    outs = [o for o in _outputs(spec.op(sj, *xs)) if _is_float(o)]
    ts, touts = _torch_run(torch, spec, arrays, requires_grad=True)
    touts = [t for t in touts if t.is_floating_point()]
    assert len(outs) == len(touts)
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + 1)
    upstream = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
    for o, g in zip(outs, upstream):
        assert o.requires_grad, f"{spec.name}: output does not require grad"
        o.backward(sj.tensor(g), retain_graph=True)  # several outputs: grads accumulate
    leaves = [t for t in ts if t.requires_grad]
    expected = torch.autograd.grad(
        touts, leaves, [torch.from_numpy(g) for g in upstream], allow_unused=True
    )
    for i, (x, e) in enumerate(zip([x for x in xs if x.requires_grad], expected)):
        want = np.zeros(x.shape, np.float32) if e is None else e.numpy()
        assert x.grad is not None, f"{spec.name}: input {i} got no gradient"
        assert x.grad.dtype == x.dtype, f"input {i}: grad dtype {x.grad.dtype} != {x.dtype}"
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(
            x.grad.numpy(),
            want,
            rtol=spec.grad_rtol,
            atol=spec.grad_atol,
            err_msg=f"{spec.name}: input {i}",
        )


@pytest.mark.parametrize("spec", GRADCHECK_OPS, ids=str)
def test_gradcheck_float64(spec: OpSpec):
    """Central differences in float64; float64 in gives float64 out."""
    xs = _sj_inputs(make_inputs(spec), requires_grad=True, dtype=sj.float64)
    outs = _outputs(spec.op(sj, *xs))
    checked = 0
    for k, o in enumerate(outs):
        if not _is_float(o):
            continue
        assert o.dtype == np.float64, f"{spec.name}: output {k} is {o.dtype}, not float64"
        assert sj.autograd.gradcheck(lambda *v, k=k: _outputs(spec.op(sj, *v))[k], xs)
        checked += 1
    assert checked


# ----------------------------------------------------------------------------- guards


def _function_classes(module_name: str) -> list[type]:
    """Concrete Function subclasses defined in a module (bases without forward skipped)."""
    mod = importlib.import_module(module_name)
    return [
        c
        for c in vars(mod).values()
        if isinstance(c, type)
        and issubclass(c, Function)
        and c.__module__ == module_name
        and c.forward is not Function.forward
    ]


def test_guard_finds_the_function_classes():
    from shenjing.ops import elementwise, reduce

    found = _function_classes("shenjing.ops.elementwise")
    assert elementwise.Add in found and elementwise.Where in found
    reductions = _function_classes("shenjing.ops.reduce")
    assert reduce.Amax in reductions and reduce._Extremum not in reductions


def _exempt(name: str) -> bool:
    return any(name == e or name.startswith(e + ".") for e in EXEMPT)


def test_every_function_in_the_package_has_a_row():
    covered = {c for s in OPS for c in s.covers}
    found = [c for m in _package_modules() for c in _function_classes(m)]
    assert len(found) > 60  # the walk really finds the ops
    missing = [
        f"{c.__module__}.{c.__qualname__}"
        for c in found
        if c not in covered and not _exempt(f"{c.__module__}.{c.__qualname__}")
        and not (c.__name__.startswith("_") and c.__subclasses__())  # shared bases
    ]
    assert not missing, f"Function classes with no row in tests/op_specs.py: {missing}"


def test_rows_apply_the_functions_they_cover(monkeypatch):
    seen: set = set()
    apply = Function.__dict__["apply"].__func__

    def recording_apply(cls, *inputs, **attrs):
        seen.add(cls)
        return apply(cls, *inputs, **attrs)

    monkeypatch.setattr(Function, "apply", classmethod(recording_apply))
    wrong = []
    for spec in OPS:
        seen.clear()
        spec.op(sj, *_sj_inputs(make_inputs(spec), requires_grad=spec.grad))
        if not set(spec.covers) <= seen:
            wrong.append(
                f"{spec.name}: claims {[c.__name__ for c in spec.covers]}, "
                f"ran {sorted(c.__name__ for c in seen)}"
            )
    assert not wrong, "\n".join(wrong)
