"""The speed benchmark of the seq2seq models runs and prints its tables
(a smoke test at the smallest settings; the figures themselves are the
README's, not a test's)."""

from benchmarks import seq2seq_speed


def test_benchmark_prints_both_tables(capsys):
    rows, eval_rows = seq2seq_speed.main(["--models", "Seq2seq", "--iters", "1",
                                          "--eval-questions", "3", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "rnnlab s/epoch" in out and "evaluation of 5,000" in out
    (name, task, t_lib, t_ref), = rows
    assert (name, task) == ("Seq2seq", "addition") and t_lib > 0 and t_ref > 0
    assert eval_rows[0][-1] is True  # both models give the same answers


def test_benchmark_refuses_bad_counts(capsys):
    import pytest

    with pytest.raises(SystemExit):
        seq2seq_speed.main(["--iters", "0"])
    assert "--iters must be at least 1" in capsys.readouterr().err
