"""A dropout of ratio 0 given a fixed mask (TimeDropout.set_mask) drops the
units the mask leaves out: it computes otherwise than in evaluation mode,
with a mask of the whole batch's shape, so its model's batches are not
split (common.batch_worker._draws_masks): a half's forward would meet a
mask of the other shape, and the replica has no mask at all."""

import numpy as np
import pytest

from common import batch_worker, data_parallel
from tests.replicable_example import TwoLayerLstmLm

from helper_processes import small_models_split  # noqa: F401  (a fixture for every test here)

V, D, H = 11, 4, 6


def test_a_model_whose_ratio_0_dropout_has_a_fixed_mask_is_computed_whole():
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, V, (8, 5)), rng.integers(0, V, (8, 5))
    model = TwoLayerLstmLm(V, D, H, seed=0, dtype=np.float64)
    twin = TwoLayerLstmLm(V, D, H, seed=0, dtype=np.float64)
    keep = rng.random((8, 5, D)) < 0.5
    for m in (model, twin):
        m.layers[1].set_mask(keep)  # the dropout after the embedding, ratio 0
    assert batch_worker.why_not_replicable(model) is not None
    assert not data_parallel.splits(model, len(x))
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        loss = forward_backward(x, t)
    assert loss == pytest.approx(twin.forward(x, t), rel=1e-14)
