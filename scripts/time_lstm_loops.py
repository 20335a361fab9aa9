"""Time TimeLSTM's forward and backward of any checkout, alone or beside other programs.

How the time loops share their step products between the cores depends on
the machine being quiet (see ``common/step_worker.py``), so this script
times them with nothing else running and beside a background program that
keeps a core busy: ``--beside busy`` (one busy loop at normal priority),
``--beside nice`` (two at ``nice -n 19``). TimeLSTM of H units (N = 32,
T = 64, D = 32), stateful, 30 calls of forward and of backward (its weight
gradients included) inside ``common.parallel.managed()``; prints the
medians in ms. The packages are imported from ``--repo``, so two checkouts
can be compared by the same lines:

    python scripts/time_lstm_loops.py --repo /path/to/old/checkout --beside busy
    python scripts/time_lstm_loops.py --beside busy

The background programs end with this script: after Ctrl-C or SIGTERM too,
and on their own when it is killed.
"""

import argparse
import os
import subprocess
import sys
import time

# For benchmarks.command_line, which imports nothing of rnnlab's packages:
# those come from --repo, put before this checkout on sys.path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks.command_line import (  # noqa: E402
    ends_on_interrupt,
    memory_problem,
    outputs_may_close,
    repo_code,
    results_status,
    thread_setting_problem,
)

N, T, D, CALLS = 32, 64, 32, 30
BACKGROUND = {"none": [], "busy": [0], "nice": [19, 19]}
# A background program: a core kept busy until this script (its parent,
# whose pid is its argument) is gone. Ctrl-C reaches the whole process
# group; the script ends its programs itself, so they ignore it.
BUSY_LOOP = """\
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(100_000):
        pass
"""


def memory_parts(H: int) -> dict[str, int]:
    """Bytes of the arrays the timing of hidden size ``H`` holds at least:
    the float32 weights and their gradients, the gates of every step (kept
    for backward, and their gradients), the inputs, and the float64 draws
    the weights are made from."""
    G = 4 * H
    weights = D * G + H * G + G
    return {"weights": 2 * 4 * weights, "activations": 2 * 4 * N * T * (G + 2 * H + D),
            "initialisation": 2 * 8 * H * G}


def start_background(levels):
    """The busy programs, one per nice level of ``levels``, output to nowhere."""
    return [subprocess.Popen(["nice", "-n", str(level), sys.executable, "-c", BUSY_LOOP,
                              str(os.getpid())], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for level in levels]


@ends_on_interrupt
def main(argv=None):
    """Time the loops; return the exit status (130 or 143 when interrupted);
    a usage error exits with 2."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default=_ROOT,
                   help="the checkout whose packages are timed (default: this one)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 256],
                   help="hidden sizes H (default: 128 256)")
    p.add_argument("--beside", choices=sorted(BACKGROUND), default="none",
                   help="what runs beside it: nothing, one busy program at normal "
                        "priority, or two at nice 19 (default: none)")
    args = p.parse_args(argv)
    if any(h < 1 for h in args.hidden):
        p.error("--hidden sizes must be at least 1")
    packages = ("common", "layers", "models")
    if not all(os.path.isfile(os.path.join(args.repo, pkg, "__init__.py")) for pkg in packages):
        p.error(f"--repo {args.repo}: not an rnnlab checkout (no {', '.join(packages)} packages)")
    sys.path.insert(0, os.path.abspath(args.repo))
    if problem := thread_setting_problem():  # by the rule of the checkout timed
        p.error(problem)
    if problem := memory_problem(memory_parts(max(args.hidden)),
                                 f"; give --hidden sizes below {max(args.hidden)}"):
        p.error(problem)

    def fits():  # another checkout's code may not fit this script's calls
        return repo_code(p, args.repo, _ROOT, "its layers")

    with outputs_may_close(args.repo):
        time_loops(args, fits)
        return results_status(0)


def time_loops(args, fits):
    """Print the medians of the forward and the backward of each size, with
    the background programs of ``--beside`` running, and ended afterwards;
    the checkout's code imported, built and called inside ``fits()``."""
    import numpy as np

    with fits():
        from common.parallel import managed
        from layers import TimeLSTM

    background = []
    try:
        background += start_background(BACKGROUND[args.beside])
        time.sleep(0.3)
        for H in args.hidden:
            rng = np.random.default_rng(0)

            def f32(*shape, rng=rng):
                return (rng.standard_normal(shape) * 0.1).astype(np.float32)

            xs, dhs = f32(N, T, D), f32(N, T, H)
            forward, backward = [], []
            with fits():
                layer = TimeLSTM(f32(D, 4 * H), f32(H, 4 * H), f32(4 * H), stateful=True)
                with managed():
                    for _ in range(CALLS):
                        start = time.perf_counter()
                        layer.forward(xs)
                        forward.append(time.perf_counter() - start)
                        start = time.perf_counter()
                        layer.backward(dhs)
                        backward.append(time.perf_counter() - start)
            print(f"H = {H:4d}: forward {np.median(forward) * 1e3:6.2f} ms, backward "
                  f"{np.median(backward) * 1e3:6.2f} ms (beside: {args.beside}; {args.repo})")
    finally:
        for program in background:
            program.kill()
            program.wait()


if __name__ == "__main__":
    sys.exit(main())
