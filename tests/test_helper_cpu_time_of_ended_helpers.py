"""helper_cpu_seconds counts the helpers that have ended too (a helper
replaced after it died or hung, or closed at the end of a fit): a benchmark
reports a run's CPU time as this process's and its helpers' (README,
Speed), and a helper closed before the figure is read must not take its
CPU time with it."""

from pathlib import Path

import numpy as np
import pytest

from common import data_parallel
from models import Seq2seq

from helper_processes import needs_processes, small_models_split  # noqa: F401  (a fixture)


@needs_processes
@pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                    reason="only Linux says another process's CPU time")
def test_a_closed_helpers_cpu_time_is_still_counted():
    rng = np.random.default_rng(8)
    x, t = rng.integers(0, 11, (200, 5)), rng.integers(0, 11, (200, 5))
    model = Seq2seq(11, 4, 64, seed=10)
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        for _ in range(20):
            forward_backward(x, t)
        used = data_parallel.helper_cpu_seconds()
    assert used > 0.0
    data_parallel._close()  # the helper ends
    assert data_parallel._worker is None
    assert data_parallel.helper_cpu_seconds() >= used
