"""What a trainer asks at the end of every epoch: keep the best parameters,
change the learning rate, stop early.

Each part has one method, ``end_epoch(trainer) -> bool`` (True: stop
training), and reads what it needs from the trainer: ``trainer.epoch``
(epochs done), ``trainer.last_val`` (this epoch's validation figure, lower
is better, or None), ``trainer.optimizer.lr``. The trainer calls them in
the order :class:`BestParameters`, :class:`DecayOnPlateau`,
:class:`EarlyStopping`, :class:`HalveFrom`. Their state lives in the
trainer (``best_val_ppl``, ``best_params``, ``best_epoch``, ``bad_epochs``),
so a checkpoint carries it.
"""

import numbers

from common.util import finite_number


class BestParameters:
    """Keeps a copy of the parameters of the epoch with the best validation
    figure, and counts the epochs since it (``trainer.bad_epochs``)."""

    def end_epoch(self, trainer) -> bool:
        val = trainer.last_val
        if val is None:
            return False
        if val < trainer.best_val_ppl:
            trainer.best_val_ppl = val
            trainer.best_epoch = trainer.epoch
            trainer.best_params = {k: p.copy() for k, p in trainer.model.named_params().items()}
            trainer.bad_epochs = 0
        else:
            trainer.bad_epochs += 1
        return False


class DecayOnPlateau:
    """Divides the learning rate by ``factor`` (> 1) after an epoch whose
    validation figure did not beat the best so far."""

    def __init__(self, factor: float):
        if not (finite_number(factor) and factor > 1):
            raise ValueError(f"lr_decay must be a number > 1 (the learning rate is divided by "
                             f"it), got {factor!r}")
        self.factor = float(factor)

    def end_epoch(self, trainer) -> bool:
        if trainer.last_val is not None and trainer.bad_epochs > 0:
            trainer.optimizer.lr /= self.factor
        return False


class EarlyStopping:
    """Stops after ``patience`` epochs in a row without a better validation
    figure."""

    def __init__(self, patience: int):
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) \
                or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        self.patience = int(patience)

    def end_epoch(self, trainer) -> bool:
        return trainer.last_val is not None and trainer.bad_epochs >= self.patience


class HalveFrom:
    """Halves the learning rate before every epoch from ``epoch`` on (epochs
    count from 1): the schedule of Zaremba et al. (2014). Epoch 1 runs at
    the starting rate, so ``epoch`` is 2 or more (to start lower, start
    with a lower rate)."""

    def __init__(self, epoch: int):
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 2:
            raise ValueError(f"lr_halve_from must be an epoch number >= 2 (epoch 1 runs at the "
                             f"starting rate; give a lower one to start lower), got {epoch!r}")
        self.epoch = int(epoch)

    def end_epoch(self, trainer) -> bool:
        if trainer.epoch + 1 >= self.epoch:  # the epoch about to start
            trainer.optimizer.lr /= 2
        return False
