"""Once the user has asked the run to stop (Ctrl-C or SIGTERM), a step
helper that does not answer is given STOP_GRACE_SECONDS, not
STEP_TIMEOUT_SECONDS (common.step_worker.StepWorker): the stop must not
wait half a minute for a hung (here: stopped) helper. The batch helper's
grace is tested in tests/test_parallel_robustness.py; this is the step
products' helper."""

import contextlib
import os
import signal
import time

import numpy as np

from common import step_worker

from helper_processes import needs_helpers


@needs_helpers
def test_a_stopped_step_helper_is_given_up_in_the_stop_grace(monkeypatch):
    monkeypatch.setattr(step_worker, "stop_requested", lambda: True)
    assert step_worker.STEP_TIMEOUT_SECONDS > 4 * step_worker.STOP_GRACE_SECONDS
    worker = step_worker.StepWorker()
    try:
        W = np.ones((64, 32), np.float32)
        worker.begin(W, 8)
        worker.post(np.ones((8, 64), np.float32))
        np.testing.assert_array_equal(worker.wait(), np.full((8, 32), 64, np.float32))
        os.kill(worker.process.pid, signal.SIGSTOP)  # hung
        worker.post(np.ones((8, 64), np.float32))
        started = time.monotonic()
        try:
            worker.wait()
            raise AssertionError("a stopped helper answered")
        except OSError:
            pass
        assert time.monotonic() - started < 2 * step_worker.STOP_GRACE_SECONDS + 2
    finally:
        if worker.process is not None:
            with contextlib.suppress(ProcessLookupError):  # (killed and reaped)
                os.kill(worker.process.pid, signal.SIGCONT)
        worker.close()
