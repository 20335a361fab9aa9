"""Reproduction 1: the textbook's LSTM language model on Penn Treebank.

Rnnlm (embedding, one LSTM layer, output layer), D = H = 100, batch 20,
time 35, SGD lr 20, gradient-norm clipping 0.25, 4 epochs; the textbook
("Deep Learning from Scratch 2", ch. 6) reports a test perplexity of about
136. Prints the time of every epoch and the valid and test perplexity, and
writes the perplexity curve to ppl_textbook_lstm.png. Every option of
train_rnnlm.py can be given; the defaults below are this reproduction's.

    python scripts/reproduce_textbook_lstm.py [--data-dir DIR] [other options]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_rnnlm  # noqa: E402

DEFAULTS = dict(
    corpus="ptb", corpus_size=0, model="lstm", wordvec_size=100, hidden_size=100,
    batch_size=20, time_size=35, optimizer="sgd", lr=20.0, max_grad=0.25, epochs=4,
    eval=True, plot="ppl_textbook_lstm.png",
)

if __name__ == "__main__":
    sys.exit(train_rnnlm.main(sys.argv[1:], description=__doc__, defaults=DEFAULTS))
