"""Models of one's own computed by halves: the ``replicable`` opt-in.

A batch is computed as two halves, the second by a helper process holding
a replica of the model (common.data_parallel), only for a model class that
declares ``replicable = True`` in its own body: it promises that
``type(model)(**model.config, dtype=...)``, built in the helper, computes
the same bits from the same parameters and rows. The models here
(tests/replicable_example.py, a module the helper can import) show what
that gives and what is refused: a class that does not declare it, one the
helper cannot import, a model whose dropout is active. Thresholds are
lowered so that small models split.
"""

import importlib.util
import os
import textwrap
import warnings

import numpy as np
import pytest

import common.data_parallel as data_parallel
from common import batch_worker
from common.optimizer import Adam
from common.trainer import RnnlmTrainer, Trainer
from models import Seq2seq
from tests.replicable_example import (
    BiLstmTagger,
    ForgetfulSeq2seq,
    GruSeq2seq,
    HomeOnlySeq2seq,
    PrintingSeq2seq,
    ReversingSeq2seq,
    TwoLayerLstmLm,
    UndeclaredGruSeq2seq,
)

from helper_processes import (  # noqa: F401  (small_models_split: a fixture for every test here)
    assert_halves_carry_the_whole_batchs_state,
    lm_batches,
    needs_processes,
    small_models_split,
)

V, D, H = 11, 4, 6


@pytest.fixture
def calls(monkeypatch):
    """How many times the helper was begun on a model and handed a half."""
    counted = {"begin": 0, "post": 0}
    for method in counted:
        original = getattr(batch_worker.BatchWorker, method)

        def counting(self, *args, _method=method, _original=original):
            counted[_method] += 1
            return _original(self, *args)

        monkeypatch.setattr(batch_worker.BatchWorker, method, counting)
    return counted


def pairs(rng, n, T_enc=5, T_dec=4):
    return rng.integers(0, V, (n, T_enc)), rng.integers(0, V, (n, T_dec + 1))


def by_halves(model, batches):
    """Each batch's loss and a copy of its gradients, computed by halves in one
    context (the trainers' way)."""
    x, t = batches[0]
    results = []
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        for x, t in batches:
            results.append((forward_backward(x, t), [g.copy() for g in model.grads]))
    return results


def whole(model, batches):
    """The same, each batch computed at once by ``forward`` and ``backward``."""
    results = []
    for x, t in batches:
        loss = model.forward(x, t)
        model.backward()
        results.append((loss, [g.copy() for g in model.grads]))
    return results


def assert_same_bits(results, expected):
    for (loss, grads), (loss_e, grads_e) in zip(results, expected, strict=True):
        assert loss == loss_e
        for g, e in zip(grads, grads_e, strict=True):
            np.testing.assert_array_equal(g, e)


# -- a GRU encoder-decoder that opts in ---------------------------------------------------


def test_an_opted_in_model_splits_and_its_subclass_must_declare_it_anew():
    model = GruSeq2seq(V, D, H)
    assert GruSeq2seq.replicable and batch_worker.why_not_replicable(model) is None
    assert data_parallel.splits(model, 8)
    # The promise is about the class's own forward: not inherited.
    undeclared = UndeclaredGruSeq2seq(V, D, H)
    assert not UndeclaredGruSeq2seq.replicable
    assert "does not declare" in batch_worker.why_not_replicable(undeclared)
    assert not data_parallel.splits(undeclared, 8)


def test_the_halves_give_the_whole_batch_loss_and_gradients():
    rng = np.random.default_rng(0)
    x, t = pairs(rng, 9)  # halves of 4 and 5 rows
    t[0, -1] = t[7, -1] = -1  # ignored targets: the halves weigh by their scored targets
    model = GruSeq2seq(V, D, H, seed=1, dtype=np.float64)
    assert data_parallel.splits(model, len(x))
    [(loss, grads)] = by_halves(model, [(x, t)])
    [(expected_loss, expected)] = whole(model, [(x, t)])
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    for g, e, name in zip(grads, expected, model.named_params(), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-14, err_msg=name)


@needs_processes
def test_the_helper_computes_half_of_a_gru_seq2seq_with_this_process_bits(calls, monkeypatch):
    rng = np.random.default_rng(2)
    batches = [pairs(rng, 12) for _ in range(3)]
    model = GruSeq2seq(V, D, H, seed=3)
    helped = by_halves(model, batches)
    assert calls["post"] == 3  # the helper computed every batch's second half
    assert data_parallel._worker is not None and data_parallel._worker.alive()
    monkeypatch.setattr(data_parallel, "_disabled", True)  # this process alone, by halves
    assert_same_bits(helped, by_halves(model, batches))
    assert calls["post"] == 3


@needs_processes
def test_the_trainer_splits_an_opted_in_model_and_a_seed_gives_one_run(calls, monkeypatch):
    rng = np.random.default_rng(3)
    x, t = pairs(rng, 40)

    def train():
        trainer = Trainer(GruSeq2seq(V, D, H, seed=4), Adam(lr=0.01))
        trainer.fit(x, t, max_epoch=2, batch_size=8, max_grad=5.0, verbose=False)
        return trainer

    helped = train()
    assert calls["post"] == 10  # every batch of the two epochs
    monkeypatch.setattr(data_parallel, "_disabled", True)
    alone = train()
    assert helped.loss_list == alone.loss_list
    for a, b in zip(helped.model.params, alone.model.params, strict=True):
        np.testing.assert_array_equal(a, b)


# -- what is not split ----------------------------------------------------------------------


def test_a_class_that_does_not_declare_it_is_computed_whole(calls):
    rng = np.random.default_rng(4)
    batches = [pairs(rng, 12) for _ in range(2)]
    halved, plain = UndeclaredGruSeq2seq(V, D, H, seed=5), UndeclaredGruSeq2seq(V, D, H, seed=5)
    assert_same_bits(by_halves(halved, batches), whole(plain, batches))
    assert calls == {"begin": 0, "post": 0}


@needs_processes
def test_the_helper_itself_refuses_a_class_that_does_not_declare_it(monkeypatch):
    """Checked on the class the helper imports, not only by this process."""
    monkeypatch.setattr(batch_worker, "why_not_replicable", lambda model: None)  # skip ours
    worker = batch_worker.BatchWorker()
    try:
        with pytest.raises(batch_worker.ReplicaRefused, match="does not declare"):
            worker.begin(UndeclaredGruSeq2seq(V, D, H), (6, 5), (6, 5))
        assert worker.alive()  # a fact about the model: the helper goes on
        worker.begin(GruSeq2seq(V, D, H), (6, 5), (6, 5))
    finally:
        worker.close()


def test_a_class_defined_in_main_is_never_sent_to_the_helper(calls):
    # What a class in a script run as a program, or in a notebook, looks like.
    notebook_class = type("NotebookGruSeq2seq", (GruSeq2seq,),
                          {"replicable": True, "__module__": "__main__"})
    model, plain = notebook_class(V, D, H, seed=6), notebook_class(V, D, H, seed=6)
    assert "__main__" in batch_worker.why_not_replicable(model)
    assert not data_parallel.splits(model, 12)
    rng = np.random.default_rng(5)
    batches = [pairs(rng, 12) for _ in range(3)]
    with pytest.warns(RuntimeWarning, match="__main__") as told:
        results = by_halves(model, batches)
    assert len(told) == 1  # once, not every batch
    assert calls == {"begin": 0, "post": 0}
    assert_same_bits(results, whole(plain, batches))


FAR_AWAY = """
    from tests.replicable_example import GruSeq2seq


    class FarAwayGruSeq2seq(GruSeq2seq):
        replicable = True
"""


@needs_processes
def test_a_class_the_helper_cannot_import_is_tried_once_then_halved_here(calls, tmp_path,
                                                                          monkeypatch):
    # A module this process loaded from a folder that is not on the helper's path.
    path = tmp_path / "far_away_models.py"
    path.write_text(textwrap.dedent(FAR_AWAY))
    spec = importlib.util.spec_from_file_location("far_away_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.FarAwayGruSeq2seq(V, D, H, seed=7)
    plain = module.FarAwayGruSeq2seq(V, D, H, seed=7)
    assert data_parallel.splits(model, 12)  # as far as this process can tell
    rng = np.random.default_rng(6)
    batches = [pairs(rng, 12) for _ in range(4)]
    with pytest.warns(RuntimeWarning, match="could not build.*far_away_models") as told:
        results = by_halves(model, batches)
    assert len(told) == 1
    assert calls == {"begin": 1, "post": 0}  # one try for the whole context
    # Both halves computed here: the bits of a run whose helper could not start
    # at all (so they do not depend on how it failed).
    monkeypatch.setattr(data_parallel, "_disabled", True)
    assert_same_bits(results, by_halves(plain, batches))
    monkeypatch.setattr(data_parallel, "_disabled", False)
    # The helper itself is fine: another model still gets it.
    by_halves(Seq2seq(V, D, H, seed=8), batches)
    assert calls == {"begin": 2, "post": 4}


def test_a_model_whose_dropout_draws_masks_is_not_split(calls):
    model = TwoLayerLstmLm(V, D, H, dropout_ratio=0.5, seed=9)
    assert "dropout" in batch_worker.why_not_replicable(model)
    assert not data_parallel.splits(model, 12)
    rng = np.random.default_rng(7)
    x = rng.integers(0, V, (12, 5))
    by_halves(model, [(x, x)])
    assert calls == {"begin": 0, "post": 0}
    # No mask drawn: dropout off, or a ratio of 0.
    assert data_parallel.splits(model.eval(), 12)
    assert data_parallel.splits(TwoLayerLstmLm(V, D, H, dropout_ratio=0.0), 12)


@needs_processes
@pytest.mark.parametrize("ratio, mode", [(0.0, "train"), (0.5, "eval")])
def test_with_its_dropout_drawing_nothing_the_helper_gives_this_process_bits(ratio, mode, calls,
                                                                             monkeypatch):
    """The helper runs its replica in evaluation mode: the same bits as this
    process's dropout, off or of ratio 0."""
    rng = np.random.default_rng(8)
    batches = [(rng.integers(0, V, (12, 5)), rng.integers(0, V, (12, 5))) for _ in range(2)]

    def run():
        model = TwoLayerLstmLm(V, D, H, dropout_ratio=ratio, seed=10)
        return by_halves(model.train(mode == "train"), batches)

    helped = run()
    assert calls["post"] == 2
    monkeypatch.setattr(data_parallel, "_disabled", True)
    assert_same_bits(helped, run())


# -- a language model of one's own: its rows carry their state --------------------------------


def test_a_language_model_of_ones_own_carries_the_whole_batchs_state(calls):
    rng = np.random.default_rng(9)
    batches = lm_batches(rng, 3, V)
    batches[1][1][2, 3] = -1  # an ignored target
    halved = TwoLayerLstmLm(V, D, H, seed=11, dtype=np.float64)
    plain = TwoLayerLstmLm(V, D, H, seed=11, dtype=np.float64)
    assert batch_worker.is_stateful(halved) and batch_worker.state_sizes(halved) == [H] * 4
    assert_halves_carry_the_whole_batchs_state(halved, plain, batches, H)
    if data_parallel.PROCESSES_AVAILABLE:
        assert calls["post"] == 3  # the helper's halves carried their state too


@needs_processes
def test_a_language_model_of_ones_own_trains_by_halves_with_this_process_bits(calls,
                                                                              monkeypatch):
    rng = np.random.default_rng(10)
    corpus = rng.integers(0, V, 400)
    fit = dict(max_epoch=1, batch_size=8, time_size=6, max_grad=5.0, verbose=False)

    def train():
        model = TwoLayerLstmLm(V, D, H, seed=12)
        RnnlmTrainer(model, Adam(0.01)).fit(corpus[:-1], corpus[1:], **fit)
        return model

    helped = train()
    assert calls["post"] == 399 // 48  # every batch
    monkeypatch.setattr(data_parallel, "_disabled", True)
    alone = train()
    for a, b in zip(helped.params + helped.get_state(), alone.params + alone.get_state(),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_tagger_reading_both_ways_is_split_and_its_halves_are_the_whole_batch():
    """A bidirectional layer has no ``stateful`` flag to check (asking for it
    raised an AttributeError from fit)."""
    rng = np.random.default_rng(11)
    model = BiLstmTagger(V, H, 3, seed=13, dtype=np.float64)
    assert batch_worker.why_not_replicable(model) is None and data_parallel.splits(model, 8)
    batches = [(rng.integers(0, V, (8, 5)), rng.integers(0, 3, (8, 5))) for _ in range(2)]
    results = by_halves(model, batches)
    for (loss, grads), (loss_e, grads_e) in zip(results, whole(model, batches), strict=True):
        assert loss == pytest.approx(loss_e, rel=1e-13)
        for g, e in zip(grads, grads_e, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-14)


def test_no_warning_for_the_models_that_split():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rng = np.random.default_rng(11)
        by_halves(GruSeq2seq(V, D, H, seed=13), [pairs(rng, 8)])


# -- code of one's own in the helper: prints, and a replica that fails ---------------------


@needs_processes
def test_what_a_model_prints_in_the_helper_reaches_stderr_and_holds_nothing_up(calls, capfd):
    """The helper's standard output carries its replies: a print there was
    read as a reply, or filled the pipe and hung the helper for 30 s."""
    rng = np.random.default_rng(7)
    batches = [pairs(rng, 8) for _ in range(40)]  # 40 x 2 kB from the helper: over 64 kB
    data_parallel._close()  # a helper started now, on the standard error captured now
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "did not answer in 30 s"
        by_halves(PrintingSeq2seq(V, D, H, seed=0), batches)
    assert calls == {"begin": 1, "post": 40}
    err = capfd.readouterr().err
    helper_lines = [line for line in err.splitlines() if line.startswith("forward in ")
                    and line.split()[2] != str(os.getpid())]
    assert len(helper_lines) == 40


@needs_processes
def test_a_half_that_fails_only_in_the_helper_is_said_once_then_computed_here(calls,
                                                                           monkeypatch):
    rng = np.random.default_rng(8)
    batches = [pairs(rng, 8) for _ in range(5)]
    model = HomeOnlySeq2seq(V, D, H, home_pid=os.getpid(), seed=0)
    with pytest.warns(RuntimeWarning, match="the helper process failed on its half of a batch "
                                            r"\(RuntimeError: not the process this model was "
                                            r"built for\) that this process computed"):
        results = by_halves(model, batches)
    assert calls == {"begin": 1, "post": 1}  # not a new helper at every batch
    monkeypatch.setattr(data_parallel, "_disabled", True)
    assert_same_bits(results, by_halves(HomeOnlySeq2seq(V, D, H, home_pid=os.getpid(), seed=0),
                                        batches))


@needs_processes
def test_a_replica_that_computes_other_bits_is_found_at_the_first_batch(calls, monkeypatch):
    """A class whose config leaves out an argument: its replica computed other
    gradients, without raising, and the run trained on them without a word."""
    rng = np.random.default_rng(9)
    batches = [pairs(rng, 8) for _ in range(4)]
    with pytest.warns(RuntimeWarning, match=r"the helper process's half of a batch differs "
                                            r"from this process's own computation of it: its "
                                            r"replica, ForgetfulSeq2seq\(\*\*config\), is "
                                            r"not the model \(does config leave out an "
                                            r"argument of its constructor\? were layers added "
                                            r"to or changed in the model after it was built\?"):
        results = by_halves(ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0), batches)
    assert calls == {"begin": 1, "post": 1}
    monkeypatch.setattr(data_parallel, "_disabled", True)
    assert_same_bits(results, by_halves(ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0), batches))


@needs_processes
def test_each_model_of_a_sweep_is_checked_and_a_wrong_replica_answers_nothing(calls):
    """A sweep over the argument config leaves out: the model of the default
    value passed, and the next, of the same class and config, was taken on
    trust; and questions were still answered by the wrong replica."""
    from common.util import seq2seq_correct

    rng = np.random.default_rng(10)
    batches = [pairs(rng, 8) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_halves(ForgetfulSeq2seq(V, D, H, scale=1.0, seed=0), batches)  # the same bits
    model = ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0)
    with pytest.warns(RuntimeWarning, match="is not the model"):
        by_halves(model, batches)
    posts = calls["post"]
    questions, answers = pairs(rng, 8)
    seq2seq_correct(model, questions, answers, batch_size=8)  # this process answers all
    assert calls["post"] == posts


@needs_processes
def test_a_copy_of_a_checked_model_is_checked_again(calls, monkeypatch):
    """A copy (copy.deepcopy, pickle) inherited its original's verdict, but its
    output layer computes with its own weight and bias (no longer one block):
    other bits than the replica's, taken without a check."""
    import copy

    rng = np.random.default_rng(12)
    batches = [pairs(rng, 8) for _ in range(3)]
    model = Seq2seq(V, D, H, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_halves(model, batches)  # checked: the same bits
    copied, again = copy.deepcopy(model), copy.deepcopy(model)
    with pytest.warns(RuntimeWarning, match=r"is not the model .*is the model a copy, by "
                                            r"copy.deepcopy or pickle"):
        helped = by_halves(copied, batches)
    monkeypatch.setattr(data_parallel, "_disabled", True)
    assert_same_bits(helped, by_halves(again, batches))


@needs_processes
def test_a_first_batch_whose_loss_is_nan_does_not_condemn_the_replica(calls):
    # (NaN != NaN: a right replica was called wrong, and the model never split again.)
    rng = np.random.default_rng(13)
    batches = [pairs(rng, 8) for _ in range(2)]
    model = Seq2seq(V, D, H, seed=0)
    saved = model.params[0].copy()
    model.params[0][...] = np.nan
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("error")
        by_halves(model, batches[:1])
    model.params[0][...] = saved
    posts = calls["post"]
    by_halves(model, batches)
    assert calls["post"] == posts + 2  # both batches split


@needs_processes
def test_a_first_batch_whose_loss_is_nan_does_not_vouch_for_a_wrong_replica(calls,
                                                                          monkeypatch):
    # (NaN compared as equal to NaN: a wrong replica was recorded as the model,
    # and every later batch trained on its wrong gradients, without a word.)
    rng = np.random.default_rng(17)
    batches = [pairs(rng, 8) for _ in range(3)]
    model = ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0)
    saved = model.params[0].copy()
    model.params[0][...] = np.nan
    with np.errstate(invalid="ignore"):
        by_halves(model, batches[:1])
    model.params[0][...] = saved
    with pytest.warns(RuntimeWarning, match="is not the model"):
        helped = by_halves(model, batches[1:])
    monkeypatch.setattr(data_parallel, "_disabled", True)
    assert_same_bits(helped, by_halves(ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0),
                                       batches[1:]))


@needs_processes
def test_answers_by_an_unchecked_replica_are_checked_first(calls, monkeypatch):
    """A model scored without ever training in this process: its replica
    answered half of the questions otherwise, without a word."""
    from common.util import seq2seq_correct

    rng = np.random.default_rng(14)
    questions, answers = pairs(rng, 16)
    with pytest.warns(RuntimeWarning, match="half of a batch of answers differs"):
        helped = seq2seq_correct(ReversingSeq2seq(V, D, H, reverse=True, seed=0), questions,
                                 answers, batch_size=16)
    monkeypatch.setattr(data_parallel, "_disabled", True)
    np.testing.assert_array_equal(helped, seq2seq_correct(
        ReversingSeq2seq(V, D, H, reverse=True, seed=0), questions, answers, batch_size=16))


@needs_processes
def test_a_helper_stuck_at_its_start_is_given_up_on_in_time(monkeypatch):
    """A helper stopped before it said it was up held fit for ever (a
    readline with no limit), and a first Ctrl-C did nothing."""
    import signal

    from common import step_worker

    start = step_worker.start_process

    def stopped_at_start(module, *args):
        process = start(module, *args)
        os.kill(process.pid, signal.SIGSTOP)
        return process

    data_parallel._close()  # (a helper of an earlier test: this one must start one)
    monkeypatch.setattr(step_worker, "start_process", stopped_at_start)
    monkeypatch.setattr(step_worker, "START_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(data_parallel, "_disabled", False)  # (restored after: it is set)
    rng = np.random.default_rng(15)
    batches = [pairs(rng, 8) for _ in range(2)]
    with pytest.warns(RuntimeWarning, match=r"computing half of each batch in a helper "
                                            r"process failed \(the batch worker process did "
                                            r"not answer in 1 s"):
        helped = by_halves(Seq2seq(V, D, H, seed=0), batches)
    assert_same_bits(helped, by_halves(Seq2seq(V, D, H, seed=0), batches))


@needs_processes
def test_a_helper_given_up_on_while_a_stop_is_asked_leaves_the_next_run_its_helper(
        monkeypatch):
    # (Given only a stop's grace, a helper slow to start was counted as broken,
    # and the rest of the process, a notebook's next fit, went without one.)
    import signal

    from common import step_worker

    start = step_worker.start_process

    def stopped_at_start(module, *args):
        process = start(module, *args)
        os.kill(process.pid, signal.SIGSTOP)
        return process

    data_parallel._close()
    monkeypatch.setattr(step_worker, "start_process", stopped_at_start)
    monkeypatch.setattr(step_worker, "stop_requested", lambda: True)
    monkeypatch.setattr(step_worker, "STOP_GRACE_SECONDS", 0.5)
    monkeypatch.setattr(data_parallel, "_disabled", False)  # (restored after)
    batches = [pairs(np.random.default_rng(18), 8) for _ in range(3)]
    started = []
    monkeypatch.setattr(step_worker, "start_process",
                        lambda *a: started.append(1) or stopped_at_start(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (nothing to say: the run is stopping)
        by_halves(Seq2seq(V, D, H, seed=0), batches)
    assert not data_parallel._disabled
    assert len(started) == 1  # (not a helper, and a grace, for every batch of the context)


def test_a_model_without_parameters_still_trains():
    """Trainer takes any model with forward, backward, params and grads."""
    class Constant:
        params, grads = [], []

        def forward(self, xs, ts):
            return 1.0

        def backward(self, dout=1):
            return None

    x, t = pairs(np.random.default_rng(11), 16)
    trainer = Trainer(Constant(), Adam())
    trainer.fit(x, t, max_epoch=1, batch_size=8, verbose=False)
    assert trainer.epoch == 1


@needs_processes
def test_a_replica_found_wrong_is_not_tried_again_in_the_models_next_context(calls):
    """A model whose replica was found to compute other bits is not handed to
    the helper again (common.data_parallel._helper): its next fit, epoch or
    hand-written loop computes both halves here from its first batch, without
    a new helper begun, a half posted, or the warning said again."""
    rng = np.random.default_rng(3)
    batches = [pairs(rng, 8) for _ in range(2)]
    model = ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0)
    with pytest.warns(RuntimeWarning, match="is not the model"):
        first = by_halves(model, batches)
    assert calls["post"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, in the first context
        again = by_halves(model, batches)
    assert calls["post"] == 1  # nothing handed to the helper
    assert_same_bits(again, first)


def nan_then_finite(model, batches):
    """In one context: the first batch with NaN parameters, then the others
    with the model's own; each later batch's loss and gradients."""
    saved = model.params[0].copy()
    x, t = batches[0]
    results = []
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        model.params[0][...] = np.nan
        with np.errstate(invalid="ignore"):
            forward_backward(x, t)
        model.params[0][...] = saved
        for x, t in batches[1:]:
            results.append((forward_backward(x, t), [g.copy() for g in model.grads]))
    return results


@needs_processes
def test_after_a_nan_first_batch_the_next_batch_of_the_context_is_checked(calls, monkeypatch):
    """A first batch whose loss is NaN says nothing of the replica
    (common.data_parallel._checked), so the *next* batch of the same context
    is checked: in one fit, a wrong replica whose first batch blew up was
    taken on trust from the second batch on, and trained on its wrong
    gradients without a word. (The tests above open a new context for the
    later batches, which checks its first batch anyway.)"""
    rng = np.random.default_rng(17)
    batches = [pairs(rng, 8) for _ in range(3)]
    with pytest.warns(RuntimeWarning, match="is not the model"):
        helped = nan_then_finite(ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0), batches)
    assert calls["post"] == 2  # the NaN batch and the next, found wrong; not the third
    monkeypatch.setattr(data_parallel, "_disabled", True)
    alone = nan_then_finite(ForgetfulSeq2seq(V, D, H, scale=2.0, seed=0), batches)
    assert_same_bits(helped, alone)


@needs_processes
def test_a_model_with_its_own_ignore_label_keeps_the_helper(calls):
    """The helper's replica is given the model's ignore label
    (common.batch_worker._build): built with its default, it scored the
    padding, and its half differed from this process's. The first batch's
    check then caught it and this process computed both halves for good,
    with a warning that blamed the model's config: the bits stayed right, so
    a test of the bits alone does not see it. The replica must be found the
    model, and go on computing its halves."""
    rng = np.random.default_rng(9)
    x, t = rng.integers(0, V, (12, 5)), rng.integers(1, V, (12, 5))
    t[::2, -2:] = 0  # padding
    model = Seq2seq(V, D, H, seed=3)
    model.loss_layer.ignore_label = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
            for _ in range(3):
                forward_backward(x, t)
    assert data_parallel._replica_verdict(model) == "same"
    assert calls["post"] == 3
