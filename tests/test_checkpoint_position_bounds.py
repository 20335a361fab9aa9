"""A checkpoint's position in its epoch is held to the epoch's length at
its boundary: ``iteration`` may be ``iters_per_epoch`` (the last batch of
the epoch done, its end not yet) but not one more, and without a recorded
``iters_per_epoch`` only 0.
"""

import copy

import numpy as np
import pytest

from common.optimizer import Adam
from common.serialization import load_npz, save_npz
from common.trainer import RnnlmTrainer
from models import SimpleRnnlm


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    ids = np.random.default_rng(0).integers(0, 30, size=201)
    RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=1), Adam(0.01)).fit(
        ids[:-1], ids[1:], max_epoch=1, batch_size=4, time_size=5, max_iters=3,
        checkpoint=path, verbose=False)
    return path


def with_position(checkpoint, tmp_path, **trainer_values):
    arrays, meta = load_npz(checkpoint)
    meta = copy.deepcopy(meta)
    meta["trainer"].update(trainer_values)
    path = tmp_path / "moved.npz"
    save_npz(path, arrays, meta)
    return path


def fresh_trainer():
    return RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=2), Adam(0.01))


def test_the_checkpoint_records_ten_iterations_an_epoch(checkpoint):
    _, meta = load_npz(checkpoint)
    assert meta["trainer"]["iters_per_epoch"] == 10 and meta["trainer"]["iteration"] == 3


def test_an_iteration_at_the_end_of_the_epoch_is_resumed(checkpoint, tmp_path):
    trainer = fresh_trainer().resume(with_position(checkpoint, tmp_path, iteration=10))
    assert trainer.iteration == 10


def test_an_iteration_one_past_the_end_of_the_epoch_is_refused(checkpoint, tmp_path):
    path = with_position(checkpoint, tmp_path, iteration=11)
    trainer = fresh_trainer()
    before = trainer.state_dict()
    with pytest.raises(ValueError, match="iteration must be an integer from 0 to 10, the "
                                         "iterations of its epoch, got 11"):
        trainer.resume(path)
    assert trainer.state_dict() == before


def test_without_iters_per_epoch_only_iteration_0_is_taken(checkpoint, tmp_path):
    path = with_position(checkpoint, tmp_path, iters_per_epoch=None, iteration=1)
    with pytest.raises(ValueError, match="iteration must be an integer 0, as its "
                                         "iters_per_epoch is not recorded, got 1"):
        fresh_trainer().resume(path)
