"""Sampling: the drawn frequencies match the model's softmax, temperature and
top-k do what they say, greedy is the argmax, generation leaves training
alone, and scripts/generate_text.py works from the command line."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.optimizer import SGD
from layers import TimeAffine, TimeEmbedding, TimeRNN, TimeSoftmaxWithLoss
from models import BetterRnnlm, GruRnnlm, LanguageModel, Rnnlm, SimpleRnnlm, generate
from models.generate import _pick, iter_generate

from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "generate_text.py"

# -- statistics (scipy is not a dependency) ----------------------------------------------


def chi2_sf(x, dof):
    """P(X > x) for X ~ chi-square(dof): the regularised upper incomplete gamma
    Q(dof / 2, x / 2), by its series (small x) or continued fraction (large x)."""
    a, x = dof / 2.0, x / 2.0
    if x <= 0:
        return 1.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = 1
        while abs(term) > abs(total) * 1e-15:
            term *= x / (a + n)
            total += term
            n += 1
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    # Lentz's continued fraction for Q (Numerical Recipes, gcf).
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(log_prefactor) * h


def chi2_pvalue(counts, probs):
    """Pearson's goodness-of-fit p-value of ``counts`` against ``probs``.
    Categories of probability zero must have no counts (else p = 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    n = counts.sum()
    if np.any(counts[probs == 0] > 0):
        return 0.0
    keep = probs > 0
    expected = n * probs[keep]
    stat = float(((counts[keep] - expected) ** 2 / expected).sum())
    return chi2_sf(stat, int(keep.sum()) - 1)


def max_sigma(counts, probs):
    """The largest |observed - expected| in binomial standard deviations."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    sd = np.sqrt(n * probs * (1 - probs))
    dev = np.abs(counts - n * probs)
    sigmas = np.where(sd > 0, dev / np.where(sd > 0, sd, 1), np.where(dev > 0, np.inf, 0))
    return float(sigmas.max())


def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize(
    "x, dof, expected",
    [
        (3.841458820694124, 1, 0.05),
        (18.307038053275146, 10, 0.05),
        (30.577914166892498, 15, 0.01),
        (2.0, 2, math.exp(-1.0)),
        (0.5, 7, None),  # series branch, checked against the closed form below
        (40.0, 4, math.exp(-20.0) * (1 + 20.0)),
    ],
)
def test_chi2_sf_helper(x, dof, expected):
    if expected is None:
        # odd dof: Q(7/2, x/2) = erfc(sqrt(x/2)) + e^(-x/2) sqrt(2x/pi) (1 + x/3 + x^2/15)
        expected = math.erfc(math.sqrt(x / 2)) + math.exp(-x / 2) * math.sqrt(2 * x / math.pi) * (
            1 + x / 3 + x * x / 15)
    assert chi2_sf(x, dof) == pytest.approx(expected, rel=1e-9)


# -- _pick with fixed scores: many draws ----------------------------------------------------

SCORES = np.array([1.2, -0.3, 0.5, 2.0, -1.0, 0.9, 0.0, 1.5])


def draw(scores, n, temperature=1.0, top_k=None, seed=0):
    rng = np.random.default_rng(seed)
    ids = [_pick(scores, temperature, top_k, rng) for _ in range(n)]
    return np.bincount(ids, minlength=len(scores))


def test_frequencies_match_softmax():
    counts = draw(SCORES, 20_000, seed=1)
    probs = softmax(SCORES)
    assert chi2_pvalue(counts, probs) > 1e-3
    assert max_sigma(counts, probs) < 5


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_scales_the_scores(temperature):
    counts = draw(SCORES, 6_000, temperature=temperature, seed=2)
    probs = softmax(SCORES / temperature)
    assert chi2_pvalue(counts, probs) > 1e-3
    assert max_sigma(counts, probs) < 5
    # and it is really a different distribution from temperature 1
    assert chi2_pvalue(counts, softmax(SCORES)) < 1e-6


def test_top_k_draws_only_the_k_best_with_renormalised_probabilities():
    k = 3
    counts = draw(SCORES, 5_000, top_k=k, seed=3)
    best = np.argsort(SCORES)[-k:]
    assert set(np.flatnonzero(counts)) == set(best)
    probs = np.zeros_like(SCORES)
    probs[best] = softmax(SCORES[best])
    assert chi2_pvalue(counts, probs) > 1e-3


def test_a_seeded_top_k_draw_is_the_inverse_cdf_over_the_k_ids_in_ascending_order():
    # Which id a seed draws is pinned (the k ids in the order of argpartition,
    # which NumPy does not promise, gave the same frequencies: a mutation survived).
    k, rng, reference_rng = 4, np.random.default_rng(7), np.random.default_rng(7)
    best = np.sort(np.argsort(SCORES)[-k:])
    p = np.exp(SCORES[best] - SCORES.max())
    cdf = np.cumsum(p)
    for _ in range(200):
        expected = best[np.searchsorted(cdf, reference_rng.random() * cdf[-1], side="right")]
        assert _pick(SCORES, 1.0, k, rng) == expected


def test_top_k_keeps_exactly_k_ids_when_scores_tie():
    # Five ids tie for the best score: a ">= k-th score" threshold would keep all five.
    scores = np.array([3.0, 3.0, 3.0, 3.0, 3.0, 0.0, -1.0])
    for k in (1, 2, 4):
        counts = draw(scores, 2_000, top_k=k, seed=k)
        chosen = np.flatnonzero(counts)
        assert len(chosen) == k
        assert set(chosen) <= {0, 1, 2, 3, 4}


def test_top_k_of_all_but_one_never_draws_the_worst():
    counts = draw(SCORES, 3_000, top_k=len(SCORES) - 1, seed=6)
    assert counts[np.argmin(SCORES)] == 0
    assert np.count_nonzero(counts) == len(SCORES) - 1


def test_top_k_one_is_greedy_and_top_k_all_changes_nothing():
    assert set(np.flatnonzero(draw(SCORES, 500, top_k=1))) == {int(np.argmax(SCORES))}
    full = draw(SCORES, 3_000, top_k=len(SCORES), seed=5)
    assert np.array_equal(full, draw(SCORES, 3_000, top_k=None, seed=5))


def test_temperature_zero_is_argmax():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = rng.standard_normal(int(rng.integers(2, 30)))
        assert _pick(scores, 0, None, rng) == int(np.argmax(scores))
        assert _pick(scores, 0, 3 if scores.size > 3 else None, rng) == int(np.argmax(scores))


def test_tiny_temperature_does_not_overflow():
    rng = np.random.default_rng(0)
    assert _pick(np.array([1000.0, 999.0, -1000.0]), 1e-300, None, rng) == 0


def test_nan_scores_are_refused():
    with pytest.raises(FloatingPointError):
        _pick(np.array([0.0, np.nan]), 1.0, None, np.random.default_rng(0))


# -- through generate --------------------------------------------------------------------


def small_model(cls=SimpleRnnlm, V=8, seed=0):
    if cls is BetterRnnlm:
        return BetterRnnlm(V, 6, 6, num_layers=2, dropout_ratio=0.5, seed=seed)
    return cls(V, 5, 6, seed=seed)


def next_scores(model, prompt):
    """The model's scores for the token after ``prompt``, fed like generate feeds it."""
    model.eval()
    model.reset_state()
    if len(prompt) > 1:
        model.predict(np.array([prompt[:-1]]))
    return model.predict(np.array([[prompt[-1]]]))[0, -1].astype(np.float64)


def test_generate_first_token_frequencies_match_the_model():
    model = small_model()
    model.affine.params[0][...] *= 4  # a less uniform distribution, for a sharper test
    prompt = [3, 1, 4]
    probs = softmax(next_scores(model, prompt))
    model.train()
    rng = np.random.default_rng(7)
    ids = [model.generate(prompt, 1, rng=rng)[0] for _ in range(3_000)]
    counts = np.bincount(ids, minlength=model.vocab_size)
    assert chi2_pvalue(counts, probs) > 1e-3
    assert max_sigma(counts, probs) < 5


def test_generate_greedy_is_the_argmax_at_every_step():
    model = small_model(Rnnlm)
    model.affine.params[0][...] *= 3
    ids = model.generate([2], 25, temperature=0)
    x, expected = 2, []
    model.reset_state()
    for _ in range(25):
        x = int(np.argmax(model.predict(np.array([[x]]))[0, -1]))
        expected.append(x)
    assert ids == expected


def test_generate_top_k_respected_at_every_step():
    model = small_model(GruRnnlm)
    k = 2
    ids = model.generate([0, 5], 200, top_k=k, rng=3)
    model.eval()
    model.reset_state()
    model.predict(np.array([[0]]))
    x = 5
    for chosen in ids:
        scores = model.predict(np.array([[x]]))[0, -1]
        assert chosen in np.argsort(scores)[-k:]
        x = chosen
    assert len(set(ids)) > 1  # it did sample, not only the argmax


def test_generate_is_reproducible_with_a_seed():
    model = small_model()
    a = model.generate([1, 2], 30, rng=123)
    assert a == model.generate([1, 2], 30, rng=123)
    assert a == model.generate([1, 2], 30, rng=np.random.default_rng(123))
    assert a != model.generate([1, 2], 30, rng=124)
    assert len(a) == 30 and all(0 <= i < model.vocab_size for i in a)


def test_generate_stops_after_stop_id():
    model = small_model()
    model.affine.params[1][...] = 0
    model.affine.params[1][6] = 50.0  # id 6 is (almost) certain
    assert model.generate([0], 10, stop_id=6, rng=0) == [6]
    assert model.generate([0], 4, rng=0) == [6, 6, 6, 6]
    assert model.generate([0], 0, rng=0) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(start_ids=[], length=3), "at least one"),
        (dict(start_ids=[8], length=3), "outside the vocabulary"),
        (dict(start_ids=[-1], length=3), "outside the vocabulary"),
        (dict(start_ids=[0], length=-1), "length"),
        (dict(start_ids=[0], length=3, temperature=-0.5), "temperature"),
        (dict(start_ids=[0], length=3, top_k=0), "top_k"),
        (dict(start_ids=[0], length=3, top_k=9), "top_k"),
        (dict(start_ids=[0], length=3, stop_id=8), "stop_id"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(small_model(), **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(temperature=float("nan")), "temperature must be a finite number"),
        (dict(temperature=float("inf")), "temperature must be a finite number"),
        (dict(temperature="hot"), "temperature"),
        (dict(top_k=2.5), "top_k must be an integer"),
        (dict(top_k=True), "top_k must be an integer"),
        (dict(length=2.5), "length must be an integer"),
        (dict(start_ids=[1.7]), "start_ids must be a sequence of integer ids"),
        (dict(start_ids=[[1, 2]]), "start_ids must be a sequence of integer ids"),
        (dict(stop_id=2.0), "stop_id must be an id"),
        (dict(rng=-1), "rng must be"),
    ],
)
def test_generate_refuses_nonsense_up_front(kwargs, match):
    """Finding 6 (issue 12): nan, inf and other nonsense refused in Python words."""
    args = {"start_ids": [0], "length": 3, **kwargs}
    model = small_model(Rnnlm)
    with pytest.raises(ValueError, match=match):
        generate(model, **args)
    assert all(s is None for s in model.get_state())  # nothing was run


@pytest.mark.parametrize("function", [generate, iter_generate])
def test_generate_on_a_sequence_to_sequence_model_says_what_to_call(function):
    """An AttributeError, 'Seq2seq' object has no attribute 'predict'."""
    from models import AttentionSeq2seq

    with pytest.raises(TypeError, match=r"AttentionSeq2seq answers questions: call "
                                        r"model.generate\(xs, start_id, sample_size\)"):
        function(AttentionSeq2seq(13, 4, 8), [1], 3)
    with pytest.raises(TypeError, match=r"a language model .*, got list"):
        function([], [1], 3)


class ReadmeRnnlm(LanguageModel):
    """Composed as in the README's "Compose a new model", ``stateful`` as given."""

    def __init__(self, V, H, stateful, seed=0):
        rng = np.random.default_rng(seed)

        def randn(*shape):
            return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)

        self.config = {"V": V, "H": H}
        self.layers = [
            TimeEmbedding(randn(V, H) * 10),
            TimeRNN(randn(H, H), randn(H, H) * 2, np.zeros(H, np.float32), stateful=stateful),
            TimeAffine(randn(H, V) * 5, np.zeros(V, np.float32)),
        ]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "rnn.Wx", "rnn.Wh", "rnn.b", "affine.W", "affine.b"])


def test_generate_gives_the_same_text_for_stateful_and_non_stateful_models():
    """Finding 11 (issue 12): the prompt and the generated history condition every
    next id even when the model's recurrent layer is not stateful."""
    stateful, plain = ReadmeRnnlm(12, 16, True), ReadmeRnnlm(12, 16, False)
    for prompt in ([3], [3, 7, 1, 4]):
        for seed in range(3):
            a = generate(stateful, prompt, 25, rng=seed)
            assert generate(plain, prompt, 25, rng=seed) == a
        assert generate(plain, prompt, 25, temperature=0) == \
            generate(stateful, prompt, 25, temperature=0)
    # and the prompt matters: another prompt ending in the same id, another text
    assert generate(plain, [5, 4], 25, rng=0) != generate(plain, [3, 7, 1, 4], 25, rng=0)
    assert plain.layers[1].stateful is False and plain.layers[1].h is None


@pytest.mark.parametrize("cls", [SimpleRnnlm, Rnnlm, GruRnnlm, BetterRnnlm])
def test_generate_restores_state_and_train_mode(cls):
    model = small_model(cls)
    model.train()
    xs = np.random.default_rng(0).integers(0, 8, size=(3, 4))
    model.forward(xs, np.roll(xs, -1, axis=1))
    state = model.get_state()
    modes = [getattr(layer, "train_flg", None) for layer in model.layers]
    model.generate([1, 2, 3], 10, rng=0)
    assert [getattr(layer, "train_flg", None) for layer in model.layers] == modes
    after = model.get_state()
    assert len(after) == len(state) and len(state) > 0
    for a, b in zip(after, state, strict=True):
        assert a.shape == (3, 6) and np.array_equal(a, b)
    if cls is BetterRnnlm:
        assert all(mode is True for mode in modes if mode is not None)
        assert any(mode is not None for mode in modes)


def test_generate_restores_a_fresh_state():
    model = small_model(Rnnlm)
    model.generate([1], 3, rng=0)
    assert all(s is None for s in model.get_state())


def test_generate_in_the_middle_of_training_changes_nothing():
    """Two identical BetterRnnlm (dropout on) train alike; one also samples
    between steps. Losses and parameters stay identical, bit for bit."""
    data = np.random.default_rng(1).integers(0, 8, size=(6, 2, 5))
    runs = []
    for sample in (False, True):
        model = small_model(BetterRnnlm, seed=3)
        opt = SGD(lr=0.5)
        losses = []
        for batch in data:
            losses.append(model.forward(batch, np.roll(batch, -1, axis=1)))
            model.backward()
            opt.update(model.params, model.grads)
            if sample:
                model.generate([1, 2], 5, rng=0)
                model.generate([3], 5, temperature=0)
        runs.append((losses, [p.copy() for p in model.params]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert np.array_equal(a, b)


# -- scripts/generate_text.py ------------------------------------------------------------------


def run(*args, cwd):
    # One BLAS thread: tiny matrices on shared cores are much faster that way.
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A SimpleRnnlm trained for one epoch on the synthetic corpus, by train_rnnlm.py."""
    folder = tmp_path_factory.mktemp("gen")
    done = run(ROOT / "scripts" / "train_rnnlm.py", "--corpus", "synthetic", "--epochs", 1,
               "--corpus-size", 5000, "--save", "m.npz", "--plot", "ppl.png", "--quiet",
               cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


def test_script_end_to_end(trained):
    args = (SCRIPT, "--model", "m.npz", "--start", "the", "--length", 10, "--seed", 1)
    first = run(*args, cwd=trained)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert out.startswith("the ")
    words = out.split()
    assert 2 <= len(words) <= 11  # the prompt and up to 10 words (<eos> is a line break)
    assert run(*args, cwd=trained).stdout == out
    other = run(*args[:-1], 2, cwd=trained)
    assert other.returncode == 0 and other.stdout != out


def test_script_unknown_start_word(trained):
    done = run(SCRIPT, "--model", "m.npz", "--start", "the dgo", cwd=trained)
    assert done.returncode == 2
    assert "'dgo' is not in the model's vocabulary" in done.stderr
    assert "dog" in done.stderr  # a close known word is suggested
    assert done.stdout == ""


def test_script_missing_file(tmp_path, capsys):
    assert load_script("generate_text").main(["--model", str(tmp_path / "nowhere.npz")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "nowhere.npz" in err


def test_script_in_process_options(trained, capsys):
    script = load_script("generate_text")
    path = str(trained / "m.npz")
    assert script.main(["--model", path, "--start", "the dog", "--length", "8",
                        "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    assert greedy.startswith("the dog")
    assert script.main(["--model", path, "--start", "the dog", "--length", "8",
                        "--temperature", "0.0", "--top-k", "3", "--seed", "5"]) == 0
    assert capsys.readouterr().out == greedy
    # --stop '\n' means <eos> at word level; the output then ends at a line break
    assert script.main(["--model", path, "--length", "300", "--stop", "\\n", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1 and "<eos>" not in out


def test_script_shows_each_word_as_it_is_drawn_and_keeps_them_on_ctrl_c(
        trained, capsys, monkeypatch):
    """The sample is written word by word: Ctrl-C keeps the words before it
    (a whole-text write at the end lost them all), and its line is closed."""
    script = load_script("generate_text")
    argv = ["--model", str(trained / "m.npz"), "--start", "the", "--seed", "4"]
    assert script.main([*argv, "--length", "5"]) == 0
    five = capsys.readouterr().out
    draws = []

    def pick_then_interrupt(*args):
        if len(draws) == 5:
            raise KeyboardInterrupt
        draws.append(_pick(*args))
        return draws[-1]

    # (the module by name: models.generate is also the function's name)
    monkeypatch.setattr(sys.modules["models.generate"], "_pick", pick_then_interrupt)
    assert script.main([*argv, "--length", "50"]) == 130
    out, err = capsys.readouterr()
    assert out == five and out.endswith("\n") and len(out.split()) >= 2
    assert err == "interrupted\n"


def test_iter_generate_yields_the_ids_of_generate_one_at_a_time():
    model = Rnnlm(vocab_size=7, wordvec_size=4, hidden_size=5, seed=0)
    ids = generate(model, [1, 2], 20, top_k=4, rng=3)
    assert list(iter_generate(model, [1, 2], 20, top_k=4, rng=3)) == ids
    # Arguments are checked on the call, not at the first id.
    with pytest.raises(ValueError, match="outside the vocabulary"):
        iter_generate(model, [9], 5)
    # Closed after three ids, a model has its training state and mode back.
    model = BetterRnnlm(vocab_size=7, wordvec_size=5, hidden_size=5, seed=0)
    model.forward(np.array([[1, 2, 3]]), np.array([[2, 3, 4]]))
    state = [a.copy() for a in model.get_state()]

    def modes():
        return {layer.train_flg for layer in model._all_layers() if hasattr(layer, "train_flg")}

    drawn = iter_generate(model, [1, 2], 20, rng=3)
    assert [next(drawn) for _ in range(3)] == generate(model, [1, 2], 3, rng=3)
    assert modes() == {False}
    drawn.close()
    assert modes() == {True}
    assert all(np.array_equal(a, b) for a, b in zip(model.get_state(), state, strict=True))


def test_script_errors_exit_2(trained, tmp_path, capsys):
    script = load_script("generate_text")
    model = SimpleRnnlm(5, 3, 4, seed=0)
    model.save_params(tmp_path / "novocab.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "text.npz").write_text("hello")
    from common.trainer import RnnlmTrainer

    trainer = RnnlmTrainer(model, SGD(lr=0.1))
    ids = np.arange(60) % 5
    trainer.fit(ids[:-1], ids[1:], max_epoch=1, batch_size=2, time_size=5, verbose=False,
                checkpoint=str(tmp_path / "ckpt.npz"))
    cases = [
        ([str(tmp_path / "novocab.npz")], "no vocabulary"),
        ([str(tmp_path / "ckpt.npz")], "training checkpoint"),
        # ... and how to write a model from it (it used to stop at "the file of --save").
        ([str(tmp_path / "ckpt.npz")], "trainer.resume(path) with a trainer of its model, "
                                       "then model.save_params(...)"),  # (fit's: in Python)
        ([str(tmp_path / "junk.npz")], "cannot read"),
        ([str(tmp_path / "text.npz")], "not an .npz (zip) archive"),
        ([str(tmp_path)], "folder"),
        ([str(trained / "m.npz"), "--stop", "zebraa"], "--stop"),
        ([str(trained / "m.npz"), "--top-k", "100000"], "--top-k"),
        ([str(trained / "m.npz"), "--start", "  "], "empty"),
    ]
    for argv, message in cases:
        assert script.main(["--model", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (argv, err)
    with pytest.raises(SystemExit) as exc:
        script.main(["--model", str(trained / "m.npz"), "--length", "-1"])
    assert exc.value.code == 2


def test_script_file_with_wrong_shapes(trained, tmp_path, capsys):
    from common.serialization import load_npz, save_npz

    arrays, meta = load_npz(trained / "m.npz")
    arrays["rnn.Wh"] = arrays["rnn.Wh"][:, :-1]
    save_npz(tmp_path / "bad.npz", arrays, meta)
    assert load_script("generate_text").main(["--model", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert "rnn.Wh" in err and "shape" in err


def test_sampling_streams_so_any_length_is_taken_whatever_the_free_memory(tmp_path, capsys):
    # Each token is written as it is drawn and nothing is kept: a sample longer
    # than the memory could hold (piped to head, or to a file) is fine.
    script = load_script("generate_text")
    path = tmp_path / "m.npz"
    SimpleRnnlm(5, 4, 4, seed=0).save_params(path, vocab=["<eos>", "a", "b", "c", "d"])
    script.available_bytes = lambda: 1000  # too little for 100 tokens at 64 bytes each
    assert script.main(["--model", str(path), "--length", "100", "--seed", "0"]) == 0
    assert len(capsys.readouterr().out.split()) >= 50  # words, and <eos> as line breaks


def test_without_a_boundary_to_start_after_the_first_token_is_shown_and_said(tmp_path,
                                                                             capsys):
    # A char-level model of a text without a line break: no start of a line.
    script = load_script("generate_text")
    path = tmp_path / "m.npz"
    SimpleRnnlm(4, 4, 4, seed=0).save_params(path, vocab=["h", "e", "l", "o"], level="char")
    assert script.main(["--model", str(path), "--length", "5", "--seed", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("h") and len(captured.out.rstrip("\n")) == 6
    assert ("notice: the model has no line break to start after: the sample starts from its "
            "first token, 'h' (--start chooses another)") in captured.err


def test_detokenize_and_unescape():
    script = load_script("generate_text")
    assert script.detokenize(["the", "dog", "<eos>", "a", "cat", "<eos>"], "word") == \
        "the dog\na cat\n"
    assert script.detokenize(["h", "i", " ", "\n", "x"], "char") == "hi \nx"
    assert script.unescape("\\n") == "\n"
    assert script.unescape("\\t") == "\t"
    assert script.unescape("é\\u00e9") == "éé"
    assert script.unescape("plain") == "plain"
    assert script.stop_token("\\n", "word") == "<eos>"
    assert script.stop_token("\\n", "char") == "\n"
    assert script.unescape("\\\\q") == "\\q"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unknown escape is refused, not warned about
        with pytest.raises(script.UsageError, match=r"bad escape sequence in '\\\\q': a "
                                                    r"backslash starts an escape"):
            script.unescape("\\q")


def test_script_vocabulary_longer_or_shorter_than_the_model(tmp_path, capsys):
    """train_rnnlm.py --corpus-size trains on ids < V only but saves the whole
    vocabulary: the extra words are unknown to the model; a shorter list is an error."""
    script = load_script("generate_text")
    model = SimpleRnnlm(4, 3, 5, seed=0)
    model.save_params(tmp_path / "long.npz", vocab=["<eos>", "a", "b", "c", "d", "e"])
    assert script.main(["--model", str(tmp_path / "long.npz"), "--start", "a c", "--seed", "1",
                        "--length", "20"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("a c") and set(out.split()) <= {"a", "b", "c"}
    assert script.main(["--model", str(tmp_path / "long.npz"), "--start", "e"]) == 2
    assert "'e' is not in the model's vocabulary (4 tokens)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="fewer than the model's 4 ids"):  # refused at once
        model.save_params(tmp_path / "short.npz", vocab=["<eos>", "a"])
    # A file written otherwise (by an older rnnlab) is still refused when read.
    from common.serialization import save_npz

    save_npz(tmp_path / "short.npz", model.named_params(),
             {"model": "SimpleRnnlm", "config": model.config, "vocab": ["<eos>", "a"]})
    assert script.main(["--model", str(tmp_path / "short.npz")]) == 2
    assert "the vocabulary has 2 tokens but the model has 4" in capsys.readouterr().err


def test_script_help_describes_it_and_shows_every_default(tmp_path):
    """Finding 9 (issue 12): --help describes the script, shows every default
    (no bare "None") and starts nothing."""
    done = run(SCRIPT, "--help", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    out = done.stdout
    assert "Sample text from a language model" in out and "examples:" in out
    assert "None" not in out
    options = re.findall(r"^  (--[a-z-]+)", out, flags=re.M)
    assert options == ["--model", "--start", "--length", "--temperature", "--top-k", "--seed",
                       "--beam-width", "--stop", "--import"]
    listing = out.split("options:", 1)[1]
    for option in options:
        text = listing.split("\n  " + option, 1)[1].split("\n  --", 1)[0]
        assert "(default:" in text or "(required)" in text, option
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, flag", [
    (["--seed", "-1"], "--seed"),
    (["--temperature", "nan"], "--temperature"),
    (["--temperature", "inf"], "--temperature"),
    (["--temperature", "-0.5"], "--temperature"),
    (["--top-k", "0"], "--top-k"),
    (["--length", "-3"], "--length"),
    (["--length", "2.5"], "--length"),
])
def test_script_flags_are_checked_before_the_file_is_read(argv, flag, capsys):
    """Finding 9 (issue 12): a bad flag is named, exit 2, before the (missing) file."""
    with pytest.raises(SystemExit) as exc:
        load_script("generate_text").main(["--model", "no-such-file.npz", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and "Traceback" not in err and "not found" not in err


def hostile_model_file(path, config, model="SimpleRnnlm", vocab=("<eos>", "a", "b", "c", "d")):
    """A small file with real (5, 3, 4) SimpleRnnlm arrays and the given metadata."""
    from common.serialization import save_npz

    arrays = {k: p for k, p in SimpleRnnlm(5, 3, 4, seed=0).named_params().items()}
    save_npz(path, arrays, {"model": model, "config": config, "vocab": list(vocab)})
    return path


def test_script_refuses_a_file_whose_config_claims_huge_sizes_before_allocating(tmp_path,
                                                                                capsys):
    """Finding 7 (issue 12): a file of about a kilobyte claiming 2000 x 5000 (80 MB
    to build) is refused by checking its arrays against its config first."""
    import tracemalloc

    path = hostile_model_file(tmp_path / "huge.npz",
                              {"vocab_size": 2000, "wordvec_size": 5000, "hidden_size": 5000})
    assert path.stat().st_size < 3000
    script = load_script("generate_text")
    tracemalloc.start()
    try:
        code = script.main(["--model", str(path)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert code == 2
    assert "'embed.W' has shape (5, 3), the model needs (2000, 5000)" in err
    assert str(path) in err and "Traceback" not in err
    assert peak < 5_000_000, peak


@pytest.mark.parametrize("config, model, message", [
    ({"vocab_size": "five", "wordvec_size": 3, "hidden_size": 4}, "SimpleRnnlm",
     "vocab_size must be a positive integer"),
    ({"vocab_size": 5, "wordvec_size": 3, "hidden_size": -4}, "SimpleRnnlm",
     "hidden_size must be a positive integer"),
    ({"vocab_size": 5, "wordvec_size": 3, "hidden_size": 4.0}, "SimpleRnnlm",
     "hidden_size must be a positive integer"),
    ([5, 3, 4], "SimpleRnnlm", "must be a dict"),
    ({"vocab_size": 5, "wordvec_size": 3, "hidden_size": 4}, ["SimpleRnnlm"], "not a name"),
    ({"vocab_size": 5, "wordvec_size": 3, "hidden_size": 4}, "Transformer", "unknown model"),
    ({"vocab_size": 5, "wordvec_size": 3, "hidden_size": 4}, "Rnnlm", "missing"),
])
def test_script_refuses_inconsistent_model_files_without_a_traceback(tmp_path, capsys, config,
                                                                     model, message):
    path = hostile_model_file(tmp_path / "m.npz", config, model=model)
    assert load_script("generate_text").main(["--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_load_model_and_model_from_config_check_shapes_first(tmp_path):
    from models import load_model, model_from_config

    path = hostile_model_file(tmp_path / "huge.npz",
                              {"vocab_size": 2000, "wordvec_size": 5000, "hidden_size": 5000})
    with pytest.raises(ValueError, match=r"'embed\.W' has shape \(5, 3\), the model needs"):
        load_model(path)
    shapes = {k: p.shape for k, p in SimpleRnnlm(5, 3, 4).named_params().items()}
    no_bias = {k: v for k, v in shapes.items() if k != "rnn.b"}
    with pytest.raises(ValueError, match=r"does not fit SimpleRnnlm: missing \['rnn\.b'\]"):
        model_from_config("SimpleRnnlm", {"vocab_size": 5, "wordvec_size": 3,
                                          "hidden_size": 4}, shapes=no_bias)
    with pytest.raises(ValueError, match=r"'embed\.W' has shape \(5, 3\)"):
        model_from_config("SimpleRnnlm", {"vocab_size": 2000, "wordvec_size": 5000,
                                          "hidden_size": 5000}, shapes=shapes)
    good = hostile_model_file(tmp_path / "good.npz",
                              {"vocab_size": 5, "wordvec_size": 3, "hidden_size": 4})
    model, meta = load_model(good)
    assert type(model) is SimpleRnnlm and meta["vocab"][0] == "<eos>"
    for a, b in zip(model.params, SimpleRnnlm(5, 3, 4, seed=0).params, strict=True):
        assert np.array_equal(a, b)


def test_script_output_errors_end_with_a_message(trained, tmp_path):
    """stdout on a full device (/dev/full): a one-line error, no traceback; a reader
    that stops early (a broken pipe): exit 0, no traceback."""
    args = [sys.executable, str(SCRIPT), "--model", "m.npz", "--length", "2000", "--seed", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            done = subprocess.run(args, cwd=trained, env=env, stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=60)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith("error: cannot write the text")
    reader = subprocess.Popen(args, cwd=trained, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    reader.stdout.close()  # nobody reads: the writer gets a broken pipe
    _, err = reader.communicate(timeout=60)
    assert reader.returncode == 0 and b"Traceback" not in err


# -- beam search -------------------------------------------------------------------------------


def sequence_log_prob(model, prompt, ids):
    """log P(ids | prompt) under ``model``, step by step."""
    total, context = 0.0, list(prompt)
    for i in ids:
        scores = next_scores(model, context)
        total += scores[i] - scores.max() - np.log(np.exp(scores - scores.max()).sum())
        context.append(i)
    return total


@pytest.mark.parametrize("cls", [SimpleRnnlm, Rnnlm, BetterRnnlm])
def test_beam_width_one_is_greedy_and_wider_beams_are_no_less_likely(cls):
    model = small_model(cls)
    for p in model.params:  # sharper distributions than the default init
        p[...] *= 20
    prompt = [1, 2]
    greedy = model.generate(prompt, 6, temperature=0)
    assert model.generate(prompt, 6, beam_width=1) == greedy
    wide = model.generate(prompt, 6, beam_width=4)
    assert len(wide) == 6
    assert sequence_log_prob(model, prompt, wide) >= sequence_log_prob(model, prompt, greedy) - 1e-9


def test_beam_search_is_the_same_for_stateful_and_non_stateful_models():
    stateful, plain = ReadmeRnnlm(12, 16, True), ReadmeRnnlm(12, 16, False)
    for prompt in ([3], [3, 7, 1, 4]):
        assert generate(plain, prompt, 8, beam_width=3) == generate(stateful, prompt, 8,
                                                                   beam_width=3)
    assert plain.layers[1].stateful is False


@pytest.mark.parametrize("kwargs, match", [
    (dict(beam_width=0), "beam_width must be an integer"),
    (dict(beam_width=2.0), "beam_width must be an integer"),
    (dict(beam_width=2, temperature=0.5), "takes no temperature"),
    (dict(beam_width=2, rng=1), "takes no temperature"),
])
def test_beam_width_refuses_nonsense(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(small_model(Rnnlm), [0], 3, **kwargs)


def test_script_beam_width(trained, capsys):
    script = load_script("generate_text")
    path = str(trained / "m.npz")
    assert script.main(["--model", path, "--start", "the dog", "--length", "8",
                        "--temperature", "0"]) == 0
    greedy = capsys.readouterr().out
    assert script.main(["--model", path, "--start", "the dog", "--length", "8",
                        "--beam-width", "1"]) == 0
    assert capsys.readouterr().out == greedy
    assert script.main(["--model", path, "--start", "the dog", "--length", "8",
                        "--beam-width", "5"]) == 0
    assert capsys.readouterr().out.startswith("the dog")
    with pytest.raises(SystemExit) as exc:
        script.main(["--model", path, "--beam-width", "3", "--seed", "1"])
    assert exc.value.code == 2 and "--beam-width" in capsys.readouterr().err


def test_script_says_greedy_sampling_has_no_use_for_top_k_or_seed(trained, capsys):
    """--temperature 0 takes the most likely token every time: --top-k and
    --seed change nothing, which a notice says (--beam-width refuses them)."""
    script = load_script("generate_text")
    path = str(trained / "m.npz")
    greedy = ["--model", path, "--start", "the dog", "--length", "8", "--temperature", "0"]
    assert script.main(greedy) == 0
    text, err = capsys.readouterr()
    assert "notice" not in err
    assert script.main([*greedy, "--top-k", "3", "--seed", "1"]) == 0
    out, err = capsys.readouterr()
    assert out == text
    assert err == ("notice: --temperature 0 takes the most likely token at every step: "
                   "--top-k and --seed change nothing\n")


def test_script_refuses_a_sequence_to_sequence_model(tmp_path, capsys):
    from models import Seq2seq

    Seq2seq(6, 3, 4).save_params(tmp_path / "s.npz", vocab=list("abcdef"))
    assert load_script("generate_text").main(["--model", str(tmp_path / "s.npz")]) == 2
    err = capsys.readouterr().err
    assert "holds the model Seq2seq, not a language model" in err and "Traceback" not in err


@pytest.mark.parametrize("cls", ["RnnlmGen", "BetterRnnlmGen"])
def test_script_reads_the_books_generating_models(cls, tmp_path, capsys):
    """A file saved from RnnlmGen or BetterRnnlmGen, whose generate has the
    book's arguments, samples and searches as any language model's does."""
    import models

    vocab = ["<eos>", "the", "cat", "sat", "mat"]
    model = getattr(models, cls)(len(vocab), 6, 6, seed=0)
    model.save_params(tmp_path / "g.npz", vocab=vocab)
    expected = (Rnnlm if cls == "RnnlmGen" else BetterRnnlm)(len(vocab), 6, 6)
    expected.set_named_params(model.named_params(), "the model")
    script = load_script("generate_text")
    for flags, kwargs in ((["--seed", "3"], {"rng": 3}),
                          (["--beam-width", "2"], {"beam_width": 2})):
        assert script.main(["--model", str(tmp_path / "g.npz"), "--start", "the", "--length", "6",
                            *flags]) == 0
        out = capsys.readouterr().out
        ids = generate(expected, [1], 6, **kwargs)
        words = " ".join(["the"] + [vocab[i] for i in ids]).replace(" <eos> ", "\n")
        assert out.split() == words.split()


# -- robustness of the script: refused up front, in one line -----------------------------------

TINY_VOCAB = ["<eos>", "a", "b", "c", "d"]


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.npz"
    SimpleRnnlm(len(TINY_VOCAB), 3, 4, seed=0).save_params(path, vocab=TINY_VOCAB)
    return path


def test_script_refuses_a_beam_too_wide_for_the_memory_before_searching(tiny_file, capsys,
                                                                        monkeypatch):
    script = load_script("generate_text")

    def no_search(*args, **kwargs):
        raise AssertionError("searched before the beam width was checked")

    monkeypatch.setattr(script, "generate", no_search)
    monkeypatch.setattr(script, "available_bytes", lambda: 2**20)
    assert script.main(["--model", str(tiny_file), "--length", "30",
                        "--beam-width", str(10**15)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --beam-width") and err.count("\n") == 1
    assert "needs about" in err and "only 1 MiB is available" in err
    fits = int(re.search(r"--beam-width (\d+) or less fits", err).group(1))
    assert script.beam_search_bytes(SimpleRnnlm(5, 3, 4), fits, 30)["total"] <= 2**20
    assert script.beam_search_bytes(SimpleRnnlm(5, 3, 4), fits + 1, 30)["total"] > 2**20
    # A --length whose history alone does not fit: the advice was a narrower beam,
    # which cannot help; it is a shorter text.
    assert script.main(["--model", str(tiny_file), "--length", str(10**8),
                        "--beam-width", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --beam-width 2 and --length 100000000 with a vocabulary")
    assert "or less fits" in err and "--beam-width 1 or less" not in err
    # (as --length takes it: no thousands commas)
    length = int(re.search(r"--beam-width 1 with --length (\d+) or less fits", err).group(1))
    assert script.beam_search_bytes(SimpleRnnlm(5, 3, 4), 1, length)["total"] <= 2**20
    assert script.beam_search_bytes(SimpleRnnlm(5, 3, 4), 1, length + 1)["total"] > 2**20


def test_script_beam_wider_than_every_prefix_is_the_exact_search(tiny_file, capsys):
    """V ** (length - 1) beams keep every prefix: more give the same text, without the memory."""
    script = load_script("generate_text")
    argv = ["--model", str(tiny_file), "--start", "a", "--length", "3"]
    assert script.main([*argv, "--beam-width", str(5 ** 2)]) == 0
    exact = capsys.readouterr().out
    assert script.main([*argv, "--beam-width", str(10**12)]) == 0
    assert capsys.readouterr().out == exact


def test_script_refuses_a_model_with_nan_weights(tiny_file, tmp_path, capsys):
    from common.serialization import load_npz, save_npz

    arrays, meta = load_npz(tiny_file)
    arrays["affine.b"][:] = np.nan
    save_npz(tmp_path / "nan.npz", arrays, meta)
    main = load_script("generate_text").main
    assert main(["--model", str(tmp_path / "nan.npz"), "--length", "5"]) == 2
    captured = capsys.readouterr()
    assert "affine.b hold NaN or infinite values" in captured.err and captured.out == ""


def test_script_unreadable_model_file_is_a_usage_error(tiny_file, capsys, monkeypatch):
    script = load_script("generate_text")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tiny_file))

    monkeypatch.setattr(script, "load_npz_meta", refuse)
    monkeypatch.setattr(script, "_load_model", refuse)
    assert script.main(["--model", str(tiny_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Permission denied" in err


def test_a_beam_search_that_runs_out_of_memory_after_the_check_is_an_error_line(tiny_file,
                                                                                capsys,
                                                                                monkeypatch):
    # (Threads and BLAS take memory after the check: a MemoryError then was a traceback.)
    script = load_script("generate_text")

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(script, "generate", out_of_memory)
    # (2 ids: a beam wider than the 5 ids cannot matter, and is searched as 5,
    # but the message names the width given.)
    assert script.main(["--model", str(tiny_file), "--length", "2", "--beam-width", "300"]) == 1
    assert capsys.readouterr().err.endswith("error: not enough memory for the beam search with "
                                            "--beam-width 300: give a smaller --beam-width\n")
