"""The layers of rnnlab.

Every layer has ``params`` and ``grads`` (lists of arrays of the same shapes;
``backward`` overwrites ``grads`` in place), ``forward(...)`` and
``backward(dout)``. A cell (one time step) and its Time layer (all steps of
an ``(N, T, ...)`` block) live in one file.
"""

from layers.affine import Affine, TimeAffine
from layers.embedding import Embedding, TimeEmbedding
from layers.rnn import RNN, TimeRNN
from layers.softmax_with_loss import SoftmaxWithLoss, TimeSoftmaxWithLoss

__all__ = [
    "Affine",
    "Embedding",
    "RNN",
    "SoftmaxWithLoss",
    "TimeAffine",
    "TimeEmbedding",
    "TimeRNN",
    "TimeSoftmaxWithLoss",
]
