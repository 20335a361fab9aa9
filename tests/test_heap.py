"""common.heap: the memory a step frees is kept for the next step (glibc)."""

import os
import platform
import subprocess
import sys

import pytest

from common import heap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Page faults a "step" takes once warmed up: eight 1 MiB arrays allocated,
# written and freed together, as a training step's arrays are.
STEP_FAULTS = """
import resource, sys
import numpy as np
from common.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():
    arrays = [np.ones(2**18, np.float32) for _ in range(8)]
    del arrays
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def step_faults(mode):
    """Page faults per step in a fresh process (the setting lasts for a process's life)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "GLIBC_TUNABLES"):
        env.pop(name, None)  # glibc's defaults, whatever the caller's shell set
    out = subprocess.run([sys.executable, "-c", STEP_FAULTS, mode], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=60)
    return float(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's malloc's")
def test_freed_memory_is_reused_without_page_faults():
    # By default glibc gives the 8 MiB back at each step, and the kernel
    # zeroes each of its 2,048 pages again at the next (a fault each).
    assert step_faults("default") > 1000
    assert step_faults("keep") < 50


def test_keep_freed_memory_sets_the_thresholds_once_per_process(monkeypatch):
    # (Spied: setting them here would change this test process's allocator.)
    calls = []
    monkeypatch.setattr(heap, "_kept", None)
    monkeypatch.setattr(heap, "_set_thresholds", lambda: calls.append(1) or True)
    assert heap.keep_freed_memory() is True
    assert heap.keep_freed_memory() is True
    assert calls == [1]


def test_elsewhere_it_does_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_kept", None)
    monkeypatch.setattr(heap.platform, "system", lambda: "Darwin")
    assert heap.keep_freed_memory() is False
    assert heap.keep_freed_memory() is False  # the first outcome, kept

