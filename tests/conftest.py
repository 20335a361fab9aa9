"""Shared fixtures: float64 random arrays for gradient checks.

``RNNLAB_PTB_DIR`` given as a relative path (``../shared/data/ptb``) is
made absolute once, from the folder pytest started in: some tests run
scripts in a folder of their own, where the relative path would name
nothing.
"""

import os

import numpy as np
import pytest

if os.environ.get("RNNLAB_PTB_DIR"):
    os.environ["RNNLAB_PTB_DIR"] = os.path.abspath(os.environ["RNNLAB_PTB_DIR"])


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
