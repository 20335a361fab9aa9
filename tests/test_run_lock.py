"""One training at a time per checkpoint file (common.run_lock).

Two trainings writing one checkpoint path replaced each other's file in
turn, and a run resumed later continued whichever wrote last. Now the
second is refused before its first batch, by ``fit`` and by the training
scripts, naming the process that holds the file; a holder that was
killed holds nothing.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from common.cli import run_holding_checkpoint
from common.optimizer import SGD, Adam
from common.run_lock import CheckpointInUse, holding_checkpoint, lock_path
from common.trainer import RnnlmTrainer, Trainer
from models import Seq2seq, SimpleRnnlm

from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
needs_flock = pytest.mark.skipif(sys.platform == "win32", reason="no fcntl.flock on Windows")

def small_lm():
    model = SimpleRnnlm(20, 8, 8, seed=0)
    corpus = np.random.default_rng(0).integers(0, 20, 401)
    return model, corpus


@needs_flock
def test_fit_is_refused_while_another_process_trains_to_the_same_checkpoint(tmp_path, holder):
    path = tmp_path / "run.npz"
    other = holder(path)
    model, corpus = small_lm()
    before = [p.copy() for p in model.params]
    trainer = RnnlmTrainer(model, SGD(0.1))
    with pytest.raises(CheckpointInUse, match=f"another training \\(process {other.pid}\\)"):
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=4, time_size=5,
                    checkpoint=path, verbose=False)
    for p, b in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p, b)  # nothing trained
    assert not path.exists()


@needs_flock
def test_a_checkpoint_name_too_long_for_dot_lock_is_locked_too(tmp_path, holder):
    # 252 bytes: the name itself fits the usual 255-byte limit, PATH.lock does not.
    path = tmp_path / ("c" * 248 + ".npz")
    assert len(Path(lock_path(path)).name.encode()) <= 255
    assert Path(lock_path(path)).parent == tmp_path
    other = holder(path)
    model, corpus = small_lm()
    with pytest.raises(CheckpointInUse, match=f"another training \\(process {other.pid}\\)"):
        RnnlmTrainer(model, SGD(0.1)).fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=4,
                                          time_size=5, checkpoint=path, verbose=False)


@needs_flock
def test_a_killed_holder_holds_nothing_and_a_finished_fit_leaves_no_lock_file(tmp_path, holder):
    path = tmp_path / "run.npz"
    other = holder(path)
    other.send_signal(signal.SIGKILL)
    other.wait(timeout=30)
    assert Path(lock_path(path)).exists()  # left by the killed process, and held by none
    model, corpus = small_lm()
    RnnlmTrainer(model, SGD(0.1)).fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=4,
                                      time_size=5, checkpoint=path, verbose=False)
    assert path.exists() and not Path(lock_path(path)).exists()


@needs_flock
def test_holds_nest_within_a_process(tmp_path):
    # The scripts hold the file for their whole run, and call fit inside.
    path = tmp_path / "pairs.npz"
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 13, (64, 7)), rng.integers(0, 13, (64, 5))
    trainer = Trainer(Seq2seq(13, 8, 16, seed=0), Adam())
    with holding_checkpoint(path):
        for _ in range(2):  # the book's loop of one-epoch fit calls
            trainer.fit(x, t, max_epoch=1, batch_size=32, checkpoint=path, verbose=False)
        assert Path(lock_path(path)).exists()
    assert not Path(lock_path(path)).exists()


FORKS_WHILE_HOLDING = """
    import os, signal, sys, time
    from common.run_lock import holding_checkpoint
    with holding_checkpoint(sys.argv[1]):
        child = os.fork()
        if child == 0:
            print("child", os.getpid(), flush=True)  # (after the fork's hooks have run)
            time.sleep(60)
            os._exit(0)
        os.kill(os.getpid(), signal.SIGKILL)  # ends holding it: nothing released
"""


@needs_flock
def test_a_forked_child_does_not_keep_its_parents_hold(tmp_path):
    # (A lock is held while any copy of its file descriptor is open.)
    path = tmp_path / "run.npz"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(FORKS_WHILE_HOLDING),
                               str(path)], stdout=subprocess.PIPE, env=env, text=True)
    child = None
    try:
        child = int(parent.stdout.readline().split()[1])
        parent.wait(timeout=30)
        with holding_checkpoint(path):  # taken, although the child still runs
            os.kill(child, 0)
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait(timeout=30)
        parent.stdout.close()


@needs_flock
def test_a_script_run_holds_the_checkpoint_throughout_and_gives_its_status(tmp_path, capsys):
    # What both training scripts' main does: common.cli.run_holding_checkpoint.
    path = tmp_path / "run.npz"

    def run(status):
        assert Path(lock_path(path)).exists()  # held while the run goes on
        return status

    assert run_holding_checkpoint(str(path), run, 3) == 3
    assert not Path(lock_path(path)).exists()
    assert run_holding_checkpoint(None, lambda: 0) == 0  # no checkpoint: nothing to hold
    assert capsys.readouterr().err == ""


@needs_flock
def test_train_seq2seq_refuses_a_checkpoint_another_run_writes(tmp_path, holder, capsys):
    path = tmp_path / "add.npz"
    other = holder(path)
    started = time.monotonic()
    status = load_script("train_seq2seq").main(
        ["--task", "addition", "--epochs", "1", "--checkpoint", str(path), "--plot", "none"])
    assert status == 1
    err = capsys.readouterr().err
    assert f"error: checkpoint {path} is in use" in err and f"process {other.pid}" in err
    assert not path.exists() and time.monotonic() - started < 60  # before any training


@needs_flock
def test_train_rnnlm_refuses_a_checkpoint_another_run_writes(tmp_path, holder, capsys):
    path = tmp_path / "lm.npz"
    other = holder(path)
    status = load_script("train_rnnlm").main(
        ["--corpus", "synthetic", "--epochs", "1", "--checkpoint", str(path), "--plot", "none",
         "--quiet"])
    assert status == 1
    err = capsys.readouterr().err
    assert f"error: checkpoint {path} is in use" in err and f"process {other.pid}" in err
    assert not path.exists()
