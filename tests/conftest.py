"""Shared fixtures: float64 random arrays for gradient checks."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
