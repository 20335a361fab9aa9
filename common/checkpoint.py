"""Checkpoints: everything needed to continue a training run bit for bit.

One ``.npz`` file (written atomically, read without pickles) holds

* ``model/<name>``: the model's parameters by name;
* ``optim/<key>``: the optimizer's state arrays (``m.0``, ``v.0`` ...);
* ``state/<i>``: the carried hidden state of the recurrent layers;
* ``best/<name>``: the best parameters so far, when validating;

and its JSON metadata holds the model's class and configuration, the
optimizer's class and scalars (``lr``, ``t`` ...), the trainer's counters and
histories (epoch, iteration, read position, perplexities) and the state of
every random generator the model's layers own (dropout masks).
"""

import numpy as np

from common.backend import to_cpu, to_gpu
from common.serialization import load_npz, save_npz

FORMAT = "rnnlab-checkpoint"
VERSION = 1


def _layer_rngs(model):
    """The ``numpy.random.Generator`` of every layer that draws random numbers."""
    return {str(i): layer.rng for i, layer in enumerate(model.layers)
            if isinstance(getattr(layer, "rng", None), np.random.Generator)}


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
    state = model.get_state()
    for i, h in enumerate(state):
        if h is not None:
            arrays[f"state/{i}"] = to_cpu(h)
    if trainer.best_params is not None:
        arrays.update({f"best/{k}": to_cpu(p) for k, p in trainer.best_params.items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": type(model).__name__,
        "config": getattr(model, "config", {}),
        "optimizer": type(optimizer).__name__,
        "optimizer_scalars": scalars,
        "trainer": trainer.state_dict(),
        "n_state": len(state),
        "rngs": {k: rng.bit_generator.state for k, rng in _layer_rngs(model).items()},
    }
    save_npz(path, arrays, meta)


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
    checkpoint was written with; anything else is refused with a clear
    ``ValueError`` before anything is changed.
    """
    arrays, meta = read_checkpoint(path)
    model, optimizer = trainer.model, trainer.optimizer
    if meta["model"] != type(model).__name__ or meta["config"] != getattr(model, "config", {}):
        raise ValueError(
            f"{path} holds a {meta['model']} {meta['config']}, but the model to resume is a "
            f"{type(model).__name__} {getattr(model, 'config', {})}"
        )
    if meta["optimizer"] != type(optimizer).__name__:
        raise ValueError(f"{path} was trained with {meta['optimizer']}, not "
                         f"{type(optimizer).__name__}")

    def group(prefix):
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    params, optim, best = group("model/"), group("optim/"), group("best/")
    state = group("state/")
    n_state = int(meta["n_state"])
    if n_state != len(model.get_state()) or any(int(k) >= n_state for k in state):
        raise ValueError(f"{path}: its recurrent state does not fit this model")
    rngs = _layer_rngs(model)
    if set(meta["rngs"]) != set(rngs):
        raise ValueError(f"{path}: its random generators do not match the model's layers")

    # All or nothing: if any part does not fit, put the parameters back.
    backup = {k: p.copy() for k, p in model.named_params().items()}
    try:
        model.set_named_params(params, source=path)
        optimizer.load_state_dict({**meta["optimizer_scalars"], **optim})
    except Exception:
        model.set_named_params(backup)
        raise
    model.set_state([to_gpu(state[str(i)]) if str(i) in state else None for i in range(n_state)])
    trainer.load_state_dict(meta["trainer"])
    trainer.best_params = {k: to_gpu(v) for k, v in best.items()} if best else None
    for k, rng in rngs.items():
        rng.bit_generator.state = meta["rngs"][k]
