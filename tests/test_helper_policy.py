"""When the helper process computes half of a batch, and when this process
gives up on it (common.data_parallel): a helper that cannot start is tried
once per process, the helper rests only after SLOW_STEPS late batches *in a
row*, and a batch splits only when its smaller half has MIN_HALF_ROWS rows.

The module's own thresholds are used here. The helper's lateness is
simulated by a clock that the fake helper moves on, not by sleeping.
"""

import time
import types
import warnings

import numpy as np
import pytest

from common import batch_worker, data_parallel, memory
from common.optimizer import Adam
from common.trainer import Trainer
from models import Seq2seq

from helper_processes import (  # noqa: F401  (two_threads: a fixture for every test here)
    needs_processes,
    two_threads,
)


class CannotStart:
    """A helper whose process cannot be started (as when fork gets ENOMEM)."""

    attempts = 0

    def __init__(self):
        type(self).attempts += 1
        raise OSError(12, "Cannot allocate memory")


def addition_pairs(n):
    rng = np.random.default_rng(0)
    return rng.integers(1, 13, (n, 7)), rng.integers(1, 13, (n, 5))


@needs_processes
def test_a_helper_that_cannot_start_is_tried_once_per_process_with_one_warning(monkeypatch):
    """Each try is a process start and a warning: retried at every batch, a
    run that cannot have a helper paid for both at every batch. It is tried
    at the first batch that splits, never again in this process (nor in a
    later fit), and the run's losses are those of a run without a helper."""
    monkeypatch.setattr(CannotStart, "attempts", 0)
    monkeypatch.setattr(batch_worker, "BatchWorker", CannotStart)
    x, t = addition_pairs(192)
    model = Seq2seq(13, 16, 128, seed=0)  # the textbook's addition model: its batches split
    assert data_parallel.splits(model, 64)
    trainer = Trainer(model, Adam())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(x, t, max_epoch=1, batch_size=64, eval_interval=1, verbose=False)
        trainer.fit(x, t, max_epoch=1, batch_size=64, eval_interval=1, verbose=False)
    assert CannotStart.attempts == 1
    assert [str(w.message) for w in caught if "rnnlab" in str(w.message)] == [
        "rnnlab: computing half of each batch in a helper process failed ([Errno 12] Cannot "
        "allocate memory); this process computes both halves"]

    monkeypatch.setattr(data_parallel, "_disabled", True)  # never a helper
    alone = Trainer(Seq2seq(13, 16, 128, seed=0), Adam())
    for _ in range(2):
        alone.fit(x, t, max_epoch=1, batch_size=64, eval_interval=1, verbose=False)
    assert len(trainer.loss_list) == 6 and trainer.loss_list == alone.loss_list


class Clock:
    """``time.perf_counter`` as ``data_parallel`` reads it, moved on by hand."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self):
        return self.now


class FakeHelper:
    """A helper whose half takes ``seconds`` on ``clock``."""

    timeout = None

    def __init__(self, clock, seconds):
        self.clock, self.seconds = clock, seconds

    def wait(self):
        self.clock.now += self.seconds
        return "its half"


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(data_parallel, "time",
                        types.SimpleNamespace(perf_counter=clock.perf_counter,
                                              monotonic=time.monotonic))
    return clock


def test_late_batches_not_in_a_row_do_not_send_the_helper_to_rest(clock):
    """The helper rests (this process computes both halves for REST_SECONDS)
    when another program has its core: SLOW_STEPS late batches in a row. A
    late batch now and then is noise, and an on-time batch starts the count
    again; had late batches been counted in all, the helper would rest
    after any SLOW_STEPS of them over a run."""
    mine = 0.001  # this process's own half, in seconds
    late = 10 * max(data_parallel.SLOW_SECONDS, mine)
    state = {"slow": 0}
    rests = data_parallel.rests()
    for _ in range(2 * data_parallel.SLOW_STEPS):  # late, on time, late, on time, ...
        for seconds in (late, 0.0):
            assert data_parallel._collect(state, FakeHelper(clock, seconds), mine) == "its half"
    assert data_parallel.rests() == rests
    assert data_parallel._resting_until == 0.0  # not resting

    for _ in range(data_parallel.SLOW_STEPS):  # then late SLOW_STEPS times in a row
        assert data_parallel._collect(state, FakeHelper(clock, late), mine) == "its half"
    assert data_parallel.rests() == rests + 1
    assert data_parallel._resting_until > time.monotonic()


def test_an_odd_batch_splits_only_when_its_smaller_half_has_min_half_rows(monkeypatch):
    """A batch of 2 * MIN_HALF_ROWS - 1 rows has halves of MIN_HALF_ROWS - 1
    and MIN_HALF_ROWS rows: this process's half, the smaller, is too short
    to repay the hand-off, so it is not split; and the memory estimate,
    which asks the same question of a model not built yet, agrees."""
    least = data_parallel.MIN_HALF_ROWS
    size = 128 * 512  # an LSTM of H = 128: Wh is 128 x 512, 256 KiB in float32
    assert (least - 1) * size >= data_parallel.MIN_HALF_STEP_MULTIPLY_ADDS  # rows decide
    assert [data_parallel.halves_repay(rows, size, 4 * size)
            for rows in (2 * least - 2, 2 * least - 1, 2 * least, 2 * least + 1)] == \
        [False, False, True, True]
    monkeypatch.setattr(data_parallel, "_helpers_here", lambda: True)
    assert not memory.may_split(2 * least - 1, (128, 512))
    assert memory.may_split(2 * least, (128, 512))


def test_a_helper_later_than_slow_seconds_but_not_than_this_process_does_not_rest(clock):
    """The helper is late only when it is later than this process's own half
    too (common.data_parallel._collect): waiting SLOW_SECONDS for a helper
    whose half is as long as this process's is no sign that another program
    has its core, and must not send it to rest (a large model's halves take
    far longer than SLOW_SECONDS, both of them)."""
    mine = 20 * data_parallel.SLOW_SECONDS  # this process's own half, in seconds
    waited = mine / 2  # the helper's lateness: above SLOW_SECONDS, below this process's half
    assert data_parallel.SLOW_SECONDS < waited < mine
    state = {"slow": 0}
    rests = data_parallel.rests()
    for _ in range(2 * data_parallel.SLOW_STEPS):
        assert data_parallel._collect(state, FakeHelper(clock, waited), mine) == "its half"
    assert data_parallel.rests() == rests
    assert state["slow"] == 0
    assert data_parallel._resting_until == 0.0

    # Later than this process's half as well, SLOW_STEPS times in a row: it rests.
    for _ in range(data_parallel.SLOW_STEPS):
        data_parallel._collect(state, FakeHelper(clock, 2 * mine), mine)
    assert data_parallel.rests() == rests + 1


def test_a_half_of_exactly_the_least_multiply_adds_splits():
    """The thresholds of common.data_parallel are bounds that count as enough:
    a half of exactly MIN_HALF_ROWS rows, exactly MIN_HALF_STEP_MULTIPLY_ADDS
    multiply-adds a step, recurrent weights of exactly MAX_HALF_WEIGHT_BYTES
    repay the hand-off (the README: "halves of fewer than 16 rows, ... each
    half's step product under 2^19 multiply-adds, recurrent weights over 4 MiB
    ... compute the whole batch")."""
    least = data_parallel.MIN_HALF_STEP_MULTIPLY_ADDS
    rows = 2 * data_parallel.MIN_HALF_ROWS
    weight_size = least // data_parallel.MIN_HALF_ROWS  # each half: exactly `least` a step
    assert data_parallel.MIN_HALF_ROWS * weight_size == least
    assert data_parallel.halves_repay(rows, weight_size, 4 * weight_size)
    assert not data_parallel.halves_repay(rows, weight_size - 1, 4 * (weight_size - 1))
