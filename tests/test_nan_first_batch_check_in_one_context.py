"""A first batch whose loss is NaN says nothing of the replica
(common.data_parallel._checked), so the *next* batch of the same context is
checked: in one fit, a wrong replica whose first batch blew up was taken on
trust from the second batch on, and trained on its wrong gradients without
a word. (tests/test_replicable_models.py opens a new context for the later
batches, which checks its first batch anyway.)"""

import numpy as np
import pytest

from common import batch_worker, data_parallel
from tests.replicable_example import ForgetfulSeq2seq

from helper_processes import needs_processes, small_models_split  # noqa: F401  (a fixture)

V, D, H = 11, 4, 6


def pairs(rng, n, T_enc=5, T_dec=4):
    return rng.integers(0, V, (n, T_enc)), rng.integers(0, V, (n, T_dec + 1))


def nan_then_finite(model, batches):
    """In one context: the first batch with NaN parameters, then the others
    with the model's own; each later batch's loss and gradients."""
    saved = model.params[0].copy()
    x, t = batches[0]
    results = []
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        model.params[0][...] = np.nan
        with np.errstate(invalid="ignore"):
            forward_backward(x, t)
        model.params[0][...] = saved
        for x, t in batches[1:]:
            results.append((forward_backward(x, t), [g.copy() for g in model.grads]))
    return results


@needs_processes
def test_after_a_nan_first_batch_the_next_batch_of_the_context_is_checked(monkeypatch):
    posts = []
    original = batch_worker.BatchWorker.post
    monkeypatch.setattr(batch_worker.BatchWorker, "post",
                        lambda self, *a: posts.append(1) or original(self, *a))
    rng = np.random.default_rng(17)
    batches = [pairs(rng, 8) for _ in range(3)]
    with pytest.warns(RuntimeWarning, match="is not the model"):
        helped = nan_then_finite(ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0), batches)
    assert len(posts) == 2  # the NaN batch and the next, found wrong; not the third
    monkeypatch.setattr(data_parallel, "_disabled", True)
    alone = nan_then_finite(ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0), batches)
    for (loss, grads), (loss_e, grads_e) in zip(helped, alone, strict=True):
        assert loss == loss_e
        for g, e in zip(grads, grads_e, strict=True):
            np.testing.assert_array_equal(g, e)
