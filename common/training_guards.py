"""The parts a training loop calls at fixed points to lose nothing: the
divergence guard (NaN policy), stopping on Ctrl-C, SIGTERM or SIGHUP,
checkpoints.

* :class:`DivergenceGuard` looks at every batch's loss, and at the
  parameters at the end of an epoch and before a checkpoint is written.
* :class:`StopOnSignals` turns the first Ctrl-C (SIGINT), SIGTERM or SIGHUP
  into a request to stop at the next iteration boundary.
* :class:`DeferredTerminate`, around a script's work outside ``fit``
  (evaluating, plotting, saving), remembers a SIGTERM or SIGHUP until that
  work is written instead of dying in the middle of it.
* :class:`Checkpointer` writes the checkpoint every N iterations or every
  epoch, never with non-finite weights.

SIGHUP is what a program gets when its terminal goes away: the window
closed, the SSH connection dropped. Its default action ends the process at
once, the work since the last checkpoint lost, and a run without one lost
whole; so it is taken as SIGTERM is. A SIGHUP that was ignored when the
run began (``nohup``, which asks the run to outlive its terminal) stays
ignored.
"""

import contextlib
import math
import multiprocessing
import os
import signal

from common.checkpoint import save_checkpoint
from common.util import finite_number, not_one_number

# on_nan="skip" gives up after this many bad batches in a row: by then the
# weights themselves are most likely broken.
MAX_SKIPS_IN_A_ROW = 10

# A loss above DIVERGENCE_FACTOR * log(V) counts as divergence. A model that
# predicts uniformly has loss log(V); a freshly initialised one is close to
# that, and training only lowers it. Five times over is out of reach for any
# model that is still learning, yet far below float32 overflow, so the test
# does not depend on how a CPU's exp or BLAS round huge values (on some CPUs
# a diverging run's loss stays finite, on others it becomes inf or NaN).
DIVERGENCE_FACTOR = 5.0
# log(V) of a tiny vocabulary is small; a floor keeps the bound meaningful.
MIN_DIVERGENCE_BOUND = 10.0


class TrainingDiverged(FloatingPointError):
    """The loss became NaN, infinite or impossibly large, or the parameters
    became NaN or infinite."""


# The status a command-line program exits with when a signal stopped it:
# 128 + the signal's number, as a shell reports a process the signal ended.
EXIT_CODES = {"SIGINT": 130, "SIGHUP": 129, "SIGTERM": 143}


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP stopped ``fit`` at an iteration boundary
    (after saving). ``signal`` is ``'SIGINT'``, ``'SIGTERM'`` or
    ``'SIGHUP'``; ``exit_code`` the status a command-line program exits with
    (130, 143 or 129: :data:`EXIT_CODES`)."""

    def __init__(self, message, checkpoint=None, signal_name="SIGINT"):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.signal = signal_name
        self.exit_code = EXIT_CODES[signal_name]


class TrainingOutOfMemory(MemoryError):
    """The machine ran out of memory during training (the last checkpoint is kept).

    ``model_as_it_stood``: whether the model holds the run's parameters as
    they stood (the failed batch given back), worth writing as a stop's
    are; False where the best epoch's could not be put back (the model then
    holds the last epoch's, not what the run was to give)."""

    model_as_it_stood = True


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a folder gone or made
    read-only): training stops there, since going on would train what a
    crash could lose. The file written before, if any, is kept whole (files
    are replaced atomically). ``path``: the checkpoint's."""

    def __init__(self, message, path):
        super().__init__(message)
        self.path = path


def divergence_bound(vocab_size: int) -> float:
    """The largest mean loss (nats) a training batch may have before the run
    counts as diverged: ``max(5 * log(V), 10)``."""
    return max(DIVERGENCE_FACTOR * math.log(max(vocab_size, 2)), MIN_DIVERGENCE_BOUND)


def _where(trainer):
    return f"epoch {trainer.epoch + 1}, iteration {trainer.iteration + 1}"


def _kept(checkpoint):
    if checkpoint and os.path.exists(checkpoint):
        return f"; the last good checkpoint {checkpoint} is kept"
    return ""


class DivergenceGuard:
    """Decides what a batch whose loss is NaN, inf or above ``bound`` does:
    ``on_nan='raise'`` stops with :class:`TrainingDiverged`; ``'skip'`` drops
    the batch (no update), resets the carried state and counts it."""

    def __init__(self, bound: float, on_nan: str = "raise", checkpoint=None):
        self.bound, self.on_nan, self.checkpoint = bound, on_nan, checkpoint

    def loss_ok(self, trainer, loss) -> bool:
        """True for a loss to learn from; False for a batch to skip; raises
        when the run has diverged, or for a loss that is not one number."""
        if what := not_one_number(loss):
            raise TypeError(f"{type(trainer.model).__name__}.forward must return the mean loss "
                            f"as one number, got {what}")
        # (False for NaN; an infinite loss must fail too where the bound is
        # infinite, a model of no vocabulary, and -inf wherever it comes.)
        if math.isfinite(loss) and loss <= self.bound:
            trainer._skipped_in_a_row = 0
            return True
        where = _where(trainer)
        if self.on_nan == "skip":
            trainer.skipped_batches += 1
            trainer._skipped_in_a_row += 1
            if hasattr(trainer.model, "reset_state"):
                trainer.model.reset_state()  # the carried state may be NaN too
            if trainer._skipped_in_a_row < MAX_SKIPS_IN_A_ROW:
                return False
            where += f" ({MAX_SKIPS_IN_A_ROW} batches in a row were skipped)"
        what = f"{loss}" if not math.isfinite(loss) else (
            f"{loss:.4g}, above {self.bound:.1f} (5 x log of the vocabulary size, far worse "
            "than guessing)")
        # Dropping such batches is only advice for a run that does not already.
        skip = "" if self.on_nan == "skip" else \
            ", or on_nan='skip' (--on-nan skip) to drop such batches"
        if getattr(trainer.optimizer, "t", None) == 0:
            # No update has been made: the learning rate cannot be the cause.
            raise TrainingDiverged(
                f"the loss became {what} at {where}, before any update: the initial weights "
                f"(their scale: init_scale, --init-scale) or the data give it; build the "
                f"model with a smaller init_scale (or the default), or check the inputs"
            )
        raise TrainingDiverged(
            f"the loss became {what} at {where}{_kept(self.checkpoint)}. Try a smaller learning "
            f"rate or gradient clipping (max_grad, --max-grad){skip}."
        )

    def check_params(self, trainer) -> None:
        """Raise :class:`TrainingDiverged` if a parameter is NaN or infinite."""
        # max and min are NaN when any element is, and carry an infinity: no
        # temporary the size of the parameter (an isfinite mask was one).
        if all(math.isfinite(p.max()) and math.isfinite(p.min())
               for p in trainer.model.params if p.size):
            return
        epoch = trainer.epoch + (trainer.iteration > 0)
        iteration = trainer.iteration or trainer.iters_per_epoch
        raise TrainingDiverged(
            f"the parameters became NaN or infinite at epoch {epoch}, iteration "
            f"{iteration}{_kept(self.checkpoint)}. Try a smaller learning rate or gradient "
            "clipping (max_grad, --max-grad)."
        )


class Checkpointer:
    """Writes ``path`` every ``every`` iterations (None: at the end of every
    epoch), and when asked; never with non-finite weights, nor with a
    learning rate that resuming would refuse (a schedule of one's own that
    made it NaN or negative), so the last good checkpoint survives."""

    def __init__(self, path, every: int | None, guard: DivergenceGuard):
        self.path, self.every, self.guard = path, every, guard

    def after_iteration(self, trainer, done: int) -> None:
        if self.path and self.every and done % self.every == 0:
            self.save(trainer)

    def end_epoch(self, trainer) -> None:
        if self.path and not self.every:
            self.save(trainer)

    def save(self, trainer) -> None:
        if self.path:
            self.guard.check_params(trainer)
            lr = getattr(trainer.optimizer, "lr", 0.0)
            if not (finite_number(lr) and lr >= 0):
                raise ValueError(f"the optimizer's lr became {lr!r} {stopped_at(trainer)}: a "
                                 f"learning rate must be a finite number >= 0 (what set it? a "
                                 f"schedule of one's own?); the checkpoint was not written"
                                 f"{_kept(self.path)}")
            try:
                save_checkpoint(self.path, trainer)
            except OSError as exc:
                raise checkpoint_write_error(self.path, trainer, exc) from exc


def checkpoint_write_error(path, trainer, exc: OSError) -> CheckpointWriteError:
    """The :class:`CheckpointWriteError` for ``exc``, raised writing ``path`` from ``trainer``."""
    kept = ("the checkpoint written there before is kept: continue from it once the file can "
            "be written" if os.path.exists(path) else "no checkpoint was written")
    reason = exc.strerror or str(exc)
    return CheckpointWriteError(
        f"cannot write the checkpoint {path} ({reason}): training stopped "
        f"{stopped_at(trainer)}; {kept}", path)


def stopped_at(trainer) -> str:
    """Where a run that stopped now stands, in words: ``after epoch E`` at an
    epoch's end, else ``at epoch E, iteration I`` (I iterations of it done)."""
    if trainer.iteration == 0 and trainer.epoch:
        return f"after epoch {trainer.epoch}"
    return f"at epoch {trainer.epoch + 1}, iteration {trainer.iteration}"


class StopOnSignals:
    """While training, the first Ctrl-C (SIGINT), SIGTERM or SIGHUP asks the
    loop to stop at the next iteration boundary (so the checkpoint is
    consistent); a second Ctrl-C interrupts at once, a second SIGTERM or
    SIGHUP terminates. A SIGHUP ignored when training began (``nohup``) is
    left ignored.

    Except SIGTERM in a daemonic process of :mod:`multiprocessing` (a
    ``Pool``'s worker, a ``Process(daemon=True)``): its parent ends it with
    ``terminate()`` (SIGTERM; leaving ``with Pool()`` does so), and means
    it to end there, quietly; its SIGTERM is left as it is. (Taken over, it
    stopped the worker's ``fit`` with a :class:`TrainingInterrupted`
    traceback printed per worker, and nothing to resume from.)
    """

    SIGNALS = {"SIGINT": signal.default_int_handler, "SIGTERM": signal.SIG_DFL,
               "SIGHUP": signal.SIG_DFL}

    def __init__(self, requested: str | None = None):
        # The name of the signal that asked to stop; given, a stop asked before
        # this context (the same signal again then takes its default action).
        self.requested = requested
        self.previous = {}

    def __enter__(self):
        _active.append(self)
        for name in self.SIGNALS:
            signum = getattr(signal, name, None)  # (no SIGHUP on Windows)
            if signum is None or (name == "SIGTERM" and _ended_by_terminate()):
                continue
            if name == "SIGHUP" and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # nohup: the run is to outlive its terminal
            try:
                self.previous[signum] = signal.signal(signum, self._handler)
            except ValueError:  # not the main thread: leave signals alone
                break
        received = [d.signal_name for d in _deferring if d.received]
        if received:  # a SIGTERM or SIGHUP just before: stop at once
            self._stop(received[0])
        if self.requested:
            self._stop(self.requested)
        return self

    def _handler(self, signum, frame):
        self._stop(signal.Signals(signum).name)

    def _stop(self, name):
        """Stop at the next boundary; the same signal again takes its default
        action (another one, a Ctrl-C after a SIGTERM, only asks again)."""
        self.requested = self.requested or name  # (the first names the stop)
        with contextlib.suppress(ValueError):  # (not the main thread: none was taken over)
            signal.signal(getattr(signal, name), self.SIGNALS[name])

    def __exit__(self, *exc):
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        if self in _active:
            _active.remove(self)
        if self.requested in DeferredTerminate.SIGNALS and _deferring:
            _deferring[-1].note(self.requested)  # the files next: a second one ends it
        return False


_active = []  # the StopOnSignals contexts open now


def _ended_by_terminate() -> bool:
    """Whether this is a daemonic process of :mod:`multiprocessing`, which
    its parent ends with SIGTERM (``terminate()``) when it is done with it."""
    return bool(multiprocessing.current_process().daemon)


class DeferredTerminate:
    """While open, the first SIGTERM or SIGHUP is remembered (``received``,
    and its name in ``signal_name``), not obeyed: a script whose training
    calls ``fit`` once an epoch evaluates, plots and writes its files
    between the calls, and the signal's default action would end it there
    with nothing saved, the finished model included. The script checks
    ``received`` where stopping loses nothing, and exits with
    ``exit_code``. ``fit`` itself stops on either at the next iteration
    boundary (:class:`StopOnSignals`, which takes the signals over while it
    runs, and stops at once when one came just before it began). A second
    one terminates at once, also after a first that stopped ``fit``. A
    SIGHUP ignored when the context opens (``nohup``) is left ignored.
    """

    SIGNALS = ("SIGTERM", "SIGHUP")

    def __init__(self):
        self.received = False
        self.signal_name = None  # the first of SIGNALS that came
        self.previous = {}

    @property
    def exit_code(self) -> int:
        """The status to exit with once the files are written (143 or 129)."""
        return EXIT_CODES[self.signal_name or "SIGTERM"]

    def __enter__(self):
        for name in self.SIGNALS:
            signum = getattr(signal, name, None)  # (no SIGHUP on Windows)
            if signum is None or (name == "SIGHUP" and
                                  signal.getsignal(signum) == signal.SIG_IGN):
                continue
            try:
                self.previous[signum] = signal.signal(signum, self._handler)
            except ValueError:  # not the main thread: leave signals alone
                self.previous = {}
                return self
        _deferring.append(self)
        return self

    def _handler(self, signum, frame):
        self.note(signal.Signals(signum).name)

    def note(self, name):
        """The signal ``name`` came: remembered (by every open context), and
        the next one of it takes its default action."""
        for deferring in _deferring:
            deferring.received = True
            deferring.signal_name = deferring.signal_name or name
        with contextlib.suppress(ValueError):  # (called in another thread: fit's there)
            signal.signal(getattr(signal, name), signal.SIG_DFL)

    def __exit__(self, *exc):
        if self in _deferring:
            _deferring.remove(self)
        for signum, previous in self.previous.items():
            # After one came, the next ends the process, whatever was there before.
            came = self.received and signal.Signals(signum).name == self.signal_name
            signal.signal(signum, signal.SIG_DFL if came else previous)
        return False


_deferring = []  # the DeferredTerminate contexts open now


class HeldInterrupt:
    """While open, a Ctrl-C (SIGINT) is remembered (``received``), not
    raised: a script writing the files of a finished run (the model, the
    plot) finishes them before it stops, where a ``KeyboardInterrupt`` in
    the middle would leave the finished model unwritten. A second Ctrl-C
    raises ``KeyboardInterrupt`` at once (the files written so far are
    whole: every write is atomic).
    """

    def __init__(self):
        self.received = False
        self.previous = None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None
        return self

    def _handler(self, signum, frame):
        if self.received:
            raise KeyboardInterrupt
        self.received = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def stop_requested() -> bool:
    """Whether a stop was asked of a training run in progress: a caller
    waiting on a helper process (:mod:`common.batch_worker`,
    :mod:`common.step_worker`) then gives it only a short grace, so that a
    hung helper cannot hold the stop up."""
    return any(s.requested for s in _active)
