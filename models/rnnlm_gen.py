"""The book's generating models (chapter 7): ``RnnlmGen`` and ``BetterRnnlmGen``.

They are :class:`~models.Rnnlm` and :class:`~models.BetterRnnlm` with the
book's sampling method: ``generate(start_id, skip_ids=None,
sample_size=100)`` returns ``sample_size`` ids, ``start_id`` first. Unlike
:func:`models.generate` (which starts from a zero state and gives the
model's state back), this ``generate`` goes on from the state the model
carries and leaves it after all the ids it returns but the last (that one
is not fed), so that a prompt fed through
``predict`` first conditions the sample, as in the book::

    model = BetterRnnlmGen()
    model.load_params()                 # BetterRnnlm.npz, saved after training
    for x in start_ids[:-1]:
        model.predict(np.array(x).reshape(1, 1))
    word_ids = start_ids[:-1] + model.generate(start_ids[-1], skip_ids)

``generate(..., beam_width=k)`` searches instead of sampling (not in the
book): the most likely continuation keeping ``k`` beams, from and to the
carried state in the same way.

Differences from the book: a sampled id in ``skip_ids`` is never drawn
(its probability is set to zero) instead of being drawn, dropped and the
last id fed again; ``rng`` (a generator or seed) may be given, else
NumPy's global generator is used, so ``np.random.seed`` works as in the
book.
"""

import numpy as np

from common.backend import to_cpu, xp
from common.util import carrying_state, check_rng
from models.beam_search import _LanguageModelDecoder, beam_search, check_count, useful_width
from models.better_rnnlm import BetterRnnlm
from models.rnnlm import Rnnlm


def _checked_skip(model, start_id, skip_ids, sample_size) -> np.ndarray:
    """The arguments of the book's ``generate`` checked; the mask ``(V,)`` of ``skip_ids``."""
    V = model.vocab_size
    if isinstance(start_id, np.ndarray) and start_id.shape == ():
        start_id = start_id[()]  # (a 0-d array: the one id it holds)
    if isinstance(start_id, (bool, np.bool_)) or not isinstance(start_id, (int, np.integer)) \
            or not 0 <= start_id < V:
        raise ValueError(f"start_id must be one integer id in [0, {V}), got {start_id!r}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) \
            or sample_size < 1:
        raise ValueError(f"sample_size must be a positive integer, got {sample_size!r}")
    skip = np.zeros(V, dtype=bool)
    if isinstance(skip_ids, np.ndarray) and skip_ids.shape == ():
        skip_ids = skip_ids[()]  # (a 0-d array: the one id it holds)
    if isinstance(skip_ids, (int, np.integer)) and not isinstance(skip_ids, (bool, np.bool_)):
        skip_ids = [skip_ids]  # one id to skip
    if isinstance(skip_ids, (bool, np.bool_, str)) or not (
            skip_ids is None or hasattr(skip_ids, "__iter__")):
        raise ValueError(f"skip_ids must be an id or a list of ids in [0, {V}), or None, got "
                         f"{skip_ids!r}")
    if skip_ids is not None:
        ids = np.asarray(list(skip_ids))
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= V):
            raise ValueError(f"skip_ids must be ids in [0, {V}), got {list(skip_ids)}")
        skip[ids.astype(np.int64)] = True
        if skip.all():
            raise ValueError("skip_ids hold every id of the vocabulary: nothing can be sampled")
    return skip


def sample_ids(model, start_id: int, skip_ids=None, sample_size: int = 100, rng=None) -> list[int]:
    """The book's ``generate`` for any language model (see the module docstring)."""
    skip = _checked_skip(model, start_id, skip_ids, sample_size)
    check_rng(rng, none="None (NumPy's global generator, as np.random.seed sets)")
    model._forget_forward()
    draw = rng.random if isinstance(rng, np.random.Generator) else (
        np.random.random if rng is None else np.random.default_rng(rng).random)

    # Dropout off, the state goes on from step to step (whatever the layers'
    # stateful flags) and is left where generation ended, as the book's.
    with model.evaluating(restore_state=False), carrying_state(model):
        word_ids = [int(start_id)]
        x = int(start_id)
        while len(word_ids) < sample_size:
            score = to_cpu(model.predict(xp.asarray([[x]])))[0, -1].astype(np.float64)
            # The largest score of the ids that may be drawn is exp(0) = 1: a
            # skipped id far above them would leave them all underflowed to 0.
            top = score[~skip].max()
            with np.errstate(over="ignore"):
                p = np.exp(score - top)
            p[skip] = 0.0
            cdf = np.cumsum(p)
            if not (np.isfinite(cdf[-1]) and cdf[-1] > 0):
                raise FloatingPointError("the model produced non-finite scores; cannot sample")
            x = int(np.searchsorted(cdf, draw() * cdf[-1], side="right"))
            x = min(x, int(np.flatnonzero(p)[-1]))  # u * total rounded up to total
            word_ids.append(x)
        return word_ids


def search_ids(model, start_id: int, skip_ids=None, sample_size: int = 100,
               beam_width: int = 1) -> list[int]:
    """The book's ``generate`` by beam search: ``sample_size`` ids, ``start_id``
    first, the most likely continuation found keeping ``beam_width`` beams
    (:func:`models.beam_search.beam_search`; 1 is greedy), no id of
    ``skip_ids`` in it. Goes on from the carried state and leaves the state
    of the best beam (after all its ids but the last), as sampling does."""
    skip = _checked_skip(model, start_id, skip_ids, sample_size)
    # A wider beam than can change the result would only cost time and memory.
    beam_width = useful_width(check_count("beam_width", beam_width, 1), model.vocab_size,
                              sample_size - 1)
    rows = {s.shape[0] for s in model.get_state() if s is not None}
    if rows - {1}:
        raise ValueError(f"the carried state holds {max(rows)} rows; generate continues one "
                         f"sequence: call reset_state() (or predict a prompt of one row) first")
    model._forget_forward()
    with model.evaluating(restore_state=False), carrying_state(model):  # (as sampling)
        ids = beam_search(_LanguageModelDecoder(model, skip if skip.any() else None),
                          np.asarray([start_id]), sample_size - 1, beam_width)[0]
    return [int(start_id)] + [int(i) for i in ids]


def _generated(model, start_id, skip_ids, sample_size, rng, beam_width):
    """The book's ``generate``: sampled with ``rng``, or searched with
    ``beam_width`` (which draws nothing, so takes no ``rng``)."""
    if beam_width is None:
        return sample_ids(model, start_id, skip_ids, sample_size, rng)
    if rng is not None:
        raise ValueError("beam_width searches for the most likely ids; it draws nothing, so it "
                         "takes no rng (leave rng at None)")
    return search_ids(model, start_id, skip_ids, sample_size, beam_width)


class RnnlmGen(Rnnlm):
    """:class:`~models.Rnnlm` with the book's ``generate`` (arguments as ``Rnnlm``).

    ``load_params()`` without a path reads ``Rnnlm.npz``: the file the
    trained ``Rnnlm`` wrote with ``save_params()``, as in the book."""

    def default_file_name(self) -> str:
        return "Rnnlm.npz"

    def generate(self, start_id: int, skip_ids=None, sample_size: int = 100, *,
                 rng=None, beam_width: int | None = None) -> list[int]:
        """``sample_size`` ids, ``start_id`` first, each drawn from the
        softmax of the scores after the one before; ids in ``skip_ids`` are
        never drawn. Goes on from the carried state and leaves it advanced.
        With ``beam_width`` the ids are searched, not drawn: the most likely
        continuation keeping that many beams (1 is greedy; :func:`search_ids`)."""
        return _generated(self, start_id, skip_ids, sample_size, rng, beam_width)


class BetterRnnlmGen(BetterRnnlm):
    """:class:`~models.BetterRnnlm` with the book's ``generate`` (arguments as
    ``BetterRnnlm``). Dropout is off from the start: this model generates.
    ``load_params()`` without a path reads ``BetterRnnlm.npz``, as ``RnnlmGen``
    reads ``Rnnlm.npz``."""

    def default_file_name(self) -> str:
        return "BetterRnnlm.npz"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval()

    def generate(self, start_id: int, skip_ids=None, sample_size: int = 100, *,
                 rng=None, beam_width: int | None = None) -> list[int]:
        """As :meth:`RnnlmGen.generate`."""
        return _generated(self, start_id, skip_ids, sample_size, rng, beam_width)
