"""Feeders: how a trainer cuts its training data into batches.

A feeder knows the number of iterations in an epoch and gives the batch of
an iteration. Its position lives in the trainer's counters (``epoch``,
``iteration``, ``time_idx``), so a checkpoint of the trainer is enough to
continue exactly where it stopped.

* :class:`Lanes`: truncated BPTT on one long id sequence (``RnnlmTrainer``).
* :class:`ShuffledRows`: shuffled mini-batches of the rows of (input,
  target) arrays, a new order every epoch (the textbook's ``Trainer``).

Both refuse, when given, float data holding NaN or infinity, and targets
that are all the loss's ``ignore_label`` (nothing to learn from); both tell
the trainer which batches score no target at all (:meth:`Lanes.scores_nothing`),
since such a batch's loss of 0 is no figure to average.
"""

import numpy as np


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_finite(name, a):
    """Refuse float data holding NaN or infinity (``a`` an array): training on
    it gives a NaN loss at whichever batch holds it; integer data passes."""
    if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        where = first[0] if len(first) == 1 else first
        raise ValueError(f"{name} holds NaN or infinite values (the first at index {where}, "
                         f"{a[first]}): remove or fill them before training")


def largest_id(x, t):
    """The largest id of the integer arrays among ``x`` and ``t``, or None
    when the targets ``t`` are not integer ids (regression values, one-hot
    rows): then there is no vocabulary to bound the loss by."""
    if not np.issubdtype(t.dtype, np.integer):
        return None
    return int(max(a.max() for a in (x, t) if np.issubdtype(a.dtype, np.integer)))


class _ScoredTargets:
    """Which targets the loss scores: those not ``ignore_label`` (None: every
    one), in every column of a row but the first with ``skip_first_column``
    (a sequence-to-sequence model's rows start with the decoder's start id)."""

    def __init__(self, name, t, ignore_label, skip_first_column=False):
        self.ignore_label, self.skip_first_column = ignore_label, skip_first_column
        scored = self.of(t)
        # Looked for only where the data holds the label at all: ordinary data
        # costs no comparison a batch.
        ignored = None if scored is None else scored == ignore_label
        self.some_ignored = ignored is not None and bool(ignored.any())
        if self.some_ignored and bool(ignored.all()):
            raise ValueError(f"every target in {name} is the loss's ignore_label "
                             f"{ignore_label}: there is nothing to learn from; give targets "
                             f"that are ids (the loss scores those that are not "
                             f"{ignore_label})")

    def of(self, t):
        if self.ignore_label is None or not np.issubdtype(t.dtype, np.integer):
            return None
        return t[:, 1:] if self.skip_first_column and t.ndim >= 2 else t

    def none_in(self, t) -> bool:
        return self.some_ignored and not bool((self.of(t) != self.ignore_label).any())


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

    ``ignore_label``: the loss's label of targets it does not score (None:
    it scores every one); ``ts`` must hold other targets too.

    Shape:
        xs, ts: ``(L,)`` ids, ``ts`` being ``xs`` shifted by one.
        a batch: two ``(batch_size, time_size)`` arrays.
    """

    def __init__(self, xs, ts, batch_size: int, time_size: int, ignore_label=None):
        xs, ts = np.asarray(xs), np.asarray(ts)
        if xs.ndim != 1 or xs.shape != ts.shape:
            raise ValueError(f"xs and ts must be 1-D arrays of one length, got {xs.shape}, "
                             f"{ts.shape}")
        check_finite("xs", xs)
        check_finite("ts", ts)
        self._scored = _ScoredTargets("ts", ts, ignore_label)
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
        """The batch at ``trainer.time_idx``; advances it (a trainer whose
        step then raises before its update puts it back: the batch is
        trained by the next ``fit``)."""
        positions = lane_positions(len(self.xs), self.batch_size, self.time_size,
                                   trainer.time_idx)
        trainer.time_idx = (trainer.time_idx + self.time_size) % len(self.xs)
        return self.xs[positions], self.ts[positions]

    def max_id(self):
        """The largest id in ``xs`` and ``ts`` (None: the targets are not ids)."""
        return largest_id(self.xs, self.ts)

    def scores_nothing(self, batch_t) -> bool:
        """Whether every target of the batch ``batch_t`` is the ignore label."""
        return self._scored.none_in(batch_t)


def rows_array(name: str, rows) -> np.ndarray:
    """``np.asarray(rows)``, with an error that says what to do for rows of
    several lengths (NumPy's own speaks of an "inhomogeneous shape")."""
    try:
        return np.asarray(rows)
    except ValueError as err:
        raise ValueError(f"{name} must be an array, one row per example, every row of one "
                         f"length (pad the shorter ones); NumPy cannot make one of it "
                         f"({err})") from None


class ShuffledRows:
    """Mini-batches of ``batch_size`` rows of ``x`` and ``t``, in an order
    drawn anew every epoch from ``seed`` and the epoch number.

    An epoch is ``len(x) // batch_size`` batches (the rows left over are
    trained on in later epochs' orders, as in the textbook). The order of
    epoch ``e`` is ``default_rng([seed, e]).permutation(len(x))``: it depends
    on nothing else, so a resumed run draws the same batches.

    ``ignore_label``: the loss's label of targets it does not score (None:
    it scores every one); ``skip_first_column``: the first column of ``t``
    is no target (a sequence-to-sequence model's decoder start id). ``t``
    must hold some target to score.

    Shape:
        x: ``(N, ...)`` inputs, e.g. ``(N, Tq)`` ids; t: ``(N, ...)`` targets.
        a batch: ``x[rows]``, ``t[rows]`` for ``batch_size`` rows.
    """

    def __init__(self, x, t, batch_size: int, seed: int = 0, ignore_label=None,
                 skip_first_column: bool = False):
        x, t = rows_array("x", x), rows_array("t", t)
        if x.ndim < 1 or t.ndim < 1 or len(x) != len(t):
            raise ValueError(f"x and t must have one row per example, got shapes {x.shape} "
                             f"and {t.shape}")
        check_finite("x", x)
        check_finite("t", t)
        name = "t[:, 1:] (the targets)" if skip_first_column else "t"
        self._scored = _ScoredTargets(name, t, ignore_label, skip_first_column)
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
        """The largest id in ``x`` and ``t`` (None: the targets are not ids)."""
        return largest_id(self.x, self.t)

    def scores_nothing(self, batch_t) -> bool:
        """Whether every scored target of the batch ``batch_t`` is the ignore label."""
        return self._scored.none_in(batch_t)
