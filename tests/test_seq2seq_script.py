"""scripts/train_seq2seq.py end to end on a small file of pairs: training,
accuracy and answers printed, plots and the saved model written, resuming
from a checkpoint, evaluating a saved model, and refused options."""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from common.checkpoint import read_checkpoint
from common.memory import NotEnoughMemory
from models import load_model

from script_loader import load_script

SMALL = ["--epochs", "1", "--batch-size", "32", "--wordvec-size", "4", "--hidden-size", "8",
         "--quiet"]


def script():
    return load_script("train_seq2seq")


@pytest.fixture
def pairs_file(tmp_path):
    """400 questions 'abc' with the answer 'cba' (a reversal task), tab-separated."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(400):
        word = "".join(rng.choice(list("abcdef"), size=rng.integers(2, 5)))
        lines.append(f"{word}\t{word[::-1]}")
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_trains_prints_plots_and_saves(pairs_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = script().main(["--data", pairs_file, "--model", "attention", *SMALL, "--beam", "2",
                          "--plot", str(out / "acc.png"),
                          "--attention-plot", str(out / "att.png"),
                          "--save", str(out / "model.npz")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch 1/1 | accuracy" in printed and "(beam 2)" in printed
    assert printed.count("  Q ") == 3 and ("right" in printed or "WRONG" in printed)
    assert (out / "acc.png").stat().st_size > 1000
    assert (out / "att.png").stat().st_size > 1000
    model, meta = load_model(out / "model.npz")
    assert type(model).__name__ == "AttentionSeq2seq" and meta["vocab"][0] is not None
    assert meta["task"] == pairs_file and 0 <= meta["accuracy"] <= 1

    # The saved model evaluates again, with the same accuracy.
    assert script().main(["--data", pairs_file, "--model", "attention", *SMALL[2:],
                          "--epochs", "0", "--load", str(out / "model.npz"), "--plot", "none",
                          "--attention-plot", "none"]) == 0
    again = capsys.readouterr().out
    assert f"accuracy {meta['accuracy']:.4f} (greedy)" in again


def test_resume_continues_the_run(pairs_file, tmp_path, capsys):
    ckpt = str(tmp_path / "run.ckpt.npz")
    common = ["--plot", "none", "--checkpoint", ckpt]
    assert script().main(["--data", pairs_file, "--model", "peeky", "--reverse", *SMALL,
                          *common]) == 0
    first = capsys.readouterr().out
    assert "epoch 1/1" in first
    from common.checkpoint import read_checkpoint

    history = read_checkpoint(ckpt)[1]["settings"]["history"]
    assert len(history["greedy"]) == 1 and f"accuracy {history['greedy'][0]:.4f}" in first
    # Resumed with only the new epoch count: the checkpoint supplies the rest.
    assert script().main(["--resume", ckpt, "--epochs", "2", "--quiet", "--plot", "none"]) == 0
    second = capsys.readouterr().out
    assert "PeekySeq2seq" in second and "(reversed)" in second
    assert "epoch 2/2" in second and "epoch 1/2" not in second

    # A flag that would change the run is refused, not silently overridden;
    # one that repeats the run's setting is fine.
    for flags, message in ((["--model", "plain"], "--model plain differs from the run's "
                                                  "--model peeky"),
                           (["--lr", "0.01"], "--lr 0.01 differs"),
                           (["--no-clip"], "--no-clip differs"),
                           (["--task", "addition"], "--task addition differs from the run's "
                                                    f"--data {pairs_file};"),
                           (["--bidirectional"], "--bidirectional differs from the run's no "
                                                 "--bidirectional;"),
                           (["--lr-halve-from", "2"], "--lr-halve-from 2 differs from the "
                                                      "run's no --lr-halve-from;"),
                           (["--eval-interval", "7"], "--eval-interval 7 differs from the "
                                                      "run's --eval-interval 20;")):
        with pytest.raises(SystemExit) as exc:
            script().parse_args(["--resume", ckpt, *flags])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    args = script().parse_args(["--resume", ckpt, "--model", "peeky", "--epochs", "3"])
    assert (args.model, args.reverse, args.epochs) == ("peeky", True, 3)

    # The same two epochs in one run give the same accuracy.
    assert script().main(["--data", pairs_file, "--model", "peeky", "--reverse", *SMALL[2:],
                          "--epochs", "2", "--plot", "none"]) == 0
    straight = capsys.readouterr().out
    last = [line for line in straight.splitlines() if line.startswith("epoch 2/2")][0]
    assert last.split("|")[1] == [line for line in second.splitlines()
                                  if line.startswith("epoch 2/2")][0].split("|")[1]


@pytest.mark.parametrize("argv, message", [
    (["--model", "plain", "--bidirectional"], "needs --model attention"),
    (["--model", "attention", "--bidirectional", "--hidden-size", "7"], "even --hidden-size"),
    (["--lr", "-1"], "must be a finite number > 0"),
    (["--lr", "nan"], "must be a finite number > 0"),
    (["--epochs", "-2"], "must be at least 0"),
    (["--beam", "0"], "must be at least 1"),
    (["--save", "model.pkl"], "must end in .npz"),
    (["--data", "no/such/file.txt"], "no such file"),
    (["--data", "."], "a directory, not a file"),
    pytest.param(["--load", "/dev/null"], "/dev/null: a character device, not a file; save "
                 "its content to a file", marks=pytest.mark.skipif(os.name != "posix",
                                                                   reason="/dev/null")),
    (["--resume", __file__, "--load", __file__], "--load would be ignored"),
    (["--no-clip", "--max-grad", "3"], "contradict each other"),
    (["--beam", "5", "--eval-batch", "4"], "wider than --eval-batch 4"),
    (["--save", "same.npz", "--checkpoint", "same.npz"], "name the same file"),
    (["--data-seed", str(2**32)], "must be at most 4294967295"),
    (["--lr-halve-from", "1"], "must be at least 2"),
    (["--model", "peeky", "--attention-plot", "a.png"], "--attention-plot needs --model attention"),
    (["--task", "date", "--data", "x.txt"], "not allowed with"),
    (["--plot", "acc.txt"], "plot format"),
    (["--epochs", "0"], "--epochs 0 trains nothing, and there is no model to evaluate: give "
                        "--load FILE"),
    # (It used to be ignored without a word: no checkpoint was written.)
    (["--load", __file__, "--epochs", "0", "--checkpoint", "run.npz"],
     "--checkpoint run.npz with --epochs 0: nothing is trained, so no checkpoint would be "
     "written"),
    # --overwrite is about earlier runs' files, never the run's own inputs.
    (["--data", __file__, "--checkpoint", __file__, "--overwrite"],
     "is the --data file: writing it would destroy that file"),
    (["--load", __file__, "--checkpoint", __file__, "--overwrite"],
     "is the --load file: writing it would destroy that file"),
])
def test_refused_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        script().parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        script().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # as read, whatever the wrapping
    for default in ("default: plain", "default: 128", "default: 0.001", "default: 5.0",
                    "default: 25", "default: 16", "default: 1984", "default: never"):
        assert default in text, default
    # A default given in words is not followed by argparse's own "(default: None)".
    assert "default: None" not in text
    assert "(default: addition, unless --data)" in text
    assert "characters.." not in text


def test_lr_halve_from(pairs_file, tmp_path):
    from common.checkpoint import read_checkpoint

    ckpt = str(tmp_path / "halve.ckpt.npz")
    assert script().main(["--data", pairs_file, *SMALL[2:], "--epochs", "2", "--plot", "none",
                          "--lr-halve-from", "2", "--checkpoint", ckpt]) == 0
    _, meta = read_checkpoint(ckpt)
    assert meta["optimizer_scalars"]["lr"] < 0.001
    assert meta["settings"]["lr_halve_from"] == 2


def test_epochs_trains_that_many_epochs_also_when_resumed(pairs_file, tmp_path):
    """One fit(max_epoch=1) call an epoch, as the book's loop: --epochs 2 trains
    two epochs, and a resumed run goes on to --epochs, not further."""
    from common.checkpoint import read_checkpoint

    ckpt = str(tmp_path / "run.ckpt.npz")
    assert script().main(["--data", pairs_file, *SMALL[2:], "--epochs", "2", "--plot", "none",
                          "--checkpoint", ckpt]) == 0
    assert read_checkpoint(ckpt)[1]["trainer"]["history"]["epoch"] == [1, 2]
    assert script().main(["--resume", ckpt, "--epochs", "3", "--quiet", "--plot", "none"]) == 0
    assert read_checkpoint(ckpt)[1]["trainer"]["history"]["epoch"] == [1, 2, 3]


@pytest.mark.parametrize("pairs, extra, message", [
    (40, [], "fewer than one batch of --batch-size 128"),  # 36 to train on
    (5, ["--batch-size", "2"], "leaves no test pairs"),  # a tenth of 5 is none
])
def test_too_few_pairs_is_an_error_before_training(tmp_path, capsys, pairs, extra, message):
    path = tmp_path / "few.tsv"
    path.write_text("".join(f"{i}\t{i}\n" for i in range(pairs)), encoding="utf-8")
    argv = ["--data", str(path), "--epochs", "1", "--plot", "none", *extra]
    assert script().main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("flag", ["--save", "--plot", "--checkpoint", "--attention-plot"])
def test_an_unwritable_output_is_refused_before_training(flag, tmp_path, capsys):
    """Every file the run will write is checked before it starts: a path
    under a file, and a folder given as the file."""
    (tmp_path / "a_file").write_text("")
    name = {"--save": "m.npz", "--checkpoint": "run.npz"}.get(flag, "p.png")
    (tmp_path / name).mkdir()  # a folder with a file's name
    for path, message in ((tmp_path / "a_file" / name, "is a file, not a folder"),
                          (tmp_path / name, "is a folder")):
        with pytest.raises(SystemExit) as exc:
            script().parse_args(["--model", "attention", flag, str(path)])
        assert exc.value.code == 2 and message in capsys.readouterr().err


def test_another_runs_checkpoint_is_not_overwritten(pairs_file, tmp_path, capsys):
    """A new run refuses to replace an existing checkpoint (an earlier run's
    work) unless told to with --overwrite; resuming it writes it, of course."""
    ckpt = str(tmp_path / "run.npz")
    argv = ["--data", pairs_file, *SMALL, "--plot", "none", "--checkpoint", ckpt]
    assert script().main(argv) == 0
    before = (tmp_path / "run.npz").read_bytes()
    with pytest.raises(SystemExit) as exc:
        script().main(argv)
    assert exc.value.code == 2
    assert "exists already" in capsys.readouterr().err
    assert (tmp_path / "run.npz").read_bytes() == before
    assert script().main([*argv, "--overwrite"]) == 0
    assert script().main(["--resume", ckpt, "--epochs", "2", "--quiet", "--plot", "none"]) == 0
    capsys.readouterr()
    # Resuming with no epochs left says so rather than doing nothing in silence.
    assert script().main(["--resume", ckpt, "--epochs", "2", "--quiet", "--plot", "none"]) == 0
    assert "nothing to train: --epochs 2 counts all" in capsys.readouterr().out


def terminated_while_scoring(name="SIGTERM"):
    """The script, sending itself the signal ``name`` each time it scores the test pairs."""
    import signal

    module = script()
    real = module.seq2seq_correct

    def scoring(*args, **kwargs):
        os.kill(os.getpid(), getattr(signal, name))
        return real(*args, **kwargs)

    module.seq2seq_correct = scoring
    return module


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_while_the_last_epoch_is_scored_still_stops_the_run(name, code, pairs_file,
                                                                     tmp_path, capsys,
                                                                     sigterm_raises):
    """The run's files are written (it had ended), and the exit status says
    it was asked to stop (it said 0)."""
    module = terminated_while_scoring(name)
    model = tmp_path / "m.npz"
    assert module.main(["--data", pairs_file, *SMALL, "--plot", "none",
                        "--save", str(model)]) == code
    assert f"stopped by {name} after epoch 1, its files written" in capsys.readouterr().err
    assert model.is_file()


def test_a_resumed_run_keeps_its_on_nan_and_eval_interval(pairs_file, tmp_path):
    """Both were left out of the checkpoint: a resumed --on-nan skip run
    stopped on the batch it was started to skip, and its loss was recorded
    every 20 iterations from then on."""
    ckpt = str(tmp_path / "run.npz")
    assert script().main(["--data", pairs_file, *SMALL, "--plot", "none", "--checkpoint", ckpt,
                          "--on-nan", "skip", "--eval-interval", "7"]) == 0
    args = script().parse_args(["--resume", ckpt, "--epochs", "2"])
    assert (args.on_nan, args.eval_interval) == ("skip", 7)
    assert script().parse_args(["--resume", ckpt, "--on-nan", "raise"]).on_nan == "raise"


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_stops_the_run_with_a_checkpoint_and_its_exit_code(sig, code, pairs_file,
                                                                    tmp_path, capsys,
                                                                    sigterm_raises):
    """Ctrl-C (130), SIGTERM (143) and SIGHUP (129, the terminal closed) stop
    at an iteration boundary, after writing the checkpoint the message names."""
    import signal

    module = script()

    class Stopping(module.MODELS["plain"]):
        def forward(self, xs, ts):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 3:
                os.kill(os.getpid(), getattr(signal, sig))
            return super().forward(xs, ts)

    module.MODELS = {**module.MODELS, "plain": Stopping}
    ckpt = tmp_path / "run.npz"
    argv = ["--data", pairs_file, *SMALL, "--plot", "none", "--checkpoint", str(ckpt)]
    assert module.main(argv) == code
    assert ckpt.is_file()
    assert f"resume with --resume {ckpt}" in capsys.readouterr().err


def test_resuming_partway_through_an_epoch_past_epochs_scores_what_it_saves(
        pairs_file, tmp_path, monkeypatch, capsys):
    """A checkpoint written partway through an epoch, resumed with --epochs that
    ends before it: nothing is trained, and --save was written with the
    partial epoch's parameters but the last whole epoch's accuracy."""
    import signal

    from models import Seq2seq, load_model

    forward, calls = Seq2seq.forward, []
    per_epoch = 360 // 32  # 400 pairs, 40 of them the test's, batch 32

    def stopping(self, xs, ts):  # Ctrl-C at the third batch of epoch 2
        calls.append(1)
        if len(calls) == per_epoch + 3:
            os.kill(os.getpid(), signal.SIGINT)
        return forward(self, xs, ts)

    monkeypatch.setattr(Seq2seq, "forward", stopping)
    ckpt, saved = tmp_path / "run.npz", tmp_path / "m.npz"
    argv = ["--data", pairs_file, *SMALL, "--epochs", "2", "--plot", "none",
            "--checkpoint", str(ckpt), "--save", str(saved)]
    assert script().main(argv) == 130
    monkeypatch.undo()
    capsys.readouterr()
    kept = ckpt.read_bytes()
    assert script().main(["--resume", str(ckpt), "--epochs", "1", "--quiet", "--plot",
                          "none"]) == 0
    out = capsys.readouterr().out
    assert "has done 1 and 3 iterations of epoch 2; give a larger --epochs" in out
    score = re.search(r"the parameters after 3 iterations of epoch 2: test accuracy "
                      r"(\d\.\d{4}) \(greedy\)", out)
    assert score, out
    assert load_model(saved)[1]["accuracy"] == pytest.approx(float(score[1]), abs=5e-5)
    assert ckpt.read_bytes() == kept


def test_resuming_partway_with_val_puts_back_the_best_epoch_it_names(
        pairs_file, tmp_path, monkeypatch, capsys):
    """The same with --val: epoch 1, the best validated, is put back, scored and
    saved, not the partial epoch's parameters the model holds."""
    import signal

    from models import Seq2seq, load_model

    forward, calls = Seq2seq.forward, []
    per_epoch = -(-(360 - 40) // 32)  # --val 40 of the 360 training pairs

    def stopping(self, xs, ts):  # Ctrl-C at the third batch of epoch 2
        calls.append(len(xs))
        if calls.count(32) == per_epoch + 3:  # (validation scores 40 rows at once)
            os.kill(os.getpid(), signal.SIGINT)
        return forward(self, xs, ts)

    ckpt, one, saved = tmp_path / "run.npz", tmp_path / "one.npz", tmp_path / "m.npz"
    flags = ["--data", pairs_file, *SMALL, "--val", "40", "--plot", "none"]
    assert script().main([*flags, "--epochs", "1", "--save", str(one)]) == 0
    monkeypatch.setattr(Seq2seq, "forward", stopping)
    assert script().main([*flags, "--epochs", "2", "--checkpoint", str(ckpt),
                          "--save", str(saved)]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert script().main(["--resume", str(ckpt), "--epochs", "1", "--plot", "none"]) == 0
    out = capsys.readouterr().out
    assert "has done 1 and 3 iterations of epoch 2" in out, out
    assert "kept epoch 1's parameters (the lowest validation loss" in out
    best, partial = load_model(one), load_model(saved)
    for name, p in best[0].named_params().items():
        np.testing.assert_array_equal(partial[0].named_params()[name], p)
    assert partial[1]["accuracy"] == best[1]["accuracy"]


def test_a_second_ctrl_c_while_saving_says_where_the_run_stopped(pairs_file, tmp_path,
                                                                 monkeypatch, capsys):
    """The first Ctrl-C stops at iteration 3 and writes the checkpoint; a second
    one while the model is saved: the last line says where the run stands and
    how to resume, not 'after epoch 0'."""
    import signal

    from models import Seq2seq

    forward, save_params, calls = Seq2seq.forward, Seq2seq.save_params, []

    def stopping(self, xs, ts):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return forward(self, xs, ts)

    def saving_once_interrupted(self, *args, **kwargs):
        calls.append("save")
        if calls.count("save") == 1:
            raise KeyboardInterrupt  # the second Ctrl-C
        return save_params(self, *args, **kwargs)

    monkeypatch.setattr(Seq2seq, "forward", stopping)
    monkeypatch.setattr(Seq2seq, "save_params", saving_once_interrupted)
    ckpt, saved = tmp_path / "run.npz", tmp_path / "m.npz"
    assert script().main(["--data", pairs_file, *SMALL, "--epochs", "2", "--plot", "none",
                          "--checkpoint", str(ckpt), "--save", str(saved)]) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == (f"saved {saved} (its parameters when the run stopped, at epoch 1, "
                       f"iteration 3)")
    assert err[-1] == f"interrupted at epoch 1, iteration 3; resume with --resume {ckpt}"


def test_ctrl_c_while_evaluating_stops_cleanly_and_resumes(pairs_file, tmp_path, capsys):
    """Ctrl-C after an epoch's training (in its evaluation) exits 130 with a
    message, no traceback; the epoch's checkpoint resumes, evaluating it."""
    module = script()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    module.seq2seq_correct = interrupted
    ckpt = tmp_path / "run.npz"
    argv = ["--data", pairs_file, *SMALL, "--plot", "none", "--checkpoint", str(ckpt)]
    assert module.main(argv) == 130
    err = capsys.readouterr().err
    assert f"interrupted after epoch 1; epoch 1's checkpoint is written: resume with " \
           f"--resume {ckpt}" in err
    plot = tmp_path / "acc.png"
    assert script().main(["--resume", str(ckpt), "--epochs", "1", "--quiet", "--plot",
                          str(plot)]) == 0
    out = capsys.readouterr().out
    assert "nothing to train" in out  # epoch 1 evaluated, none left
    # ... and its accuracy shown, plotted and recorded in the checkpoint (it was only
    # computed, so the resumed run's plot and history lacked the epoch).
    assert re.search(r"epoch 1/1 \| accuracy \d\.\d{4} \(greedy\) \(scored on resuming", out)
    assert plot.read_bytes().startswith(b"\x89PNG")
    history = read_checkpoint(ckpt)[1]["settings"]["history"]
    assert len(history["greedy"]) == len(history["seconds"]) == 1


def test_sigterm_between_epochs_finishes_the_epochs_files_then_stops(pairs_file, tmp_path,
                                                                    capsys, sigterm_raises):
    """Between two fit calls (here: while epoch 1 is scored) a SIGTERM waits
    until the epoch's checkpoint is written, then the run stops as one
    during training does: the model and plot saved, exit 143, resumable."""
    module = terminated_while_scoring()
    ckpt, model, plot = tmp_path / "run.npz", tmp_path / "m.npz", tmp_path / "acc.png"
    argv = ["--data", pairs_file, *SMALL, "--epochs", "3", "--plot", str(plot),
            "--checkpoint", str(ckpt), "--save", str(model)]
    assert module.main(argv) == 143
    err = capsys.readouterr().err
    assert f"stopped by SIGTERM after epoch 1; resume with --resume {ckpt}" in err
    assert model.is_file() and plot.is_file()
    assert script().main(["--resume", str(ckpt), "--quiet", "--plot", "none"]) == 0
    assert "epoch 3/3" in capsys.readouterr().out


def test_a_run_that_cannot_fit_in_memory_is_refused_before_training(pairs_file, capsys):
    """The estimate of common.memory, before the model is built; the check
    can be overridden."""
    module = script()
    module.available_bytes = lambda *estimate: 50 * 2**20  # a machine with 50 MiB free
    argv = ["--data", pairs_file, *SMALL, "--plot", "none"]
    assert module.main(argv) == 2
    err = capsys.readouterr().err
    assert "this run needs about" in err and "but only 50 MiB is available" in err
    assert "--ignore-memory-check" in err
    assert "choose a smaller --hidden-size, --wordvec-size, --batch-size or --eval-batch" in err
    assert module.main([*argv, "--ignore-memory-check"]) == 0
    # Attention's (N, T_dec, T_enc) weights and the test set's scoring are counted:
    # the check passed runs that then needed 2-3x its estimate.
    assert module.main([*argv, "--model", "attention"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"attention \d+ MiB, evaluation \d+ MiB\)", err)


def test_a_data_file_too_large_for_memory_is_refused_before_reading(pairs_file, monkeypatch,
                                                                     capsys):
    """A file of millions of pairs ended in a MemoryError traceback while read."""
    module = script()
    size = os.path.getsize(pairs_file)  # 80 bytes of memory each, to read
    module.available_bytes = lambda *estimate: 40 * size
    assert module.main(["--data", pairs_file, *SMALL, "--plot", "none"]) == 2
    err = capsys.readouterr().err
    assert f"is available to read --data {pairs_file} (0 MiB: each line is Python objects " \
           f"until it is ids)" in err and "--ignore-memory-check" in err
    # The lines of a part that fits, without the line cut in two.
    assert f"e.g. head -c {40 * size // 80} {pairs_file} | head -n -1 > part.tsv" in err

    # A name with braces and a space: the advice was str.format-ed (KeyError,
    # IndexError on every run), and its command must take the name as one word.
    braced = os.path.join(os.path.dirname(pairs_file), "run {1}", "pairs{x}.tsv")
    os.makedirs(os.path.dirname(braced))
    shutil.copy(pairs_file, braced)
    assert module.main(["--data", braced, *SMALL, "--plot", "none"]) == 2
    assert f"e.g. head -c {40 * size // 80} '{braced}' | head -n -1 > part.tsv" in \
        capsys.readouterr().err
    module.available_bytes = lambda *estimate: None  # (no figure: no check)
    assert module.main(["--data", braced, *SMALL, "--plot", "none"]) == 0

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(module.sequence, "load_data", no_memory)
    assert module.main(["--data", pairs_file, *SMALL, "--ignore-memory-check"]) == 2
    assert (f"error: not enough memory to read --data {pairs_file} (0 MiB; reading takes up "
            f"to 80 times that); train on a part of its lines") in capsys.readouterr().err
    # The generated task has no file to measure: that line raised a TypeError.
    assert module.main(["--task", "date", *SMALL, "--ignore-memory-check"]) == 2
    assert ("error: not enough memory to make the date task's pairs (ulimit -v?)"
            in capsys.readouterr().err)

    # The pairs' padding, checked by the loader (one stray long line pads every
    # pair to its width): its own message, not the file's size blamed.
    checks = []

    def no_memory_to_pad(*args, memory_check, **kwargs):
        checks.append(memory_check)
        raise NotEnoughMemory(f"{pairs_file}: padding and numbering its pairs takes ...")

    monkeypatch.setattr(module.sequence, "load_data", no_memory_to_pad)
    assert module.main(["--data", pairs_file, *SMALL]) == 2
    assert (f"error: --data {pairs_file}: padding and numbering its pairs takes ...; or pass "
            f"--ignore-memory-check to try anyway\n" == capsys.readouterr().err)
    # The flag lets the loader pad anyway.
    module.main(["--data", pairs_file, *SMALL, "--ignore-memory-check"])
    assert checks == [True, False]
    capsys.readouterr()

    # Padding that ran out of memory (the flag given, or past the check): the loader's
    # words, not "reading takes up to 80 times the file", and no flag that cannot help.
    def ran_out(*args, **kwargs):
        raise module.sequence.PaddingMemoryError(f"{pairs_file}: ran out of memory: padding "
                                                 f"and numbering ...")

    monkeypatch.setattr(module.sequence, "load_data", ran_out)
    assert module.main(["--data", pairs_file, *SMALL]) == 2
    assert capsys.readouterr().err == (f"error: --data {pairs_file}: ran out of memory: "
                                       f"padding and numbering ...\n")

    def numpy_ran_out(*args, **kwargs):
        np.empty(2**62, dtype=np.int8)  # NumPy's own MemoryError, which names no file
        raise MemoryError("(a machine that lends 4 EiB: a MemoryError all the same)")

    monkeypatch.setattr(module.sequence, "load_data", numpy_ran_out)
    assert module.main(["--data", pairs_file, *SMALL]) == 2
    assert capsys.readouterr().err.startswith(f"error: not enough memory to read --data "
                                              f"{pairs_file}")


def test_no_memory_to_score_the_test_pairs_keeps_the_epoch(pairs_file, tmp_path, capsys):
    """A raw MemoryError traceback after a whole trained epoch, --save unwritten."""
    module = script()

    def no_memory(*args, **kwargs):
        raise MemoryError

    module.seq2seq_correct = no_memory
    ckpt, saved = tmp_path / "run.npz", tmp_path / "m.npz"
    assert module.main(["--data", pairs_file, *SMALL, "--plot", "none", "--checkpoint",
                        str(ckpt), "--save", str(saved)]) == 1
    err = capsys.readouterr().err
    # (The file's test pairs are fewer than --eval-batch's 1000: they are what is scored.)
    assert re.search(r"error: not enough memory to score the test pairs after epoch 1 "
                     r"\((\d+) questions at a time; give a smaller --eval-batch than \1\); "
                     r"epoch 1's checkpoint is written: resume with --resume ", err), err
    assert saved.is_file() and ckpt.is_file()


def test_resuming_without_the_memory_to_read_the_checkpoint_says_so(pairs_file, tmp_path,
                                                                    capsys, monkeypatch):
    """A raw MemoryError traceback from inside the checkpoint reader."""
    ckpt = tmp_path / "run.npz"
    assert script().main(["--data", pairs_file, *SMALL, "--plot", "none", "--checkpoint",
                          str(ckpt)]) == 0
    kept = ckpt.read_bytes()
    module = script()

    def no_memory(self, path):
        raise MemoryError

    monkeypatch.setattr(module.Trainer, "resume", no_memory)
    assert module.main(["--resume", str(ckpt), "--epochs", "2", "--plot", "none"]) == 2
    assert f"error: cannot resume: not enough memory to read {ckpt} (it is kept as it is)" in \
        capsys.readouterr().err
    assert ckpt.read_bytes() == kept


@pytest.mark.parametrize("error", [MemoryError, ValueError("array is too big")])
def test_weights_that_do_not_fit_past_the_memory_check_are_an_error_not_a_traceback(
        pairs_file, capsys, error):
    module = script()

    def no_memory(*args, **kwargs):
        raise error

    module.MODELS = {**module.MODELS, "plain": no_memory}
    argv = ["--data", pairs_file, *SMALL, "--plot", "none", "--ignore-memory-check"]
    assert module.main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        "error: not enough memory for the model's weights (--hidden-size 8, --wordvec-size 4, "
        "vocabulary ")


def test_a_file_named_like_a_task_is_read_as_the_file(pairs_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "addition.txt").write_text(Path(pairs_file).read_text(encoding="utf-8"))
    assert script().main(["--data", "addition.txt", *SMALL, "--plot", "none"]) == 0
    assert "360 training and 40 test pairs" in capsys.readouterr().out


def test_resume_keeps_the_runs_outputs_and_beam_and_its_data(pairs_file, tmp_path,
                                                             monkeypatch, capsys):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "pairs.tsv").write_text(Path(pairs_file).read_text(encoding="utf-8"))
    monkeypatch.chdir(work)
    assert script().main(["--data", "pairs.tsv", *SMALL, "--beam", "2", "--save", "m.npz",
                          "--plot", "acc.png", "--checkpoint", "run.npz"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(elsewhere)  # the paths of the data and the outputs were recorded whole
    args = script().parse_args(["--resume", str(work / "run.npz"), "--epochs", "2"])
    assert args.data == str(work / "pairs.tsv")
    assert (args.beam, args.save, args.plot, args.epochs) == (
        2, str(work / "m.npz"), str(work / "acc.png"), 2)
    with pytest.raises(SystemExit):
        script().parse_args(["--resume", str(work / "run.npz"), "--beam", "3"])
    assert "--beam 3 differs from the run's --beam 2" in capsys.readouterr().err
    before = (work / "m.npz").read_bytes()
    assert script().main(["--resume", str(work / "run.npz"), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "1 epochs done" in out and "epoch 2/2" in out and "(beam 2)" in out
    assert f"saved {work / 'm.npz'}" in out and f"accuracy plot: {work / 'acc.png'}" in out
    assert (work / "m.npz").read_bytes() != before and list(elsewhere.iterdir()) == []
    assert "was written as" not in capsys.readouterr().err  # the run's own checkpoint
    # A copy resumed elsewhere would write the first run's outputs: said.
    copy = elsewhere / "copy.npz"
    copy.write_bytes((work / "run.npz").read_bytes())
    args = script().parse_args(["--resume", str(copy), "--epochs", "3"])
    err = capsys.readouterr().err
    assert (f"notice: {copy} was written as {work / 'run.npz'}; its run's outputs go where "
            f"that run began (--save {work / 'm.npz'}, --plot {work / 'acc.png'}): give them "
            f"anew to write elsewhere") in err
    script().parse_args(["--resume", str(copy), "--save", str(elsewhere / "m.npz"),
                         "--plot", "none"])
    assert "was written as" not in capsys.readouterr().err
    monkeypatch.chdir(work)

    # The data file changed since the run began: refused before training.
    (work / "pairs.tsv").write_text("ab\tba\n" * 200)
    assert script().main(["--resume", "run.npz", "--epochs", "3"]) == 2
    assert "has changed since the run began" in capsys.readouterr().err


def test_load_says_which_flags_the_saved_model_needs(pairs_file, tmp_path, capsys):
    saved = str(tmp_path / "m.npz")
    assert script().main(["--data", pairs_file, "--model", "peeky", "--reverse", *SMALL,
                          "--plot", "none", "--save", saved]) == 0
    capsys.readouterr()
    for flags, message in (
            (["--model", "peeky", "--reverse", "--hidden-size", "16"], "give --hidden-size 8"),
            (["--model", "plain", "--reverse"], "give --model peeky"),
            (["--model", "peeky"], "trained with --reverse: add the flag")):
        argv = ["--data", pairs_file, "--wordvec-size", "4", "--hidden-size", "8", "--epochs",
                "0", "--load", saved, "--plot", "none", *flags]
        assert script().main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_load_names_the_data_seed_of_a_vocabulary_in_another_order(tmp_path, capsys):
    from datasets import sequence
    from models import Seq2seq

    sequence.load_data("addition")
    _, id_to_char = sequence.get_vocab()
    shuffled = [id_to_char[i] for i in range(len(id_to_char))][::-1]
    saved = tmp_path / "m.npz"
    Seq2seq(len(shuffled), 4, 8).save_params(saved, vocab=shuffled, data_seed=7)
    assert script().main(["--task", "addition", "--wordvec-size", "4", "--hidden-size", "8",
                          "--epochs", "0", "--load", str(saved), "--plot", "none"]) == 2
    assert "another --data-seed (7): give --data-seed 7" in capsys.readouterr().err
    # Trained on a file of the same characters: the seed is not what differs.
    Seq2seq(len(shuffled), 4, 8).save_params(saved, vocab=shuffled, data_seed=1984,
                                             task="/data/sums.txt")
    assert script().main(["--task", "addition", "--wordvec-size", "4", "--hidden-size", "8",
                          "--epochs", "0", "--load", str(saved), "--plot", "none"]) == 2
    err = capsys.readouterr().err
    assert "was trained on another vocabulary (of /data/sums.txt): give --data with a file " \
           "of that task" in err and "--data-seed" not in err


def test_load_refuses_a_vocabulary_that_lists_a_character_twice(pairs_file, tmp_path, capsys):
    """--data is renumbered by the saved vocabulary: with one character at two
    ids, the pairs were read as ids the model learned as other characters."""
    from models import Seq2seq

    saved = tmp_path / "m.npz"
    Seq2seq(13, 4, 8, seed=0).save_params(saved, vocab=list("0123456789+ _".replace("1", "0")))
    assert script().main(["--data", pairs_file, "--wordvec-size", "4", "--hidden-size", "8",
                          "--epochs", "0", "--load", str(saved), "--plot", "none"]) == 2
    assert capsys.readouterr().err == (
        f"error: --load {saved}: the file is damaged: its vocabulary lists '0' at the ids 0 "
        f"and 1, so text cannot be turned into the ids the model was trained on; save the "
        f"model again with the vocabulary it was trained on\n")


def test_load_names_the_vocabulary_size_of_a_model_saved_without_its_characters(tmp_path,
                                                                               capsys):
    # It used to say only "parameter 'encoder.embed.W' has shape (20, 4), the model needs
    # (13, 4)", which names no flag and no fix.
    from models import Seq2seq

    saved = tmp_path / "m.npz"
    Seq2seq(20, 4, 8, seed=0).save_params(saved)  # no vocab=
    assert script().main(["--task", "addition", "--wordvec-size", "4", "--hidden-size", "8",
                          "--epochs", "0", "--load", str(saved), "--plot", "none"]) == 2
    assert (f"--load {saved} was trained on a vocabulary of 20 characters, and these pairs "
            f"have 13: give the data it was trained on") in capsys.readouterr().err


def test_load_refuses_another_data_seed_on_the_data_it_was_trained_on(pairs_file, tmp_path,
                                                                        capsys):
    """The split (and a generated task's pairs) follow --data-seed: with another
    seed the test pairs would include pairs the model was trained on."""
    saved = str(tmp_path / "m.npz")
    small = ["--wordvec-size", "4", "--hidden-size", "8", "--plot", "none", "--quiet"]
    assert script().main(["--data", pairs_file, *small, "--epochs", "1", "--save", saved]) == 0
    capsys.readouterr()
    evaluate = ["--load", saved, *small, "--epochs", "0"]
    assert script().main(["--data", pairs_file, "--data-seed", "5", *evaluate]) == 2
    assert (f"--load {saved} was trained on {pairs_file} with --data-seed 1984; with "
            "--data-seed 5 its test pairs are not held out from what it was trained on: give "
            "--data-seed 1984") in capsys.readouterr().err
    assert script().main(["--data", pairs_file, "--data-seed", "1984", *evaluate]) == 0
    # Another file (of the same characters) may be split by any seed.
    other = tmp_path / "other.tsv"
    other.write_text("".join(f"{w}\t{w[::-1]}\n" for w in ("abc", "fed", "cafe", "bead") * 25))
    assert script().main(["--data", str(other), "--data-seed", "5", *evaluate]) == 0

    # A generated task: the same rule, and a model of the other task is named.
    from datasets import sequence
    from models import Seq2seq

    sequence.load_data("addition")
    _, id_to_char = sequence.get_vocab()
    vocab = [id_to_char[i] for i in range(len(id_to_char))]
    Seq2seq(len(vocab), 4, 8).save_params(saved, vocab=vocab, task="addition", data_seed=7)
    capsys.readouterr()
    assert script().main(["--task", "addition", *evaluate]) == 2
    assert "give --data-seed 7" in capsys.readouterr().err
    assert script().main(["--task", "date", *evaluate]) == 2
    assert (f"--load {saved} was trained on another vocabulary (of the addition task): give "
            "--task addition") in capsys.readouterr().err


def test_save_does_not_replace_a_checkpoint_without_overwrite(pairs_file, tmp_path, capsys):
    ckpt, saved = str(tmp_path / "run.npz"), str(tmp_path / "model.npz")
    argv = ["--data", pairs_file, *SMALL, "--plot", "none"]
    assert script().main([*argv, "--checkpoint", ckpt]) == 0
    with pytest.raises(SystemExit) as exc:
        script().parse_args([*argv, "--save", ckpt])
    assert exc.value.code == 2
    assert f"--save {ckpt} is a training checkpoint" in capsys.readouterr().err
    assert script().main([*argv, "--save", saved]) == 0
    assert script().parse_args([*argv, "--save", saved]).save == saved  # a model: replaced
    assert script().parse_args([*argv, "--save", ckpt, "--overwrite"]).save == ckpt


@pytest.mark.parametrize("flag", ["--data", "--save", "--load", "--checkpoint", "--resume"])
def test_an_empty_file_flag_is_refused(flag, capsys):
    """An unset shell variable (--save "$OUT") would otherwise lose the model."""
    with pytest.raises(SystemExit) as exc:
        script().parse_args([flag, ""])
    assert exc.value.code == 2 and f"{flag} is empty" in capsys.readouterr().err


def test_a_header_line_is_named_in_a_notice(pairs_file, tmp_path, capsys):
    """Read as a pair (the loader cannot know), but said before training."""
    header = tmp_path / "with_header.tsv"
    header.write_text("QUESTION\tANSWER\n" + Path(pairs_file).read_text(encoding="utf-8"))
    assert script().main(["--data", str(header), *SMALL, "--plot", "none"]) == 0
    err = capsys.readouterr().err
    assert (f"notice: {header}, line 1: 'QUESTION\\tANSWER' holds characters that no other "
            "line holds") in err and "if it is a header, remove it" in err


def test_a_diverged_run_ends_with_a_message_and_status_1(pairs_file, monkeypatch, capsys):
    from common.training_guards import TrainingDiverged

    module = script()

    def diverge(*args, **kwargs):
        raise TrainingDiverged("the loss became nan at epoch 1, iteration 3")

    monkeypatch.setattr(module.Trainer, "fit", diverge)
    assert module.main(["--data", pairs_file, *SMALL, "--plot", "none"]) == 1
    assert "error: the loss became nan" in capsys.readouterr().err


def test_on_nan_reaches_fit_and_skipped_batches_are_announced(pairs_file, monkeypatch, capsys):
    module = script()
    fit = module.Trainer.fit
    seen = []

    def fit_skipping_two(trainer, *args, **kwargs):
        seen.append(kwargs["on_nan"])
        fit(trainer, *args, **kwargs)
        trainer.skipped_batches += 2  # as if two batches had diverged

    monkeypatch.setattr(module.Trainer, "fit", fit_skipping_two)
    assert module.main(["--data", pairs_file, *SMALL, "--plot", "none",
                        "--on-nan", "skip"]) == 0
    assert seen and set(seen) == {"skip"}
    assert "notice: 2 batches with a NaN, infinite or runaway loss were skipped (--on-nan skip)" \
        in capsys.readouterr().err


def test_only_a_plot_that_was_drawn_is_announced(pairs_file, tmp_path, capsys):
    saved = str(tmp_path / "m.npz")
    assert script().main(["--data", pairs_file, *SMALL, "--plot", "none", "--save", saved]) == 0
    capsys.readouterr()
    assert script().main(["--data", pairs_file, *SMALL[2:], "--epochs", "0", "--load", saved,
                          "--plot", str(tmp_path / "p.png")]) == 0
    assert "accuracy plot" not in capsys.readouterr().out
    assert not (tmp_path / "p.png").exists()


def test_a_saved_model_reads_another_file_of_its_characters_by_its_own_ids(pairs_file, tmp_path,
                                                                          capsys):
    """A file numbers its characters by first appearance; a --load model
    reads another file of the same characters by the ids it was trained with,
    and a character it never saw is named, before anything runs."""
    from datasets import sequence

    saved = str(tmp_path / "m.npz")
    assert script().main(["--data", pairs_file, *SMALL, "--plot", "none", "--save", saved]) == 0
    other = tmp_path / "other.tsv"  # the same pairs, sorted: another first appearance
    lines = Path(pairs_file).read_text(encoding="utf-8").split("\n")
    other.write_text("\n".join(sorted(lines, reverse=True)))
    model, meta = load_model(saved)
    with pytest.warns(sequence.SequenceDataWarning, match="also training pairs"):
        sequence.load_data(other)  # (the random words of the file repeat)
    assert list(sequence.get_vocab()[1].values()) != meta["vocab"]
    capsys.readouterr()

    ckpt = str(tmp_path / "run.npz")
    assert script().main(["--data", str(other), *SMALL, "--load", saved, "--plot", "none",
                          "--show", "20", "--checkpoint", ckpt]) == 0
    char_to_id = {char: i for i, char in enumerate(meta["vocab"])}
    shown = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  Q ")]
    assert len(shown) == 20
    from common.checkpoint import read_checkpoint

    arrays, run = read_checkpoint(ckpt)
    assert run["settings"]["vocab"] == meta["vocab"]  # so that --resume numbers them alike
    model.set_named_params({k[6:]: a for k, a in arrays.items() if k.startswith("model/")})
    for line in shown:  # the answers the trained model gives in its own numbering
        question, answer = re.match(r"  Q '(.*?)' +T '.*?' +answer '(.*?)'", line).groups()
        ids = model.generate(np.array([[char_to_id[c] for c in question]]), char_to_id["_"],
                             len(answer))
        assert "".join(meta["vocab"][i] for i in ids[0]) == answer
    assert script().main(["--resume", ckpt, "--epochs", "2", "--quiet", "--plot", "none"]) == 0

    unknown = tmp_path / "unknown.tsv"
    unknown.write_text(other.read_text() + "xyz\tzyx\n")
    assert script().main(["--data", str(unknown), *SMALL, "--load", saved,
                          "--plot", "none"]) == 2
    err = capsys.readouterr().err
    assert f"--data {unknown} holds characters that --load {saved} was not trained on: " \
           f"'xyz'" in err and "Traceback" not in err


def test_a_language_model_is_named_not_loaded_or_resumed(pairs_file, tmp_path, capsys):
    from common.checkpoint import save_checkpoint
    from common.optimizer import SGD
    from common.trainer import RnnlmTrainer
    from models import Rnnlm

    lm = str(tmp_path / "lm.npz")
    Rnnlm(8, 4, 8, seed=0).save_params(lm, vocab=list("abcdefgh"))  # not these pairs' characters
    lm_run = str(tmp_path / "lm_run.npz")
    save_checkpoint(lm_run, RnnlmTrainer(Rnnlm(8, 4, 8, seed=0), SGD()))
    argv = ["--data", pairs_file, *SMALL[2:], "--epochs", "0", "--plot", "none"]
    assert script().main([*argv, "--load", lm]) == 2
    assert f"--load {lm} holds a model of class Rnnlm, not a sequence-to-sequence model" \
        in capsys.readouterr().err
    assert script().main([*argv, "--load", lm_run]) == 2
    err = capsys.readouterr().err
    assert "the training checkpoint of a run of Rnnlm, not of a sequence-to-sequence" in err
    assert "--resume" not in err  # which would refuse it in turn
    with pytest.raises(SystemExit) as exc:
        script().main(["--resume", lm_run])
    assert exc.value.code == 2
    assert "the checkpoint of a run of Rnnlm, not of a sequence-to-sequence model: resume it " \
           "with the script that wrote it" in capsys.readouterr().err


def test_resuming_a_saved_model_points_to_load(pairs_file, tmp_path, capsys):
    saved = str(tmp_path / "m.npz")
    assert script().main(["--data", pairs_file, *SMALL, "--plot", "none", "--save", saved]) == 0
    with pytest.raises(SystemExit) as exc:
        script().main(["--resume", saved])
    assert exc.value.code == 2
    assert f"to start a run from its parameters, give --load {saved}" in capsys.readouterr().err


def test_a_resumed_run_whose_data_file_is_gone_says_so(pairs_file, tmp_path, capsys):
    data, ckpt = tmp_path / "gone.tsv", str(tmp_path / "run.npz")
    data.write_text(Path(pairs_file).read_text(encoding="utf-8"))
    assert script().main(["--data", str(data), *SMALL, "--plot", "none",
                          "--checkpoint", ckpt]) == 0
    data.unlink()
    with pytest.raises(SystemExit) as exc:
        script().main(["--resume", ckpt, "--epochs", "2"])
    assert exc.value.code == 2
    assert (f"the run's --data file {data} is gone (no such file); put it back there, or give "
            f"its new place with --data, to continue the run") in capsys.readouterr().err


def test_a_resumed_run_whose_data_file_moved_reads_it_from_its_new_place(pairs_file, tmp_path,
                                                                        capsys):
    # (It was refused as another --data, though the SHA-256 shows the same file.)
    whole, resumed = str(tmp_path / "whole.npz"), str(tmp_path / "resumed.npz")
    ckpt, moved = str(tmp_path / "run.npz"), str(tmp_path / "moved.tsv")
    two = [a if a != "1" else "2" for a in SMALL]  # (--epochs 2)
    assert script().main(["--data", pairs_file, *two, "--plot", "none", "--save", whole]) == 0
    assert script().main(["--data", pairs_file, *SMALL, "--plot", "none",
                          "--checkpoint", ckpt]) == 0
    os.rename(pairs_file, moved)
    capsys.readouterr()
    assert script().main(["--resume", ckpt, "--data", moved, "--epochs", "2",
                          "--save", resumed]) == 0
    assert (f"notice: the run's pairs are read from {moved} instead of {pairs_file}; it must "
            f"be the same file (checked)") in capsys.readouterr().err
    a, b = np.load(whole), np.load(resumed)
    assert all(np.array_equal(a[k], b[k]) for k in a.files if k != "__meta__")  # (names the file)
    Path(pairs_file).write_text("ab\tba\n" * 200)  # another file of pairs: refused
    assert script().main(["--resume", ckpt, "--data", pairs_file, "--epochs", "3"]) == 2
    assert f"{pairs_file} is not the file the run began with" in capsys.readouterr().err


def test_long_questions_and_answers_are_cut_when_printed():
    module = script()
    id_to_char = {0: "1", 1: " "}
    assert module.shown(np.zeros(5, int), id_to_char) == "'11111'"
    assert module.shown(np.zeros(2000, int), id_to_char) == repr("1" * 40) + "..."


def test_val_keeps_the_epoch_with_the_lowest_validation_loss(pairs_file, tmp_path, capsys):
    """--val N holds out the last N training pairs; at the end the parameters
    of the best epoch on them are put back, scored and saved (here epoch 1:
    a learning rate this large makes epochs 2 and 3 worse)."""
    saved, ck = str(tmp_path / "m.npz"), str(tmp_path / "ck.npz")
    assert script().main(["--data", pairs_file, *SMALL, "--epochs", "3", "--lr", "1",
                          "--val", "80", "--plot", "none", "--show", "0", "--save", saved,
                          "--checkpoint", ck]) == 0
    printed = capsys.readouterr().out
    assert "280 training, 80 validation and 40 test pairs" in printed
    losses = [float(v) for v in re.findall(r"validation loss (\d+\.\d+)", printed)]
    assert len(losses) == 3 and losses[0] < min(losses[1:])
    kept = re.search(r"kept epoch 1's parameters \(the lowest validation loss, "
                     r"(\d+\.\d+)\): test accuracy (\d+\.\d+)", printed)
    assert kept and float(kept[1]) == pytest.approx(losses[0], abs=1e-4)
    model, meta = load_model(saved)
    assert meta["accuracy"] == pytest.approx(float(kept[2]), abs=1e-4)
    best = np.load(ck)
    for name, p in model.named_params().items():
        np.testing.assert_array_equal(p, best[f"best/{name}"])


def test_val_must_leave_pairs_to_train_on(pairs_file, capsys):
    assert script().main(["--data", pairs_file, *SMALL, "--val", "360"]) == 2
    assert "--val 360 would hold out all 360 training pairs" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_run_resumed_through_a_link_to_its_folder_is_the_same_run(pairs_file, tmp_path,
                                                                    capsys, monkeypatch):
    """The --data file and the checkpoint typed through a link to their folder
    are the run's own (compared by their letters, the file was refused as
    another and the checkpoint as an earlier run's)."""
    os.symlink(tmp_path, tmp_path / "link")
    linked = tmp_path / "link"
    monkeypatch.chdir(linked)  # the working folder is named with links resolved
    run = ["--model", "plain", *SMALL, "--plot", "none"]
    assert script().main(["--data", "pairs.tsv", *run, "--checkpoint", "ck.npz"]) == 0
    capsys.readouterr()
    assert script().main(["--resume", str(linked / "ck.npz"), "--checkpoint", "ck.npz",
                          "--data", str(linked / "pairs.tsv"), "--epochs", "2", "--quiet",
                          "--plot", "none"]) == 0
    assert "was written as" not in capsys.readouterr().err  # not taken for a moved copy
    assert len(read_checkpoint(tmp_path / "ck.npz")[1]["settings"]["history"]["greedy"]) == 2


def test_the_memory_check_counts_the_beams_of_scoring(pairs_file, tmp_path):
    # (--beam 50 on a small test set holds 50 times the rows of --beam 1: the
    # estimate was the same, and the run failed after its first epoch.)
    import argparse

    s = script()
    estimates = {}

    def seen(estimate, available, hint=""):
        estimates[beam] = estimate

    for beam in (1, 50):
        args = argparse.Namespace(wordvec_size=16, hidden_size=64, bidirectional=False,
                                  model="attention", batch_size=32, eval_batch=1000, beam=beam)
        s.check_memory, original = seen, s.check_memory
        try:
            s.memory_problem(args, 30, 300, 2, 20)  # 20 test pairs of 300 characters
        finally:
            s.check_memory = original
    more = estimates[50]["evaluation"] - estimates[1]["evaluation"]
    assert more == 49 * 20 * (300 * 8 * 64 * 4 + 30 * 8 * 3 + 3 * 300 * 64 * 4)  # 49 x 20 rows
    for beam in (1, 501):  # greedy scoring first, 1000 rows: the beam's 501 are fewer
        args.beam = beam
        s.check_memory, original = seen, s.check_memory
        try:
            s.memory_problem(args, 30, 300, 2, 5000)
        finally:
            s.check_memory = original
    assert estimates[501]["evaluation"] == estimates[1]["evaluation"]


def test_running_out_of_memory_in_training_still_writes_the_model(pairs_file, tmp_path, capsys,
                                                                  memory_runs_out):
    # (Without a checkpoint, the model of the epochs done was lost; a stop writes it.)
    from models import Seq2seq

    memory_runs_out(Seq2seq, 15)
    save = tmp_path / "m.npz"
    assert script().main(["--data", pairs_file, *SMALL, "--epochs", "2", "--save", str(save),
                          "--plot", str(tmp_path / "acc.png")]) == 1
    assert "error: out of memory at epoch 2" in capsys.readouterr().err
    assert save.exists()


def test_the_plots_title_names_the_data_file_not_its_path(pairs_file, tmp_path, capsys):
    # (A long --data path ran off both sides of the accuracy plot's title.)
    from common.plot import MAX_TITLE, fitted_title

    deep = tmp_path / ("a rather long folder name for this week's experiments " * 2) / "more"
    deep.mkdir(parents=True)
    data = deep / "pairs.tsv"
    data.write_text(Path(pairs_file).read_text(encoding="utf-8"), encoding="utf-8")
    assert script().main(["--data", str(data), *SMALL, "--plot", str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.startswith("Seq2seq on pairs.tsv, D=4 H=8: ")
    long = "AttentionSeq2seq on " + "x" * 200 + ".tsv, D=16 H=256"
    assert len(fitted_title(long)) == MAX_TITLE and len(fitted_title(long, 76)) == 76
    assert fitted_title(long).startswith("AttentionSeq2seq on xx")
    assert fitted_title(long).endswith("x.tsv, D=16 H=256") and "..." in fitted_title(long)
    assert fitted_title("short") == "short"
