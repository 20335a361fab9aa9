"""A model whose replica was found to compute other bits is not handed to
the helper again (common.data_parallel._helper): its next fit, epoch or
hand-written loop computes both halves here from its first batch, without
a new helper begun, a half posted, or the warning said again."""

import warnings

import numpy as np
import pytest

from common import batch_worker, data_parallel
from tests.replicable_example import ForgetfulSeq2seq

from helper_processes import needs_processes, small_models_split  # noqa: F401  (a fixture)

V, D, H = 11, 4, 6


def pairs(rng, n, T_enc=5, T_dec=4):
    return rng.integers(0, V, (n, T_enc)), rng.integers(0, V, (n, T_dec + 1))


def by_halves(model, batches):
    x, t = batches[0]
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        return [forward_backward(x, t) for x, t in batches]


@needs_processes
def test_a_replica_found_wrong_is_not_tried_again_in_the_models_next_context(monkeypatch):
    posts = []
    original = batch_worker.BatchWorker.post
    monkeypatch.setattr(batch_worker.BatchWorker, "post",
                        lambda self, *a: posts.append(1) or original(self, *a))
    rng = np.random.default_rng(3)
    batches = [pairs(rng, 8) for _ in range(2)]
    model = ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0)
    with pytest.warns(RuntimeWarning, match="is not the model"):
        first = by_halves(model, batches)
    assert len(posts) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, in the first context
        again = by_halves(model, batches)
    assert len(posts) == 1  # nothing handed to the helper
    assert again == first
