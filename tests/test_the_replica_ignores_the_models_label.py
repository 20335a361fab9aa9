"""The helper's replica is given the model's ignore label
(common.batch_worker._build): built with its default, it scored the
padding, and its half differed from this process's. The first batch's
check then caught it and this process computed both halves for good,
with a warning that blamed the model's config: the bits stayed right, so
a test of the bits alone does not see it. The replica must be found the
model, and go on computing its halves."""

import warnings

import numpy as np

from common import batch_worker, data_parallel
from models import Seq2seq

from helper_processes import needs_processes, small_models_split  # noqa: F401  (a fixture)

V, D, H = 11, 4, 6


@needs_processes
def test_a_model_with_its_own_ignore_label_keeps_the_helper(monkeypatch):
    posts = []
    original = batch_worker.BatchWorker.post
    monkeypatch.setattr(batch_worker.BatchWorker, "post",
                        lambda self, *a: posts.append(1) or original(self, *a))
    rng = np.random.default_rng(9)
    x, t = rng.integers(0, V, (12, 5)), rng.integers(1, V, (12, 5))
    t[::2, -2:] = 0  # padding
    model = Seq2seq(V, D, H, seed=3)
    model.loss_layer.ignore_label = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
            for _ in range(3):
                forward_backward(x, t)
    assert data_parallel._replica_verdict(model) == "same"
    assert len(posts) == 3
