"""The speed benchmark of the seq2seq models runs and prints its tables
(a smoke test at the smallest settings; the figures themselves are the
README's, not a test's)."""

from benchmarks import seq2seq_speed


def test_benchmark_prints_both_tables(capsys):
    rows, eval_rows = seq2seq_speed.main(["--models", "Seq2seq", "--iters", "1",
                                          "--eval-questions", "3", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "rnnlab s/epoch" in out and "evaluation of 5,000" in out
    (name, task, t_lib, t_ref, bound), = rows
    assert (name, task) == ("Seq2seq", "addition") and t_lib > 0 and t_ref > 0
    assert 0 < bound < float("inf") and "rnnlab/bound" in out
    assert eval_rows[0][-1] is True  # both models give the same answers


def test_benchmark_refuses_bad_counts(capsys):
    import pytest

    with pytest.raises(SystemExit):
        seq2seq_speed.main(["--iters", "0"])
    assert "--iters must be at least 1" in capsys.readouterr().err


def test_benchmark_runs_as_a_section_of_another_parser(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")  # the host's own option
    seq2seq_speed.add_arguments(parser)
    args = parser.parse_args(["--quick", "--models", "PeekySeq2seq", "--iters", "1",
                              "--eval-questions", "2", "--repeats", "1"])
    assert seq2seq_speed.configure(args) is None
    rows, eval_rows = seq2seq_speed.run(args)
    assert [row[:2] for row in rows] == [("PeekySeq2seq", "addition")]
    assert [row[0] for row in eval_rows] == ["PeekySeq2seq"] and eval_rows[0][-1] is True
    out = capsys.readouterr().out
    assert "machine" not in out  # the host describes the machine
    assert "PeekySeq2seq      addition" in out and "evaluation of 5,000" in out
    args.repeats = 0
    assert seq2seq_speed.configure(args) == "--repeats must be at least 1"


def test_answers_agree_compares_the_answers_not_the_accuracies(monkeypatch):
    """Untrained, both sides score 0: equal accuracies said nothing of the answers."""
    import argparse

    import numpy as np

    from benchmarks import reference_seq2seq as ref
    from datasets import sequence
    from models import Seq2seq

    (_, _), (x_test, t_test) = sequence.load_data("addition")
    V = len(sequence.get_vocab()[0])
    model, reference = Seq2seq(V, 16, 32, seed=0), ref.Seq2seq(V, 16, 32, seed=0)
    args = argparse.Namespace(eval_questions=20, repeats=1)
    assert seq2seq_speed.time_evaluation(model, reference, x_test, t_test, args)[-1] is True
    monkeypatch.setattr(ref, "copy_params", lambda *a: None)  # the reference's own weights
    for p in reference.params:
        p[...] = np.random.default_rng(1).standard_normal(p.shape)
    assert seq2seq_speed.time_evaluation(model, reference, x_test, t_test, args)[-1] is False
