"""Patience counts the epochs *in a row* without a better validation figure:
a new best starts the count again, so a run that improves now and then
is neither stopped early nor has its learning rate decayed for the bad
epochs before its last improvement."""

from types import SimpleNamespace

import numpy as np

from common.schedules import BestParameters, DecayOnPlateau, EarlyStopping


def run_epochs(figures, patience, factor=2.0):
    """End one epoch per validation figure, as the trainer does; return the
    trainer and the epoch at which early stopping asked to stop (or None)."""
    trainer = SimpleNamespace(
        epoch=0, last_val=None, best_val_ppl=float("inf"), best_epoch=None, bad_epochs=0,
        best_params=None, optimizer=SimpleNamespace(lr=1.0),
        model=SimpleNamespace(named_params=lambda: {"w": np.ones(2)}))
    parts = [BestParameters(), DecayOnPlateau(factor), EarlyStopping(patience)]
    for figure in figures:
        trainer.epoch += 1
        trainer.last_val = figure
        if any([part.end_epoch(trainer) for part in parts]):
            return trainer, trainer.epoch
    return trainer, None


def test_a_new_best_starts_the_count_of_bad_epochs_again():
    trainer, _ = run_epochs([10.0, 12.0, 9.0], patience=5)
    assert trainer.best_epoch == 3 and trainer.best_val_ppl == 9.0
    assert trainer.bad_epochs == 0


def test_bad_epochs_before_an_improvement_do_not_add_to_those_after_it():
    # bad, best, bad: one bad epoch in a row at the end, under patience 2.
    trainer, stopped_at = run_epochs([10.0, 12.0, 9.0, 11.0], patience=2)
    assert stopped_at is None
    assert trainer.bad_epochs == 1


def test_the_learning_rate_is_not_decayed_after_an_improving_epoch():
    # Decayed after epoch 2 (no better than 10) only: 1.0 / 2.
    trainer, _ = run_epochs([10.0, 12.0, 9.0, 8.0], patience=5)
    assert trainer.optimizer.lr == 0.5
