"""Language models composed of rnnlab layers."""

from models.simple_rnnlm import SimpleRnnlm

__all__ = ["SimpleRnnlm"]
