"""The layers of rnnlab.

Every layer has ``params`` and ``grads`` (lists of arrays of the same shapes;
``backward`` overwrites ``grads`` in place), ``forward(...)`` and
``backward(dout)``. A cell (one time step) and its Time layer (all steps of
an ``(N, T, ...)`` block) live in one file.
"""

from layers.affine import Affine, TimeAffine, joint_weight_bias
from layers.attention import Attention, AttentionWeight, TimeAttention, WeightSum
from layers.bidirectional import Bidirectional, TimeBiLSTM
from layers.concat import Concat, TimeRepeat
from layers.dropout import TimeDropout
from layers.embedding import Embedding, TimeEmbedding
from layers.gru import GRU, TimeGRU
from layers.lstm import LSTM, TimeLSTM
from layers.rnn import RNN, TimeRNN
from layers.softmax_with_loss import SoftmaxWithLoss, TimeSoftmaxWithLoss

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Affine",
    "Attention",
    "AttentionWeight",
    "Bidirectional",
    "Concat",
    "Embedding",
    "SoftmaxWithLoss",
    "TimeAffine",
    "TimeAttention",
    "TimeBiLSTM",
    "TimeDropout",
    "TimeEmbedding",
    "TimeGRU",
    "TimeLSTM",
    "TimeRNN",
    "TimeRepeat",
    "TimeSoftmaxWithLoss",
    "WeightSum",
    "joint_weight_bias",
]
