"""Atomic writes: the temporary files of killed writers are cleaned up, live writers' kept.

A writer killed with SIGKILL (the kernel's out-of-memory killer, ``kill -9``,
a power cut) cannot delete its temporary file. These tests kill a real child
process in the middle of :func:`common.serialization.atomic_write` and check
that the next write to the same path removes what it left (issue 12, finding 3).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from common import serialization
from common.serialization import (
    atomic_open,
    atomic_write,
    remove_stale_temporaries,
    save_npz,
)
from datasets._download import atomic_file

REPO_ROOT = Path(__file__).resolve().parents[1]
posix_only = pytest.mark.skipif(os.name != "posix", reason="kills a child with SIGKILL")


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".part")))


def start_writer(path: Path, ready: Path) -> subprocess.Popen:
    """A child that starts an atomic write of ``path`` and hangs inside it."""
    code = textwrap.dedent(
        f"""
        import pathlib, time
        from common.serialization import atomic_write

        def write(f):
            f.write(b"half of the new content")
            f.flush()
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(60)

        atomic_write({str(path)!r}, write)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            child.wait()
            pytest.fail("the writer process did not start its write")
        time.sleep(0.02)
    return child


def dead_pid() -> int:
    """The id of a process that has finished (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@posix_only
def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    child = start_writer(path, tmp_path / "ready")
    child.send_signal(signal.SIGKILL)
    child.wait()
    [left] = temporaries(tmp_path)  # what SIGKILL leaves behind
    assert left.startswith(".model.npz.")

    atomic_write(path, lambda f: f.write(b"new"))

    assert path.read_bytes() == b"new"
    assert temporaries(tmp_path) == []


@posix_only
def test_a_live_writers_temporary_is_left_alone(tmp_path):
    path = tmp_path / "model.npz"
    child = start_writer(path, tmp_path / "ready")
    try:
        [theirs] = temporaries(tmp_path)
        atomic_write(path, lambda f: f.write(b"mine"))
        assert temporaries(tmp_path) == [theirs]
        assert path.read_bytes() == b"mine"
    finally:
        child.kill()
        child.wait()


def test_only_this_targets_stale_temporaries_are_removed(tmp_path):
    pid = dead_pid()
    host = serialization._HOST
    stale = f".a.npz.{host}-{pid}-0123abcd.tmp"
    other_target = f".b.npz.{host}-{pid}-0123abcd.tmp"
    other_host = f".a.npz.{'f' * 8 if host != 'f' * 8 else '0' * 8}-{pid}-0123abcd.tmp"
    users_file = ".a.npz.my-notes.tmp"
    for name in (stale, other_target, other_host, users_file):
        (tmp_path / name).write_bytes(b"x")

    atomic_write(tmp_path / "a.npz", lambda f: f.write(b"data"))

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a.npz", other_target, other_host, users_file]
    )


def test_old_style_temporaries_are_removed_only_when_a_day_old(tmp_path):
    old = tmp_path / ".a.npz.k3j_9x0q.tmp"  # tempfile.mkstemp's names, no process id
    fresh = tmp_path / ".a.npz.p0x9_abc.part"
    for file in (old, fresh):
        file.write_bytes(b"x")
    a_day_ago = time.time() - 25 * 3600
    os.utime(old, (a_day_ago, a_day_ago))

    removed = remove_stale_temporaries(tmp_path / "a.npz")

    assert removed == [str(old)]
    assert fresh.exists()


def test_the_corpus_cache_writer_cleans_up_too(tmp_path):
    stale = tmp_path / f".ids.npz.{serialization._HOST}-{dead_pid()}-0123abcd.tmp"
    stale.write_bytes(b"x")
    with atomic_file(tmp_path / "ids.npz") as f:
        f.write(b"ids")
    assert not stale.exists() and (tmp_path / "ids.npz").read_bytes() == b"ids"


def test_atomic_open_leaves_the_old_file_when_the_block_fails(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write(b"partial")
        raise RuntimeError("failed half way")
    assert path.read_bytes() == b"old"
    assert temporaries(tmp_path) == []


def test_a_folder_it_may_not_write_in_is_reported_with_the_file_asked_for(tmp_path,
                                                                          monkeypatch):
    """Not the temporary's name, which the caller never gave (a read-only
    folder, simulated: the tests may run as root, who may write anywhere)."""
    real_open = os.open

    def refusing(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(serialization.os, "open", refusing)
    with pytest.raises(PermissionError) as info:
        atomic_write(tmp_path / "m.npz", lambda f: f.write(b"x"))
    assert info.value.filename == str(tmp_path / "m.npz")
    assert str(info.value) == f"[Errno 13] Permission denied: '{tmp_path / 'm.npz'}'"


def test_a_target_that_cannot_be_a_file_is_refused_before_anything_is_written(tmp_path):
    """A folder in the file's place, or a file in a folder's place on the way:
    the error says which, with the path asked for, and nothing is left."""
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(NotADirectoryError, match=r"notes.txt is a file, not a folder: "
                                                 r"'.*notes.txt/sub/m.npz'"):
        atomic_write(tmp_path / "notes.txt" / "sub" / "m.npz", lambda f: f.write(b"x"))
    with pytest.raises(IsADirectoryError, match=r"it is a folder; give a file name in it: "
                                                r"'.*model.npz'"):
        atomic_write(tmp_path / "model.npz", lambda f: f.write(b"x"))
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "notes.txt"]
    assert os.listdir(tmp_path / "model.npz") == []


def test_a_path_given_as_bytes_is_a_path():
    """os.fsdecode's reading, as open() takes one."""
    assert serialization.check_target(b"runs/m.npz") == "runs/m.npz"


def test_a_very_long_file_name_still_gets_a_temporary(tmp_path):
    path = tmp_path / ("m" * 240 + ".npz")
    atomic_write(path, lambda f: f.write(b"x"))
    assert path.read_bytes() == b"x" and temporaries(tmp_path) == []


def test_save_npz_refuses_names_np_savez_would_take_as_its_own_arguments(tmp_path):
    for name in ("allow_pickle", "file"):
        with pytest.raises(ValueError, match=f"cannot be named '{name}'"):
            save_npz(tmp_path / "a.npz", {name: np.zeros(2)})
    assert list(tmp_path.iterdir()) == []
