"""rnnlab's seq2seq models compute what the textbook-style reference
(benchmarks/reference_seq2seq.py, the yardstick of the speed benchmark)
computes: the same loss, gradients and greedy answers from the same weights."""

import numpy as np
import pytest

from benchmarks import reference_seq2seq as ref
from models.attention_seq2seq import AttentionSeq2seq
from models.peeky_seq2seq import PeekySeq2seq
from models.seq2seq import Seq2seq

V, D, H = 13, 8, 16

PAIRS = [
    pytest.param(Seq2seq, ref.Seq2seq, id="plain"),
    pytest.param(PeekySeq2seq, ref.PeekySeq2seq, id="peeky"),
    pytest.param(AttentionSeq2seq, ref.AttentionSeq2seq, id="attention"),
]


@pytest.mark.parametrize(("cls", "ref_cls"), PAIRS)
def test_same_loss_gradients_and_answers(cls, ref_cls):
    rng = np.random.default_rng(0)
    model, reference = cls(V, D, H, seed=1), ref_cls(V, D, H, seed=2)
    for p in model.params:
        p[...] += rng.standard_normal(p.shape).astype(np.float32) * 0.3
    ref.copy_params(reference, model)
    xs, ts = rng.integers(0, V, size=(6, 7)), rng.integers(0, V, size=(6, 5))

    assert model.forward(xs, ts) == pytest.approx(reference.forward(xs, ts), rel=1e-5)
    model.backward()
    reference.backward()
    for name, g, g_ref in zip(model.param_names, model.grads, reference.grads, strict=True):
        np.testing.assert_allclose(g, g_ref, rtol=2e-4, atol=2e-6, err_msg=name)

    batched = model.generate(xs, ts[:, 0], 4)
    one_by_one = [reference.generate(xs[[i]], int(ts[i, 0]), 4) for i in range(len(xs))]
    np.testing.assert_array_equal(batched, np.array(one_by_one))


def test_reference_accuracy_and_training_loop_run():
    rng = np.random.default_rng(0)
    reference = ref.Seq2seq(V, D, H, seed=0)
    xs, ts = rng.integers(0, V, size=(64, 7)), rng.integers(0, V, size=(64, 5))
    assert len(ref.fit(reference, ref.Adam(0.01), xs, ts, batch_size=16)) == 4
    optimizer = ref.Adam(0.01)
    losses = [ref.fit(reference, optimizer, xs, ts, batch_size=64)[0] for _ in range(5)]
    assert losses[-1] < losses[0]
    assert 0 <= ref.accuracy_one_by_one(reference, xs, ts) <= 1
