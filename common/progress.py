"""What a trainer prints while it runs.

On a terminal: a progress bar (tqdm) and one line per epoch. Elsewhere
(a log file, a notebook, a pipe): one line per epoch, and a line every
``log_every`` iterations, so a long epoch still shows signs of life.
"""

import sys
import time

# Default of log_every away from a terminal: about ten lines an epoch, but
# none for epochs short enough that the epoch lines are frequent already.
AUTO_LINES_PER_EPOCH = 10
AUTO_MIN_ITERS = 100


def auto_log_every(iters_per_epoch: int) -> int:
    """Iterations between progress lines when ``log_every`` is None (0: none)."""
    if iters_per_epoch < AUTO_MIN_ITERS:
        return 0
    return max(1, iters_per_epoch // AUTO_LINES_PER_EPOCH)


class Progress:
    """Progress output of one ``fit`` call.

    Args:
        verbose: False prints nothing.
        total, done: iterations of the whole run, and those done before.
        iters_per_epoch: for the lines' "iteration i/n".
        log_every: iterations between lines when stdout is not a terminal
            (None: :func:`auto_log_every`; 0: none).
    """

    def __init__(self, verbose: bool, total: int, done: int, iters_per_epoch: int,
                 log_every: int | None = None):
        self.verbose = verbose
        self.start = time.perf_counter()
        self.iters_per_epoch = iters_per_epoch
        self.bar = None
        self.log_every = 0
        if not verbose:
            return
        if sys.stdout.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit="it", dynamic_ncols=True)
        else:
            self.log_every = auto_log_every(iters_per_epoch) if log_every is None else log_every

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def iteration(self, trainer, recorded: str | None) -> None:
        """After an iteration; ``recorded`` is the figure just recorded, if any."""
        if self.bar is not None:
            if recorded is not None:
                self.bar.set_postfix_str(f"epoch={trainer.epoch + 1}, {recorded}")
            self.bar.update(1)
        elif self.log_every and trainer.iteration % self.log_every == 0:
            figure = trainer.latest_figure()
            self.write(f"| epoch {trainer.epoch + 1} | iteration {trainer.iteration}/"
                       f"{self.iters_per_epoch} | time {self.elapsed():.1f}s"
                       + (f" | {figure}" if figure else ""))

    def write(self, line: str) -> None:
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
