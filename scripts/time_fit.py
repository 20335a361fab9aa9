"""Time RnnlmTrainer.fit per iteration, for comparing two checkouts fairly.

The benchmark's harness changed with the code it measures (issue 13 made it
a package), so its figures before and after a change do not come from the
same timing code. This script is the same few lines for any checkout: it
trains SimpleRnnlm and Rnnlm (V = 10,000, D = H = 100, batch 20, time 35,
SGD with clipping, as in the benchmark's word-level rows) for the first 150
iterations of PTB with ``RnnlmTrainer.fit`` and prints the median time per
iteration of three runs. Alternate two checkouts a few times:

    python scripts/time_fit.py --repo /path/to/old/checkout
    python scripts/time_fit.py                                  # this checkout
"""

import argparse
import os
import sys
import time

# For benchmarks.command_line, which imports nothing of rnnlab's packages:
# those come from --repo, put before this checkout on sys.path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks.command_line import (  # noqa: E402
    data_dir_problem,
    ends_on_interrupt,
    load_ptb,
    outputs_may_close,
    repo_code,
    results_status,
    thread_setting_problem,
)

ITERATIONS, BATCH, TIME, RUNS = 150, 20, 35, 3


@ends_on_interrupt
def main(argv=None):
    """Time it; return the exit status (130 or 143 when interrupted); a usage
    error exits with 2."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default=_ROOT,
                   help="the checkout whose packages are timed (default: this one)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the PTB files (default: $RNNLAB_PTB_DIR, the cache, or "
                        "a download)")
    args = p.parse_args(argv)
    packages = ("common", "layers", "models")
    if not all(os.path.isfile(os.path.join(args.repo, pkg, "__init__.py")) for pkg in packages):
        p.error(f"--repo {args.repo}: not an rnnlab checkout (no {', '.join(packages)} packages)")
    if problem := data_dir_problem(args.data_dir):
        p.error(problem)
    sys.path.insert(0, os.path.abspath(args.repo))
    if problem := thread_setting_problem():  # by the rule of the checkout timed
        p.error(problem)

    def fits():  # another checkout's code may not fit this script's calls
        return repo_code(p, args.repo, _ROOT, "its packages")

    with outputs_may_close(args.repo):
        print_fit_times(p, args, fits)
        return results_status(0)


def print_fit_times(parser, args, fits):
    """Print the median milliseconds per iteration of each model's three
    runs; the checkout's code imported, built and called inside ``fits()``."""
    import numpy as np

    with fits():
        from common.optimizer import SGD
        from common.trainer import RnnlmTrainer
        from models import Rnnlm, SimpleRnnlm

        corpus = load_ptb(parser, ["train"], args.data_dir)[0][:BATCH * TIME * ITERATIONS + 1]
    xs, ts = corpus[:-1], corpus[1:]
    for cls in (SimpleRnnlm, Rnnlm):
        times = []
        for _ in range(RUNS):
            with fits():
                trainer = RnnlmTrainer(cls(10000, 100, 100, seed=0), SGD(20.0))
                start = time.perf_counter()
                trainer.fit(xs, ts, max_epoch=1, batch_size=BATCH, time_size=TIME,
                            max_grad=0.25, verbose=False)
            times.append((time.perf_counter() - start) / ITERATIONS * 1e3)
        print(f"{cls.__name__:12s} {np.median(times):6.2f} ms per iteration (runs "
              f"{', '.join(f'{t:.2f}' for t in times)}; {args.repo})")


if __name__ == "__main__":
    sys.exit(main())
