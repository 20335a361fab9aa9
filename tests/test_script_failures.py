"""What the training scripts keep when a run stops early or a file cannot
be written, and the checkpoints and file names they refuse before training.

A full disk while a checkpoint is written stops the run with a message
(exit 1), the model and plot written as they are; Ctrl-C keeps them too. A
model file of a pickle's name, an output over the PTB files the run reads,
a checkpoint of the other script or with damaged settings: refused before
training starts.
"""

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from common import training_guards
from common.checkpoint import read_checkpoint
from common.cli import flag
from common.serialization import load_npz, save_npz
from common.trainer import CheckpointWriteError

from script_loader import load_script, usage_error

TINY_LM = ["--epochs", "2", "--wordvec-size", "8", "--hidden-size", "8", "--quiet"]
TINY_PAIRS = ["--epochs", "2", "--batch-size", "32", "--wordvec-size", "4", "--hidden-size",
              "8", "--quiet", "--show", "0"]


def fail_checkpoints_after(monkeypatch, good_writes):
    """Let ``good_writes`` checkpoints be written, then every write fails as
    on a full disk (the file written before stays, as atomic writes keep it)."""
    real = training_guards.save_checkpoint
    writes = []

    def save(path, trainer):
        writes.append(path)
        if len(writes) > good_writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, trainer)

    monkeypatch.setattr(training_guards, "save_checkpoint", save)
    return writes


# -- the library: a checkpoint that cannot be written -------------------------------------


def test_a_checkpoint_that_cannot_be_written_stops_fit_and_says_what_is_kept(here, monkeypatch):
    from common.optimizer import SGD
    from common.trainer import RnnlmTrainer
    from models import SimpleRnnlm

    fail_checkpoints_after(monkeypatch, good_writes=1)
    trainer = RnnlmTrainer(SimpleRnnlm(20, 4, 4, seed=0), SGD(0.1))
    corpus = np.random.default_rng(0).integers(0, 20, 200)
    with pytest.raises(CheckpointWriteError) as info:
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=3, batch_size=4, time_size=5,
                    checkpoint="ck.npz", verbose=False)
    message = str(info.value)
    assert "cannot write the checkpoint ck.npz (No space left on device)" in message
    assert "training stopped after epoch 2" in message  # epoch 1's file was written
    assert "the checkpoint written there before is kept" in message
    assert isinstance(info.value, OSError) and info.value.path == "ck.npz"
    assert read_checkpoint("ck.npz")[1]["trainer"]["epoch"] == 1


# -- train_rnnlm.py -----------------------------------------------------------------------


def test_train_rnnlm_a_full_disk_at_a_checkpoint_keeps_the_model_and_plot(here, monkeypatch,
                                                                          capsys):
    fail_checkpoints_after(monkeypatch, good_writes=1)
    status = load_script("train_rnnlm").main(
        [*TINY_LM, "--epochs", "3", "--checkpoint", "ck.npz", "--save", "m.npz", "--plot",
         "p.png"])
    assert status == 1
    err = capsys.readouterr().err
    assert "error: cannot write the checkpoint ck.npz" in err and "Traceback" not in err
    assert "model saved to m.npz" in err
    assert (here / "m.npz").is_file() and (here / "p.png").is_file()


@pytest.mark.parametrize("flag", ["--save", "--checkpoint"])
@pytest.mark.parametrize("name", ["model.pkl", "model.PICKLE"])
def test_train_rnnlm_refuses_a_pickle_name_before_training(flag, name, here, capsys):
    err = usage_error(load_script("train_rnnlm").main, [*TINY_LM, flag, name], capsys)
    assert f"{flag} {name}: rnnlab never writes (or reads) pickles" in err
    assert "ending in .npz" in err and not (here / name).exists()


def test_train_rnnlm_refuses_to_write_over_the_ptb_files_it_reads(here, monkeypatch, capsys):
    ptb_dir = here / "ptb"
    ptb_dir.mkdir()
    for split in ("train", "valid", "test"):
        (ptb_dir / f"ptb.{split}.txt").write_text("a b c\n", encoding="utf-8")
    main = load_script("train_rnnlm").main
    err = usage_error(main, [*TINY_LM, "--data-dir", str(ptb_dir), "--save",
                             str(ptb_dir / "ptb.test.txt")], capsys)
    assert "is a PTB file of --data-dir" in err and "would destroy the data" in err
    monkeypatch.setenv("RNNLAB_PTB_DIR", str(ptb_dir))
    err = usage_error(main, [*TINY_LM, "--checkpoint", str(ptb_dir / "ptb.valid.txt")],
                      capsys)
    assert "is a PTB file of $RNNLAB_PTB_DIR" in err
    assert (ptb_dir / "ptb.test.txt").read_text() == "a b c\n"


def test_train_rnnlm_names_the_other_script_for_a_seq2seq_checkpoint(here, pairs_file, capsys):
    assert load_script("train_seq2seq").main(
        ["--data", pairs_file, *TINY_PAIRS, "--epochs", "1", "--plot", "none", "--checkpoint",
         "s.npz"]) == 0
    err = usage_error(load_script("train_rnnlm").main, ["--resume", "s.npz", "--quiet"],
                      capsys)
    assert "is the checkpoint of a run of Seq2seq, not of a language model" in err
    assert "scripts/train_seq2seq.py" in err


def damage_setting(path, out, key, value):
    arrays, meta = load_npz(path)
    meta["settings"][key] = value
    save_npz(out, arrays, meta)


@pytest.mark.parametrize("name, value", [("batch_size", "x"), ("max_grad", "NONE"),
                                         ("patience", "5")])
def test_train_rnnlm_refuses_a_checkpoint_with_damaged_settings(name, value, here, capsys):
    """A value its option would not have recorded: a number as text, or the
    text "none" of an option that a run left off (recorded as null)."""
    main = load_script("train_rnnlm").main
    assert main([*TINY_LM, "--checkpoint", "ck.npz", "--plot", "none"]) == 0
    damage_setting("ck.npz", "bad.npz", name, value)
    err = usage_error(main, ["--resume", "bad.npz", "--epochs", "3", "--quiet"], capsys)
    assert f"the checkpoint is damaged: its setting {flag(name)} is {value!r}" in err


def test_a_reproduction_shows_its_own_defaults_and_takes_a_text_file(here, capsys):
    reproduce = load_script("reproduce_zaremba_small")
    with pytest.raises(SystemExit):
        load_script("train_rnnlm").main(["--help"], description=reproduce.__doc__,
                                        defaults=reproduce.DEFAULTS)
    shown = " ".join(capsys.readouterr().out.split())
    assert "clip the global gradient norm to this; 'none': no clipping (default: 0.25)" in shown
    assert "uniform init in +-scale; 'none': the model's own (default: 0.1)" in shown
    assert "0 = all (default: 0)" in shown and "1000 of PTB" not in shown
    # Its corpus is PTB by default, but a --text-file alone trains on that file.
    Path("t.txt").write_text("the cat sat on the mat . " * 40, encoding="utf-8")
    assert load_script("train_rnnlm").main(
        ["--text-file", "t.txt", "--epochs", "1", "--plot", "none", "--quiet",
         "--wordvec-size", "8", "--hidden-size", "8", "--batch-size", "2", "--time-size", "5",
         "--num-layers", "1"], defaults=reproduce.DEFAULTS) == 0


def test_a_reproductions_defaults_can_each_be_turned_off():
    """--max-grad, --lr-halve-from and --init-scale take 'none', --tie undoes
    --no-tie: a reproduction's own values are not the only ones it can run."""
    reproduce = load_script("reproduce_zaremba_small")
    parse = load_script("train_rnnlm").parse_args
    args, _ = parse([], defaults=reproduce.DEFAULTS)
    assert (args.max_grad, args.lr_halve_from, args.init_scale, args.no_tie) == (0.25, 5, 0.1,
                                                                                  True)
    args, explicit = parse(["--max-grad", "none", "--lr-halve-from", "None", "--init-scale",
                            "none", "--tie"], defaults=reproduce.DEFAULTS)
    assert (args.max_grad, args.lr_halve_from, args.init_scale, args.no_tie) == (None, None,
                                                                                  None, False)
    assert {"max_grad", "lr_halve_from", "init_scale", "no_tie"} <= explicit
    args, _ = parse(["--clip-value", "none", "--lr-decay", "none", "--patience", "none"])
    assert (args.clip_value, args.lr_decay, args.patience) == (None, None, None)


# -- train_seq2seq.py ---------------------------------------------------------------------


def test_train_seq2seq_ctrl_c_without_a_checkpoint_keeps_the_model_and_plot(here, pairs_file,
                                                                            capsys):
    module = load_script("train_seq2seq")
    import signal

    class Stopping(module.MODELS["plain"]):
        def forward(self, xs, ts):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 12:  # in epoch 2 (the first has 9 batches of 32)
                os.kill(os.getpid(), signal.SIGINT)
            return super().forward(xs, ts)

    module.MODELS = {**module.MODELS, "plain": Stopping}
    assert module.main(["--data", pairs_file, *TINY_PAIRS, "--epochs", "5", "--save", "m.npz",
                        "--plot", "acc.png"]) == 130
    err = capsys.readouterr().err
    assert "saved m.npz (its parameters when the run stopped, at epoch 2, iteration 4)" in err
    assert err.strip().endswith("no checkpoint was asked for")
    assert (here / "acc.png").is_file()
    arrays, meta = load_npz("m.npz")  # (of the test's subclass of Seq2seq)
    assert "encoder.lstm.Wh" in arrays and meta["accuracy"] is None  # not measured


def test_train_seq2seq_a_full_disk_at_a_checkpoint_keeps_the_model(here, pairs_file,
                                                                   monkeypatch, capsys):
    fail_checkpoints_after(monkeypatch, good_writes=1)
    assert load_script("train_seq2seq").main(
        ["--data", pairs_file, *TINY_PAIRS, "--epochs", "3", "--save", "m.npz", "--plot",
         "none", "--checkpoint", "ck.npz"]) == 1
    err = capsys.readouterr().err
    assert "error: cannot write the checkpoint ck.npz (No space left on device)" in err
    # (The trainer wrote epoch 1's; the script's second write, with the epoch's accuracy, failed.)
    assert "saved m.npz (its parameters when the run stopped, after epoch 1)" in err
    assert "Traceback" not in err and (here / "m.npz").is_file()


def test_train_seq2seq_a_plot_that_cannot_be_written_is_a_warning(here, pairs_file,
                                                                  monkeypatch, capsys):
    module = load_script("train_seq2seq")

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, "plot_accuracy", full_disk)
    assert module.main(["--data", pairs_file, *TINY_PAIRS, "--save", "m.npz", "--plot",
                        "acc.png"]) == 0
    err = capsys.readouterr().err
    assert "warning: could not write the plot --plot acc.png" in err
    assert (here / "m.npz").is_file()


def test_train_seq2seq_refuses_damaged_checkpoints_and_saved_models(here, pairs_file, capsys):
    main = load_script("train_seq2seq").main
    assert main(["--data", pairs_file, *TINY_PAIRS, "--epochs", "1", "--plot", "none",
                 "--checkpoint", "ck.npz", "--save", "m.npz"]) == 0
    damage_setting("ck.npz", "bad.npz", "batch_size", "x")
    err = usage_error(main, ["--resume", "bad.npz", "--epochs", "2"], capsys)
    assert "the checkpoint is damaged: its setting --batch-size is 'x'" in err
    damage_setting("ck.npz", "bad2.npz", "history", {"greedy": "x"})
    err = usage_error(main, ["--resume", "bad2.npz", "--epochs", "2"], capsys)
    assert "accuracy history's 'greedy' is 'x'" in err

    arrays, meta = load_npz("m.npz")
    save_npz("config.npz", arrays, {**meta, "config": [4]})
    assert main(["--data", pairs_file, *TINY_PAIRS, "--epochs", "0", "--load",
                 "config.npz", "--plot", "none"]) == 2
    assert "its model config is [4], not a mapping" in capsys.readouterr().err
    arrays = {k: np.full_like(v, np.inf) if v.dtype.kind == "f" else v
              for k, v in arrays.items()}
    save_npz("inf.npz", arrays, meta)
    assert main(["--data", pairs_file, *TINY_PAIRS, "--epochs", "0", "--load", "inf.npz",
                 "--plot", "none"]) == 2
    assert "hold NaN or infinite values" in capsys.readouterr().err


def test_train_seq2seq_names_resume_when_the_checkpoint_was_not_given(here, pairs_file):
    module = load_script("train_seq2seq")
    problem = "--checkpoint ro/ck.npz: cannot write in ro (permission denied)"
    args = type("Args", (), {"resume": "ro/ck.npz"})()
    assert module.resumed_checkpoint_words(problem, args, explicit={"resume"}).startswith(
        "--resume ro/ck.npz: cannot write")
    assert module.resumed_checkpoint_words(problem, args, {"resume", "checkpoint"}) == problem


def test_train_seq2seq_refuses_a_pickle_checkpoint_name(pairs_file, here, capsys):
    err = usage_error(load_script("train_seq2seq").main,
                      ["--data", pairs_file, *TINY_PAIRS, "--checkpoint", "run.pkl"], capsys)
    assert "--checkpoint run.pkl: rnnlab never writes (or reads) pickles" in err


def test_an_unreadable_checkpoint_version_is_not_sent_to_load(here, pairs_file, capsys):
    main = load_script("train_seq2seq").main
    assert main(["--data", pairs_file, *TINY_PAIRS, "--epochs", "1", "--plot", "none",
                 "--checkpoint", "ck.npz"]) == 0
    arrays, meta = load_npz("ck.npz")
    save_npz("v2.npz", arrays, {**meta, "version": 2})
    err = usage_error(main, ["--resume", "v2.npz"], capsys).splitlines()[-1]
    assert "checkpoint version 2" in err and "--load" not in err


# -- generate_text.py ---------------------------------------------------------------------


def test_generate_text_says_what_is_wrong_with_a_file_in_its_own_words(here, pairs_file,
                                                                       capsys):
    import pickle

    def generate_error(argv):
        assert load_script("generate_text").main(argv) == 2
        return capsys.readouterr().err

    assert load_script("train_rnnlm").main([*TINY_LM, "--epochs", "1", "--save", "m.npz",
                                            "--plot", "none"]) == 0
    Path("checkpoints").mkdir()
    Path("checkpoints/model.npz").write_bytes(Path("m.npz").read_bytes()[:2000])
    err = generate_error(["--model", "checkpoints/model.npz"])
    assert "damaged or truncated" in err and "training checkpoint" not in err
    Path("p.npz").write_bytes(pickle.dumps([1, 2]))
    assert "looks like a Python pickle" in generate_error(["--model", "p.npz"])
    assert load_script("train_seq2seq").main(
        ["--data", pairs_file, *TINY_PAIRS, "--epochs", "1", "--plot", "none", "--checkpoint",
         "s.npz"]) == 0
    err = generate_error(["--model", "s.npz"])
    assert "checkpoint of a sequence-to-sequence run (train_seq2seq.py --checkpoint)" in err


def test_a_reproduction_s_val_and_eval_can_be_turned_off(here):
    reproduce = load_script("reproduce_textbook_lstm")
    args, _ = load_script("train_rnnlm").parse_args(["--no-val", "--no-eval"],
                                                    defaults=reproduce.DEFAULTS)
    assert args.val is False and args.eval is False
    args, _ = load_script("train_rnnlm").parse_args([], defaults=reproduce.DEFAULTS)
    assert args.eval is reproduce.DEFAULTS.get("eval", False)


# -- matplotlib that cannot start -------------------------------------------------------


@pytest.mark.parametrize("script, argv, message", [
    ("train_rnnlm", [*TINY_LM, "--plot", "p.png"],
     "error: --plot needs matplotlib, which cannot start ("),
    ("train_seq2seq", [*TINY_PAIRS],
     "--plot and --attention-plot need matplotlib, which cannot start ("),
    ("gradient_through_time", ["--iters", "1"],
     "--plot needs matplotlib, which cannot start ("),
])
def test_a_plot_that_matplotlib_cannot_draw_is_refused_before_the_run(script, argv, message,
                                                                     here, monkeypatch,
                                                                     capsys):
    """A mistyped MPLBACKEND (or a broken matplotlib) made ``import matplotlib``
    fail: the run trained to its end, then lost its plot. (Here the import
    of the figure module fails, as it would.)"""
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    err = usage_error(load_script(script).main, argv, capsys)
    assert message in err and "fix that (MPLBACKEND=agg draws to files), or pass" in err
    assert os.listdir(here) == []


# -- a log file whose disk fills --------------------------------------------------------


class FillingLog:
    """A stdout redirected to a file on a disk with room for ``room``
    characters: a write beyond them raises ``No space left on device``."""

    encoding = "utf-8"

    def __init__(self, file, room):
        self.file, self.room = file, room

    def write(self, text):
        if len(text) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(text)
        return self.file.write(text)

    def flush(self):
        self.file.flush()

    def fileno(self):
        return self.file.fileno()

    def isatty(self):
        return False


def test_a_log_whose_disk_fills_does_not_end_the_run(here, monkeypatch, capsys):
    """``train_rnnlm.py ... > /full/log.txt``: the first print that found the
    disk full ended the run in a traceback, its model unsaved."""
    with open(here / "log.txt", "w") as log:
        monkeypatch.setattr(sys, "stdout", FillingLog(log, room=300))
        status = load_script("train_rnnlm").main(
            ["--corpus", "synthetic", "--corpus-size", "800", "--batch-size", "4",
             "--wordvec-size", "8", "--hidden-size", "8", "--epochs", "3", "--log-every", "1",
             "--save", "m.npz", "--plot", "none"])
    err = capsys.readouterr().err
    assert status == 0 and "Traceback" not in err
    assert err.count("notice: stdout cannot be written (No space left on device); the run "
                     "goes on without printing") == 1
    assert load_npz("m.npz")[1]["model"] == "SimpleRnnlm"
