"""Time the medium configuration of Zaremba et al. (2014) without running it.

Two LSTM layers of 650, dropout 0.5, batch 20, time 35 (lr 35 and clipping
5/35 restate the paper's lr 1 and clipping 5 for rnnlab's mean loss).
Trains 5 warm-up and 60 timed iterations on PTB and prints the time per
iteration and the resulting estimate for one epoch and for 39 epochs.

    python scripts/time_medium_config.py [--data-dir DIR]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.command_line import ends_on_interrupt, load_ptb  # noqa: E402
from common.cli import outputs_may_close, results_status  # noqa: E402
from common.optimizer import SGD  # noqa: E402
from common.parallel import thread_count_problem  # noqa: E402
from common.trainer import RnnlmTrainer  # noqa: E402
from models import BetterRnnlm  # noqa: E402


@ends_on_interrupt
def main(argv=None):
    """Time it; return the exit status (130 or 143 when interrupted); a usage
    error exits with 2. A reader of stdout that stops reading (``| head``),
    or a full disk under it, does not end it in a traceback."""
    with outputs_may_close():
        return results_status(time_medium(argv))


def time_medium(argv):
    """:func:`main`, its outputs taken care of."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None,
                   help="folder with the PTB files (default: $RNNLAB_PTB_DIR, the cache, or "
                        "a download)")
    args = p.parse_args(argv)
    if problem := thread_count_problem():
        p.error(problem)
    corpus, = load_ptb(p, ["train"], args.data_dir)
    model = BetterRnnlm(10000, 650, 650, num_layers=2, dropout_ratio=0.5, tie_weights=False,
                        init_scale=0.05, seed=0)
    trainer = RnnlmTrainer(model, SGD(35.0))
    xs, ts = corpus[:-1], corpus[1:]
    options = dict(max_epoch=1, batch_size=20, time_size=35, max_grad=5 / 35, verbose=False)
    trainer.fit(xs, ts, max_iters=5, **options)
    start = time.perf_counter()
    trainer.fit(xs, ts, max_iters=65, **options)
    ms = (time.perf_counter() - start) / 60 * 1000
    per_epoch = len(xs) // (20 * 35)
    print(f"medium: {ms:.1f} ms/iter, {per_epoch} iter/epoch -> {ms * per_epoch / 1000:.0f} s/epoch"
          f" -> 39 epochs {ms * per_epoch * 39 / 3.6e6:.1f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
