"""Training a language model with truncated BPTT on one long id sequence.

The corpus ``xs`` (inputs) and ``ts`` (the same sequence shifted by one)
are read by ``batch_size`` lanes: lane ``i`` starts at
``i * (len(xs) // batch_size)`` and each iteration takes the next
``time_size`` positions of every lane, wrapping at the end. Consecutive
batches continue each lane, so a stateful model carries its hidden state
from one batch to the next while the gradient stops at the batch boundary.
The read position keeps running across epochs.
"""

import math
import os
import signal
import sys
import time

import numpy as np

from common.backend import xp
from common.checkpoint import load_checkpoint, save_checkpoint
from common.parallel import managed
from common.serialization import atomic_write
from common.util import clip_grads, eval_perplexity

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


def divergence_bound(vocab_size):
    """The largest mean loss (nats) a training batch may have before the run
    counts as diverged: ``max(5 * log(V), 10)``."""
    return max(DIVERGENCE_FACTOR * math.log(max(vocab_size, 2)), MIN_DIVERGENCE_BOUND)


class TrainingDiverged(FloatingPointError):
    """The loss became NaN, infinite or impossibly large, or the parameters
    became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``fit`` at an iteration boundary (after saving)."""

    def __init__(self, message, checkpoint=None):
        super().__init__(message)
        self.checkpoint = checkpoint


class RnnlmTrainer:
    """Fits a language model with an optimizer; keeps the perplexity history.

    Attributes:
        ppl_list: training perplexity over each ``eval_interval`` iterations
            (counted across epochs).
        history: per epoch: ``'epoch'``, ``'train_ppl'``, ``'val_ppl'`` (when
            a validation corpus is given) and ``'lr'``.
        time_idx: the read position of the lanes (positions read so far).
        epoch, iteration: completed epochs; iterations done in the current
            epoch.
        best_params: ``{name: array}`` of the epoch with the best validation
            perplexity (None without validation).
    """

    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.ppl_list = []
        self.history = {"epoch": [], "train_ppl": [], "val_ppl": [], "lr": []}
        self.time_idx = 0
        self.epoch = 0
        self.iteration = 0
        self.eval_interval = 20
        self.iters_per_epoch = None
        self.best_val_ppl = math.inf
        self.best_params = None
        self.bad_epochs = 0
        self.skipped_batches = 0
        # Running sums, part of the state so that a resumed run is identical.
        self._interval_loss, self._interval_count = 0.0, 0
        self._epoch_loss, self._epoch_count = 0.0, 0
        self._stop_requested = False
        self._skipped_in_a_row = 0

    # -- batches -------------------------------------------------------------------

    def get_batch(self, xs, ts, batch_size, time_size):
        """The next ``(batch_size, time_size)`` block of every lane, and advance.

        Row ``i`` reads positions ``i * (len(xs) // batch_size) + time_idx +
        [0, time_size)``, modulo ``len(xs)``.
        """
        size = len(xs)
        jump = size // batch_size
        offsets = np.arange(batch_size) * jump
        positions = (offsets[:, None] + self.time_idx + np.arange(time_size)) % size
        self.time_idx = (self.time_idx + time_size) % size
        return xs[positions], ts[positions]

    # -- training ------------------------------------------------------------------

    def fit(self, xs, ts, max_epoch=10, batch_size=20, time_size=35, max_grad=None,
            eval_interval=20, val_corpus=None, val_batch_size=10, lr_decay=None, patience=None,
            lr_halve_from=None, restore_best=True, max_iters=None, checkpoint=None,
            checkpoint_every=None,
            on_nan="raise", verbose=True, plot_path=None):
        """Train until ``max_epoch`` epochs are complete (counting earlier calls).

        Args:
            xs, ts: 1-D int arrays of the same length (ts = xs shifted by one).
            max_epoch: total epochs; a resumed trainer continues up to it.
            batch_size, time_size: lanes and truncated-BPTT length.
            max_grad: clip the global gradient norm to this (None: no clipping).
            eval_interval: record the training perplexity this often (iterations).
            val_corpus: a 1-D id array; its perplexity is computed after every
                epoch (the training state is saved before and restored after).
            lr_decay: divide the learning rate by this when the validation
                perplexity does not improve on the best so far.
            patience: stop after this many epochs without improvement.
            lr_halve_from: halve the learning rate at the start of every epoch
                from this one on (epochs count from 1): Zaremba et al.'s schedule.
            restore_best: at the end, put back the parameters of the epoch with
                the best validation perplexity.
            max_iters: stop (resumably) once this many iterations have been
                run in total, counting earlier calls.
            checkpoint: path of a checkpoint written every ``checkpoint_every``
                iterations (default: at the end of every epoch), when stopped by
                ``max_iters`` or Ctrl-C, and at the end.
            on_nan: ``'raise'`` stops with :class:`TrainingDiverged`;
                ``'skip'`` drops the batch (no update) and resets the state.
            verbose: print a line per epoch and show a progress bar when
                stdout is a terminal.
            plot_path: where Ctrl-C writes the perplexity plot.
        Returns:
            self.
        """
        xs, ts = np.asarray(xs), np.asarray(ts)
        if xs.ndim != 1 or xs.shape != ts.shape:
            raise ValueError(f"xs and ts must be 1-D arrays of one length, got {xs.shape}, "
                             f"{ts.shape}")
        if val_corpus is None and (lr_decay or patience is not None):
            raise ValueError("lr_decay and patience act on the validation perplexity: "
                             "pass val_corpus too")
        if on_nan not in ("raise", "skip"):
            raise ValueError(f"on_nan must be 'raise' or 'skip', got {on_nan!r}")
        iters_per_epoch = len(xs) // (batch_size * time_size)
        if iters_per_epoch == 0:
            raise ValueError(
                f"the corpus has {len(xs)} positions, fewer than one batch of batch_size * "
                f"time_size = {batch_size * time_size}; use a smaller batch or time size"
            )
        self.eval_interval = eval_interval
        if self.iteration and self.iters_per_epoch not in (None, iters_per_epoch):
            raise ValueError(
                f"this trainer stopped in the middle of an epoch of {self.iters_per_epoch} "
                f"iterations, but this corpus, batch_size and time_size give {iters_per_epoch}: "
                "resume with the settings the run was started with"
            )
        self.iters_per_epoch = iters_per_epoch
        model, optimizer = self.model, self.optimizer
        vocab_size = getattr(model, "vocab_size", None) or int(max(xs.max(), ts.max())) + 1
        bound = divergence_bound(vocab_size)
        model.train()
        total_iters = self._total_iters(iters_per_epoch)
        bar = self._progress_bar(verbose, max_epoch * iters_per_epoch, total_iters)
        start = time.perf_counter()

        # managed(): rnnlab spreads the step over the cores itself (common.parallel).
        with _StopOnSigint(self), managed():
            while self.epoch < max_epoch:
                while self.iteration < iters_per_epoch:
                    if max_iters is not None and self._total_iters(iters_per_epoch) >= max_iters:
                        self._save(checkpoint)
                        bar and bar.close()
                        return self
                    if self._stop_requested:
                        self._interrupted(checkpoint, plot_path, bar)
                    batch_x, batch_t = self.get_batch(xs, ts, batch_size, time_size)
                    loss = model.forward(xp.asarray(batch_x), xp.asarray(batch_t))
                    if not loss <= bound:  # NaN too
                        self._nan(loss, bound, on_nan, checkpoint, bar)
                    else:
                        model.backward()
                        if max_grad is not None:
                            clip_grads(model.grads, max_grad)
                        optimizer.update(model.params, model.grads)
                        self._skipped_in_a_row = 0
                        self._interval_loss += loss
                        self._interval_count += 1
                        self._epoch_loss += loss
                        self._epoch_count += 1
                    self.iteration += 1
                    done = self._total_iters(iters_per_epoch)
                    if done % eval_interval == 0 and self._interval_count:
                        ppl = _perplexity(self._interval_loss / self._interval_count)
                        self.ppl_list.append(ppl)
                        self._interval_loss, self._interval_count = 0.0, 0
                        if bar:
                            bar.set_postfix(epoch=self.epoch + 1, ppl=f"{ppl:.2f}")
                    if bar:
                        bar.update(1)
                    if checkpoint and checkpoint_every and done % checkpoint_every == 0:
                        self._save(checkpoint)

                stop = self._end_epoch(val_corpus, val_batch_size, lr_decay, patience, verbose,
                                       start, bar)
                if lr_halve_from is not None and self.epoch + 1 >= lr_halve_from:
                    optimizer.lr /= 2
                if checkpoint and not checkpoint_every:
                    self._save(checkpoint)
                if stop:
                    break
        if bar:
            bar.close()
        if restore_best and self.best_params is not None:
            model.set_named_params(self.best_params, source="the best parameters")
        self._save(checkpoint)
        return self

    def _total_iters(self, iters_per_epoch):
        return self.epoch * iters_per_epoch + self.iteration

    def _end_epoch(self, val_corpus, val_batch_size, lr_decay, patience, verbose, start, bar):
        """Close an epoch: histories, validation, LR decay, early stopping."""
        train_ppl = _perplexity(self._epoch_loss / max(self._epoch_count, 1))
        self._epoch_loss, self._epoch_count = 0.0, 0
        self.epoch += 1
        self.iteration = 0
        self.history["epoch"].append(self.epoch)
        self.history["train_ppl"].append(train_ppl)
        self.history["lr"].append(float(self.optimizer.lr))
        stop = False
        val_ppl = None
        if val_corpus is not None:
            state = self.model.get_state()
            val_ppl = eval_perplexity(self.model, val_corpus, batch_size=val_batch_size)
            self.model.set_state(state)
            self.history["val_ppl"].append(val_ppl)
            if val_ppl < self.best_val_ppl:
                self.best_val_ppl = val_ppl
                self.best_params = {k: p.copy() for k, p in self.model.named_params().items()}
                self.bad_epochs = 0
            else:
                self.bad_epochs += 1
                if lr_decay:
                    self.optimizer.lr /= lr_decay
                if patience is not None and self.bad_epochs >= patience:
                    stop = True
        if verbose:
            line = (f"| epoch {self.epoch} | time {time.perf_counter() - start:.1f}s "
                    f"| train ppl {train_ppl:.2f}")
            if val_ppl is not None:
                line += f" | val ppl {val_ppl:.2f}"
            line += f" | lr {float(self.history['lr'][-1]):.4g}"
            if stop:
                line += f" | no improvement for {self.bad_epochs} epochs: stopping"
            (bar.write if bar else print)(line)
        return stop

    def _nan(self, loss, bound, on_nan, checkpoint, bar):
        where = f"epoch {self.epoch + 1}, iteration {self.iteration + 1}"
        if on_nan == "skip":
            self.skipped_batches += 1
            self._skipped_in_a_row += 1
            self.model.reset_state()  # the carried state may be NaN too
            if self._skipped_in_a_row < MAX_SKIPS_IN_A_ROW:
                return
            where += f" ({MAX_SKIPS_IN_A_ROW} batches in a row were skipped)"
        if bar:
            bar.close()
        kept = ""
        if checkpoint and os.path.exists(checkpoint):
            kept = f"; the last good checkpoint {checkpoint} is kept"
        what = f"{loss}" if not math.isfinite(loss) else (
            f"{loss:.4g}, above {bound:.1f} (5 x log of the vocabulary size, far worse than "
            "guessing)")
        raise TrainingDiverged(
            f"the loss became {what} at {where}{kept}. Try a smaller learning rate or "
            "gradient clipping (max_grad), or on_nan='skip' to drop such batches."
        )

    def _interrupted(self, checkpoint, plot_path, bar):
        if bar:
            bar.close()
        self._save(checkpoint)
        if plot_path:
            self.plot(path=plot_path)
        how = f"resume with --resume {checkpoint}" if checkpoint else "no checkpoint was asked for"
        raise TrainingInterrupted(
            f"interrupted at epoch {self.epoch + 1}, iteration {self.iteration}; {how}",
            checkpoint,
        )

    def _progress_bar(self, verbose, total, initial):
        if not verbose or not sys.stdout.isatty():
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True)

    # -- checkpoints ------------------------------------------------------------------

    def state_dict(self):
        """Everything besides the model and optimizer needed to resume exactly."""
        return {
            "ppl_list": list(self.ppl_list),
            "history": {k: list(v) for k, v in self.history.items()},
            "time_idx": int(self.time_idx),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "eval_interval": self.eval_interval,
            "iters_per_epoch": self.iters_per_epoch,
            "best_val_ppl": self.best_val_ppl if math.isfinite(self.best_val_ppl) else None,
            "bad_epochs": self.bad_epochs,
            "skipped_batches": self.skipped_batches,
            "sums": [self._interval_loss, self._interval_count, self._epoch_loss,
                     self._epoch_count],
        }

    def load_state_dict(self, d):
        self.ppl_list = list(d["ppl_list"])
        self.history = {k: list(v) for k, v in d["history"].items()}
        self.time_idx = int(d["time_idx"])
        self.epoch, self.iteration = int(d["epoch"]), int(d["iteration"])
        self.eval_interval = int(d["eval_interval"])
        self.iters_per_epoch = d["iters_per_epoch"]
        self.best_val_ppl = math.inf if d["best_val_ppl"] is None else float(d["best_val_ppl"])
        self.bad_epochs = int(d["bad_epochs"])
        self.skipped_batches = int(d["skipped_batches"])
        (self._interval_loss, self._interval_count, self._epoch_loss,
         self._epoch_count) = d["sums"]

    def _save(self, path):
        if path:
            # Never overwrite the last good checkpoint with diverged weights.
            if not all(bool(xp.isfinite(p).all()) for p in self.model.params):
                kept = f"; the last good checkpoint {path} is kept" if os.path.exists(path) else ""
                raise TrainingDiverged(
                    f"the parameters became NaN or infinite at epoch "
                    f"{self.epoch + (self.iteration > 0)}, iteration "
                    f"{self.iteration or self.iters_per_epoch}{kept}. Try a smaller learning "
                    "rate or gradient clipping (max_grad)."
                )
            save_checkpoint(path, self)

    def resume(self, path):
        """Load a checkpoint written by ``fit(checkpoint=...)`` into this
        trainer, its model and its optimizer."""
        load_checkpoint(path, self)
        return self

    # -- plots ----------------------------------------------------------------------------

    def plot(self, ylim=None, path=None):
        """Draw the perplexity curve(s).

        Training perplexity every ``eval_interval`` iterations, and the
        validation perplexity at the end of each epoch when there is one.
        Saves a PNG at ``path``; with no ``path`` it shows the figure when a
        display is available and otherwise saves ``ppl.png``. Returns the
        path written, or None when shown.
        """
        import matplotlib

        if path is None and not _can_show(matplotlib):
            path = "ppl.png"
        if path is not None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(6.4, 4.2))
        else:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        x = np.arange(1, len(self.ppl_list) + 1) * self.eval_interval
        ax.plot(x, self.ppl_list, label="train")
        if self.history["val_ppl"] and self.ppl_list:
            per_epoch = self.iters_per_epoch or 1
            epochs = np.arange(1, len(self.history["val_ppl"]) + 1)
            ax.plot(epochs * per_epoch, self.history["val_ppl"], "o-", label="validation")
        ax.set_xlabel("iterations")
        ax.set_ylabel("perplexity")
        ax.set_title("perplexity during training")
        ax.grid(alpha=0.3)
        if len(ax.get_lines()) > 1:
            ax.legend()
        if ylim is not None:
            ax.set_ylim(*ylim) if np.iterable(ylim) else ax.set_ylim(top=ylim)
        if path is None:
            import matplotlib.pyplot as plt

            plt.show()
            return None
        fig.tight_layout()
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
        return path


def _perplexity(mean_loss):
    """``exp(mean_loss)``, inf (not OverflowError) for a diverging run's huge loss."""
    return math.exp(mean_loss) if mean_loss < 709.0 else math.inf


def _can_show(matplotlib):
    backend = matplotlib.get_backend().lower()
    headless = backend in ("agg", "pdf", "ps", "svg", "cairo", "template") or backend.endswith(
        "backend_agg"
    )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        headless = True
    return not headless


class _StopOnSigint:
    """While training, Ctrl-C asks the loop to stop at the next iteration
    boundary (so the checkpoint is consistent); a second Ctrl-C interrupts
    at once."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.previous = None

    def __enter__(self):
        self.trainer._stop_requested = False
        try:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None
        return self

    def _handler(self, signum, frame):
        self.trainer._stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False

