"""Reproduction 1: the textbook's LSTM language model on Penn Treebank.

Rnnlm (embedding, one LSTM layer, output layer), D = H = 100, batch 20,
time 35, SGD lr 20, gradient-norm clipping 0.25, 4 epochs; the textbook
("Deep Learning from Scratch 2", ch. 6) reports a test perplexity of about
136. Prints the time of every epoch and the valid and test perplexity, and
writes the perplexity curve to ppl_textbook_lstm.png.

    python scripts/reproduce_textbook_lstm.py [--data-dir DIR] [extra train_rnnlm options]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_rnnlm  # noqa: E402

ARGS = [
    "--corpus", "ptb", "--corpus-size", "0", "--model", "lstm",
    "--wordvec-size", "100", "--hidden-size", "100",
    "--batch-size", "20", "--time-size", "35",
    "--optimizer", "sgd", "--lr", "20", "--max-grad", "0.25", "--epochs", "4",
    "--eval", "--plot", "ppl_textbook_lstm.png",
]

if __name__ == "__main__":
    sys.exit(train_rnnlm.main(ARGS + sys.argv[1:]))
