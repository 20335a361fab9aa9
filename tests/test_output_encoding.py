"""An output whose encoding cannot hold a character ends no program.

A terminal, a pipe or a log file may take only ASCII (``LANG=C`` on an old
system, ``PYTHONIOENCODING=ascii``, a cp1252 console). ``generate_text.py``
already wrote such characters as backslash escapes; the others did not:
``train_seq2seq.py`` on pairs with accents ended after its first epoch in a
``UnicodeEncodeError`` while it showed the test answers, the run and its
model lost; ``train_rnnlm.py`` and ``gradient_through_time.py`` ended
before training when the ``--text-file``'s name had one, and
``inspect_model.py surprisal`` at the first such token. Every script's
standard output now escapes them, with one warning on stderr
(``common.cli.outputs_escaped``, and ``outputs_may_close`` for the
training scripts).
"""

import io
import json
import sys

import pytest

from common.cli import outputs_escaped, outputs_may_close
from models import SimpleRnnlm, load_model

from script_loader import load_script

WARNING = ("warning: the output's encoding (ascii) cannot hold some characters of the text; "
           "they are written as backslash escapes")


class AsciiTerminal:
    """``with AsciiTerminal() as terminal:`` stdout and stderr that take ASCII
    only, as under PYTHONIOENCODING=ascii (stderr escapes by itself, as
    Python's always does); ``terminal.out()`` and ``.err()`` read what was
    written. (Set in the test's body: pytest puts its own capture back
    between a fixture and the test.)"""

    def __enter__(self):
        self._out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
        self._err = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="backslashreplace")
        self._real = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self._out, self._err
        return self

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self._real

    def out(self):
        self._out.flush()
        return self._out.buffer.getvalue().decode("ascii")

    def err(self):
        self._err.flush()
        return self._err.buffer.getvalue().decode("ascii")


@pytest.mark.parametrize("outputs", [outputs_escaped, outputs_may_close])
def test_what_the_encoding_cannot_hold_is_escaped_with_one_warning(outputs):
    with AsciiTerminal() as terminal:
        with outputs():
            print("Äpfel")
            print("plain")
            print("日本")
        # Without it: the error that ended the programs.
        with pytest.raises(UnicodeEncodeError):
            print("Äpfel")
    assert terminal.out() == "\\xc4pfel\nplain\n\\u65e5\\u672c\n"
    assert terminal.err().count(WARNING) == 1


def test_train_seq2seq_on_accented_pairs_runs_to_its_end(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"é{n}\tü{n}\n" for n in range(10, 210)), encoding="utf-8")
    with AsciiTerminal() as terminal:
        status = load_script("train_seq2seq").main(
            ["--data", str(pairs), "--epochs", "2", "--batch-size", "32", "--wordvec-size", "4",
             "--hidden-size", "8", "--plot", "none", "--save", str(tmp_path / "m.npz")])
    assert status == 0, terminal.err()
    out = terminal.out()
    assert "epoch 2/2 | accuracy" in out and "Q '\\xe9" in out
    assert terminal.err().count(WARNING) == 1
    assert load_model(tmp_path / "m.npz")[1]["vocab"][0] is not None


def test_train_rnnlm_on_a_file_whose_name_is_not_ascii(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    (tmp_path / "bücher.txt").write_text("ein Buch über Bücher\n" * 300, encoding="utf-8")
    with AsciiTerminal() as terminal:
        status = load_script("train_rnnlm").main(
            ["--text-file", "bücher.txt", "--level", "char", "--epochs", "1", "--batch-size",
             "4", "--wordvec-size", "8", "--hidden-size", "8", "--plot", "none", "--save",
             "m.npz"])
    assert status == 0, terminal.err()
    assert "b\\xfccher.txt" in terminal.out()


def test_inspect_model_surprisal_of_text_with_accents(tmp_path):
    vocab = list("abcäöü \n")
    SimpleRnnlm(len(vocab), 4, 4, seed=0).save_params(tmp_path / "m.npz", vocab=vocab,
                                                     level="char")
    with AsciiTerminal() as terminal:
        status = load_script("inspect_model").main(
            ["surprisal", "--model", str(tmp_path / "m.npz"), "--text", "aäb ü"])
    assert status == 0, terminal.err()
    out = terminal.out()
    # The token column is JSON's own escapes (Python's "\\xe4" is no JSON), so no warning.
    rows = [line.split("\t") for line in out.splitlines()[2:-1]]
    assert [json.loads(row[1]) for row in rows] == list("a\u00e4b \u00fc")
    assert '"\\u00e4"' in out and out.rstrip().splitlines()[-1].startswith("#")
    assert WARNING not in terminal.err()


def test_gradient_through_time_on_a_file_whose_name_is_not_ascii(tmp_path):
    (tmp_path / "bücher.txt").write_text("ein Buch über Bücher\n" * 300, encoding="utf-8")
    with AsciiTerminal() as terminal:
        status = load_script("gradient_through_time").main(
            ["--text-file", str(tmp_path / "bücher.txt"), "--iters", "2", "--hidden-size", "8",
             "--wordvec-size", "4", "--batch-size", "4", "--time-size", "8", "--eval-length",
             "12", "--eval-batch", "2", "--plot", "none"])
    assert status == 0, terminal.err()
    assert terminal.out().startswith("b\\xfccher.txt: ")
