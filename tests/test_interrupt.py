"""Ctrl-C during training: a checkpoint and the plot are written, a one-line
message says how to resume, the process exits cleanly (code 130), nothing
half-written stays on disk, and the resumed run finishes the job."""

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.checkpoint import read_checkpoint
from common.optimizer import Adam
from common.trainer import RnnlmTrainer, TrainingInterrupted
from models import SimpleRnnlm, load_model

from script_loader import load_script

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends SIGINT (POSIX signals)")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_rnnlm.py"
V, D, H = 50, 16, 16
FIT = dict(batch_size=4, time_size=5, eval_interval=5, verbose=False)


@pytest.fixture(scope="module")
def corpus():
    ids = np.random.default_rng(3).integers(0, V, size=801).astype(np.int32)
    return ids[:-1], ids[1:]  # 800 positions: 40 iterations an epoch


class CtrlC(SimpleRnnlm):
    """Presses Ctrl-C (sends itself SIGINT) during the listed forwards."""

    press_at = ()

    def forward(self, xs, ts):
        self.calls = getattr(self, "calls", 0) + 1
        for _ in range(self.press_at.count(self.calls)):
            os.kill(os.getpid(), signal.SIGINT)
        return super().forward(xs, ts)


def make(seed, press_at=()):
    model = CtrlC(V, D, H, seed=seed)
    model.press_at = press_at
    return RnnlmTrainer(model, Adam(0.01))


def test_ctrl_c_saves_checkpoint_and_plot_and_resumes_bit_for_bit(corpus, tmp_path):
    xs, ts = corpus
    ck, plot = tmp_path / "ck.npz", tmp_path / "ppl.png"
    handler = signal.getsignal(signal.SIGINT)

    trainer = make(seed=1, press_at=(57,))
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(xs, ts, max_epoch=3, checkpoint=ck, plot_path=plot, **FIT)
    # The iteration under way when Ctrl-C came is finished, then training stops.
    message = str(info.value)
    assert "\n" not in message
    assert message == (f"interrupted at epoch 2, iteration 17; resume with "
                       f"trainer.resume({str(ck)!r})")
    assert info.value.checkpoint == ck
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGINT) is handler  # our handler is gone again
    assert ck.exists() and plot.read_bytes().startswith(b"\x89PNG")
    assert sorted(os.listdir(tmp_path)) == ["ck.npz", "ppl.png"]  # no temp files
    assert read_checkpoint(ck)[1]["trainer"]["iteration"] == 17

    straight = make(seed=1).fit(xs, ts, max_epoch=3, **FIT)
    resumed = make(seed=2).resume(ck).fit(xs, ts, max_epoch=3, **FIT)
    for p, q in zip(straight.model.params, resumed.model.params, strict=True):
        assert np.array_equal(p, q)
    assert straight.ppl_list == resumed.ppl_list
    assert straight.history == resumed.history
    # The interrupted trainer itself goes on to the end of its call, too.
    trainer.fit(xs, ts, max_epoch=3, **FIT)
    assert trainer.history == straight.history
    for p, q in zip(straight.model.params, trainer.model.params, strict=True):
        assert np.array_equal(p, q)


def test_ctrl_c_without_a_checkpoint_says_so(corpus, tmp_path):
    xs, ts = corpus
    with pytest.raises(TrainingInterrupted, match="no checkpoint was asked for"):
        make(seed=1, press_at=(3,)).fit(xs, ts, max_epoch=1, **FIT)


def test_a_second_ctrl_c_stops_at_once(corpus, tmp_path):
    xs, ts = corpus
    handler = signal.getsignal(signal.SIGINT)
    trainer = make(seed=1, press_at=(4, 4))
    with pytest.raises(KeyboardInterrupt) as info:
        trainer.fit(xs, ts, max_epoch=1, checkpoint=tmp_path / "ck.npz", **FIT)
    assert type(info.value) is KeyboardInterrupt  # not the orderly TrainingInterrupted
    assert signal.getsignal(signal.SIGINT) is handler
    assert glob.glob(str(tmp_path / ".*.tmp")) == []


def test_ctrl_c_while_the_last_checkpoint_is_written_stops_once_it_is(corpus, tmp_path,
                                                                     monkeypatch):
    """The call's last checkpoint is written after training, outside the
    loop's handling of Ctrl-C: one there raised a bare KeyboardInterrupt,
    and the script said 'interrupted' without writing the finished model or
    the plot."""
    import common.trainer

    xs, ts = corpus
    ck, plot = tmp_path / "ck.npz", tmp_path / "ppl.png"
    save = common.trainer.Checkpointer.save
    calls = []

    def pressed(self, trainer):  # the second: the end of the call's
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return save(self, trainer)

    monkeypatch.setattr(common.trainer.Checkpointer, "save", pressed)
    trainer = make(seed=1)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(xs, ts, max_epoch=1, checkpoint=ck, plot_path=plot, **FIT)
    assert str(info.value) == (f"interrupted after epoch 1, the end of this fit call; resume "
                               f"with trainer.resume({str(ck)!r})")
    assert len(calls) == 2  # written once, not again for the stop
    assert plot.read_bytes().startswith(b"\x89PNG")
    straight = make(seed=1).fit(xs, ts, max_epoch=1, **FIT)
    stopped = make(seed=2).resume(ck)
    for p, q in zip(straight.model.params, stopped.model.params, strict=True):
        assert np.array_equal(p, q)
    assert stopped.history == straight.history


def test_a_second_ctrl_c_while_the_last_checkpoint_is_written_stops_at_once(corpus, tmp_path,
                                                                           monkeypatch):
    """One Ctrl-C in the last iteration, a second as the call's last
    checkpoint is written: the second interrupts at once, as anywhere."""
    import common.trainer

    xs, ts = corpus
    save = common.trainer.Checkpointer.save
    calls = []

    def pressed(self, trainer):  # the end of the call's: a second Ctrl-C
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return save(self, trainer)

    monkeypatch.setattr(common.trainer.Checkpointer, "save", pressed)
    trainer = make(seed=1, press_at=(40,))  # the epoch's last batch
    with pytest.raises(KeyboardInterrupt) as info:
        trainer.fit(xs, ts, max_epoch=1, checkpoint=tmp_path / "ck.npz", **FIT)
    assert type(info.value) is KeyboardInterrupt


def test_a_ctrl_c_while_the_best_parameters_are_put_back_waits_for_them(corpus, tmp_path,
                                                                        monkeypatch):
    """Put back array by array, a second Ctrl-C there left a mix of the best
    and the last epoch's parameters, on which the next fit trained on."""
    xs, ts = corpus
    fit = dict(max_epoch=2, val_corpus=xs[:200], **FIT)
    dry = make(seed=1)
    dry.fit(xs, ts, **fit)
    trainer = make(seed=1, press_at=(dry.model.calls,))  # the last validation batch
    restore = type(trainer)._restore_best

    def pressed(self, *args):  # a second Ctrl-C as they are put back
        os.kill(os.getpid(), signal.SIGINT)
        return restore(self, *args)

    monkeypatch.setattr(type(trainer), "_restore_best", pressed)
    with pytest.raises(TrainingInterrupted, match="the end of this fit call"):
        trainer.fit(xs, ts, checkpoint=tmp_path / "ck.npz", **fit)
    assert trainer.best_params is not None
    for name, p in trainer.model.named_params().items():
        assert np.array_equal(p, trainer.best_params[name])


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_like_ctrl_c_with_their_own_exit_codes(corpus, tmp_path, name,
                                                                        code, sigterm_raises):
    """SIGTERM (timeout, schedulers, docker stop) and SIGHUP (the terminal
    closed, the SSH connection dropped) stop at an iteration boundary and
    save, as Ctrl-C does. (With ``sigterm_raises`` SIGHUP is not left
    ignored, as it is when pytest runs under nohup.)"""
    signum = getattr(signal, name)

    class Term(SimpleRnnlm):
        def forward(self, xs, ts):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 7:
                os.kill(os.getpid(), signum)
            return super().forward(xs, ts)

    xs, ts = corpus
    ck = tmp_path / "ck.npz"
    handler = signal.getsignal(signum)
    with pytest.raises(TrainingInterrupted) as info:
        RnnlmTrainer(Term(V, D, H, seed=1), Adam(0.01)).fit(xs, ts, max_epoch=2, checkpoint=ck,
                                                            **FIT)
    assert str(info.value) == f"stopped by {name} at epoch 1, iteration 7; resume with " \
                              f"trainer.resume({str(ck)!r})"
    assert (info.value.signal, info.value.exit_code) == (name, code)
    assert signal.getsignal(signum) is handler
    assert read_checkpoint(ck)[1]["trainer"]["iteration"] == 7


def test_a_sighup_ignored_before_training_stays_ignored(corpus, monkeypatch):
    """nohup asks a run to outlive its terminal: neither fit nor a script's
    DeferredTerminate takes SIGHUP over then, and one that comes changes
    nothing."""
    from common.training_guards import DeferredTerminate

    class Hangup(SimpleRnnlm):
        def forward(self, xs, ts):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            return super().forward(xs, ts)

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with DeferredTerminate() as term:
            trainer = RnnlmTrainer(Hangup(V, D, H, seed=1), Adam(0.01))
            trainer.fit(*corpus, max_epoch=1, **FIT)  # (no TrainingInterrupted)
        assert not term.received and trainer.epoch == 1
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- the script, in a real process ------------------------------------------------------


def _script(args, cwd, stdout, stderr):
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.pop("RNNLAB_GPU", None)
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env,
                            stdout=stdout, stderr=stderr)


def _wait_for(condition, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


COMMON = ["--corpus", "synthetic", "--corpus-size", "6000", "--batch-size", "10",
          "--time-size", "5", "--wordvec-size", "32", "--hidden-size", "32", "--seed", "0",
          "--checkpoint", "ck.npz", "--plot", "p.png"]


def test_script_ctrl_c_exits_130_with_a_resume_hint_then_resumes(tmp_path):
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    work = tmp_path / "run"
    work.mkdir()
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = _script([*COMMON, "--epochs", "50", "--checkpoint-every", "10"], work, o, e)
        try:
            started = _wait_for(lambda: (work / "ck.npz").exists(), 60, proc)
            assert started, f"training never got under way: {err.read_text()}"
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = err.read_text()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted at epoch ") and last.endswith("resume with --resume "
                                                                       "ck.npz"), stderr
    assert sorted(os.listdir(work)) == ["ck.npz", "p.png"]  # no .ck.npz.*.tmp left behind
    assert (work / "p.png").read_bytes().startswith(b"\x89PNG")
    _, meta = read_checkpoint(work / "ck.npz")
    done = meta["trainer"]["epoch"]

    # Resume and finish the epoch under way.
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *COMMON, "--resume", "ck.npz", "--epochs", str(done + 1)],
        cwd=work, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    assert result.returncode == 0, result.stderr
    assert "train perplexity" in result.stdout
    _, meta = read_checkpoint(work / "ck.npz")
    assert (meta["trainer"]["epoch"], meta["trainer"]["iteration"]) == (done + 1, 0)
    assert glob.glob(str(work / ".*.tmp")) == []


# Runs the script in a terminal of its own (a pseudo-terminal), then closes the
# terminal once the first epoch's line shows, as a closed window or a dropped SSH
# connection does: the system sends the script SIGHUP, and its writes to the
# terminal fail (EIO). Prints the script's exit status and what it printed.
# ("nohup" first: SIGHUP ignored, as nohup starts a program; the output still
# goes to the terminal here, so the run has to go on printing to nobody.)
IN_A_TERMINAL_THEN_HANG_UP = """
import json, os, pty, select, signal, sys, time
nohup, argv = sys.argv[1] == "nohup", sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:  # (SIGHUP's action set either way: pytest itself may run under nohup)
    signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, *argv])
seen, deadline = b"", time.monotonic() + 120
while b"| epoch 1 " not in seen and time.monotonic() < deadline:
    if not select.select([fd], [], [], 1.0)[0]:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:  # (the script ended)
        break
    if not chunk:
        break
    seen += chunk
os.close(fd)
for _ in range(1200):  # its end; or, two minutes on, its kill: it does not outlive the test
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.1)
else:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), seen.decode(errors="replace")]))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="pseudo-terminals and SIGHUP")
@pytest.mark.parametrize("nohup", [False, True], ids=["terminal closed", "SIGHUP ignored"])
def test_script_whose_terminal_closes_writes_its_files_and_exits_129(tmp_path, nohup):
    """A closed terminal (SIGHUP) ended the run at once: no model, no plot,
    the epochs since the last checkpoint lost; with SIGHUP ignored, its next
    write to the terminal (EIO) did. Now it stops as on SIGTERM, writes
    everything and exits 129; with SIGHUP ignored it trains on to its end."""
    import json

    epochs = 30 if nohup else 300  # (a run that has to end by itself: a short one)
    done = subprocess.run(
        [sys.executable, "-c", IN_A_TERMINAL_THEN_HANG_UP, "nohup" if nohup else "-",
         str(SCRIPT), *COMMON, "--epochs", str(epochs), "--save", "m.npz"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    code, printed = json.loads(done.stdout)
    assert "| epoch 1 " in printed, printed
    _, meta = read_checkpoint(tmp_path / "ck.npz")
    assert code == (0 if nohup else 129), printed
    if nohup:
        assert meta["trainer"]["epoch"] == epochs
    else:
        assert 1 <= meta["trainer"]["epoch"] < epochs  # (stopped, its checkpoint written)
    assert sorted(os.listdir(tmp_path)) == ["ck.npz", "m.npz", "p.png"]  # (the lock gone)
    arrays, _ = read_checkpoint(tmp_path / "ck.npz")  # the model is the checkpoint's
    for name, p in load_model(str(tmp_path / "m.npz"))[0].named_params().items():
        np.testing.assert_array_equal(p, arrays[f"model/{name}"])


PRESS_CTRL_C_WHILE_SAVING = """
import os, runpy, signal, sys
from models import SimpleRnnlm
save_params = SimpleRnnlm.save_params
def pressed(self, *args, **kwargs):  # Ctrl-C as the finished model is being written
    os.kill(os.getpid(), signal.SIGINT)
    return save_params(self, *args, **kwargs)
SimpleRnnlm.save_params = pressed
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_script_ctrl_c_while_the_finished_model_is_written_keeps_it(tmp_path):
    """A KeyboardInterrupt inside --save lost the whole finished run: no
    model, no plot, only 'interrupted'."""
    done = subprocess.run(
        [sys.executable, "-c", PRESS_CTRL_C_WHILE_SAVING, str(SCRIPT), *COMMON, "--epochs", "1",
         "--save", "m.npz"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT)))
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == \
        "interrupted after training (after epoch 1), its files written"
    model, meta = load_model(tmp_path / "m.npz")
    assert isinstance(model, SimpleRnnlm) and meta["vocab"]
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")
    assert glob.glob(str(tmp_path / ".*.tmp")) == []


def test_script_refuses_to_resume_from_a_bad_file(tmp_path, monkeypatch, capsys):
    script = load_script("train_rnnlm")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.npz").write_bytes(b"not a checkpoint at all")

    with pytest.raises(SystemExit) as info:  # a usage error: exit 2, as argparse's
        script.main([*COMMON, "--resume", "bad.npz", "--epochs", "1", "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == ("error: cannot resume: cannot read bad.npz as an rnnlab .npz file: it is not "
                   "an .npz (zip) archive\n")
    assert os.listdir(tmp_path) == ["bad.npz"]


# -- SIGTERM between a script's DeferredTerminate and fit's own handler ---------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_ctrl_c_then_a_sigterm_both_only_ask_to_stop():
    """The first of each asks; the stop keeps the first one's name (a SIGTERM
    after a Ctrl-C ended the process, nothing written). In a process of its
    own: before the change, this one's end."""
    code = """
import os, signal
from common.training_guards import StopOnSignals
with StopOnSignals() as stop:
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    print(stop.requested, signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert (done.returncode, done.stdout.split()) == (0, ["SIGINT", "True"]), done.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_deferred_sigterm_is_known_to_nested_contexts_and_to_fit_in_a_thread(sigterm_raises,
                                                                              corpus):
    import threading

    from common.training_guards import DeferredTerminate

    errors, trainers = [], []

    def fit_in_a_thread():
        try:
            trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), Adam(0.01))
            trainer.fit(*corpus, max_epoch=1, **FIT)
            trainers.append(trainer)
        except BaseException as error:  # noqa: BLE001 - the thread's outcome, checked below
            errors.append(error)

    with DeferredTerminate() as outer:
        with DeferredTerminate() as inner:
            os.kill(os.getpid(), signal.SIGTERM)
        assert inner.received and outer.received
        # After it, the next SIGTERM ends the process: its handler is the default.
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        thread = threading.Thread(target=fit_in_a_thread)
        thread.start()
        thread.join()
    # (fit there takes no signal over; it stops at once, as one in the main thread would.)
    assert len(errors) == 1 and isinstance(errors[0], TrainingInterrupted), errors
