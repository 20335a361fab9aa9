"""Feeders: how a trainer cuts its training data into batches.

A feeder knows the number of iterations in an epoch and gives the batch of
an iteration. Its position lives in the trainer's counters (``epoch``,
``iteration``, ``time_idx``), so a checkpoint of the trainer is enough to
continue exactly where it stopped.

* :class:`Lanes`: truncated BPTT on one long id sequence (``RnnlmTrainer``).
* :class:`ShuffledRows`: shuffled mini-batches of the rows of (input,
  target) arrays, a new order every epoch (the textbook's ``Trainer``).
"""

import numpy as np


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def lane_positions(size, batch_size, time_size, time_idx):
    """The ``(batch_size, time_size)`` positions of the next lane batch.

    Row ``i`` reads ``i * (size // batch_size) + time_idx + [0, time_size)``,
    modulo ``size``.
    """
    jump = size // batch_size
    offsets = np.arange(batch_size) * jump
    return (offsets[:, None] + time_idx + np.arange(time_size)) % size


class Lanes:
    """``batch_size`` lanes read ``time_size`` ids at a time (truncated BPTT).

    Lane ``i`` starts at ``i * (len(xs) // batch_size)``; every batch
    continues each lane where the last one stopped, wrapping at the end, and
    the read position (``trainer.time_idx``) runs on across epochs.

    Shape:
        xs, ts: ``(L,)`` ids, ``ts`` being ``xs`` shifted by one.
        a batch: two ``(batch_size, time_size)`` arrays.
    """

    def __init__(self, xs, ts, batch_size: int, time_size: int):
        xs, ts = np.asarray(xs), np.asarray(ts)
        if xs.ndim != 1 or xs.shape != ts.shape:
            raise ValueError(f"xs and ts must be 1-D arrays of one length, got {xs.shape}, "
                             f"{ts.shape}")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.time_size = _positive_int(time_size, "time_size")
        self.xs, self.ts = xs, ts
        self.iters_per_epoch = len(xs) // (self.batch_size * self.time_size)
        if self.iters_per_epoch == 0:
            raise ValueError(
                f"the corpus has {len(xs)} positions, fewer than one batch of batch_size * "
                f"time_size = {self.batch_size * self.time_size}; use a smaller batch or time size"
            )

    def next_batch(self, trainer):
        """The batch at ``trainer.time_idx``; advances it."""
        positions = lane_positions(len(self.xs), self.batch_size, self.time_size,
                                   trainer.time_idx)
        trainer.time_idx = (trainer.time_idx + self.time_size) % len(self.xs)
        return self.xs[positions], self.ts[positions]

    def max_id(self):
        return int(max(self.xs.max(), self.ts.max()))


class ShuffledRows:
    """Mini-batches of ``batch_size`` rows of ``x`` and ``t``, in an order
    drawn anew every epoch from ``seed`` and the epoch number.

    An epoch is ``len(x) // batch_size`` batches (the rows left over are
    trained on in later epochs' orders, as in the textbook). The order of
    epoch ``e`` is ``default_rng([seed, e]).permutation(len(x))``: it depends
    on nothing else, so a resumed run draws the same batches.

    Shape:
        x: ``(N, ...)`` inputs, e.g. ``(N, Tq)`` ids; t: ``(N, ...)`` targets.
        a batch: ``x[rows]``, ``t[rows]`` for ``batch_size`` rows.
    """

    def __init__(self, x, t, batch_size: int, seed: int = 0):
        x, t = np.asarray(x), np.asarray(t)
        if x.ndim < 1 or t.ndim < 1 or len(x) != len(t):
            raise ValueError(f"x and t must have one row per example, got shapes {x.shape} "
                             f"and {t.shape}")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.x, self.t, self.seed = x, t, seed
        self.iters_per_epoch = len(x) // self.batch_size
        if self.iters_per_epoch == 0:
            raise ValueError(f"there are {len(x)} examples, fewer than one batch of "
                             f"batch_size = {self.batch_size}; use a smaller batch size")
        self._order = (None, None)  # (epoch, permutation)

    def order(self, epoch):
        if self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(
                len(self.x)))
        return self._order[1]

    def next_batch(self, trainer):
        """The batch of ``trainer.iteration`` in epoch ``trainer.epoch``'s order."""
        start = trainer.iteration * self.batch_size
        rows = self.order(trainer.epoch)[start:start + self.batch_size]
        return self.x[rows], self.t[rows]

    def max_id(self):
        return int(max(self.x.max(), self.t.max()))
