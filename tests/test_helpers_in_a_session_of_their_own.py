"""A helper process starts in a session (and process group) of its own
(common.step_worker.start_process): a Ctrl-C at the terminal, or a signal
sent to the caller's process group (``kill -TERM -PGID``, as a scheduler
stops a job), is the caller's to handle. In the caller's group, a Ctrl-C
while a helper starts (before it ignores SIGINT) killed it, and a SIGTERM
to the group killed every helper under a run that StopOnSignals was
stopping cleanly."""

import os

from common import step_worker

from helper_processes import needs_helpers


@needs_helpers
def test_a_helper_is_in_a_session_and_process_group_of_its_own():
    process = step_worker.start_process("common.step_worker")
    try:
        step_worker.wait_until_up(process, "step worker")
        assert os.getsid(process.pid) == process.pid != os.getsid(0)
        assert os.getpgid(process.pid) != os.getpgid(0)
    finally:
        step_worker.stop_process(process)
