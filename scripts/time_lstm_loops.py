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
"""

import argparse
import os
import subprocess
import sys
import time

N, T, D, CALLS = 32, 64, 32, 30
BACKGROUND = {"none": [], "busy": [0], "nice": [19, 19]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
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
    import numpy as np

    from common.parallel import managed
    from layers import TimeLSTM

    background = [subprocess.Popen(["nice", "-n", str(level), sys.executable, "-c",
                                    "while True: pass"]) for level in BACKGROUND[args.beside]]
    try:
        time.sleep(0.3)
        for H in args.hidden:
            rng = np.random.default_rng(0)

            def f32(*shape, rng=rng):
                return (rng.standard_normal(shape) * 0.1).astype(np.float32)

            layer = TimeLSTM(f32(D, 4 * H), f32(H, 4 * H), f32(4 * H), stateful=True)
            xs, dhs = f32(N, T, D), f32(N, T, H)
            forward, backward = [], []
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
