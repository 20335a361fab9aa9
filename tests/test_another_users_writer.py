"""A temporary of a live writer that belongs to another user is left alone.

``os.kill(pid, 0)`` on another user's process raises ``PermissionError``:
the process is running (else it would be ``ProcessLookupError``), so its
temporary is a write in progress (two users writing one shared folder's
file, a run under sudo and one without), not a killed writer's leftover.
As root every process can be signalled, so the refusal is simulated.
"""

import errno
import os

from common import serialization
from common.serialization import atomic_write, remove_stale_temporaries


def test_a_temporary_of_another_users_running_writer_is_kept(tmp_path, monkeypatch):
    other_users_pid = 4_000_000 + 123  # not this process
    theirs = tmp_path / f".model.npz.{serialization._HOST}-{other_users_pid}-0123abcd.tmp"
    theirs.write_bytes(b"half of their model")
    real_kill = os.kill

    def kill(pid, sig):
        if pid == other_users_pid:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)

    assert remove_stale_temporaries(tmp_path / "model.npz") == []
    atomic_write(tmp_path / "model.npz", lambda f: f.write(b"mine"))

    assert theirs.read_bytes() == b"half of their model"
    assert (tmp_path / "model.npz").read_bytes() == b"mine"
