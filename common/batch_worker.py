"""A helper process that computes a model's gradients on its part of each mini-batch.

The process side of :mod:`common.data_parallel` (which says why it exists).
It holds a replica of the model, built from the model's class and
``config``, and serves one request at a time: copy the current parameters
in, then either ``forward`` and ``backward`` on its rows, writing the loss
and the gradients out (``step ROWS``), or ``generate`` answers to its
questions, writing the ids out (``answer ROWS SAMPLE_SIZE BEAM_WIDTH``).

The protocol. Everything a step needs lives in one shared segment: a
header with the number of the last request done, the loss and
room for an error message; then the parameters and the gradients (each
the model's ``params`` in order, one after the other) and the rows of
``x`` and ``t`` (for answers: the questions, and the start id then the
answer of each), and for a language model the hidden state its rows carry
(in before the step, out after it, each entry flagged when it is None).
A process just started says ``up`` once it has imported what it needs;
only then does the caller create the segment (its name then exists for
milliseconds, not while Python starts; see :mod:`common.step_worker`,
which also says how the names are chosen and leftovers removed). A run
begins with a line of JSON (the model, its config and the
segment's layout); the process maps the segment and says ``mapped`` (the
caller then removes the segment's name, see :mod:`common.step_worker`),
builds its replica and says ``ready``, or ``error MESSAGE`` at either
point; a process whose caller is gone when it replies exits at once,
quietly (:func:`common.step_worker.reply`). The caller writes the
parameters and the rows, then posts the request on the process's
standard input, on which
the process sleeps between steps (it holds no core while the caller does
anything else). The caller computes its own part meanwhile and then spins
on the done counter. On x86-64 a core's stores reach the others in the
order they were made, so a counter seen means the data written before it
is there; elsewhere :mod:`common.data_parallel` does not start the
process. A step that fails in the process is reported as the negated step
number with the message in the header; the caller then computes that part
itself, which raises the error where the user can see it. The process
starts in a session of its own, so that a Ctrl-C or a signal to the
caller's process group does not reach it, and exits when its standard
input closes (the caller stops it, or ends) or its parent process is gone.
A caller that waits longer than its limit for a step (a hung process)
kills it and computes that part itself.

Run as ``python -m common.batch_worker``; :class:`BatchWorker` starts it.
No pickle crosses the pipe: the model is named by its class
(``"module:qualname"``) and its JSON config, and the process builds only a
class that declares ``replicable = True`` itself (checked on the class it
imports, not only by the caller). By that a model class promises that
``cls(**model.config, dtype=...)``, built in another process, computes the
same forward and backward bits from the same parameters and rows (and,
for a language model, the same carried state): nothing else crosses.
rnnlab's ``SimpleRnnlm``, ``Rnnlm``, ``GruRnnlm``, ``Seq2seq``,
``PeekySeq2seq`` and ``AttentionSeq2seq`` declare it; a model of one's
own opts in by setting it in its class body
(:attr:`models.base.Model.replicable`, not inherited).
:func:`why_not_replicable` says what else a replica needs. The process
runs its replica in evaluation mode: the caller splits a batch only while
none of the model's dropout draws a mask. The process imports the class's
module (running what its top level runs: keep a model class in a module
without side effects): a class defined in ``__main__`` (a script, a
notebook) or inside a function cannot be named, and is refused before any process starts; one
in a module the process cannot import (neither in this checkout, nor on
``PYTHONPATH``, nor installed) is refused by the process
(:class:`ReplicaRefused`), which goes on serving other models.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import os
import signal
import sys
import time

import numpy as np

from common import step_worker
from common.serialization import to_json

# Offset (in int64 words) of the counter of requests done, and (in bytes) of the
# loss and the message.
_DONE = 8
_LOSS_AT = 128
_ERROR_AT, _ERROR_BYTES = 256, 3840
_HEADER_BYTES = _ERROR_AT + _ERROR_BYTES



class ReplicaRefused(ValueError):
    """A helper process cannot hold a replica of this model (its class does
    not declare ``replicable``, cannot be imported there, its config is not
    JSON ...): a fact about the model, not the process, which stays usable
    for other models."""


class SegmentTooLarge(OSError):
    """This model's parameters and halves would take more of the shared
    memory than is free to take (see :func:`step_worker.fits_shared_memory`):
    a fact about the model's size, not the helper, which stays usable for
    smaller models."""


def model_name(model) -> str:
    """``"module:qualname"`` of the model's class: how the process finds it."""
    return f"{type(model).__module__}:{type(model).__qualname__}"


@functools.cache
def _rnnlab() -> dict:
    """The classes of rnnlab's the checks below know, by name (imported late,
    once: the layers and the models import common)."""
    from layers import TimeDropout, TimeGRU, TimeLSTM, TimeRNN
    from layers.bidirectional import Bidirectional
    from models.base import LanguageModel, Model
    from models.seq2seq import Seq2seq

    return {"Model": Model, "LanguageModel": LanguageModel, "Seq2seq": Seq2seq,
            "TimeDropout": TimeDropout, "recurrent": (TimeRNN, TimeLSTM, TimeGRU, Bidirectional)}


def declares_replicable(cls) -> bool:
    """Whether the model class ``cls`` itself (not only a base of it) sets
    ``replicable = True``: a subclass may change what ``forward`` does, so
    it promises anew (``Model.__init_subclass__`` gives every class its own
    ``replicable``, False unless its body says True)."""
    return (isinstance(cls, type) and issubclass(cls, _rnnlab()["Model"])
            and cls.replicable is True)


def unreachable(cls) -> str | None:
    """Why a helper process could not import the class ``cls`` by its name,
    as far as this process can tell (None: it may; the process still has
    to find the module)."""
    if cls.__module__ == "__main__":
        return (f"{cls.__qualname__} is defined in __main__ (a script run as a program, or "
                f"a notebook), which the helper process cannot import")
    if "<locals>" in cls.__qualname__:
        return f"{cls.__qualname__} is defined inside a function"
    return None


def is_stateful(model) -> bool:
    """Whether ``model``'s rows carry their hidden state from batch to batch
    (a :class:`models.LanguageModel`, trained by truncated BPTT): the caller
    hands each part's state over with it and takes it back. Otherwise (a
    :class:`models.Seq2seq`) every batch starts afresh."""
    return isinstance(model, _rnnlab()["LanguageModel"])


def is_seq2seq(model) -> bool:
    """Whether ``model`` is a :class:`models.Seq2seq` (pairs; targets ``t[:, 1:]``)."""
    return isinstance(model, _rnnlab()["Seq2seq"])


def _draws_masks(layer) -> bool:
    """Whether ``layer`` computes otherwise now than in evaluation mode: a
    dropout in training mode that drops something (a ratio above 0, or a
    mask fixed by ``set_mask``); any other layer with a ``train_flg`` that
    is in training mode, as rnnlab cannot tell what it does."""
    if not getattr(layer, "train_flg", False):
        return False
    return not (type(layer) is _rnnlab()["TimeDropout"] and layer.dropout_ratio == 0
                and layer.fixed_keep is None)


def _known_recurrent(layer) -> bool:
    """rnnlab's recurrent layers hold ``Wh`` as ``params[1]`` and say their
    state's width: the halves' work and state can be sized from them."""
    return isinstance(layer, _rnnlab()["recurrent"])


def why_not_replicable(model) -> str | None:
    """Why a helper process cannot compute part of ``model``'s batches with
    this process's bits, or None when it can: its class declares
    ``replicable`` and can be named; it is a language model (state carried)
    or a sequence-to-sequence model (pairs), whose scored targets the
    halves are weighed by; its recurrent layers are rnnlab's (and a
    language model's all stateful, as the replica's are); and none of
    its dropout draws a mask now (each process would draw its own)."""
    cls = type(model)
    if not declares_replicable(cls):
        return (f"{cls.__qualname__} does not declare replicable = True (in its own class "
                f"body: a subclass declares it itself)")
    reason = unreachable(cls)
    if reason is not None:
        return reason
    if not (is_stateful(model) or is_seq2seq(model)):
        return (f"{cls.__qualname__} is neither a LanguageModel nor a Seq2seq, whose "
                f"scored targets the halves are weighed by")
    recurrent = model._recurrent_layers()
    if not recurrent or not all(_known_recurrent(layer) for layer in recurrent):
        return "its recurrent layers are not all rnnlab's (TimeRNN, TimeLSTM, TimeGRU)"
    if is_stateful(model) and not all(getattr(layer, "stateful", True) for layer in recurrent):
        # A layer set to start every batch afresh hands no state over, and the
        # replica, built by the constructor, would carry one. (A bidirectional
        # layer has no flag: it carries nothing, in the replica as here.)
        return ("a recurrent layer is not stateful (stateful = False), where the "
                "replica built by its constructor would be")
    if any(_draws_masks(layer) for layer in model._all_layers()):
        return ("its dropout is active (training mode, a ratio above 0): each process would "
                "draw its own masks")
    return None


def _check_constructor(model) -> None:
    """Refuse, before any process starts, a class whose constructor cannot
    be called as the replica is built: ``cls(**model.config, dtype=...)``."""
    cls = type(model)
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # (none to read: the helper will tell)
        return
    try:
        signature.bind(**model.config, dtype=None)
    except TypeError as error:
        raise ReplicaRefused(f"{cls.__qualname__}(**config, dtype=...), as the helper builds "
                             f"the replica, does not fit its constructor ({error}): a "
                             f"replicable class takes the arguments of its config and dtype "
                             f"(np.float32 by default, given to its arrays)") from None


def state_sizes(model) -> list:
    """The hidden size of each entry of ``model.get_state()`` of a stateful
    model (:func:`is_stateful`; ``[]`` for the others, whose state is not
    carried)."""
    from layers._checks import state_width

    if not is_stateful(model):
        return []
    sizes = [state_width(layer, name)[0] for layer in model._recurrent_layers()
             for name in ("h", "c") if hasattr(layer, name)]
    if None in sizes:
        raise ReplicaRefused("the width of a recurrent layer's state is unknown")
    return sizes


def layout(param_shapes, dtype, x_shape, t_shape, state_sizes=()):
    """Byte offsets of the arrays in the segment, and its size.

    ``param_shapes``: the shapes of ``params`` in order; ``x_shape``,
    ``t_shape``: the largest part's rows (int64); ``state_sizes``: H of each
    carried state ``(rows, H)``. Returns ``({"params": [...], "grads":
    [...], "x": at, "t": at, "state": [...], "state_set": at}, size)``.
    """
    item = np.dtype(dtype).itemsize
    position = _HEADER_BYTES

    def place(n_bytes):
        nonlocal position
        at = position
        position += -(-n_bytes // 64) * 64  # each array on cache lines of its own
        return at

    offsets = {"params": [place(math.prod(s) * item) for s in param_shapes]}
    offsets["grads"] = [place(math.prod(s) * item) for s in param_shapes]
    offsets["x"] = place(math.prod(x_shape) * 8)
    offsets["t"] = place(math.prod(t_shape) * 8)
    offsets["state"] = [place(x_shape[0] * H * item) for H in state_sizes]
    offsets["state_set"] = place(8 * max(1, len(state_sizes)))  # 1: carried, 0: None
    return offsets, position


def arrays(buffer, spec) -> dict:
    """The segment's arrays described by ``spec`` (see ``begin``), by name."""
    dtype, offsets = np.dtype(spec["dtype"]), spec["offsets"]
    shapes = [tuple(s) for s in spec["param_shapes"]]
    out = {part: [np.ndarray(s, dtype, buffer, offset=at)
                  for s, at in zip(shapes, offsets[part], strict=True)]
           for part in ("params", "grads")}
    rows = spec["x_shape"][0]
    out["x"] = np.ndarray(tuple(spec["x_shape"]), np.int64, buffer, offset=offsets["x"])
    out["t"] = np.ndarray(tuple(spec["t_shape"]), np.int64, buffer, offset=offsets["t"])
    out["state"] = [np.ndarray((rows, H), dtype, buffer, offset=at)
                    for H, at in zip(spec["state_sizes"], offsets["state"], strict=True)]
    out["state_set"] = np.ndarray((len(spec["state_sizes"]),), np.int64, buffer,
                                  offset=offsets["state_set"])
    return out


class BatchWorker:
    """The caller's side of the helper process (see the module docstring).

    ``begin(model, x_shape, t_shape)`` prepares a run: the process builds a
    replica of ``model`` and maps a segment for parts of at most
    ``x_shape[0]`` rows. ``post(params, x, t)`` hands it a step;
    ``wait()`` returns ``(loss, grads)`` (views into the segment, valid
    until the next ``post``). ``close()`` stops the process. Raises
    OSError when the process cannot start or has died, RuntimeError with
    the process's message when a step failed there.
    """

    def __init__(self):
        self.process = None
        self.segment = None
        self.spec = None
        self.step = 0
        self.arrays = None  # the segment's arrays by name (see ``arrays``)
        self.rows = 0
        self.command = None
        self.owner = None  # who began it: set by the caller
        self.answer_shape = None  # (rows, sample_size) of answers posted
        self.timeout = None  # wait()'s default limit, seconds (set by the caller)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def busy(self) -> bool:
        """Whether the process has not yet answered the last request posted
        (done or failed): it may still read that request's inputs from the
        segment and write its outputs there, over the next request's. No
        system call: the done counter is read in the segment."""
        counters = self.counters
        return counters is not None and abs(int(counters[_DONE])) != self.step

    def forget(self):
        """In a forked child: drop the parent's helper without stopping it
        (see :func:`common.step_worker.forget_process`)."""
        if self.process is not None:
            step_worker.forget_process(self.process)
            self.process = None
        self.arrays = self.counters = None
        step_worker.unmap_inherited(self.segment)
        self.segment = None
        self.owner = None  # (no context of this process has it: it begins its own)

    def _send(self, line):
        try:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as error:
            raise OSError("the batch worker process has died") from error

    def begin(self, model, x_shape, t_shape):
        name = model_name(model)
        reason = why_not_replicable(model)
        if reason is not None:
            raise ReplicaRefused(f"a batch worker cannot build a {name}: {reason}")
        try:
            to_json(model.config, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ReplicaRefused(f"the config of a {name} is not JSON ({error})") from None
        _check_constructor(model)
        dtype = model.params[0].dtype
        label = ignore_label_of(model)
        shapes = [list(p.shape) for p in model.params]
        sizes = state_sizes(model)
        offsets, size = layout(shapes, dtype, x_shape, t_shape, sizes)
        if not step_worker.fits_shared_memory(size):
            raise SegmentTooLarge(f"{size / 2**20:.0f} MiB of shared memory for the helper "
                                  f"would not fit in /dev/shm")
        spec = {"model": name, "config": model.config, "dtype": dtype.str,
                "param_shapes": shapes, "offsets": offsets, "x_shape": list(x_shape),
                "t_shape": list(t_shape), "state_sizes": sizes,
                "ignore_label": None if label is None else int(label)}
        self._release_segment()
        if not self.alive():
            # The process first, the segment once it is up (see step_worker).
            self.process = step_worker.start_process("common.batch_worker")
            try:
                step_worker.wait_until_up(self.process, "batch worker")
            except BaseException:  # (a Ctrl-C too: its "up" would be read as a reply)
                self.close()
                raise
        self.segment = step_worker.create_segment(size)
        spec["segment"] = self.segment.name
        self.counters = np.ndarray((16,), np.int64, self.segment.buf)
        self.counters[:] = 0
        self.arrays = arrays(self.segment.buf, spec)
        self.step = 0
        self._send(to_json({"begin": spec}))
        self.spec = None
        try:
            reply = step_worker.read_reply(self.process, "batch worker")
            mapped = reply == "mapped"
            if mapped:  # before it builds the model: nothing named to leak (step_worker)
                step_worker.remove_name(self.segment)
                reply = step_worker.read_reply(self.process, "batch worker")
        except BaseException:  # (hung: killed; or a Ctrl-C) its segment's name not left behind
            self.close()
            raise
        if mapped and reply.startswith("error "):  # the process is well: this model is not for it
            self._release_segment()
            raise ReplicaRefused(f"the helper process could not build a {name} "
                                 f"({reply.removeprefix('error ')})")
        if reply != "ready":
            self.close()
            raise OSError(f"the batch worker process did not start ({reply or 'no reply'})")
        self.spec = spec

    def post(self, params, x, t, state=None):
        """Hand over a training step: the loss and gradients of the rows ``x``,
        ``t``; for a stateful model (:func:`is_stateful`) also the state they carry (entries of
        ``model.get_state()``, each ``(rows, H)`` or None)."""
        self._post(params, x, t, f"step {len(x)}")
        if self.spec["state_sizes"]:
            for k, value in enumerate(state):
                self.arrays["state_set"][k] = value is not None
                if value is not None:
                    self.arrays["state"][k][:len(x)] = value
        self._send(self.command)  # last: the process reads the arrays once it arrives

    def post_answers(self, params, x, start_ids, sample_size: int, beam_width: int):
        """Hand over questions ``x`` to answer (``model.generate``); ``wait()``
        then returns the answers ``(rows, sample_size)``."""
        self._post(params, x, start_ids[:, None],
                   f"answer {len(x)} {int(sample_size)} {int(beam_width)}")
        self.answer_shape = (len(x), int(sample_size))
        self._send(self.command)

    def _post(self, params, x, t, command):
        for mine, p in zip(self.arrays["params"], params, strict=True):
            mine[...] = p
        self.rows = rows = len(x)
        self.arrays["x"][:rows] = x
        self.arrays["t"][:rows, :t.shape[1]] = t
        self.step += 1
        self.answer_shape = None
        self.command = command

    def wait(self, timeout=None):
        """``(loss, grads, state)`` of a step (``state``: the rows' carried
        state after it, views; ``[]`` unless stateful), or the answers
        ``(rows, sample_size)``.

        A process that has not answered in ``timeout`` seconds (None:
        ``self.timeout``; both None: no limit), or in
        :data:`common.step_worker.STOP_GRACE_SECONDS` once the user has
        asked the run to stop, is taken as hung: it is killed, and
        :class:`common.step_worker.HelperHung` (an OSError, as for one that
        died) raised.
        """
        counters, step = self.counters, self.step
        if counters is None:  # closed, or a forked child's copy of its parent's (forget)
            raise OSError("the batch worker process is not this process's to wait for")
        timeout = self.timeout if timeout is None else timeout
        spins = 0
        started = time.monotonic()
        while True:
            done = counters[_DONE]
            if done == step:
                break
            if done == -step:
                raise RuntimeError(bytes(self.segment.buf[_ERROR_AT:_HEADER_BYTES])
                                   .rstrip(b"\0").decode("utf-8", "replace"))
            spins += 1
            if spins & 0xFFFF == 0:
                if not self.alive():
                    raise OSError("the batch worker process has died")
                limit = (step_worker.STOP_GRACE_SECONDS if step_worker.stop_requested()
                         else timeout)
                waited = time.monotonic() - started
                if limit is not None and waited > limit:
                    step_worker.kill_process(self.process)
                    raise step_worker.HelperHung(f"the batch worker process did not answer "
                                                 f"in {waited:.1f} s and was stopped")
        if self.answer_shape is not None:
            rows, sample_size = self.answer_shape
            return self.arrays["t"][:rows, 1:1 + sample_size].copy()
        loss = float(np.ndarray((), np.float64, self.segment.buf, offset=_LOSS_AT))
        return loss, self.arrays["grads"], [a[:self.rows] for a in self.arrays["state"]]

    def _release_segment(self):
        if self.segment is not None:
            segment, self.segment = self.segment, None  # (released once, however it goes)
            self.arrays = self.counters = None
            step_worker.release_segment(segment)

    def close(self):
        if self.process is not None:
            step_worker.stop_process(self.process)
            self.process = None
        self._release_segment()


# -- the process's side ---------------------------------------------------------------


def ignore_label_of(model):
    """The label of targets ``model``'s loss does not score, or None (no
    ``loss_layer``, or one that scores every target). The replica's loss,
    built with its default, is given it too."""
    return getattr(getattr(model, "loss_layer", None), "ignore_label", None)


def is_sequence_to_sequence(model) -> bool:
    """Whether ``model`` learns answers to questions (an encoder and a
    decoder; its target rows start with the decoder's start id), not a
    language model."""
    return hasattr(model, "encoder") and hasattr(model, "decoder")


def scored_targets(model, t) -> int:
    """How many targets of the rows ``t`` ``model``'s loss scores: those
    that are not its ``ignore_label`` (of a sequence-to-sequence model,
    ``t[:, 1:]``: the first is the decoder's start); all of them for a
    model without one. The halves of a batch, and the chunks of a
    validation, are weighed by it."""
    scored = t[:, 1:] if is_sequence_to_sequence(model) else t
    ignore = ignore_label_of(model)
    return int(scored.size) if ignore is None else int((scored != ignore).sum())


def _build(spec):
    """The replica: the class ``spec["model"]`` names, imported here and built
    only if it declares ``replicable`` itself; in evaluation mode."""
    module, _, qualname = spec["model"].partition(":")
    model_class = importlib.import_module(module)
    for name in qualname.split("."):
        model_class = getattr(model_class, name)
    if not declares_replicable(model_class):
        raise ValueError(f"refusing to build {spec['model']}: it does not declare "
                         f"replicable = True")
    model = model_class(**spec["config"], dtype=np.dtype(spec["dtype"]))
    # The caller splits only while its dropout draws no mask (off, or a ratio of 0:
    # the identity, bit for bit): off here, the replica computes the same.
    model.eval()
    if hasattr(getattr(model, "loss_layer", None), "ignore_label"):
        model.loss_layer.ignore_label = spec["ignore_label"]
    found = [list(p.shape) for p in model.params]
    if found != spec["param_shapes"]:
        raise ValueError(f"the replica's parameters {found} differ from {spec['param_shapes']}")
    return model


def _report(buffer, counters, step, error):
    message = f"{type(error).__name__}: {error}".encode("utf-8", "replace")[:_ERROR_BYTES - 1]
    buffer[_ERROR_AT:_ERROR_AT + len(message) + 1] = message + b"\0"
    counters[_DONE] = -step


def _serve():
    """Serve runs and steps until standard input closes."""
    from common.heap import keep_freed_memory
    from common.parallel import managed, one_core

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    # Waiting on stdin, it would outlive a parent whose forked child holds the pipe.
    step_worker.exit_with_parent()
    keep_freed_memory()  # it runs nothing but halves of batches (see common.heap)
    replies = _replies_apart()
    # Held throughout, as the trainer holds it: entered for each call instead, it
    # would ask BLAS for its thread count twice a call.
    with managed():
        step_worker.reply(replies, step_worker.UP)  # the caller creates the segment now
        _serve_lines(one_core, replies)


def _replies_apart():
    """The file this process replies to its caller on: its standard output,
    taken for the replies alone. What the code it runs prints (a model's
    ``print`` in ``forward``, a library's message) goes to standard error
    instead, which it shares with the caller, so the user sees it; on
    standard output it would be read as a reply, or fill the pipe, which
    nobody reads during a step, and hang the helper."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    if sys.stderr is not None:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        sys.stdout = sys.stderr
    else:  # the caller's standard error is closed: the prints go nowhere
        nowhere = os.open(os.devnull, os.O_WRONLY)
        os.dup2(nowhere, sys.stdout.fileno())
        os.close(nowhere)
    return replies


def _serve_lines(one_core, replies):
    segment = model = None
    for line in sys.stdin:
        if not line.endswith("\n"):  # the caller was killed while writing it
            return
        if line.startswith("{"):
            spec = json.loads(line)["begin"]
            # Nothing of the last run is kept, whether this one begins or not.
            a = counters = model = None  # (the views of the old segment before it)
            if segment is not None:
                segment.close()
                segment = None
            try:
                segment = step_worker.attach(spec["segment"])  # (the caller's to remove)
                counters = np.ndarray((16,), np.int64, segment.buf)
                a = arrays(segment.buf, spec)
                # Mapped: the caller removes its name now, while this process imports
                # and builds the model (the longest part of a begin).
                step_worker.reply(replies, "mapped")  # (exits quietly if the caller is gone)
                model = _build(spec)
            except Exception as error:  # noqa: BLE001 - told to the caller, which goes on alone
                message = f"{type(error).__name__}: {error}".replace("\n", " ")  # one line
                step_worker.reply(replies, f"error {message}")
                continue
            step = 0
            step_worker.reply(replies, "ready")
            continue
        command, rows, *options = line.split()
        rows = int(rows)
        step += 1
        try:
            _serve_one(model, a, segment, command, rows, options, one_core)
            counters[_DONE] = step
        except Exception as error:  # noqa: BLE001 - reported to the caller, which re-raises
            _report(segment.buf, counters, step, error)


def _serve_one(model, a, segment, command, rows, options, one_core):
    """One request on the segment's arrays ``a``."""
    for mine, p in zip(model.params, a["params"], strict=True):
        mine[...] = p
    x, t = a["x"][:rows], a["t"][:rows]
    with one_core(), np.errstate(all="ignore"):  # the caller's guard judges the loss
        if command == "answer":
            sample_size, beam_width = (int(o) for o in options)
            t[:, 1:1 + sample_size] = model.generate(x, t[:, 0], sample_size,
                                                     beam_width=beam_width)
            return
        if a["state"]:
            model.set_state([s[:rows] if carried else None
                             for s, carried in zip(a["state"], a["state_set"], strict=True)])
        loss = model.forward(x, t)
        model.backward()
    for out, g in zip(a["grads"], model.grads, strict=True):
        out[...] = g
    for k, value in enumerate(model.get_state() if a["state"] else []):
        a["state"][k][:rows] = value
        a["state_set"][k] = 1
    np.ndarray((), np.float64, segment.buf, offset=_LOSS_AT)[...] = loss


if __name__ == "__main__":
    _serve()
