"""What every rnnlab language model shares.

A model is a list of layers ``self.layers`` that turns ids ``(N, T)`` into
scores ``(N, T, V)``, followed by ``self.loss_layer``. Subclasses build the
layers in ``__init__`` and then call ``self._collect_params(names)``; this
class supplies the rest: the loss, the backward pass, the recurrent state,
the train/eval switch, saving and loading parameters by name, and text
generation.
"""

import numpy as np

from common.backend import to_cpu, to_gpu
from common.parallel import deferred
from common.serialization import load_npz, save_npz
from models.generate import generate


class Init:
    """Draws a model's initial weights from one random generator.

    Weights are drawn in float64 on the CPU and then cast, so that one seed
    gives the same model in any dtype and on either backend. With
    ``init_scale`` every array (biases included) is instead uniform in
    ``[-init_scale, init_scale]``, as in Zaremba et al. (2014).
    """

    def __init__(self, seed=None, rng=None, dtype=np.float32, init_scale=None):
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


class LanguageModel:
    """Base class of the language models.

    Attributes:
        layers: the layers from ids to scores, in forward order.
        loss_layer: a ``TimeSoftmaxWithLoss``.
        params, grads: the arrays of all layers, in order; a tied array is
            listed at each place it is used (the optimizer sums its grads).
        param_names: one name per entry of ``params`` (``'embed.W'`` ...).
        config: the constructor arguments, saved with the parameters.
    """

    layers: list
    loss_layer: object
    config: dict

    def _collect_params(self, names):
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads
        if len(names) != len(self.params):
            raise ValueError(f"{len(names)} names for {len(self.params)} parameters")
        self.param_names = list(names)

    @property
    def vocab_size(self):
        return self.params[0].shape[0]

    # -- forward and backward ----------------------------------------------------

    def predict(self, xs):
        """Scores ``(N, T, V)`` for ids ``xs`` ``(N, T)``; advances the state."""
        out = xs
        for layer in self.layers:
            out = layer.forward(out)
        return out

    def forward(self, xs, ts):
        """Mean cross-entropy of predicting ``ts`` from ``xs`` (both ``(N, T)``)."""
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

    # -- recurrent state ----------------------------------------------------------

    def _recurrent_layers(self):
        return [layer for layer in self.layers if hasattr(layer, "reset_state")]

    def reset_state(self):
        """Forget the hidden state: the next batch starts from zeros."""
        for layer in self._recurrent_layers():
            layer.reset_state()

    def get_state(self):
        """A copy of every recurrent layer's carried state (``h``, and ``c``
        for an LSTM); ``None`` entries where nothing is carried yet."""
        state = []
        for layer in self._recurrent_layers():
            for name in ("h", "c"):
                if hasattr(layer, name):
                    value = getattr(layer, name)
                    state.append(None if value is None else value.copy())
        return state

    def set_state(self, state):
        """Restore a state returned by :meth:`get_state`."""
        values = iter(state)
        for layer in self._recurrent_layers():
            for name in ("h", "c"):
                if hasattr(layer, name):
                    value = next(values)
                    setattr(layer, name, None if value is None else value.copy())

    # -- train / eval ------------------------------------------------------------

    def train(self, mode=True):
        """Switch layers with a ``train_flg`` (dropout) to training mode."""
        for layer in self.layers:
            if hasattr(layer, "train_flg"):
                layer.train_flg = mode
        return self

    def eval(self):
        """Switch dropout off (evaluation and generation)."""
        return self.train(False)

    # -- parameters by name ---------------------------------------------------------

    def named_params(self):
        """``{name: array}``; a tied array appears once, under its first name."""
        out, seen = {}, set()
        for name, p in zip(self.param_names, self.params, strict=True):
            if id(p) not in seen:
                seen.add(id(p))
                out[name] = p
        return out

    def save_params(self, path, vocab=None, **extra_meta):
        """Write the parameters to ``path`` (``.npz``, no pickles), atomically.

        ``vocab`` (the ``id_to_word`` dict or a list of tokens) is stored
        with them as JSON, so that the file alone is enough to generate text.
        ``extra_meta`` (JSON values, e.g. ``level="char"``) is stored too.
        """
        meta = {"model": type(self).__name__, "config": self.config}
        clash = sorted(set(extra_meta) & {"model", "config", "vocab"})
        if clash:
            raise ValueError(f"extra metadata may not be named {clash}")
        meta.update(extra_meta)
        if vocab is not None:
            meta["vocab"] = _vocab_list(vocab)
        arrays = {name: to_cpu(p) for name, p in self.named_params().items()}
        save_npz(path, arrays, meta)

    def load_params(self, path):
        """Load parameters saved by :meth:`save_params` into this model, in place.

        Every name must be present with the same shape; extra names, missing
        names or other shapes raise ``ValueError`` naming them. Returns the
        metadata dict (with ``'vocab'`` when one was saved).
        """
        arrays, meta = load_npz(path)
        if meta.get("format") == "rnnlab-checkpoint":
            raise ValueError(f"{path} is a training checkpoint, not a parameters file: resume it "
                             "with RnnlmTrainer.resume (train_rnnlm.py --resume)")
        self.set_named_params(arrays, source=path)
        return meta

    def set_named_params(self, arrays, source="the given arrays"):
        """Copy ``{name: array}`` into the parameters (all names, same shapes)."""
        expected = self.named_params()
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        if missing or extra:
            raise ValueError(
                f"{source} does not fit {type(self).__name__}: "
                f"missing {missing or 'nothing'}, unexpected {extra or 'nothing'}"
            )
        for name, p in expected.items():
            a = arrays[name]
            if a.shape != p.shape:
                raise ValueError(
                    f"{source}: parameter {name!r} has shape {a.shape}, the model needs {p.shape}"
                )
            if not np.issubdtype(a.dtype, np.floating):
                raise ValueError(f"{source}: parameter {name!r} has non-float dtype {a.dtype}")
        for name, p in expected.items():
            p[...] = to_gpu(arrays[name].astype(p.dtype, copy=False))

    # -- generation ------------------------------------------------------------------

    def generate(self, start_ids, length, temperature=1.0, top_k=None, stop_id=None, rng=None):
        """Sample ``length`` ids after ``start_ids``; see :func:`models.generate.generate`."""
        return generate(self, start_ids, length, temperature=temperature, top_k=top_k,
                        stop_id=stop_id, rng=rng)


def _vocab_list(vocab):
    if isinstance(vocab, dict):
        return [vocab[i] for i in range(len(vocab))]
    return list(vocab)

