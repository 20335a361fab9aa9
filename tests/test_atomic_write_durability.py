"""atomic_write makes its file durable before it replaces the old one: the
new content is fsynced before the rename (else a power loss right after
the rename can leave an empty or partial file where a whole one was), and
the folder is fsynced after it (else the rename itself can be lost).

What reaches the disk cannot be seen without pulling the plug, so the
order of the calls is what is checked.
"""

import os
import stat

import numpy as np

from common.serialization import atomic_write, save_npz


def record_durability_calls(monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        mode = os.fstat(fd).st_mode
        events.append(("fsync", "folder" if stat.S_ISDIR(mode) else "file"))
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        events.append(("replace", os.path.basename(os.fspath(dst))))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_the_new_file_is_fsynced_before_it_replaces_the_old_and_the_folder_after(
        tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    path.write_bytes(b"the old content")
    events = record_durability_calls(monkeypatch)

    atomic_write(path, lambda f: f.write(b"the new content"))

    assert events == [("fsync", "file"), ("replace", "model.npz"), ("fsync", "folder")]
    assert path.read_bytes() == b"the new content"


def test_a_checkpoint_sized_save_npz_goes_the_same_way(tmp_path, monkeypatch):
    events = record_durability_calls(monkeypatch)

    save_npz(tmp_path / "run.npz", {"w": np.zeros((256, 64), np.float32)}, {"format": "x"})

    assert events == [("fsync", "file"), ("replace", "run.npz"), ("fsync", "folder")]
