"""Reproduction 2: the small configuration of Zaremba et al. (2014) on PTB.

Two LSTM layers of 200 units, no dropout, no weight tying, every weight
uniform in +-0.1, batch 20, time 20, 13 epochs, SGD with the learning rate
halved after each epoch from the 5th on. The paper uses lr 1 and clips the
gradient norm at 5 for the loss *summed* over the 20 time steps; rnnlab's
loss is the mean over time steps (20 times smaller gradients), so the same
update is lr 20 with clipping at 0.25. The paper reports a test perplexity
of 114.5 (validation 120.7). Writes ppl_zaremba_small.png.

    python scripts/reproduce_zaremba_small.py [--data-dir DIR] [extra train_rnnlm options]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_rnnlm  # noqa: E402

ARGS = [
    "--corpus", "ptb", "--corpus-size", "0", "--model", "better",
    "--num-layers", "2", "--wordvec-size", "200", "--hidden-size", "200",
    "--dropout", "0", "--no-tie", "--init-scale", "0.1",
    "--batch-size", "20", "--time-size", "20",
    "--optimizer", "sgd", "--lr", "20", "--max-grad", "0.25", "--epochs", "13",
    "--lr-halve-from", "5", "--val", "--eval", "--plot", "ppl_zaremba_small.png",
]

if __name__ == "__main__":
    sys.exit(train_rnnlm.main(ARGS + sys.argv[1:]))
