"""Sequence-to-sequence models: exact gradients of every parameter (float64),
the textbook's interface, batched generation equal to one question at a
time, the attention weights, saving and loading, and input errors."""

import numpy as np
import pytest

from common.gradcheck import check_function
from models.attention_seq2seq import AttentionSeq2seq
from models.peeky_seq2seq import PeekySeq2seq
from models.seq2seq import Seq2seq

TOL = 1e-6
V, D, H = 7, 4, 6
N, T_ENC, T_ANS = 3, 5, 4  # answers: a start id and T_ANS - 1 targets

MODELS = [
    pytest.param(Seq2seq, {}, id="plain"),
    pytest.param(PeekySeq2seq, {}, id="peeky"),
    pytest.param(AttentionSeq2seq, {}, id="attention"),
    pytest.param(AttentionSeq2seq, {"bidirectional": True}, id="attention-bidirectional"),
]


def make(cls, kwargs, dtype=np.float64, seed=0, scale=0.5):
    model = cls(V, D, H, seed=seed, dtype=dtype, **kwargs)
    # Larger weights than the textbook's init, so that every path carries a visible gradient.
    rng = np.random.default_rng(seed + 1)
    for p in model.params:
        p[...] = rng.standard_normal(p.shape) * scale
    return model


def pairs(rng, n=N):
    return rng.integers(0, V, size=(n, T_ENC)), rng.integers(0, V, size=(n, T_ANS))


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_model_gradients(cls, kwargs, rng):
    model = make(cls, kwargs)
    xs, ts = pairs(rng)

    def loss():
        return model.forward(xs, ts)

    def backward():
        loss()
        model.backward()
        return model.grads

    errors = check_function(loss, backward, model.params)
    assert max(errors) < TOL, dict(zip(model.param_names, errors, strict=True))


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_textbook_interface(cls, kwargs, rng):
    model = cls(V, D, H, seed=0, **kwargs)
    xs, ts = pairs(rng)
    loss = model.forward(xs, ts)
    assert isinstance(loss, float) and 0 < loss < 2 * np.log(V)
    model.backward()
    assert len(model.params) == len(model.grads) == len(model.param_names)
    assert all(p.dtype == np.float32 for p in model.params)
    assert all(g.shape == p.shape for p, g in zip(model.params, model.grads, strict=True))
    assert any(np.abs(g).sum() > 0 for g in model.grads)
    ids = model.generate(xs, start_id=2, sample_size=5)
    assert ids.shape == (N, 5) and np.issubdtype(ids.dtype, np.integer)
    assert ids.min() >= 0 and ids.max() < V


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_batched_greedy_equals_one_question_at_a_time(cls, kwargs):
    rng = np.random.default_rng(5)
    model = make(cls, kwargs, dtype=np.float32, scale=1.5)
    xs, ts = pairs(rng, n=9)
    batched = model.generate(xs, ts[:, 0], 6)
    one_by_one = np.concatenate([model.generate(xs[i:i + 1], ts[i, 0], 6) for i in range(9)])
    np.testing.assert_array_equal(batched, one_by_one)
    # And a row is not simply the same answer for every question.
    assert len({tuple(r) for r in batched}) > 1


def test_peeky_decoder_reads_the_encoding_at_every_step(rng):
    """A new encoding changes the peeky decoder's scores even from the same initial state."""
    model = make(PeekySeq2seq, {})
    dec = model.decoder
    xs = rng.integers(0, V, size=(N, 3))
    h1, h2 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    s1 = dec.forward(xs, h1)
    dec.lstm.set_state(h1)
    s_peek2 = dec.affine.forward(np.concatenate(
        [np.repeat(h2[:, None], 3, axis=1),
         dec.lstm.forward(np.concatenate([np.repeat(h2[:, None], 3, axis=1),
                                          dec.embed.forward(xs)], axis=2))], axis=2))
    assert not np.allclose(s1, s_peek2)
    assert model.params[5].shape == (H + D, 4 * H)  # decoder LSTM Wx: [h | embedding] rows
    assert model.params[8].shape == (2 * H, V)  # affine W: [h | LSTM output] rows


def test_attention_weights_after_forward_and_generate(rng):
    model = make(AttentionSeq2seq, {}, dtype=np.float32)
    xs, ts = pairs(rng)
    model.forward(xs, ts)
    weights = model.decoder.attention.attention_weights
    assert len(weights) == T_ANS - 1
    assert all(w.shape == (N, T_ENC) for w in weights)
    np.testing.assert_allclose(np.stack(weights).sum(axis=2), 1.0, rtol=1e-5)
    model.generate(xs, 1, 6)
    weights = model.decoder.attention.attention_weights
    assert len(weights) == 6 and all(w.shape == (N, T_ENC) for w in weights)


def test_attention_generation_weights_match_forward_on_the_generated_answer(rng):
    """Generating and then teacher-forcing the generated answer give the same weights."""
    model = make(AttentionSeq2seq, {}, dtype=np.float64)
    xs, _ = pairs(rng)
    ids = model.generate(xs, 1, 5)
    generated = [w.copy() for w in model.decoder.attention.attention_weights]
    ts = np.concatenate([np.full((N, 1), 1), ids], axis=1)
    model.forward(xs, ts)
    for a, b in zip(generated[:-1], model.decoder.attention.attention_weights, strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_bidirectional_encoder_sizes():
    model = AttentionSeq2seq(V, D, H, seed=0, bidirectional=True)
    assert model.encoder.lstm.forward_layer.params[1].shape == (H // 2, 2 * H)
    assert model.config["bidirectional"] is True
    with pytest.raises(ValueError, match="even hidden_size"):
        AttentionSeq2seq(V, D, 5, bidirectional=True)


def test_seed_gives_the_same_model_and_generation(rng):
    xs, ts = pairs(rng)
    a, b = Seq2seq(V, D, H, seed=3), Seq2seq(V, D, H, seed=3)
    for p, q in zip(a.params, b.params, strict=True):
        np.testing.assert_array_equal(p, q)
    assert a.forward(xs, ts) == b.forward(xs, ts)


def test_generate_errors(rng):
    model = Seq2seq(V, D, H, seed=0)
    xs, _ = pairs(rng)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.generate(xs + V, 0, 3)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.generate(xs, V, 3)
    with pytest.raises(ValueError, match="one id or one per question"):
        model.generate(xs, [0, 1], 3)
    with pytest.raises(ValueError, match="sample_size must be an integer"):
        model.generate(xs, 0, -1)
    with pytest.raises(ValueError, match="beam_width must be an integer"):
        model.generate(xs, 0, 3, beam_width=0)
    with pytest.raises(TypeError, match="integer"):
        model.generate(xs.astype(np.float32), 0, 3)


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_the_book_style_decoder_generate_checks_its_arguments(cls, kwargs, rng):
    """decoder.generate(encoder.forward(xs), start_id, sample_size), as the
    book's Seq2seq.generate calls it: errors in its own argument names."""
    model = make(cls, kwargs)
    encoding = model.encoder.forward(pairs(rng)[0])
    with pytest.raises(ValueError, match=f"start_id holds the id {V}, outside the vocabulary"):
        model.decoder.generate(encoding, V, 3)
    with pytest.raises(TypeError, match="start_id must hold integer word ids"):
        model.decoder.generate(encoding, 1.5, 3)
    for sample_size in (-1, 2.0):
        with pytest.raises(ValueError, match="sample_size must be an integer >= 0"):
            model.decoder.generate(encoding, 0, sample_size)
    assert model.decoder.generate(encoding, 0, 3).shape == (N, 3)


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_no_questions_no_answers(cls, kwargs, rng):
    """Generating for 0 questions gives 0 answers (greedy and beam); scoring
    0 questions, or training on a batch of 0 pairs, is an error that says so."""
    from common.util import seq2seq_accuracy

    model = make(cls, kwargs, dtype=np.float32)
    xs, ts = pairs(rng)
    for beam_width in (1, 3):
        ids = model.generate(xs[:0], 0, 4, beam_width=beam_width)
        assert ids.shape == (0, 4) and np.issubdtype(ids.dtype, np.integer)
    with pytest.raises(ValueError, match="no questions to score"):
        seq2seq_accuracy(model, xs[:0], ts[:0])
    with pytest.raises(ValueError, match="no pairs"):
        model.forward(xs[:0], ts[:0])


def test_forward_errors(rng):
    model = Seq2seq(V, D, H, seed=0)
    xs, ts = pairs(rng)
    with pytest.raises(ValueError, match="at least 2 columns"):
        model.forward(xs, ts[:, :1])
    with pytest.raises(ValueError, match="rows"):
        model.forward(xs[:2], ts)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.forward(xs, ts + V)
