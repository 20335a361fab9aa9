"""Models composed of rnnlab layers.

Every model derives from :class:`Model` (parameters by name, ``save_params``
/ ``load_params``, ``train()``/``eval()``, ``evaluating()``, the recurrent
state). The language models share :class:`LanguageModel`: ``forward(xs,
ts) -> loss``, ``backward()``, ``reset_state()`` and ``generate``.
``RnnlmGen`` and ``BetterRnnlmGen`` are the book's generating models.

``MODEL_CLASSES`` maps class names to classes: a file saved by
``save_params`` names its class, and :func:`model_from_config` /
:func:`load_model` rebuild it from there. A new model class is registered
by adding it to that dict.
"""

import inspect
import os

import numpy as np

from common.serialization import load_npz
from models.attention_seq2seq import AttentionSeq2seq
from models.base import LanguageModel, Model, check_shapes
from models.better_rnnlm import BetterRnnlm
from models.generate import generate
from models.peeky_seq2seq import PeekySeq2seq
from models.rnnlm import GruRnnlm, Rnnlm
from models.rnnlm_gen import BetterRnnlmGen, RnnlmGen
from models.seq2seq import Seq2seq
from models.simple_rnnlm import SimpleRnnlm

#: The short names of ``train_rnnlm.py --model``.
MODELS = {"simple": SimpleRnnlm, "lstm": Rnnlm, "gru": GruRnnlm, "better": BetterRnnlm}

#: Every model class a saved file may name, by class name.
MODEL_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (SimpleRnnlm, Rnnlm, GruRnnlm, BetterRnnlm, RnnlmGen, BetterRnnlmGen,
                Seq2seq, PeekySeq2seq, AttentionSeq2seq)
}


def build_model(name: str, vocab_size: int, wordvec_size: int = 100, hidden_size: int = 100,
                num_layers: int = 2, dropout: float = 0.5, tie_weights: bool | None = None,
                init_scale: float | None = None, seed: int | None = None) -> LanguageModel:
    """Make a model by its short name (``simple``, ``lstm``, ``gru``, ``better``).

    ``tie_weights`` (``better`` only): ``None`` ties when ``wordvec_size ==
    hidden_size``, as :class:`BetterRnnlm` does by default.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    kwargs = dict(init_scale=init_scale, seed=seed)
    if name == "better":
        # tie_weights=None: BetterRnnlm ties when wordvec_size == hidden_size.
        kwargs.update(dropout_ratio=dropout, num_layers=num_layers, tie_weights=tie_weights)
    return MODELS[name](vocab_size, wordvec_size, hidden_size, **kwargs)


#: The names files give rnnlab's sequence-to-sequence models (train_seq2seq.py's).
SEQ2SEQ_CLASS_NAMES = tuple(cls.__name__ for cls in (Seq2seq, PeekySeq2seq, AttentionSeq2seq))


class UnknownModelClass(ValueError):
    """A saved file names a model class that is not in :data:`MODEL_CLASSES`."""


def model_from_config(class_name: str, config: dict, seed: int | None = None, *,
                      shapes: dict | None = None, source: str | None = None,
                      dtype=None) -> Model:
    """Rebuild a model from its class name and the ``config`` saved with it.

    With ``shapes`` (``{name: shape}`` of the arrays a file holds), the
    parameter shapes the config implies are compared with them first, so a
    file whose config claims sizes its arrays do not have is refused before
    anything is allocated (``source`` names the arrays in the message); a
    subclass of one's own that does not define ``param_shapes`` is checked
    once built instead.
    Raises ``ValueError`` for an unknown class, a config that does not fit
    the class, or shapes that do not fit the config. ``dtype``: the
    parameters' (None: the class's default, float32).
    """
    cls = MODEL_CLASSES.get(class_name)
    if cls is None:
        raise UnknownModelClass(f"unknown model class {class_name!r}; known: "
                                f"{sorted(MODEL_CLASSES)}. A class of one's own loads by name "
                                f"once registered: models.MODEL_CLASSES[{class_name!r}] = "
                                f"{class_name}")
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError(f"the config of a {class_name} must be a dict of arguments, "
                         f"got {config!r:.80}")
    if shapes is not None:
        expected = cls.param_shapes(config) if _says_own_shapes(cls) else None
        if expected is not None:
            check_shapes(expected, shapes, source or f"arrays for {class_name} {config!r:.200}",
                         class_name)
    if dtype is not None and not _takes(cls, "dtype"):
        dtype = None  # a class of one's own that makes its arrays in one dtype: its own
    try:
        # (Only what is given: a class of one's own need not take a seed or a dtype.)
        return cls(**config, **({} if seed is None else {"seed": seed}),
                   **({} if dtype is None else {"dtype": dtype}))
    except TypeError as exc:
        raise ValueError(f"config {config!r:.200} does not fit {class_name}: {exc}") from None


def _takes(cls, name) -> bool:
    """Whether ``cls(...)`` takes the keyword argument ``name``."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # no signature to read: try it
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


def _says_own_shapes(cls) -> bool:
    """Whether ``cls.param_shapes`` was written for ``cls`` itself.

    A subclass of one's own (a GRU ``Seq2seq``, an ``Rnnlm`` with one more
    layer) inherits a ``param_shapes`` that describes its base class's
    layers, not its own; unless it defines its own, its files are checked
    against the model once built (``set_named_params``) instead.
    """
    for klass in cls.__mro__:
        if "param_shapes" in vars(klass):
            return True
        if not klass.__module__.startswith("models."):
            return False
    return True


def checkpoint_to_model_words(path, meta: dict) -> str:
    """How to write a model file from the checkpoint ``path`` (its metadata
    ``meta``): by the script that wrote it (it records its settings), or in
    Python for a checkpoint of ``fit(checkpoint=...)``."""
    if not isinstance(meta.get("settings"), dict):
        return ("to write one from this checkpoint: trainer.resume(path) with a trainer of "
                "its model, then model.save_params(...)")
    script = "train_seq2seq.py" if meta.get("model") in SEQ2SEQ_CLASS_NAMES else "train_rnnlm.py"
    return (f"to write one from this checkpoint: python scripts/{script} --resume {path} "
            f"--save model.npz, which first finishes the run's epochs if any are left")


def load_model(path: str | os.PathLike) -> tuple[Model, dict]:
    """Rebuild the model saved in ``path`` by ``save_params``: ``(model, meta)``.

    The file's arrays are read first (never more than the file can hold)
    and checked against its config before the model is built; ``meta`` is
    the metadata saved with them (``'vocab'``, ``'level'`` ...).
    """
    path = os.fsdecode(path)
    arrays, meta = load_npz(path)
    if meta.get("format") == "rnnlab-checkpoint":
        raise ValueError(f"{path} is a training checkpoint, not a model file: generate or "
                         f"evaluate from the file written by --save or model.save_params "
                         f"({checkpoint_to_model_words(path, meta)})")
    for key in ("model", "config"):
        if key not in meta:
            raise ValueError(f"{path} has no {key!r} in its metadata: it holds parameters but "
                             "not the model description; save it with train_rnnlm.py --save "
                             "or model.save_params")
    if not isinstance(meta["model"], str):
        raise ValueError(f"{path}: the model class in its metadata is not a name")
    shapes = {name: a.shape for name, a in arrays.items()}
    # Saved from a float64 model (a gradient check's): rebuilt as one, bit for bit.
    dtype = np.float64 if {a.dtype for a in arrays.values()} == {np.dtype(np.float64)} else None
    model = model_from_config(meta["model"], meta["config"], shapes=shapes,
                              source=f"{path} (config {meta['config']!r:.200})",
                              dtype=dtype)
    model.set_named_params(arrays, source=path)
    return model, meta


__all__ = ["MODELS", "MODEL_CLASSES", "AttentionSeq2seq", "BetterRnnlm", "BetterRnnlmGen",
           "GruRnnlm", "LanguageModel", "Model", "PeekySeq2seq", "Rnnlm", "RnnlmGen", "Seq2seq",
           "SimpleRnnlm", "UnknownModelClass", "build_model", "generate", "load_model",
           "model_from_config"]
