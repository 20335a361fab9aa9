"""scripts/inspect_model.py and scripts/gradient_through_time.py on small saved models."""

import math
import os
import re
import sys
import warnings

import numpy as np
import pytest

from common.inspection import encode_text, load_model, token_surprisal
from models import GruRnnlm, Rnnlm, SimpleRnnlm

from script_loader import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


script = load_script


inspect_model = script("inspect_model")

TEXT = 'def f(x):\n    return "a(b)" + x  # note\n' * 4
CHARS = sorted(set(TEXT))


@pytest.fixture
def char_model(tmp_path):
    path = tmp_path / "char.npz"
    Rnnlm(len(CHARS), 8, 6, seed=0).save_params(path, vocab=CHARS, level="char")
    return path


@pytest.fixture
def word_model(tmp_path):
    vocab = ["<eos>", "the", "cat", "sat", "<unk>"]
    path = tmp_path / "word.npz"
    SimpleRnnlm(len(vocab), 4, 4, seed=0).save_params(path, vocab=vocab)  # level guessed
    return path


def test_surprisal_table(char_model, capsys):
    assert inspect_model.main(["surprisal", "--model", str(char_model), "--text", TEXT]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "first token is context" in lines[0]
    assert lines[1] == "position\ttoken\tlog_prob\tbits"
    rows = [line.split("\t") for line in lines[2:-1]]
    assert len(rows) == len(TEXT) and rows[0] == ["0", '"d"', "", ""]
    assert rows[9][1] == '"\\n"'  # the newline, written so the table stays one row per token
    model, vocab, level = load_model(char_model)
    s = token_surprisal(model, encode_text(TEXT, vocab, level)[1])
    logp = np.array([float(r[2]) for r in rows[1:]])
    np.testing.assert_allclose(logp, s.log_prob, atol=5e-5)
    np.testing.assert_allclose([float(r[3]) for r in rows[1:]], -logp / math.log(2), atol=2e-3)
    assert lines[-1].endswith(f"perplexity {s.perplexity:.3f}")
    assert f"# {len(TEXT) - 1} scored tokens" in lines[-1]


def test_surprisal_word_level_maps_unknown_words_to_unk(word_model, capsys, tmp_path):
    page = tmp_path / "s.html"
    assert inspect_model.main(["surprisal", "--model", str(word_model), "--text",
                               "the dog sat\nthe cat", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert '\t"<unk>"\t' in out and '\t"<eos>"\t' in out
    assert "# 5 scored tokens" in out
    html = page.read_text("utf-8")
    # (Every "<" of the page's data is written \u003c: no token can end its script.)
    assert '"tokens": ["the", "\\u003cunk>", "sat", "\\u003ceos>", "the", "cat"]' in html
    assert '"guesses": [[["' in html  # the top guesses at every position


def test_units_writes_the_page_and_the_heat_map(char_model, tmp_path, capsys):
    page, png = tmp_path / "u.html", tmp_path / "u.png"
    code = inspect_model.main(["units", "--model", str(char_model), "--text", TEXT,
                               "--units", "h0:5,c0:0", "--html", str(page), "--png", str(png),
                               "--png-start", "3", "--png-length", "12"])
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "unit\tproperty\tr"
    found = [line.split("\t") for line in out[2:] if line.count("\t") == 2]
    assert {prop for _, prop, _ in found} >= {"inside double quotes", "inside brackets",
                                              "position in line", "inside a # comment"}
    html = page.read_text("utf-8")
    for unit, prop, r in found:
        assert f"{unit}: {prop} (r = {r})" in html
    assert '"name": "h0:5"' in html and "surprisal (bits)" in html
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["surprisal", "--model", "missing.npz", "--text", "ab"], "model file not found"),
    (["surprisal", "--text", "\u00e9t\u00e9"], "not in the model's vocabulary"),
    (["surprisal", "--text", "d"], "at least 2 are needed"),
    (["units", "--text", "def f", "--units", "c0:99"], "no unit 'c0:99'"),
])
def test_usage_errors_exit_2_with_a_message(argv, message, char_model, capsys):
    if "--model" not in argv:
        argv = [argv[0], "--model", str(char_model), *argv[1:]]
    assert inspect_model.main(argv) == 2
    assert message in capsys.readouterr().err


def test_gradient_through_time_script_draws_three_lines(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 300, encoding="utf-8")
    png = tmp_path / "g.png"
    gtt = script("gradient_through_time")
    assert gtt.main(["--text-file", str(text), "--iters", "3", "--hidden-size", "8",
                     "--wordvec-size", "4", "--batch-size", "4", "--time-size", "6",
                     "--eval-length", "12", "--eval-batch", "3", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    for label in ("tanh RNN", "LSTM", "GRU"):
        assert label in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit) as exc:  # a plot it could not write: refused before training
        gtt.main(["--text-file", str(text), "--plot", str(text / "g.png")])
    assert exc.value.code == 2 and "is a file, not a folder" in capsys.readouterr().err


GTT_SMALL = ["--iters", "3", "--hidden-size", "8", "--wordvec-size", "4", "--batch-size", "4",
             "--time-size", "6", "--eval-length", "12", "--eval-batch", "3"]


def test_gradient_through_time_script_draws_the_finished_models_on_ctrl_c(tmp_path, capsys,
                                                                         monkeypatch):
    # Ctrl-C in the LSTM's training threw away the tanh RNN's finished curve (with the
    # defaults, minutes of training).
    text, png = tmp_path / "t.txt", tmp_path / "g.png"
    text.write_text("the cat sat on the mat. " * 300, encoding="utf-8")
    gtt = script("gradient_through_time")
    trained, train = [], gtt.train

    def train_until_the_second(*args):
        if trained:
            raise KeyboardInterrupt
        trained.append(1)
        return train(*args)

    monkeypatch.setattr(gtt, "train", train_until_the_second)
    assert gtt.main(["--text-file", str(text), *GTT_SMALL, "--plot", str(png)]) == 130
    out, err = capsys.readouterr()
    assert "interrupted" in err and "tanh RNN" in out and "GRU" not in out
    assert f"plot: {png} (interrupted: 1 of 3 models)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A plot already there (a whole run's, say) is not replaced by one of some models.
    whole = png.read_bytes()
    trained.clear()
    assert gtt.main(["--text-file", str(text), *GTT_SMALL, "--plot", str(png)]) == 130
    assert (f"plot: {tmp_path / 'g-partial.png'} (interrupted: 1 of 3 models)"
            in capsys.readouterr().out)
    assert png.read_bytes() == whole and (tmp_path / "g-partial.png").is_file()


def test_gradient_through_time_script_stops_a_diverged_training(tmp_path, capsys):
    # Losses of 1e31 nats were printed as results, with NumPy's overflow warning, rc 0.
    text, png = tmp_path / "t.txt", tmp_path / "g.png"
    text.write_text("the cat sat on the mat. " * 300, encoding="utf-8")
    gtt = script("gradient_through_time")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gtt.main(["--text-file", str(text), *GTT_SMALL, "--lr", "1e30", "--max-grad",
                         "1e30", "--plot", str(png)]) == 1
        err = capsys.readouterr().err
        assert re.search(r"error: tanh RNN \(SimpleRnnlm\): its loss is \S+ nats at "
                         r"iteration \d, above \S+ nats \(max\(5 x log V, 10\)\): it "
                         r"diverged; lower --lr \(now 1e\+30\) or --max-grad \(now 1e\+30\)",
                         err), err
        assert not png.exists()  # no model finished: nothing to draw
        # Blown up by the last update, measured only on the held-out batch after it.
        small = [*GTT_SMALL[2:], "--iters", "1"]
        assert gtt.main(["--text-file", str(text), *small, "--lr", "1e30", "--max-grad",
                         "1e30", "--plot", str(png)]) == 1
        assert re.search(r"error: tanh RNN \(SimpleRnnlm\): its (held-out loss is \S+ nats "
                         r"after training|gradients through time overflow)",
                         capsys.readouterr().err)


def test_gradient_through_time_script_checks_the_window_lengths_before_training(tmp_path,
                                                                                capsys):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    gtt = script("gradient_through_time")
    assert gtt.main(["--text-file", str(text), "--eval-length", "500", "--plot", "none"]) == 2
    out, err = capsys.readouterr()
    assert "error: the held-out part of the text has 48 characters; --eval-length 500" in err
    assert "iterations" not in out  # nothing started
    assert gtt.main(["--text-file", str(text), "--time-size", "5000", "--plot", "none"]) == 2
    assert "give a smaller --time-size" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--text-file", "."], "is a folder; expected a text file"),
    (["--text-file", "no/such.txt"], "text file not found"),
])
def test_gradient_through_time_script_says_what_is_wrong_with_the_text(argv, message, capsys):
    assert script("gradient_through_time").main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--plot", "curves.txt"], "cannot tell the plot format from 'curves.txt'"),
    (["--text-file", ""], "--text-file is empty; name a text file"),
    (["--data-dir", ""], "--data-dir is empty; name the PTB folder"),
    (["--lr", "nan"], "must be a finite number > 0"),
    (["--max-grad", "0"], "must be a finite number > 0"),
    (["--seed", "-1"], "must be at least 0"),
    (["--hidden-size", "0"], "must be at least 1"),
    (["--text-file", "t.txt", "--data-dir", "ptb"], "it has no use with --text-file"),
])
def test_gradient_through_time_script_refuses_numbers_out_of_range(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        script("gradient_through_time").parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_gradient_through_time_script_refuses_a_run_that_cannot_fit_in_memory(tmp_path,
                                                                             capsys):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    assert script("gradient_through_time").main(
        ["--text-file", str(text), "--eval-length", "20", "--time-size", "10",
         "--hidden-size", "100000000", "--plot", "none"]) == 2
    out, err = capsys.readouterr()
    assert "this run needs about" in err and "use a smaller --hidden-size" in err
    assert "iterations" not in out  # nothing started


def test_units_says_which_flags_it_has_no_output_for(char_model, tmp_path, capsys):
    """--units shows its units on the page or the heat map, --png-start and
    --png-length place the heat map: without those outputs a notice says so."""
    run = ["units", "--model", str(char_model), "--text", TEXT]
    assert inspect_model.main(run) == 0
    table, err = capsys.readouterr()
    assert "notice" not in err
    assert inspect_model.main([*run, "--units", "h0:1", "--png-start", "5"]) == 0
    out, err = capsys.readouterr()
    assert out == table
    assert err == ("notice: --units shows its units on the --html page or the --png heat map; "
                   "without either it changes nothing\n"
                   "notice: --png-start and --png-length place the --png heat map; without "
                   "--png they change nothing\n")
    assert inspect_model.main([*run, "--units", "h0:1", "--html", str(tmp_path / "u.html"),
                               "--png-length", "9"]) == 0
    assert capsys.readouterr().err == ("notice: --png-start and --png-length place the --png "
                                       "heat map; without --png they change nothing\n")


@pytest.mark.parametrize("name", ["page.pkl", "page.pickle"])
def test_no_page_is_written_with_a_pickles_name(name, char_model, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        inspect_model.main(["surprisal", "--model", str(char_model), "--text", TEXT,
                            "--html", str(tmp_path / name)])
    assert exc.value.code == 2
    assert "rnnlab never writes (or reads) pickles" in capsys.readouterr().err
    assert not (tmp_path / name).exists()


def test_no_page_is_written_over_a_model_or_checkpoint(char_model, tmp_path, capsys):
    # An .npz name was taken, and a copy of a model or a checkpoint replaced by HTML.
    other = tmp_path / "copy.npz"
    other.write_bytes(char_model.read_bytes())
    with pytest.raises(SystemExit) as exc:
        inspect_model.main(["surprisal", "--model", str(char_model), "--text", TEXT,
                            "--html", str(other)])
    assert exc.value.code == 2
    assert (f"--html {other}: .npz names rnnlab's models and checkpoints, which a page written "
            f"there would replace; give a name ending in .html") in capsys.readouterr().err
    assert other.read_bytes() == char_model.read_bytes()


def test_attentions_default_picture_is_not_train_seq2seqs():
    # Both wrote attention.png: one question's map replaced the training's maps.
    args = inspect_model.parse_args(["attention", "--model", "m.npz", "--input", "1+1"])
    assert args.png == "attention_one.png"


GTT_TINY = ["--iters", "2", "--hidden-size", "8", "--wordvec-size", "4", "--batch-size", "2",
            "--time-size", "5", "--eval-length", "5", "--eval-batch", "2"]


@pytest.mark.parametrize("stdout", ["reader gone", "/dev/full"])
def test_gradient_through_time_script_draws_its_plot_when_stdout_closes(stdout, tmp_path):
    """``| head -1`` or a full disk under the table: the run goes on and draws
    its plot (a BrokenPipeError traceback after the first model lost it)."""
    import subprocess
    import sys

    if stdout == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 100, encoding="utf-8")
    args = [sys.executable, os.path.join(ROOT, "scripts", "gradient_through_time.py"),
            "--text-file", str(text), *GTT_TINY, "--plot", str(tmp_path / "g.png")]
    env = dict(os.environ, MPLBACKEND="Agg")
    if stdout == "/dev/full":
        with open("/dev/full", "w") as full:
            done = subprocess.run(args, env=env, stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=120)
        returncode, err = done.returncode, done.stderr
    else:
        run = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        run.stdout.close()  # nobody reads
        err = run.communicate(timeout=120)[1]
        returncode = run.returncode
    assert returncode == 0 and "Traceback" not in err, err
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_gradient_through_time_script_says_a_text_too_large_to_read(tmp_path, capsys,
                                                                    monkeypatch):
    gtt = script("gradient_through_time")
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 100, encoding="utf-8")

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(gtt.text, "load_data", no_memory)
    assert gtt.main(["--text-file", str(text), *GTT_TINY, "--plot", "none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: not enough memory to read --text-file {text} (0 MiB; "
                          f"reading takes up to 40 times that)"), err


def test_load_model_refuses_a_file_without_vocabulary(tmp_path):
    path = tmp_path / "m.npz"
    GruRnnlm(5, 3, 3, seed=0).save_params(path)
    with pytest.raises(ValueError, match="no vocabulary"):
        load_model(path)


# -- attention (the sequence-to-sequence models) ------------------------------------------

SEQ_VOCAB = list("0123456789+_ ")


def test_attention_heat_map_of_one_question(tmp_path, capsys):
    from models import AttentionSeq2seq

    path, png = tmp_path / "att.npz", tmp_path / "att.png"
    AttentionSeq2seq(len(SEQ_VOCAB), 6, 8, seed=0).save_params(path, vocab=SEQ_VOCAB,
                                                              task="custom", reverse=True)
    assert inspect_model.main(["attention", "--model", str(path), "--input", "12+3",
                               "--width", "6", "--answer-length", "4", "--png", str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("'12+3  ' -> ") and "reversed" in out[0]
    rows = [line for line in out if line.startswith("  answer ")]
    assert len(rows) == 4  # one per answer character after the start '_'
    for line in rows:  # the question character it attends to most, with its weight
        weight = float(line.rsplit("(", 1)[1].rstrip(")"))
        assert 1 / 6 <= weight <= 1  # the largest of 6 weights that sum to 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attention_says_a_short_question_cannot_be_padded_without_a_space(tmp_path, capsys):
    """A model of fixed-width questions may have no space: a shorter --input
    was blamed for a space it never held."""
    from models import AttentionSeq2seq

    vocab = list("abc_")
    path = tmp_path / "fixed.npz"
    AttentionSeq2seq(len(vocab), 6, 8, seed=0).save_params(path, vocab=vocab, task="custom")
    assert inspect_model.main(["attention", "--model", str(path), "--input", "abc",
                               "--width", "4", "--answer-length", "2",
                               "--png", str(tmp_path / "a.png")]) == 2
    assert capsys.readouterr().err == (
        "error: --input 'abc' has 3 characters, and the model's questions 4 with no space to "
        "pad with (its vocabulary has none): give 4 characters\n")
    assert inspect_model.main(["attention", "--model", str(path), "--input", "abca",
                               "--width", "4", "--answer-length", "2",
                               "--png", str(tmp_path / "a.png")]) == 0


def test_attention_needs_an_attention_model(tmp_path, capsys):
    from models import Seq2seq

    path = tmp_path / "plain.npz"
    Seq2seq(len(SEQ_VOCAB), 6, 8, seed=0).save_params(path, vocab=SEQ_VOCAB, task="custom")
    assert inspect_model.main(["attention", "--model", str(path), "--input", "1+2",
                               "--width", "5", "--answer-length", "3",
                               "--png", str(tmp_path / "a.png")]) == 2
    assert "has no attention" in capsys.readouterr().err


def test_attention_weights_are_the_decoders(tmp_path, capsys, monkeypatch):
    """The heat map gets the decoder's weights, columns in the order the question is written."""
    from models import AttentionSeq2seq

    path = tmp_path / "att.npz"
    model = AttentionSeq2seq(len(SEQ_VOCAB), 6, 8, seed=1)
    model.save_params(path, vocab=SEQ_VOCAB, task="custom", reverse=True)
    drawn = {}

    def fake_plot(weights, in_labels, out_labels, path=None, ax=None, title=None):
        drawn.update(weights=weights, in_labels=in_labels, out_labels=out_labels)

    monkeypatch.setattr("common.attention_map.plot_attention", fake_plot)
    assert inspect_model.main(["attention", "--model", str(path), "--input", "7+45",
                               "--width", "5", "--answer-length", "3"]) == 0
    xs = np.array([[SEQ_VOCAB.index(c) for c in "7+45 "[::-1]]])
    answer = model.generate(xs, SEQ_VOCAB.index("_"), 3)[0]
    want = np.stack([w[0] for w in model.decoder.attention.attention_weights])[:, ::-1]
    np.testing.assert_allclose(drawn["weights"], want)
    np.testing.assert_allclose(drawn["weights"].sum(axis=1), 1, rtol=1e-5)
    assert drawn["in_labels"] == list("7+45 ")
    assert drawn["out_labels"] == [SEQ_VOCAB[i] for i in answer]


def test_attention_widths_come_from_the_task(tmp_path, capsys):
    from datasets import sequence
    from models import AttentionSeq2seq

    (x, t), _ = sequence.load_data("addition")
    _, id_to_char = sequence.get_vocab()
    vocab = [id_to_char[i] for i in range(len(id_to_char))]
    path = tmp_path / "add.npz"
    AttentionSeq2seq(len(vocab), 6, 8, seed=0).save_params(path, vocab=vocab, task="addition")
    assert inspect_model.main(["attention", "--model", str(path), "--input", "16+75",
                               "--png", str(tmp_path / "a.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(repr("16+75".ljust(x.shape[1])) + " -> ")
    assert sum(line.startswith("  answer ") for line in out) == t.shape[1] - 1


def edited(path, tmp_path, **meta):
    """A copy of the model file ``path`` with its metadata changed as a hand
    edit or a damaged file would (``None`` drops an entry)."""
    from common.serialization import load_npz, save_npz

    arrays, header = load_npz(path)
    header.update(meta)
    copy = tmp_path / f"edited-{path.name}"
    save_npz(copy, arrays, {k: v for k, v in header.items() if v is not None})
    return copy


def test_attention_widths_a_file_does_not_record_are_asked_for(tmp_path, capsys):
    """A model saved from Python (save_params with its vocabulary, no task)
    was read as the addition task's: '9/27/94' padded to 7 and answered in 4
    characters; widths out of range in a damaged file gave tracebacks."""
    from datasets import sequence
    from models import AttentionSeq2seq

    sequence.load_data("addition")
    _, id_to_char = sequence.get_vocab()
    vocab = [id_to_char[i] for i in range(len(id_to_char))]
    path, png = tmp_path / "py.npz", str(tmp_path / "a.png")
    AttentionSeq2seq(len(vocab), 6, 8, seed=0).save_params(path, vocab=vocab)
    assert inspect_model.main(["attention", "--model", str(path), "--input", "16+75",
                               "--png", png]) == 2
    assert capsys.readouterr().err == (
        f"error: {path} does not record the widths of the pairs it was trained on, nor its "
        f"task (a model saved from Python): give --width and --answer-length\n")
    assert inspect_model.main(["attention", "--model", str(path), "--input", "16+75",
                               "--width", "9", "--answer-length", "3", "--png", png]) == 0
    assert capsys.readouterr().out.startswith(repr("16+75    ") + " -> ")
    # Widths below a question's one character, or an answer's start and one
    # character: not recorded (the task's, here), not a traceback.
    for widths in ({"question_width": 0, "answer_width": 5}, {"question_width": 7,
                                                                "answer_width": 1}):
        damaged = edited(path, tmp_path, task="addition", **widths)
        assert inspect_model.main(["attention", "--model", str(damaged), "--input", "16+75",
                                   "--png", png]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(repr("16+75  ") + " -> ")
        assert sum(line.startswith("  answer ") for line in out) == 4


@pytest.mark.parametrize("vocab, message", [
    (SEQ_VOCAB[:10], r"the vocabulary has 10 characters but the model has 13"),
    (["1", *SEQ_VOCAB[1:]], r"is damaged: its vocabulary lists '1' at the ids 0 and 1"),
], ids=["shorter-than-the-model", "a-character-twice"])
def test_attention_refuses_a_vocabulary_that_cannot_read_the_question(vocab, message,
                                                                      tmp_path, capsys):
    """An IndexError traceback from a short vocabulary; and with one character at
    two ids, the question read as ids the model learned as other characters."""
    from models import AttentionSeq2seq

    path = tmp_path / "att.npz"
    AttentionSeq2seq(len(SEQ_VOCAB), 6, 8, seed=0).save_params(path, vocab=SEQ_VOCAB,
                                                              task="custom")
    assert inspect_model.main(["attention", "--model", str(edited(path, tmp_path, vocab=vocab)),
                               "--input", "12+3", "--width", "6", "--answer-length", "4",
                               "--png", str(tmp_path / "a.png")]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_vocabulary_that_lists_a_token_twice_is_refused(tmp_path, capsys):
    """'h' at two ids: the prompt was fed as the later id, which the model
    learned as 'e', and the text came out silently wrong."""
    vocab = list(CHARS)
    vocab[1] = vocab[2]
    path = tmp_path / "twice.npz"
    Rnnlm(len(CHARS), 8, 6, seed=0).save_params(path, vocab=vocab, level="char")
    message = f"{path} is damaged: its vocabulary lists {vocab[2]!r} at the ids 1 and 2"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_model(path)
    assert inspect_model.main(["surprisal", "--model", str(path), "--text", TEXT]) == 2
    assert message in capsys.readouterr().err
    assert script("generate_text").main(["--model", str(path), "--length", "3"]) == 2
    assert message in capsys.readouterr().err


def test_a_long_word_does_not_push_the_heat_maps_labels_out(tmp_path, capsys, monkeypatch):
    """A token of 5,000 characters (a line without spaces) clipped every label,
    with a raw 'Tight layout not applied' warning."""
    vocab = ["<eos>", "the", "cat", "x" * 5000, "<unk>"]
    path = tmp_path / "word.npz"
    SimpleRnnlm(len(vocab), 4, 160, seed=0).save_params(path, vocab=vocab)
    drawn = {}
    real = inspect_model.save_figure

    def keep_labels(fig, target, **kwargs):
        ax = fig.axes[0]
        drawn.update(x=[t.get_text() for t in ax.get_xticklabels()],
                     y=[t.get_text() for t in ax.get_yticklabels()])
        real(fig, target, **kwargs)

    monkeypatch.setattr(inspect_model, "save_figure", keep_labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inspect_model.main(["units", "--model", str(path), "--text", "the cat " +
                                   "x" * 5000, "--units", "h0:0,h0:1",
                                   "--png", str(tmp_path / "u.png")]) == 0
    assert drawn["x"][:2] == ["the", "cat"]
    assert drawn["x"][2] == "x" * (inspect_model.MAX_LABEL - 1) + "\u2026"
    # A unit's label is whole, three-digit units too: 'h0:123: ... (r = +0.123)'.
    found = [label for label in drawn["y"] if "(r = " in label]
    assert all(label.endswith(")") for label in found)
    assert any(len(label) > inspect_model.MAX_LABEL for label in found)


@pytest.mark.parametrize("flag", ["--png", "--html"])
def test_an_unwritable_output_is_refused_before_any_work(flag, char_model, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    argv = ["units", "--model", str(char_model), "--text", "def f",
            flag, str(tmp_path / "a_file" / "out")]
    with pytest.raises(SystemExit) as exc:
        inspect_model.main(argv)
    assert exc.value.code == 2
    assert "is a file, not a folder" in capsys.readouterr().err


# -- robustness: bad files and arguments are refused up front, in one line ------------------


@pytest.mark.parametrize("command", ["units", "surprisal"])
@pytest.mark.parametrize("cls, advice", [
    ("Seq2seq", "attention reads only those with attention"),
    ("AttentionSeq2seq", "inspect_model.py attention draws its attention weights"),
])
def test_units_and_surprisal_refuse_a_sequence_to_sequence_model(command, cls, advice,
                                                                 tmp_path, capsys):
    import models

    path = tmp_path / "s2s.npz"
    getattr(models, cls)(len(SEQ_VOCAB), 4, 4, seed=0).save_params(path, vocab=SEQ_VOCAB)
    assert inspect_model.main([command, "--model", str(path), "--text", "1+2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert f"holds {cls}, a sequence-to-sequence model, not a language model" in err
    assert advice in err


def test_attention_refuses_a_language_model_and_names_the_subcommands(char_model, capsys):
    assert inspect_model.main(["attention", "--model", str(char_model), "--input", "1+2"]) == 2
    err = capsys.readouterr().err
    assert "holds the language model Rnnlm" in err and "units or surprisal" in err


@pytest.mark.parametrize("argv", [
    ["units", "--model", "missing.npz", "--text", "def f", "--png", "map.xyz"],
    ["units", "--model", "missing.npz", "--text", "def f", "--png", "map"],
    ["attention", "--model", "missing.npz", "--input", "1+2", "--png", "att.txt"],
])
def test_a_png_without_a_plot_suffix_is_refused_before_the_model_is_read(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        inspect_model.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--png: cannot tell the plot format" in err
    assert ".png" in err and "not found" not in err


@pytest.mark.parametrize("flags, message", [
    (["--units", "h0:999"], "--units: no unit 'h0:999'"),
    (["--units", "h-1:0"], "no unit 'h-1:0'"),
    (["--units", "h0:\u00b2"], "no unit 'h0:\u00b2'"),
    (["--png", "u.png", "--png-start", "500"], "--png-start 500 is past the text's 5 tokens"),
])
def test_units_and_png_start_are_checked_before_the_recording(flags, message, char_model,
                                                              tmp_path, capsys, monkeypatch):
    def no_recording(*args, **kwargs):
        raise AssertionError("the states were recorded before the arguments were checked")

    monkeypatch.setattr(inspect_model, "record_states", no_recording)
    monkeypatch.chdir(tmp_path)
    assert inspect_model.main(["units", "--model", str(char_model), "--text", "def f",
                               *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "u.png").exists()


@pytest.mark.parametrize("command", ["units", "surprisal"])
def test_a_model_with_nan_weights_is_refused(command, char_model, tmp_path, capsys):
    from common.serialization import load_npz, save_npz

    arrays, meta = load_npz(char_model)
    arrays["lstm.Wh"] = np.full_like(arrays["lstm.Wh"], np.nan)
    save_npz(tmp_path / "nan.npz", arrays, meta)
    assert inspect_model.main([command, "--model", str(tmp_path / "nan.npz"),
                               "--text", TEXT]) == 2
    captured = capsys.readouterr()
    assert "lstm.Wh hold NaN or infinite values" in captured.err and "nan" not in captured.out


def test_a_model_whose_scores_overflow_exits_1_without_printing_numbers(char_model, tmp_path,
                                                                        capsys):
    from common.serialization import load_npz, save_npz

    arrays, meta = load_npz(char_model)
    save_npz(tmp_path / "big.npz", {k: a * np.float32(1e30) for k, a in arrays.items()}, meta)
    with np.errstate(over="ignore", invalid="ignore"):
        code = inspect_model.main(["surprisal", "--model", str(tmp_path / "big.npz"),
                                   "--text", TEXT])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.startswith("error: the model") and "Traceback" not in captured.err


def test_a_folder_given_as_the_text_file_is_a_usage_error(char_model, tmp_path, capsys):
    assert inspect_model.main(["surprisal", "--model", str(char_model),
                               "--text-file", str(tmp_path)]) == 2
    assert "is a folder; give a text file" in capsys.readouterr().err


def test_a_text_file_is_read_as_training_reads_it(tmp_path, capsys):
    """Windows line ends are kept (the model learned "\\r") and a byte-order
    mark is dropped: the file's figures are those of its text given whole."""
    from datasets import text

    text_with_cr = TEXT.replace("\n", "\r\n")
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text_with_cr.encode("utf-8"))
    assert text.read_text(path) == text_with_cr
    chars = sorted(set(text_with_cr))
    model = Rnnlm(len(chars), 8, 8, seed=0)
    model.save_params(tmp_path / "crlf.npz", vocab=chars, level="char")
    tables = []
    for source in (["--text-file", str(path)], ["--text", text_with_cr]):
        assert inspect_model.main(["surprisal", "--model", str(tmp_path / "crlf.npz"),
                                   *source]) == 0
        tables.append(capsys.readouterr().out)
    assert tables[0] == tables[1] and f"# {len(text_with_cr) - 1} scored" in tables[0]
    with open(tmp_path / "bad.txt", "wb") as f:
        f.write(b"ab\xffcd")
    assert inspect_model.main(["surprisal", "--model", str(tmp_path / "crlf.npz"),
                               "--text-file", str(tmp_path / "bad.txt")]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_a_heat_map_that_cannot_fit_in_memory_is_refused_before_any_file(char_model, tmp_path,
                                                                         capsys, monkeypatch):
    """1,000 words by 32 units drew for 24 s and took 3.5 GB, unchecked."""
    page, png = tmp_path / "u.html", tmp_path / "u.png"
    module = script("inspect_model")
    window = list(TEXT)[:module.HEAT_MAP_LENGTH]  # --png-length's default
    # Checked before the recording: at most the 2 units asked for and one a property
    # (fewer than the model's 12, h and c of 6 LSTM units).
    rows = 2 + len(module.text_properties(list(TEXT), "char"))
    assert rows < 12
    width, height = module.heat_map_inches(rows, window, "char")
    drawing = int(width * height * 110**2) * module.HEAT_MAP_BYTES_PER_PIXEL
    monkeypatch.setattr(module, "available_bytes", lambda *estimate: drawing - 1)
    argv = ["units", "--model", str(char_model), "--text", TEXT, "--units", "h0:1,h0:2",
            "--per-property", "1", "--html", str(page), "--png", str(png)]
    monkeypatch.setattr(module, "record_states", None)  # (not reached)
    monkeypatch.setattr(module, "check_table_memory", lambda *args: None)  # (the page's own)
    assert module.main(argv) == 2
    assert (f"error: --png over {len(window)} tokens and {rows} units: this run needs about "
            in capsys.readouterr().err)
    assert not page.exists() and not png.exists()
    monkeypatch.undo()
    monkeypatch.setattr(module, "available_bytes", lambda *estimate: drawing)
    monkeypatch.setattr(module, "check_table_memory", lambda *args: None)
    assert module.main(argv) == 0 and png.exists()
    # --per-property 50 could ask for more rows than the model has units: its 12 are
    # the most the picture shows (an ordinary run was refused on a small machine).
    width, height = module.heat_map_inches(12, window, "char")
    monkeypatch.setattr(module, "available_bytes",
                        lambda *estimate: int(width * height * 110**2) * 40)
    assert module.main([*argv[:7], "--per-property", "50", "--png", str(png)]) == 0


def test_a_heat_map_too_long_to_read_is_refused_before_the_model_is_read(capsys):
    """--png-length 5000 drew a picture 93,775 pixels wide, in 74 s, as the
    attention map's 1,000 characters are the most it draws."""
    with pytest.raises(SystemExit) as exc:
        inspect_model.main(["units", "--model", "missing.npz", "--text", "ab", "--png", "u.png",
                            "--png-length", "1001"])
    assert exc.value.code == 2 and ("--png-length 1001: the heat map has a column per token, "
                                    "and more than 1,000 cannot be read; give at most 1,000"
                                    in capsys.readouterr().err)


def test_attention_refuses_an_empty_question(capsys):
    with pytest.raises(SystemExit) as exc:
        inspect_model.main(["attention", "--model", "missing.npz", "--input", "  "])
    assert exc.value.code == 2 and "--input is empty" in capsys.readouterr().err


def test_output_errors_end_with_a_message_and_keep_the_files(char_model, tmp_path):
    """stdout on a full device: the page written all the same, an error line,
    exit 1; a reader that stops early (| head): the page written, exit 0 (the
    BrokenPipeError ended the run before the page, exit 0 all the same); stdout
    closed before the start: refused before any work (an AttributeError
    traceback)."""
    import subprocess
    import sys

    page = tmp_path / "s.html"
    args = [sys.executable, os.path.join(ROOT, "scripts", "inspect_model.py"), "surprisal",
            "--model", str(char_model), "--text", TEXT * 40, "--html", str(page)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            done = subprocess.run(args, env=env, stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=60)
        assert done.returncode == 1 and done.stderr.startswith(
            "error: the results could not be written to stdout") and done.stderr.count("\n") == 1
        assert page.stat().st_size > 0
        page.unlink()
    reader = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # nobody reads: the writer gets a broken pipe
    _, err = reader.communicate(timeout=60)
    assert reader.returncode == 0 and err == b"" and page.stat().st_size > 0
    page.unlink()
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=60, pass_fds=(), close_fds=True,
                          preexec_fn=lambda: os.close(1))
    assert done.returncode == 1 and done.stderr.startswith(
        "error: standard output is closed, so the table could go nowhere")
    assert not page.exists()


def test_an_output_that_cannot_be_written_is_named(char_model, tmp_path, capsys,
                                                   monkeypatch):
    # "cannot write the output: [Errno 27] File too large" said neither which output
    # (the table, the page, the picture) nor its file.
    import errno

    module = script("inspect_model")

    def too_large(*args, **kwargs):
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(module, "write_units_page", too_large)
    page = tmp_path / "u.html"
    assert module.main(["surprisal", "--model", str(char_model), "--text", TEXT,
                        "--html", str(page)]) == 1
    assert capsys.readouterr().err == f"error: cannot write --html {page}: File too large\n"


def test_a_text_too_long_for_memory_is_an_error_line(char_model, capsys, monkeypatch):
    """A MemoryError traceback from the surprisal of a whole large text file."""
    module = script("inspect_model")

    def no_memory(*args):
        raise MemoryError

    monkeypatch.setattr(module, "finite_surprisal", no_memory)
    assert module.main(["surprisal", "--model", str(char_model), "--text", TEXT]) == 1
    assert capsys.readouterr().err == ("error: not enough memory for the text: give a smaller "
                                       "--length (its first tokens; --offset for a later "
                                       "part)\n")


def test_odd_model_names_keep_the_table_and_the_page_whole(char_model, tmp_path, capsys):
    # A name with a byte that is not UTF-8 stopped the page with a
    # UnicodeEncodeError after the table was printed; one with a newline
    # broke the table's "#" header into a data row.
    undecodable = [] if sys.platform == "darwin" else [os.fsdecode(b"m\xff.npz")]  # (UTF-8 only)
    for name in ["two\nlines.npz", *undecodable]:
        model = tmp_path / name
        model.write_bytes(char_model.read_bytes())
        html = tmp_path / "page.html"
        assert inspect_model.main(["surprisal", "--model", str(model), "--text", "def f",
                                   "--html", str(html)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("# ") and lines[1] == "position\ttoken\tlog_prob\tbits"
        assert all(line.startswith("#") or line.count("\t") == 3 for line in lines)
        assert "surprisal under" in html.read_text(encoding="utf-8")
        assert inspect_model.main(["units", "--model", str(model), "--text", TEXT]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[1] == "unit\tproperty\tr"  # the header, one line (it was cut in two)
