"""Trainers: one training loop, fed in two ways.

:class:`BaseTrainer` holds the loop (:meth:`BaseTrainer._train`) and calls
its parts at fixed points: a feeder gives each batch (``common.feeders``),
the divergence guard judges each loss, a progress reporter prints, a
checkpointer writes, and at the end of an epoch the schedules are asked in
turn (``common.schedules``); the first Ctrl-C or SIGTERM stops it at an
iteration boundary (``common.training_guards``).

* :class:`RnnlmTrainer`: a language model on one long id sequence, read by
  the lanes of truncated BPTT; perplexity histories.
* :class:`Trainer`: the textbook's trainer for (input, target) pairs,
  shuffled mini-batches of rows; loss histories (sequence-to-sequence
  models).
"""

import math
import os
import time
from contextlib import nullcontext

import numpy as np

from common import data_parallel
from common.backend import xp
from common.batch_worker import scored_targets
from common.checkpoint import _layer_rngs, load_checkpoint, rng_state_problem
from common.data_parallel import batch_halves, helper_cpu_seconds
from common.feeders import Lanes, ShuffledRows, check_finite, lane_positions, rows_array
from common.fit_options import FitOptions, check_main_arguments
from common.parallel import managed
from common.progress import Progress
from common.run_lock import CheckpointInUse, holding_checkpoint
from common.schedules import BestParameters, DecayOnPlateau, EarlyStopping, HalveFrom
from common.serialization import config_problem, same_file
from common.training_guards import (
    MAX_SKIPS_IN_A_ROW,
    Checkpointer,
    CheckpointWriteError,
    DivergenceGuard,
    StopOnSignals,
    TrainingDiverged,
    TrainingInterrupted,
    TrainingOutOfMemory,
    divergence_bound,
    stopped_at,
)
from common.util import (
    check_id_range,
    clip_grads,
    clip_grads_value,
    eval_perplexity,
    evaluating,
    ignore_label_of,
    is_sequence_to_sequence,
    merge_tied_grads,
    perplexity,
)

__all__ = ["BaseTrainer", "CheckpointInUse", "CheckpointWriteError", "FitOptions",
           "MAX_SKIPS_IN_A_ROW", "RnnlmTrainer", "Trainer", "TrainingDiverged",
           "TrainingInterrupted", "TrainingOutOfMemory", "divergence_bound"]


class BaseTrainer:
    """The training loop shared by the trainers; a subclass says what is
    recorded (``figure``: ``'ppl'`` or ``'loss'``) and how to validate.

    Attributes:
        history: per epoch: ``'epoch'``, the training figure, the validation
            figure (when validating) and ``'lr'`` (the rate used in it; empty
            for an optimizer of one's own that has no ``lr``).
        epoch, iteration: completed epochs; iterations done in the current one.
        fit_start_epoch: the epoch at which the unfinished ``fit`` call began
            (one stopped by ``max_iters``, Ctrl-C, SIGTERM or an error, or
            the call of a checkpoint loaded by :meth:`resume`); None when
            no call is unfinished. See :meth:`epochs_to_reach`.
        best_params, best_epoch: the parameters ``{name: array}`` and number
            of the epoch with the best validation figure (None without).
        last_params: after a ``fit`` that ended by restoring the best
            parameters, those it trained last (``{name: array}``), from
            which the next ``fit`` goes on; else None.
        bad_epochs: epochs since the best one.
        skipped_batches: batches dropped by ``on_nan='skip'``.
        iterations_run: iterations trained over all ``fit`` calls;
            figure_iterations, epoch_iterations: its value at each recorded
            training figure and at each epoch's end (where the plot draws
            them, whatever ``batch_size`` or ``eval_interval`` each call had).
        train_seconds, train_cpu_seconds: the time spent in ``fit`` over the
            whole run, wall clock and CPU (this process's and its helper's,
            see :mod:`common.data_parallel`); kept in checkpoints, so a run
            resumed from one, even mid-epoch, counts the time before it.
        settings: a JSON dict describing the run (model, sizes, data ...),
            stored in checkpoints; the command line fills it.
        title: the plot's title (None: the model's class and configuration).
    """

    figure = "loss"
    example_model = "your_model"  # (for messages; the trainers name one of their kind)
    sizes = "batch or hidden size"  # what to make smaller when a step runs out of memory

    def __init__(self, model, optimizer):
        for name, value, example in (("model", model, "SimpleRnnlm(vocab_size, 100, 100)"),
                                     ("optimizer", optimizer, "SGD(lr=0.1)")):
            if isinstance(value, type):  # the class itself, its () forgotten
                raise TypeError(f"{name} must be an object, not the class {value.__name__}: "
                                f"build one, e.g. {example}")
        if optimizer is not None and not callable(getattr(optimizer, "update", None)):
            raise TypeError(f"optimizer must have update(params, grads), as SGD(lr=0.1) has; "
                            f"got {optimizer!r:.80}")
        self.model = model
        self.optimizer = optimizer
        self._run_model = model  # the model this trainer's run (epochs, best) belongs to
        self.history = {"epoch": [], f"train_{self.figure}": [], f"val_{self.figure}": [],
                        "lr": []}
        self.epoch = 0
        self.iteration = 0
        self.fit_start_epoch = None
        self.eval_interval = 20
        self.iters_per_epoch = None
        self.best_val_ppl = math.inf  # the best validation figure (ppl or loss)
        self.best_params = None
        self.best_epoch = None
        self.last_params = None
        self.bad_epochs = 0
        self.skipped_batches = 0
        # Where each figure and each epoch's end fall, in iterations run (for the
        # plot: batch_size or eval_interval may change from one fit to the next).
        self.iterations_run = 0
        self.figure_iterations = []
        self.epoch_iterations = []
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0
        self._clock = None  # while fit runs: when it began, and the totals then
        self.settings = None
        self.title = None
        self.last_val = None
        # Running sums, part of the state so that a resumed run is identical.
        self._interval_loss, self._interval_count = 0.0, 0
        self._epoch_loss, self._epoch_count = 0.0, 0
        self._skipped_in_a_row = 0
        # The checkpoint files this trainer wrote or resumed from (real paths):
        # the ones its fit may replace.
        self._own_checkpoints = set()
        self._generators = []  # while fit runs: the dropout layers' random generators
        self._doing = "step"  # what fit is doing: a step, validation, a checkpoint (for errors)
        self._failed_batch = (1, 1)  # (epoch, iteration) of the step fit is on (for errors)
        self._half_updated = False  # a step's update began and raised

    @property
    def current_epoch(self) -> int:
        """The book's name of :attr:`epoch`: the epochs of the run done so far."""
        return self.epoch

    # -- the loop -------------------------------------------------------------------

    def _train(self, feeder, max_epoch, max_grad, eval_interval, opts):
        """Train ``max_epoch`` epochs from where this call began; returns self.

        As the textbook's ``fit``, every call trains ``max_epoch`` more
        epochs, except that a call which was stopped before its end is
        continued: the next call counts ``max_epoch`` from the epoch the
        stopped one began at (``fit_start_epoch``), so it ends where the
        stopped one would have ended.

        A Ctrl-C or SIGTERM that comes in the last iteration or validation is
        honoured once the call has ended: its last checkpoint is written,
        then :class:`TrainingInterrupted` is raised.

        With a checkpoint, the call holds its file against other trainings
        (:mod:`common.run_lock`): one that holds it already is refused with
        :class:`~common.run_lock.CheckpointInUse` before anything is trained.

        One training at a time per process: a call made while another
        thread trains is refused (``RuntimeError``) before it changes
        anything of the trainer or the model (the claim that
        :func:`common.data_parallel.batch_halves` makes again, re-entrant
        in this thread, is made here first).
        """
        data_parallel._claim_training()
        try:
            with holding_checkpoint(opts.checkpoint):
                return self._train_holding(feeder, max_epoch, max_grad, eval_interval, opts)
        finally:
            data_parallel._release_training()

    def _train_holding(self, feeder, max_epoch, max_grad, eval_interval, opts):
        """:meth:`_train`, its checkpoint file held."""
        self._check_before_training(opts)
        if self._stopped_early(opts):
            return self._stay_stopped(feeder, opts)
        self._begin(feeder, eval_interval)
        self._continue_from_last_params()
        if self.fit_start_epoch is None:
            self.fit_start_epoch = self.epoch
        call_start = self.fit_start_epoch
        target = call_start + max_epoch
        guard = DivergenceGuard(self._loss_bound(feeder), opts.on_nan, opts.checkpoint)
        checkpointer = Checkpointer(opts.checkpoint, opts.checkpoint_every, guard)
        parts = self.epoch_parts(opts)
        n = feeder.iters_per_epoch
        progress = Progress(opts.verbose, target * n, self._done(), n, opts.log_every)
        self._clock = (time.perf_counter(), _cpu_time(), self.train_seconds,
                       self.train_cpu_seconds)
        # The dropout layers' generators: a step that raises gives back what it drew.
        self._generators = list(_layer_rngs(self.model).values())
        late_signal = None
        self._doing, self._failed_batch = "step", (self.epoch + 1, self.iteration + 1)
        self._half_updated = False
        try:
            # managed(): rnnlab spreads the step over the cores itself (common.parallel).
            with StopOnSignals() as signals, managed(), \
                    self._gradients_of_batches(feeder) as forward_backward:
                while self.epoch < target:
                    while self.iteration < n:
                        if signals.requested:
                            self._interrupted(signals.requested, checkpointer, opts, progress)
                        if opts.max_iters is not None and self.iterations_run >= opts.max_iters:
                            checkpointer.save(self)
                            return self
                        # (It counts the batch in iteration: see _step for a step that raises.)
                        self._doing = "step"
                        self._step(feeder, guard, max_grad, opts.clip_value, forward_backward)
                        self._doing = "progress"
                        progress.iteration(self, self._record_interval())
                        self._doing = "checkpoint"
                        checkpointer.after_iteration(self, self.iterations_run)
                    if self._end_epoch_and_save(opts, parts, guard, progress, checkpointer,
                                                target):
                        break
                # One that came in the last iteration or validation: after the end.
                late_signal = signals.requested
        except MemoryError as exc:
            saved = self._save_where_it_stands(checkpointer)
            raise self._out_of_memory(opts.checkpoint, saved) from exc
        finally:
            progress.close()
            self.train_seconds, self.train_cpu_seconds = self._time_so_far()
            self._clock = None
        self._end_call(opts, progress, checkpointer, late_signal, call_start)
        return self

    def _stopped_early(self, opts) -> bool:
        """Whether the run stopped early at the end of its last epoch, and a
        call with ``opts``'s patience would stop it again before training:
        so a loop of ``fit(max_epoch=1)`` calls trains the epochs one call does."""
        return (opts.patience is not None and self.fit_start_epoch is None
                and self.iteration == 0 and self.bad_epochs >= opts.patience
                and self.last_epoch_validated())

    def _stay_stopped(self, feeder, opts):
        """A call of a run that patience stopped: it says so (``verbose``) and
        writes the checkpoint asked for, training nothing."""
        if opts.verbose:
            n = self.bad_epochs
            print(f"no better validation {self.figure} in the last {n} epoch"
                  f"{'s' if n != 1 else ''}: patience={opts.patience} stops the run after "
                  f"epoch {self.epoch}, so nothing is trained; pass a larger patience (or "
                  f"none) to go on")
        guard = DivergenceGuard(self._loss_bound(feeder), opts.on_nan, opts.checkpoint)
        Checkpointer(opts.checkpoint, None, guard).save(self)
        return self

    def last_epoch_validated(self) -> bool:
        """Whether the last epoch trained was validated: then the call that
        trained it ended with the best epoch's parameters in the model
        (``restore_best``), and a run that stopped there may be given them."""
        val = self.history[f"val_{self.figure}"]
        return bool(val) and not math.isnan(val[-1])

    def _end_call(self, opts, progress, checkpointer, late_signal, call_start):
        """After the last epoch of the call that began at epoch ``call_start``:
        the best parameters put back, the checkpoint written (and a signal
        that came late honoured)."""
        self.fit_start_epoch = None
        try:
            # A signal while the best parameters are put back (array by array: one
            # Ctrl-C there would leave a mix) waits for them, even a second one.
            with StopOnSignals() as restoring:
                self._doing = "best"
                # (A call that validated nothing keeps what it trained: none of its
                # epochs was scored against the best.)
                self._restore_best(opts.restore_best and _validates(opts), progress)
            # A signal while the last checkpoint is written (seconds, for a large
            # model) stops the call as one in its last iteration does, once written;
            # one after an earlier one interrupts the write at once.
            asked = late_signal or restoring.requested
            with StopOnSignals(requested=asked) as writing:
                self._doing = "checkpoint"
                if asked:
                    self._interrupted(asked, checkpointer, opts, progress, ended=True)
                checkpointer.save(self)
            if writing.requested:
                self._interrupted(writing.requested, checkpointer, opts, progress, ended=True,
                                  written=True)
        except TrainingInterrupted:  # (its checkpoint written: the call has ended)
            raise
        except BaseException as exc:
            # The call is not over: the next one ends it (the best put back, the file written).
            self.fit_start_epoch = call_start
            if not isinstance(exc, MemoryError):
                raise
            if self._doing == "best":
                raise self._no_memory_for_the_best(opts.checkpoint) from exc
            raise self._out_of_memory(opts.checkpoint) from exc

    def _gradients_of_batches(self, feeder):
        """A context giving what computes a batch's loss and gradients, or None:
        then ``model.forward`` and ``model.backward``."""
        return nullcontext()

    def _batch_begins(self):
        """What a batch needs of the model before its forward (nothing here)."""

    def _step(self, feeder, guard, max_grad, clip_value, forward_backward=None):
        """One batch: forward, judge the loss, backward, clip, update; then the
        batch is counted (``iteration``, ``iterations_run``, the running sums;
        a batch that the guard drops is counted too, with no loss).

        All or nothing, so that the next ``fit`` continues a call stopped by
        an exception bit for bit. A step that raises before the optimizer
        has begun to change the parameters (in the model's forward or
        backward, the guard's verdict, a ``MemoryError``, a second Ctrl-C,
        the optimizer's refusal of what it was given) gives the batch back:
        the trainer and the model are as before it (:meth:`_batch_start`:
        the feeder's read position, the carried state, the dropout layers'
        generators, the counts of skipped batches), and the next call
        trains that batch. Once the update has begun (rnnlab's optimizers
        check what they are given, then count the step in ``t``, then
        change the parameters; for an optimizer without ``t``, once its
        ``update`` has returned) only an exception that can come anywhere
        can come (a second Ctrl-C's ``KeyboardInterrupt``, a ``MemoryError``
        in the update's or the counting's few allocations): the batch has
        been trained, so it is counted before the exception goes on, and
        the next call goes on after it, without training it again.
        """
        self._failed_batch = (self.epoch + 1, self.iteration + 1)  # (for an error's message)
        self._half_updated = False
        start = self._batch_start()
        steps, iteration = getattr(self.optimizer, "t", None), self.iteration
        loss = batch_t = None
        trained = False
        try:
            batch_x, batch_t = feeder.next_batch(self)
            self._batch_begins()
            x, t = xp.asarray(batch_x), xp.asarray(batch_t)
            if forward_backward is None:
                loss = self.model.forward(x, t)
                learn = guard.loss_ok(self, loss)
                if learn:
                    self.model.backward()
            else:  # both at once (the loss judged after: a rejected batch's gradients go unused)
                loss = forward_backward(x, t)
                learn = guard.loss_ok(self, loss)
            if learn:
                _check_arrays(self.model)  # (a backward that rebinds a layer's gradient)
                if max_grad is not None or clip_value is not None:
                    merge_tied_grads(self.model.params, self.model.grads)
                if max_grad is not None:
                    clip_grads(self.model.grads, max_grad)
                if clip_value is not None:
                    clip_grads_value(self.model.grads, clip_value)
                self.optimizer.update(self.model.params, self.model.grads)
            else:
                loss = None  # dropped (on_nan='skip')
            trained = True
            self._count(loss, feeder, batch_t)
        except BaseException:
            began = getattr(self.optimizer, "t", None) != steps  # the update began
            # One that began and did not return left some parameters stepped and
            # others not: no checkpoint is to be written of that.
            self._half_updated = began and not trained
            if self.iteration == iteration:  # (else counted already)
                if trained or began:
                    self._count(loss, feeder, batch_t)  # applied: not to be trained again
                    self._record_interval()
                else:
                    self._give_back(start)
            raise

    def _count(self, loss, feeder, batch_t):
        """Count a batch that was trained on (``loss``) or dropped (None)."""
        if loss is None or feeder.scores_nothing(batch_t):
            # (All its targets ignored: its loss, 0, is no figure to average.)
            self.iteration, self.iterations_run = self.iteration + 1, self.iterations_run + 1
            return
        # One assignment, so that nothing is counted twice or half.
        (self._interval_loss, self._interval_count, self._epoch_loss, self._epoch_count,
         self.iteration, self.iterations_run) = (
            self._interval_loss + loss, self._interval_count + 1, self._epoch_loss + loss,
            self._epoch_count + 1, self.iteration + 1, self.iterations_run + 1)

    def _batch_start(self):
        """What a step may change before its update, as it is before the step
        (small: no copy of anything the size of the parameters or the data);
        :meth:`_give_back` puts it back."""
        return (self.skipped_batches, self._skipped_in_a_row,
                [(rng, rng.bit_generator.state) for rng in self._generators])

    def _give_back(self, start):
        """Put back what :meth:`_batch_start` returned: the batch is untrained."""
        self.skipped_batches, self._skipped_in_a_row, generators = start
        for rng, state in generators:
            rng.bit_generator.state = state

    def _end_epoch(self, opts, parts, guard, progress):
        """Close an epoch: validation, histories, the schedules; True: stop.

        All or nothing: a validation or a close that raises (no memory for
        the validation's rows, or to copy the best parameters) leaves the
        epoch open, as its last iteration left it, and the next fit (or a
        resume from the checkpoint then written, see :meth:`_save_where_it_stands`)
        scores and closes it again before going on. (Closed first, the epoch
        lost its validation: the next fit started the following one.)
        """
        self._doing = "validation"
        self.last_val = self._validate(opts)
        self._doing = "epoch"
        opened = self._open_epoch()
        try:
            # (No batch counted, every one skipped or scoring nothing: no figure.)
            figure = (self._figure_of(self._epoch_loss / self._epoch_count)
                      if self._epoch_count else math.nan)
            self._epoch_loss, self._epoch_count = 0.0, 0
            self.epoch += 1
            self.iteration = 0
            self.history["epoch"].append(self.epoch)
            self.epoch_iterations.append(self.iterations_run)
            self.history[f"train_{self.figure}"].append(figure)
            if hasattr(self.optimizer, "lr"):  # (an optimizer of one's own may have none)
                self.history["lr"].append(float(self.optimizer.lr))
            val = self.history[f"val_{self.figure}"]
            if self.last_val is not None or val:
                # Once an epoch is validated, one entry for every epoch (NaN where
                # none was): val[e - 1] is epoch e's, as the plot reads it.
                val += [math.nan] * (len(self.history["epoch"]) - 1 - len(val))
                val.append(math.nan if self.last_val is None else self.last_val)
            stop = any([part.end_epoch(self) for part in parts])  # every part is asked
        except BaseException:
            self._reopen(opened)
            raise
        self._doing = "epoch closed"
        guard.check_params(self)  # (diverged: the epoch stays closed, its figures shown)
        progress.write(self._epoch_line(progress.elapsed(), stop))
        return stop

    def _end_epoch_and_save(self, opts, parts, guard, progress, checkpointer, target):
        """Close the epoch and write its checkpoint; True: stop (early)."""
        stop = self._end_epoch(opts, parts, guard, progress)
        started = self.fit_start_epoch
        if stop or self.epoch >= target:
            self.fit_start_epoch = None  # done: the next call trains more epochs
        self._doing = "checkpoint"
        try:
            checkpointer.end_epoch(self)
        except BaseException:
            if not stop:  # not written: the next call ends this one
                self.fit_start_epoch = started
            raise
        return stop

    def _open_epoch(self):
        """What closing an epoch changes, as it stands before: enough to
        :meth:`_reopen` it (references, not copies)."""
        names = ("epoch", "iteration", "_epoch_loss", "_epoch_count", "best_val_ppl",
                 "best_params", "best_epoch", "bad_epochs")
        return ({name: getattr(self, name) for name in names},
                {key: len(values) for key, values in self.history.items()},
                len(self.epoch_iterations), getattr(self.optimizer, "lr", None))

    def _reopen(self, opened):
        fields, lengths, epochs, lr = opened
        for name, value in fields.items():
            setattr(self, name, value)
        for key, length in lengths.items():  # (closing adds entries, never keys)
            del self.history[key][length:]
        del self.epoch_iterations[epochs:]
        if lr is not None:
            self.optimizer.lr = lr

    def _save_where_it_stands(self, checkpointer) -> bool:
        """After a MemoryError, write the checkpoint of the run as it stands
        (a step given back or counted, an epoch left open by its validation
        or close): a resume from it goes on as the run would have, and
        nothing trained is lost. False where there is no checkpoint, the
        error came writing it, or it cannot be written now."""
        if self._doing == "checkpoint" or self._half_updated or not checkpointer.path:
            return False
        try:
            checkpointer.save(self)
        except (MemoryError, CheckpointWriteError, TrainingDiverged):
            return False
        return True

    # -- the parts around it ------------------------------------------------------------

    def _begin(self, feeder, eval_interval):
        n = feeder.iters_per_epoch
        if self.iteration and self.iters_per_epoch not in (None, n):
            raise ValueError(
                f"this trainer stopped in the middle of an epoch of {self.iters_per_epoch} "
                f"iterations, but these data and batch settings give {n}: resume with the "
                "settings the run was started with"
            )
        # (int: a NumPy int would not go into JSON; None records nothing, as in the book.)
        self.eval_interval = None if eval_interval is None else int(eval_interval)
        self.iters_per_epoch = n
        if hasattr(self.model, "train"):
            self.model.train()

    def _loss_bound(self, feeder):
        """The divergence bound of a model of a vocabulary (its own, or the
        largest id of the inputs and targets, plus one); inf for other
        targets (regression values, one-hot rows), where a loss is only
        diverged when NaN or infinite."""
        vocab_size = getattr(self.model, "vocab_size", None)
        if vocab_size is None:
            largest = feeder.max_id()
            if largest is None:
                return math.inf
            vocab_size = largest + 1
        return divergence_bound(vocab_size)

    def _check_same_model(self):
        """The run's epochs, best parameters and figures belong to the model it
        trained: another model set as ``trainer.model`` since would be given
        them (its best epoch's restore would put the first model's weights in
        it). Before any training, the new model is simply taken."""
        if self.model is getattr(self, "_run_model", self.model):
            return
        if self.iterations_run or self.epoch or self.best_params is not None:
            raise ValueError(
                f"trainer.model is another model than the one this trainer's run trained "
                f"({self.epoch} epochs and {self.iteration} iterations so far): train it "
                f"with a trainer of its own, e.g. {type(self).__name__}(model, "
                f"{type(self.optimizer).__name__}(...))")
        self._run_model = self.model

    def _check_before_training(self, opts):
        """Refuse now what would fail only once training is under way: a
        model or optimizer that lacks what an option needs, and a checkpoint
        file of another run."""
        self._check_same_model()
        # (A trainer built with None, as the book's scripts do to read batches
        # with get_batch, cannot train: said now, not at the first update.)
        if not callable(getattr(self.optimizer, "update", None)):
            raise TypeError(f"this trainer has no optimizer to train with (optimizer is "
                            f"{self.optimizer!r:.60}): build it with one, e.g. "
                            f"{type(self).__name__}(model, SGD(lr=0.1))")
        if self.model is None:
            raise TypeError(f"this trainer has no model to train (model is None): build it "
                            f"with one, e.g. {type(self).__name__}({self.example_model}, "
                            f"SGD(lr=0.1))")
        _check_arrays(self.model)
        model, optimizer = type(self.model).__name__, type(self.optimizer).__name__
        val = "val_corpus" if opts.val_corpus is not None else "val_data"
        needs = []
        if opts.val_corpus is not None or opts.val_data is not None:
            needs.append(("named_params", f"{val} keeps the best epoch's parameters by name",
                          f"leave out {val}"))
            if opts.restore_best:
                needs.append(("set_named_params", "restore_best puts the best epoch's "
                              "parameters back with it", "pass restore_best=False"))
        if opts.checkpoint is not None:
            needs.append(("named_params", "a checkpoint holds the parameters by name",
                          "leave out checkpoint"))
        for method, why, or_else in needs:
            if not callable(getattr(self.model, method, None)):
                raise TypeError(f"{model} has no {method}(): {why}. Build the model on "
                                f"models.base.Model (it has named_params and set_named_params), "
                                f"or {or_else}")
        if opts.checkpoint is not None and not callable(getattr(self.optimizer, "state_dict",
                                                                None)):
            raise TypeError(f"{optimizer} has no state_dict(): a checkpoint holds the "
                            f"optimizer's state; use an optimizer of common.optimizer, or leave "
                            f"out checkpoint")
        for option in ("lr_decay", "lr_halve_from"):
            if getattr(opts, option) is not None and not hasattr(self.optimizer, "lr"):
                raise TypeError(f"{optimizer} has no lr: {option} changes the learning rate; "
                                f"give the optimizer an lr attribute (the rate its update "
                                f"uses), or leave out {option}")
        if opts.checkpoint is not None:
            if problem := config_problem(getattr(self.model, "config", {})):
                raise TypeError(f"{model}'s {problem}: a checkpoint holds it, to resume the "
                                f"run with the same model")
            if problem := rng_state_problem(self.model):
                raise TypeError(f"{model}: {problem}")
            self._check_checkpoint_is_ours(opts.checkpoint)

    def _check_checkpoint_is_ours(self, path):
        """Refuse to replace a checkpoint file that this trainer neither wrote
        nor resumed from: it is another run's (or another file)."""
        real = os.path.realpath(path)
        # A command line has decided about its --checkpoint file itself (it
        # refuses one of an earlier run without --overwrite): common.cli.
        settings = self.settings if isinstance(self.settings, dict) else {}
        written_as = settings.get("written_as")
        decided = isinstance(written_as, str) and same_file(written_as, path)
        if os.path.exists(path) and real not in self._own_checkpoints and not decided:
            path = os.fspath(path)
            raise FileExistsError(
                f"checkpoint {path} exists already (an earlier run?): continue it with "
                f"trainer.resume({path!r}), give another path, or delete the file")
        self._own_checkpoints.add(real)  # this run writes it from now on

    def epoch_parts(self, opts) -> list:
        """What is asked at the end of every epoch, in order: objects with
        ``end_epoch(trainer) -> bool`` (True: stop; see :mod:`common.schedules`),
        built from ``opts`` (a :class:`FitOptions`) at each ``fit``.

        The place for a schedule of one's own: a subclass returns this list
        with its part added. A part keeps no state of its own (what it must
        remember lives in the trainer, which a checkpoint holds), so a
        resumed run asks it the same questions; the subclass resumes its own
        checkpoints (a checkpoint names the trainer class that wrote it).
        """
        parts = [BestParameters()]
        if opts.lr_decay is not None:
            parts.append(DecayOnPlateau(opts.lr_decay))
        if opts.patience is not None:
            parts.append(EarlyStopping(opts.patience))
        if opts.lr_halve_from is not None:
            parts.append(HalveFrom(opts.lr_halve_from))
        return parts

    def epochs_to_reach(self, total: int) -> int:
        """The ``max_epoch`` with which the next ``fit`` ends after ``total``
        epochs in all (0 if there already): counted from ``fit_start_epoch``
        when a call is unfinished, else from ``epoch``.

        For a run whose length is fixed in all, as ``--epochs`` of
        ``scripts/train_rnnlm.py``: ``fit(..., max_epoch=trainer.epochs_to_reach(10))``
        after :meth:`resume` ends after epoch 10 whether the checkpoint was
        written in the middle of the run or at the end of a shorter one.
        """
        if self.epoch >= total:  # also from a call stopped after it (a longer run's)
            return 0
        start = self.epoch if self.fit_start_epoch is None else self.fit_start_epoch
        return total - start

    def _done(self):
        return self.epoch * (self.iters_per_epoch or 0) + self.iteration

    def _record_interval(self):
        """Every ``eval_interval`` iterations of the whole run (across calls of
        other sizes too): the mean figure since the last."""
        if (self.eval_interval is None or self.iterations_run % self.eval_interval
                or not self._interval_count):
            return None
        value = self._figure_of(self._interval_loss / self._interval_count)
        self._interval_loss, self._interval_count = 0.0, 0
        self.figure_list.append(value)
        self.figure_iterations.append(self.iterations_run)
        return f"{self.figure}={value:.2f}"

    def latest_figure(self):
        """``'ppl 123.45 (epoch so far)'``: the training figure of this epoch's
        batches so far, for progress lines (the last recorded point, every
        ``eval_interval`` iterations, repeated itself on lines printed more
        often than that); before any batch scored, the last recorded one."""
        if self._epoch_count:
            mean = self._figure_of(self._epoch_loss / self._epoch_count)
            return f"{self.figure} {mean:.2f} (epoch so far)"
        return f"{self.figure} {self.figure_list[-1]:.2f}" if self.figure_list else ""

    def _epoch_line(self, elapsed, stop):
        h, f = self.history, self.figure
        line = f"| epoch {self.epoch} | time {elapsed:.1f}s | train {f} {h[f'train_{f}'][-1]:.2f}"
        if self.last_val is not None:
            line += f" | val {f} {self.last_val:.2f}"
        if h["lr"]:
            line += f" | lr {h['lr'][-1]:.4g}"
        if stop:
            n = self.bad_epochs
            line += f" | no improvement for {n} epoch{'s' if n != 1 else ''}: stopping"
        return line

    def _restore_best(self, restore_best, progress):
        if restore_best and self.best_params is not None:
            # Kept, so that the next fit trains on from where this one stopped.
            self.last_params = {k: p.copy() for k, p in self.model.named_params().items()}
            self.model.set_named_params(self.best_params, source="the best parameters")
            progress.write(f"restored the best parameters: epoch {self.best_epoch}, validation "
                           f"{self.figure} {self.best_val_ppl:.2f}")

    def _continue_from_last_params(self):
        """Put back the parameters the last fit trained last, before it
        restored the best ones, unless the model's have been changed since:
        so N calls of ``fit(max_epoch=1)`` train as one of ``max_epoch=N``."""
        last, self.last_params = self.last_params, None
        if last is None or self.best_params is None:
            return
        now = self.model.named_params()
        if all(bool(xp.array_equal(now[k], self.best_params[k])) for k in now):
            self.model.set_named_params(last, source="the last trained parameters")

    def _interrupted(self, signal_name, checkpointer, opts, progress, ended=False,
                     written=False):
        """Write the checkpoint (unless ``written``) and the plot, and raise
        TrainingInterrupted; ``ended``: the signal came in the call's last
        iteration or validation, or while its checkpoint was written."""
        progress.close()
        if not written:
            checkpointer.save(self)
        if opts.plot_path:
            from common.plot import has_something_to_draw  # (matplotlib only when drawing)

            if has_something_to_draw(self):  # (a stop before the first iteration: nothing)
                self.plot(path=opts.plot_path)
        path = opts.checkpoint
        if not path:
            how = "no checkpoint was asked for"
        elif self.settings is not None:  # a command line's run (it fills settings)
            how = f"resume with --resume {path}"
        else:
            how = f"resume with trainer.resume({os.fspath(path)!r})"
        what = "interrupted" if signal_name == "SIGINT" else f"stopped by {signal_name}"
        where = (f"{stopped_at(self)}, the end of this fit call" if ended else
                 f"at epoch {self.epoch + 1}, iteration {self.iteration}")
        raise TrainingInterrupted(f"{what} {where}; {how}", path, signal_name)

    def _out_of_memory(self, checkpoint, saved=False):
        """The error for a MemoryError in ``fit``: where it came, what can help
        there (a smaller batch does not help validation, whose rows are
        ``val_batch_size``'s), and where the run goes on from. ``saved``: the
        checkpoint of the run as it stood was written
        (:meth:`_save_where_it_stands`)."""
        script = self.settings is not None  # a command line's run (it fills settings)
        if self._doing == "step":
            epoch, iteration = self._failed_batch
            what = (f"at epoch {epoch}, iteration {iteration}. Use a smaller {self.sizes}, "
                    f"or free memory.")
        elif self._doing == "validation":
            what = (f"while scoring the validation data after epoch {self.epoch + 1}. Use a "
                    f"smaller model, free memory"
                    + ("." if script else
                       ", or score fewer rows at a time with a smaller val_batch_size."))
        elif self._doing == "epoch":
            what = (f"closing epoch {self.epoch + 1} (copying its parameters as the best so "
                    f"far). Use a smaller model, or free memory.")
        elif self._doing == "checkpoint":
            what = f"while writing the checkpoint {stopped_at(self)}. Free memory."
        else:
            what = f"{stopped_at(self)}. Free memory."
        if saved:
            resume = (f"--resume {checkpoint}" if script else
                      f"trainer.resume({os.fspath(checkpoint)!r})")
            after = (f" The checkpoint {checkpoint} holds the run as it stood: {resume} goes "
                     f"on from there.")
        elif checkpoint and os.path.exists(checkpoint):
            after = f" The last checkpoint {checkpoint} is kept."
        else:
            after = ""
        if not script:
            after += " The next fit of this trainer goes on from here."
        error = TrainingOutOfMemory(f"out of memory {what}{after}")
        # An update stopped part-way leaves the parameters of no step: not written.
        error.model_as_it_stood = not self._half_updated
        return error

    def _no_memory_for_the_best(self, checkpoint):
        """The error for a MemoryError putting the best epoch's parameters back
        at the end of ``fit``: the model keeps the last epoch's."""
        if self.settings is not None:  # a command line's run: it writes nothing more
            error = TrainingOutOfMemory(
                f"out of memory putting back the best epoch's parameters (epoch "
                f"{self.best_epoch}) at the end of training; the model and the plot were not "
                f"written. Free memory, or leave out validation.")
        else:
            error = TrainingOutOfMemory(
                f"out of memory putting back the best epoch's parameters (epoch "
                f"{self.best_epoch}) at the end of training: the model holds the last epoch's. "
                f"Free memory; the next fit of this trainer puts them back and ends the call.")
        error.model_as_it_stood = False
        return error

    # -- checkpoints -------------------------------------------------------------------------

    def _time_so_far(self):
        """``(train_seconds, train_cpu_seconds)`` up to now, a running fit included."""
        if self._clock is None:
            return self.train_seconds, self.train_cpu_seconds
        wall, cpu, wall_before, cpu_before = self._clock
        return (wall_before + time.perf_counter() - wall,
                cpu_before + _cpu_time() - cpu)

    def state_dict(self):
        """Everything besides the model and optimizer needed to resume exactly."""
        train_seconds, train_cpu_seconds = self._time_so_far()
        return {
            # (An epoch without a figure, NaN, as null: strict JSON.)
            "history": {k: [None if _is_nan(x) else x for x in v]
                        for k, v in self.history.items()},
            "epoch": self.epoch,
            "iteration": self.iteration,
            "fit_start_epoch": self.fit_start_epoch,
            "eval_interval": self.eval_interval,
            "iters_per_epoch": self.iters_per_epoch,
            "best_val_ppl": self.best_val_ppl if math.isfinite(self.best_val_ppl) else None,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "skipped_batches": self.skipped_batches,
            "skipped_in_a_row": self._skipped_in_a_row,
            "iterations_run": self.iterations_run,
            "figure_iterations": list(self.figure_iterations),
            "epoch_iterations": list(self.epoch_iterations),
            "train_seconds": train_seconds,
            "train_cpu_seconds": train_cpu_seconds,
            "sums": [self._interval_loss, self._interval_count, self._epoch_loss,
                     self._epoch_count],
        }

    def load_state_dict(self, d):
        # (math.nan itself: histories compare equal as lists, as they did before saving.)
        self.history = {k: [math.nan if x is None else x for x in v]
                        for k, v in d["history"].items()}
        self.epoch, self.iteration = int(d["epoch"]), int(d["iteration"])
        if "fit_start_epoch" not in d:
            raise ValueError("it has no 'fit_start_epoch' (the epoch at which the unfinished "
                             "fit call began): it was written by an rnnlab from before fit "
                             "trained max_epoch more epochs at each call, which cannot tell "
                             "how far this run was meant to go; start the run again")
        start = d["fit_start_epoch"]
        if start is not None and (isinstance(start, bool) or not isinstance(start, int)
                                  or not 0 <= start <= self.epoch):
            raise ValueError(f"fit_start_epoch must be None or an epoch from 0 to "
                             f"{self.epoch}, got {start!r}")
        self.fit_start_epoch = start
        self.eval_interval = None if d["eval_interval"] is None else int(d["eval_interval"])
        self.iters_per_epoch = d["iters_per_epoch"]
        self.best_val_ppl = math.inf if d["best_val_ppl"] is None else float(d["best_val_ppl"])
        self.best_epoch = d.get("best_epoch")
        if self.best_epoch is None and self.history.get(f"val_{self.figure}"):
            values = self.history[f"val_{self.figure}"]  # older checkpoints: from the history
            self.best_epoch = int(np.argmin(values)) + 1
        self._align_old_validation()
        self.bad_epochs = int(d["bad_epochs"])
        self.skipped_batches = int(d["skipped_batches"])
        # (Absent from checkpoints written before on_nan='skip' resumed exactly.)
        self._skipped_in_a_row = int(d.get("skipped_in_a_row", 0))
        # (Absent from checkpoints written before the plot's positions were kept:
        # what the settings of the time give, as the plot then drew them.)
        self.iterations_run = int(d.get("iterations_run", self._done()))
        self.figure_iterations = [int(i) for i in d.get("figure_iterations", [])]
        self.epoch_iterations = [int(i) for i in d.get("epoch_iterations", [])]
        # (Absent from checkpoints written before the time was kept.)
        self.train_seconds = float(d.get("train_seconds", 0.0))
        self.train_cpu_seconds = float(d.get("train_cpu_seconds", 0.0))
        (self._interval_loss, self._interval_count, self._epoch_loss,
         self._epoch_count) = d["sums"]

    def _align_old_validation(self):
        """A checkpoint from before validation histories had an entry for
        every epoch listed only the epochs validated, without saying which:
        they are taken as a run of epochs in a row, placed by the best one
        (``best_epoch``, whose figure the list holds), NaN around them."""
        val, epochs = self.history.get(f"val_{self.figure}"), len(self.history["epoch"])
        if not val or len(val) >= epochs or any(_is_nan(x) for x in val):
            return
        offset = 0
        if self.best_epoch is not None and self.best_val_ppl in val:
            offset = self.best_epoch - 1 - val.index(self.best_val_ppl)
        offset = min(max(offset, 0), epochs - len(val))
        val[:] = [math.nan] * offset + val + [math.nan] * (epochs - offset - len(val))

    def resume(self, path):
        """Load a checkpoint written by ``fit(checkpoint=...)`` into this
        trainer, its model and its optimizer; ``fit(checkpoint=path)`` may
        then write it again."""
        load_checkpoint(path, self)
        self._run_model = self.model  # (the run is now this model's)
        self._own_checkpoints.add(os.path.realpath(path))
        return self

    # -- plots ----------------------------------------------------------------------------

    def plot(self, ylim=None, path=None, logy: bool = True):
        """Draw the training curve(s) and return the matplotlib ``Figure``;
        see :func:`common.plot.plot_training`."""
        from common.plot import plot_training

        return plot_training(self, ylim=ylim, path=path, logy=logy)


def _check_val_corpus(corpus, vocab_size):
    corpus = np.asarray(corpus)
    if corpus.ndim != 1 or corpus.size < 2 or not np.issubdtype(corpus.dtype, np.integer):
        raise ValueError(f"val_corpus must be a 1-D array of at least 2 integer ids, got "
                         f"shape {corpus.shape} and dtype {corpus.dtype}")
    check_id_range("val_corpus", corpus, vocab_size)


class RnnlmTrainer(BaseTrainer):
    """Fits a language model with truncated BPTT; keeps perplexity histories.

    The corpus ``xs`` (inputs) and ``ts`` (the same sequence shifted by one)
    are read by ``batch_size`` lanes (:class:`common.feeders.Lanes`), so a
    stateful model carries its hidden state from one batch to the next while
    the gradient stops at the batch boundary.

    Attributes (besides :class:`BaseTrainer`'s):
        ppl_list: training perplexity over each ``eval_interval`` iterations
            (counted across epochs).
        history: ``'epoch'``, ``'train_ppl'``, ``'val_ppl'``, ``'lr'``.
        time_idx: the read position in each lane (positions read so far,
            modulo the lane's length).
        best_val_ppl: the best validation perplexity so far.
    """

    figure = "ppl"
    example_model = "SimpleRnnlm(vocab_size, 100, 100)"  # (for messages)
    sizes = "batch, time or hidden size"

    def __init__(self, model, optimizer):
        super().__init__(model, optimizer)
        self.ppl_list = []
        self.time_idx = 0

    @property
    def figure_list(self):
        return self.ppl_list

    def get_batch(self, xs, ts, batch_size, time_size):
        """The next ``(batch_size, time_size)`` block of every lane, and advance."""
        positions = lane_positions(len(xs), batch_size, time_size, self.time_idx)
        self.time_idx = (self.time_idx + time_size) % len(xs)
        return xs[positions], ts[positions]

    def fit(self, xs, ts, max_epoch=10, batch_size=20, time_size=35, max_grad=None,
            eval_interval=20, **options):
        """Train ``max_epoch`` more epochs, as the textbook's ``fit`` (so its
        loops of ``fit(..., max_epoch=1)`` calls train an epoch each).

        A call stopped before its end (``max_iters``, Ctrl-C, SIGTERM, an
        error; a checkpoint written during it and loaded by :meth:`resume`)
        is continued by the next call: ``max_epoch`` then counts from the
        epoch the stopped call began at, so ``fit`` with the same arguments
        ends where the stopped call would have ended (bit for bit).
        :meth:`epochs_to_reach` gives the ``max_epoch`` of a run whose
        length is fixed in all.

        Args:
            xs, ts: 1-D int arrays of the same length (ts = xs shifted by one).
            max_epoch: epochs to train in this call (counted from where a
                stopped call began, when continuing one).
            batch_size, time_size: lanes and truncated-BPTT length.
            max_grad: clip the global gradient norm to this (None: no clipping).
            eval_interval: record the training perplexity this often (iterations;
                None: never, as in the book; each epoch's is in ``history``).
            **options: the :class:`common.fit_options.FitOptions` by name (or
                ``options=FitOptions(...)``):

                val_corpus: a 1-D id array; its perplexity (batches of
                    ``val_batch_size``, default 10) after every epoch; the
                    best epoch's parameters are kept.
                lr_decay: divide the learning rate by this (> 1) after an
                    epoch whose validation perplexity is not the best so far.
                patience: stop after this many epochs without improvement.
                lr_halve_from: halve the learning rate before every epoch
                    from this one on (epochs count from 1; Zaremba et al.).
                restore_best: at the end, put back the best epoch's
                    parameters (default True). The trainer keeps the last
                    ones (``last_params``), and the next ``fit`` trains on
                    from them unless the model's parameters were changed
                    since: N calls of ``fit(max_epoch=1)`` train as one of
                    ``max_epoch=N``, bit for bit, checkpoints between them
                    included.
                max_iters: stop (resumably) after this many iterations in all.
                checkpoint, checkpoint_every: path of a checkpoint written every
                    ``checkpoint_every`` iterations (default: every epoch),
                    when stopped, and at the end. An existing file is
                    refused (``FileExistsError``) unless this trainer wrote
                    it or resumed from it (``trainer.resume(path)``).
                on_nan: ``'raise'`` (default) stops with
                    :class:`TrainingDiverged` on a NaN, infinite or impossibly
                    large loss; ``'skip'`` drops the batch.
                clip_value: also clip every gradient element to +-clip_value.
                verbose, log_every: print a line per epoch, a progress bar on
                    a terminal, else a line every ``log_every`` iterations.
                plot_path: where Ctrl-C or SIGTERM writes the plot.

        Ctrl-C or SIGTERM stops at the next iteration boundary (or, in the
        call's last iteration or validation, at its end): the checkpoint
        and the plot are written, then :class:`TrainingInterrupted` is
        raised. Targets equal to the loss's ``ignore_label`` are not
        scored; a batch with none to score is left out of the mean figures.
        Returns:
            self.
        """
        opts = FitOptions.from_call("fit", options.pop("options", None), options)
        check_main_arguments(max_epoch, max_grad, eval_interval)
        opts.check()
        if opts.val_data is not None:
            raise ValueError("RnnlmTrainer validates on val_corpus (a 1-D id array), not "
                             "val_data")
        if "seed" in options or opts.seed != FitOptions.seed:
            raise ValueError("RnnlmTrainer draws nothing: it reads its lanes in order, so it "
                             "takes no seed (Trainer's seed orders its batches); give the "
                             "model's weights a seed when building it, e.g. Rnnlm(..., seed=0)")
        if is_sequence_to_sequence(self.model):
            raise TypeError(f"RnnlmTrainer trains a language model on one corpus; "
                            f"{type(self.model).__name__} learns answers to questions: train "
                            f"it with Trainer(model, optimizer).fit(x_train, t_train, ...)")
        vocab_size = getattr(self.model, "vocab_size", None)
        if opts.val_corpus is not None:
            # Checked now, not when the first epoch is over.
            _check_val_corpus(opts.val_corpus, vocab_size)
        lanes = Lanes(xs, ts, batch_size, time_size, ignore_label_of(self.model))
        _check_ids(self.model, ("xs", lanes.xs), ("ts", lanes.ts))
        # What the first forward would refuse, refused before the lanes move on.
        if getattr(self.model, "vocab_size", None) is not None:
            for name, ids in (("xs", lanes.xs), ("ts", lanes.ts)):
                dtype = np.asarray(ids).dtype
                if not np.issubdtype(dtype, np.integer):
                    raise TypeError(f"{name} must hold integer word ids, got dtype {dtype}")
        carried = self.model.get_state() if hasattr(self.model, "get_state") else []
        rows = {len(s) for s in carried if s is not None}
        if rows and rows != {lanes.batch_size}:
            n = rows.pop()
            raise ValueError(f"the model carries a state of {n} rows from its last batch, but "
                             f"batch_size is {lanes.batch_size}: give batch_size={n} to go on "
                             f"with the run as it was (a resumed one as its checkpoint was "
                             f"trained), or call model.reset_state() to go on with batches of "
                             f"{lanes.batch_size} (the run's data then comes in other batches)")
        return self._train(lanes, max_epoch, max_grad, eval_interval, opts)

    def _gradients_of_batches(self, feeder):
        # A batch whose halves pay is computed by halves (common.data_parallel);
        # the carried state of the second half's rows travels with it.
        shape = (feeder.batch_size, feeder.time_size)
        return batch_halves(self.model, shape, shape)

    def _batch_start(self):
        # The lanes' read position (the feeder moves it on as it gives a batch) and
        # the carried state (N x H arrays, copied by get_state), besides the base's.
        model = self.model
        carried = callable(getattr(model, "get_state", None)) and callable(
            getattr(model, "set_state", None))
        return super()._batch_start(), self.time_idx, model.get_state() if carried else None

    def _give_back(self, start):
        base, self.time_idx, state = start
        super()._give_back(base)
        if state is not None:
            self.model.set_state(state)

    def _figure_of(self, mean_loss):
        return perplexity(mean_loss)

    def _validate(self, opts):
        if opts.val_corpus is None:
            return None
        # It gives the carried state and the mode back: training goes on unchanged.
        return eval_perplexity(self.model, opts.val_corpus, batch_size=opts.val_batch_size)

    def state_dict(self):
        return {"ppl_list": list(self.ppl_list), "time_idx": int(self.time_idx),
                **super().state_dict()}

    def load_state_dict(self, d):
        super().load_state_dict(d)
        self.ppl_list = list(d["ppl_list"])
        self.time_idx = int(d["time_idx"])


class Trainer(BaseTrainer):
    """The textbook's trainer for (input, target) pairs: every epoch, the rows
    of ``x`` and ``t`` in a new seeded order, ``batch_size`` rows a batch.

    Any model with ``forward(x, t) -> loss``, ``backward()``, ``params`` and
    ``grads`` can be trained (``named_params`` and ``set_named_params`` too
    for checkpoints and best-parameter keeping, both checked before
    training). A loss is held to the divergence bound of a vocabulary only
    where there is one: the model's ``vocab_size``, or integer targets (the
    largest id of ``x`` and ``t``, plus one); otherwise (regression, one-hot
    targets) only a NaN or infinite loss counts as divergence.

    Attributes (besides :class:`BaseTrainer`'s):
        loss_list: mean training loss over each ``eval_interval`` iterations.
        history: ``'epoch'``, ``'train_loss'``, ``'val_loss'``, ``'lr'``.
        seed: the seed of the batch orders (``fit(seed=...)``).
    """

    figure = "loss"
    example_model = "Seq2seq(vocab_size, 16, 128)"  # (for messages)

    def __init__(self, model, optimizer):
        super().__init__(model, optimizer)
        self.loss_list = []
        self.seed = 0
        self.batch_size = None  # of the run's batches, once it has begun

    @property
    def figure_list(self):
        return self.loss_list

    def fit(self, x, t, max_epoch=10, batch_size=32, max_grad=None, eval_interval=20,
            **options):
        """Train ``max_epoch`` more epochs, as the textbook's ``fit``; a
        stopped call is continued to its end as by :meth:`RnnlmTrainer.fit`.

        Args:
            x, t: ``(N, ...)`` inputs and targets, one row per example.
            max_epoch, batch_size, max_grad, eval_interval: as the textbook's.
            **options: as :meth:`RnnlmTrainer.fit`, with ``val_data=(x_val,
                t_val)`` (the mean loss per row, computed ``val_batch_size``
                rows at a time) in
                place of ``val_corpus``, and ``seed`` (default 0) for the
                order of the rows.
        Returns:
            self.
        """
        opts = FitOptions.from_call("fit", options.pop("options", None), options)
        check_main_arguments(max_epoch, max_grad, eval_interval)
        opts.check()
        x, t = rows_array("x", x), rows_array("t", t)
        if opts.val_corpus is not None:
            raise ValueError("Trainer validates on val_data=(x_val, t_val), not val_corpus")
        pairs = is_sequence_to_sequence(self.model)
        if pairs:
            _check_pair_rows(x, t)
        if opts.val_data is not None:
            _check_val_data(opts.val_data, pairs)  # now, not when the first epoch is over
        if (np.ndim(x) == 1 and hasattr(self.model, "reset_state")
                and getattr(self.model, "vocab_size", None) is not None):  # a language model
            raise TypeError(f"Trainer trains on rows of (input, target) pairs; a language "
                            f"model on one corpus of ids is trained by truncated BPTT: "
                            f"RnnlmTrainer({type(self.model).__name__}, optimizer).fit(xs, ts, "
                            f"max_epoch, batch_size, time_size)")
        rows = ShuffledRows(x, t, batch_size, opts.seed, ignore_label_of(self.model),
                            skip_first_column=is_sequence_to_sequence(self.model))
        if getattr(self.model, "vocab_size", None) is not None:  # a model of ids
            _check_ids(self.model, ("x", rows.x), ("t", rows.t))
            if opts.val_data is not None:
                x_val, t_val = opts.val_data
                _check_ids(self.model, ("val_data's x", x_val), ("val_data's t", t_val))
        # A model that checks whole data sets (the sequence-to-sequence models'
        # check_pairs) does so now, not at the batch or the epoch that fails.
        _check_data(self.model, "x and t", rows.x, rows.t)
        if opts.val_data is not None:
            _check_data(self.model, "val_data (x_val, t_val)", *opts.val_data)
            t_val = np.asarray(opts.val_data[1])
            if t_val.ndim == 2 and not scored_targets(self.model, t_val):
                raise ValueError(f"every target of val_data is the loss's ignore_label "
                                 f"{ignore_label_of(self.model)}: there is nothing to score")
            if not callable(getattr(self.model, "check_pairs", None)):
                _check_like_training_rows(opts.val_data, rows.x, rows.t)
        if self._done() and opts.seed != self.seed:
            raise ValueError(f"this run was started with seed={self.seed}; resume it with the "
                             "same seed")
        # Another batch size may give an epoch the same number of iterations
        # (1000 rows in 40s or 39s): mid-epoch, its batches would overlap the
        # ones already trained, or skip rows.
        if self.iteration and self.batch_size not in (None, rows.batch_size):
            raise ValueError(f"this trainer stopped in the middle of an epoch of batches of "
                             f"{self.batch_size} rows: resume it with batch_size="
                             f"{self.batch_size}")
        return self._train(rows, max_epoch, max_grad, eval_interval, opts)

    def _begin(self, feeder, eval_interval):
        super()._begin(feeder, eval_interval)
        self.seed = int(feeder.seed)  # (set once the call may train: see _train)
        self.batch_size = int(feeder.batch_size)

    def _gradients_of_batches(self, feeder):
        # A batch whose halves pay is computed by halves (common.data_parallel).
        return batch_halves(self.model, (feeder.batch_size, *feeder.x.shape[1:]),
                            (feeder.batch_size, *feeder.t.shape[1:]))

    def _batch_begins(self):
        # Rows are separate examples, in a new order every epoch: a stateful
        # model must not carry one batch's state into the next (validation
        # starts each chunk from zeros too).
        if hasattr(self.model, "reset_state"):
            self.model.reset_state()

    def _figure_of(self, mean_loss):
        return float(mean_loss)

    def _validate(self, opts):
        if opts.val_data is None:
            return None
        x, t = (np.asarray(a) for a in opts.val_data)
        model, size = self.model, opts.val_batch_size
        total = count = 0.0
        with evaluating(model):  # dropout off; the carried state and the mode given back
            for start in range(0, len(x), size):
                if hasattr(model, "reset_state"):
                    # Rows are separate examples; a stateful model must not carry a
                    # training batch's state (of another batch size) into them.
                    model.reset_state()
                rows = slice(start, start + size)
                # A chunk's loss is its mean over its scored targets: weighed by them,
                # the figure is the mean over all, whatever val_batch_size.
                n = scored_targets(model, t[rows])
                if n:
                    total += float(model.forward(xp.asarray(x[rows]), xp.asarray(t[rows]))) * n
                    count += n
        return total / count if count else math.nan

    def state_dict(self):
        return {"loss_list": list(self.loss_list), "seed": self.seed,
                "batch_size": self.batch_size, **super().state_dict()}

    def load_state_dict(self, d):
        super().load_state_dict(d)
        self.loss_list = list(d["loss_list"])
        self.seed = int(d["seed"])
        size = d.get("batch_size")  # (None in a checkpoint from before it was kept)
        self.batch_size = None if size is None else int(size)


def _is_nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _validates(opts) -> bool:
    """Whether a call with the options ``opts`` scores its epochs."""
    return opts.val_corpus is not None or opts.val_data is not None


def _cpu_time() -> float:
    """CPU seconds of this process and of its data-parallel helpers so far."""
    return time.process_time() + helper_cpu_seconds()


def _check_data(model, what, x, t):
    """``model.check_pairs(x, t)`` where the model has it, its error naming ``what``."""
    check = getattr(model, "check_pairs", None)
    if check is None:
        return
    try:
        check(np.asarray(x), np.asarray(t))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{what} do not fit {type(model).__name__}.forward(xs, ts): "
                        f"{exc}") from None


def _check_arrays(model):
    """:meth:`models.base.Model._check_arrays`, for a model that has it: its
    ``params`` and ``grads`` are still the arrays its layers hold."""
    check = getattr(model, "_check_arrays", None)
    if check is not None:
        check()


def _check_pair_rows(x, t, x_name="x", t_name="t", of=""):
    """A sequence-to-sequence model's pairs are rows of two 2-D arrays: a
    single pair given as two 1-D sequences is said so, with the fix (other
    shapes are named by the model's ``check_pairs``). ``of``: what the
    arrays belong to, before their names in the message."""
    if np.ndim(x) == np.ndim(t) == 1:
        raise ValueError(f"{of}{x_name} and {t_name} must be 2-D, (N, T_enc) and (N, T_dec + 1), "
                         f"one row per question and its answer, got shapes {np.shape(x)} and "
                         f"{np.shape(t)}; for a single pair give {x_name}[None] and "
                         f"{t_name}[None]")


def _check_like_training_rows(val_data, x, t):
    """Refuse validation rows shaped unlike the training rows ``x``, ``t``
    (for a model that does not check pairs itself): the forward pass would
    refuse them only at the end of the first epoch."""
    x_val, t_val = (np.asarray(a) for a in val_data)
    if x_val.shape[1:] != x.shape[1:] or t_val.shape[1:] != t.shape[1:]:
        raise ValueError(f"val_data's rows must be shaped as the training rows: x's are "
                         f"{x.shape[1:]} and t's {t.shape[1:]}, but x_val's are "
                         f"{x_val.shape[1:]} and t_val's {t_val.shape[1:]}; give val_data "
                         f"(x_val, t_val) cut as x and t are")


def _check_ids(model, inputs, targets):
    """Refuse integer ids outside the model's vocabulary (``vocab_size``; ids
    below 0 without one) now, not at the batch that holds them. ``inputs``
    and ``targets`` are ``(name, array)``; the targets may hold the loss's
    ignore label."""
    vocab_size = getattr(model, "vocab_size", None)
    ignore = ignore_label_of(model)
    (x_name, x), (t_name, t) = inputs, targets
    check_id_range(x_name, np.asarray(x), vocab_size)
    check_id_range(t_name, np.asarray(t), vocab_size, ignore)


def _check_val_data(val_data, pairs=False):
    """``pairs``: the rows are a sequence-to-sequence model's (2-D arrays)."""
    try:
        x, t = (np.asarray(a) for a in val_data)
    except (TypeError, ValueError):
        raise ValueError("val_data must be a pair (x_val, t_val) of arrays with one row per "
                         "example, as fit's x and t") from None
    if pairs:
        _check_pair_rows(x, t, "x_val", "t_val", of="val_data's ")
    if x.ndim < 1 or t.ndim < 1 or len(x) != len(t) or len(x) == 0:
        raise ValueError(f"val_data (x_val, t_val) must have the same number of rows, at "
                         f"least one, got shapes {x.shape} and {t.shape}")
    check_finite("val_data's x", x)
    check_finite("val_data's t", t)


