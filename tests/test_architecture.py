"""The architecture's rules, checked: no import cycles, ops behind the array-module seam, one
Tensor constructor, and files a reader can hold in their head."""

from __future__ import annotations

import ast
import importlib
import pathlib

import numpy as np
import pytest

import shenjing as sj
from shenjing import backend

ROOT = pathlib.Path(sj.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _import_graph() -> dict[str, set[str]]:
    """Module-level imports between shenjing modules (function-level imports excluded)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text())
        is_pkg = path.name == "__init__.py"
        for node in tree.body:
            if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports never run
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(mod, is_pkg, node.level, node.module)
                targets = [target]
                targets += [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}"
                            in mods]
            for t in targets:
                # a submodule importing its own ancestor package is how packages work
                if t in mods and t != mod and not mod.startswith(t + "."):
                    graph[mod].add(t)
    return graph


def test_import_graph_is_found():
    g = _import_graph()
    assert "shenjing.autograd.engine" in g["shenjing.autograd"]
    assert "shenjing.backend" in g["shenjing.ops.elementwise"]


def test_no_import_cycles_anywhere_in_the_package():
    graph = _import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_ops_never_import_numpy():
    offenders = []
    for path in (ROOT / "ops").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [f"{path.name}: import {n}" for n in names if n.split(".")[0] == "numpy"]
    assert not offenders, offenders


def test_ops_modules_take_and_return_arrays_only():
    """No op module knows the Tensor class: they work on arrays; Function.apply wraps."""
    for path in (ROOT / "ops").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    for a in n.names}
        assert "Tensor" not in imported, f"{path.name} imports Tensor"


class _Counted:
    """A NumPy callable that counts its calls (attributes such as `ufunc.at` pass through)."""

    def __init__(self, fn, owner) -> None:
        self.fn, self.owner = fn, owner

    def __call__(self, *args, **kwargs):
        self.owner.calls += 1
        return self.fn(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.fn, name)


class _CheckingArrayModule:
    """NumPy behind a counter: proves ops reach their math through `backend.xp`."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str):
        value = getattr(np, name)
        if callable(value) and not isinstance(value, type):
            return _Counted(value, self)
        return value


@pytest.fixture
def checking_backend():
    mod = _CheckingArrayModule()
    prev = backend.use(mod)
    yield mod
    backend.use(prev)


def test_op_table_runs_through_the_checking_backend(checking_backend):
    """Every row of the op table, forward and backward, with a checking array module; the
    results equal those of plain NumPy, and the module saw the calls."""
    import op_specs

    rows = [s for s in op_specs.OPS if s.grad][::3]  # a third of the table: kept fast
    ran = 0
    for spec in rows:
        arrays = op_specs.make_inputs(spec)
        results = []
        for use_checking in (True, False):
            prev = backend.use(checking_backend if use_checking else np)
            try:
                ts = [sj.tensor(a, requires_grad=a.dtype.kind == "f") if spec.grad else
                      sj.tensor(a) for a in arrays]
                out = spec.op(sj, *ts)
                outs = list(out) if isinstance(out, (tuple, list)) else [out]
                outs = [o for o in outs if o.requires_grad]
                if outs:
                    sum(o.sum() for o in outs).backward()
                results.append([o.numpy().copy() for o in outs] +
                               [t.grad.numpy().copy() for t in ts if t.grad is not None])
            finally:
                backend.use(prev)
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)
        ran += 1
    assert ran > 50 and checking_backend.calls >= 2 * ran


def test_backend_use_rejects_unknown_modules():
    with pytest.raises(ValueError, match="unknown array module"):
        backend.use("tensorflow")


def test_one_tensor_constructor():
    """Outside the engine nothing assigns a Tensor's slots by hand (`__new__` + writes)."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.parent.name == "autograd":
            continue
        text = path.read_text()
        if "Tensor.__new__(" in text or "._ctx = None" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_no_private_constructor_imports():
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if "import _wrap" in p.read_text() or ", _wrap" in p.read_text()]
    assert not offenders, offenders


def test_files_stay_small():
    """No module over 600 lines, except the ones that are one table or one cohesive API."""
    allowed = {"keras/ops/numpy.py"}
    big = [f"{p.relative_to(ROOT)} ({n})" for p in ROOT.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 650
           and str(p.relative_to(ROOT)) not in allowed]
    assert not big, big


def test_modules_import_alone():
    """Each core module imports in a fresh interpreter state without the package order."""
    for name in ("shenjing.dtypes", "shenjing.backend", "shenjing.autograd.engine",
                 "shenjing.ops.elementwise", "shenjing.tensor"):
        assert importlib.import_module(name)
