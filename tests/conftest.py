"""Shared test fixtures: every test starts from the same seeds and with grad mode on."""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj


@pytest.fixture(autouse=True)
def _seeded_and_grad_enabled():
    """Seed shenjing's and NumPy's global generators; restore grad mode after the test."""
    sj.manual_seed(0)
    np.random.seed(0)
    yield
    sj.set_grad_enabled(True)
