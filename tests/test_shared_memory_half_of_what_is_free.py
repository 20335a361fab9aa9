"""A helper's segment takes at most half of the shared memory free
(common.step_worker.fits_shared_memory): /dev/shm is a small file system
in a container (64 MiB by default), shared with whatever else runs there,
and a process writing past its end is killed."""

import types

from common import step_worker


def test_a_segment_may_take_half_of_the_free_shared_memory_not_more(monkeypatch):
    free = 64 << 20
    monkeypatch.setattr(step_worker.os, "statvfs", lambda path: types.SimpleNamespace(
        f_bavail=free // 4096, f_frsize=4096))
    assert step_worker.fits_shared_memory(free // 2)
    assert not step_worker.fits_shared_memory(free // 2 + 1)
    assert not step_worker.fits_shared_memory(3 * free // 4)
