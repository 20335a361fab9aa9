"""The memory estimate made before training: the parameter shapes it counts
are the models' own, and the estimate is compared with what is available."""

import math
import os
import re
from pathlib import Path

import pytest

from common.memory import (
    NotEnoughMemory,
    available_bytes,
    check_memory,
    estimate_training_bytes,
    language_model_shapes,
)
from models import build_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind, D, H, tie", [("simple", 6, 7, False), ("lstm", 6, 7, False),
                                             ("gru", 6, 7, False), ("better", 6, 7, False),
                                             ("better", 8, 8, True)])
def test_the_shapes_counted_are_those_of_the_built_model(kind, D, H, tie):
    model = build_model(kind, 30, wordvec_size=D, hidden_size=H, num_layers=2,
                        tie_weights=tie if kind == "better" else None, seed=0)
    built = sorted(p.shape for p in model.named_params().values())
    assert sorted(language_model_shapes(kind, 30, D, H, num_layers=2, tied=tie)) == built


def test_estimate_counts_parameters_optimizer_activations_and_logits():
    shapes = language_model_shapes("simple", 10000, 100, 100)
    n = sum(math.prod(s) for s in shapes)
    sgd = estimate_training_bytes(shapes, 20, 35, "SGD")
    adam = estimate_training_bytes(shapes, 20, 35, "Adam")
    assert sgd["parameters"] == 2 * 4 * n and sgd["optimizer"] == 0
    assert adam["optimizer"] == 2 * 4 * n
    assert sgd["logits"] == 3 * 20 * 35 * 10000 * 4
    assert sgd["initialisation"] == 2 * 8 * 100 * 10000  # float64 draws of the largest
    # The size the kernel once killed (--hidden-size 50000 on the demo's 418
    # words, 24 GiB): its weights alone are 10 GB, the estimate far more.
    big = estimate_training_bytes(language_model_shapes("simple", 418, 100, 50000), 10, 5)
    assert big["total"] > 40e9
    assert sgd["total"] > sum(v for k, v in sgd.items() if k != "total")


def test_check_memory_refuses_with_the_estimate_and_the_limit():
    estimate = estimate_training_bytes(language_model_shapes("lstm", 10000, 50000, 50000),
                                       20, 35)
    with pytest.raises(NotEnoughMemory, match=r"needs about [\d.]+ GiB of memory \(parameters "
                                              r".* but only 1.00 GiB is available; try less"):
        check_memory(estimate, 2**30, hint="; try less")
    check_memory(estimate, None)  # unknown: no refusal
    check_memory(estimate, estimate["total"])
    assert available_bytes() is None or available_bytes() > 0


# -- what an audit of the estimates found: runs the check passed that then needed more ------------


def test_a_helper_computing_half_of_each_batch_is_counted(monkeypatch):
    """Its replica, the shared segment and its interpreter came to 1.5-1.7x an
    estimate that left them out."""
    from common import data_parallel
    from common.memory import BASE_BYTES, may_split

    monkeypatch.setattr(data_parallel, "_helpers_here", lambda: True)
    assert may_split(128, (128, 512)) and may_split(32, (256, 256))
    assert not may_split(20, (128, 512))  # halves of 10 rows: not split
    assert not may_split(128, (650, 2600))  # a recurrent weight over 4 MiB
    assert not may_split(128, (128, 512), replicable=False)
    shapes = language_model_shapes("simple", 30000, 256, 256)
    n = sum(math.prod(s) for s in shapes)
    alone = estimate_training_bytes(shapes, 32, 5)
    split = estimate_training_bytes(shapes, 32, 5, halves=True)
    assert "helper" not in alone
    assert split["helper"] == 3 * 4 * n  # here: the segment's two copies, the sum's temporary
    assert split["helper process"] == 2 * 4 * n + BASE_BYTES  # its replica and its Python
    assert split["total"] == alone["total"] + split["helper"] + split["helper process"]
    monkeypatch.setattr(data_parallel, "_helpers_here", lambda: False)  # one core
    assert not may_split(128, (128, 512))


def test_evaluation_rows_and_a_models_own_parts_are_counted():
    """eval_perplexity's 10 x 35 rows of logits, 7x the default batch's 50."""
    shapes = language_model_shapes("simple", 250000, 16, 16)
    train = estimate_training_bytes(shapes, 10, 5)
    held_out = estimate_training_bytes(shapes, 10, 5, eval_rows=350, extra={"attention": 7})
    assert held_out["logits"] == 3 * 350 * 250000 * 4 == 7 * train["logits"]
    assert held_out["attention"] == 7
    assert held_out["total"] == sum(v for k, v in held_out.items() if k != "total") + \
        (train["total"] - sum(v for k, v in train.items() if k != "total"))


def test_the_address_space_limit_bounds_what_is_available_and_is_named():
    """Under ulimit -v the check passed and OpenBLAS died (or segfaulted) later."""
    import subprocess
    import sys

    code = """
import resource
from common.memory import (AS_ARENA_BYTES, AS_GROWTH_BYTES, BASE_BYTES, _stack_bytes,
                           available_bytes, check_memory, memory_limits, rooms, _meminfo)
from common.parallel import num_threads
used = _meminfo("VmSize", "/proc/self/status")
resource.setrlimit(resource.RLIMIT_AS, (used + 300 * 2**20, resource.RLIM_INFINITY))
limits = memory_limits()
left = limits["the process's address-space limit (ulimit -v)"]
assert 250 * 2**20 < left <= 300 * 2**20, left
assert available_bytes() == min(limits.values()) <= left
estimate = {"parameters": 2**30, "helper process": 2**29, "total": 2**30}
# The limit already counts this process's Python but not what its mappings grow by after
# the check (threads' stacks and malloc arenas, OpenBLAS's buffers); the helper has its
# own address space.
room = rooms(estimate)["the process's address-space limit (ulimit -v)"]
growth = AS_GROWTH_BYTES + (num_threads() - 1) * (AS_ARENA_BYTES + _stack_bytes())
assert room == left + BASE_BYTES - growth + 2**29, (room, left)
try:
    check_memory(estimate, available_bytes(estimate), hint="; less")
except MemoryError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    # What the limit binds, against what is left under it (not more than the limit).
    assert re.fullmatch(r"this run needs about 0\.\d\d GiB under the process's address-space "
                        r"limit \(ulimit -v\) \(parameters 1\.00 GiB, helper process 0\.50 GiB, "
                        r"the interpreter 100 MiB, less 0\.\d\d GiB that limit does not bind: the "
                        r"helper's own process, the interpreter already mapped\), but only "
                        r"0\.2\d GiB is left under it, \d+ MiB short; less\n", done.stdout), \
        done.stdout


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_control_groups_memory_limit_bounds_what_is_available(tmp_path, version):
    from common.memory import _cgroup_left

    membership = tmp_path / "cgroup"
    if version == "v2":
        membership.write_text("0::/job/42\n")
        group = tmp_path / "job" / "42"
        group.mkdir(parents=True)
        (group / "memory.max").write_text("1073741824\n")
        (group / "memory.current").write_text("73741824\n")
    else:
        membership.write_text("12:cpu,cpuacct:/x\n4:memory:/docker/abc\n")
        group = tmp_path / "memory" / "docker" / "abc"
        group.mkdir(parents=True)
        (group / "memory.limit_in_bytes").write_text("1073741824\n")
        (group / "memory.usage_in_bytes").write_text("73741824\n")
    assert _cgroup_left(str(tmp_path), str(membership)) == 10**9
    # Inactive file cache is reclaimed before anything is killed: not in use.
    key = "inactive_file" if version == "v2" else "total_inactive_file"
    (group / "memory.stat").write_text(f"cache 60000000\n{key} 50000000\nrss 1\n")
    assert _cgroup_left(str(tmp_path), str(membership)) == 10**9 + 50000000
    # No limit ("max", or v1's number near 2^63): not a bound.
    if version == "v2":
        (group / "memory.max").write_text("max\n")
    else:
        (group / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert _cgroup_left(str(tmp_path), str(membership)) is None


def test_the_address_space_allowance_counts_the_pools_threads_and_their_stacks(monkeypatch):
    """A 1 GiB ulimit -s gives each thread a 1 GiB stack: a run the check accepted
    died starting its threads; and a thread that cannot start is out of memory."""
    from common import memory, parallel

    monkeypatch.setattr(parallel, "num_threads", lambda: 3)
    monkeypatch.setattr(memory, "_stack_bytes", lambda: 2**30)
    bound = memory.ADDRESS_SPACE
    assert memory.credit(bound, {"helper process": 5}) == \
        memory.BASE_BYTES - memory.AS_GROWTH_BYTES - 2 * (memory.AS_ARENA_BYTES + 2**30) + 5
    monkeypatch.setattr(parallel, "num_threads", lambda: 1)  # no pool thread
    assert memory.credit(bound, {}) == memory.BASE_BYTES - memory.AS_GROWTH_BYTES

    class NoThreads:
        def submit(self, *args):
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(parallel, "_get_pool", lambda: NoThreads())
    with pytest.raises(MemoryError, match="cannot start a thread"):
        parallel._submit(print)
