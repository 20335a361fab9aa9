"""What an audit of the sequence-to-sequence edge cases found, each pinned.

A model saved by ``train_seq2seq.py`` and loaded on pairs of other widths
(one long line in a tab-separated file pads every question further) read
the extra spaces as part of each question and answered almost nothing
right, without a word; the scoring helpers counted a target the loss does
not score (the ignore label) as a wrong answer, and an id outside the
vocabulary as one too; the book-style ``decoder.generate`` failed inside
NumPy for start ids of the wrong shape; ``eval_seq2seq`` did not take the
book's ``verbos=``.
"""

import numpy as np
import pytest

from common.util import eval_seq2seq, seq2seq_accuracy
from models import AttentionSeq2seq, PeekySeq2seq, Seq2seq

from script_loader import load_script

SMALL = ["--epochs", "1", "--batch-size", "32", "--wordvec-size", "4", "--hidden-size", "8",
         "--quiet", "--show", "0", "--plot", "none"]


def write_pairs(path, extra=""):
    """300 sums 'a+b<TAB>a+b's value' (a, b < 20), and ``extra`` lines."""
    rng = np.random.default_rng(0)
    lines = [f"{a}+{b}\t{a + b}\n" for a, b in rng.integers(0, 20, (300, 2))]
    path.write_text("".join(lines) + extra, encoding="utf-8")
    return str(path)


def test_a_loaded_model_is_not_evaluated_on_pairs_of_other_widths(tmp_path, capsys):
    main = load_script("train_seq2seq").main
    narrow = write_pairs(tmp_path / "sums.tsv")
    wide = write_pairs(tmp_path / "wide.tsv", "1+1+1+1+1+1\t6\n")  # every question 11 wide
    model = str(tmp_path / "m.npz")
    assert main(["--data", narrow, *SMALL, "--save", model]) == 0
    assert main(["--data", narrow, "--load", model, *SMALL, "--epochs", "0"]) == 0
    capsys.readouterr()
    assert main(["--data", wide, "--load", model, *SMALL, "--epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert "was trained on questions of 5 characters" in err and "11" in err
    # Trained further on them, on purpose: a notice, not an error.
    assert main(["--data", wide, "--load", model, *SMALL]) == 0
    assert "it is trained on them from here on" in capsys.readouterr().err


def test_the_attention_heat_map_pads_to_the_saved_width(tmp_path, capsys):
    # The model alone, its data file gone (or on another machine): the widths
    # come with it.
    data = write_pairs(tmp_path / "sums.tsv")
    model = str(tmp_path / "m.npz")
    assert load_script("train_seq2seq").main(
        ["--data", data, *SMALL, "--model", "attention", "--attention-plot", "none",
         "--save", model]) == 0
    (tmp_path / "sums.tsv").unlink()
    capsys.readouterr()
    assert load_script("inspect_model").main(
        ["attention", "--model", model, "--input", "3+4", "--png",
         str(tmp_path / "a.png")]) == 0
    assert "'3+4  ' -> " in capsys.readouterr().out  # padded to the saved 5 characters


@pytest.mark.parametrize("cls", [Seq2seq, PeekySeq2seq, AttentionSeq2seq])
def test_accuracy_leaves_out_targets_the_loss_does_not_score(cls):
    model = cls(13, 8, 16, seed=0)
    questions = np.random.default_rng(0).integers(0, 13, (5, 7))
    answers = np.concatenate([np.full((5, 1), 12), model.generate(questions, 12, 4)], axis=1)
    assert seq2seq_accuracy(model, questions, answers) == 1.0
    answers[:, -1] = -1  # the loss's ignore_label: not scored
    model.check_pairs(questions, answers)
    assert seq2seq_accuracy(model, questions, answers) == 1.0
    answers[:, -1] = 40  # no id of the vocabulary: refused, not "wrong"
    with pytest.raises(ValueError, match="targets"):
        seq2seq_accuracy(model, questions, answers)


@pytest.mark.parametrize("start_id", [np.array([1, 2, 3]), np.array([[1], [2]])])
def test_the_books_decoder_generate_says_what_start_id_must_be(start_id):
    model = Seq2seq(13, 8, 16, seed=0)
    h = model.encoder.forward(np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"start_id must be one id or one per question \(2\)"):
        model.decoder.generate(h, start_id, 3)


def test_eval_seq2seq_takes_the_books_verbos(capsys):
    model = Seq2seq(13, 8, 16, seed=0)
    question = np.zeros((1, 4), dtype=np.int64)
    correct = np.array([[12, 1, 2]])
    id_to_char = dict(enumerate("0123456789+ _"))
    eval_seq2seq(model, question, correct, id_to_char, verbos=True)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Q 0000" and printed[1] == "T 12" and printed[2][0] in "OX"
