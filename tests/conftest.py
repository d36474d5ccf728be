"""Shared test fixtures: every test starts from the same seeds and with grad mode on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# The real data sets beside the checkout (../shared/data, as CI lays it out), unless the
# environment names another place; the loaders look there before any download.
_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if _SHARED_DATA.is_dir():
    os.environ.setdefault("SHENJING_DATA", str(_SHARED_DATA))

import shenjing as sj  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded_and_grad_enabled():
    """Seed shenjing's and NumPy's global generators; restore grad mode after the test."""
    sj.manual_seed(0)
    np.random.seed(0)
    yield
    sj.set_grad_enabled(True)


@pytest.fixture(params=["numpy", "compiled"])
def kernel_path(request):
    """Run a test once on the NumPy kernels and once on the compiled (C) ones
    (shenjing.compiled); the compiled run is skipped when the extension was not built."""
    from shenjing import compiled
    if request.param == "compiled" and not compiled.available():
        pytest.skip("shenjing._ckernels was not built (no C compiler at install)")
    with compiled.use_compiled(request.param == "compiled"):
        yield request.param
