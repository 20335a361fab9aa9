"""The options of ``fit`` beyond its main arguments, checked in one place.

``RnnlmTrainer.fit`` and ``Trainer.fit`` take their less common options as
keyword arguments (``fit(..., val_corpus=v, patience=3)``) or as one
:class:`FitOptions` (``fit(..., options=FitOptions(patience=3))``). Every
value is checked before training starts; an unknown name is a ``TypeError``
that lists the known ones.
"""

import dataclasses
import numbers
import os

import numpy as np

from common.plot import plot_format
from common.serialization import has_pickle_name, output_path_problem
from common.util import finite_number


@dataclasses.dataclass
class FitOptions:
    """Options of ``fit``; see ``RnnlmTrainer.fit`` for their meaning."""

    val_corpus: object = None
    val_data: object = None
    val_batch_size: int = 10
    lr_decay: float | None = None
    patience: int | None = None
    lr_halve_from: int | None = None
    restore_best: bool = True
    max_iters: int | None = None
    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int | None = None
    on_nan: str = "raise"
    clip_value: float | None = None
    verbose: bool = True
    log_every: int | None = None
    plot_path: str | os.PathLike | None = None
    seed: int = 0

    @classmethod
    def from_call(cls, caller: str, options: "FitOptions | None", kwargs: dict) -> "FitOptions":
        """``options`` with ``kwargs`` applied; unknown names refused."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise TypeError(f"{caller}() got unexpected keyword argument(s) {unknown}; its "
                            f"options are {known}")
        if options is not None and not isinstance(options, cls):
            raise TypeError(f"options must be a FitOptions, got {type(options).__name__}")
        return dataclasses.replace(options or cls(), **kwargs)

    def __post_init__(self):
        # A path given as bytes (or a DirEntry of bytes), as open() takes one: a str.
        for name in ("checkpoint", "plot_path"):
            value = getattr(self, name)
            if isinstance(value, (bytes, os.PathLike)) and isinstance(os.fspath(value), bytes):
                setattr(self, name, os.fsdecode(value))

    def check(self) -> None:
        """Raise ``ValueError`` naming the first option out of range."""
        _count(self.val_batch_size, "val_batch_size", 1)
        _count(self.seed, "seed", 0)
        for name in ("verbose", "restore_best"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name, low in (("patience", 1), ("lr_halve_from", 2), ("max_iters", 0),
                          ("checkpoint_every", 1), ("log_every", 0)):
            value = getattr(self, name)
            if value is not None:
                _count(value, name, low)
        if self.lr_decay is not None and not (finite_number(self.lr_decay) and self.lr_decay > 1):
            raise ValueError(f"lr_decay must be a number > 1 (the learning rate is divided by "
                             f"it), got {self.lr_decay!r}")
        if self.clip_value is not None and not (finite_number(self.clip_value)
                                                and self.clip_value > 0):
            raise ValueError(f"clip_value must be a number > 0, got {self.clip_value!r}")
        if self.on_nan not in ("raise", "skip"):
            raise ValueError(f"on_nan must be 'raise' or 'skip', got {self.on_nan!r}")
        for name, example in (("checkpoint", "run.npz"), ("plot_path", "ppl.png")):
            path = getattr(self, name)
            if path is not None and not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"{name} must be a path (a str or os.PathLike) or None, got "
                                f"{type(path).__name__} {path!r:.40}")
            if path is not None and os.fspath(path) == "":
                raise ValueError(f"{name} is empty: give a file name, e.g. {example!r} (or "
                                 f"None for none)")
        if self.checkpoint is not None and has_pickle_name(self.checkpoint):
            raise ValueError(f"checkpoint {os.fspath(self.checkpoint)}: rnnlab never writes (or "
                             f"reads) pickles, whose loading can run any code; its files are "
                             f".npz: give a name ending in .npz")
        if (self.checkpoint is not None and self.plot_path is not None
                and os.path.realpath(self.checkpoint) == os.path.realpath(self.plot_path)):
            raise ValueError(f"checkpoint and plot_path are one file, "
                             f"{os.fspath(self.checkpoint)}: the plot would replace the "
                             f"checkpoint; give them different names")
        for name, example in (("checkpoint", "run.npz"), ("plot_path", "ppl.png")):
            path = getattr(self, name)
            if path is not None and (problem := output_path_problem(name, path, example)):
                raise ValueError(problem)  # now, not after the work
        if self.plot_path is not None:
            plot_format(self.plot_path)  # a suffix that names a format
        if self.checkpoint_every is not None and self.checkpoint is None:
            raise ValueError("checkpoint_every needs checkpoint=PATH, the file to write the "
                             "checkpoints to")
        validating = self.val_corpus is not None or self.val_data is not None
        if not validating and (self.lr_decay or self.patience is not None):
            raise ValueError("lr_decay and patience act on the validation figure: pass "
                             "val_corpus (RnnlmTrainer) or val_data (Trainer) too")


def check_main_arguments(max_epoch, max_grad, eval_interval) -> None:
    """The arguments both trainers' ``fit`` share."""
    _count(max_epoch, "max_epoch", 0)
    if eval_interval is not None:  # (None: the book's "record nothing")
        _count(eval_interval, "eval_interval", 1)
    if max_grad is not None and not (finite_number(max_grad) and max_grad > 0):
        raise ValueError(f"max_grad must be a number > 0 (or None: no clipping), got "
                         f"{max_grad!r}")


def _count(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
