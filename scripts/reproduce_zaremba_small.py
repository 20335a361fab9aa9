"""Reproduction 2: the small configuration of Zaremba et al. (2014) on PTB.

Two LSTM layers of 200 units, no dropout, no weight tying, every weight
uniform in +-0.1, batch 20, time 20, 13 epochs, SGD with the learning rate
halved after each epoch from the 5th on. The paper uses lr 1 and clips the
gradient norm at 5 for the loss *summed* over the 20 time steps; rnnlab's
loss is the mean over time steps (20 times smaller gradients), so the same
update is lr 20 with clipping at 0.25. The paper reports a test perplexity
of 114.5 (validation 120.7). Writes ppl_zaremba_small.png. Every option of
train_rnnlm.py can be given; the defaults below are this reproduction's.

    python scripts/reproduce_zaremba_small.py [--data-dir DIR] [other options]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_rnnlm  # noqa: E402

DEFAULTS = dict(
    corpus="ptb", corpus_size=0, model="better", num_layers=2, wordvec_size=200,
    hidden_size=200, dropout=0.0, no_tie=True, init_scale=0.1, batch_size=20, time_size=20,
    optimizer="sgd", lr=20.0, max_grad=0.25, epochs=13, lr_halve_from=5, val=True, eval=True,
    plot="ppl_zaremba_small.png",
)

if __name__ == "__main__":
    sys.exit(train_rnnlm.main(sys.argv[1:], description=__doc__, defaults=DEFAULTS))
