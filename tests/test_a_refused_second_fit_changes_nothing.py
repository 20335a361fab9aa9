"""A fit refused because another thread trains (one training at a time per
process) is refused before it changes anything of its trainer or its model
(Trainer.fit's docstring): the claim is made before the checks, the
trainer's bookkeeping of the run (iterations per epoch, seed, batch size,
the epoch its fit started at) and the model's training mode."""

import threading

import numpy as np
import pytest

from common import data_parallel
from common.optimizer import Adam
from common.trainer import Trainer
from models import Seq2seq

from helper_processes import two_threads  # noqa: F401  (a fixture for every test here)


def test_a_fit_refused_while_another_thread_trains_leaves_its_trainer_and_model_alone():
    entered, leave = threading.Event(), threading.Event()

    def first():
        with data_parallel.batch_halves(Seq2seq(13, 16, 32, seed=0), (8, 7), (8, 5)):
            entered.set()
            leave.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    rng = np.random.default_rng(0)
    x, t = rng.integers(1, 13, (32, 7)), rng.integers(1, 13, (32, 5))
    model = Seq2seq(13, 16, 32, seed=1)
    model.eval()
    trainer = Trainer(model, Adam())
    before = {name: getattr(trainer, name) for name in
              ("iters_per_epoch", "fit_start_epoch", "seed", "batch_size", "eval_interval")}
    try:
        assert entered.wait(30)
        with pytest.raises(RuntimeError, match="one model at a time per process"):
            trainer.fit(x, t, max_epoch=1, batch_size=8, seed=5, eval_interval=2,
                        verbose=False)
    finally:
        leave.set()
        thread.join()
    assert {name: getattr(trainer, name) for name in before} == before
    assert not any(getattr(layer, "train_flg", False) for layer in model._all_layers())
