"""common.inspection: recorded states, surprisal and gradients through time are exact."""

import math

import numpy as np
import pytest

from common.inspection import (
    Recording,
    correlations,
    gradient_through_time,
    hidden_state_gradients,
    interesting_units,
    record_states,
    recurrent_layers,
    text_properties,
    token_surprisal,
    top_guesses,
)
from common.util import eval_perplexity
from layers import LSTM
from models import BetterRnnlm, GruRnnlm, Rnnlm, SimpleRnnlm

V = 13


def tiny_models(dtype=np.float64):
    return [
        SimpleRnnlm(V, 5, 4, seed=1, dtype=dtype),
        Rnnlm(V, 5, 4, seed=2, dtype=dtype),
        GruRnnlm(V, 5, 4, seed=3, dtype=dtype),
        BetterRnnlm(V, 4, 4, num_layers=2, dropout_ratio=0.3, seed=4, dtype=dtype),
    ]


MODEL_IDS = ["rnn", "lstm", "gru", "better2"]


@pytest.fixture
def ids():
    return np.random.default_rng(0).integers(0, V, size=40)


# -- recorded states --------------------------------------------------------------------


@pytest.mark.parametrize("k", range(4), ids=MODEL_IDS)
def test_recorded_states_are_the_states_forward_computes(k, ids):
    model = tiny_models()[k]
    rec = record_states(model, ids)
    # One forward over the whole text, from zeros, dropout off: every
    # recurrent layer's output is its h at every step.
    model.eval()
    model.reset_state()
    out, hs = ids[None, :], []
    for layer in model.layers:
        out = layer.forward(out)
        if layer in recurrent_layers(model):
            hs.append(out[0])
    for got, want in zip(rec.hidden, hs, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # The next-token distribution is the softmax of the scores.
    p = np.exp(out[0] - out[0].max(axis=1, keepdims=True))
    np.testing.assert_allclose(rec.probs, p / p.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("k", [1, 3], ids=["lstm", "better2"])
def test_recorded_cells_follow_the_lstm_cell_step_by_step(k, ids):
    model = tiny_models()[k]
    rec = record_states(model, ids)
    model.eval()
    x = model.layers[0].forward(ids[None, :])[0]  # embedding (T, D)
    for layer_no, layer in enumerate(recurrent_layers(model)):
        cell = LSTM(*layer.params)
        H = layer.params[1].shape[0]
        h, c = np.zeros((1, H)), np.zeros((1, H))
        hs = []
        for t in range(ids.size):
            h, c = cell.forward(x[t:t + 1], h, c)
            np.testing.assert_allclose(rec.cell[layer_no][t], c[0], rtol=0, atol=1e-12)
            hs.append(h[0])
        np.testing.assert_allclose(rec.hidden[layer_no], hs, rtol=0, atol=1e-12)
        x = np.array(hs)  # dropout is off: the next layer reads h
    assert [c is None for c in rec.cell] == [False] * len(rec.cell)


def test_record_states_leaves_the_model_as_it_was(ids):
    model = BetterRnnlm(V, 4, 4, num_layers=2, dropout_ratio=0.5, seed=0, dtype=np.float64)
    model.train()
    model.forward(ids[None, :10], ids[None, 1:11])
    before = model.get_state()
    record_states(model, ids)
    token_surprisal(model, ids)
    gradient_through_time(model, ids.reshape(4, 10), ids.reshape(4, 10))
    for a, b in zip(before, model.get_state(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(layer.train_flg for layer in model.layers if hasattr(layer, "train_flg"))


def test_units_by_name(ids):
    rec = record_states(Rnnlm(V, 5, 4, seed=0), ids)
    names = [name for name, _ in rec.units()]
    assert names[:5] == ["h0:0", "h0:1", "h0:2", "h0:3", "c0:0"] and len(names) == 8
    np.testing.assert_array_equal(rec.unit("c0:2"), rec.cell[0][:, 2])
    with pytest.raises(ValueError, match="no unit 'h0:9'"):
        rec.unit("h0:9")
    with pytest.raises(ValueError, match="no unit 'c0:0'"):
        record_states(SimpleRnnlm(V, 5, 4, seed=0), ids).unit("c0:0")


def test_ids_out_of_the_vocabulary_are_refused():
    with pytest.raises(ValueError, match="id 13, outside the model's vocabulary 0..12"):
        record_states(SimpleRnnlm(V, 5, 4, seed=0), np.array([1, 13]))
    with pytest.raises(TypeError, match="integer token ids"):
        token_surprisal(SimpleRnnlm(V, 5, 4, seed=0), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="at least 2 tokens"):
        token_surprisal(SimpleRnnlm(V, 5, 4, seed=0), np.array([1]))


def test_top_guesses_are_sorted():
    probs = np.array([[0.1, 0.5, 0.05, 0.3, 0.05], [0.6, 0.1, 0.1, 0.1, 0.1]])
    idx, p = top_guesses(probs, 3)
    assert idx[0].tolist() == [1, 3, 0] and p[0].tolist() == [0.5, 0.3, 0.1]
    assert idx[1, 0] == 0


# -- surprisal ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(4), ids=MODEL_IDS)
def test_surprisal_sums_to_eval_perplexity_loss(k, ids):
    model = tiny_models()[k]
    s = token_surprisal(model, ids, time_size=7)
    assert s.log_prob.shape == (ids.size - 1,)  # the first token is context, not scored
    # eval_perplexity with one lane reads the text as one sequence, as token_surprisal does.
    loss = math.log(eval_perplexity(model, ids, batch_size=1, time_size=5)) * (ids.size - 1)
    assert s.total_loss == pytest.approx(loss, rel=1e-12)
    assert s.perplexity == pytest.approx(eval_perplexity(model, ids, batch_size=1), rel=1e-12)
    np.testing.assert_allclose(s.bits, -s.log_prob / math.log(2))
    # Its default cuts the targets into 10 lanes of ceil(L / 10), each from a zero state:
    # the surprisal of each lane (its inputs and targets) adds up to the same total.
    L = ids.size - 1
    lane = -(-L // 10)
    total = sum(token_surprisal(model, ids[a:min(a + lane, L) + 1]).total_loss
                for a in range(0, L, lane))
    assert total == pytest.approx(math.log(eval_perplexity(model, ids)) * L, rel=1e-12)


def test_surprisal_in_float32_matches_eval_perplexity(ids):
    model = Rnnlm(V, 8, 8, seed=5)
    s = token_surprisal(model, ids)
    assert s.perplexity == pytest.approx(eval_perplexity(model, ids, batch_size=1), rel=1e-5)
    assert s.bits_per_token == pytest.approx(math.log2(s.perplexity))


def test_surprisal_does_not_depend_on_time_size(ids):
    model = GruRnnlm(V, 5, 4, seed=0, dtype=np.float64)
    a = token_surprisal(model, ids, time_size=1).log_prob
    b = token_surprisal(model, ids, time_size=100).log_prob
    np.testing.assert_allclose(a, b, rtol=1e-12)


# -- gradients through time ----------------------------------------------------------------


def last_step_losses(model, xs, ts, t=None, delta=None):
    """Per-sequence loss at the last step, from forward passes only, with ``delta``
    added to the top recurrent layer's h after step ``t`` (output and carried state)."""
    top = recurrent_layers(model)[-1]
    model.eval()
    model.reset_state()
    for s in range(xs.shape[1]):
        out = xs[:, s:s + 1]
        for layer in model.layers:
            out = layer.forward(out)
            if layer is top and s == t:
                out = out + delta[:, None, :]
                top.h = top.h + delta
    scores = out[:, 0]
    m = scores.max(axis=1, keepdims=True)
    logz = m[:, 0] + np.log(np.exp(scores - m).sum(axis=1))
    return logz - scores[np.arange(len(ts)), ts[:, -1]]


@pytest.mark.parametrize("k", range(4), ids=MODEL_IDS)
def test_gradient_through_time_equals_finite_differences(k):
    model = tiny_models()[k]
    rng = np.random.default_rng(k)
    xs, ts = rng.integers(0, V, size=(3, 5)), rng.integers(0, V, size=(3, 5))
    got = hidden_state_gradients(model, xs, ts)
    N, T, H = got.shape
    assert (N, T, H) == (3, 5, 4)
    eps = 1e-6
    num = np.empty_like(got)
    for t in range(T):
        for j in range(H):
            d = np.zeros((N, H))
            d[:, j] = eps
            num[:, t, j] = (last_step_losses(model, xs, ts, t, d)
                            - last_step_losses(model, xs, ts, t, -d)) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-9)
    assert np.abs(got).max() > 1e-3  # not trivially zero
    norms = gradient_through_time(model, xs, ts)
    np.testing.assert_allclose(norms, np.linalg.norm(num, axis=2).mean(axis=0), rtol=1e-6)


def test_gradient_through_time_needs_matching_shapes():
    model = SimpleRnnlm(V, 5, 4, seed=0)
    with pytest.raises(ValueError, match="same shape"):
        gradient_through_time(model, np.zeros((2, 3), int), np.zeros((2, 4), int))
    with pytest.raises(ValueError, match=r"shape \(N, T\)"):
        gradient_through_time(model, np.zeros(3, int), np.zeros(3, int))


# -- properties and the units that follow them --------------------------------------------


def test_text_properties_of_a_small_text():
    tokens = list('ab "c(d)" e.\nfg # h\ni')
    p = text_properties(tokens)
    at = tokens.index
    assert p["inside double quotes"][at("c")] == 1 and p["inside double quotes"][at("e")] == 0
    assert p["inside brackets"][at("d")] == 1 and p["inside brackets"][at(")")] == 0
    assert p["position in line"][:4].tolist() == [0, 1, 2, 3]
    assert p["position in line"][at("f")] == 0
    assert p["position in sentence"][at("\n")] == 0
    assert p["end of word"].tolist() == [float(c) for c in "010010100010001000101"]
    assert p["inside a # comment"].tolist() == [float(c) for c in "000000000000000011100"]
    assert "inside single quotes" not in p  # constant: left out


def test_a_closing_bracket_with_none_open_is_passed_over():
    p = text_properties(list("a)b(c)d"))
    assert p["bracket depth"].tolist() == [0, 0, 0, 1, 1, 0, 0]
    assert p["inside brackets"].tolist() == [0, 0, 0, 1, 1, 0, 0]


def test_text_properties_at_word_level():
    p = text_properties("the cat -lrb- a dog -rrb- sat <eos> it 's ran".split())
    assert p["inside brackets"].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert p["position in sentence"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2]
    assert "inside single quotes" not in p  # the ' of 's is no quote mark
    q = text_properties("he said `` no way '' and left".split())
    assert q["inside double quotes"].tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    assert "end of word" not in p and "inside a # comment" not in p


def test_text_properties_take_the_models_level_where_it_is_known():
    # A word-level text of one-letter words was read as characters: "end of
    # word" (each token a word of its own) meant nothing there.
    words = "i x i # x".split()  # one-letter words, and the same as characters
    assert "end of word" in text_properties(words)  # guessed: characters
    assert "end of word" in text_properties(words, level="char")
    for name in ("end of word", "inside a # comment"):
        assert name not in text_properties(words, level="word")
    with pytest.raises(ValueError, match="level must be 'char', 'word' or None"):
        text_properties(words, level="chars")


def test_correlations():
    rng = np.random.default_rng(0)
    prop = rng.standard_normal(200)
    values = np.stack([prop * 2 + 1, -prop, rng.standard_normal(200), np.ones(200)], axis=1)
    r = correlations(values, prop)
    np.testing.assert_allclose(r[:2], [1, -1])
    assert abs(r[2]) < 0.2 and r[3] == 0


def test_interesting_units_finds_the_unit_that_tracks_a_property():
    tokens = list('x = f("ab", (c, d)) + "efg"\n') * 5
    props = text_properties(tokens)
    rng = np.random.default_rng(0)
    T = len(tokens)
    h = rng.standard_normal((T, 6)) * 0.1
    h[:, 4] += props["inside double quotes"]
    c = rng.standard_normal((T, 6)) * 0.1
    c[:, 1] -= props["bracket depth"]
    rec = Recording(ids=np.zeros(T, int), hidden=[h], cell=[c], probs=None)
    found = {f.prop: f for f in interesting_units(rec, props)}
    assert found["inside double quotes"].unit == "h0:4" and found["inside double quotes"].r > 0.95
    assert found["bracket depth"].unit == "c0:1" and found["bracket depth"].r < -0.95
    assert len({f.unit for f in found.values()}) == len(found)  # each unit reported once


def test_interesting_units_gives_each_property_at_most_per_property_units():
    """Three units follow A closely and one follows B: B still gets its unit
    (a property that took one more than per_property left B without any)."""
    rng = np.random.default_rng(0)
    T = 50
    a, b = rng.normal(size=T), rng.normal(size=T)
    h = np.stack([a + 0.01 * rng.normal(size=T), a + 0.02 * rng.normal(size=T),
                  a + 0.03 * rng.normal(size=T), b + 0.5 * rng.normal(size=T)], axis=1)
    rec = Recording(ids=np.zeros(T, np.int64), hidden=[h], cell=[None], probs=None)
    for per_property in (1, 2):
        found = interesting_units(rec, {"A": a, "B": b}, per_property=per_property)
        props = [f.prop for f in found]
        assert props.count("A") == props.count("B") == per_property
        assert ("h0:3", "B") in [(f.unit, f.prop) for f in found]


def test_views_of_a_model_whose_layers_are_not_stateful():
    """Surprisal and the recorded states read the text as one sequence, the
    carried state included, whatever the model's own layers were set to do."""
    ids = np.arange(12) % 7
    model = Rnnlm(V, 6, 6, seed=0, dtype=np.float64)
    expected = token_surprisal(model, ids, time_size=3).log_prob
    states = record_states(model, ids).hidden[0]
    for layer in recurrent_layers(model):
        layer.stateful = False
    np.testing.assert_allclose(token_surprisal(model, ids, time_size=3).log_prob, expected,
                               rtol=1e-12)
    np.testing.assert_array_equal(record_states(model, ids).hidden[0], states)
    assert not any(layer.stateful for layer in recurrent_layers(model))  # given back
