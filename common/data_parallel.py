"""Each core its own half of every mini-batch: the sequence-to-sequence models'
gradients computed by this process and a helper process at once.

Why this exists. The toy sequence-to-sequence tasks train on batches of
128 pairs through short LSTMs (7 or 29 steps), and there sharing each
step's product between the cores (:func:`common.parallel.step_products`)
gains little: the step's output, 128 rows of gates, has to cross from one
core to the other at every step, and that costs about what half the
product saves (N = 128, H = 128: 181 us a step shared, 175 us on one
core). The rows of a batch never meet, though, until the gradients are
added up: so this process computes the loss and the gradients of the
first half of the batch while a helper process (:mod:`common.batch_worker`,
with a replica of the model) computes those of the second half, nothing
crossing between them but the parameters before and the gradients after.
Each half runs as on one core (:func:`common.parallel.one_core`). Measured
as two single-threaded processes of 64 rows at once against the whole
batch of 128 shared as before, one training iteration (forward, backward,
clipping, Adam): Seq2seq on addition 6.4 against 10.0 ms, AttentionSeq2seq
on dates (H = 256) 69 against 88 ms.

Answering a test set (``common.util.seq2seq_correct``, each epoch of
``train_seq2seq.py``) is shared the same way: :func:`answer_halves`.

The mean loss of the batch is the mean of the halves' losses weighted by
their numbers of scored targets (those not equal to the loss's ignore
label), and so are the gradients::

    loss = (n_1 * loss_1 + n_2 * loss_2) / (n_1 + n_2)
    grad = w_1 * grad_1 + w_2 * grad_2,      w_k = n_k / (n_1 + n_2)

The halves depend on the batch's size alone, and each half's gradients
are the same bits whichever process computes them: when the helper is not
there (it could not start, it failed, or the machine is busy and it is
resting, see below) this process computes the second half itself after
the first, and the run goes on with the same results, bit for bit. Runs
with one thread (``RNNLAB_NUM_THREADS=1``), with small batches or models,
or of models a helper cannot replicate (below) compute the whole batch at
once, as before. A helper that does not answer in
time (HELPER_TIMEOUT_SECONDS; two seconds once a stop is asked with
Ctrl-C or SIGTERM) counts as failed. One training at a time per process:
:func:`batch_halves`, which both trainers hold for the whole of ``fit``,
raises RuntimeError in a second thread while one is open.

One helper per process, one batch at a time. The helper holds one replica
and one segment: a batch (or a batch of questions) takes it, without
waiting, from the moment it is begun on the batch's model and handed its
half until its half has come back (``_helper_lock``). A thread that finds
it taken -- another thread answering questions (``seq2seq_correct``) or
training at that moment -- computes both halves itself, the same bits
and answers. A thread answering questions also leaves the helper to a
context open in another thread that has it (a ``fit``, or another
thread's questions), rather than rebuild the replica at every batch. A
helper found dead when a half is handed to it is replaced as one that
dies during a batch is: this process computes that half, the next batch
starts a new helper. When this process's half raises while the helper
computes its own (a bad id in the first half, a Ctrl-C), the helper's
half is waited for (at most the helper's timeout; else the helper is
stopped) and dropped before the error goes on, so that a loop that
catches the error and goes on gets its next batch's halves whole.

Which models. The helper builds its replica as ``type(model)(**model.config,
dtype=...)``, gives its loss the model's ``ignore_label``, and receives
nothing but the parameters and the rows (and a language model's carried
state), so only a model class that declares
``replicable = True`` in its own class body is split (rnnlab's
``SimpleRnnlm``, ``Rnnlm``, ``GruRnnlm`` and three sequence-to-sequence
models do; a subclass declares it anew, see
:attr:`models.base.Model.replicable`). By declaring it, a class promises
that such a replica, given the same parameters and rows, computes the same
loss and gradients bit for bit: its constructor takes ``**config`` and
``dtype``, and its ``forward``/``backward`` draw nothing from a random
generator and keep nothing from batch to batch but the recurrent state
rnnlab carries. :func:`common.batch_worker.why_not_replicable` says what
else splitting needs: a :class:`models.LanguageModel` (its rows carry
their state from batch to batch, all of ``t`` scored) or a
:class:`models.Seq2seq` (pairs, ``t[:, 1:]`` scored), recurrent layers of
rnnlab's, and no dropout drawing masks (training mode with a ratio above
0: the two processes would draw different ones). The helper imports the
class by its module's name: a class defined in ``__main__`` (a script, a
notebook) or inside a function is not split (a warning says so, once a
context); one whose module the helper cannot import has both halves of
each batch computed by this process, the same bits as with the helper (a
warning says so), the helper not tried again in that context.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
import warnings
from contextlib import contextmanager

from common import batch_worker, step_worker
from common.backend import xp
from common.parallel import managed, num_threads, one_core
from common.serialization import to_json
from common.step_worker import AVAILABLE as PROCESSES_AVAILABLE

# Each half at least this many rows and this many multiply-adds in one step's
# recurrent product (rows * H * 4H for an LSTM): a smaller one gains less than
# the hand-off. And recurrent weights Wh of at most MAX_HALF_WEIGHT_BYTES: each
# half reads all of them at every step, which from some size on costs more
# than splitting each step's product by columns of Wh, where each core reads
# its own half (common.parallel.step_products). Measured as two
# single-threaded processes of 16 rows at once against the whole batch of 32
# as before, the character-level LSTM's iteration (T = 64, Adam): H = 128
# 14.1 against 24.5 ms, H = 256 (Wh 1 MiB) 42 against 56 ms, H = 512 (Wh 4
# MiB) 138 against 144 ms; and with the narrow column blocks each half's step
# products now take on one core (common.parallel.ONE_CORE_NARROW_ROWS), H =
# 512 102 against 128 ms (the GRU 85 against 99 ms), in one process, the two
# ways taking turns. Larger weights are not measured, so not split. The
# word-level models' batches of 20 do not split.
MIN_HALF_ROWS = 16
MIN_HALF_STEP_MULTIPLY_ADDS = 1 << 19
MAX_HALF_WEIGHT_BYTES = 1 << 22
# The helper is meant to finish with this process. When it is later than this
# (and than this process's own half) SLOW_STEPS steps in a row, another program
# has its core: it rests for REST_SECONDS, and this process computes both halves.
SLOW_SECONDS = 0.002
SLOW_STEPS = 3
REST_SECONDS = 5.0
# A helper that has not answered in the larger of HELPER_TIMEOUT_SECONDS and
# HELPER_TIMEOUT_FACTOR times this process's own half is hung (stopped, or
# stuck): it is killed and this process computes its half, with the same
# bits; the next batch starts a new helper. Generous: a busy machine delays
# a helper by milliseconds, not by many times a half.
HELPER_TIMEOUT_SECONDS = 30.0
HELPER_TIMEOUT_FACTOR = 50.0

# importlib.reload (Jupyter's autoreload) runs this module again in the same
# namespace: close the helper it would otherwise orphan, with its segment.
if globals().get("_worker") is not None and globals().get("_worker_owner") == os.getpid():
    globals()["_worker"].close()
_worker = None
_worker_owner = None  # the pid that started it (a forked child must not use it)
_resting_until = 0.0
_rests = 0  # how many times the helper was sent to rest
_disabled = False  # the process could not start: not again in this process
_retired_cpu = 0.0  # CPU seconds of helpers that have ended
# One training at a time per process: the thread whose batch_halves contexts
# are open now, and how many (nested ones of that thread are fine).
_training = {"thread": None, "depth": 0}
_training_lock = threading.Lock()
# Who has the helper now: taken without waiting (a thread that cannot have it at
# once computes both halves itself, the same bits) by a batch from its begin and
# post until its half has come back, and released however the batch ends.
_helper_lock = threading.Lock()


def _helpers_here() -> bool:
    """Whether this process may have a helper: NumPy arrays, x86-64, two threads."""
    return xp.__name__ == "numpy" and PROCESSES_AVAILABLE and num_threads() >= 2


def splits(model, rows: int) -> bool:
    """Whether a batch of ``rows`` rows for ``model`` is computed as two halves:
    a helper may be had, ``model`` can be replicated
    (:func:`common.batch_worker.why_not_replicable`), and each half repays
    the hand-off (see the thresholds above)."""
    if not _helpers_here() or batch_worker.why_not_replicable(model) is not None:
        return False
    Whs = [layer.params[1] for layer in model._recurrent_layers()]
    return halves_repay(rows, max(W.size for W in Whs), max(W.nbytes for W in Whs))


def halves_repay(rows: int, weight_size: int, weight_bytes: int) -> bool:
    """Whether each half of a batch of ``rows`` rows repays the hand-off, for
    a model whose largest recurrent weight has ``weight_size`` elements in
    ``weight_bytes`` bytes (the thresholds above); :func:`splits` and the
    memory estimate of a model not built yet
    (:func:`common.memory.may_split`) ask it alike."""
    half = rows // 2
    return (half >= MIN_HALF_ROWS and weight_bytes <= MAX_HALF_WEIGHT_BYTES
            and half * weight_size >= MIN_HALF_STEP_MULTIPLY_ADDS)


def _fits(part, shape) -> bool:
    """Whether the rows ``part`` fit a helper segment made for ``shape``."""
    return len(part) <= shape[0] and tuple(part.shape[1:]) == tuple(shape[1:])


def _rows(state, rows):
    """Rows ``rows`` of each carried state (None stays None)."""
    return [None if s is None else s[rows] for s in state]


def _get_worker(model, x_shape, t_shape, owner):
    """The helper, begun on ``model`` and parts of these shapes for ``owner``
    (the :func:`batch_halves` context that will use it), or None."""
    global _worker, _worker_owner, _disabled
    if _disabled:
        return None
    if _worker_owner != os.getpid():  # none yet, or inherited by a forked child
        _worker, _worker_owner = None, os.getpid()
    try:
        if _worker is None:
            _worker = batch_worker.BatchWorker()
            # (A multiprocessing worker's exit skips atexit: its helper and segment too.)
            step_worker.close_in_multiprocessing_child(_close)
        _worker.owner = None  # (a begin that fails leaves it to no context)
        _worker.begin(model, x_shape, t_shape)
        _worker.owner = owner
    except batch_worker.ReplicaRefused as error:
        # The model's doing, not the helper's: this context computes both halves itself
        # (the same bits) and asks no more; other contexts (models) still get the helper.
        warnings.warn(f"rnnlab: {error}; this process computes both halves of each batch "
                      f"(the same results). The helper builds it as cls(**model.config, "
                      f"dtype=...): its class must be importable there (in a module of this "
                      f"checkout, on PYTHONPATH or installed; not __main__ or a notebook) "
                      f"and its constructor must take those arguments", RuntimeWarning,
                      stacklevel=step_worker.outside_stacklevel())
        owner["refused"] = True
        return None
    except batch_worker.SegmentTooLarge as error:  # this model's size: smaller ones still split
        warnings.warn(f"rnnlab: {error} (it takes at most half of what is free there); this "
                      f"process computes both halves of each batch of this model (the same "
                      f"results)", RuntimeWarning, stacklevel=step_worker.outside_stacklevel())
        owner["refused"] = True
        return None
    except (OSError, TypeError, ValueError) as error:  # the helper's: not again in this process
        if isinstance(error, step_worker.HelperHung) and step_worker.stop_requested():
            # Given only a stop's grace, it may have been slow, not hung: no reason to
            # go without a helper for the rest of the process; this context, which
            # is stopping, asks no more (each try would wait the grace again).
            _close()
            owner["refused"] = True
            return None
        warnings.warn(f"rnnlab: computing half of each batch in a helper process failed "
                      f"({error}); this process computes both halves", RuntimeWarning,
                      stacklevel=step_worker.outside_stacklevel())
        _disabled = True
        _close()
        return None
    except BaseException:  # (a Ctrl-C mid-begin: its replies would be read as the next's)
        _close()
        raise
    return _worker


def rests() -> int:
    """How many times this process has found its helper too slow (another
    program had its core) and computed both halves for REST_SECONDS: a
    benchmark whose timings span a rest says so."""
    return _rests


def helper_cpu_seconds() -> float:
    """The CPU time the helper processes of this process have used so far,
    those that have ended included (where the system does not say, Linux
    aside: 0.0)."""
    return _retired_cpu + _live_cpu()


def _live_cpu() -> float:
    if _worker is None or _worker_owner != os.getpid() or _worker.process is None:
        return 0.0
    try:
        with open(f"/proc/{_worker.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def _close():
    global _worker, _retired_cpu
    if _worker is not None:
        _worker.owner = None  # (a context that had it begins a new one, not this closed one)
        if _worker_owner == os.getpid():
            _retired_cpu += _live_cpu()
            _worker.close()
    _worker = None


def _close_at_exit():
    """At exit: no new helper (a daemon thread still training computes both
    halves), and the helper closed once a batch of such a thread that has
    it has come back (waited for at most STOP_GRACE_SECONDS)."""
    global _disabled
    _disabled = True
    lock = _helper_lock
    claimed = lock.acquire(timeout=step_worker.STOP_GRACE_SECONDS)
    try:
        _close()
    finally:
        if claimed:
            lock.release()


# At exit a second Ctrl-C must not leave a traceback (nor the helper) behind.
atexit.register(step_worker.quiet_at_exit(_close_at_exit))


def _after_fork_in_child():
    """A forked child starts without the parent's helper: it closes its
    copies of the helper's pipes (whose write end would keep the helper
    alive after the parent) without stopping it, and forgets the training
    in progress in the parent's threads (they do not exist here), and
    their hold on the helper (a thread of the parent in a batch would keep
    this process's new helpers from it for good; a batch of the forking
    thread releases the parent's lock it took, not this one)."""
    global _worker, _worker_owner, _training_lock, _helper_lock
    if _worker is not None and _worker_owner != os.getpid():
        _worker.forget()
    _worker, _worker_owner = None, None
    _training_lock = threading.Lock()
    _helper_lock = threading.Lock()
    if _training["thread"] != threading.get_ident():
        _training.update(thread=None, depth=0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _forward_backward(model, x, t):
    with one_core():
        loss = model.forward(x, t)
        model.backward()
    return loss


def _combine(grads, first, second, w_first, w_second):
    """``grads[k] = w_first * first[k] + w_second * second[k]`` (``grads`` may be ``second``)."""
    for g, a, b in zip(grads, first, second, strict=True):
        scaled = xp.multiply(b, g.dtype.type(w_second))
        xp.multiply(a, g.dtype.type(w_first), out=g)
        g += scaled


def _helper(state, model, x_shape, t_shape):
    """The helper for the context whose ``state`` this is, begun on ``model``
    and parts of these shapes (again if another context has used it since),
    or None: it is resting, cannot be had, or cannot build this model, or
    (a context that yields it) another thread's open context has it.
    Called with ``_helper_lock`` held."""
    if state["refused"] or time.monotonic() < _resting_until:
        return None
    if state["worker"] is None and _replica_verdict(model) == "differs":
        state["refused"] = True  # (said when it was found)
        return None
    if state["worker"] is None or state["worker"].owner is not state:
        if state["yields"] and _kept_by_another_thread():
            return None
        state["worker"] = _get_worker(model, x_shape, t_shape, state)
    return state["worker"]


def _kept_by_another_thread() -> bool:
    """Whether the helper is begun for a context still open in another thread
    (which would begin it again at its next batch)."""
    owner = _worker.owner if _worker is not None and _worker_owner == os.getpid() else None
    return owner is not None and owner["open"] and owner["thread"] != threading.get_ident()


def _posted(state, post, *args) -> bool:
    """Hand the helper its half (``post(*args)``, the helper's ``post`` or
    ``post_answers``): False when the helper has died since its last answer
    (the OOM killer, a ``kill``): it is dropped, this process computes the
    half, and the next batch starts a new helper, as for one that dies
    during a batch. Anything else that stops the hand-over leaves the helper
    in an unknown state: it is closed, and the error raised. A helper
    still computing a half of an earlier batch (one whose :func:`_settle`
    was itself interrupted) is settled first: a half posted now would have
    its inputs overwritten by that half's outputs."""
    helper = state["worker"]
    if helper is not None and helper.busy():
        _settle(state, helper)
        if state["worker"] is not helper:  # closed: this process computes the half
            return False
    try:
        post(*args)
    except BaseException as error:
        _drop(state)
        if isinstance(error, OSError):
            return False
        raise
    return True


def _drop(state):
    """Close the helper of the context whose ``state`` this is: its next batch
    starts a new one."""
    state["worker"] = None
    _close()


def _settle(state, helper):
    """After this process's half raised while ``helper`` computed its own:
    wait for that half and drop it, so that it cannot write its outputs
    (a language model's state) over the next batch's inputs. A helper that
    dies, does not answer in its timeout, or whose wait is itself
    interrupted (a second Ctrl-C) is closed instead: the next batch starts a
    new one."""
    if state["worker"] is not helper or not helper.busy():
        return
    settled = False
    try:
        helper.wait(max(HELPER_TIMEOUT_SECONDS, helper.timeout or 0.0))
        settled = True
    except RuntimeError:  # its half failed there: answered all the same
        settled = True
    except OSError:  # died, or hung and killed
        pass
    finally:
        if not settled:
            _drop(state)


@contextmanager
def _helper_half(state, model, x_shape, t_shape, fits, post, *args):
    """A context giving the helper, its half of a batch handed over (by its
    method named ``post``, ``"post"`` or ``"post_answers"``, given ``args``),
    or None: this process computes both halves (``fits`` false: a batch the
    context's segment cannot hold; the helper taken by another thread,
    resting, or refused).

    It holds ``_helper_lock`` (taken without waiting) from the helper's
    begin until the context ends, by which the caller has collected the
    half; when the body raises, the half still in flight is settled first
    (:func:`_settle`).
    """
    lock = _helper_lock  # (this object: a fork in the batch replaces the global)
    claimed = fits and lock.acquire(blocking=False)
    try:
        helper = _helper(state, model, x_shape, t_shape) if claimed else None
        if helper is not None and not _posted(state, getattr(helper, post), *args):
            helper = None
        try:
            yield helper
        except BaseException:
            if helper is not None:  # its half may be in flight still
                _settle(state, helper)
            raise
    finally:
        if claimed:
            lock.release()


def _collect(state, helper, mine):
    """What the helper returns for its half, or None when it died or failed
    (this process then computes the half, and raises the error if it is one;
    the next batch starts a new helper). ``mine``: the seconds this process
    took for its own half."""
    global _resting_until, _rests
    try:
        waited = time.perf_counter()
        helper.timeout = max(HELPER_TIMEOUT_SECONDS, HELPER_TIMEOUT_FACTOR * mine)
        result = helper.wait()
        waited = time.perf_counter() - waited
    except (OSError, RuntimeError) as error:
        if isinstance(error, step_worker.HelperHung):  # not dead: say so, once per helper
            warnings.warn(f"rnnlab: {error}; this process computed its half of the batch "
                          f"(same results), and the next batch starts a new helper",
                          RuntimeWarning, stacklevel=step_worker.outside_stacklevel())
        elif isinstance(error, RuntimeError):  # the half raised there: see _helper_failed
            state["failed"] = str(error)
        state["worker"] = None
        _close()
        return None
    state["slow"] = state["slow"] + 1 if waited > max(SLOW_SECONDS, mine) else 0
    if state["slow"] >= SLOW_STEPS:  # another program has its core: rest
        _resting_until = time.monotonic() + REST_SECONDS
        _rests += 1
        state["slow"] = 0
    return result


def _helper_failed(state):
    """After this process has computed a half that raised in the helper: the
    replica is not the model (its class does not rebuild it from ``config``
    alone, say), so this context computes both halves from now on, rather
    than start a new helper to fail again at every batch; said once."""
    if state.get("failed"):
        warnings.warn(f"rnnlab: the helper process failed on its half of a batch "
                      f"({state['failed']}) that this process computed; this process "
                      f"computes both halves from now on (the same results)", RuntimeWarning,
                      stacklevel=step_worker.outside_stacklevel())
        state["failed"] = None
        state["refused"] = True


def _replica_key(model):
    """What the helper builds its replica of ``model`` from (a model that splits)."""
    try:
        config = to_json(getattr(model, "config", None))
    except (TypeError, ValueError):
        config = None  # (such a model is never split)
    return (batch_worker.model_name(model), config, str(model.params[0].dtype),
            batch_worker.ignore_label_of(model))


def _replica_verdict(model):
    """What the check of this model object's replica found (for its class,
    config, dtype and ignore label as they are now): ``"same"`` (a training
    half, its loss, gradients and state), ``"answers"`` (only the answers of
    questions checked, the same), ``"differs"``; or None before a check.

    Kept on the model, so that ``fit`` once an epoch pays the check once,
    and a sweep over an argument ``config`` leaves out checks each model it
    builds; and kept for this object alone (its ``id``): a copy
    (``copy.deepcopy``, pickle) is checked again, for it may compute other
    bits (its output layer's weight and bias are no longer one block)."""
    verdict = getattr(model, "_rnnlab_replica", None)
    if not (isinstance(verdict, tuple) and len(verdict) == 3):
        return None
    owner, key, found = verdict
    return found if owner == id(model) and key == _replica_key(model) else None


def _keep_verdict(model, verdict):
    try:
        model._rnnlab_replica = (id(model), _replica_key(model), verdict)
    except AttributeError:  # (a model of __slots__: checked again in every context)
        pass


def _same_bits(a, b) -> bool:
    """Whether two halves' results agree (finite ones: see :func:`_checked`)."""
    return bool(xp.array_equal(xp.asarray(a), xp.asarray(b)))


def _replica_differs(state, model, what):
    """Say once that the helper's replica is not ``model``, and refuse it."""
    _keep_verdict(model, "differs")
    warnings.warn(f"rnnlab: the helper process's half of {what} differs from this process's "
                  f"own computation of it: its replica, {type(model).__name__}(**config), is "
                  f"not the model (does config leave out an argument of its constructor? were "
                  f"layers added to or changed in the model after it was built? is "
                  f"the model a copy, by copy.deepcopy or pickle, whose output layer computes "
                  f"with its own weight and bias arrays? build it anew and give it the "
                  f"parameters: set_params_list); this process computes both halves from now "
                  f"on", RuntimeWarning, stacklevel=step_worker.outside_stacklevel())
    state["refused"] = True


def _checked(state, model, x2, t2, carried, n1, loss2, second, state2):
    """The helper's half ``(loss2, second, state2)`` of the first batch of a
    context (if this model's replica was never checked), checked against this
    process's own computation of it: the same bits, or a replica that is not
    the model (a constructor argument that ``config`` leaves out) -- said
    once, and this process computes both halves, and answers both halves of
    the questions, from then on. Returns the half to use; ``model.grads``
    holds the first half's gradients again."""
    state["check"] = False
    if _replica_verdict(model) == "same":
        return loss2, second, state2
    stateful = batch_worker.is_stateful(model)
    first = [g.copy() for g in model.grads]
    if stateful:
        model.set_state(_rows(carried, slice(n1, None)))
    here = _forward_backward(model, x2, t2)
    mine = [g.copy() for g in model.grads]
    my_state = [None if s is None else s.copy() for s in model.get_state()] if stateful else []
    for g, f in zip(model.grads, first, strict=True):
        g[...] = f
    if not (math.isfinite(float(here)) and all(bool(xp.isfinite(a).all())
                                               for a in [*mine, *my_state] if a is not None)):
        # NaN or inf here says nothing of the replica either way (a wrong one's
        # NaN is NaN too): this process's half is used, and the next batch checked.
        state["check"] = True
        return here, mine, my_state
    same = (_same_bits(float(here), float(loss2))
            and all(_same_bits(a, b) for a, b in zip(mine, second, strict=True))
            and all((a is None) == (b is None) and (a is None or _same_bits(a, b))
                    for a, b in zip(my_state, state2, strict=True)))
    if same:
        _keep_verdict(model, "same")
        return loss2, second, state2
    _replica_differs(state, model, "a batch")
    return here, mine, my_state


@contextmanager
def batch_halves(model, batch_shape_x, batch_shape_t):
    """A context giving ``forward_backward(x, t) -> loss``, for batches of at
    most ``batch_shape_x[0]`` rows.

    ``forward_backward`` leaves the batch's gradients in ``model.grads`` and
    returns its mean loss, as ``model.forward(x, t)`` then
    ``model.backward()`` do; a batch that :func:`splits` is computed as two
    halves, the second by the helper process when it is there (see the
    module docstring). Once the helper has found that it cannot build the
    model (its class's module cannot be imported there), this process
    computes both halves of every batch of the context, the helper not
    tried again.
    """
    state = {"worker": None, "slow": 0, "refused": False, "failed": None, "check": True,
             "unnamed": _unnamed(model), "open": True, "thread": threading.get_ident(),
             "yields": False}
    half = batch_shape_x[0] - batch_shape_x[0] // 2
    part_x, part_t = (half, *batch_shape_x[1:]), (half, *batch_shape_t[1:])

    # A language model's rows carry their hidden state from batch to batch: this
    # process keeps the whole batch's, and hands the second half's over each step.
    stateful = batch_worker.is_stateful(model)

    def halves(x1, t1, x2, t2, n1, n2, carried, helper):
        """This process's half, then the helper's (or this process's again):
        the gradients combined in ``model.grads``; returns both halves'
        losses and their states after them."""
        started = time.perf_counter()
        if stateful:
            model.set_state(_rows(carried, slice(None, len(x1))))
        loss1 = _forward_backward(model, x1, t1)
        state1 = model.get_state() if stateful else []
        result = None if helper is None else _collect(state, helper,
                                                      time.perf_counter() - started)
        total = n1 + n2
        w1, w2 = (n1 / total, n2 / total) if total else (0.5, 0.5)
        if result is None:
            first = [g.copy() for g in model.grads]
            if stateful:
                model.set_state(_rows(carried, slice(len(x1), None)))
            try:
                loss2 = _forward_backward(model, x2, t2)
            except BaseException:  # the half's own error (its data's), not the replica's
                state["failed"] = None
                raise
            _helper_failed(state)
            state2 = model.get_state() if stateful else []
            _combine(model.grads, first, model.grads, w1, w2)
        else:
            loss2, second, state2 = result
            if state["check"]:
                loss2, second, state2 = _checked(state, model, x2, t2, carried, len(x1),
                                                 loss2, second, state2)
            _combine(model.grads, model.grads, second, w1, w2)
        return loss1, loss2, state1, state2

    def forward_backward(x, t):
        if state["unnamed"]:  # said once, at the first batch
            warnings.warn(state["unnamed"], RuntimeWarning,
                          stacklevel=step_worker.outside_stacklevel())
            state["unnamed"] = None
        if not splits(model, len(x)):
            loss = model.forward(x, t)
            model.backward()
            return loss
        n = len(x) // 2
        x1, t1, x2, t2 = x[:n], t[:n], x[n:], t[n:]
        n1, n2 = batch_worker.scored_targets(model, t1), batch_worker.scored_targets(model, t2)
        carried = model.get_state() if stateful else []
        # (A batch larger or wider than the context was made for: this process alone;
        # so is one whose helper another thread has now.)
        fits = _fits(x2, part_x) and _fits(t2, part_t)
        try:
            with _helper_half(state, model, part_x, part_t, fits, "post", model.params,
                              x2, t2, _rows(carried, slice(n, None))) as helper:
                loss1, loss2, state1, state2 = halves(x1, t1, x2, t2, n1, n2, carried, helper)
        except BaseException:
            if stateful:  # the whole batch's state as it was, not a half's
                model.set_state(carried)
            raise
        if stateful:  # the whole batch's state again, for the next batch
            model.set_state([xp.concatenate([a, b]) for a, b in zip(state1, state2,
                                                                     strict=True)])
        total = n1 + n2
        return (n1 * loss1 + n2 * loss2) / total if total else 0.0

    _claim_training()  # (here: nothing between it and the try that releases it can fail)
    try:
        with managed():
            yield forward_backward
    finally:
        state["open"] = False
        _release_training()


def _unnamed(model) -> str | None:
    """What to tell the user when ``model``'s class declares ``replicable`` but
    cannot even be named to the helper (None: nothing)."""
    cls = type(model)
    reason = batch_worker.declares_replicable(cls) and batch_worker.unreachable(cls)
    if not reason or not _helpers_here():
        return None
    return (f"rnnlab: {reason}; each batch is computed whole in this process. For its "
            f"batches to be split, define the class at the top level of a module and import "
            f"it from there")


def _claim_training():
    """Make this thread the one training in this process, or raise.

    rnnlab's helpers and its contexts (common.parallel) keep their state
    per process: two trainings in two threads at once would hand each
    other's halves to the helper, and mix their deferred gradients.
    """
    me = threading.get_ident()
    with _training_lock:
        if _training["depth"] and _training["thread"] != me:
            raise RuntimeError(
                "rnnlab trains one model at a time per process, and another thread is "
                "training now: wait for it to finish (join its thread), or train the "
                "second model in another process (multiprocessing)")
        _training.update(thread=me, depth=_training["depth"] + 1)


def _release_training():
    with _training_lock:
        _training["depth"] = max(0, _training["depth"] - 1)
        if not _training["depth"]:
            _training["thread"] = None


@contextmanager
def answer_halves(model, max_rows: int, question_length: int, sample_size: int):
    """A context giving ``answer(questions, start_ids, beam_width) -> ids``
    ``(rows, sample_size)``, as ``model.generate`` answers, for at most
    ``max_rows`` questions of ``question_length`` ids at a time; a batch
    that :func:`splits` is answered as two halves at once, the second by the
    helper process when it is there. Each question's answer depends on its
    own row alone.
    """
    verdict = _replica_verdict(model)
    # (A replica not yet checked, by a training batch or by answers, is
    # checked by its first answers: trusted unchecked, one whose constructor
    # took an argument its config left out answered its half wrongly.)
    state = {"worker": None, "slow": 0, "refused": False, "failed": None, "open": True,
             "thread": threading.get_ident(), "yields": True, "check": verdict is None}
    half = max_rows - max_rows // 2

    def generate(questions, start_ids, beam_width):
        with one_core():
            return model.generate(questions, start_ids, sample_size, beam_width=beam_width)

    seq2seq = batch_worker.is_seq2seq(model)

    def answer(questions, start_ids, beam_width=1):
        if not seq2seq or not splits(model, len(questions)):
            return model.generate(questions, start_ids, sample_size, beam_width=beam_width)
        n = len(questions) // 2
        # (While another thread trains, the helper is its: both halves here, same answers;
        # so while another thread has it for a batch, or has its context open.)
        elsewhere = _training["depth"] and _training["thread"] != threading.get_ident()
        fits = not elsewhere and _fits(questions[n:], (half, question_length))
        second = None
        with _helper_half(state, model, (half, question_length), (half, sample_size + 1), fits,
                          "post_answers", model.params, questions[n:],
                          start_ids[n:], sample_size, beam_width) as helper:
            started = time.perf_counter()
            first = generate(questions[:n], start_ids[:n], beam_width)
            if helper is not None:
                second = _collect(state, helper, time.perf_counter() - started)
        if second is None:
            try:
                second = generate(questions[n:], start_ids[n:], beam_width)
            except BaseException:  # the half's own error, not the replica's
                state["failed"] = None
                raise
            _helper_failed(state)
        elif state["check"]:
            state["check"] = False
            here = generate(questions[n:], start_ids[n:], beam_width)
            if _same_bits(here, second):
                if _replica_verdict(model) is None:  # (a training check says more)
                    _keep_verdict(model, "answers")
            else:
                _replica_differs(state, model, "a batch of answers")
                second = here
        return xp.concatenate([xp.asarray(first), xp.asarray(second)])

    try:
        with managed():
            yield answer
    finally:
        state["open"] = False
