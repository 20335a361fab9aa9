"""What every rnnlab model shares, and what every language model adds.

:class:`Model` is the base of all of them (language models and
sequence-to-sequence models alike): parameters collected from the layers
and named, saved and loaded by name (``.npz``, never pickles), the
train/eval switch, the carried recurrent state and ``evaluating()``.
:class:`LanguageModel` adds the forward pass from ids ``(N, T)`` to scores
``(N, T, V)``, the loss, the backward pass and text generation.
Subclasses build their layers in ``__init__`` and then call
``self._collect_params(names)``.
"""

import contextlib
import inspect
import operator
import os

import numpy as np

from common.backend import to_cpu, to_gpu
from common.parallel import deferred
from common.serialization import config_problem, has_pickle_name, load_npz, save_npz
from common.util import finite_number
from layers import LSTM, TimeEmbedding, TimeLSTM
from layers._checks import check_hidden_state, state_width
from models.generate import generate


class FolderGivenError(IsADirectoryError, ValueError):
    """A folder given where a file is to be written: a wrong argument (a
    ValueError, as ever), and a place the file cannot go (an OSError), so
    that a script's rescue (:mod:`common.rescue`) writes it elsewhere when
    the folder appeared during the run."""


class LayerArrays(list):
    """A model's ``params`` or ``grads``: the layers' own arrays, listed.

    A layer computes with the arrays in its own lists, so putting another
    array at a place of this list (``model.params[0] = W``) would change
    nothing the model computes, while the optimizer went on updating the
    new array and ``save_params`` saved it. That is refused: new values are
    copied into the array that is there (``model.params[0][...] = W``, or
    :meth:`Model.set_named_params`). An in-place operator on an item
    (``params[i] -= lr * grads[i]``, as the book's optimizers step) puts the
    same array back, which is allowed. A copy of the list (``copy.deepcopy``,
    pickle, or of a whole model) is a plain list: its arrays are no layer's.
    """

    def __init__(self, arrays, name: str):
        super().__init__(arrays)
        self.name = name  # 'params' or 'grads', for the message

    def __setitem__(self, index, value):
        if isinstance(index, (int, np.integer)) and value is self[index]:
            return  # (an in-place operator's result: the array that is there)
        at = f"model.{self.name}[{index!r}]"
        how = (", or model.set_named_params({**model.named_params(), name: new})"
               if self.name == "params" else "")
        raise TypeError(f"model.params and model.grads list the layers' own arrays: an array "
                        f"put at a place of the list ({at} = ...) would not reach the layer "
                        f"that reads the one there. Copy the values into it instead: "
                        f"{at}[...] = new (the same shape){how}")

    def __delitem__(self, index):
        self.__setitem__(index, None)

    def __reduce_ex__(self, protocol):
        return list, (list(self),)


class Init:
    """Draws a model's initial weights from one random generator.

    Weights are drawn in float64 on the CPU and then cast, so that one seed
    gives the same model in any dtype and on either backend. With
    ``init_scale`` every array (biases included) is instead uniform in
    ``[-init_scale, init_scale]``, as in Zaremba et al. (2014).
    """

    def __init__(self, seed=None, rng=None, dtype=np.float32, init_scale=None):
        try:
            floating = dtype is not None and np.dtype(dtype) in (np.float32, np.float64)
        except TypeError:
            floating = False
        if not floating:
            raise ValueError(f"dtype must be np.float32 (to train) or np.float64 (for "
                             f"gradient checks), got {dtype!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(0)); "
                             f"for an integer seed pass seed=, got rng={rng!r:.80}")
        if seed is not None and (isinstance(seed, (bool, np.bool_))
                                 or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
        if init_scale is not None and not (finite_number(init_scale) and init_scale > 0):
            # 0 would start every weight at zero, where the units never tell apart.
            raise ValueError(f"init_scale must be a finite number > 0 (weights uniform in "
                             f"[-init_scale, init_scale], e.g. 0.1) or None, got {init_scale!r}")
        largest = min(float(np.finfo(dtype).max), float(np.finfo(np.float64).max) / 2)
        if init_scale is not None and init_scale > largest:
            raise ValueError(f"init_scale must be at most {largest:.3g}: weights beyond it are "
                             f"not {np.dtype(dtype).name} numbers, got {init_scale!r}")
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.dtype = dtype
        self.init_scale = init_scale

    def _cast(self, a):
        return to_gpu(a.astype(self.dtype))

    def normal(self, shape, scale):
        """``N(0, 1) * scale`` (or the uniform init when ``init_scale`` is set)."""
        if self.init_scale is not None:
            return self.uniform(shape)
        return self._cast(self.rng.standard_normal(shape) * scale)

    def zeros(self, shape):
        if self.init_scale is not None:
            return self.uniform(shape)
        return self._cast(np.zeros(shape))

    def uniform(self, shape):
        s = self.init_scale
        return self._cast(self.rng.uniform(-s, s, size=shape))

    def child_rng(self):
        """An independent generator (for a dropout layer), derived from the seed."""
        return np.random.default_rng(self.rng.integers(2**63))


_PICKLE_REFUSED = (
    "rnnlab never reads or writes pickles (unpickling a file can run any code in it); "
    "its files are .npz. Save with model.save_params() (file '{default}') or "
    "model.save_params('name.npz'). To convert a pickle written by the book's code, load it "
    "yourself in code you trust (params = pickle.load(f)), then call "
    "model.set_params_list(params, from_book=True) (the book orders an LSTM's gates f, g, i, "
    "o) and model.save_params()"
)


class Model:
    """Base class of every rnnlab model: parameters by name, files, modes, state.

    A subclass builds its layers in ``__init__``, lists them in
    ``self.layers``, stores its constructor arguments that define the
    architecture (not ``seed``, ``rng``, ``dtype`` or ``init_scale``) in
    ``self.config`` (a JSON-able dict) and calls
    ``self._collect_params(names)``. A part made of several layers (an
    encoder, a decoder) lists its own in a ``layers`` attribute;
    ``train``/``eval``, the recurrent state and ``evaluating`` reach the
    layers inside it too.

    Attributes:
        params, grads: the arrays of all layers, in order; a tied array is
            listed at each place it is used (the optimizer sums its grads).
        param_names: one name per entry of ``params`` (``'embed.W'`` ...).
        config: the constructor arguments that define the architecture,
            saved with the parameters.
        replicable: whether the class promises that a replica built in
            another process, ``type(model)(**model.config, dtype=...)``,
            computes the same bits as the model (see below).
    """

    layers: list
    config: dict

    #: ``True`` in a class body opts the class in to having part of each batch
    #: computed by a helper process that holds a replica of the model
    #: (:mod:`common.data_parallel`). The class promises that
    #: ``cls(**model.config, dtype=...)``, given the same parameters, rows and
    #: carried state, computes the same loss and gradients bit for bit: its
    #: ``forward``/``backward`` draw nothing from a random generator (an active
    #: dropout is refused anyway) and keep nothing from batch to batch but
    #: the recurrent state rnnlab carries, and the helper can import the
    #: class by its module's name. Not inherited: a subclass may change what
    #: ``forward`` does, so it declares it itself.
    replicable: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.replicable = vars(cls).get("replicable", False) is True  # (not inherited)

    def _collect_params(self, names: list[str], layers: list | None = None) -> None:
        """Gather ``params``/``grads`` of ``layers`` (default ``self.layers``) in order."""
        # (self.layers itself, so that a layer put in it later is seen by _check_arrays)
        layers = self.layers if layers is None else list(layers)
        _check_layers_once(layers)
        params, grads = [], []
        for k, layer in enumerate(layers):
            _check_params_and_grads(k, layer)
            params += layer.params
            grads += layer.grads
        self.params, self.grads = LayerArrays(params, "params"), LayerArrays(grads, "grads")
        self._param_layers = layers
        if len(names) != len(self.params):
            raise ValueError(f"{len(names)} names for {len(self.params)} parameters")
        # A name is an array's key in files, checkpoints and the best epoch's copy:
        # one name on two arrays would keep only one of them there, silently.
        first = {}
        for j, (name, p) in enumerate(zip(names, self.params, strict=True)):
            i = first.setdefault(name, j)
            if self.params[i] is not p:
                raise ValueError(f"the parameter name {name!r} names two different arrays, "
                                 f"params[{i}] and params[{j}]: give each array a name of its "
                                 f"own (a tied array, listed twice, may have one name)")
        self.param_names = list(names)

    def _check_arrays(self) -> None:
        """Raise ``ValueError`` unless ``params`` and ``grads`` still list the
        arrays the layers hold: an array put in a layer's list, or in a
        model's list that is not a :class:`LayerArrays`, is in one list only,
        and training would update an array that no layer reads (or read a
        gradient that no backward writes). Trainers check it before
        training and after each backward, and ``save_params`` before
        writing."""
        layers = getattr(self, "_param_layers", None)
        if layers is None:  # (a model that lists its arrays itself)
            return
        params = [p for layer in layers for p in layer.params]
        grads = [g for layer in layers for g in layer.grads]
        if (len(params) == len(self.params) == len(grads) == len(self.grads)
                and all(map(operator.is_, params, self.params))
                and all(map(operator.is_, grads, self.grads))):
            return  # (at every step: the rest only says what is wrong)
        model = type(self).__name__
        for k, layer in enumerate(layers):
            _check_params_and_grads(k, layer)
        in_layers = [(layer, i, p, g) for layer in layers
                     for i, (p, g) in enumerate(zip(layer.params, layer.grads, strict=True))]
        if len(in_layers) != len(self.params) or len(self.params) != len(self.grads):
            raise ValueError(f"{model}'s layers hold {len(in_layers)} parameters, but its params "
                             f"and grads list {len(self.params)} and {len(self.grads)}: "
                             f"arrays were added to or taken from a list after the model was "
                             f"built. After adding or removing a layer, list the arrays again "
                             f"with a name for each: model._collect_params(names). To train "
                             f"some parameters only (the others frozen), give "
                             f"those to the optimizer in a loop of your own: "
                             f"optimizer.update([model.params[j] for j in ...], "
                             f"[model.grads[j] for j in ...])")
        for j, (layer, i, p, g) in enumerate(in_layers):
            name, where = self.param_names[j], type(layer).__name__
            if self.params[j] is not p:
                raise ValueError(
                    f"{model}.params[{j}] ({name}) is not the array its layer {where} "
                    f"computes with (its params[{i}]): a new array (or layer) was put in a list "
                    f"after the model was built, and training would update an array the layer "
                    f"does not read. Change values in place instead (model.params[{j}][...] = "
                    f"new); to keep what the layers hold now, list their arrays again: "
                    f"model._collect_params(model.param_names)")
            if self.grads[j] is not g:
                raise ValueError(
                    f"{where}.grads[{i}] is no longer {model}.grads[{j}] ({name}): a new array "
                    f"was put there (a backward that rebinds self.grads[{i}] = ...), which the "
                    f"optimizer never reads; write the gradient into the array: "
                    f"self.grads[{i}][...] = ...")

    # -- parameters by name ---------------------------------------------------------

    def named_params(self) -> dict:
        """``{name: array}``; a tied array appears once, under its first name."""
        out, seen = {}, set()
        for name, p in zip(self.param_names, self.params, strict=True):
            if id(p) not in seen:
                seen.add(id(p))
                out[name] = p
        return out

    @classmethod
    def param_shapes(cls, config: dict) -> dict | None:
        """``{name: shape}`` of what :meth:`named_params` holds for a model
        built from ``config``, computed without building it (``None`` when a
        class does not say; files are then checked after building)."""
        return None

    def check_params(self, arrays: dict, source: str = "the given arrays") -> None:
        """Raise ``ValueError`` unless ``arrays`` has every parameter's name,
        shape and a float dtype whose finite values the model's dtype holds,
        and no other name; changes nothing.

        The one check of a parameter set, for parameter files and checkpoints.
        """
        params = self.named_params()
        for name, a in arrays.items():
            if not (hasattr(a, "shape") and hasattr(a, "dtype")):
                raise TypeError(f"{source}: parameter {name!r} is a {type(a).__name__}, not an "
                                f"array: give np.asarray(...) of it")
        check_shapes(_shapes(params), _shapes(arrays), source, type(self).__name__)
        for name, a in arrays.items():
            if not np.issubdtype(a.dtype, np.floating):
                raise ValueError(f"{source}: parameter {name!r} has non-float dtype {a.dtype}")
            # Cast to float32, a float64 value past 3.4e38 would be inf, silently.
            largest = float(np.finfo(params[name].dtype).max)
            if float(np.finfo(a.dtype).max) > largest and a.size:
                biggest = float(np.abs(a, where=np.isfinite(a), out=np.zeros(a.shape)).max())
                if biggest > largest:
                    raise ValueError(f"{source}: parameter {name!r} holds {biggest:.4g}, beyond "
                                     f"the range of the model's {params[name].dtype} (at most "
                                     f"{largest:.4g})")

    def set_named_params(self, arrays: dict, source: str = "the given arrays") -> None:
        """Copy ``{name: array}`` into the parameters, in place (all names,
        same shapes, checked first: on a mismatch nothing is changed). The
        values may be anything ``np.asarray`` takes (nested lists ...)."""
        arrays = {name: to_cpu(a) for name, a in arrays.items()}
        self.check_params(arrays, source)
        for name, p in self.named_params().items():
            p[...] = to_gpu(arrays[name].astype(p.dtype, copy=False))

    def set_params_list(self, arrays: list, source: str = "the given arrays", *,
                        from_book: bool = False) -> None:
        """Copy arrays given in ``params`` order (as the book's pickles hold
        them) into the parameters. A tied array is taken at its first place;
        what the list holds at its later places is ignored.

        ``from_book=True``: the arrays are the book's, whose LSTM packs its
        four gates' columns as f, g, i, o, where rnnlab's (as PyTorch's)
        are i, f, g, o: every LSTM's ``Wx``, ``Wh`` and ``b`` are put in
        rnnlab's order (without it, a book LSTM would compute another
        function, silently).
        """
        if not isinstance(from_book, bool):
            raise TypeError(f"from_book must be True or False, got {from_book!r}")
        if len(arrays) != len(self.params):
            n = len(arrays)
            raise ValueError(f"{source} holds {n} array{'s' if n != 1 else ''}, "
                             f"{type(self).__name__} has "
                             f"{len(self.params)} parameters (in params order)")
        gated = self._lstm_arrays() if from_book else set()
        named = {}
        for name, p, a in zip(self.param_names, self.params, arrays, strict=True):
            a = np.asarray(to_cpu(a))
            if id(p) in gated and a.shape == p.shape:  # (a wrong shape: refused below)
                f, g, i, o = np.split(a, 4, axis=-1)
                a = np.concatenate([i, f, g, o], axis=-1)
            named.setdefault(name, a)
        self.set_named_params({name: named[name] for name in self.named_params()}, source)

    def _lstm_arrays(self) -> set:
        """The ids of every LSTM's ``Wx``, ``Wh`` and ``b`` (a bidirectional
        layer's two directions included)."""
        found = set()
        for layer in self._all_layers():
            for part in (layer, getattr(layer, "forward_layer", None),
                         getattr(layer, "backward_layer", None)):
                if isinstance(part, (LSTM, TimeLSTM)):
                    found.update(id(p) for p in part.params[:3])
        return found

    # -- files -------------------------------------------------------------------------

    def default_file_name(self) -> str:
        """The file ``save_params()``/``load_params()`` use without a path: ``<ClassName>.npz``."""
        return f"{type(self).__name__}.npz"

    def save_params(self, path: str | os.PathLike | None = None, vocab=None, *,
                    file_name: str | os.PathLike | None = None, **meta) -> str:
        """Write the parameters to ``path`` (``.npz``, no pickles), atomically.

        Without ``path`` the file is ``<ClassName>.npz`` in the current
        folder (the book's ``save_params()``, which wrote ``.pkl``).
        ``file_name=`` is the book's name for ``path`` (give one of them, not
        both). A ``.pkl`` name is refused. ``vocab`` (the ``id_to_word`` dict
        or a list of tokens) is stored with them as JSON, so that the file
        alone is enough to generate text; ``meta`` (JSON values, e.g.
        ``level="char"``) is stored too, but a key that looks like a
        misspelt argument (``filename=``, ``vocabs=`` ...) is refused rather
        than stored. Returns the path written.
        """
        path = _path_argument("save_params", path, file_name)
        _check_meta_names(meta)
        path = self._file(path)
        if os.path.isdir(path):
            raise FolderGivenError(f"{path} is a folder; give a file name in it, e.g. "
                                   f"{os.path.join(path, self.default_file_name())}")
        if not isinstance(getattr(self, "config", None), dict):
            raise TypeError(f"{type(self).__name__} has no config to save with its weights: set "
                            f"self.config = dict(vocab_size=..., ...) in __init__, the "
                            f"arguments that build it again (see models.Model.config)")
        if problem := config_problem(self.config):
            raise TypeError(f"{type(self).__name__}'s {problem}")
        self._check_arrays()  # (else the file would hold arrays the model does not compute with)
        header = {"model": type(self).__name__, "config": self.config, **meta}
        if vocab is not None:
            header["vocab"] = _vocab_list(vocab)
            # Longer is allowed (train_rnnlm.py --corpus-size keeps the whole list;
            # the extra tokens are unknown to the model); shorter leaves ids unnamed.
            V = getattr(self, "vocab_size", None)  # None: a model without one
            if isinstance(V, int) and len(header["vocab"]) < V:
                raise ValueError(f"vocab holds {len(header['vocab'])} tokens, fewer than the "
                                 f"model's {V} ids: pass the vocabulary it was trained on")
        arrays = {name: to_cpu(p) for name, p in self.named_params().items()}
        save_npz(path, arrays, header)
        return path

    def load_params(self, path: str | os.PathLike | None = None, *,
                    file_name: str | os.PathLike | None = None) -> dict:
        """Load parameters saved by :meth:`save_params` into this model, in place.

        Without ``path``, ``<ClassName>.npz``; ``file_name=`` is the book's
        name for ``path`` (give one of them, not both). Every name must be
        present with the same shape; extra names, missing names or other
        shapes raise ``ValueError`` naming them, and nothing is changed.
        Returns the metadata dict (with ``'vocab'`` when one was saved).
        """
        path = _path_argument("load_params", path, file_name)
        default = path is None
        path = self._file(path)
        if default and not os.path.exists(path):
            raise FileNotFoundError(f"no such file: {path} (load_params() without a path reads "
                                    f"the file save_params() writes, {path}, in the current "
                                    f"folder {os.getcwd()}); pass the path of the file")
        arrays, meta = load_npz(path)
        if meta.get("format") == "rnnlab-checkpoint":
            raise ValueError(f"{path} is a training checkpoint, not a parameters file: resume it "
                             "with the trainer's resume (the --resume of the script that "
                             "wrote it)")
        try:
            self.set_named_params(arrays, source=path)
        except ValueError as exc:
            saved = (meta.get("model"), meta.get("config"))
            if saved[0] is None or saved == (type(self).__name__, self.config):
                raise
            # A file of another model (or of other sizes): say which, not just the first
            # parameter that does not fit.
            raise ValueError(f"{exc}. The file holds {_call(*saved)}, this model is "
                             f"{_call(type(self).__name__, self.config)}: build that model, "
                             f"or let models.load_model({path!r}) build it") from None
        return meta

    def _forget_forward(self) -> None:
        """Generating runs the layers on other inputs and replaces the values
        the last ``forward`` left for ``backward``: that ``backward`` is refused
        (its loss layer forgets the forward), not run on the wrong values."""
        for name in ("loss_layer", "softmax"):
            layer = getattr(self, name, None)
            if layer is not None and hasattr(layer, "cache"):
                layer.cache = None

    def _file(self, path):
        path = self.default_file_name() if path is None else os.fsdecode(path)
        if has_pickle_name(path):
            raise ValueError(f"{path}: " + _PICKLE_REFUSED.format(default=self.default_file_name()))
        return path

    # -- layers, train / eval ----------------------------------------------------------

    def _all_layers(self):
        """Every layer, those inside parts with their own ``layers`` included."""
        if not isinstance(getattr(self, "layers", None), (list, tuple)):
            raise TypeError(f"{type(self).__name__} has no layers list: a model lists its "
                            f"layers (and parts) in self.layers, which the modes, the state "
                            f"and the checkpoints reach through")
        out, seen, todo = [], set(), list(reversed(self.layers))
        while todo:
            layer = todo.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            out.append(layer)
            todo += reversed(getattr(layer, "layers", None) or [])
        return out

    def train(self, mode: bool = True):
        """Switch layers with a ``train_flg`` (dropout) to training mode; returns ``self``."""
        for layer in self._all_layers():
            if hasattr(layer, "train_flg"):
                layer.train_flg = mode
        return self

    def eval(self):
        """Switch dropout off (evaluation and generation); returns ``self``."""
        return self.train(False)

    # -- recurrent state ----------------------------------------------------------

    def _recurrent_layers(self):
        return [layer for layer in self._all_layers()
                if hasattr(layer, "reset_state") and layer is not self]

    def reset_state(self) -> None:
        """Forget the hidden state: the next batch starts from zeros."""
        for layer in self._recurrent_layers():
            layer.reset_state()

    def get_state(self) -> list:
        """A copy of every recurrent layer's carried state (``h``, and ``c``
        for an LSTM); ``None`` entries where nothing is carried yet."""
        state = []
        for layer in self._recurrent_layers():
            for name in ("h", "c"):
                if hasattr(layer, name):
                    value = getattr(layer, name)
                    state.append(None if value is None else value.copy())
        return state

    def set_state(self, state: list) -> None:
        """Restore a state returned by :meth:`get_state`: the same number of
        entries, each ``None`` or ``(N, H)`` with the layer's ``H`` and dtype
        and one ``N`` for all."""
        slots = [(layer, name) for layer in self._recurrent_layers()
                 for name in ("h", "c") if hasattr(layer, name)]
        if not isinstance(state, (list, tuple)) or len(state) != len(slots):
            got = f"{len(state)} entries" if isinstance(state, (list, tuple)) \
                else type(state).__name__
            raise ValueError(f"set_state takes the list get_state() returns: {len(slots)} "
                             f"entries (h, and c of an LSTM, for each recurrent layer), got "
                             f"{got}")
        for i, ((layer, name), value) in enumerate(zip(slots, state, strict=True)):
            if value is None:
                continue
            label = f"state[{i}] ({type(layer).__name__}.{name})"
            H, dtype = state_width(layer, name)
            if H is not None:
                check_hidden_state(label, value, H, dtype)
            elif getattr(value, "ndim", 0) != 2 or value.dtype.kind != "f":
                # (A layer of one's own that tells nothing: any float (N, H) array.)
                raise ValueError(f"{label} must be a float (N, H) array, got "
                                 f"{getattr(value, 'dtype', type(value).__name__)} "
                                 f"{getattr(value, 'shape', '')}")
        rows = {value.shape[0] for value in state if value is not None}
        if len(rows) > 1:  # each entry is the state of the same batch's rows
            raise ValueError(f"set_state: the entries of the list have {sorted(rows)} rows; "
                             f"each is one (N, H) state of the same batch of N rows, as "
                             f"get_state() returns them")
        for (layer, name), value in zip(slots, state, strict=True):
            setattr(layer, name, None if value is None else value.copy())

    @contextlib.contextmanager
    def evaluating(self, restore_state: bool = True):
        """``with model.evaluating():`` dropout is off inside; on leaving, the
        train/eval mode and the carried recurrent state are what they were
        on entering (so evaluating or sampling in the middle of training
        changes nothing about the training run). ``restore_state=False``
        leaves the state where the body left it (the book's ``generate``)."""
        modes = [(layer, layer.train_flg) for layer in self._all_layers()
                 if hasattr(layer, "train_flg")]
        state = self.get_state() if restore_state else None
        self.eval()
        try:
            yield self
        finally:
            if restore_state:
                self.set_state(state)
            for layer, mode in modes:
                layer.train_flg = mode


class LanguageModel(Model):
    """Base class of the language models.

    ``self.layers`` turn ids ``(N, T)`` into scores ``(N, T, V)``;
    ``self.loss_layer`` (a ``TimeSoftmaxWithLoss``) scores them against
    the targets. Adds to :class:`Model` the forward and backward passes,
    ``vocab_size`` and text generation.
    """

    loss_layer: object

    @property
    def vocab_size(self) -> int:
        """V: the rows of the (first) embedding, else ``config['vocab_size']``."""
        for layer in self._all_layers():
            if isinstance(layer, TimeEmbedding):
                return int(layer.params[0].shape[0])
        V = getattr(self, "config", {}).get("vocab_size")
        if isinstance(V, int) and not isinstance(V, bool):
            return V
        raise AttributeError(f"{type(self).__name__} has no TimeEmbedding layer and no "
                             "'vocab_size' in its config, so its vocabulary size is unknown")

    # -- forward and backward ----------------------------------------------------

    def predict(self, xs, train_flg=None):
        """Scores ``(N, T, V)`` for ids ``xs`` ``(N, T)``; advances the state.

        It replaces the values the last ``forward`` left its layers for
        ``backward``, so a ``backward`` after it is refused until the next
        ``forward``. ``train_flg`` (the book's): given, it switches dropout
        on (True) or off (False) from here on, as ``train()``/``eval()`` do;
        None keeps the mode the model is in.
        """
        if train_flg is not None:
            self.train(bool(train_flg))
        self._forget_forward()
        out = xs
        for layer in self.layers:
            out = layer.forward(out)
        return out

    def forward(self, xs, ts, train_flg=None):
        """Mean cross-entropy of predicting ``ts`` from ``xs`` (both ``(N, T)``);
        ``train_flg`` as :meth:`predict`'s."""
        if train_flg is not None:
            self.train(bool(train_flg))
        return self.loss_layer.forward(self.predict(xs), ts)

    def backward(self, dout=1):
        """Fill ``grads`` with the gradient of the last ``forward``'s loss.

        Layers may leave their weight gradients to an idle core while the
        input gradients go on down the layers (:func:`common.parallel.deferred`);
        all of them are complete when this returns.
        """
        with deferred():
            dout = self.loss_layer.backward(dout)
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
        return dout

    # -- generation ------------------------------------------------------------------

    def generate(self, start_ids, length: int, temperature: float = 1.0, top_k: int | None = None,
                 stop_id: int | None = None, rng=None, beam_width: int | None = None) -> list[int]:
        """Sample ``length`` ids after ``start_ids`` (or search them with
        ``beam_width``); see :func:`models.generate.generate`."""
        return generate(self, start_ids, length, temperature=temperature, top_k=top_k,
                        stop_id=stop_id, rng=rng, beam_width=beam_width)


def check_shapes(expected: dict, found: dict, source: str, model: str = "the model") -> None:
    """Raise ``ValueError`` unless ``found`` (``{name: shape}``) has exactly the
    names of ``expected`` with the same shapes; the message names ``source``,
    ``model`` (a class name) and the first difference."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise ValueError(f"{source} does not fit {model}: missing {missing or 'nothing'}, "
                         f"unexpected {extra or 'nothing'}")
    for name, shape in expected.items():
        if tuple(found[name]) != tuple(shape):
            raise ValueError(f"{source}: parameter {name!r} has shape {tuple(found[name])}, "
                             f"the model needs {tuple(shape)}")


def check_sizes(**sizes) -> tuple:
    """The given sizes, each checked to be a positive integer (``ValueError``
    naming the argument otherwise), in the order given."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return tuple(int(v) for v in sizes.values())


def config_sizes(cls, config: dict, *names: str) -> tuple:
    """The sizes ``names`` of ``config`` (the constructor's defaults where
    missing), checked by :func:`check_sizes`: for ``param_shapes``."""
    defaults = {}
    for klass in reversed(cls.__mro__):  # a subclass taking *args, **kwargs keeps its base's
        if "__init__" in vars(klass):
            for name, param in inspect.signature(klass.__init__).parameters.items():
                if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    defaults[name] = param
    values = {}
    for name in names:
        if name in config:
            values[name] = config[name]
        elif name in defaults and defaults[name].default is not inspect.Parameter.empty:
            values[name] = defaults[name].default
        else:
            raise ValueError(f"the config of a {cls.__name__} lacks {name!r}")
    return check_sizes(**values)


def _shapes(arrays):
    return {name: tuple(a.shape) for name, a in arrays.items()}


def _call(name, config) -> str:
    """How a model is built, as Python: ``Seq2seq(vocab_size=13, ...)``."""
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in (config or {}).items())})"


# Names of save_params's own arguments, and names that are easily given for
# them: a metadata key like these is a misspelt argument (the file would go to
# the default name, the vocabulary would be lost), so it is refused, not stored.
_META_RESERVED = {"model", "config", "vocab"}
_ARGUMENT_LOOKALIKES = {
    "file": "file_name", "filename": "file_name", "fname": "file_name",
    "filepath": "file_name", "file_path": "file_name", "pathname": "path",
    "path_name": "path", "vocabulary": "vocab", "id_to_word": "vocab",
    "id_to_char": "vocab", "vocabs": "vocab", "file_names": "file_name", "paths": "path",
}


def _check_params_and_grads(k: int, layer) -> None:
    """The layer contract: ``params`` and ``grads`` lists of arrays, one
    gradient of its parameter's shape for each parameter (an optimizer
    pairs them by position)."""
    name = f"layer {k}, {type(layer).__name__},"
    for attr in ("params", "grads"):
        if not isinstance(getattr(layer, attr, None), list):
            raise TypeError(f"{name} has no {attr} list: a layer holds its arrays in "
                            f"self.params and their gradients, of the same shapes, in "
                            f"self.grads (two empty lists for a layer without weights)")
    if len(layer.params) != len(layer.grads):
        raise ValueError(f"{name} has {len(layer.params)} params but {len(layer.grads)} grads: "
                         f"give each parameter its gradient array")
    for i, (p, g) in enumerate(zip(layer.params, layer.grads, strict=True)):
        if getattr(g, "shape", None) != getattr(p, "shape", None):
            raise ValueError(f"{name} grads[{i}] has shape {getattr(g, 'shape', None)} but "
                             f"params[{i}] has shape {getattr(p, 'shape', None)}")


def _check_layers_once(layers) -> None:
    """Refuse one layer object at two places of ``layers``. A layer keeps
    the inputs of its last ``forward`` for its ``backward`` and holds one set
    of ``grads``: used twice, its first backward would use the second use's
    inputs, and its gradients would be one use's, not their sum."""
    first = {}
    for k, layer in enumerate(layers):
        i = first.setdefault(id(layer), k)
        if i != k:
            name = type(layer).__name__
            share = f"build a second {name}"
            if getattr(layer, "params", None):
                share += (" over the same arrays (its params), which ties them: the optimizer "
                          "sums their gradients")
            raise ValueError(f"layers {i} and {k} are one {name} object: a layer keeps the "
                             f"inputs of its last forward and one set of grads, so it cannot "
                             f"be used at two places (its gradients would be wrong); {share}")


def _path_argument(method: str, path, file_name):
    """The file of ``save_params``/``load_params``: ``path``, or the book's
    ``file_name=`` (one of them; ``None`` for the default file)."""
    if file_name is None:
        return path
    if path is not None:
        raise TypeError(f"{method}() got the file twice, path={path!r} and "
                        f"file_name={file_name!r}: give one (file_name is the book's name "
                        "for path)")
    return file_name


def _check_meta_names(meta: dict) -> None:
    """Refuse metadata keys that are reserved or look like a misspelt argument."""
    clash = sorted(set(meta) & _META_RESERVED)
    if clash:
        raise ValueError(f"extra metadata may not be named {clash}")
    for key in meta:
        meant = _ARGUMENT_LOOKALIKES.get(key.lower())
        if meant is not None:
            raise TypeError(f"save_params() got {key}=..., which looks like a misspelt "
                            f"argument (did you mean {meant}=?); extra metadata is stored "
                            "under its own name, so it may not be named like save_params's "
                            "arguments (path, file_name, vocab)")


def _vocab_list(vocab):
    """The tokens of ``vocab`` in id order, as ``save_params`` stores them:
    from the ``id_to_word`` dict (ids 0 .. V-1) or a sequence in id order,
    every token a string."""
    if isinstance(vocab, (set, frozenset)):
        # Its order changes from run to run (string hashing): every id would get
        # another word, silently.
        raise ValueError(f"vocab is a {type(vocab).__name__}, which has no order, so it "
                         "cannot say which id each token has: pass id_to_word (the dict of "
                         "ids 0 .. V-1 to their tokens) or a list of the tokens in id order")
    if isinstance(vocab, dict):
        if set(vocab) != set(range(len(vocab))):
            raise ValueError("a vocabulary dict maps the ids 0 .. V-1 to their tokens "
                             "(id_to_word, id_to_char); its keys are not those ids")
        tokens = [vocab[i] for i in range(len(vocab))]
    else:
        tokens = list(vocab)
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise ValueError(f"vocab's token for id {i} is {token!r} ({type(token).__name__}), "
                             "not a string: pass the tokens themselves, id_to_word (the dict "
                             "of ids to tokens) or a list of the tokens in id order, not the "
                             "ids or word_to_id's values")
    return tokens
