"""The benchmark and the timing scripts, as a tester found them (four defects).

1. ``benchmark.py --check`` required both forms of the character level's
   target (within 1.5 x PyTorch, *or* within 1.15 x the two-core bound).
2. ``python -m benchmarks.contention`` and ``python -m
   benchmarks.seq2seq_parts`` ended on Ctrl-C with tracebacks (the
   contention's timing processes too) and on SIGTERM without a line.
3. A closed or full stdout (``| head``, ``> /dev/full``) ended a benchmark
   or a timing in a ``BrokenPipeError`` traceback.
4. An older revision that the timing scripts accept but cannot time gave a
   traceback from inside its code instead of a usage error.

Tiny sizes, faked timings: the figures themselves are never checked here.
"""

import errno
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import types
from pathlib import Path

import pytest

from benchmarks import char_level, command_line, contention, harness
from benchmarks import main as benchmark

from helper_processes import descendants, gone, wait_for
from script_loader import (  # noqa: F401  (sys_path_kept: a fixture for every test here)
    load_script,
    sys_path_kept,
    usage_error_line,
)

ROOT = Path(__file__).resolve().parent.parent
ON_LINUX = os.path.isdir("/proc")


def env(**settings):
    """The environment of a script run by a test: each line written as it is
    printed (as to a terminal), for a test that acts once it has read one."""
    return dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", PYTHONUNBUFFERED="1",
                **settings)


def has_revision(revision, path=""):
    """Whether this checkout's git history holds ``revision`` (and ``path`` there)."""
    try:
        found = subprocess.run(["git", "cat-file", "-e", f"{revision}^{{commit}}"], cwd=ROOT,
                               capture_output=True, check=False)
        if found.returncode == 0 and path:
            found = subprocess.run(["git", "cat-file", "-e", f"{revision}:{path}"], cwd=ROOT,
                                   capture_output=True, check=False)
    except OSError:
        return False
    return found.returncode == 0


# -- 1. one target in two forms ---------------------------------------------------------------


def fake_char_timings(monkeypatch, rnnlab_ms, torch_ms, bound_ms):
    """The character-level section of one LSTM row (H = 8, N = 4, T = 5) with
    these medians, PyTorch faked (no import, no model): only the report is real."""
    times = {"rnnlab": rnnlab_ms / 1e3, "torch": torch_ms / 1e3}

    def round_robin(group, rounds, warmup, samples, context=None):
        for name in group:
            samples[name].append(times[name])

    fake_torch = types.SimpleNamespace(
        __version__="0.fake", set_num_threads=lambda n: None, get_num_threads=lambda: 2,
        backends=types.SimpleNamespace(mkl=types.SimpleNamespace(is_available=lambda: False)))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setattr(char_level, "QUICK_CONFIGS", [("lstm", 8)])
    monkeypatch.setattr(char_level, "N", 4)
    monkeypatch.setattr(char_level, "T", 5)
    monkeypatch.setattr(char_level, "round_robin", round_robin)
    monkeypatch.setattr(char_level, "settle", lambda: None)
    monkeypatch.setattr(char_level, "bound_ms", lambda *args, **kwargs: bound_ms)
    monkeypatch.setattr(char_level, "torch_char_step", lambda *args: lambda: None)


def test_check_passes_when_the_torch_form_of_the_char_target_is_met(monkeypatch, capsys):
    """rnnlab / torch 1.44 <= 1.5 met the target; rnnlab / bound 2.25 > 1.15
    made --check exit 1 all the same."""
    fake_char_timings(monkeypatch, rnnlab_ms=14.4, torch_ms=10.0, bound_ms=6.4)
    assert benchmark.main(["--only", "char", "--quick", "--check"]) == 0
    report = capsys.readouterr().out.split("== targets")[1]
    assert "one target in two forms" in report
    assert "char LSTM H=8 / torch" in report and "char LSTM H=8 / bound" in report
    assert "MISSED" not in report


def test_check_passes_when_the_bound_form_of_the_char_target_is_met(monkeypatch, capsys):
    fake_char_timings(monkeypatch, rnnlab_ms=7.0, torch_ms=2.0, bound_ms=6.4)
    assert benchmark.main(["--only", "char", "--quick", "--check"]) == 0
    assert "MISSED" not in capsys.readouterr().out.split("== targets")[1]


def test_check_fails_when_neither_form_of_the_char_target_is_met(monkeypatch, capsys):
    fake_char_timings(monkeypatch, rnnlab_ms=20.0, torch_ms=10.0, bound_ms=6.4)
    assert benchmark.main(["--only", "char", "--quick", "--check"]) == 1
    report = capsys.readouterr().out.split("== targets")[1]
    assert "one target in two forms" in report and "MISSED" in report


def test_json_says_which_targets_are_met_and_of_which_target_a_form_is(monkeypatch, capsys):
    fake_char_timings(monkeypatch, rnnlab_ms=14.4, torch_ms=10.0, bound_ms=6.4)
    assert benchmark.main(["--only", "char", "--quick", "--check", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["targets_met"] == {"char LSTM H=8": True}
    forms = {t["name"]: t for t in results["targets"]}
    assert forms["char LSTM H=8 / torch"]["ok"] and not forms["char LSTM H=8 / bound"]["ok"]
    assert {t["form_of"] for t in results["targets"]} == {"char LSTM H=8"}


# -- 2. Ctrl-C and SIGTERM of every python -m benchmarks.X ------------------------------------


def shared_memory_names(pids):
    """The names in /dev/shm made by one of ``pids`` (``rnnlab_PID_RANDOM``)."""
    if not os.path.isdir("/dev/shm"):
        return []
    return [name for name in os.listdir("/dev/shm")
            if any(name.startswith(f"rnnlab_{pid}_") for pid in pids)]


@pytest.mark.skipif(not ON_LINUX, reason="finds the processes in /proc")
@pytest.mark.parametrize("module, argv", [
    ("benchmarks.contention", ["--repeats", "50"]),
    ("benchmarks.seq2seq_parts", ["--repeats", "150"]),
], ids=["contention", "seq2seq_parts"])
@pytest.mark.parametrize("how, exit_status, line", [(signal.SIGINT, 130, "interrupted"),
                                                   (signal.SIGTERM, 143, "terminated")])
def test_a_benchmark_module_ends_on_a_signal_with_one_line_and_nothing_left(
        tmp_path, module, argv, how, exit_status, line):
    """The signal goes to the whole process group once the module has printed
    its first line and started a process of its own, as `timeout -s INT`
    and a terminal's Ctrl-C send it: exit 130 or 143, one line on stderr,
    every process it started gone, nothing of theirs left in /dev/shm."""
    # Ctrl-C's default action in the child, even where pytest runs with SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", module, *argv], cwd=tmp_path, env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    started = []
    try:
        assert proc.stdout.readline(), proc.stderr.read()
        assert wait_for(lambda: started.extend(descendants(proc.pid)) or started), \
            "it started no process"
        os.killpg(proc.pid, how)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == exit_status, err
    assert err.strip() == line
    assert all(wait_for(lambda pid=pid: gone(pid), 15) for pid in started)
    assert shared_memory_names([proc.pid, *started]) == []


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt),
                                             (signal.SIGTERM, command_line.Terminated)])
def test_a_signal_that_comes_while_held_is_raised_as_the_block_ends(signum, raised):
    """What ``signals_held`` guards (starting a timing process) is done whole."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        with command_line.sigterm_raises(), pytest.raises(raised):
            with command_line.signals_held():
                os.kill(os.getpid(), signum)
                time.sleep(0.05)  # (a handler would run here)
                done.append(True)
        assert done == [True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_contention_ends_its_timing_processes_when_interrupted(monkeypatch):
    """An interrupt while a timing process runs (here: while the first of a
    pair is read) ends every process it started."""
    started = []
    real_start = contention._start

    def start(*args):
        started.append(real_start(*args))
        return started[-1]

    def interrupted_on_the_pair(process):
        if len(started) == 3:
            raise KeyboardInterrupt
        return 1.0  # (the process alone goes on timing)

    monkeypatch.setattr(contention, "_start", start)
    monkeypatch.setattr(contention, "_us", interrupted_on_the_pair)
    try:
        with pytest.raises(KeyboardInterrupt):
            contention.measure((4, 8, 16), 200)
        assert len(started) == 3 and all(p.poll() is not None for p in started)
    finally:
        for process in started:
            process.kill()
            process.wait()


# -- 3. a stdout that closes or fills -----------------------------------------------------------


class ClosingStream(io.StringIO):
    """A stdout whose reader goes away (``| head -N``) after ``lines`` lines,
    or a file whose disk is full (``> /dev/full``: ``lines=0, error=ENOSPC``)."""

    def __init__(self, lines, error=errno.EPIPE):
        super().__init__()
        self.left, self.error = lines, error

    def write(self, text):
        if self.left <= 0:
            raise (BrokenPipeError if self.error == errno.EPIPE else OSError)(
                self.error, os.strerror(self.error))
        self.left -= text.count("\n")
        return super().write(text)


def tiny_char_section(monkeypatch):
    monkeypatch.setattr(char_level, "QUICK_CONFIGS", [("lstm", 8), ("gru", 8)])
    monkeypatch.setattr(char_level, "N", 4)
    monkeypatch.setattr(char_level, "T", 5)
    monkeypatch.setattr(char_level, "settle", lambda: None)


@pytest.mark.parametrize("error", [errno.EPIPE, errno.ENOSPC], ids=["| head -2", "> /dev/full"])
def test_the_benchmark_goes_on_when_stdout_closes(monkeypatch, capsys, error):
    """`benchmark.py --only char --quick --no-torch | head -2` ended in a
    BrokenPipeError traceback from harness.say, exit 1."""
    tiny_char_section(monkeypatch)
    stdout = ClosingStream(2 if error == errno.EPIPE else 0, error)
    monkeypatch.setattr(sys, "stdout", stdout)
    # A reader that stopped wanted no more; a full disk lost the results: 1.
    # (It exited 0, the figures lost, even those of --json.)
    full = error == errno.ENOSPC
    assert benchmark.main(["--only", "char", "--quick", "--no-torch"]) == (1 if full else 0)
    assert sys.stdout is stdout
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("notice: stdout ") and len(err) == 1 + full
    assert not full or err[1].startswith("error: the results could not be written to stdout "
                                         "(No space left on device): they are lost")
    assert harness.report_stream() is stdout  # given back


def test_json_on_stdout_is_whole_when_the_report_on_stderr_cannot_be_written(monkeypatch,
                                                                               capsys):
    tiny_char_section(monkeypatch)
    monkeypatch.setattr(sys, "stderr", ClosingStream(0, errno.ENOSPC))
    assert benchmark.main(["--only", "char", "--quick", "--no-torch", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert "char_level" in results


def test_contention_goes_on_when_stdout_closes(monkeypatch, capsys):
    monkeypatch.setattr(contention, "SHAPES", [(128, 128, 128), (128, 128, 64)])
    monkeypatch.setattr(sys, "stdout", ClosingStream(1))
    assert contention.command(["--repeats", "1"]) == 0
    assert capsys.readouterr().err.startswith("notice: stdout was closed")


def test_seq2seq_modules_go_on_when_stdout_closes(monkeypatch, capsys):
    """``python -m benchmarks.seq2seq_speed`` and ``.seq2seq_parts``: their
    tables (faked here) printed to a reader gone."""
    from benchmarks import seq2seq_parts, seq2seq_speed

    monkeypatch.setattr(seq2seq_speed, "run", lambda args: print("a table"))
    monkeypatch.setattr(seq2seq_parts, "load_task", lambda *args, **kwargs: ([[1]], [[1]], 0, 0, 5))
    monkeypatch.setattr(seq2seq_parts, "parts_ms", lambda *args: (1.0,) * 5)
    monkeypatch.setattr(seq2seq_parts, "reference_ms", lambda *args: 1.0)
    monkeypatch.setattr(seq2seq_parts, "step_pieces_us", lambda repeats: (1.0, 1.0))
    monkeypatch.setattr(sys, "stdout", ClosingStream(0))
    assert seq2seq_speed.command(["--iters", "1"]) == 0
    assert seq2seq_parts.main(["--repeats", "1"]) == 0
    notices = capsys.readouterr().err.splitlines()
    assert len(notices) == 2 and all(n.startswith("notice: stdout was closed") for n in notices)


def read_first_line_then_close(argv):
    """Run a script whose reader goes away after its first line (``| head -1``)."""
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.stderr.close()
    return first, err, proc.returncode


def timing(script, sizes):
    """The command line of a timing script of ``sizes`` tiny hidden sizes."""
    sizes = ["--hidden", *["4"] * sizes]
    tiny = ["--batch", "2", "--time", "3", "--input", "4", "--rounds", "1"]
    return [str(ROOT / "scripts" / script), *sizes,
            *(tiny if script == "time_recurrent_layers.py" else [])]


TIMINGS = ["time_lstm_loops.py", "time_recurrent_layers.py"]


@pytest.mark.parametrize("script", TIMINGS)
def test_a_timing_piped_to_head_ends_without_a_traceback(script):
    first, err, code = read_first_line_then_close(timing(script, 6))
    assert first
    assert "Traceback" not in err and "Error" not in err, err
    assert code == 0, err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("script", TIMINGS)
def test_a_timing_written_to_a_full_disk_ends_without_a_traceback(script):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, *timing(script, 2)], cwd=ROOT, env=env(),
                              stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and done.stderr.startswith("notice: stdout cannot be written")
    assert "error: the results could not be written to stdout" in done.stderr


def test_time_fit_goes_on_when_stdout_closes(monkeypatch, capsys):
    import numpy as np

    from common.trainer import RnnlmTrainer

    time_fit = load_script("time_fit")
    corpus = np.arange(20_000, dtype=np.int32) % 10_000
    monkeypatch.setattr(time_fit, "load_ptb", lambda parser, splits, data_dir: [corpus])
    monkeypatch.setattr(RnnlmTrainer, "fit", lambda *args, **kwargs: None)
    monkeypatch.setattr(sys, "stdout", ClosingStream(0))
    assert time_fit.main([]) == 0
    assert capsys.readouterr().err.startswith("notice: stdout was closed")


def fake_training(monkeypatch, module):
    """``module``'s PTB, model and trainer faked: its timing prints at once."""
    import numpy as np

    corpus = np.arange(20_000, dtype=np.int32) % 10_000
    trainer = types.SimpleNamespace(fit=lambda *args, **kwargs: None, optimizer=None)
    monkeypatch.setattr(module, "load_ptb", lambda parser, splits, data_dir: [corpus] * len(splits))
    monkeypatch.setattr(module, "BetterRnnlm", lambda *args, **kwargs: None)
    monkeypatch.setattr(module, "RnnlmTrainer", lambda model, optimizer: trainer)


@pytest.mark.parametrize("name", ["time_medium_config", "time_zaremba_small"])
def test_a_timing_of_ptb_goes_on_when_stdout_closes(monkeypatch, capsys, name):
    module = load_script(name)
    fake_training(monkeypatch, module)
    argv = []
    if name == "time_zaremba_small":
        parts = ["out: h @ W", "out: h.T @ dy", "out: dy @ W.T", "exp over the logits",
                 "lstm: x @ Wx", "lstm: x.T @ dA", "lstm: dA @ Wx.T", "lstm: h @ Wh",
                 "lstm: exp over the gates", "lstm: tanh(c)", "update: p - g"]
        monkeypatch.setattr(module, "eval_perplexity", lambda *args, **kwargs: 1.0)
        monkeypatch.setattr(module, "stage_times", lambda *args, **kwargs: {"stage": 1e-3})
        monkeypatch.setattr(module, "bound_parts", lambda repeats: dict.fromkeys(parts, 1e-4))
        argv = ["--iters", "1"]
    monkeypatch.setattr(sys, "stdout", ClosingStream(0))
    assert module.main(argv) == 0
    assert capsys.readouterr().err.startswith("notice: stdout was closed")


# -- 4. an older revision the timing scripts accept but cannot time ------------------------------


@pytest.mark.skipif(not has_revision("1c5d22b", "layers/gru.py"),
                    reason="needs the git history of rnnlab (revision 1c5d22b)")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_time_recurrent_layers_refuses_a_revision_whose_layer_fails_when_called(capsys, cell):
    """1c5d22b's TimeLSTM calls for_batch_blocks without multiply_adds, its
    TimeGRU defers lambdas of no arguments: a TypeError traceback each."""
    time_recurrent_layers = load_script("time_recurrent_layers")
    line = usage_error_line(capsys, time_recurrent_layers.main, [
        "--against", "1c5d22b", "--cell", cell, "--hidden", "8", "--batch", "2", "--time", "3",
        "--input", "4", "--rounds", "1"])
    assert "--against 1c5d22b" in line and f"layers/{cell}.py" in line
    assert "cannot be timed by this script" in line and "give a later revision" in line


def fake_checkout(folder):
    """A folder holding the three packages, which --repo takes for a checkout."""
    for package in ("common", "layers", "models"):
        (folder / package).mkdir(parents=True)
        (folder / package / "__init__.py").write_text("")
    return folder


def test_time_lstm_loops_refuses_a_checkout_whose_layer_fails_when_called(
        tmp_path, capsys, monkeypatch):
    """Imported, built, then its first forward fails: a usage error naming the checkout.
    (The packages imported are this process's, the layer's forward broken.)"""
    from layers import TimeLSTM

    def older_forward(self, xs):
        raise TypeError("for_batch_blocks() got an unexpected keyword argument 'multiply_adds'")

    monkeypatch.setattr(TimeLSTM, "forward", older_forward)
    time_lstm_loops = load_script("time_lstm_loops")
    repo = fake_checkout(tmp_path / "old")
    line = usage_error_line(capsys, time_lstm_loops.main, ["--repo", str(repo), "--hidden", "4"])
    assert f"--repo {repo}" in line and "cannot be timed by this script" in line
    assert "multiply_adds" in line and "give a checkout of a later revision" in line


def test_time_fit_refuses_a_checkout_whose_fit_fails(tmp_path, capsys, monkeypatch):
    import numpy as np

    from common.trainer import RnnlmTrainer

    def older_fit(self, *args, **kwargs):
        raise TypeError("fit() got an unexpected keyword argument 'max_grad'")

    time_fit = load_script("time_fit")
    corpus = np.arange(20_000, dtype=np.int32) % 10_000
    monkeypatch.setattr(time_fit, "load_ptb", lambda parser, splits, data_dir: [corpus])
    monkeypatch.setattr(RnnlmTrainer, "fit", older_fit)
    repo = fake_checkout(tmp_path / "old")
    line = usage_error_line(capsys, time_fit.main, ["--repo", str(repo)])
    assert f"--repo {repo}" in line and "cannot be timed by this script" in line
    assert "max_grad" in line and "give a checkout of a later revision" in line


@pytest.mark.skipif(not has_revision("ee79d7b"),
                    reason="needs the git history of rnnlab (revision ee79d7b)")
def test_time_lstm_loops_refuses_a_checkout_without_what_it_imports(tmp_path):
    """ee79d7b's common.parallel has no managed(): an ImportError traceback."""
    archive = subprocess.run(["git", "archive", "ee79d7b", "common", "layers", "models"],
                             cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path / "pre", filter="data")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "time_lstm_loops.py"),
                           "--repo", str(tmp_path / "pre"), "--hidden", "8"], cwd=tmp_path,
                          env=env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert f"--repo {tmp_path / 'pre'}" in line and "cannot be timed by this script" in line
    assert "managed" in line


@pytest.mark.parametrize("error", ["ImportError", "OSError"])
def test_a_torch_that_cannot_be_imported_is_named_and_its_targets_missed_under_check(
        monkeypatch, capsys, tmp_path, error):
    """A broken install raises OSError (a library missing), which was a
    traceback; a missing one said only "not installed or --no-torch", and
    --check passed without the targets against PyTorch."""
    tiny_char_section(monkeypatch)
    (tmp_path / "torch.py").write_text(f"raise {error}('libtorch_cpu.so: cannot open')\n")
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert benchmark.main(["--only", "char", "--quick", "--check"]) == 1
    out = capsys.readouterr().out
    assert f"torch          cannot be imported ({error}: libtorch_cpu.so: cannot open): " \
           f"comparisons skipped" in out
    assert "the targets against PyTorch: not measured (torch cannot be imported" in out
    assert out.split("the targets against PyTorch")[1].splitlines()[0].endswith(": MISSED")
    benchmark.main(["--only", "char", "--quick", "--check", "--no-torch"])
    line = capsys.readouterr().out.split("the targets against PyTorch")[1].splitlines()[0]
    assert line == ": not measured (torch --no-torch)"


def test_the_word_levels_bound_is_reported_without_torch(capsys):
    # (It is rnnlab's own figure, but was said, and written to the JSON, only
    # beside PyTorch's.)
    from benchmarks import word_level

    run = harness.Run(quick=True, data_dir=None)
    samples = {"rnnlab lstm": [0.010, 0.011, 0.012]}
    entry = word_level._report_model(run, "lstm", samples, {"rnnlab lstm": 0.011},
                                     {"rnnlab lstm": 0.010}, 0.008, 0.007, {"lstm": 0.005},
                                     {"lstm": {"rnnlab": 9.2}}, {}, with_torch=False)
    assert entry["bound_ms"] == pytest.approx(5.0) and entry["ratio_to_bound"] == pytest.approx(2.2)
    assert "LSTM   two-core bound 5.00 ms: rnnlab / bound = 2.200" in capsys.readouterr().out
