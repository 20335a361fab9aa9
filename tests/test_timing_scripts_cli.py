"""The benchmark's and the timing scripts' command lines, as a user meets them.

Every mistake is a one-line usage error (exit status 2) before any work
starts; Ctrl-C and SIGTERM end a run with one line and 130 or 143, leaving
no helper process or temporary folder behind. Tiny sizes only: the timings
themselves are never checked here.
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import command_line, harness, seq2seq_parts, seq2seq_speed
from benchmarks import main as benchmark
from common import parallel
from common.training_guards import TrainingInterrupted

from helper_processes import children, gone, wait_for
from script_loader import (  # noqa: F401  (sys_path_kept: a fixture for every test here)
    load_script,
    sys_path_kept,
    usage_error_line,
)

ROOT = Path(__file__).resolve().parent.parent
# The PTB files: $RNNLAB_PTB_DIR where set (as CI sets it), else ../shared beside the checkout.
PTB = Path(os.environ.get("RNNLAB_PTB_DIR") or ROOT.parent / "shared" / "data" / "ptb")
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


script = load_script


time_fit = script("time_fit")
time_lstm_loops = script("time_lstm_loops")
time_medium_config = script("time_medium_config")
time_recurrent_layers = script("time_recurrent_layers")
time_zaremba_small = script("time_zaremba_small")


def env(**settings):
    return dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", **settings)


# -- 1. a step worker stopped after Ctrl-C ----------------------------------------------


def stops_within(worker, seconds=10):
    stopper = threading.Thread(target=worker.stop, daemon=True)
    stopper.start()
    stopper.join(seconds)
    return not stopper.is_alive()


def test_a_worker_stops_when_ctrl_c_came_just_after_its_block_was_had():
    """Ctrl-C between ``done.acquire()`` succeeding and the rest of
    ``finish``: ``stop`` waited on ``done`` again, forever."""
    W = np.ones((3, 8), dtype=np.float32)
    out = np.zeros((2, 8), dtype=np.float32)
    worker = parallel._Worker(np.ascontiguousarray(W[:, 4:]), 4, 8)
    worker.start(np.ones((2, 3), dtype=np.float32), out)
    worker.done.acquire()  # finish()'s wait succeeded; the interrupt comes now
    assert stops_within(worker)
    assert worker.future.done() and not worker.pending
    np.testing.assert_array_equal(out[:, 4:], 3)


def test_a_worker_stops_when_finish_is_interrupted_after_its_wait():
    class InterruptedAfterTheWait:
        """``done``, with Ctrl-C arriving just after the first wait succeeded."""

        def __init__(self, lock):
            self.lock, self.waits = lock, 0

        def acquire(self, *args):
            got = self.lock.acquire(*args)
            self.waits += 1
            if self.waits == 1:
                raise KeyboardInterrupt
            return got

        def release(self):
            self.lock.release()

    W = np.ones((3, 8), dtype=np.float32)
    out = np.zeros((2, 8), dtype=np.float32)
    worker = parallel._Worker(np.ascontiguousarray(W[:, 4:]), 4, 8)
    worker.done = InterruptedAfterTheWait(worker.done)
    worker.start(np.ones((2, 3), dtype=np.float32), out)
    with pytest.raises(KeyboardInterrupt):
        worker.finish()
    assert stops_within(worker)
    assert worker.future.done()


def test_a_worker_interrupted_before_its_wait_still_finishes_the_block_it_was_handed():
    W = np.ones((3, 8), dtype=np.float32)
    out = np.zeros((2, 8), dtype=np.float32)
    worker = parallel._Worker(np.ascontiguousarray(W[:, 4:]), 4, 8)
    worker.start(np.ones((2, 3), dtype=np.float32), out)  # and Ctrl-C before finish()
    assert stops_within(worker)
    np.testing.assert_array_equal(out[:, 4:], 3)


# -- 2. time_lstm_loops' background programs ------------------------------------------------


def start_busy_timing():
    """time_lstm_loops.py beside a busy program, long enough to be stopped
    midway; the process and the busy program's pid.

    It starts with Ctrl-C's default action, as a command typed at a terminal
    does, even where these tests run with SIGINT ignored (`nohup pytest &`:
    a program inherits an ignored signal, and Python leaves it ignored, so
    the script ran to its end)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # SIG_DFL in a child
    try:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "time_lstm_loops.py"), "--beside", "busy",
             "--hidden", *["4"] * 300], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    busy = []
    assert wait_for(lambda: busy.extend(children(proc.pid)) or busy), "no busy program started"
    return proc, busy


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the processes in /proc")
@pytest.mark.parametrize("how, exit_status, line", [(signal.SIGTERM, 143, "terminated"),
                                                   (signal.SIGINT, 130, "interrupted")])
def test_stopping_time_lstm_loops_ends_its_busy_programs(how, exit_status, line):
    """SIGTERM left the busy loops running at 100% CPU; Ctrl-C (to the whole
    process group, as a terminal sends it) printed each loop's traceback."""
    proc, busy = start_busy_timing()
    try:
        if how == signal.SIGINT:
            os.killpg(proc.pid, how)
        else:
            proc.send_signal(how)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == exit_status, err
    assert err.strip() == line
    assert all(wait_for(lambda pid=pid: gone(pid), 10) for pid in busy)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the processes in /proc")
def test_busy_programs_end_on_their_own_when_time_lstm_loops_is_killed():
    proc, busy = start_busy_timing()
    proc.kill()  # the script alone: SIGKILL, which it cannot catch
    proc.communicate(timeout=60)
    try:
        assert all(wait_for(lambda pid=pid: gone(pid), 15) for pid in busy)
    finally:
        for pid in busy:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


# -- 3. benchmark.py's numbers, checked before any section --------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--epoch-iters", "-5"], "argument --epoch-iters: must be at least 0, got -5"),
    # (Past an epoch it silently ran one.)
    (["--epoch-iters", "1328"], "--epoch-iters must be at most 1327 (an epoch of PTB in batches "
                                "of 20 x 35; 0 runs it whole), got 1328"),
    (["--threads", "0"], f"must be from 1 to {CPUS} (the CPUs this process may use), got 0"),
    (["--threads", "-2"], "got -2"),
    (["--threads", "1000000"], "got 1000000"),
    (["--threads", "two"], "not an integer: 'two'"),
    (["--only", "word", "--epoch-iters", "5"], "which --only word leaves out"),
    (["--only", "char", "--epoch-iters", "0"], "drop one of the two flags"),
])
def test_benchmark_refuses_a_bad_number_before_any_section(capsys, monkeypatch, argv, message):
    monkeypatch.setattr(benchmark, "run_sections", lambda *a: pytest.fail("a section ran"))
    assert message in usage_error_line(capsys, benchmark.main, argv)


def test_a_short_memory_run_reports_its_training_perplexity(capsys):
    # (Fewer than 20 iterations gave no perplexity point: "train ppl nan".)
    from benchmarks import memory

    memory.epoch_child(os.environ.get("RNNLAB_PTB_DIR") or harness.default_data_dir(), 3)
    epoch = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert epoch["iterations"] == 3 and math.isfinite(epoch["train_ppl"])


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux's CPU affinity")
def test_threads_are_counted_among_the_cpus_this_process_may_use(capsys, monkeypatch):
    # (Under taskset -c 0, --threads 2 was taken: checked against os.cpu_count().)
    monkeypatch.setattr(benchmark, "run_sections", lambda *a: pytest.fail("a section ran"))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert "must be from 1 to 1 (the CPUs this process may use), got 2" in usage_error_line(
        capsys, benchmark.main, ["--threads", "2"])


def test_benchmark_help_says_what_epoch_iters_0_and_only_do(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "0 runs a full epoch" in help_text
    assert "not with --only" in help_text
    assert "from 1 to the machine's CPUs" in help_text


def test_benchmark_json_writes_null_for_a_figure_that_is_not_a_number(monkeypatch, capsys):
    """``--json`` printed NaN, which strict JSON parsers refuse."""

    def fake_seq2seq_run(options):
        return ([("Seq2seq", "addition", 2.0, float("nan"), 1.0)],
                [("Seq2seq", 0.1, float("inf"), 2.5, np.float32("nan"), True)])

    monkeypatch.setattr(benchmark, "seq2seq_run", fake_seq2seq_run)
    benchmark.main(["--only", "seq2seq", "--quick", "--no-torch", "--json"])
    out = capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON")

    results = json.loads(out, parse_constant=refuse)
    assert results["seq2seq"]["epoch_seconds"]["Seq2seq"]["reference"] is None
    assert results["seq2seq"]["evaluation_seconds"]["Seq2seq"]["reference_one_per_call"] is None


def test_strict_json_keeps_numbers_and_makes_the_others_null():
    value = {"a": [1.5, np.float32(2.0), np.int64(3), np.bool_(True), math.nan],
             "b": (math.inf, -math.inf, "x", None)}
    assert benchmark.strict_json(value) == {"a": [1.5, 2.0, 3, True, None],
                                            "b": [None, None, "x", None]}


# -- 4. RNNLAB_NUM_THREADS ----------------------------------------------------------------


ENTRY_POINTS = {
    "benchmark.py": [str(ROOT / "scripts" / "benchmark.py"), "--only", "char", "--quick",
                     "--no-torch"],
    "python -m benchmarks": ["-m", "benchmarks", "--only", "char", "--quick", "--no-torch"],
    "python -m benchmarks.seq2seq_speed": ["-m", "benchmarks.seq2seq_speed", "--models",
                                           "Seq2seq", "--iters", "1", "--eval-questions", "1",
                                           "--repeats", "1"],
    "python -m benchmarks.seq2seq_parts": ["-m", "benchmarks.seq2seq_parts", "--repeats", "1"],
    "python -m benchmarks.contention": ["-m", "benchmarks.contention", "--repeats", "1"],
    "time_fit.py": [str(ROOT / "scripts" / "time_fit.py")],
    "time_lstm_loops.py": [str(ROOT / "scripts" / "time_lstm_loops.py"), "--hidden", "4"],
    "time_medium_config.py": [str(ROOT / "scripts" / "time_medium_config.py")],
    "time_recurrent_layers.py": [str(ROOT / "scripts" / "time_recurrent_layers.py"),
                                 "--hidden", "4", "--rounds", "1"],
    "time_zaremba_small.py": [str(ROOT / "scripts" / "time_zaremba_small.py"), "--iters", "1"],
}


def test_a_bad_thread_setting_is_a_usage_error_of_every_entry_point(tmp_path):
    """``RNNLAB_NUM_THREADS=abc`` gave a ValueError traceback from the first
    product. All at once: each stops at once, or would start its work."""
    running = {name: subprocess.Popen([sys.executable, *argv], cwd=tmp_path,
                                      env=env(RNNLAB_NUM_THREADS="abc"), text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for name, argv in ENTRY_POINTS.items()}
    for name, proc in running.items():
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 2, (name, err)
        assert "Traceback" not in err, name
        assert "RNNLAB_NUM_THREADS must be a positive integer" in err and "'abc'" in err, name
        assert err.splitlines()[0].startswith(f"usage: {name.split('.py')[0]}"), (name, err)
        assert out == "", name
    assert not any(tmp_path.iterdir())


# -- 5. where PTB is looked for --------------------------------------------------------------


def test_the_default_data_dir_is_left_to_ptb_when_the_shared_folder_is_missing(
        tmp_path, monkeypatch):
    """An explicit folder that did not exist kept the user's cache from
    being consulted, and the error said "leave data_dir unset"."""
    monkeypatch.delenv("RNNLAB_PTB_DIR", raising=False)
    monkeypatch.setattr(harness, "ROOT", str(tmp_path / "repo"))
    assert harness.default_data_dir() is None
    shared = tmp_path / "shared" / "data" / "ptb"
    shared.mkdir(parents=True)
    assert harness.default_data_dir() is None  # an empty folder is not PTB either
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (shared / name).write_text("x\n")
    assert harness.default_data_dir() == str(shared)
    monkeypatch.setenv("RNNLAB_PTB_DIR", str(tmp_path))  # ptb.load_data reads it itself
    assert harness.default_data_dir() is None


@pytest.mark.skipif(not PTB.is_dir(), reason="needs the shared PTB files")
def test_without_the_shared_folder_the_user_cache_is_used(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "rnnlab" / "ptb").mkdir(parents=True)
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        # (not copytree, which would make the cache as read-only as the shared folder)
        shutil.copyfile(PTB / name, cache / "rnnlab" / "ptb" / name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("RNNLAB_PTB_DIR", raising=False)
    monkeypatch.setattr(harness, "ROOT", str(tmp_path / "repo"))
    valid, = command_line.load_ptb(argparse.ArgumentParser(), ["valid"],
                                   harness.default_data_dir())
    assert len(valid) > 70_000


# -- 6. a bad --data-dir, in flag words ---------------------------------------------------------


def data_dir_cases(tmp_path):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    return [(str(tmp_path / "missing"), "--data-dir {}: no such folder"),
            (str(tmp_path / "a-file"), "--data-dir {}: a file, not a folder"),
            ("", "--data-dir is empty"),
            (str(tmp_path / "empty"), "the folder lacks ptb.train.txt")]


@pytest.mark.parametrize("main, extra", [
    (benchmark.main, ["--only", "word", "--quick", "--no-torch"]),
    (time_fit.main, []),
    (time_zaremba_small.main, []),
    (time_medium_config.main, []),
], ids=["benchmark --only word", "time_fit", "time_zaremba_small", "time_medium_config"])
def test_a_bad_data_dir_is_a_usage_error_in_flag_words(capsys, monkeypatch, tmp_path, main,
                                                       extra):
    monkeypatch.setattr(benchmark, "run_sections", lambda *a: pytest.fail("a section ran"))
    for folder, message in data_dir_cases(tmp_path):
        line = usage_error_line(capsys, main, [*extra, "--data-dir", folder])
        assert message.format(folder) in line, line
        assert not re.search(r"(?<![\w-])data_dir\b", line), line  # the API's words


# -- 7. time_recurrent_layers.py ------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--rounds", "0"], "argument --rounds: must be at least 1, got 0"),
    (["--rounds", "-1"], "argument --rounds: must be at least 1, got -1"),
    (["--hidden", "-4"], "argument --hidden: must be at least 1, got -4"),
    (["--hidden", "8", "0"], "argument --hidden: must be at least 1, got 0"),
    (["--batch", "-1"], "argument --batch: must be at least 1, got -1"),
    (["--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (["--time", "0"], "argument --time: must be at least 1, got 0"),
    (["--input", "0"], "argument --input: must be at least 1, got 0"),
    (["--against", "nosuchrev"], "--against nosuchrev: not a revision"),
    (["--against", ""], "--against is empty"),
    (["--against=--help"], "not a git revision"),
    (["--hidden", "100000"], "give --hidden sizes below 100000"),
])
def test_time_recurrent_layers_refuses_bad_values_before_timing(capsys, monkeypatch, argv,
                                                                message):
    monkeypatch.setattr(time_recurrent_layers, "layer_class_at",
                        lambda *a: pytest.fail("it went on to time"))
    assert message in usage_error_line(capsys, time_recurrent_layers.main, argv)


def test_time_recurrent_layers_compares_the_weight_gradients_too(capsys, monkeypatch):
    # (A revision whose backward gave another dWh, and the same dxs, was
    # "same bits as now: True": only the outputs of forward and backward were
    # compared.)
    from layers import TimeLSTM

    class OtherWh(TimeLSTM):
        def backward(self, dhs):
            dxs = super().backward(dhs)
            self.grads[1][...] *= 2
            return dxs

    monkeypatch.setattr(time_recurrent_layers, "revision_problem", lambda *a: None)
    monkeypatch.setattr(time_recurrent_layers, "layer_class_at", lambda *a: OtherWh)
    argv = ["--cell", "lstm", "--hidden", "4", "--batch", "2", "--time", "3", "--input", "2",
            "--rounds", "1"]
    assert time_recurrent_layers.main(argv) == 0
    assert "same bits as now: False" in capsys.readouterr().out
    monkeypatch.setattr(time_recurrent_layers, "layer_class_at", lambda *a: TimeLSTM)
    assert time_recurrent_layers.main(argv) == 0
    assert "same bits as now: True" in capsys.readouterr().out


# -- 8. time_zaremba_small.py --iters ------------------------------------------------------------


@pytest.mark.parametrize("iters", ["0", "-3"])
def test_time_zaremba_small_needs_at_least_one_iteration(capsys, iters):
    line = usage_error_line(capsys, time_zaremba_small.main, ["--iters", iters])
    assert f"argument --iters: must be at least 1, got {iters}" in line


# -- 9. python -m benchmarks.seq2seq_speed ------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--iters", "400"], "--iters must be at most 351 (the iterations of an epoch"),
    (["--eval-questions", "10000"], "--eval-questions must be at most 5,000 (the test pairs)"),
    (["--threads", "100000"], f"--threads must be from 1 to {CPUS}"),
    (["--threads", "0"], f"--threads must be from 1 to {CPUS}"),
])
def test_seq2seq_speed_refuses_counts_beyond_its_data(capsys, monkeypatch, argv, message):
    monkeypatch.setattr(seq2seq_speed, "run", lambda args: pytest.fail("it went on to time"))
    assert message in usage_error_line(capsys, seq2seq_speed.main, argv)


def test_seq2seq_speed_allows_a_whole_epoch_and_every_test_pair():
    args = argparse.Namespace(iters=351, eval_questions=5000, repeats=1, threads=None)
    assert seq2seq_speed.configure(args) is None


def test_seq2seq_speed_help_names_the_command_and_each_default_once(capsys):
    with pytest.raises(SystemExit):
        seq2seq_speed.main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m benchmarks.seq2seq_speed ")
    assert "(default: None)" not in out
    assert " ".join(out.split()).count("(default: as it is)") == 1


def test_python_m_benchmarks_names_itself_in_its_usage():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--threads", "0"], cwd=ROOT,
                          env=env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m benchmarks ")
    assert "python -m benchmarks: error: argument --threads" in done.stderr


def test_seq2seq_parts_prints_each_piece_beside_the_target(capsys):
    assert seq2seq_parts.main(["--repeats", "1"]) == 0
    head, *rows, step = capsys.readouterr().out.splitlines()
    assert head.split()[:2] == ["model", "half"] and head.endswith("target ms")
    assert [row.split()[0] for row in rows] == ["Seq2seq", "PeekySeq2seq"]
    assert all(len(row.split()) == 7 and float(row.split()[-1]) > 0 for row in rows)
    assert step.startswith("one core: float32 exp over 64 x 512 gates ")


def test_seq2seq_parts_refuses_no_repeats(capsys):
    assert "--repeats must be at least 1, got 0" in usage_error_line(capsys, seq2seq_parts.main,
                                                                ["--repeats", "0"])


# -- 10. time_lstm_loops.py --hidden that cannot fit ------------------------------------------


def test_time_lstm_loops_refuses_sizes_that_cannot_fit_in_memory(capsys, monkeypatch):
    monkeypatch.setattr(time_lstm_loops, "start_background",
                        lambda levels: pytest.fail("it went on to time"))
    line = usage_error_line(capsys, time_lstm_loops.main, ["--hidden", "128", "100000"])
    assert "this run needs about" in line and "give --hidden sizes below 100000" in line


def test_time_lstm_loops_memory_estimate_grows_with_the_hidden_size():
    small, large = (sum(time_lstm_loops.memory_parts(H).values()) for H in (128, 100_000))
    assert small < 2**24 and large > 2**38  # the weights alone: 4 H x H float32 twice


# -- 11. Ctrl-C and SIGTERM ------------------------------------------------------------------------


def interrupted(exc):
    def raise_it(*args, **kwargs):
        raise exc
    return raise_it


def status(main, *args):
    """``main(*args)``; an interrupt that escapes it fails the test (rather
    than stopping pytest, as a KeyboardInterrupt does)."""
    try:
        return main(*args)
    except KeyboardInterrupt as exc:
        pytest.fail(f"{type(exc).__name__} escaped from main")


def test_ctrl_c_ends_the_benchmark_with_one_line(capsys, monkeypatch):
    monkeypatch.setattr(benchmark, "run_sections", interrupted(KeyboardInterrupt()))
    assert status(benchmark.main, ["--only", "char", "--quick", "--no-torch", "--json"]) == 130
    out, err = capsys.readouterr()
    assert err.strip() == "interrupted" and out == ""
    harness.say("after")  # the report is back on stdout
    assert capsys.readouterr().out == "after\n"


def test_ctrl_c_ends_seq2seq_speed_with_one_line(capsys, monkeypatch):
    monkeypatch.setattr(seq2seq_speed, "run", interrupted(KeyboardInterrupt()))
    monkeypatch.setattr(seq2seq_speed, "print_machine", lambda: None)
    assert status(getattr(seq2seq_speed, "command", seq2seq_speed.main), ["--iters", "1"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_ctrl_c_ends_time_recurrent_layers_with_one_line_and_no_folder_left(
        capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(time_recurrent_layers.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(time_recurrent_layers, "layer_class_at", interrupted(KeyboardInterrupt()))
    assert status(time_recurrent_layers.main, ["--hidden", "4"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("module", [time_fit, time_medium_config],
                         ids=["time_fit", "time_medium_config"])
@pytest.mark.parametrize("signal_name, exit_status, line", [("SIGINT", 130, "interrupted"),
                                                            ("SIGTERM", 143, "terminated")])
def test_a_stopped_fit_ends_the_timing_with_one_line(capsys, monkeypatch, module, signal_name,
                                                     exit_status, line):
    """fit's TrainingInterrupted printed a traceback; its exit_code says 130 or 143."""
    from common.trainer import RnnlmTrainer

    corpus = np.arange(20_000, dtype=np.int32) % 10_000
    monkeypatch.setattr(module, "load_ptb", lambda parser, splits, data_dir: [corpus])
    monkeypatch.setattr(RnnlmTrainer, "fit", interrupted(
        TrainingInterrupted("interrupted at epoch 1, iteration 3", None, signal_name)))
    assert status(module.main, []) == exit_status
    assert capsys.readouterr().err.strip() == line


def test_sigterm_runs_the_cleanup_and_ends_with_143(capsys):
    cleaned = []

    @command_line.ends_on_interrupt
    def run():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
            return 0
        finally:
            cleaned.append(True)

    before = signal.getsignal(signal.SIGTERM)
    assert status(run) == 143
    assert cleaned == [True]
    assert capsys.readouterr().err.strip() == "terminated"
    assert signal.getsignal(signal.SIGTERM) is before
