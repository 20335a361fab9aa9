"""Beam search: on models small enough to score every possible output, a
beam as wide as the number of prefixes finds the exact most likely sequence
(where greedy decoding does not always); a width of 1 is greedy decoding;
on scripted decoders, the ids of the search as first written (tie for tie)
and no step after the best beams finished; the language models' beam search
likewise, with and without a stop id."""

import itertools

import numpy as np
import pytest

from common.functions import log_softmax
from models import Rnnlm, RnnlmGen
from models.attention_seq2seq import AttentionSeq2seq
from models.beam_search import _log_softmax64, beam_search, beam_search_lm
from models.peeky_seq2seq import PeekySeq2seq
from models.seq2seq import Seq2seq

V, D, H, L = 3, 4, 6, 3  # 3 ** 3 = 27 possible answers of length 3

MODELS = [
    pytest.param(Seq2seq, {}, id="plain"),
    pytest.param(PeekySeq2seq, {}, id="peeky"),
    pytest.param(AttentionSeq2seq, {}, id="attention"),
    pytest.param(AttentionSeq2seq, {"bidirectional": True}, id="attention-bidirectional"),
]


def make(cls, kwargs, V=V, seed=0, scale=1.5, dtype=np.float64):
    model = cls(V, D, H, seed=seed, dtype=dtype, **kwargs)
    rng = np.random.default_rng(seed)
    for p in model.params:
        p[...] = rng.standard_normal(p.shape) * scale
    return model


def most_likely_answers(model, xs, start_id, length):
    """Score every possible answer of every question; return the best of each."""
    answers = np.array(list(itertools.product(range(model.vocab_size), repeat=length)))
    best = []
    for x in xs:
        ts = np.concatenate([np.full((len(answers), 1), start_id), answers], axis=1)
        # The mean loss of one answer times its length is -log P(answer | question).
        log_p = [-model.forward(x[None], ts[i:i + 1]) * length for i in range(len(answers))]
        best.append(answers[int(np.argmax(log_p))])
    return np.array(best)


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_wide_beam_finds_the_most_likely_answer(cls, kwargs):
    model = make(cls, kwargs)
    xs = np.random.default_rng(0).integers(0, V, size=(6, 4))
    best = most_likely_answers(model, xs, 0, L)
    found = model.generate(xs, 0, L, beam_width=V ** (L - 1))
    np.testing.assert_array_equal(found, best)


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_a_wider_beam_than_can_matter_answers_alike_on_as_few_rows(cls, kwargs):
    """V ** (L - 1) beams already score every answer: a million beams find the
    same ones, on no more rows (not a million rows of -inf per question)."""
    model = make(cls, kwargs)
    xs = np.random.default_rng(0).integers(0, V, size=(6, 4))
    rows = []
    step = model.decoder.step
    model.decoder.step = lambda ids: rows.append(len(ids)) or step(ids)
    found = model.generate(xs, 0, L, beam_width=10**6)
    np.testing.assert_array_equal(found, model.generate(xs, 0, L, beam_width=V ** (L - 1)))
    assert max(rows) == 6 * V ** (L - 1)
    # One id to produce: the best one, as greedy picks it.
    np.testing.assert_array_equal(model.generate(xs, 0, 1, beam_width=50), model.generate(xs, 0, 1))


def test_beam_search_refuses_what_it_cannot_search():
    model = make(Seq2seq, {})
    xs = np.zeros((2, 4), int)
    for args, message in (((3, 2.0), "beam_width must be an integer >= 1, got 2.0"),
                          ((-1, 2), "sample_size must be an integer >= 0, got -1"),
                          ((2.0, 2), "sample_size must be an integer >= 0, got 2.0"),
                          ((3, True), "beam_width must be an integer >= 1, got True")):
        model._begin(xs)
        with pytest.raises(ValueError, match=message):
            beam_search(model.decoder, np.zeros(2, int), *args)
    model._begin(xs)
    with pytest.raises(ValueError, match=r"stop_id 3 is outside the vocabulary \[0, 3\)"):
        beam_search(model.decoder, np.zeros(2, int), 3, 2, stop_id=V)


def test_greedy_misses_some_most_likely_answers():
    """What makes the test above a test: greedy decoding gets some of them wrong."""
    model = make(AttentionSeq2seq, {})
    xs = np.random.default_rng(0).integers(0, V, size=(6, 4))
    best = most_likely_answers(model, xs, 0, L)
    greedy = model.generate(xs, 0, L)
    assert (greedy != best).any(axis=1).sum() >= 1


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_width_one_is_greedy(cls, kwargs):
    model = make(cls, kwargs, V=11, dtype=np.float32)
    rng = np.random.default_rng(1)
    xs, starts = rng.integers(0, 11, size=(20, 5)), rng.integers(0, 11, size=20)
    greedy = model.generate(xs, starts, 6)
    model._begin(xs)
    beam = beam_search(model.decoder, starts, 6, beam_width=1)
    np.testing.assert_array_equal(beam, greedy)
    np.testing.assert_array_equal(model.generate(xs, starts, 6, beam_width=1), greedy)


@pytest.mark.parametrize(("cls", "kwargs"), MODELS)
def test_batched_beam_equals_one_question_at_a_time(cls, kwargs):
    model = make(cls, kwargs, V=11, dtype=np.float32)
    xs = np.random.default_rng(2).integers(0, 11, size=(7, 5))
    batched = model.generate(xs, 1, 5, beam_width=4)
    single = np.concatenate([model.generate(xs[i:i + 1], 1, 5, beam_width=4) for i in range(7)])
    np.testing.assert_array_equal(batched, single)


def test_beam_keeps_the_attention_weights_of_the_best_beam():
    model = make(AttentionSeq2seq, {}, V=11, dtype=np.float64)
    xs = np.random.default_rng(3).integers(0, 11, size=(4, 5))
    ids = model.generate(xs, 1, 5, beam_width=3)
    weights = [w.copy() for w in model.decoder.attention.attention_weights]
    assert len(weights) == 5 and all(w.shape == (4, 5) for w in weights)
    model.forward(xs, np.concatenate([np.ones((4, 1), int), ids], axis=1))
    for a, b in zip(weights, model.decoder.attention.attention_weights, strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-10)


# --- the search itself, on scripted decoders ---------------------------------------------------


class TableDecoder:
    """The decoder protocol (``step``, ``select``) over a table of scores ``(S, V)``:
    a row's scores are the table's row at a hash of the ids it was fed (question
    ``n`` starts at hash ``n``), so that every beam has scores of its own."""

    def __init__(self, table, N):
        self.table = table
        self.hash = np.arange(N, dtype=np.int64)  # one per row of the decoder's batch
        self.steps = 0

    def step(self, ids):
        self.steps += 1
        self.hash = feed(self.hash, ids, len(self.table))
        return self.table[self.hash]

    def select(self, rows):
        self.hash = self.hash[rows]


def feed(hashes, ids, S):
    return (hashes * 31 + np.asarray(ids) + 7) % S


def score_table(seed, V, all_ruled_out=False):
    """Random scores with many ties (small integers) and ids ruled out (-inf), at
    least one id left in each row unless ``all_ruled_out`` (a few rows with none)."""
    rng = np.random.default_rng(seed)
    table = rng.integers(-3, 1, size=(997, V)).astype(np.float64)
    table[rng.random(table.shape) < 0.2] = -np.inf
    table[np.arange(len(table)), rng.integers(0, V, len(table))] = rng.integers(-3, 1)
    if all_ruled_out:
        table[rng.random(len(table)) < 0.05] = -np.inf
    return table


def copying_beam_search(decoder, start_ids, sample_size, beam_width, stop_id=None):
    """The search as first written, the reference: every beam's whole sequence
    copied at each step (quadratic in sample_size), all sample_size steps run."""
    start_ids = np.asarray(start_ids).reshape(-1)
    N, k = start_ids.size, beam_width
    decoder.select(np.repeat(np.arange(N), k))
    ids = np.repeat(start_ids, k)
    total = np.full((N, k), -np.inf)
    total[:, 0] = 0.0
    finished = np.zeros((N, k), dtype=bool)
    history = np.zeros((N, k, 0), dtype=np.int64)
    for _ in range(sample_size):
        logp = _log_softmax64(decoder.step(ids))
        V = logp.shape[1]
        logp = logp.reshape(N, k, V)
        if stop_id is not None and finished.any():
            logp[finished] = -np.inf
            logp[finished, stop_id] = 0.0
        candidates = (total[:, :, None] + logp).reshape(N, k * V)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, :k]
        beam, word = best // V, best % V
        total = np.take_along_axis(candidates, best, axis=1)
        history = np.concatenate(
            [np.take_along_axis(history, beam[:, :, None], axis=1), word[:, :, None]], axis=2)
        finished = np.take_along_axis(finished, beam, axis=1)
        if stop_id is not None:
            finished |= word == stop_id
        decoder.select((np.arange(N)[:, None] * k + beam).reshape(-1))
        ids = word.reshape(-1)
    decoder.select(np.arange(N) * k)
    return history[:, 0]


@pytest.mark.parametrize("all_ruled_out", [False, True], ids=["scores", "rows-all-inf"])
@pytest.mark.parametrize("stop_id", [None, 1])
def test_back_pointers_give_the_ids_of_the_copying_search(stop_id, all_ruled_out):
    """The same ids as the reference, tie for tie, for beams narrower and wider
    than the candidates (-inf ones then among the beams); the decoder is left
    with the best beam's state after all its ids but the last searched."""
    N, V, stopped_early = 4, 5, 0
    for seed, width, length in itertools.product(range(4), (1, 2, 3, 7), (0, 1, 2, 5, 30)):
        table = score_table(seed, V, all_ruled_out)
        starts = np.random.default_rng(seed).integers(0, V, N)
        reference, decoder = TableDecoder(table, N), TableDecoder(table, N)
        with np.errstate(invalid="ignore"):  # rows all -inf: NaN log-probabilities
            expected = copying_beam_search(reference, starts, length, width, stop_id)
            got = beam_search(decoder, starts, length, width, stop_id)
        case = (seed, width, length)
        assert got.shape == (N, length) and got.dtype == np.int64, case
        np.testing.assert_array_equal(got, expected, err_msg=str(case))
        hashes = np.arange(N)
        for ids in np.concatenate([starts[:, None], got], axis=1).T[:decoder.steps]:
            hashes = feed(hashes, ids, len(table))
        np.testing.assert_array_equal(decoder.hash, hashes, err_msg=str(case))
        if stop_id is None:
            assert decoder.steps == length, case
        stopped_early += decoder.steps < length
    assert stopped_early >= (0 if stop_id is None else 10)  # early stops were tried


class ScriptedDecoder:
    """Question ``n``'s best id is 0 until step ``finish[n]`` (counted from 0), where
    it is ``stop_id`` (2); id 1 is a little less likely, and the stop_id too
    before its step: the other beams are unfinished sequences of 0s and 1s."""

    def __init__(self, finish):
        self.finish = np.asarray(finish)
        self.question = np.arange(len(finish))
        self.steps = 0

    def step(self, ids):
        scores = np.tile([0.0, -1.0, -2.0], (len(ids), 1))
        done = self.steps >= self.finish[self.question]
        scores[done] = [-3.0, -1.0, 0.0]
        self.steps += 1
        return scores

    def select(self, rows):
        self.question = self.question[rows]


def test_the_search_ends_once_the_best_beam_of_every_question_is_finished():
    """A finished best beam stays the best (a total only falls as a beam grows):
    no step after the one where the last question's best beam finished."""
    finish = [0, 3, 1]
    expected = np.full((3, 1000), 2)
    for n, f in enumerate(finish):
        expected[n, :f] = 0
    for width in (1, 2, 3, 5):
        reference, decoder = ScriptedDecoder(finish), ScriptedDecoder(finish)
        np.testing.assert_array_equal(copying_beam_search(reference, np.zeros(3, int), 1000,
                                                          width, stop_id=2), expected)
        got = beam_search(decoder, np.zeros(3, int), 1000, width, stop_id=2)
        np.testing.assert_array_equal(got, expected)
        assert decoder.steps == max(finish) + 1, width
        np.testing.assert_array_equal(decoder.question, [0, 1, 2])  # the best beams' rows
    # Without a stop id every step is searched.
    decoder = ScriptedDecoder(finish)
    beam_search(decoder, np.zeros(3, int), 50, 3)
    assert decoder.steps == 50


class BigramDecoder:
    """Scores of the next id from the last id fed alone: ``table[last id]``."""

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float64)

    def step(self, ids):
        return self.table[np.asarray(ids)].copy()

    def select(self, rows):
        pass


def test_a_finished_beam_goes_on_only_with_the_stop_id():
    """After its stop_id a beam is closed to every other id, however sure the
    model is of one: an id the model gives a log-probability of exactly 0 after
    the stop tied the stop's own extension, and the lower id won the tie."""
    stop = 2
    table = np.zeros((4, 4))
    table[1] = [-10, -10, 2.9, 3.0]  # after the start id: 3 a little likelier than the stop
    table[stop] = [0, -1000, -1000, -1000]  # after the stop: certain of id 0
    # After 3 every id is as likely: the best sequence is the stop (greedy takes 3).
    for width in (2, 3, 4):
        got = beam_search(BigramDecoder(table), np.array([1]), 5, width, stop_id=stop)
        np.testing.assert_array_equal(got, [[stop] * 5], err_msg=f"width {width}")


class PathDecoder:
    """Scores ``scores(path)`` for each row, ``path`` the tuple of ids it was fed."""

    def __init__(self, scores, N):
        self.scores = scores
        self.paths = [()] * N

    def step(self, ids):
        self.paths = [p + (int(i),) for p, i in zip(self.paths, ids, strict=True)]
        return np.array([self.scores(p) for p in self.paths], dtype=np.float64)

    def select(self, rows):
        self.paths = [self.paths[r] for r in rows]


def test_a_best_beam_finished_at_minus_inf_goes_on_as_it_did():
    """Every id ruled out for the beams with finite totals (their log-probabilities
    are NaN): the best beam is then the first candidate at -inf, here a finished
    one followed by id 0, and the search goes on (a finished best beam ends the
    search only at a finite total), giving the ids it always gave."""
    inf = np.inf

    def scores(path):
        if path == (0,):
            return [0.0, -inf, 0.0]  # the stop id 1 only at -inf: a finished beam at -inf
        if path in ((0, 0), (0, 2)):
            return [-inf, -inf, -inf]
        return [0.0, 0.0, 0.0]

    with np.errstate(invalid="ignore"):
        expected = copying_beam_search(PathDecoder(scores, 1), [0], 4, 5, stop_id=1)
        got = beam_search(PathDecoder(scores, 1), [0], 4, 5, stop_id=1)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, [[1, 0, 0, 0]])


def test_lm_beam_stops_at_the_stop_id_however_long_the_length():
    """A language model that ends at once: one step of the model for a length
    of 10 ** 4 (each step was searched, and the beams' sequences copied)."""
    model = lm()
    model.params[-1][2] = 20.0  # affine.b: the stop id 2 is by far the most likely
    calls = []
    predict = model.predict
    model.predict = lambda xs: calls.append(xs.shape) or predict(xs)
    assert beam_search_lm(model, [1, 3], 10**4, beam_width=2, stop_id=2) == [2]
    assert calls == [(1, 1), (2, 1)]  # the prompt's first id, then the one step searched


def test_generate_with_a_beam_stops_at_the_stop_id_too():
    # (A mutation that left stop_id out of generate's beam path survived the suite.)
    from models.generate import generate

    model = lm()
    model.params[-1][2] = 2.0  # affine.b: the stop id 2 likely, not certain
    searched = beam_search_lm(model, [1, 3], 50, beam_width=2, stop_id=2)
    assert searched[-1] == 2 and len(searched) < 50
    assert generate(model, [1, 3], 50, beam_width=2, stop_id=2) == searched
    assert model.generate([1, 3], 50, beam_width=2, stop_id=2) == searched
    assert len(generate(model, [1, 3], 50, beam_width=2)) == 50  # no stop_id: the length


# --- language models --------------------------------------------------------------------------


def lm(seed=0):
    model = Rnnlm(vocab_size=4, wordvec_size=4, hidden_size=5, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for p in model.params:
        p[...] = rng.standard_normal(p.shape) * 0.3
    return model


def lm_log_prob(model, prompt, seq):
    model.reset_state()
    xs = np.array([list(prompt) + list(seq[:-1])])
    logp = log_softmax(model.predict(xs))[0, len(prompt) - 1:]
    return float(sum(logp[i, s] for i, s in enumerate(seq)))


def lm_best(model, prompt, length, stop_id=None, skip_ids=()):
    """The most likely continuation, over all sequences (ending at the first
    stop_id) without an id of skip_ids."""
    candidates = set()
    for seq in itertools.product(range(model.vocab_size), repeat=length):
        seq = list(seq)
        if set(seq) & set(skip_ids):
            continue
        if stop_id is not None and stop_id in seq:
            seq = seq[: seq.index(stop_id) + 1]
        candidates.add(tuple(seq))
    scored = sorted(candidates)
    log_p = [lm_log_prob(model, prompt, s) for s in scored]
    return list(scored[int(np.argmax(log_p))])


@pytest.mark.parametrize("stop_id", [None, 2])
def test_lm_wide_beam_finds_the_most_likely_continuation(stop_id):
    hits = 0
    for seed in range(6):
        model = lm(seed)
        best = lm_best(model, [1, 3], 3, stop_id)
        assert beam_search_lm(model, [1, 3], 3, beam_width=16, stop_id=stop_id) == best
        hits += beam_search_lm(model, [1, 3], 3, beam_width=1, stop_id=stop_id) != best
    assert hits >= 1  # greedy misses at least one: the search matters


def plain_beam_search(model, prompt, length, width, stop_id):
    """Beam search written plainly: each candidate scored from its whole
    sequence; a finished beam (one that produced stop_id) goes on only with
    stop_id at no cost; ties to the lower beam, then the lower id."""
    beams = [((), 0.0)]
    for _ in range(length):
        candidates = []
        for b, (seq, total) in enumerate(beams):
            if stop_id in seq:
                candidates.append((-total, b, stop_id, seq + (stop_id,)))
                continue
            model.reset_state()
            logp = log_softmax(model.predict(np.array([list(prompt) + list(seq)])))[0, -1]
            candidates += [(-(total + logp[w]), b, w, seq + (w,)) for w in range(len(logp))]
        beams = [(seq, -neg) for neg, _, _, seq in sorted(candidates)[:width]]
    best = list(beams[0][0])
    return best[: best.index(stop_id) + 1] if stop_id in best else best


def test_a_narrow_beam_with_a_stop_id_is_the_plain_beam_search():
    # Narrow beams over a longer answer: beams finish and are reordered among
    # unfinished ones (the wide-beam test above cannot see which is which).
    differs_from_greedy = 0
    for seed in range(12):  # (seed 8 at width 3 reorders a finished beam)
        model = Rnnlm(vocab_size=5, wordvec_size=4, hidden_size=5, seed=seed, dtype=np.float64)
        rng = np.random.default_rng(seed)
        for p in model.params:
            p[...] = rng.standard_normal(p.shape)
        for width in (2, 3):
            got = beam_search_lm(model, [1, 3], 5, beam_width=width, stop_id=2)
            assert got == plain_beam_search(model, [1, 3], 5, width, stop_id=2), (seed, width)
            differs_from_greedy += got != beam_search_lm(model, [1, 3], 5, 1, stop_id=2)
    assert differs_from_greedy >= 1


def test_lm_width_one_is_greedy_generation():
    model = Rnnlm(vocab_size=30, wordvec_size=8, hidden_size=8, seed=0)
    for p in model.params:
        p *= 5
    greedy = model.generate([1, 2, 3], 12, temperature=0)
    assert beam_search_lm(model, [1, 2, 3], 12, beam_width=1) == greedy


def test_lm_beam_restores_state_and_mode():
    model = lm()
    model.predict(np.array([[1, 2]]))
    state = model.get_state()
    beam_search_lm(model, [0], 4, beam_width=3)
    for a, b in zip(state, model.get_state(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_lm_beam_errors():
    model = lm()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        beam_search_lm(model, [9], 3, 2)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search_lm(model, [1], 3, 0)
    with pytest.raises(ValueError, match="at least one"):
        beam_search_lm(model, [], 3, 2)
    with pytest.raises(ValueError, match="stop_id"):
        beam_search_lm(model, [1], 3, 2, stop_id=7)
    # Not read as ids 1 or 12: a float or a string is no id.
    for prompt in ([1.7, 2], "12", [[1, 2]]):
        with pytest.raises(ValueError, match="start_ids must be a sequence of integer ids"):
            beam_search_lm(model, prompt, 3, 2)
    for kwargs, message in (({"length": True}, "length must be an integer >= 0, got True"),
                            ({"beam_width": True}, "beam_width must be an integer >= 1"),
                            ({"stop_id": 2.5}, "stop_id must be an integer >= 0, got 2.5")):
        with pytest.raises(ValueError, match=message):
            beam_search_lm(model, [1], **{"length": 3, "beam_width": 2, **kwargs})


@pytest.mark.parametrize("skip_ids", [None, [0]])
def test_book_generate_with_a_wide_beam_finds_the_most_likely_continuation(skip_ids):
    """RnnlmGen.generate(start_id, skip_ids, sample_size, beam_width=k): the
    book's arguments, searched instead of sampled, from the carried state."""
    hits = 0
    for seed in range(6):
        model = RnnlmGen(vocab_size=4, wordvec_size=4, hidden_size=5, dtype=np.float64)
        for p, q in zip(model.params, lm(seed).params, strict=True):
            p[...] = q
        best = lm_best(model, [1], 3, skip_ids=skip_ids or ())
        model.reset_state()
        assert model.generate(1, skip_ids, sample_size=4, beam_width=27) == [1] + best
        model.reset_state()
        hits += model.generate(1, skip_ids, sample_size=4, beam_width=1) != [1] + best
    if skip_ids is None:
        assert hits >= 1  # greedy misses at least one: the search matters


def test_book_generate_by_beam_ranks_by_the_models_probabilities_not_renormalised():
    """With skip_ids, the best sequence without a skipped id by the model's own
    probabilities: renormalising each step over the other ids (as sampling
    does) ranks sequences otherwise, for some models (seed 17 here)."""
    for seed in (17, *range(8)):
        model = RnnlmGen(vocab_size=4, wordvec_size=4, hidden_size=4, dtype=np.float64)
        rng = np.random.default_rng(seed)
        for p in model.params:
            p[...] = rng.normal(0, 2.5, p.shape)  # peaky: the skipped id's mass matters
        best = lm_best(model, [0], 3, skip_ids=[1])
        model.reset_state()
        assert model.generate(0, [1], sample_size=4, beam_width=27) == [0] + best, seed


def test_book_generate_by_beam_goes_on_from_the_carried_state_and_leaves_it():
    model = RnnlmGen(vocab_size=30, wordvec_size=8, hidden_size=8, seed=0)
    model.predict(np.array([[4, 5]]))  # a prompt, as the book feeds it
    state = model.get_state()
    ids = model.generate(6, sample_size=8, beam_width=3)
    left = model.get_state()
    model.set_state(state)
    model.predict(np.array([ids[:-1]]))  # the same ids fed one after the other
    for a, b in zip(left, model.get_state(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="beam_width"):
        model.generate(6, sample_size=8, beam_width=0)
    with pytest.raises(ValueError, match="skip_ids hold every id"):
        model.generate(6, skip_ids=range(30), beam_width=2)


def test_book_generate_cuts_a_beam_wider_than_can_matter(monkeypatch):
    """Like Rnnlm.generate, the book's generate searches with at most V ** (L - 1)
    beams (they hold every sequence): a width of a million costs no more."""
    import models.rnnlm_gen as rnnlm_gen
    widths = []

    def recording(decoder, start_ids, sample_size, beam_width, stop_id=None):
        widths.append(beam_width)
        return beam_search(decoder, start_ids, sample_size, beam_width, stop_id)

    model = RnnlmGen(vocab_size=9, wordvec_size=8, hidden_size=8, seed=0)
    expected = model.generate(1, sample_size=3, beam_width=9)
    model.reset_state()
    monkeypatch.setattr(rnnlm_gen, "beam_search", recording)
    assert model.generate(1, sample_size=3, beam_width=10**6) == expected
    assert widths == [9]  # 2 ids searched: 9 beams hold every first id


@pytest.mark.parametrize("kind", ["normal", "ties", "mostly-minus-inf", "nan", "half-minus-inf"])
def test_top_k_stable_picks_what_a_stable_sort_picks(kind):
    """The beams are chosen by partition where the rows are long (k * V
    candidates); they must be the stable sort's, tie for tie, NaN last."""
    from models.beam_search import top_k_stable

    rng = np.random.default_rng(["normal", "ties", "mostly-minus-inf", "nan",
                                 "half-minus-inf"].index(kind))
    for _ in range(150):
        N, M = int(rng.integers(1, 5)), int(rng.integers(1, 3000))
        k = min(int(rng.integers(1, 60)), M)
        scores = rng.standard_normal((N, M))
        if kind == "ties":
            scores = rng.integers(0, 5, (N, M)).astype(float)
        elif kind == "mostly-minus-inf":
            scores[rng.random((N, M)) < 0.9] = -np.inf
        elif kind == "nan":
            scores[rng.random((N, M)) < 0.3] = np.nan
        elif kind == "half-minus-inf":
            scores = np.round(scores, 1)
            scores[:, : M // 2] = -np.inf
        np.testing.assert_array_equal(top_k_stable(scores, k),
                                      np.argsort(-scores, axis=1, kind="stable")[:, :k])
