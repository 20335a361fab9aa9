"""What a ``fit`` leaves behind when it does not run to its end, and what
trains beside it.

- A call stopped by an exception in the middle of a batch (the model's
  forward raising, out of memory, a second Ctrl-C, the optimizer refusing
  its update) is continued by the next call bit for bit, as ``fit``
  promises: the batch is given back (the lanes' read position, the carried
  state) when nothing was applied, and counted when the update was.
- A call refused because another thread trains changes nothing.
- A ``multiprocessing.Pool`` worker in ``fit`` ends quietly on
  ``terminate()`` (leaving ``with Pool()``).
- A child forked while another thread trains gets BLAS's threads back.

Signals and forks are tried in a process of their own.
"""

import errno
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from common import data_parallel, parallel
from common.checkpoint import read_checkpoint
from common.optimizer import SGD, Adam
from common.trainer import CheckpointWriteError, RnnlmTrainer, Trainer, TrainingOutOfMemory
from layers import TimeLSTM
from models import BetterRnnlm, Rnnlm, Seq2seq, SimpleRnnlm

ROOT = Path(__file__).resolve().parents[1]
LM = dict(batch_size=8, time_size=16, eval_interval=5, verbose=False)  # 23 iterations an epoch
PAIRS = dict(batch_size=32, eval_interval=3, verbose=False)  # 8 iterations an epoch


def corpus(n=3000, vocab=50):
    ids = np.random.default_rng(1).integers(0, vocab, size=n)
    return ids[:-1], ids[1:]


def pairs(n=256):
    rng = np.random.default_rng(0)
    x, t = rng.integers(1, 13, size=(n, 7)), rng.integers(1, 13, size=(n, 6))
    t[:, 0] = 0
    return x, t


class Boom(Exception):
    pass


class FailsOnce:
    """What makes the model's forward number ``at`` raise ``error``, or the
    optimizer's update number ``at`` raise: ``'refused'`` before it changes
    anything (as rnnlab's optimizers refuse what they cannot update),
    ``'applied'`` once it has changed the parameters (as a second Ctrl-C
    that comes just then)."""

    def __init__(self, where, at=3):
        self.where, self.at, self.forwards, self.updates = where, at, 0, 0

    def model(self, model):
        """``model`` (or a layer), its forward failing."""
        forward = model.forward

        def failing_forward(*args):
            self.forwards += 1
            if self.where in ("forward", "memory") and self.forwards == self.at:
                raise MemoryError if self.where == "memory" else Boom("the 3rd forward")
            return forward(*args)

        model.forward = failing_forward  # (the instance's: a helper's replica is the class's)
        return model

    def optimizer(self, optimizer):
        update = optimizer.update

        def failing_update(params, grads):
            self.updates += 1
            if self.where == "refused" and self.updates == self.at:
                raise ValueError("refused before changing anything")
            update(params, grads)
            if self.where == "applied" and self.updates == self.at:
                raise KeyboardInterrupt

        optimizer.update = failing_update
        return optimizer


def expected_error(where):
    return {"forward": Boom, "memory": TrainingOutOfMemory, "refused": ValueError,
            "applied": KeyboardInterrupt}[where]


def assert_same_run(a, b, figures):
    for p, q in zip(a.model.params, b.model.params, strict=True):
        assert np.array_equal(p, q)
    assert getattr(a, figures) == getattr(b, figures)
    assert a.history == b.history
    for name in ("epoch", "iteration", "iterations_run", "figure_iterations",
                 "epoch_iterations", "time_idx"):
        assert getattr(a, name, None) == getattr(b, name, None), name
    assert a.optimizer.t == b.optimizer.t


@pytest.mark.parametrize("where", ["forward", "memory", "refused", "applied"])
def test_a_call_stopped_in_a_batch_is_continued_bit_for_bit(where):
    xs, ts = corpus()
    straight = RnnlmTrainer(Rnnlm(50, 16, 32, seed=0), SGD(lr=1.0)).fit(xs, ts, max_epoch=2,
                                                                         **LM)
    fails = FailsOnce(where)
    trainer = RnnlmTrainer(fails.model(Rnnlm(50, 16, 32, seed=0)), fails.optimizer(SGD(lr=1.0)))
    with pytest.raises(expected_error(where)):
        trainer.fit(xs, ts, max_epoch=2, **LM)
    # Nothing applied: the batch is given back; applied: it is counted.
    done = 3 if where == "applied" else 2
    assert (trainer.iteration, trainer.time_idx) == (done, done * LM["time_size"])
    trainer.fit(xs, ts, max_epoch=2, **LM)  # the same call again: goes on to its end
    assert_same_run(trainer, straight, "ppl_list")

    # The trainer of pairs, whose batches follow the iteration, likewise.
    x, t = pairs()
    straight = Trainer(Seq2seq(13, 16, 32, seed=0), Adam()).fit(x, t, max_epoch=2, **PAIRS)
    fails = FailsOnce(where)
    trainer = Trainer(fails.model(Seq2seq(13, 16, 32, seed=0)), fails.optimizer(Adam()))
    with pytest.raises(expected_error(where)):
        trainer.fit(x, t, max_epoch=2, **PAIRS)
    assert trainer.iteration == done
    trainer.fit(x, t, max_epoch=2, **PAIRS)
    assert_same_run(trainer, straight, "loss_list")


@pytest.mark.skipif(not data_parallel.PROCESSES_AVAILABLE, reason="no helper process here")
def test_a_call_stopped_in_a_batch_computed_by_halves_is_continued_bit_for_bit(monkeypatch):
    monkeypatch.setattr(parallel, "_threads", 2)  # (a helper on a one-CPU machine too)
    xs, ts = corpus()
    fit = dict(LM, batch_size=32, max_epoch=2)  # 5 iterations an epoch
    model = Rnnlm(50, 16, 128, seed=0)
    assert data_parallel.splits(model, fit["batch_size"])  # the helper computes half of each
    try:
        straight = RnnlmTrainer(model, SGD(lr=1.0)).fit(xs, ts, **fit)
        trainer = RnnlmTrainer(FailsOnce("forward").model(Rnnlm(50, 16, 128, seed=0)),
                               SGD(lr=1.0))
        with pytest.raises(Boom):
            trainer.fit(xs, ts, **fit)
        assert trainer.time_idx == trainer.iteration * fit["time_size"]
        trainer.fit(xs, ts, **fit)
    finally:
        data_parallel._close()  # (its helper was made for two threads)
    assert_same_run(trainer, straight, "ppl_list")


def test_a_batch_trained_again_draws_the_same_dropout_masks():
    xs, ts = corpus()
    fit = dict(LM, max_epoch=1, time_size=8)

    def model():
        return BetterRnnlm(50, 16, 16, dropout_ratio=0.3, seed=0)

    straight = RnnlmTrainer(model(), SGD(lr=1.0)).fit(xs, ts, **fit)
    trainer = RnnlmTrainer(model(), SGD(lr=1.0))
    # The last LSTM's 3rd forward raises: the dropout layers before it have drawn their masks.
    FailsOnce("forward").model([layer for layer in trainer.model.layers
                                if isinstance(layer, TimeLSTM)][-1])
    with pytest.raises(Boom):
        trainer.fit(xs, ts, **fit)
    assert (trainer.iteration, trainer.time_idx) == (2, 16)
    trainer.fit(xs, ts, **fit)
    assert_same_run(trainer, straight, "ppl_list")


def run_python(code, timeout=120):
    """Run ``code`` in a Python process of its own, in the checkout."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_call_stopped_by_a_second_ctrl_c_in_a_forward_is_continued_bit_for_bit():
    done = run_python("""
        import json, os, signal
        import numpy as np
        from common.optimizer import SGD
        from common.trainer import RnnlmTrainer
        from models import Rnnlm

        class CtrlCTwice(Rnnlm):  # in its 3rd forward: the second Ctrl-C stops at once
            calls = 0
            def forward(self, xs, ts):
                self.calls += 1
                if self.calls == 3:
                    os.kill(os.getpid(), signal.SIGINT)
                    os.kill(os.getpid(), signal.SIGINT)
                return super().forward(xs, ts)

        ids = np.random.default_rng(1).integers(0, 50, size=3000)
        fit = dict(max_epoch=1, batch_size=8, time_size=16, eval_interval=5, verbose=False)
        runs = []
        for model in (Rnnlm(50, 16, 32, seed=0), CtrlCTwice(50, 16, 32, seed=0)):
            trainer = RnnlmTrainer(model, SGD(lr=1.0))
            stopped = None
            try:
                trainer.fit(ids[:-1], ids[1:], **fit)
            except KeyboardInterrupt as e:
                stopped = [type(e).__name__, trainer.iteration, trainer.time_idx]
                trainer.fit(ids[:-1], ids[1:], **fit)  # the notebook's cell run again
            runs.append(dict(stopped=stopped, time_idx=trainer.time_idx,
                             ppl=trainer.ppl_list, history=trainer.history,
                             params=[p.tobytes().hex() for p in model.params]))
        print(json.dumps(runs))
        """)
    assert done.returncode == 0, done.stderr
    straight, stopped = json.loads(done.stdout)
    assert stopped.pop("stopped") == ["KeyboardInterrupt", 2, 32]
    assert straight.pop("stopped") is None
    assert stopped == straight


def test_a_call_refused_because_another_thread_trains_changes_nothing():
    xs, ts = corpus(600, vocab=30)
    val = np.random.default_rng(2).integers(0, 30, size=200)
    fit = dict(max_epoch=3, batch_size=4, time_size=5, val_corpus=val, verbose=False)
    trainer = RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=0), SGD(lr=1.0)).fit(xs, ts, **fit)
    assert trainer.best_epoch < trainer.epoch  # the model holds the best epoch's parameters
    best = [p.copy() for p in trainer.model.params]
    state, last = trainer.state_dict(), trainer.last_params
    pairs_trainer = Trainer(Seq2seq(13, 16, 32, seed=0), Adam())
    x, t = pairs()

    claimed, done = threading.Event(), threading.Event()

    def another_training():  # what another thread's fit holds while it trains
        data_parallel._claim_training()
        claimed.set()
        done.wait(60)
        data_parallel._release_training()

    other = threading.Thread(target=another_training)
    other.start()
    try:
        assert claimed.wait(60)
        with pytest.raises(RuntimeError, match="trains one model at a time per process"):
            trainer.fit(xs, ts, **fit)
        with pytest.raises(RuntimeError, match="trains one model at a time per process"):
            pairs_trainer.fit(x, t, max_epoch=1, seed=5, **PAIRS)
    finally:
        done.set()
        other.join()
    assert all(np.array_equal(p, q) for p, q in zip(trainer.model.params, best, strict=True))
    assert trainer.last_params is last and trainer.state_dict() == state
    assert pairs_trainer.seed == 0 and pairs_trainer.optimizer.t == 0

    # Once the other training is over, the call trains on from the last parameters.
    trainer.fit(xs, ts, **fit)
    alone = RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=0), SGD(lr=1.0)).fit(xs, ts, **fit)
    alone.fit(xs, ts, **fit)
    assert_same_run(trainer, alone, "ppl_list")


@pytest.mark.skipif(os.name != "posix", reason="fork and SIGTERM")
def test_a_pool_worker_in_fit_ends_quietly_when_the_pool_is_left():
    done = run_python("""
        import multiprocessing as mp
        import numpy as np
        from common.optimizer import SGD
        from common.trainer import RnnlmTrainer
        from models import SimpleRnnlm

        ctx = mp.get_context("fork")
        training = ctx.Event()

        class Saying(SimpleRnnlm):
            def forward(self, xs, ts):
                training.set()
                return super().forward(xs, ts)

        def train(k):
            ids = np.random.default_rng(k).integers(0, 30, size=2000)
            RnnlmTrainer(Saying(30, 8, 8, seed=k), SGD(0.1)).fit(
                ids[:-1], ids[1:], max_epoch=100000, batch_size=4, time_size=5, verbose=False)

        with ctx.Pool(1) as pool:  # a sweep given up on: its worker is terminate()d
            pool.map_async(train, [0])
            assert training.wait(60)
        print("pool left", flush=True)
        """)
    assert (done.returncode, done.stdout) == (0, "pool left\n"), done.stderr
    assert "Traceback" not in done.stderr and "TrainingInterrupted" not in done.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_child_forked_while_another_thread_trains_gets_blas_threads_back():
    done = run_python("""
        import json, os, threading
        from common import blas, parallel

        def fork():  # the child: what it reports, and what sends it; the parent: None
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                out = dict(depth=parallel._managed_depth, blas=blas.get_threads())
                with parallel.managed():
                    out["inside"] = blas.get_threads()
                return out, lambda: (os.write(w, json.dumps(out).encode()), os._exit(0))
            os.close(w)
            os.waitpid(pid, 0)
            with os.fdopen(r) as f:
                report.append(json.load(f))
            return None, None

        report = [dict(threads=parallel.num_threads(), blas=blas.get_threads())]
        inside, leave = threading.Event(), threading.Event()

        def training():  # as fit holds managed() for its whole run
            with parallel.managed():
                inside.set()
                leave.wait(60)

        thread = threading.Thread(target=training)
        thread.start()
        inside.wait(60)
        out, send = fork()  # by a thread outside managed(), while another is in it
        if out is not None:
            out["after"] = blas.get_threads()
            send()
        leave.set()
        thread.join()
        with parallel.managed():
            out, send = fork()  # inside its own managed(): that goes on in the child
            if out is not None:
                out["still"] = blas.get_threads()
        if out is not None:
            out["after"] = blas.get_threads()
            send()
        print(json.dumps(report))
        """)
    assert done.returncode == 0, done.stderr
    start, other_thread, own = json.loads(done.stdout)
    if start["threads"] < 2 or not start["blas"] or start["blas"] < 2:
        pytest.skip("rnnlab leaves BLAS's threads alone here (one CPU, or no BLAS it knows)")
    assert other_thread == dict(depth=0, blas=start["blas"], inside=1, after=start["blas"])
    assert own == dict(depth=1, blas=1, inside=1, still=1, after=start["blas"])


def test_a_validation_that_ran_out_of_memory_is_scored_again_by_the_next_fit(monkeypatch):
    """The epoch was closed before its validation: after the error, the next
    fit started the following epoch, the validation history was one short of
    the epochs, and the best epoch (and restore_best) were another's. Now
    the epoch stays open until its validation has a figure, and the retried
    run is the uninterrupted one, bit for bit."""
    xs, ts = corpus()
    fit = dict(max_epoch=2, val_corpus=xs[:400], **LM)
    straight = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1)).fit(xs, ts, **fit)
    trainer = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    validate = trainer._validate
    failures = [MemoryError]

    def first_one_fails(opts):
        if failures:
            raise failures.pop()
        return validate(opts)

    monkeypatch.setattr(trainer, "_validate", first_one_fails)
    with pytest.raises(TrainingOutOfMemory):
        trainer.fit(xs, ts, **fit)
    assert (trainer.epoch, trainer.history["epoch"]) == (0, [])  # the epoch is still open
    trainer.fit(xs, ts, **fit)
    assert trainer.history == straight.history
    assert trainer.best_epoch == straight.best_epoch
    for a, b in zip(trainer.model.params, straight.model.params, strict=True):
        np.testing.assert_array_equal(a, b)


def no_memory(*args):
    """What a step or a validation that runs out of memory raises."""
    raise MemoryError


class NoRoomToCopy(SimpleRnnlm):
    """Its parameters cannot be copied once, when ``full`` is set: the copy of
    the best epoch's parameters, the close of an epoch's largest allocation."""

    full = False

    def named_params(self):
        params = super().named_params()
        if not self.full:
            return params
        self.full = False
        return {name: NoRoom() for name in params}


class NoRoom:
    def copy(self):
        raise MemoryError


def test_no_memory_to_keep_the_best_parameters_leaves_the_epoch_open(monkeypatch):
    """The best epoch's number was recorded, then its parameters' copy ran out
    of memory: restore_best later put back another epoch's parameters under
    its name. Now the close is all or nothing, and the retried run is the
    uninterrupted one."""
    xs, ts = corpus()
    fit = dict(max_epoch=2, val_corpus=xs[:400], **LM)
    straight = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1)).fit(xs, ts, **fit)
    assert straight.best_epoch == 2  # the second epoch's copy is the one that fails
    trainer = RnnlmTrainer(NoRoomToCopy(50, 8, 8, seed=0), SGD(lr=0.1))
    trainer.fit(xs, ts, **dict(fit, max_epoch=1))
    validate = trainer._validate

    def then_full(opts):  # the copy after the second epoch's validation fails
        figure = validate(opts)
        trainer.model.full = True
        return figure

    monkeypatch.setattr(trainer, "_validate", then_full)
    with pytest.raises(TrainingOutOfMemory, match=r"^out of memory closing epoch 2 \(copying "
                       r"its parameters as the best so far\)\. .* The next fit of this "
                       r"trainer goes on from here\.$"):
        trainer.fit(xs, ts, **dict(fit, max_epoch=1))
    assert (trainer.epoch, trainer.best_epoch, len(trainer.history["val_ppl"])) == (1, 1, 1)
    monkeypatch.undo()
    trainer.fit(xs, ts, **dict(fit, max_epoch=1))
    assert trainer.history == straight.history and trainer.best_epoch == 2
    for a, b in zip(trainer.model.params, straight.model.params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_memory_to_put_the_best_parameters_back_says_what_the_model_holds():
    """The copy of the last parameters, made before the best are put back at
    the end of fit, raised a bare MemoryError (a traceback from the scripts)."""

    class FullAtTheEnd(RnnlmTrainer):
        full = True  # the first time only

        def _restore_best(self, restore_best, progress):
            self.model.full, self.full = self.full, False
            super()._restore_best(restore_best, progress)

    xs, ts = corpus()
    fit = dict(max_epoch=2, val_corpus=xs[:400], **LM)
    last = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    last.fit(xs, ts, restore_best=False, **fit)
    trainer = FullAtTheEnd(NoRoomToCopy(50, 8, 8, seed=0), SGD(lr=0.1))
    with pytest.raises(TrainingOutOfMemory, match=rf"^out of memory putting back the best "
                       rf"epoch's parameters \(epoch {last.best_epoch}\) at the end of training: "
                       r"the model holds the last epoch's\. Free memory; the next fit of this "
                       r"trainer puts them back and ends the call\.$"):
        trainer.fit(xs, ts, **fit)
    for a, b in zip(trainer.model.params, last.model.params, strict=True):
        np.testing.assert_array_equal(a, b)
    trainer.fit(xs, ts, **fit)  # trains nothing more
    best = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1)).fit(xs, ts, **fit)
    assert trainer.epoch == 2 and trainer.history == best.history
    for a, b in zip(trainer.model.params, best.model.params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_keeps_the_epoch_whose_validation_ran_out_of_memory(tmp_path,
                                                                          monkeypatch):
    """A script exits on the error: the epoch's training was lost with the
    process, and --resume trained it again. The checkpoint of the open epoch
    is written on the way out; resumed, the run scores the epoch and goes on
    as the uninterrupted one."""
    xs, ts = corpus()
    path = tmp_path / "run.npz"
    fit = dict(max_epoch=2, val_corpus=xs[:400], checkpoint=path, **LM)
    straight = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    straight.fit(xs, ts, **dict(fit, checkpoint=tmp_path / "straight.npz"))
    trainer = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    monkeypatch.setattr(trainer, "_validate", no_memory)
    with pytest.raises(TrainingOutOfMemory, match=rf"after epoch 1\. .* The checkpoint "
                       rf"{re.escape(str(path))} holds the run as it stood: "
                       rf"trainer\.resume\({re.escape(repr(str(path)))}\) goes on from there\. "
                       rf"The next fit of this trainer goes on from here\.$"):
        trainer.fit(xs, ts, **fit)
    resumed = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=1), SGD(lr=0.1)).resume(path)
    assert (resumed.epoch, resumed.iteration) == (0, resumed.iters_per_epoch)
    resumed.fit(xs, ts, **fit)
    assert resumed.history == straight.history
    for a, b in zip(resumed.model.params, straight.model.params, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("write, error", [(1, MemoryError), (2, MemoryError),
                                          (2, OSError(errno.ENOSPC, "No space left on device"))],
                         ids=["at the epoch's end", "at the call's end", "a full disk"])
def test_no_memory_to_write_the_last_epochs_checkpoint_leaves_the_call_to_be_ended(
        tmp_path, monkeypatch, write, error):
    """The message named "epoch 3, iteration 1" of a 2-epoch run, and the same
    fit again trained 2 more epochs: the call counted as ended though its
    checkpoint was not written. Now it says after which epoch, and the next
    call ends the stopped one (nothing more to train) and writes the file."""
    from common import training_guards

    xs, ts = corpus()
    path = tmp_path / "run.npz"
    fit = dict(max_epoch=2, checkpoint=path, **LM)
    straight = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    straight.fit(xs, ts, **dict(fit, checkpoint=tmp_path / "straight.npz"))
    trainer = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    save = training_guards.save_checkpoint

    writes = []

    def full_after_epoch_2(where, trainer):  # the epoch's checkpoint, then the call's
        if trainer.epoch == 2:
            writes.append(1)
            if len(writes) == write:
                raise error
        save(where, trainer)

    monkeypatch.setattr(training_guards, "save_checkpoint", full_after_epoch_2)
    refused = (pytest.raises(TrainingOutOfMemory, match=r"^out of memory while writing the "
                             r"checkpoint after epoch 2\. Free memory\. The last checkpoint .* "
                             r"is kept\. The next fit of this trainer goes on from here\.$")
               if error is MemoryError else
               pytest.raises(CheckpointWriteError, match=r"No space left on device\): training "
                             r"stopped after epoch 2; the checkpoint written there before is "
                             r"kept"))
    with refused:
        trainer.fit(xs, ts, **fit)
    monkeypatch.undo()
    trainer.fit(xs, ts, **fit)
    assert trainer.epoch == 2 and trainer.history == straight.history
    assert read_checkpoint(path)[1]["trainer"]["epoch"] == 2


def test_no_checkpoint_is_written_of_an_update_that_stopped_halfway(tmp_path, monkeypatch):
    """Out of memory in the middle of the optimizer's update (some parameters
    stepped, others not): the checkpoint written before is kept as it was,
    not replaced by that state, though one is written as the run stands
    after any other failure."""
    xs, ts = corpus()
    path = tmp_path / "run.npz"
    trainer = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    trainer.fit(xs, ts, max_epoch=1, checkpoint=path, **LM)
    before = path.read_bytes()
    step, calls = trainer.optimizer._step, []

    def second_parameter_fails(*args):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError
        step(*args)

    monkeypatch.setattr(trainer.optimizer, "_step", second_parameter_fails)
    with pytest.raises(TrainingOutOfMemory, match=r"^out of memory at epoch 2, iteration 1\. .* "
                       r"The last checkpoint .* is kept\."):
        trainer.fit(xs, ts, max_epoch=1, checkpoint=path, **LM)
    assert path.read_bytes() == before


def test_out_of_memory_says_where_it_came_and_what_helps_there(monkeypatch):
    """Validation (val_batch_size rows at a time) ran out of memory and the
    message named the next epoch's first iteration and advised a smaller batch."""
    xs, ts = corpus()
    trainer = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    monkeypatch.setattr(trainer, "_validate", no_memory)
    with pytest.raises(TrainingOutOfMemory, match=r"^out of memory while scoring the "
                       r"validation data after epoch 1\. Use a smaller model, free memory, "
                       r"or score fewer rows at a time with a smaller val_batch_size\. The "
                       r"next fit of this trainer goes on from here\.$"):
        trainer.fit(xs, ts, max_epoch=2, val_corpus=xs[:400], **LM)
    monkeypatch.undo()
    steps = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), SGD(lr=0.1))
    monkeypatch.setattr(steps.model, "forward", no_memory)
    with pytest.raises(TrainingOutOfMemory, match=r"^out of memory at epoch 1, iteration 1\. "
                       r"Use a smaller batch"):
        steps.fit(xs, ts, max_epoch=1, **LM)
