"""Character-level language models: the classic "vector" toy, and training and
sampling from the command line at char level."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.optimizer import Adam
from common.serialization import load_npz
from common.trainer import RnnlmTrainer
from datasets import text
from models import SimpleRnnlm

from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "scripts" / "train_rnnlm.py"
GENERATE = ROOT / "scripts" / "generate_text.py"


def run(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


# -- the "vector" toy -------------------------------------------------------------------------


def train_vector(path):
    """SimpleRnnlm on "vector\\n" x 50, read by datasets.text at char level."""
    corpus, char_to_id, id_to_char = text.load_data(path, level="char")
    model = SimpleRnnlm(len(char_to_id), wordvec_size=8, hidden_size=16, seed=0)
    trainer = RnnlmTrainer(model, Adam(lr=0.05))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=20, batch_size=5, time_size=7, max_grad=5.0,
                verbose=False)
    return model, trainer, char_to_id, id_to_char


@pytest.fixture(scope="module")
def vector(tmp_path_factory):
    path = tmp_path_factory.mktemp("vector") / "vector.txt"
    path.write_text("vector\n" * 50, encoding="utf-8")
    return path, train_vector(path)


def test_vector_vocabulary(vector):
    _, (model, _, char_to_id, _) = vector
    assert list(char_to_id) == ["v", "e", "c", "t", "o", "r", "\n"]
    assert model.vocab_size == 7


def test_vector_is_sampled_ten_times_out_of_ten(vector):
    _, (model, trainer, c2i, i2c) = vector
    assert trainer.history["train_ppl"][-1] < 1.01
    samples = []
    for seed in range(10):
        ids = model.generate([c2i["v"]], 20, temperature=1.0, stop_id=c2i["\n"], rng=seed)
        samples.append("v" + "".join(i2c[i] for i in ids))
    assert samples == ["vector\n"] * 10


def test_vector_is_confident_at_every_step(vector):
    """Not luck: from 'v' every next character has probability > 0.99."""
    _, (model, _, c2i, _) = vector
    model.eval()
    model.reset_state()
    word = "vector\n"
    for current, following in zip(word, word[1:], strict=False):
        scores = model.predict(np.array([[c2i[current]]]))[0, -1].astype(np.float64)
        p = np.exp(scores - scores.max())
        p /= p.sum()
        assert p[c2i[following]] > 0.99, (current, following, p)
    model.train()


def test_vector_greedy_repeats_the_word(vector):
    _, (model, _, c2i, i2c) = vector
    ids = model.generate([c2i["v"]], 20, temperature=0)
    assert "v" + "".join(i2c[i] for i in ids) == ("vector\n" * 3)[:21]


def test_vector_training_is_deterministic(vector):
    path, (model, trainer, _, _) = vector
    again, trainer_again, _, _ = train_vector(path)
    assert trainer_again.history == trainer.history
    for a, b in zip(model.params, again.params, strict=True):
        assert np.array_equal(a, b)


# -- the command line at char level -------------------------------------------------------------


@pytest.fixture(scope="module")
def char_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("charcli")
    (folder / "vector.txt").write_text("vector\n" * 50, encoding="utf-8")
    done = run(TRAIN, "--corpus", "text", "--text-file", "vector.txt", "--level", "char",
               "--corpus-size", 0, "--model", "simple", "--wordvec-size", 8, "--hidden-size", 16,
               "--optimizer", "adam", "--lr", 0.05, "--max-grad", 5, "--epochs", 20,
               "--batch-size", 5, "--time-size", 7, "--save", "chars.npz", "--plot", "ppl.png",
               "--quiet", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


def test_train_script_records_the_char_level(char_model):
    arrays, meta = load_npz(char_model / "chars.npz")
    assert meta["level"] == "char"
    assert meta["model"] == "SimpleRnnlm"
    assert meta["vocab"] == ["v", "e", "c", "t", "o", "r", "\n"]
    assert arrays["embed.W"].shape == (7, 8)
    assert (char_model / "ppl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_script_stops_at_newline(char_model):
    done = run(GENERATE, "--model", "chars.npz", "--start", "v", "--stop", "\\n", "--seed", 3,
               "--length", 50, cwd=char_model)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "vector\n"


def test_generate_script_char_prompt_and_no_separator(char_model, capsys):
    script = load_script("generate_text")
    path = str(char_model / "chars.npz")
    assert script.main(["--model", path, "--start", "ve", "--length", "12",
                        "--temperature", "0"]) == 0
    assert capsys.readouterr().out == "vector\nvector\n"
    # the default prompt at char level is the start of a line (not printed)
    assert script.main(["--model", path, "--length", "30", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "vector\nvector\n" in out and set(out) <= set("vector\n")


def test_generate_script_unknown_character(char_model, capsys):
    script = load_script("generate_text")
    assert script.main(["--model", str(char_model / "chars.npz"), "--start", "vex"]) == 2
    err = capsys.readouterr().err
    assert "character 'x' is not in the model's vocabulary" in err
    assert "'v'" in err  # known characters are listed


# -- level detection and joining ----------------------------------------------------------------


def saved(tmp_path, vocab, **meta):
    model = SimpleRnnlm(len(vocab), 4, 5, seed=1)
    path = tmp_path / "m.npz"
    model.save_params(path, vocab=vocab, **meta)
    return str(path)


@pytest.mark.parametrize(
    "meta, level",
    [
        ({"level": "char"}, "char"),
        ({"level": "word"}, "word"),
        ({}, "char"),  # no level saved: single characters without <eos> mean char level
    ],
)
def test_level_from_metadata(tmp_path, meta, level):
    script = load_script("generate_text")
    _, _, found = script.load_model(saved(tmp_path, ["a", "b", " ", "é", "\n"], **meta))
    assert found == level


def test_word_vocabulary_without_level_is_word_level(tmp_path):
    script = load_script("generate_text")
    _, _, level = script.load_model(saved(tmp_path, ["<eos>", "a", "b"]))
    assert level == "word"


def test_char_output_is_joined_without_separators(tmp_path, capsys):
    script = load_script("generate_text")
    vocab = ["é", "→", " ", "x"]
    path = saved(tmp_path, vocab, level="char")
    assert script.main(["--model", path, "--start", "é→", "--length", "30", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("é→") and out.endswith("\n")
    body = out[:-1]
    assert len(body) == 32 and set(body) <= set(vocab)


def test_word_output_is_joined_with_spaces(tmp_path, capsys):
    script = load_script("generate_text")
    vocab = ["a", "b", "c"]
    path = saved(tmp_path, vocab, level="word")
    assert script.main(["--model", path, "--start", "a b", "--length", "5", "--seed", "0"]) == 0
    words = capsys.readouterr().out.split(" ")
    assert len(words) == 7 and words[:2] == ["a", "b"]


def test_a_char_level_runs_plot_title_says_characters(tmp_path, monkeypatch):
    # (Its perplexity is per character; the title did not say so.)
    from common.trainer import RnnlmTrainer

    from script_loader import load_script

    titles = []
    monkeypatch.setattr(RnnlmTrainer, "plot", lambda self, **kw: titles.append(self.title))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vector.txt").write_text("vector\n" * 50, encoding="utf-8")
    argv = ["--corpus", "text", "--text-file", "vector.txt", "--model", "simple",
            "--wordvec-size", "8", "--hidden-size", "8", "--epochs", "1", "--batch-size", "5",
            "--time-size", "7", "--plot", "ppl.png", "--quiet"]
    train = load_script("train_rnnlm")
    assert train.main([*argv, "--level", "char"]) == 0
    assert train.main([*argv, "--level", "word"]) == 0
    assert " on vector.txt characters, batch 5" in titles[0]
    assert " on vector.txt, batch 5" in titles[1]
