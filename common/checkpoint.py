"""Checkpoints: everything needed to continue a training run bit for bit.

One ``.npz`` file (written atomically, read without pickles) holds

* ``model/<name>``: the model's parameters by name;
* ``optim/<key>``: the optimizer's state arrays (``m.0``, ``v.0`` ...);
* ``state/<i>``: the carried hidden state of the recurrent layers;
* ``best/<name>``: the best parameters so far, when validating;
* ``last/<name>``: after a ``fit`` that restored the best parameters, the
  ones it trained last, from which the next ``fit`` goes on;

and its JSON metadata holds the model's class and configuration, the
optimizer's class and scalars (``lr``, ``t`` ...), the trainer's class,
counters and histories (epoch, iteration, the epoch at which an unfinished
``fit`` call began, read position, perplexities), the
run's settings (``trainer.settings``: what the command line was asked, so
that ``--resume`` alone continues the run) and the state of every random
generator the model's layers own (dropout masks).
"""

import numpy as np

from common.backend import to_cpu, to_gpu
from common.serialization import (
    as_read_back,
    is_index_key,
    load_npz,
    load_npz_meta,
    save_npz,
    to_json,
)
from common.util import finite_number
from layers._checks import state_width

FORMAT = "rnnlab-checkpoint"
VERSION = 1


def rng_state_problem(model) -> str | None:
    """Why a checkpoint could not hold the state of a layer's random
    generator (its bit generator's state is not plain numbers: MT19937,
    Philox, SFC64 keep arrays), or None: asked before training, not at
    the first checkpoint."""
    for place, rng in _layer_rngs(model).items():
        try:
            to_json(rng.bit_generator.state)
        except (TypeError, ValueError):
            kind = type(rng.bit_generator).__name__
            return (f"the random generator of layer {place} ({kind}) cannot be written to a "
                    f"checkpoint: give the layer numpy.random.default_rng(seed) (PCG64), or "
                    f"leave out checkpoint")
    return None


def _layer_rngs(model):
    """The ``numpy.random.Generator`` of every layer that draws random numbers,
    by its place: ``'2'`` for ``model.layers[2]``, ``'1.0'`` for the first of
    the ``layers`` of a part ``model.layers[1]`` (a dropout inside a
    model's part, an encoder's say), each layer once."""
    found, seen = {}, set()

    def visit(layers, prefix):
        for i, layer in enumerate(layers or []):
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(getattr(layer, "rng", None), np.random.Generator):
                found[f"{prefix}{i}"] = layer.rng
            visit(getattr(layer, "layers", None), f"{prefix}{i}.")

    visit(getattr(model, "layers", None), "")
    return found


def _get_state(model):
    return model.get_state() if hasattr(model, "get_state") else []


def save_checkpoint(path, trainer):
    """Write the trainer, its model and its optimizer to ``path``."""
    model, optimizer = trainer.model, trainer.optimizer
    arrays = {f"model/{k}": to_cpu(p) for k, p in model.named_params().items()}
    scalars = {}
    for k, v in optimizer.state_dict().items():
        if isinstance(v, np.ndarray):
            arrays[f"optim/{k}"] = v
        else:
            scalars[k] = v
    state = _get_state(model)
    for i, h in enumerate(state):
        if h is not None:
            arrays[f"state/{i}"] = to_cpu(h)
    if trainer.best_params is not None:
        arrays.update({f"best/{k}": to_cpu(p) for k, p in trainer.best_params.items()})
    if trainer.last_params is not None:
        arrays.update({f"last/{k}": to_cpu(p) for k, p in trainer.last_params.items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": type(model).__name__,
        "config": getattr(model, "config", {}),
        "optimizer": type(optimizer).__name__,
        "optimizer_scalars": scalars,
        "trainer": trainer.state_dict(),
        "trainer_class": type(trainer).__name__,
        "settings": getattr(trainer, "settings", None),
        "n_state": len(state),
        "rngs": {k: rng.bit_generator.state for k, rng in _layer_rngs(model).items()},
    }
    save_npz(path, arrays, meta)


def is_checkpoint_file(path) -> bool:
    """Whether ``path`` is a training checkpoint, by its metadata; False for
    any other file and for one that cannot be read (reading it says why)."""
    try:
        return load_npz_meta(path).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def params_bytes(model) -> int:
    """The bytes of ``model``'s parameters, as a file holds them."""
    return sum(int(p.nbytes) for p in model.named_params().values())


def least_bytes(trainer) -> int:
    """A lower bound of the size of ``trainer``'s checkpoint file, known before
    its first update: the model's parameters and, for each, one array of
    each per-parameter state of the optimizer (its ``state_names``)."""
    return params_bytes(trainer.model) * (1 + len(getattr(trainer.optimizer, "state_names", ())))


def read_checkpoint(path):
    """Read and validate a checkpoint file; returns ``(arrays, meta)``."""
    arrays, meta = load_npz(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an rnnlab checkpoint (no '{FORMAT}' marker); "
                         "a file saved by save_params holds parameters only")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path} is checkpoint version {meta.get('version')}, "
                         f"this rnnlab reads version {VERSION}")
    for key in ("model", "config", "optimizer", "optimizer_scalars", "trainer", "n_state",
                "rngs"):
        if key not in meta:
            raise ValueError(f"{path}: checkpoint metadata lacks {key!r}")
    return arrays, meta


def load_checkpoint(path, trainer):
    """Restore a trainer (with its model and optimizer) from ``path``.

    The model and optimizer must be of the classes and configuration the
    checkpoint was written with. Everything in the file is checked first
    (names, shapes and dtypes of every array, the optimizer's and trainer's
    state, the random generators); anything that does not fit is refused
    with a ``ValueError`` naming the file and the problem, and then nothing
    has been changed.
    """
    arrays, meta = read_checkpoint(path)
    try:
        plan = _check(path, arrays, meta, trainer)
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError) as exc:
        # Metadata of the wrong types (a string where a number belongs ...).
        raise ValueError(f"{path}: the checkpoint is damaged "
                         f"({type(exc).__name__}: {exc})") from exc
    params, optim_state, states, best, last, trainer_state, rng_states = plan

    model, optimizer = trainer.model, trainer.optimizer
    model.set_named_params(params, source=path)
    optimizer.load_state_dict(optim_state)
    if states:
        model.set_state(states)
    trainer.load_state_dict(trainer_state)
    trainer.best_params = best
    trainer.last_params = last  # (absent from checkpoints of older rnnlabs: None)
    for rng, state in rng_states:
        rng.bit_generator.state = state


def _check(path, arrays, meta, trainer):
    """Validate a checkpoint against ``trainer`` without changing anything.

    Returns what :func:`load_checkpoint` applies: ``(params, optimizer
    state dict, recurrent states, best params or None, last params or None,
    trainer state dict, [(generator, state)])``.
    """
    model, optimizer = trainer.model, trainer.optimizer
    config = getattr(model, "config", {})
    saved_by = meta.get("trainer_class", "RnnlmTrainer")
    if saved_by != type(trainer).__name__:
        raise ValueError(f"{path} was written by {saved_by}, not {type(trainer).__name__}")
    if meta["model"] != type(model).__name__ or meta["config"] != as_read_back(config):
        raise ValueError(
            f"{path} holds the model {meta['model']} {meta['config']}, but the model to resume is "
            f"{type(model).__name__} {config}"
        )
    if meta["optimizer"] != type(optimizer).__name__:
        raise ValueError(f"{path} was trained with {meta['optimizer']}, not "
                         f"{type(optimizer).__name__}")

    groups = {prefix: {} for prefix in ("model/", "optim/", "state/", "best/", "last/")}
    for key, value in arrays.items():
        prefix = key[: key.find("/") + 1]
        if prefix not in groups:
            raise ValueError(f"{path}: unexpected array {key!r} in a checkpoint")
        groups[prefix][key[len(prefix):]] = value
    params, optim, state, best, last = (groups[p] for p in ("model/", "optim/", "state/",
                                                             "best/", "last/"))

    if not callable(getattr(model, "check_params", None)):
        raise ValueError(f"{path}: a {type(model).__name__} cannot be resumed from a checkpoint; "
                         "checkpoints need a models.base.Model (named_params, "
                         "set_named_params, check_params)")
    expected = model.named_params()
    model.check_params(params, source=path)
    # (Exact resume: a float64 run is not continued in float32, nor the other way.)
    for name, a in params.items():
        if name in expected and a.dtype != expected[name].dtype:
            raise ValueError(f"{path}: parameter {name!r} is {a.dtype}, the model's "
                             f"{expected[name].dtype}: build the model with "
                             f"dtype=np.{a.dtype} to resume this run")
    if best:
        model.check_params(best, source=f"{path} (best parameters)")
    if last:
        model.check_params(last, source=f"{path} (last trained parameters)")
    optim_state = _check_optimizer(path, meta, optim, model, optimizer)
    states = _check_states(path, meta, state, model)
    trainer_state = _check_trainer_state(path, meta, trainer)
    rng_states = _check_rngs(path, meta, model)
    return (params, optim_state, states, _on_device(best, expected), _on_device(last, expected),
            trainer_state, rng_states)


def _on_device(kept, expected):
    """Kept parameters ``{name: array}`` as the model's arrays are (None: none kept)."""
    if not kept:
        return None
    return {k: to_gpu(v.astype(expected[k].dtype, copy=False)) for k, v in kept.items()}


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_optimizer(path, meta, optim, model, optimizer):
    # The optimizer's arrays follow its deduplicated parameter list (a tied
    # array once). A fresh optimizer would only check them at its first
    # update, so check them here, before anything is changed.
    distinct = list({id(p): p for p in model.params}.values())
    scalars = meta["optimizer_scalars"]
    if not isinstance(scalars, dict):
        raise ValueError(f"{path}: the optimizer's scalars are not a JSON object")
    for key, a in optim.items():
        _, _, index = key.rpartition(".")
        if not is_index_key(index) or int(index) >= len(distinct):
            raise ValueError(f"{path}: optimizer state {key!r} does not fit a model with "
                             f"{len(distinct)} distinct parameters")
        p = distinct[int(index)]
        if a.shape != p.shape or not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{path}: optimizer state {key!r} is {a.dtype} {a.shape}, its "
                             f"parameter is {p.dtype} {p.shape}")
    if "lr" in scalars and not (finite_number(scalars["lr"]) and scalars["lr"] >= 0):
        # The optimizer's constructor's check, for an optimizer of one's own whose
        # load_state_dict takes any number (update would refuse it only once training).
        raise ValueError(f"{path}: the optimizer state does not fit "
                         f"{type(optimizer).__name__}: lr must be a finite number >= 0, got "
                         f"{scalars['lr']!r}")
    optim_state = {**scalars, **optim}
    # A shallow copy that keeps the index of the parameters it has updated (a
    # copy.copy drops it: see Optimizer.__getstate__), so the state is checked
    # against them; load_state_dict rebinds attributes only.
    probe = object.__new__(type(optimizer))
    probe.__dict__.update(optimizer.__dict__)
    try:
        probe.load_state_dict(optim_state)
    except ValueError as exc:
        raise ValueError(f"{path}: the optimizer state does not fit "
                         f"{type(optimizer).__name__}: {exc}") from exc
    if probe.state and any(len(arrays) != len(distinct) for arrays in probe.state.values()):
        raise ValueError(f"{path}: the optimizer state covers fewer parameters than the "
                         f"model's {len(distinct)}")
    return optim_state


def _check_states(path, meta, state, model):
    # The carried hidden state: one (N, H) entry per h (and c) of the
    # recurrent layers, in get_state() order.
    recurrent = model._recurrent_layers() if hasattr(model, "_recurrent_layers") else []
    # (None: a layer of one's own that does not tell its width; any width then.)
    units = [state_width(layer, name)[0] for layer in recurrent
             for name in ("h", "c") if hasattr(layer, name)]
    if not _is_number(meta["n_state"]) or meta["n_state"] != len(units):
        raise ValueError(f"{path}: it carries {meta['n_state']!r} recurrent states, the model "
                         f"has {len(units)}")
    states = [None] * len(units)
    dtype = model.params[0].dtype if model.params else np.float32
    for key, h in state.items():
        if not is_index_key(key) or int(key) >= len(units):
            raise ValueError(f"{path}: unexpected recurrent state {'state/' + key!r}")
        H = units[int(key)]
        if h.ndim != 2 or H not in (None, h.shape[1]) or not np.issubdtype(h.dtype, np.floating):
            raise ValueError(f"{path}: recurrent state {int(key)} is {h.dtype} {h.shape}; "
                             f"the model needs a float (N, {H or 'H'}) array")
        states[int(key)] = to_gpu(h.astype(dtype, copy=False))
    if len({h.shape[0] for h in states if h is not None}) > 1:
        raise ValueError(f"{path}: its recurrent states have different batch sizes")
    return states


def _check_trainer_state(path, meta, trainer):
    trainer_state = meta["trainer"]
    if not isinstance(trainer_state, dict):
        raise ValueError(f"{path}: the trainer state is not a JSON object")
    history = trainer_state.get("history")
    if not isinstance(history, dict):
        raise ValueError(f"{path}: the trainer's history is not a JSON object")
    figures = f"{trainer.figure}_list"
    # (A history's null is an epoch without that figure: not validated, or every
    # batch skipped.)
    lists = [(figures, trainer_state.get(figures), False),
             *((f"history[{k!r}]", v, True) for k, v in history.items())]
    for name, values, nulls in lists:
        if not isinstance(values, list) or not all(_is_number(v) or (nulls and v is None)
                                                   for v in values):
            raise ValueError(f"{path}: the trainer's {name} is not a list of numbers")
    probe = object.__new__(type(trainer))  # load_state_dict sets attributes only
    try:
        _check_sums(trainer_state.get("sums"))
        _check_position(trainer_state)
        probe.load_state_dict(trainer_state)
    except ValueError as exc:
        raise ValueError(f"{path}: the trainer state is invalid ({exc})") from exc
    return trainer_state


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_sums(sums):
    """The running sums the next figures average: ``[interval loss, its batch
    count, epoch loss, its batch count]`` (losses finite, counts integers >= 0)."""
    if not (isinstance(sums, list) and len(sums) == 4
            and all(finite_number(v) and _is_number(v) for v in sums[0::2])
            and all(_is_count(v) for v in sums[1::2])):
        raise ValueError(f"its sums must be [loss, count, loss, count], finite losses and "
                         f"counts that are integers >= 0, got {sums!r:.100}")


def _check_position(trainer_state):
    """The epoch and the iteration within it: ``iteration`` from 0 to the
    epoch's ``iters_per_epoch`` (0 when that is not recorded), which the
    training loop would otherwise take as an epoch already ended."""
    epoch, iteration = trainer_state.get("epoch"), trainer_state.get("iteration")
    n = trainer_state.get("iters_per_epoch")
    if not _is_count(epoch):
        raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
    if n is not None and not (_is_count(n) and n > 0):
        raise ValueError(f"iters_per_epoch must be an integer >= 1 (or null), got {n!r}")
    if not (_is_count(iteration) and iteration <= (n or 0)):
        within = (f"from 0 to {n}, the iterations of its epoch" if n else
                  "0, as its iters_per_epoch is not recorded")
        raise ValueError(f"iteration must be an integer {within}, got {iteration!r}")


def _check_rngs(path, meta, model):
    rngs = _layer_rngs(model)
    if not isinstance(meta["rngs"], dict) or set(meta["rngs"]) != set(rngs):
        raise ValueError(f"{path}: its random generators do not match the model's layers")
    rng_states = []
    for k, rng in rngs.items():
        try:
            type(rng.bit_generator)().state = meta["rngs"][k]  # try it on a scratch generator
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: the state of random generator {k} is invalid "
                             f"({exc})") from exc
        rng_states.append((rng, meta["rngs"][k]))
    return rng_states
