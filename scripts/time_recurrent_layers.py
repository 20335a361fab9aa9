"""Time a recurrent Time layer against its code at another git revision, interleaved.

TimeLSTM, TimeGRU or TimeRNN alone (N = 32, T = 64, D = 32 unless given),
forward and backward (with its deferred weight gradients), the current
layer and the layer file of ``--against`` loaded side by side and called
in turn in one process, inside ``common.parallel.managed()``. Prints medians
of main-thread CPU time, process CPU time (all threads) and wall time, in
ms, and whether both gave the same bits. On a busy machine compare the
CPU times: a thread waiting for a core does not count there.

    python scripts/time_recurrent_layers.py --against 38cc93f --cell lstm --hidden 128 256 512
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks.command_line import (  # noqa: E402
    ends_on_interrupt,
    memory_problem,
    timing_other_code,
)
from common import parallel  # noqa: E402
from common.cli import at_least, outputs_may_close, results_status  # noqa: E402

CELLS = {"lstm": ("TimeLSTM", 4, 1), "gru": ("TimeGRU", 3, 2), "rnn": ("TimeRNN", 1, 1)}


def revision_problem(revision, cell):
    """Why ``--against revision`` cannot be compared (in one line), or None."""
    if not revision.strip():
        return ("--against is empty; name a git revision (a commit, branch or tag), or leave "
                "the flag out to compare with HEAD")
    if revision.startswith("-"):
        return f"--against {revision}: not a git revision (it reads as an option of git)"
    try:
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet",
                                f"{revision}^{{commit}}"], cwd=ROOT, capture_output=True,
                               text=True, check=False)
    except OSError as exc:
        return f"--against needs git, which cannot be run here ({exc.strerror or exc})"
    if found.returncode != 0:
        return (f"--against {revision}: not a revision of the git repository in {ROOT} "
                "(give a commit, branch or tag that `git log` shows)")
    found = subprocess.run(["git", "cat-file", "-e", f"{revision}:layers/{cell}.py"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    if found.returncode != 0:
        return (f"--against {revision} has no layers/{cell}.py to compare with: give a later "
                "revision, or another --cell")
    return None


def memory_parts(args, H):
    """Bytes of the arrays the timing of hidden size ``H`` holds at least:
    the weights (and their float64 draws), each of the two layers' copies
    of them and their gradients, both layers' gates of every step (kept for
    backward, and their gradients), and the inputs."""
    N, T, D = args.batch, args.time, args.input
    G = CELLS[args.cell][1] * H
    weights = D * G + H * G + G * CELLS[args.cell][2]
    return {"weights": 5 * 4 * weights, "initialisation": 12 * max(D, H) * G,
            "activations": 2 * 2 * 4 * N * T * (G + H) + 4 * N * T * (D + H)}


def layer_class_at(revision, cell, folder):
    """The Time layer class of ``layers/<cell>.py`` as of ``revision``."""
    source = subprocess.run(["git", "show", f"{revision}:layers/{cell}.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    path = os.path.join(folder, f"{cell}_at_revision.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location(f"{cell}_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, CELLS[cell][0])


def timed_call(call, arg):
    """``call(arg)`` with its deferred work; its output and (main-thread CPU,
    process CPU, wall) seconds."""
    c, pc, w = time.thread_time(), time.process_time(), time.perf_counter()
    with parallel.deferred():
        out = call(arg)
    return out, (time.thread_time() - c, time.process_time() - pc, time.perf_counter() - w)


@ends_on_interrupt
def main(argv=None):
    """Time the layers; return the exit status (130 or 143 when interrupted);
    a usage error exits with 2. A reader of stdout that stops reading
    (``| head``), or a full disk under it, does not end it in a traceback."""
    with outputs_may_close():
        return results_status(time_layers(argv))


def time_layers(argv):
    """:func:`main`, its outputs taken care of."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", default="HEAD", help="git revision to compare with (default HEAD)")
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="default: lstm")
    p.add_argument("--hidden", type=at_least(1), nargs="+", default=[128, 256, 512],
                   help="hidden sizes, each at least 1 (default: 128 256 512)")
    p.add_argument("--batch", type=at_least(1), default=32, help="N, at least 1 (default 32)")
    p.add_argument("--time", type=at_least(1), default=64, help="T, at least 1 (default 64)")
    p.add_argument("--input", type=at_least(1), default=32, help="D, at least 1 (default 32)")
    p.add_argument("--rounds", type=at_least(1), default=8,
                   help="timed rounds, at least 1 (default 8, after 2)")
    args = p.parse_args(argv)
    if problem := parallel.thread_count_problem():
        p.error(problem)
    if problem := revision_problem(args.against, args.cell):
        p.error(problem)
    largest = max(args.hidden)
    if problem := memory_problem(memory_parts(args, largest),
                                 f"; give --hidden sizes below {largest}, or a smaller "
                                 "--batch, --time or --input"):
        p.error(problem)
    import layers

    name, gates, biases = CELLS[args.cell]
    N, T, D = args.batch, args.time, args.input

    def fits(which=args.against):
        """The other revision's code may not fit this checkout (an older API of
        common.parallel): a usage error naming it, whether it fails on
        loading, when built or when called; this checkout's (``"now"``) own
        errors are left as they are."""
        if which == "now":
            return nullcontext()
        return timing_other_code(p, f"--against {args.against}: its layers/{args.cell}.py",
                                 "give a later revision, or another --cell")

    with tempfile.TemporaryDirectory() as folder:
        with fits():
            against = layer_class_at(args.against, args.cell, folder)
        classes = {"now": getattr(layers, name), args.against: against}
        print(f"{name}, N={N} T={T} D={D}; load average {os.getloadavg()[0]:.2f}; ms medians "
              "of main-thread CPU / process CPU / wall")
        for H in args.hidden:
            rng = np.random.default_rng(0)
            G = gates * H
            shapes = [(D, G), (H, G)] + [(G,)] * biases
            ws = [rng.standard_normal(s).astype(np.float32) * 0.1 for s in shapes]
            xs = rng.standard_normal((N, T, D)).astype(np.float32)
            dhs = rng.standard_normal((N, T, H)).astype(np.float32)
            timed = {k: {"forward": [], "backward": []} for k in classes}
            outs = {}
            with parallel.managed():
                instances = {}
                for k, cls in classes.items():
                    with fits(k):
                        instances[k] = cls(*[w.copy() for w in ws])
                for r in range(2 + args.rounds):
                    for k, layer in instances.items():
                        with fits(k):
                            for part, call, arg in (("forward", layer.forward, xs),
                                                    ("backward", layer.backward, dhs)):
                                outs[k, part], seconds = timed_call(call, arg)
                                if r >= 2:
                                    timed[k][part].append(seconds)
                            # (The weight gradients too: dxs alone showed a wrong dWh
                            # as the same bits.)
                            outs[k, "grads"] = [g.copy() for g in layer.grads]
            for k in classes:
                figures = "; ".join(
                    f"{part} " + " / ".join(f"{statistics.median(x[j] for x in v) * 1e3:.1f}"
                                            for j in range(3))
                    for part, v in timed[k].items())
                same = all(np.array_equal(outs[k, part], outs["now", part])
                           for part in ("forward", "backward")) and all(
                    np.array_equal(a, b) for a, b in zip(outs[k, "grads"], outs["now", "grads"],
                                                         strict=True))
                print(f"H={H:4d} {k:>10s}: {figures}" + ("" if k == "now" else
                                                          f"; same bits as now: {same}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
