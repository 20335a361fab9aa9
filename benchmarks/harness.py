"""What every benchmark section shares: the report, timing, and the machine.

Figures of one comparison are measured in one process, as medians of
repeated runs, and reported as ratios, so that a busy machine slows both
sides of a ratio alike. NumPy's (OpenBLAS's) and PyTorch's thread pools spin
for a while after their work; on a small machine the spinning threads of one
would slow the other, so contenders are timed in alternating groups
(:func:`round_robin`), each with its own warm-up and a pause after it
(:func:`settle`), never interleaved call by call across libraries.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_out = None  # the human-readable report: sys.stdout as it is when printing; stderr under --json


def report_to(stream) -> None:
    """Send the report printed by :func:`say` to ``stream`` (``None``: standard output)."""
    global _out
    _out = stream


def report_stream():
    """The stream the report goes to (see :func:`report_to`)."""
    return _out or sys.stdout


def say(*args) -> None:
    """Print one line of the report."""
    print(*args, file=report_stream(), flush=True)


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


# -- statistics ----------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float]) -> tuple[float, float]:
    """The interquartile range ``(q1, q3)``: how noisy a median is."""
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def low(xs: list[float]) -> float:
    """The 10th percentile: contention only ever adds time, so this is the
    least disturbed estimate (a noise check beside the median)."""
    return statistics.quantiles(xs, n=10)[0] if len(xs) >= 10 else min(xs)


# -- timing --------------------------------------------------------------------------


def round_robin(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int,
                samples: dict[str, list[float]],
                context: Callable[[], AbstractContextManager] = nullcontext) -> None:
    """Call every function of ``fns`` once per round, ``warmup + rounds``
    rounds, inside ``context()``; append the timed rounds' seconds to
    ``samples[name]``.

    rnnlab's own steps run inside ``common.parallel.managed()``, as the
    iterations of ``RnnlmTrainer.fit`` do (pass it as ``context``); plain
    NumPy contenders run outside it, with BLAS's own threads.
    """
    with context():
        for r in range(warmup + rounds):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if r >= warmup:
                    samples[name].append(dt)


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def helper_rests_note(rests: int) -> str:
    """What a timing during which the batch halves' helper rested
    ``rests`` times (``common.data_parallel.rests()``) must say beside it."""
    from common.data_parallel import REST_SECONDS

    return (f"the helper was too slow {rests} time(s) (another program had its core) and "
            f"rested {REST_SECONDS:.0f} s each: iterations on one core are in the figures")


def settle() -> None:
    """Wait until the idle worker threads of the group just timed (OpenBLAS's,
    torch's) have stopped spinning, so that they do not slow the next group."""
    time.sleep(0.25)


@contextmanager
def timed_methods(targets):
    """Time every call of some bound methods while the context is open.

    ``targets`` lists ``(obj, method_name, label)``; the context yields a
    dict from each label to the list of its calls' seconds. Each wrapper is
    an instance attribute that shadows the method, removed on exit.
    """
    samples = defaultdict(list)
    wrapped = []

    def wrap(obj, method, label):
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            samples[label].append(time.perf_counter() - t0)
            return out

        setattr(obj, method, timed)
        wrapped.append((obj, method))

    try:
        for obj, method, label in targets:
            wrap(obj, method, label)
        yield samples
    finally:
        for obj, method in wrapped:
            delattr(obj, method)


# -- targets -----------------------------------------------------------------------------


@dataclass
class Run:
    """One benchmark run: its options, and the results sections add to.

    ``torch`` is the imported module, or None when it is skipped; then
    ``torch_missing`` says why (``"--no-torch"``, or the error importing it).
    """

    quick: bool
    data_dir: str | None
    threads: int | None = None
    torch: Any = None
    torch_missing: str | None = None
    results: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)

    def target(self, name: str, value: float, limit: float,
               higher_is_better: bool = False, form_of: str | None = None) -> str:
        """Record a speed target; return ``'ok'`` or ``'MISSED'`` for the report.

        ``form_of``: the name of a target that may be met in more than one
        form, of which this is one (the character level's: within a ratio to
        PyTorch, or within 1.15 x the two-core bound); such a target is met
        when any of its forms is (:meth:`targets_met`).
        """
        ok = value >= limit if higher_is_better else value <= limit
        self.targets.append({"name": name, "value": value, "target": limit,
                             "higher_is_better": higher_is_better, "ok": bool(ok),
                             "form_of": form_of})
        return "ok" if ok else "MISSED"

    def target_forms(self) -> dict[str, list[dict]]:
        """Every target's name, in the order recorded, with the records of
        its forms (one, for a target of a single form)."""
        forms = defaultdict(list)
        for t in self.targets:
            forms[t["form_of"] or t["name"]].append(t)
        return dict(forms)

    def targets_met(self) -> dict[str, bool]:
        """Every target's name with whether it is met: any of its forms is."""
        return {name: any(t["ok"] for t in forms)
                for name, forms in self.target_forms().items()}


# -- the machine -----------------------------------------------------------------------------


def set_blas_threads(n: int) -> bool:
    """Limit NumPy's BLAS to ``n`` threads; return whether that worked."""
    from common import blas

    return blas.set_threads(n)


def blas_info() -> tuple[str, int, str]:
    """``(description, threads, how the thread count was found)``."""
    from threadpoolctl import threadpool_info

    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if pools:
        p = pools[0]
        desc = (f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
                f"{p.get('threading_layer')} threading)")
        return desc, int(p["num_threads"]), "threadpoolctl"
    desc = "unknown"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = np.show_config(mode="dicts")
        dep = cfg["Build Dependencies"]["blas"]
        desc = f"{dep.get('name')} {dep.get('version')}"
    except Exception:  # a description only: never fail on it
        pass
    return desc, os.cpu_count() or 1, "os.cpu_count() (threadpoolctl found no BLAS)"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(run: Run, blocks: int, rounds: int, warmup: int) -> dict:
    """Print the machine section of the report; return its description."""
    from common.parallel import num_threads

    torch = run.torch
    blas_desc, threads, threads_from = blas_info()
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_desc,
        "blas_threads": threads,
        "blas_threads_from": threads_from,
        "torch": torch.__version__ if torch else None,
        "load_average_start": os.getloadavg()[0],
        "rnnlab_elementwise_threads": num_threads(),
    }
    if torch:
        torch.set_num_threads(threads)
        machine["torch_threads"] = torch.get_num_threads()
        machine["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
    say("== machine")
    say(f"cpu            {machine['cpu']}, os.cpu_count() = {machine['cores']}")
    say(f"python {machine['python']}, numpy {machine['numpy']}")
    say(f"BLAS           {blas_desc}")
    say(f"threads        numpy BLAS {threads} (from {threads_from})"
        + (f", torch {machine['torch_threads']} (torch.set_num_threads)" if torch else "")
        + f", rnnlab elementwise pool {machine['rnnlab_elementwise_threads']}")
    skipped = f"{run.torch_missing or 'not used'}: comparisons skipped"
    say(f"torch          {machine['torch'] or skipped}")
    say(f"load average   {machine['load_average_start']:.2f} (1 min) at the start"
        + ("  -- the machine is busy: expect noisy figures"
           if machine["load_average_start"] > 0.5 * (os.cpu_count() or 1) else ""))
    say(f"mode           {'--quick' if run.quick else 'full'}: {blocks} blocks x {rounds} timed "
        f"iterations after {warmup} warm-up per block")
    return machine


def default_data_dir() -> str | None:
    """Where PTB is when ``--data-dir`` is not given: ``<repo>/../shared/data/ptb``
    where that folder holds the three files and ``$RNNLAB_PTB_DIR`` is unset;
    otherwise None,
    for :func:`datasets.ptb.load_data` to decide (``$RNNLAB_PTB_DIR``, then
    the user cache, downloading if needed), and to name what it tried in
    its own words when the files are not there."""
    from datasets import ptb

    if os.environ.get(ptb.ENV_DIR):
        return None
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data", "ptb")
    there = all(os.path.isfile(os.path.join(shared, name)) for name in ptb.SHA256)
    return shared if there else None
