"""The optimised library computes what the textbook reference computes.

``benchmarks/reference_textbook.py`` is a deliberately straightforward SimpleRnnlm
(one cell object per time step, per-step embedding gradients, softmax then
log, a plain SGD loop, an element-by-element batch fetch). Starting from the
same weights, several consecutive stateful training steps of both must give
the same batches, losses, gradients and updated parameters, to float32
round-off.
"""

import numpy as np
import pytest

from benchmarks import reference_textbook as ref
from benchmarks.contenders import LR, lean_step
from common.optimizer import SGD
from common.trainer import RnnlmTrainer
from layers import TimeRNN
from models import SimpleRnnlm

V, D, H = 50, 8, 16
N, T = 3, 7
STEPS = 4
NAMES = ["embed.W", "rnn.Wx", "rnn.Wh", "rnn.b", "affine.W", "affine.b"]


def close(ours, theirs, what, rtol=1e-4, atol=1e-5):
    """Equal within float32 round-off: ``rtol`` per element, and ``atol``
    relative to the array's largest magnitude (for elements near zero)."""
    theirs = np.asarray(theirs)
    scale = max(float(np.abs(theirs).max()), 1.0)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * scale, err_msg=what)


def corpus(seed=0, size=97):
    # 97 ids: with N = 3 lanes of 32 positions, 4 batches of T = 7 wrap
    # around the end of the corpus, so the wrap is compared too.
    ids = np.random.default_rng(seed).integers(0, V, size=size).astype(np.int32)
    return ids[:-1], ids[1:]


def test_reference_loads_the_same_initial_weights():
    model = SimpleRnnlm(V, D, H, seed=7)
    reference = ref.SimpleRnnlm(V, D, H, seed=7)
    assert [p.shape for p in reference.params] == [p.shape for p in model.params]
    for name, ours, theirs in zip(NAMES, model.params, reference.params, strict=True):
        assert theirs.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


def test_get_batch_matches_the_loop_based_fetch():
    xs, ts = corpus(seed=1)
    trainer = RnnlmTrainer(SimpleRnnlm(V, D, H, seed=0), SGD(0.1))
    fetch = ref.BatchFetcher()
    for step in range(12):  # several wraps around the 96 positions
        bx, bt = trainer.get_batch(xs, ts, N, T)
        rx, rt = fetch.get_batch(xs, ts, N, T)
        assert bx.shape == rx.shape == (N, T) and bx.dtype == rx.dtype
        np.testing.assert_array_equal(bx, rx, err_msg=f"batch {step} inputs")
        np.testing.assert_array_equal(bt, rt, err_msg=f"batch {step} targets")


@pytest.mark.parametrize("seed", [0, 1])
def test_stateful_training_steps_match_the_reference(seed):
    xs, ts = corpus(seed=seed + 10)
    model = SimpleRnnlm(V, D, H, seed=seed)
    # Larger recurrent weights than the default init, so the tanh saturates
    # partly and the carried state matters.
    model.params[2][...] *= 2.0
    reference = ref.SimpleRnnlm(V, D, H, seed=12345)  # different draw ...
    reference.load_params(model.params)  # ... replaced by the model's weights
    for ours, theirs in zip(model.params, reference.params, strict=True):
        np.testing.assert_array_equal(ours, theirs)

    trainer = RnnlmTrainer(model, SGD(lr=0.5))
    fetch, ref_sgd = ref.BatchFetcher(), ref.SGD(lr=0.5)
    for step in range(STEPS):
        bx, bt = trainer.get_batch(xs, ts, N, T)
        rx, rt = fetch.get_batch(xs, ts, N, T)
        np.testing.assert_array_equal(bx, rx)
        np.testing.assert_array_equal(bt, rt)

        loss = model.forward(bx, bt)
        ref_loss = reference.forward(rx, rt)
        assert np.isfinite(loss)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, err_msg=f"step {step} loss")

        model.backward()
        reference.backward()
        for name, g, rg in zip(NAMES, model.grads, reference.grads, strict=True):
            assert g.dtype == np.float32
            close(g, rg, f"step {step}: gradient of {name}")
        # The hidden state carried into the next batch.
        close(model.rnn.h, reference.rnn_layer.h, f"step {step}: carried h")

        trainer.optimizer.update(model.params, model.grads)
        ref_sgd.update(reference.params, reference.grads)
        for name, p, rp in zip(NAMES, model.params, reference.params, strict=True):
            assert p.dtype == np.float32
            close(p, rp, f"step {step}: updated {name}")


def test_time_rnn_matches_reference_on_random_inputs():
    """The time layer alone, with a random initial state and upstream gradient."""
    rng = np.random.default_rng(3)
    Wx = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32)
    Wh = (rng.standard_normal((H, H)) * 1.5 / np.sqrt(H)).astype(np.float32)
    b = rng.standard_normal(H).astype(np.float32)
    ours = TimeRNN(Wx.copy(), Wh.copy(), b.copy(), stateful=True)
    theirs = ref.TimeRNN(Wx.copy(), Wh.copy(), b.copy(), stateful=True)
    h0 = rng.standard_normal((N, H)).astype(np.float32)
    ours.set_state(h0.copy())
    theirs.set_state(h0.copy())
    for step in range(3):
        xs = rng.standard_normal((N, T, D)).astype(np.float32)
        dhs = rng.standard_normal((N, T, H)).astype(np.float32)
        close(ours.forward(xs), theirs.forward(xs), f"step {step}: hs")
        close(ours.backward(dhs), theirs.backward(dhs), f"step {step}: dxs")
        close(ours.dh, theirs.dh, f"step {step}: dh0")
        for name, g, rg in zip(["Wx", "Wh", "b"], ours.grads, theirs.grads, strict=True):
            close(g, rg, f"step {step}: d{name}")


def test_the_benchmarks_lean_bound_trains_like_the_library():
    """The benchmark times the demo step written as one plain NumPy function,
    as a bound; it must be the same model: the same losses over several
    stateful steps from the same weights."""

    xs, ts = corpus(seed=5)
    model = SimpleRnnlm(V, D, H, seed=2)
    lean = lean_step(model, xs, ts, N, T)  # copies the weights
    trainer = RnnlmTrainer(model, SGD(lr=LR))
    for step in range(2 * STEPS):
        bx, bt = trainer.get_batch(xs, ts, N, T)
        loss = model.forward(bx, bt)
        model.backward()
        trainer.optimizer.update(model.params, model.grads)
        np.testing.assert_allclose(lean(), loss, rtol=1e-5, err_msg=f"step {step} loss")
