"""The run lock's two races (common.run_lock): a forked child of the process
that holds a checkpoint, and a holder that ends between another process's
open of the lock file and its lock.

Both are simulated deterministically: the child is forked while the lock
is held, and the holder's end is placed, by a wrapped ``fcntl.flock``,
exactly between the open and the lock. In each case only one training may
hold the checkpoint afterwards.
"""

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from common import run_lock
from common.run_lock import holding_checkpoint, lock_path

ROOT = Path(__file__).resolve().parent.parent
needs_flock = pytest.mark.skipif(sys.platform == "win32", reason="no fcntl.flock on Windows")
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="this platform cannot fork")

# Run in a process of its own: holds the checkpoint, forks, and the child tries
# to train to it. Prints the parent's pid, what the child got, and what the
# lock file holds after the child has ended.
CHILD_OF_A_HOLDER = """
    import os, sys
    from common.run_lock import CheckpointInUse, holding_checkpoint, lock_path
    path = sys.argv[1]
    with holding_checkpoint(path):
        print("parent", os.getpid(), flush=True)
        child = os.fork()
        if child == 0:
            try:
                with holding_checkpoint(path):
                    print("child: held", flush=True)
            except CheckpointInUse as error:
                print("child: refused:", error, flush=True)
            os._exit(0)
        os.waitpid(child, 0)
        with open(lock_path(path)) as f:
            print("lock file:", f.read().strip(), flush=True)
"""

# Run in another process: tries to take the checkpoint.
SECOND_PROCESS = """
    import sys
    from common.run_lock import CheckpointInUse, holding_checkpoint
    try:
        with holding_checkpoint(sys.argv[1]):
            print("held")
    except CheckpointInUse as error:
        print("refused:", error)
"""


def run_python(code, *args):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@needs_flock
@needs_fork
def test_a_forked_child_of_the_holder_is_refused_the_checkpoint_its_parent_trains_to(tmp_path):
    """The child inherits the parent's record of its holds; were it kept, the
    child's own fit would nest inside the parent's hold and train to the
    same checkpoint. It is refused, naming its parent, and the parent's
    lock file is left as it was."""
    path = tmp_path / "run.npz"
    parent_line, child_line, lock_line = run_python(CHILD_OF_A_HOLDER, path)
    parent = int(parent_line.split()[1])
    assert child_line == (
        f"child: refused: checkpoint {path} is in use: another training (process {parent}) "
        f"writes its checkpoints there; wait for it to end, or give another checkpoint path "
        f"(the lock is {os.path.realpath(lock_path(path))})")
    assert lock_line == f"lock file: {parent}"
    assert not Path(lock_path(path)).exists()  # the parent removed it when it ended


@needs_flock
def test_a_holder_ending_between_the_open_and_the_lock_leaves_one_holder(tmp_path, monkeypatch):
    """The previous holder removes its lock file and ends just after this
    process has opened that file and just before it locks it: the lock this
    process then gets is on a file no longer at the path. It must take the
    lock again on the file now at the path, or a second training would
    create a new lock file, lock it too, and both would write the checkpoint."""
    path = tmp_path / "run.npz"
    name = os.path.realpath(lock_path(path))
    holder = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)  # the previous holder
    run_lock.fcntl.flock(holder, run_lock.fcntl.LOCK_EX | run_lock.fcntl.LOCK_NB)
    real_flock = run_lock.fcntl.flock
    ended = []

    def flock(fd, operation):
        if not ended:  # between this process's open and its lock: the holder ends
            os.unlink(name)  # (as run_lock._release does: unlink while locked, then close)
            os.close(holder)
            ended.append(True)
        return real_flock(fd, operation)

    racy = types.SimpleNamespace(flock=flock, LOCK_EX=run_lock.fcntl.LOCK_EX,
                                 LOCK_NB=run_lock.fcntl.LOCK_NB, LOCK_SH=run_lock.fcntl.LOCK_SH)
    monkeypatch.setattr(run_lock, "fcntl", racy)
    with holding_checkpoint(path):
        assert run_python(SECOND_PROCESS, path) == [
            f"refused: checkpoint {path} is in use: another training (process {os.getpid()}) "
            f"writes its checkpoints there; wait for it to end, or give another checkpoint "
            f"path (the lock is {name})"]
        assert Path(name).read_text() == f"{os.getpid()}\n"  # the file at the path is ours
    assert not Path(name).exists()
    assert run_python(SECOND_PROCESS, path) == ["held"]  # released at the end
