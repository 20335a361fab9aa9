"""The array backend: NumPy by default; asking for CuPy without it is a clear error."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common import backend

ROOT = Path(__file__).resolve().parent.parent


def test_numpy_is_the_default():
    assert backend.xp is np
    assert backend.FLOAT == np.float32
    a = np.arange(3.0)
    assert backend.to_cpu(a) is a
    assert isinstance(backend.to_gpu([1, 2]), np.ndarray)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_gpu_without_cupy_says_how_to_fix_it():
    env = {**os.environ, "RNNLAB_GPU": "1"}
    result = subprocess.run([sys.executable, "-c", "import common.backend"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "RNNLAB_GPU=1" in result.stderr and "pip install" in result.stderr


@pytest.mark.parametrize("value", ["2", "gpu", "ture"])
def test_a_switch_that_is_neither_on_nor_off_is_refused(value):
    # Before, anything but 1/true/yes/on meant NumPy, so a typo went unnoticed.
    env = {**os.environ, "RNNLAB_GPU": value}
    result = subprocess.run([sys.executable, "-c", "import common.backend"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"RNNLAB_GPU={value!r} is neither on nor off" in result.stderr


@pytest.mark.parametrize("value", ["", "0", "off", " No "])
def test_off_means_numpy(value):
    env = {**os.environ, "RNNLAB_GPU": value}
    result = subprocess.run([sys.executable, "-c",
                             "import numpy, common.backend as b; print(b.xp is numpy)"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
