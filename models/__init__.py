"""Language models composed of rnnlab layers.

All of them share :class:`LanguageModel`: ``forward(xs, ts) -> loss``,
``backward()``, ``params``/``grads``, ``reset_state()``, ``train()``/``eval()``,
``save_params``/``load_params`` and ``generate``.
"""

from models.base import LanguageModel
from models.better_rnnlm import BetterRnnlm
from models.generate import generate
from models.rnnlm import GruRnnlm, Rnnlm
from models.simple_rnnlm import SimpleRnnlm

MODELS = {"simple": SimpleRnnlm, "lstm": Rnnlm, "gru": GruRnnlm, "better": BetterRnnlm}


def build_model(name, vocab_size, wordvec_size=100, hidden_size=100, num_layers=2, dropout=0.5,
                tie_weights=None, init_scale=None, seed=None):
    """Make a model by its short name (``simple``, ``lstm``, ``gru``, ``better``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    kwargs = dict(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size,
                  init_scale=init_scale, seed=seed)
    if name == "better":
        if tie_weights is None:
            tie_weights = wordvec_size == hidden_size
        kwargs.update(num_layers=num_layers, dropout_ratio=dropout, tie_weights=tie_weights)
    return MODELS[name](**kwargs)


def model_from_config(name, config, seed=None):
    """Rebuild a model from the class name and ``config`` saved with it."""
    classes = {cls.__name__: cls for cls in MODELS.values()}
    if name not in classes:
        raise ValueError(f"unknown model class {name!r}; known: {sorted(classes)}")
    return classes[name](**config, seed=seed)


__all__ = ["BetterRnnlm", "GruRnnlm", "LanguageModel", "Rnnlm", "SimpleRnnlm", "build_model",
           "generate", "model_from_config"]
