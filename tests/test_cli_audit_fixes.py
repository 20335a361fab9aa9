"""The command-line scripts after an audit of them (train_rnnlm, train_seq2seq,
generate_text, inspect_model): a reader that stops reading loses no run, a
plot that cannot be written loses no model, a "$" in a file name is no
math, --init-scale is the run's own on resuming, the attention heat map's
sizes are checked before answering, messages name the flags given, a
leading "~" is the home folder."""

import errno
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from common.cli import outputs_may_close

from script_loader import load_script, usage_error

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TINY_LM = ["--corpus", "synthetic", "--corpus-size", "800", "--batch-size", "4",
           "--time-size", "5", "--wordvec-size", "8", "--hidden-size", "8", "--epochs", "1"]
TINY_PAIRS = ["--epochs", "1", "--batch-size", "32", "--wordvec-size", "4", "--hidden-size", "8",
              "--show", "0"]
SEQ_VOCAB = list("0123456789+_ ")


def run_with_stdout_closed(script, args, cwd):
    """``scripts/<script>.py args`` whose stdout is a pipe nobody reads (``| head``
    after its line): every write to it fails. Returns the finished process."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, str(SCRIPTS / f"{script}.py"), *args], cwd=cwd,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
                              env=dict(os.environ, MPLBACKEND="Agg"))
    finally:
        os.close(write_end)


# -- 1. a closed stdout -----------------------------------------------------------------------


def test_train_rnnlm_goes_on_when_its_reader_stops_reading(tmp_path):
    proc = run_with_stdout_closed("train_rnnlm", [*TINY_LM, "--epochs", "2", "--checkpoint",
                                                  "ck.npz", "--save", "m.npz", "--plot", "p.png"],
                                  tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "notice: stdout was closed" in proc.stderr
    assert all((tmp_path / name).is_file() for name in ("ck.npz", "m.npz", "p.png"))


def test_train_seq2seq_goes_on_when_its_reader_stops_reading(tmp_path, pairs_file):
    proc = run_with_stdout_closed("train_seq2seq", ["--data", pairs_file, *TINY_PAIRS,
                                                    "--epochs", "2", "--checkpoint", "ck.npz",
                                                    "--save", "m.npz", "--plot", "acc.png"],
                                  tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert all((tmp_path / name).is_file() for name in ("ck.npz", "m.npz", "acc.png"))


def test_train_rnnlm_writes_its_files_before_its_summary_line(here, capsys):
    assert load_script("train_rnnlm").main([*TINY_LM, "--save", "m.npz", "--plot", "p.png"]) == 0
    out = capsys.readouterr().out
    assert out.index("model saved to m.npz") < out.index("train perplexity")


# -- 2. train_seq2seq: an attention plot that cannot be written ------------------------------


def test_train_seq2seq_an_attention_plot_that_cannot_be_written_keeps_the_model(
        here, pairs_file, monkeypatch, capsys):
    module = load_script("train_seq2seq")
    saved_before = []

    def full_disk(*args):
        saved_before.append(Path("m.npz").is_file())
        raise OSError(27, "File too large")

    monkeypatch.setattr(module, "plot_attention_examples", full_disk)
    assert module.main(["--data", pairs_file, *TINY_PAIRS, "--model", "attention", "--save",
                        "m.npz", "--plot", "none", "--attention-plot", "att.png"]) == 0
    err = capsys.readouterr().err
    assert "warning: could not write the plot --attention-plot att.png (" in err
    assert "Traceback" not in err and saved_before == [True]


# -- 3. a "$" in a file name ------------------------------------------------------------------


def test_a_dollar_in_a_file_name_is_no_math_in_the_plot_titles(tmp_path):
    from common.optimizer import SGD
    from common.trainer import RnnlmTrainer
    from models import SimpleRnnlm

    trainer = RnnlmTrainer(SimpleRnnlm(10, 4, 4, seed=0), SGD(0.1))
    corpus = np.arange(200) % 10
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=2, time_size=5, verbose=False)
    trainer.title = "SimpleRnnlm on prices_$100_$200.txt"
    trainer.plot(path=tmp_path / "p.png")

    history = {"greedy": [0.5], "beam": [], "seconds": [1.0], "cpu_seconds": [1.0]}
    load_script("train_seq2seq").plot_accuracy(history, tmp_path / "a.png",
                                               "Seq2seq on pairs_$100_$200.tsv")
    assert (tmp_path / "p.png").is_file() and (tmp_path / "a.png").is_file()


# -- 4. --init-scale on resuming ----------------------------------------------------------------


def test_train_rnnlm_refuses_another_init_scale_on_resuming(here, capsys):
    main = load_script("train_rnnlm").main
    assert main([*TINY_LM, "--checkpoint", "ck.npz", "--plot", "none", "--quiet"]) == 0
    err = usage_error(main, ["--resume", "ck.npz", "--epochs", "2", "--init-scale", "0.5"],
                      capsys)
    assert "--init-scale 0.5 differs from the run in ck.npz (no --init-scale)" in err
    # The run's own value is no change.
    assert main([*TINY_LM, "--checkpoint", "ck2.npz", "--plot", "none", "--quiet",
                 "--init-scale", "0.1"]) == 0
    assert main(["--resume", "ck2.npz", "--epochs", "2", "--init-scale", "0.1", "--quiet"]) == 0


# -- 5. inspect_model attention: the heat map's sizes ---------------------------------------


def attention_model(tmp_path):
    from models import AttentionSeq2seq

    path = tmp_path / "att.npz"
    AttentionSeq2seq(len(SEQ_VOCAB), 6, 8, seed=0).save_params(path, vocab=SEQ_VOCAB,
                                                              task="custom")
    return str(path)


@pytest.mark.parametrize("flag, what", [("--answer-length", "a row per answer character"),
                                        ("--width", "a column per question character")])
def test_inspect_attention_refuses_a_heat_map_too_large_to_read(flag, what, tmp_path, here,
                                                              capsys):
    # (in a folder of its own: the default --png attention.png is checked first)
    err = usage_error(load_script("inspect_model").parse_args,
                      ["attention", "--model", attention_model(tmp_path), "--input", "1+2",
                       flag, "1000000000"], capsys)
    assert f"{flag} 1000000000: the heat map has {what}" in err and "at most 1,000" in err


def test_inspect_attention_checks_the_memory_before_answering(tmp_path, monkeypatch, capsys):
    module = load_script("inspect_model")
    monkeypatch.setattr(module, "available_bytes", lambda: 100 * 2**20)
    assert module.main(["attention", "--model", attention_model(tmp_path), "--input", "1+2",
                        "--width", "300", "--answer-length", "300",
                        "--png", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --width 300 and --answer-length 300: this run needs about")
    assert "give a smaller --width or --answer-length" in err
    assert not (tmp_path / "a.png").exists()


# -- 6. train_seq2seq: --resume R --save R ------------------------------------------------------


def test_train_seq2seq_save_over_the_resumed_file_names_the_flags_given(here, pairs_file,
                                                                        capsys):
    main = load_script("train_seq2seq").main
    assert main(["--data", pairs_file, *TINY_PAIRS, "--plot", "none", "--checkpoint",
                 "ck.npz", "--quiet"]) == 0
    err = usage_error(main, ["--resume", "ck.npz", "--save", "ck.npz", "--quiet"], capsys)
    message = err.splitlines()[-1]
    assert "error: --save ck.npz is the --resume file" in message
    assert "--checkpoint" not in message


# -- 7. inspect_model --help --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["units", "surprisal", "attention"])
def test_inspect_model_help_shows_only_the_defaults_that_are_values(command, capsys):
    with pytest.raises(SystemExit):
        load_script("inspect_model").parse_args([command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in shown and "(default: )" not in shown
    assert not re.search(r"\(default: [^)]*\) \(default:", shown)  # said twice
    assert "(default: 0)" in shown or command == "attention"  # --offset


# -- 8. generate_text --temperature -------------------------------------------------------------


def test_generate_text_says_a_temperature_is_not_a_number(capsys):
    err = usage_error(load_script("generate_text").main,
                      ["--model", "m.npz", "--temperature", "abc"], capsys)
    assert "argument --temperature: not a number: 'abc'" in err


# -- 9. train_seq2seq: too few pairs, counted in the file -------------------------------------


def test_train_seq2seq_too_few_test_pairs_counts_all_the_file_s_pairs(tmp_path, capsys):
    path = tmp_path / "pairs_9.tsv"
    path.write_text("".join(f"{a}+{a}\t{2 * a}\n" for a in range(9)), encoding="utf-8")
    assert load_script("train_seq2seq").main(
        ["--data", str(path), "--val", "3", "--batch-size", "2", "--epochs", "1",
         "--hidden-size", "8", "--wordvec-size", "4", "--plot", "none", "--quiet"]) == 2
    assert "it needs at least 10 pairs, it has 9" in capsys.readouterr().err


# -- 10. a leading "~" -----------------------------------------------------------------------


@pytest.fixture
def home(here, monkeypatch):
    """A home folder of the test's own ($HOME), in the test's folder."""
    folder = here / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def test_train_rnnlm_reads_a_leading_tilde_as_the_home_folder(home, here, capsys):
    main = load_script("train_rnnlm").main
    assert main([*TINY_LM, "--save=~/m.npz", "--plot=~/p.png", "--checkpoint=~/ck.npz"]) == 0
    assert f"model saved to {home / 'm.npz'}" in capsys.readouterr().out
    assert main(["--resume=~/ck.npz", "--epochs", "2", "--quiet"]) == 0
    assert sorted(p.name for p in home.iterdir()) == ["ck.npz", "m.npz", "p.png"]
    assert not (here / "~").exists()


def test_the_other_scripts_read_a_leading_tilde_as_the_home_folder(home, here, pairs_file,
                                                                   capsys):
    os.replace(pairs_file, home / "pairs.tsv")
    assert load_script("train_seq2seq").main(["--data=~/pairs.tsv", *TINY_PAIRS, "--model",
                                              "attention", "--save=~/s.npz", "--plot=~/a.png",
                                              "--attention-plot=~/att.png"]) == 0
    assert f"saved {home / 's.npz'}" in capsys.readouterr().out
    assert load_script("train_rnnlm").main([*TINY_LM, "--save=~/m.npz", "--plot", "none",
                                            "--quiet"]) == 0
    assert load_script("generate_text").main(["--model=~/m.npz", "--length", "3"]) == 0
    inspect_model = load_script("inspect_model")
    assert inspect_model.main(["surprisal", "--model=~/m.npz", "--text", "the a the",
                               "--html=~/s.html"]) == 0
    assert inspect_model.main(["attention", "--model=~/s.npz", "--input", "ab", "--width",
                               "4", "--answer-length", "4", "--png=~/h.png"]) == 0
    assert {"s.npz", "a.png", "att.png", "m.npz", "s.html", "h.png"} <= {
        p.name for p in home.iterdir()}
    assert not (here / "~").exists()


# -- 11. --resume from a folder that cannot be written ----------------------------------------


def test_train_rnnlm_resumed_in_an_unwritable_folder_names_resume(here, monkeypatch, capsys):
    main = load_script("train_rnnlm").main
    Path("ro").mkdir()
    assert main([*TINY_LM, "--checkpoint", "ro/ck.npz", "--plot", "none", "--quiet"]) == 0
    real = tempfile.TemporaryFile

    def refusing(*args, dir=None, **kwargs):  # a folder ro made read-only (even for root)
        if dir is not None and os.path.basename(dir) == "ro":
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refusing)
    err = usage_error(main, ["--resume", "ro/ck.npz", "--epochs", "2", "--quiet"], capsys)
    assert "error: --resume ro/ck.npz: cannot write in" in err
    assert "a resumed run writes its checkpoints there: give --checkpoint OTHER.npz" in err


def test_the_streams_are_given_back_when_a_flush_fails_for_real(monkeypatch):
    # (A flush that fails with what no stream that stops taking output raises,
    # a file closed under it: its error goes on up, and sys.stdout and
    # sys.stderr are the caller's again.)
    class Closed(io.StringIO):
        def flush(self):
            raise ValueError("I/O operation on closed file")

    out, err = Closed(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with pytest.raises(ValueError, match="closed file"):
        with outputs_may_close():
            print("x")
    assert sys.stdout is out and sys.stderr is err


def test_a_full_disk_behind_a_stream_without_a_descriptor_is_left_alone(monkeypatch):
    class FullDisk(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    out, err = FullDisk(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with outputs_may_close():
        print("x")
        print("y")
    assert sys.stdout is out and err.getvalue() == (
        "notice: stdout cannot be written (No space left on device); the run goes on without "
        "printing, and writes its files as asked (Ctrl-C stops it)\n")
