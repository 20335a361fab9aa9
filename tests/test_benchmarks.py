"""The benchmark package and the timing scripts, as a user meets them.

The timings themselves are checked by running the scripts (figures in the
README), never by timed unit tests; here only what must hold on any machine.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["benchmark.py", "time_medium_config.py", "time_zaremba_small.py", "time_fit.py",
           "time_recurrent_layers.py", "time_lstm_loops.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_describes_the_script_and_starts_no_work(script):
    """``--help`` prints the script's own description and returns at once
    (issue 12, finding 9: time_medium_config.py started training)."""
    path = ROOT / "scripts" / script
    first_line = path.read_text().split('"""')[1].splitlines()[0].strip()
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")
    assert first_line.split(":")[0][:40] in " ".join(proc.stdout.split())


def test_time_lstm_loops_prints_forward_and_backward_of_each_size():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "time_lstm_loops.py"),
                           "--hidden", "4", "6"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["H =    4", "H =    6"]
    assert all("forward" in line and "backward" in line and "beside: none" in line
               for line in lines)


def test_the_reference_is_imported_from_the_benchmarks_package():
    from benchmarks import reference_textbook

    assert not (ROOT / "tests" / "reference_textbook.py").exists()
    assert hasattr(reference_textbook, "SimpleRnnlm")


def test_contention_times_a_product_alone_and_two_at_once(monkeypatch, capsys):
    """``python -m benchmarks.contention`` prints one row per shape: the time
    alone, of each of the two processes at once, and the slowdown. Tiny sizes."""
    from benchmarks import contention

    monkeypatch.setattr(contention, "SHAPES", [(4, 8, 16)])
    rows = contention.main(["--repeats", "1"])
    assert len(rows) == 1 and rows[0][0] == (4, 8, 16)
    assert all(t > 0 for t in rows[0][1:])
    assert "4 x 8 @ 8 x 16" in capsys.readouterr().out


def test_only_char_runs_the_character_level_section_alone(monkeypatch, capsys):
    """``--only char`` prints the machine and the character-level rows (the
    bound and rnnlab / bound for each), and never reads PTB. Tiny sizes."""
    from benchmarks import char_level, main
    from datasets import ptb

    def no_ptb(*args, **kwargs):
        raise AssertionError("--only char must not load PTB")

    monkeypatch.setattr(ptb, "load_data", no_ptb)
    monkeypatch.setattr(char_level, "QUICK_CONFIGS", [("lstm", 8), ("gru", 8)])
    monkeypatch.setattr(char_level, "N", 4)
    monkeypatch.setattr(char_level, "T", 5)
    assert main.main(["--only", "char", "--quick", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "== character level" in out and "== machine" in out
    assert "LSTM H=  8: rnnlab" in out and "GRU  H=  8: rnnlab" in out
    assert out.count("rnnlab / bound") >= 2
    assert "char LSTM H=8 / bound" in out  # the target's line
    assert "== training iteration" not in out and "== memory" not in out


def test_json_keeps_stdout_for_the_json_alone(monkeypatch, capsys):
    """With ``--json`` every table, the seq2seq section's printed ones
    included, goes to stderr and stdout parses as JSON; the report goes back
    to stdout afterwards."""
    import json

    from benchmarks import harness, main

    def fake_seq2seq_run(options):
        print("model             task        rnnlab s/epoch")  # the section prints its tables
        return ([("Seq2seq", "addition", 2.0, 4.0, 1.0)],
                [("Seq2seq", 0.1, 2.0, 2.5, 0.5, True)])

    monkeypatch.setattr(main, "seq2seq_run", fake_seq2seq_run)
    assert main.main(["--only", "seq2seq", "--quick", "--no-torch", "--json"]) == 0
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert results["seq2seq"]["epoch_seconds"]["Seq2seq"] == {
        "rnnlab": 2.0, "reference": 4.0, "two_core_bound": 1.0}
    assert "rnnlab s/epoch" in err and "== sequence to sequence" in err
    harness.say("after")
    assert capsys.readouterr().out == "after\n"


@pytest.mark.parametrize("script", ["time_fit.py", "time_lstm_loops.py"])
def test_a_repo_that_is_not_a_checkout_is_refused(script, tmp_path):
    """A mistyped ``--repo`` is an error, not a timing of this checkout under
    the other path's name."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--repo",
                           str(tmp_path / "nowhere")], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 2
    assert "not an rnnlab checkout" in proc.stderr
