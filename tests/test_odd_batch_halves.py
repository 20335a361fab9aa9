"""An odd batch's halves (common.data_parallel): this process's half is the
smaller, rows // 2 (the one halves_repay judges: "this process's half, the
smaller, is too short to repay the hand-off"), and the helper's the larger,
which the context's segment is sized for."""

import numpy as np

from common import data_parallel
from models import Seq2seq

from helper_processes import small_models_split  # noqa: F401  (a fixture for every test here)


def test_this_process_computes_the_smaller_half_of_an_odd_batch(monkeypatch):
    monkeypatch.setattr(data_parallel, "_disabled", True)  # both halves here, in order
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 11, (9, 5)), rng.integers(0, 11, (9, 5))
    model = Seq2seq(11, 4, 6, seed=1)
    rows = []
    original = data_parallel._forward_backward
    monkeypatch.setattr(data_parallel, "_forward_backward",
                        lambda m, x, t: rows.append(len(x)) or original(m, x, t))
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        forward_backward(x, t)
    assert rows == [4, 5]
