"""Language models composed of rnnlab layers."""

from models.base import LanguageModel
from models.generate import generate
from models.simple_rnnlm import SimpleRnnlm

__all__ = ["LanguageModel", "SimpleRnnlm", "generate"]
