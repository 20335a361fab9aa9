"""A leftover segment's creator that this process may not signal (another
user's process: kill(pid, 0) fails with EPERM) exists: its segment may be
in use and is not removed (common.step_worker.process_exists). The test of
leftovers names pid 1 for this, which a test run as root may signal: there
the EPERM path was never taken."""

import os
import time

from common import step_worker

from helper_processes import needs_helpers


def test_a_process_this_one_may_not_signal_exists(monkeypatch):
    def not_permitted(pid, signal):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(step_worker.os, "kill", not_permitted)
    assert step_worker.process_exists(4_000_000)


@needs_helpers
def test_an_old_segment_of_another_users_process_is_left_alone(monkeypatch):
    name = f"rnnlab_4000000_{os.urandom(6).hex()}"  # (no such pid here: pid_max is 2^22 at most)
    path = f"{step_worker.SHM_DIR}/{name}"
    with open(path, "wb") as f:
        f.write(b"\0" * 4096)
    try:
        old = time.time() - 2 * step_worker.LEFTOVER_AGE_SECONDS
        os.utime(path, (old, old))

        def not_permitted(pid, signal):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(step_worker.os, "kill", not_permitted)
        assert name not in step_worker.remove_leftovers()
        assert os.path.exists(path)
    finally:
        monkeypatch.undo()
        if os.path.exists(path):
            os.unlink(path)
