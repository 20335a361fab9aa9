"""scripts/train_rnnlm.py as a user meets it: every flag checked before
training, output paths checked first, nothing lost on Ctrl-C or SIGTERM,
named data sources never replaced, runs resumed with their own settings,
memory estimated up front (issue 12, findings 1-4, 6-10)."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from common.checkpoint import read_checkpoint

from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
SMALL = ["--corpus", "synthetic", "--corpus-size", "800", "--batch-size", "4", "--time-size",
         "5", "--wordvec-size", "8", "--hidden-size", "8", "--epochs", "1", "--plot", "p.png"]


@pytest.fixture
def script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return load_script("train_rnnlm")


def usage_error(script, argv):
    """True when main stops with exit status 2, as argparse does for a usage error."""
    with pytest.raises(SystemExit) as info:
        script.main(argv)
    return info.value.code == 2


def run(args, cwd, env=None, timeout=120):
    full_env = dict(os.environ, MPLBACKEND="Agg", **(env or {}))
    return subprocess.run([sys.executable, str(SCRIPTS / "train_rnnlm.py"), *args], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


# -- finding 6: every flag checked up front, in command-line words --------------------------------

BAD_FLAGS = [
    (["--max-grad", "-1"], "--max-grad must be a number > 0, got -1.0"),
    (["--init-scale", "1e308"], r"--init-scale must be at most 3.4e\+38"),
    (["--max-grad", "0"], "--max-grad must be a number > 0"),
    (["--clip-value", "0"], "--clip-value must be a number > 0"),
    (["--lr", "-1"], "--lr must be a number > 0"),
    (["--lr", "nan"], "--lr must be a number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a number > 0, got inf"),
    (["--init-scale", "-1"], "--init-scale must be a number > 0"),
    (["--init-scale", "0"], "--init-scale must be a number > 0"),
    (["--dropout", "1.0"], r"--dropout must be in \[0, 1\), got 1.0"),
    (["--dropout", "-0.1"], r"--dropout must be in \[0, 1\)"),
    (["--num-layers", "0"], "--num-layers: must be at least 1, got 0"),
    (["--eval-interval", "0"], "--eval-interval must be at least 1, got 0"),
    (["--eval-interval", "-1"], "--eval-interval must be at least 1, got -1"),
    (["--checkpoint-every", "-3"], "--checkpoint-every must be at least 1, got -3"),
    (["--lr-decay", "0"], r"--lr-decay must be a number > 1 \(lr is divided by it\), got 0.0"),
    (["--patience", "0"], "--patience must be at least 1, got 0"),
    (["--patience", "-1"], "--patience must be at least 1, got -1"),
    (["--lr-halve-from", "0"], "--lr-halve-from must be at least 2"),
    (["--lr-halve-from", "1"], "--lr-halve-from must be at least 2"),
    (["--log-every", "-2"], "--log-every must be >= 0, got -2"),
    (["--corpus-size", "-5"], "--corpus-size must be >= 0, got -5"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--save", "run.npz", "--checkpoint", "run.npz"],
     "--save and --checkpoint name the same file run.npz"),
    (["--save", "p.png"], "--save and --plot name the same file p.png"),
    # an unset shell variable ("--text-file $BOOK") must not mean: train on PTB
    (["--text-file", ""], "--text-file is empty; name a text file, or leave the flag out"),
    (["--data-dir", ""], "--data-dir is empty; name the PTB folder"),
    (["--checkpoint-every", "5"], "--checkpoint-every needs --checkpoint FILE"),
]


@pytest.mark.parametrize("flags, message", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_a_bad_value_is_a_usage_error_before_anything_runs(flags, message, script, capsys):
    with pytest.raises(SystemExit) as info:
        script.main([*SMALL, *flags])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: " in err and __import__("re").search(message, err), err
    assert os.listdir(".") == []


@pytest.mark.parametrize("flags, message", [
    (["--time-size", "1000"], "the corpus has|leaves 799 training positions, fewer than one "
                              "batch of --batch-size 4 x --time-size 1000"),
    (["--corpus-size", "1"], "--corpus-size 1 leaves 0 training positions"),
])
def test_a_corpus_shorter_than_one_batch_is_refused_in_flag_words(flags, message, script,
                                                                  capsys):
    assert usage_error(script, [*SMALL, *flags])
    err = capsys.readouterr().err
    assert __import__("re").search(message, err), err


# -- finding 2: output paths checked before training; model before plot ---------------------------


def test_a_folder_as_plot_path_is_refused_before_training(tmp_path):
    (tmp_path / "out").mkdir()
    result = run([*SMALL, "--plot", "out", "--save", "m.npz"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("error: --plot out is a folder; give a file name in it, e.g. "
                             "out/ppl.png\n")
    assert "epoch" not in result.stdout and not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("flag", ["--save", "--checkpoint", "--plot"])
def test_an_unwritable_output_path_is_refused_before_training(flag, script, capsys):
    Path("afile").write_text("x")
    name = "afile/sub/out.png" if flag == "--plot" else "afile/sub/out.npz"
    assert usage_error(script, [*SMALL, flag, name])
    err = capsys.readouterr()
    assert err.err.startswith(f"error: {flag} {name}: ") and "is a file, not a folder" in err.err
    assert "epoch" not in err.out


def test_a_plot_suffix_that_names_no_format_is_refused(script, capsys):
    assert usage_error(script, [*SMALL, "--plot", "curve.txt"])
    assert "--plot: cannot tell the plot format from 'curve.txt'" in capsys.readouterr().err


def test_the_model_is_saved_before_the_plot_and_a_failed_plot_is_a_warning(script, capsys,
                                                                           monkeypatch):
    from common.trainer import RnnlmTrainer

    def broken_plot(self, **kwargs):
        assert Path("m.npz").exists()  # the model is already on disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RnnlmTrainer, "plot", broken_plot)
    assert script.main([*SMALL, "--save", "m.npz"]) == 0
    err = capsys.readouterr().err
    assert "warning: could not write the plot --plot p.png" in err
    assert "No space left on device" in err and "Traceback" not in err
    assert Path("m.npz").exists()


@pytest.mark.parametrize("suffix, magic", [(".pdf", b"%PDF-"), (".svg", b"<?xml"),
                                           (".png", b"\x89PNG")])
def test_plot_writes_the_format_its_suffix_names(suffix, magic, script):
    assert script.main([*SMALL, "--plot", f"curve{suffix}", "--quiet"]) == 0
    assert Path(f"curve{suffix}").read_bytes().startswith(magic)


# -- finding 3: checkpoints are not overwritten; Ctrl-C and SIGTERM lose nothing ------------------


def test_a_fresh_run_refuses_an_existing_checkpoint(script, capsys):
    assert script.main([*SMALL, "--checkpoint", "ck.npz", "--epochs", "2", "--quiet"]) == 0
    before = Path("ck.npz").read_bytes()
    assert usage_error(script, [*SMALL, "--checkpoint", "ck.npz", "--quiet"])
    assert capsys.readouterr().err == (
        "error: --checkpoint ck.npz exists already (an earlier run?): continue it with "
        "--resume ck.npz, or pass --overwrite to replace it\n")
    assert Path("ck.npz").read_bytes() == before
    assert script.main([*SMALL, "--checkpoint", "ck.npz", "--overwrite", "--quiet"]) == 0
    assert read_checkpoint("ck.npz")[1]["trainer"]["epoch"] == 1


def test_a_saved_model_as_checkpoint_is_not_called_a_run_to_resume(script, capsys):
    """The advice was --resume model.npz, which refuses a saved model."""
    assert script.main([*SMALL, "--save", "model.npz", "--quiet"]) == 0
    before = Path("model.npz").read_bytes()
    assert usage_error(script, [*SMALL, "--checkpoint", "model.npz", "--quiet"])
    assert capsys.readouterr().err == (
        "error: --checkpoint model.npz exists already and is not a training checkpoint (a "
        "saved model? another file?): give another name, or pass --overwrite to replace it\n")
    assert Path("model.npz").read_bytes() == before


def _start(args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    out = open(cwd / "out.txt", "wb")
    err = open(cwd / "err.txt", "wb")
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "train_rnnlm.py"), *args], cwd=cwd,
                            env=env, stdout=out, stderr=err)
    return proc, out, err


def _stop_when(proc, condition, signum, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not condition():
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signum)
    try:
        return proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()


LONG = ["--corpus", "synthetic", "--corpus-size", "6000", "--batch-size", "10", "--time-size",
        "5", "--wordvec-size", "32", "--hidden-size", "32", "--epochs", "200"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigterm_writes_checkpoint_model_and_plot_and_exits_143(tmp_path):
    proc, out, err = _start([*LONG, "--checkpoint", "ck.npz", "--checkpoint-every", "5",
                             "--save", "m.npz", "--plot", "p.svg"], tmp_path)
    with out, err:
        code = _stop_when(proc, lambda: (tmp_path / "ck.npz").exists(), signal.SIGTERM)
    stderr = (tmp_path / "err.txt").read_text()
    assert code == 143, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM at epoch ") and last.endswith(
        "resume with --resume ck.npz"), stderr
    assert "model saved to m.npz" in stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".txt") == [
        "ck.npz", "m.npz", "p.svg"]
    _, meta = read_checkpoint(tmp_path / "ck.npz")
    saved = np.load(tmp_path / "m.npz")
    checkpointed = np.load(tmp_path / "ck.npz")
    assert np.array_equal(saved["rnn.Wh"], checkpointed["model/rnn.Wh"])  # the same moment


@pytest.mark.parametrize("error", [MemoryError, ValueError("array is too big")])
def test_weights_that_do_not_fit_past_the_memory_check_are_a_usage_error(script, capsys, error):
    def no_memory(*args, **kwargs):
        raise error

    script.build_model = no_memory
    assert usage_error(script, [*SMALL, "--ignore-memory-check"])
    assert capsys.readouterr().err.startswith(
        "error: not enough memory for the model's weights (--hidden-size 8, --wordvec-size 8")


def test_sigterm_just_before_fit_takes_it_over_stops_at_the_first_boundary(
        script, capsys, sigterm_raises, monkeypatch):
    """Between the script's start of training and fit's own handler, a SIGTERM
    was only remembered: the run trained all its epochs before stopping."""
    from common.trainer import BaseTrainer

    real = BaseTrainer._check_before_training

    def terminated(self, opts):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(self, opts)

    monkeypatch.setattr(BaseTrainer, "_check_before_training", terminated)
    assert script.main([*SMALL, "--epochs", "30", "--save", "m.npz"]) == 143
    assert "stopped by SIGTERM at epoch 1, iteration 0" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_second_sigterm_while_the_stopped_run_writes_its_files_ends_it(tmp_path):
    code = f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from script_loader import load_script
        from common import trainer
        script = load_script("train_rnnlm")
        real_step, calls = trainer.BaseTrainer._step, [0]

        def step(self, *args, **kwargs):
            calls[0] += 1
            if calls[0] == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # the first: fit stops at the boundary
            return real_step(self, *args, **kwargs)

        def save_outputs(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)  # the second: the end, at once
            print("still running after the second SIGTERM", flush=True)

        trainer.BaseTrainer._step = step
        script.save_outputs = save_outputs
        script.main({[*SMALL, "--epochs", "3", "--quiet"]!r})
        """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert "still running" not in done.stdout


def test_sigterm_after_training_waits_for_the_files_then_skips_the_evaluation(
        script, capsys, sigterm_raises):
    """The run has trained and is about to write its files: a SIGTERM there
    (its default action would end the process with none written) lets them
    be written, then ends the run, exit 143, before the long --eval."""
    real = script.skipped_batches_notice

    def terminated(trainer):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(trainer)

    script.skipped_batches_notice = terminated
    assert script.main([*SMALL, "--save", "m.npz", "--eval"]) == 143
    captured = capsys.readouterr()
    assert "stopped by SIGTERM after training (after epoch 1), its files written" in captured.err
    assert Path("m.npz").is_file() and Path("p.png").is_file()
    assert "test perplexity" not in captured.out


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_without_a_checkpoint_still_saves_the_model(tmp_path):
    proc, out, err = _start([*LONG, "--save", "m.npz", "--log-every", "1"], tmp_path)
    with out, err:
        code = _stop_when(proc, lambda: b"iteration" in (tmp_path / "out.txt").read_bytes(),
                          signal.SIGINT)
    stderr = (tmp_path / "err.txt").read_text()
    assert code == 130, stderr
    assert (tmp_path / "m.npz").exists() and "model saved to m.npz" in stderr
    assert stderr.strip().splitlines()[-1].endswith("no checkpoint was asked for")


# -- finding 4: named data sources never fall back; conflicting flags refused ---------------------


def test_a_nonexistent_data_dir_is_an_error_not_a_fallback(tmp_path):
    result = run(["--data-dir", str(tmp_path / "nowhere"), "--epochs", "1"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: --data-dir {tmp_path / 'nowhere'}: no such folder")
    assert "synthetic" not in result.stderr and "Traceback" not in result.stderr


def test_an_incomplete_data_dir_is_explained_in_command_line_words(script, capsys):
    os.mkdir("ptb")
    Path("ptb/ptb.train.txt").write_text("a truncated file\n")
    assert usage_error(script, ["--data-dir", "ptb", "--epochs", "1"])
    err = capsys.readouterr().err
    assert err.startswith("error: --data-dir 'ptb': the folder lacks ptb.valid.txt, "
                          "ptb.test.txt.\n"), err
    assert "or pass --data-dir a folder that holds them, or leave --data-dir unset" in err
    assert "data_dir" not in err


def test_a_broken_ptb_dir_in_the_environment_is_an_error_not_a_fallback(tmp_path):
    broken = tmp_path / "ptb"
    broken.mkdir()
    (broken / "ptb.train.txt").write_text("a truncated file\n")
    for split in ("valid", "test"):
        (broken / f"ptb.{split}.txt").write_text("x\n")
    result = run(["--epochs", "1"], tmp_path, env={"RNNLAB_PTB_DIR": str(broken)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "synthetic" not in result.stderr
    assert "Traceback" not in result.stderr


def test_text_file_alone_trains_on_that_file(script, capsys):
    Path("book.txt").write_text("the cat sat on the mat . " * 200)
    assert script.main(["--text-file", "book.txt", "--corpus-size", "500", "--batch-size", "4",
                        "--time-size", "5", "--hidden-size", "8", "--wordvec-size", "8",
                        "--epochs", "1", "--plot", "p.png"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SimpleRnnlm on book.txt: 499 training tokens, vocabulary 6,")


BOOK_RUN = ["--corpus-size", "500", "--batch-size", "4", "--time-size", "5", "--hidden-size",
            "8", "--wordvec-size", "8", "--epochs", "1"]


def test_a_text_file_whose_name_is_not_utf8_trains_and_draws(script, capsys):
    """A Latin-1 name (café.txt written on an old system): the title of the
    plot and the first line took it as it is, and failed after training."""
    name = os.fsdecode(b"caf\xe9.txt")  # 'caf\udce9.txt'
    try:
        Path(name).write_text("the cat sat on the mat . " * 200)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 names")
    assert script.main(["--text-file", name, *BOOK_RUN, "--plot", "p.png"]) == 0
    assert capsys.readouterr().out.startswith("SimpleRnnlm on caf\ufffd.txt: 499 training")
    assert Path("p.png").stat().st_size > 1000


def test_a_text_too_large_for_memory_is_refused_before_reading(script, capsys, monkeypatch):
    Path("book.txt").write_text("the cat sat on the mat . " * 200)  # 5 kB: 200 kB to read
    monkeypatch.setattr(script, "available_bytes", lambda: 100_000)
    assert usage_error(script, ["--text-file", "book.txt", *BOOK_RUN])
    err = capsys.readouterr().err
    assert "this run needs about 0 MiB of memory (reading 0 MiB), but only 0 MiB is available to " \
           "read --text-file book.txt" in err and "--ignore-memory-check" in err
    # A part that fits, cut by bytes, the character cut in two dropped.
    assert "head -c 2500 book.txt | iconv -c -f utf-8 -t utf-8 > part.txt" in err

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(script.text, "load_data", no_memory)
    assert usage_error(script, ["--text-file", "book.txt", *BOOK_RUN, "--ignore-memory-check"])
    assert "error: not enough memory to read --text-file book.txt (0 MiB; reading takes up to " \
           "40 times that); train on a part of the file" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix", reason="closes the child's standard output")
def test_a_run_whose_output_is_closed_before_it_starts_trains_and_saves(tmp_path):
    """``>&-``: the progress lines asked a stream that was not there whether
    it was a terminal, and the run died with its model unsaved."""
    done = subprocess.run([sys.executable, str(SCRIPTS / "train_rnnlm.py"), *SMALL,
                           "--save", "m.npz"], cwd=tmp_path, preexec_fn=lambda: os.close(1),
                          env=dict(os.environ, MPLBACKEND="Agg"), stderr=subprocess.PIPE,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m.npz").is_file()


def test_a_text_file_is_read_whole_by_default(script, capsys):
    """--corpus-size 1000 is the PTB demo; a user's own text is not cut to 1,000 tokens."""
    Path("book.txt").write_text("the cat sat on the mat . " * 300)
    assert script.main(["--text-file", "book.txt", "--batch-size", "4", "--time-size", "5",
                        "--hidden-size", "8", "--wordvec-size", "8", "--epochs", "1",
                        "--plot", "none"]) == 0
    assert capsys.readouterr().out.startswith("SimpleRnnlm on book.txt: 1,889 training tokens")


@pytest.mark.parametrize("flags, message", [
    (["--text-file", "book.txt", "--checkpoint", "book.txt", "--overwrite"],
     "--checkpoint book.txt is the --text-file file: writing it would destroy that file"),
    (["--text-file", "book.txt", "--save", "./book.txt"],
     "--save ./book.txt is the --text-file file"),
])
def test_no_output_is_written_over_the_text_it_trains_on(flags, message, script, capsys):
    Path("book.txt").write_text("the cat sat on the mat . " * 100)
    assert usage_error(script, flags)
    err = capsys.readouterr().err
    assert message in err
    assert Path("book.txt").read_text().startswith("the cat")


def test_a_text_file_run_resumes_from_another_folder(script, capsys):
    """The checkpoint records where the text file and the outputs are, not the
    paths as typed: the resumed run reads and writes the same files."""
    os.mkdir("run")
    Path("run/book.txt").write_text("the cat sat on the mat . " * 100)
    os.chdir("run")
    assert script.main(["--text-file", "book.txt", "--batch-size", "4", "--time-size", "5",
                        "--hidden-size", "8", "--wordvec-size", "8", "--epochs", "1",
                        "--plot", "ppl.png", "--save", "m.npz", "--checkpoint", "ck.npz",
                        "--quiet"]) == 0
    os.chdir("..")
    saved = Path("run/m.npz").read_bytes()
    assert script.main(["--resume", "run/ck.npz", "--epochs", "2", "--quiet"]) == 0
    assert Path("run/m.npz").read_bytes() != saved
    assert not Path("m.npz").exists() and not Path("ppl.png").exists()
    capsys.readouterr()
    assert script.main(["--resume", "run/ck.npz", "--text-file", "run/book.txt",
                        "--save", "run/m.npz", "--epochs", "3", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "replaces" not in err and "was written as" not in err  # the same files
    assert read_checkpoint("run/ck.npz")[1]["trainer"]["epoch"] == 3
    # A copy resumed here would write the first run's outputs: said.
    Path("copy.npz").write_bytes(Path("run/ck.npz").read_bytes())
    assert script.main(["--resume", "copy.npz", "--epochs", "4", "--quiet"]) == 0
    run = os.path.abspath("run")
    assert (f"notice: copy.npz was written as {run}/ck.npz; its run's outputs go where that "
            f"run began (--save {run}/m.npz, --plot {run}/ppl.png): give them anew to write "
            f"elsewhere") in capsys.readouterr().err

    # The text changed since: its words would get other ids than the model learned.
    Path("run/book.txt").write_text("the mat sat on the cat . " * 100)
    assert usage_error(script, ["--resume", "run/ck.npz", "--epochs", "4", "--quiet"])
    assert ("book.txt has changed since the run began" in capsys.readouterr().err
            and read_checkpoint("run/ck.npz")[1]["trainer"]["epoch"] == 3)


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="/dev/fd names an open pipe")
def test_a_piped_text_that_changed_is_refused_on_resume(script, capsys):
    # A pipe (/dev/stdin, <(...)) is read once: the run is checked by the token
    # ids the text gave, not by reading the drained pipe again (an empty hash).
    fd = 100  # the same path in both runs, as /dev/stdin would be

    def piped(text):
        r, w = os.pipe()
        os.write(w, text.encode())  # 2.5 kB: within the pipe's buffer
        os.close(w)
        os.dup2(r, fd)
        os.close(r)
        return f"/dev/fd/{fd}"

    try:
        assert script.main(["--text-file", piped("the cat sat on the mat . " * 100),
                            "--batch-size", "4", "--time-size", "5", "--hidden-size", "8",
                            "--wordvec-size", "8", "--epochs", "1", "--plot", "none",
                            "--checkpoint", "ck.npz", "--quiet"]) == 0
        piped("the cat sat on the mat . " * 100)  # the same text again: resumes
        assert script.main(["--resume", "ck.npz", "--epochs", "2", "--quiet"]) == 0
        capsys.readouterr()
        piped("the mat sat on the cat . " * 100)  # the same words, other ids
        assert usage_error(script, ["--resume", "ck.npz", "--epochs", "3", "--quiet"])
        assert (f"/dev/fd/{fd} has changed since the run began" in capsys.readouterr().err
                and read_checkpoint("ck.npz")[1]["trainer"]["epoch"] == 2)
    finally:
        os.close(fd)


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_run_resumed_through_a_link_to_its_folder_is_the_same_run(script, capsys, tmp_path):
    """A path through a link names the file the run wrote: the working folder
    is recorded as the system names it (links resolved, as /tmp is
    /private/tmp on macOS), so comparing paths by their letters refused to
    resume the checkpoint being written, refused the run's own text file as
    another, and called the checkpoint a moved copy."""
    os.mkdir("real")
    os.symlink("real", "link")
    Path("real/book.txt").write_text("the cat sat on the mat . " * 100)
    os.chdir("link")
    run = ["--text-file", "book.txt", "--batch-size", "4", "--time-size", "5",
           "--hidden-size", "8", "--wordvec-size", "8", "--plot", "none", "--quiet"]
    assert script.main([*run, "--epochs", "1", "--save", "m.npz", "--checkpoint", "ck.npz"]) == 0
    capsys.readouterr()
    linked = tmp_path / "link"
    assert script.main([*run, "--epochs", "2", "--text-file", str(linked / "book.txt"),
                        "--save", str(linked / "m.npz"), "--checkpoint", "ck.npz",
                        "--resume", str(linked / "ck.npz")]) == 0
    assert script.main(["--epochs", "3", "--checkpoint", str(linked / "ck.npz"),
                        "--resume", "ck.npz", "--quiet"]) == 0
    assert script.main(["--epochs", "4", "--resume", str(linked / "ck.npz"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert read_checkpoint(tmp_path / "real" / "ck.npz")[1]["trainer"]["epoch"] == 4


@pytest.mark.parametrize("flags, message", [
    (["--corpus", "ptb", "--text-file", "book.txt"],
     "--text-file is read only with --corpus text, not --corpus ptb"),
    (["--corpus", "synthetic", "--level", "char"], "--level char needs a text file"),
    (["--level", "char"], "--level char needs a text file"),
    (["--corpus", "text"], "--corpus text needs --text-file"),
    (["--corpus", "synthetic", "--data-dir", "."], "--data-dir names the PTB folder"),
])
def test_conflicting_data_flags_are_refused(flags, message, script, capsys):
    with pytest.raises(SystemExit) as info:
        script.main(flags)
    assert info.value.code == 2 and message in capsys.readouterr().err


# -- finding 7: memory ----------------------------------------------------------------------------


def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_estimate(script, capsys):
    assert usage_error(script, [*SMALL, "--hidden-size", "1000000"])
    err = capsys.readouterr().err
    assert err.startswith("error: this run needs about ") and "GiB of memory (parameters " in err
    assert "is available; use a smaller --hidden-size" in err and "--ignore-memory-check" in err


def test_the_memory_check_can_be_overridden(script, capsys, monkeypatch):
    monkeypatch.setattr(script, "available_bytes", lambda *estimate: 1000)
    assert usage_error(script, [*SMALL, "--quiet"])
    assert "but only 0 MiB is available" in capsys.readouterr().err
    assert script.main([*SMALL, "--quiet", "--ignore-memory-check"]) == 0


def test_memory_error_during_training_is_a_clear_error_and_writes_the_checkpoint(script, capsys,
                                                                                  monkeypatch):
    """The batch that ran out of memory is given back and the run's checkpoint
    written as it stood: 24 iterations, not the 20 of the last regular one."""
    from models import SimpleRnnlm

    calls = []
    forward = SimpleRnnlm.forward

    def failing(self, xs, ts):
        calls.append(1)
        if len(calls) == 25:
            raise MemoryError
        return forward(self, xs, ts)

    monkeypatch.setattr(SimpleRnnlm, "forward", failing)
    assert script.main([*SMALL, "--checkpoint", "ck.npz", "--checkpoint-every", "10",
                        "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == ("error: out of memory at epoch 1, iteration 25. Use a smaller batch, time or "
                   "hidden size, or free memory. The checkpoint ck.npz holds the run as it "
                   "stood: --resume ck.npz goes on from there.\n")
    assert read_checkpoint("ck.npz")[1]["trainer"]["iteration"] == 24
    monkeypatch.setattr(SimpleRnnlm, "forward", forward)
    assert script.main(["--resume", "ck.npz", "--quiet"]) == 0  # batch 25 trained now
    assert script.main([*SMALL, "--checkpoint", "straight.npz", "--quiet"]) == 0
    resumed, straight = read_checkpoint("ck.npz")[0], read_checkpoint("straight.npz")[0]
    assert resumed.keys() == straight.keys()
    for name in resumed:  # parameters, optimizer state, carried state: bit for bit
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)


def test_a_run_whose_end_ran_out_of_memory_saves_its_best_epoch_on_resume(script, capsys,
                                                                          monkeypatch):
    """No memory to put the best epoch's parameters back at the end: the run
    exits with nothing written, and its checkpoint (the last epoch's) holds
    the last parameters. --resume then had nothing to train and saved those,
    not the best epoch's that the run would have saved."""
    from common.trainer import RnnlmTrainer

    run = [*SMALL[:-4], "--epochs", "6", "--lr", "5", "--val", "--plot", "p.png", "--quiet"]
    assert script.main([*run, "--save", "straight.npz"]) == 0
    restore, calls = RnnlmTrainer._restore_best, []

    def no_memory_once(self, *args):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError
        restore(self, *args)

    monkeypatch.setattr(RnnlmTrainer, "_restore_best", no_memory_once)
    assert script.main([*run, "--checkpoint", "ck.npz", "--save", "m.npz"]) == 1
    assert "the model and the plot were not written" in capsys.readouterr().err
    assert script.main(["--resume", "ck.npz", "--save", "m.npz", "--quiet"]) == 0
    saved, best = np.load("m.npz"), np.load("straight.npz")
    for name in best.files:
        np.testing.assert_array_equal(saved[name], best[name], err_msg=name)


# -- finding 8: a checkpoint carries the run's settings -------------------------------------------

RUN = ["--corpus", "synthetic", "--corpus-size", "800", "--model", "lstm", "--batch-size", "5",
       "--time-size", "4", "--wordvec-size", "12", "--hidden-size", "10", "--lr", "0.5",
       "--optimizer", "momentum", "--max-grad", "1", "--epochs", "2", "--plot", "p.png",
       "--checkpoint", "ck.npz", "--quiet"]


def test_resume_alone_continues_the_run_with_its_settings(script, capsys):
    assert script.main([*RUN, "--epochs", "1"]) == 0
    _, meta = read_checkpoint("ck.npz")
    assert meta["settings"]["batch_size"] == 5 and meta["settings"]["model"] == "lstm"
    assert script.main(["--resume", "ck.npz", "--epochs", "2", "--quiet"]) == 0
    _, meta = read_checkpoint("ck.npz")
    assert meta["trainer"]["epoch"] == 2 and meta["model"] == "Rnnlm"
    assert meta["optimizer"] == "Momentum" and meta["settings"]["max_grad"] == 1.0


def test_epochs_is_the_total_of_the_run_also_when_resumed(script, capsys, monkeypatch):
    """--epochs counts the whole run: a run stopped in its second epoch and
    resumed with its own settings ends after epoch 3, not 3 epochs later; a
    finished run resumed trains nothing more, or up to a larger --epochs."""
    fit = script.RnnlmTrainer.fit
    with monkeypatch.context() as patch:  # stop the first run like Ctrl-C would, in epoch 2
        patch.setattr(script.RnnlmTrainer, "fit",
                      lambda self, *a, **kw: fit(self, *a, max_iters=45, **kw))
        assert script.main([*RUN, "--epochs", "3"]) == 0
    stopped = read_checkpoint("ck.npz")[1]["trainer"]
    assert (stopped["epoch"], stopped["fit_start_epoch"]) == (1, 0) and stopped["iteration"]

    assert script.main(["--resume", "ck.npz", "--quiet"]) == 0
    done = read_checkpoint("ck.npz")[1]["trainer"]
    assert done["history"]["epoch"] == [1, 2, 3] and done["fit_start_epoch"] is None
    assert script.main(["--resume", "ck.npz", "--quiet"]) == 0
    assert read_checkpoint("ck.npz")[1]["trainer"]["history"]["epoch"] == [1, 2, 3]
    assert script.main(["--resume", "ck.npz", "--epochs", "4", "--quiet"]) == 0
    assert read_checkpoint("ck.npz")[1]["trainer"]["history"]["epoch"] == [1, 2, 3, 4]


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "7"], "--batch-size 7 differs from the run in ck.npz (--batch-size 5)"),
    (["--time-size", "9"], "--time-size 9 differs from the run in ck.npz (--time-size 4)"),
    (["--model", "gru"], "--model gru differs from the run in ck.npz (--model lstm)"),
    (["--hidden-size", "11"], "--hidden-size 11 differs"),
    (["--corpus", "ptb"], "--corpus ptb differs from the run in ck.npz (--corpus synthetic)"),
    (["--optimizer", "adam"], "--optimizer adam differs from the run in ck.npz (--optimizer "
                              "momentum)"),
])
def test_resume_refuses_settings_that_change_the_run(flags, message, script, capsys):
    assert script.main([*RUN, "--epochs", "1"]) == 0
    before = Path("ck.npz").read_bytes()
    assert usage_error(script, ["--resume", "ck.npz", *flags])
    assert message in capsys.readouterr().err
    assert Path("ck.npz").read_bytes() == before


def test_a_new_lr_on_resume_is_applied_and_announced(script, capsys):
    assert script.main([*RUN, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert script.main(["--resume", "ck.npz", "--lr", "0.05", "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert err == "notice: --lr 0.05 replaces the checkpoint's learning rate 0.5 from here on\n"
    assert read_checkpoint("ck.npz")[1]["optimizer_scalars"]["lr"] == 0.05


def test_no_tie_where_the_sizes_differ_is_said_to_change_nothing(script, capsys):
    flags = [*RUN, "--model", "better", "--epochs", "1"]  # D = 12, H = 10: never tied
    assert script.main(flags) == 0
    capsys.readouterr()
    assert script.main(["--resume", "ck.npz", "--epochs", "2", "--no-tie"]) == 0
    assert ("notice: --no-tie changes nothing where --wordvec-size differs from --hidden-size"
            in capsys.readouterr().err)


def test_resume_refuses_untying_a_tied_run(script, capsys):
    assert script.main([*RUN, "--model", "better", "--wordvec-size", "10", "--epochs", "1"]) == 0
    assert usage_error(script, ["--resume", "ck.npz", "--no-tie"])
    assert "--no-tie differs from the run in ck.npz (--tie)" in capsys.readouterr().err  # a switch


def test_the_runs_own_lr_repeated_on_resume_keeps_its_schedule_going(script, capsys):
    # The same command with --resume added: the schedule's rate goes on, not --lr's again.
    flags = [*RUN, "--optimizer", "sgd", "--lr-halve-from", "2", "--epochs", "2"]
    assert script.main(flags) == 0
    capsys.readouterr()
    assert script.main([*flags[:-1], "3", "--resume", "ck.npz"]) == 0
    assert "replaces" not in capsys.readouterr().err
    assert read_checkpoint("ck.npz")[1]["trainer"]["history"]["lr"] == [0.5, 0.25, 0.125]


def test_a_new_lr_halve_from_on_resume_halves_before_its_first_epoch(script, capsys):
    assert script.main([*RUN, "--optimizer", "sgd", "--epochs", "2"]) == 0
    assert script.main(["--resume", "ck.npz", "--epochs", "4", "--lr-halve-from", "3"]) == 0
    lrs = read_checkpoint("ck.npz")[1]["trainer"]["history"]["lr"]
    assert lrs == [0.5, 0.5, 0.25, 0.125]  # as a run given it from the start
    assert script.main([*RUN, "--optimizer", "sgd", "--epochs", "4", "--lr-halve-from", "3",
                        "--checkpoint", "fresh.npz"]) == 0
    assert read_checkpoint("fresh.npz")[1]["trainer"]["history"]["lr"] == lrs


@pytest.mark.parametrize("schedule", [["--patience", "2"], ["--lr-decay", "2"]])
def test_no_val_with_a_schedule_that_validates_is_refused(schedule, script, capsys):
    assert usage_error(script, [*SMALL, *schedule, "--no-val"])
    assert f"{schedule[0]} validates every epoch, which --no-val turns off" in \
        capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--dropout", "0.5"], ["--num-layers", "1"], ["--no-tie"]])
def test_resume_takes_a_flag_the_runs_model_ignores_with_its_notice(flags, script, capsys):
    # An lstm run has no dropout, layers or tying to differ in.
    assert script.main([*RUN, "--epochs", "1", "--dropout", "0.2", "--num-layers", "3"]) == 0
    capsys.readouterr()
    assert script.main(["--resume", "ck.npz", "--epochs", "2", *flags]) == 0
    assert "is used only by --model better; --model lstm ignores it" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists("/dev/tty") and os.name != "posix", reason="terminals")
def test_resuming_a_piped_run_at_a_terminal_says_to_pipe_the_text_again(script, capsys,
                                                                        monkeypatch):
    Path("book.txt").write_text("the cat sat on the mat . " * 100)
    assert script.main(["--text-file", "book.txt", "--batch-size", "4", "--time-size", "5",
                        "--hidden-size", "8", "--wordvec-size", "8", "--epochs", "1",
                        "--plot", "none", "--checkpoint", "ck.npz", "--quiet"]) == 0
    monkeypatch.setattr(script, "is_terminal", lambda path: path.endswith("book.txt"))
    assert usage_error(script, ["--resume", "ck.npz", "--epochs", "2"])
    err = capsys.readouterr().err
    assert "book.txt is a terminal: the run in ck.npz read its text from a pipe" in err
    assert "pipe the same text in again" in err


# -- findings 1 and 10: divergence, messages, progress --------------------------------------------


def test_a_diverging_learning_rate_exits_1_with_a_clear_error(script, capsys):
    assert script.main([*SMALL, "--lr", "1e10", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the loss became ") and "--max-grad" in err
    assert "--on-nan skip" in err  # the flag that would drop such batches


def test_a_loss_that_diverges_before_any_update_blames_the_initial_weights(script, capsys):
    """No update has been made, so a smaller learning rate would not help; and
    NumPy's overflow warnings do not come before the one line that says so."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a warning shown would fail the run
        assert script.main([*SMALL, "--model", "lstm", "--init-scale", "1e30", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "at epoch 1, iteration 1, before any update: the initial weights" in err
    assert "--init-scale" in err and "learning rate" not in err


def test_on_nan_skip_drops_diverging_batches_and_stops_after_ten_in_a_row(script, capsys):
    assert script.main([*SMALL, "--lr", "1e10", "--quiet", "--on-nan", "skip"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the loss became ")
    assert "(10 batches in a row were skipped)" in err
    assert "--on-nan skip" not in err  # it is in effect already: no advice to give it


def test_progress_lines_every_n_iterations_when_stdout_is_not_a_terminal(script, capsys):
    assert script.main([*SMALL, "--log-every", "10"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "iteration" in line]
    # 799 positions // (4 x 5) = 39 iterations: lines at 10, 20 and 30
    assert [line.split("|")[2].strip() for line in lines] == [
        "iteration 10/39", "iteration 20/39", "iteration 30/39"]
    assert all(" | ppl " in line for line in lines[1:])  # once --eval-interval 20 is reached


def test_a_line_says_when_the_best_parameters_were_restored(script, capsys):
    assert script.main([*SMALL, "--val", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "restored the best parameters: epoch " in out and "validation ppl" in out


# -- finding 9: --help ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, first, default", [
    ("train_rnnlm", "Train a recurrent language model", "from there on (default: 0.1)"),
    ("reproduce_textbook_lstm", "Reproduction 1: the textbook's LSTM", "(default: 20.0)"),
    ("reproduce_zaremba_small", "Reproduction 2: the small configuration", "(default: 13)"),
])
def test_help_describes_the_script_shows_defaults_and_starts_nothing(name, first, default,
                                                                     tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), "--help"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and os.listdir(tmp_path) == []
    text = result.stdout
    assert first in " ".join(text.split())
    assert default in text or default in " ".join(text.split())
    blocks, current = [], None
    for line in text.split("\noptions:", 1)[1].splitlines():
        if line.startswith("  -"):
            current = [line]
            blocks.append(current)
        elif line.startswith("    ") and current is not None:
            current.append(line)
        else:
            current = None
    assert len(blocks) > 25
    for block in blocks:
        joined = " ".join(" ".join(block).split())
        assert "(default:" in joined or joined.startswith("-h, --help"), f"{name}: {joined}"


def test_plot_none_trains_without_a_plot(script, tmp_path):
    """'--plot none' turns the plot off, as in train_seq2seq.py."""
    argv = [*SMALL[:-2], "--plot", "none", "--quiet"]
    assert script.main(argv) == 0
    assert not list(tmp_path.glob("*.png"))


def test_a_text_too_short_to_split_is_a_usage_error(script, tmp_path, capsys):
    """The message names the file, the length that splits and, at word level,
    the level that gives more tokens."""
    (tmp_path / "tiny.txt").write_text("ab", encoding="utf-8")
    assert usage_error(script, ["--text-file", "tiny.txt", "--level", "char", "--plot", "none"])
    err = capsys.readouterr().err
    assert "--text-file tiny.txt: a corpus of 2 tokens is too short to split" in err
    assert "(about 40 tokens or more)" in err and "--level char" not in err
    (tmp_path / "words.txt").write_text("a b c d e f", encoding="utf-8")
    assert usage_error(script, ["--text-file", "words.txt", "--plot", "none"])
    assert "--level char makes a token of each character" in capsys.readouterr().err


def test_a_file_given_as_data_dir_is_called_a_file(script, capsys):
    Path("afile").write_text("x")
    assert usage_error(script, ["--data-dir", "afile", "--plot", "none"])
    assert "error: --data-dir afile: a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--save", "--checkpoint", "--resume"])
def test_an_empty_file_flag_is_refused(script, capsys, flag):
    """An unset shell variable (--save "$OUT") would otherwise lose the model."""
    assert usage_error(script, [*SMALL, flag, ""])
    assert f"{flag} is empty" in capsys.readouterr().err


def test_resume_refuses_another_seed_and_names_none_as_given(script, capsys):
    assert script.main([*RUN, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert usage_error(script, ["--resume", "ck.npz", "--seed", "3"])
    assert "--seed 3 differs from the run in ck.npz (--seed 0)" in capsys.readouterr().err
    assert script.main(["--resume", "ck.npz", "--epochs", "2", "--plot", "none"]) == 0
    assert "notice: --plot none replaces the checkpoint's" in capsys.readouterr().err


def test_an_output_in_a_folder_not_there_yet_is_written_with_a_notice(script, capsys):
    # The folder was made without a word: a mistyped one took the model unseen.
    assert script.main([*SMALL, "--save", "runs/new/m.npz", "--quiet"]) == 0
    assert (f"notice: --save: the folder {os.path.abspath('runs/new')} is not there; it is "
            f"made to write m.npz in it") in capsys.readouterr().err
    assert Path("runs/new/m.npz").is_file()
    assert script.main([*SMALL, "--save", "runs/new/m.npz", "--quiet"]) == 0
    assert "is not there" not in capsys.readouterr().err  # there now: nothing to say
    # The checkpoint's too (its lock, made first beside it, made the folder unseen).
    assert script.main([*SMALL, "--checkpoint", "runs/ck/run.npz", "--quiet"]) == 0
    assert (f"notice: --checkpoint: the folder {os.path.abspath('runs/ck')} is not there; it "
            f"is made to write run.npz in it") in capsys.readouterr().err


def test_save_does_not_replace_a_checkpoint_without_overwrite(script, capsys):
    """A model saved over a checkpoint would end the run it holds."""
    assert script.main([*SMALL, "--checkpoint", "run.npz", "--quiet"]) == 0
    kept = Path("run.npz").read_bytes()
    assert usage_error(script, [*SMALL, "--save", "run.npz", "--quiet"])
    assert ("--save run.npz is a training checkpoint (a run --resume continues): a model saved "
            "over it would end that run; give another name, or pass --overwrite") \
        in capsys.readouterr().err
    assert Path("run.npz").read_bytes() == kept
    assert script.main([*SMALL, "--save", "model.npz", "--quiet"]) == 0
    assert script.main([*SMALL, "--save", "model.npz", "--quiet"]) == 0  # a model: replaced
    assert script.main([*SMALL, "--save", "run.npz", "--overwrite", "--quiet"]) == 0
    assert Path("run.npz").read_bytes() != kept
    # Nor another file than a model (it was replaced by a zip, without a word).
    Path("notes.md").write_text("some notes\n")
    assert usage_error(script, [*SMALL, "--save", "notes.md", "--quiet"])
    assert ("--save notes.md exists already and is not a saved model (another file?): give "
            "another name, or pass --overwrite to replace it") in capsys.readouterr().err
    assert Path("notes.md").read_text() == "some notes\n"
    Path("empty.npz").write_bytes(b"")  # nothing to lose: replaced
    assert script.main([*SMALL, "--save", "empty.npz", "--quiet"]) == 0


def test_flags_the_model_does_not_use_are_announced(script, capsys):
    argv = [*SMALL, "--model", "lstm", "--num-layers", "3", "--dropout", "0.2", "--no-tie",
            "--overwrite", "--quiet", "--log-every", "2", "--plot", "none"]
    assert script.main(argv) == 0
    err = capsys.readouterr().err
    for name in ("--num-layers", "--dropout", "--no-tie"):
        assert f"notice: {name} is used only by --model better; --model lstm ignores it" in err
    assert "notice: --overwrite concerns only a --checkpoint file" in err
    assert "notice: --quiet turns off the progress lines of --log-every" in err
    assert script.main([*SMALL, "--model", "lstm", "--tie", "--quiet"]) == 0
    assert capsys.readouterr().err == ("notice: --tie is used only by --model better; --model "
                                       "lstm ignores it\n")


def test_the_defaults_of_an_unused_flag_are_not_announced(script, capsys):
    assert script.main([*SMALL, "--model", "gru", "--quiet"]) == 0
    assert "notice" not in capsys.readouterr().err


def test_resuming_a_finished_run_says_that_nothing_is_trained(script, capsys):
    assert script.main([*RUN, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert script.main(["--resume", "ck.npz", "--quiet"]) == 0
    assert ("notice: the run in ck.npz has reached --epochs 1 already, so nothing is trained; "
            "give a larger --epochs") in capsys.readouterr().err


def test_resuming_a_finished_run_saves_the_model_its_last_call_ended_with(script):
    """A last call without validation keeps what it trained, and so does
    the same run resumed with nothing left to train (it saved the best
    epoch of an earlier call instead)."""
    assert script.main([*RUN, "--val", "--epochs", "2", "--save", "m1.npz"]) == 0
    assert script.main(["--resume", "ck.npz", "--no-val", "--epochs", "3", "--save",
                        "m2.npz"]) == 0
    assert script.main(["--resume", "ck.npz", "--no-val", "--epochs", "3", "--save",
                        "m3.npz"]) == 0
    m1, m2, m3 = (dict(np.load(f"m{i}.npz")) for i in (1, 2, 3))
    assert all(np.array_equal(m2[k], m3[k]) for k in m2 if not k.startswith("__"))
    assert not all(np.array_equal(m1[k], m2[k]) for k in m1 if not k.startswith("__"))


def test_resuming_past_epochs_trains_nothing_and_keeps_the_checkpoint(script, capsys,
                                                                      monkeypatch):
    """A checkpoint written in the middle of a longer run (here by max_iters,
    as by Ctrl-C): resumed with fewer --epochs than it has done, nothing is
    trained and the checkpoint (its run, its settings) stays as it was."""
    fit = script.RnnlmTrainer.fit
    with monkeypatch.context() as patch:  # stop after 2.5 epochs of the 5 asked
        patch.setattr(script.RnnlmTrainer, "fit",
                      lambda self, *a, **k: fit(self, *a, **{**k, "max_iters": 2 * 40 + 20}))
        assert script.main([*RUN, "--epochs", "5"]) == 0
    meta = read_checkpoint("ck.npz")[1]
    assert (meta["trainer"]["epoch"], meta["trainer"]["fit_start_epoch"]) == (2, 0)
    kept = Path("ck.npz").read_bytes()
    capsys.readouterr()
    assert script.main(["--resume", "ck.npz", "--epochs", "2", "--quiet"]) == 0
    assert "has reached --epochs 2 already, so nothing is trained" in capsys.readouterr().err
    assert Path("ck.npz").read_bytes() == kept
    assert script.main(["--resume", "ck.npz", "--quiet"]) == 0  # its own 5 epochs: goes on
    assert read_checkpoint("ck.npz")[1]["trainer"]["epoch"] == 5


def test_held_out_flags_on_a_demo_corpus_say_the_vocabulary_grows_and_resume_keeps_it(
        script, capsys):
    """--val and --eval score held-out text, which needs the whole vocabulary:
    said for a fresh run; a resumed run keeps its model's vocabulary, and is
    refused the flags when that is the demo's smaller one."""
    demo = ["--corpus", "synthetic", "--corpus-size", "300", "--hidden-size", "8",
            "--wordvec-size", "8", "--epochs", "1", "--plot", "none", "--quiet"]
    assert script.main([*demo, "--checkpoint", "small.npz"]) == 0
    assert "notice" not in capsys.readouterr().err
    assert script.main([*demo, "--val", "--checkpoint", "whole.npz"]) == 0
    assert re.search(r"notice: --val scores held-out text, so the model has the whole "
                     r"vocabulary \([\d,]+ words\), not the \d+ up to the largest id of the "
                     r"first --corpus-size 300 words", capsys.readouterr().err)
    small = read_checkpoint("small.npz")[1]["config"]["vocab_size"]
    whole = read_checkpoint("whole.npz")[1]["config"]["vocab_size"]
    assert small < whole
    assert usage_error(script, ["--resume", "small.npz", "--epochs", "2", "--eval"])
    assert (f"--eval scores held-out text, which needs the whole vocabulary ({whole:,} words), "
            f"but the run in small.npz was built on the {small:,} words of its --corpus-size "
            f"words: drop --eval to continue it") in capsys.readouterr().err
    assert script.main(["--resume", "whole.npz", "--epochs", "2", "--quiet"]) == 0  # no --val
    assert read_checkpoint("whole.npz")[1]["trainer"]["epoch"] == 2


def test_no_memory_to_evaluate_or_resume_is_said_in_a_line(script, capsys, monkeypatch):
    """--eval's 10 x 35 rows ran out of memory with a traceback after the model
    was saved; so did reading a checkpoint to resume."""
    demo = ["--corpus", "synthetic", "--corpus-size", "300", "--hidden-size", "8",
            "--wordvec-size", "8", "--epochs", "1", "--plot", "none", "--quiet"]

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(script, "eval_perplexity", no_memory)
    assert script.main([*demo, "--eval", "--save", "m.npz", "--checkpoint", "ck.npz"]) == 1
    assert ("error: not enough memory to score the valid text (10 rows x 35 steps of a "
            "") in capsys.readouterr().err
    assert Path("m.npz").is_file()
    monkeypatch.setattr(script.RnnlmTrainer, "resume", no_memory)
    assert usage_error(script, ["--resume", "ck.npz", "--epochs", "2"])
    assert "error: cannot resume: not enough memory to read ck.npz (it is kept as it is)" in \
        capsys.readouterr().err


def test_at_character_level_the_vocabulary_notice_counts_characters(script, capsys):
    """It said 'words' of a vocabulary of characters."""
    Path("t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 60 + "XYZ! " * 40)
    assert script.main(["--corpus", "text", "--text-file", "t.txt", "--level", "char",
                        "--corpus-size", "300", "--hidden-size", "8", "--wordvec-size", "8",
                        "--epochs", "1", "--plot", "none", "--quiet", "--val"]) == 0
    assert re.search(r"the whole vocabulary \([\d,]+ characters\), not the \d+ up to the "
                     r"largest id of the first --corpus-size 300 characters",
                     capsys.readouterr().err)


def test_an_early_stopped_run_resumed_with_its_patience_trains_nothing(script, capsys):
    argv = ["--corpus", "synthetic", "--corpus-size", "800", "--batch-size", "5",
            "--time-size", "4", "--hidden-size", "10", "--wordvec-size", "12", "--lr", "5",
            "--val", "--epochs", "20", "--patience", "1", "--checkpoint", "ck.npz",
            "--plot", "none", "--quiet"]
    assert script.main(argv) == 0
    epoch = read_checkpoint("ck.npz")[1]["trainer"]["epoch"]
    assert epoch < 20  # stopped early
    kept = Path("ck.npz").read_bytes()
    capsys.readouterr()
    assert script.main(["--resume", "ck.npz", "--quiet"]) == 0
    assert (f"notice: the run in ck.npz stopped early after epoch {epoch} (1 epoch without a "
            "better validation perplexity, --patience 1), so nothing is trained; give a larger "
            "--patience to go on") in capsys.readouterr().err
    assert Path("ck.npz").read_bytes() == kept
    assert script.main(["--resume", "ck.npz", "--patience", "3", "--quiet"]) == 0
    assert read_checkpoint("ck.npz")[1]["trainer"]["epoch"] > epoch


def test_resuming_a_run_whose_text_file_is_gone_says_so(script, capsys):
    Path("book.txt").write_text("the cat sat on the mat . " * 100)
    assert script.main(["--text-file", "book.txt", "--batch-size", "4", "--time-size", "5",
                        "--hidden-size", "8", "--wordvec-size", "8", "--plot", "none",
                        "--checkpoint", "ck.npz", "--epochs", "1", "--quiet"]) == 0
    os.rename("book.txt", "moved.txt")
    assert usage_error(script, ["--resume", "ck.npz", "--epochs", "2"])
    assert ("book.txt, is gone (moved or deleted?): put it back there, or give its new place "
            "with --text-file, to resume the run") in capsys.readouterr().err


def test_a_run_whose_text_file_moved_resumes_from_its_new_place(script, capsys):
    # (It was refused as another --text-file, though the SHA-256 shows the same text.)
    run = ["--batch-size", "4", "--time-size", "5", "--hidden-size", "8", "--wordvec-size",
           "8", "--plot", "none", "--quiet"]
    Path("book.txt").write_text("the cat sat on the mat . " * 100)
    assert script.main(["--text-file", "book.txt", *run, "--epochs", "2", "--save",
                        "whole.npz"]) == 0
    assert script.main(["--text-file", "book.txt", *run, "--epochs", "1", "--checkpoint",
                        "ck.npz"]) == 0
    os.rename("book.txt", "moved.txt")
    capsys.readouterr()
    assert script.main(["--resume", "ck.npz", "--text-file", "moved.txt", "--epochs", "2",
                        "--save", "resumed.npz", "--quiet"]) == 0
    assert (f"notice: the run's text is read from moved.txt instead of "
            f"{os.path.abspath('book.txt')}; it must be the same text (checked)"
            in capsys.readouterr().err)
    whole, resumed = np.load("whole.npz"), np.load("resumed.npz")
    assert all(np.array_equal(whole[k], resumed[k]) for k in whole.files)
    # Its checkpoints now name the new place; another text there is refused.
    assert read_checkpoint("ck.npz")[1]["settings"]["text_file"] == os.path.abspath("moved.txt")
    Path("other.txt").write_text("the mat sat on the cat . " * 100)
    assert usage_error(script, ["--resume", "ck.npz", "--text-file", "other.txt",
                                "--epochs", "3"])
    assert "other.txt is not the text the run began with" in capsys.readouterr().err


def test_log_every_on_a_terminal_is_announced_as_unused(script, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert script.main([*SMALL, "--log-every", "5"]) == 0
    assert "notice: --log-every writes lines only when stdout is not a terminal" in (
        capsys.readouterr().err)


def test_running_out_of_memory_in_training_writes_the_model_as_a_stop_does(script, capsys,
                                                                           memory_runs_out):
    # (Without a checkpoint, --save and --plot were not written: the epochs done lost.)
    from models import SimpleRnnlm

    memory_runs_out(SimpleRnnlm, 60)
    run = [*SMALL[:-4], "--epochs", "3", "--plot", "p.png", "--save", "m.npz", "--quiet"]
    assert script.main(run) == 1
    assert "error: out of memory at epoch " in capsys.readouterr().err
    assert os.path.exists("m.npz") and os.path.exists("p.png")


def test_no_memory_to_write_the_model_either_is_an_error_line(script, capsys, memory_runs_out,
                                                             monkeypatch):
    from models import SimpleRnnlm

    def no_memory(*args, **kwargs):
        raise MemoryError

    memory_runs_out(SimpleRnnlm, 60)
    monkeypatch.setattr(SimpleRnnlm, "save_params", no_memory)
    assert script.main([*SMALL[:-4], "--epochs", "3", "--save", "m.npz", "--quiet"]) == 1
    assert capsys.readouterr().err.endswith("error: no memory was left to write the model and "
                                            "the plot either\n")


def test_an_update_stopped_part_way_by_memory_writes_no_model(script, capsys, monkeypatch):
    # (The trainer refused to checkpoint parameters of no step, but --save wrote them.)
    from common.optimizer import SGD

    apply, calls = SGD._apply, []

    def half(self, params, grads, lr):
        calls.append(1)
        if len(calls) == 60:
            params[0] -= lr * grads[0]  # the first array stepped, then no memory
            raise MemoryError
        return apply(self, params, grads, lr)

    monkeypatch.setattr(SGD, "_apply", half)
    assert script.main([*SMALL[:-4], "--epochs", "3", "--save", "m.npz", "--quiet"]) == 1
    assert "out of memory" in capsys.readouterr().err and not os.path.exists("m.npz")
