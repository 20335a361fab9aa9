"""Memory: the largest allocations of a training iteration, and an epoch's peak.

* the largest single allocation of a training iteration (``tracemalloc``,
  to which NumPy reports its array buffers), with the check that no float64
  array of the logits' size (N * T * V) is allocated in the training path;
* the peak resident set of a full-PTB epoch, run by ``RnnlmTrainer.fit`` in
  a child process (``--quick``: a slice of the epoch).
"""

import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from benchmarks.contenders import LR, D, H, N, T, V, training_step
from benchmarks.harness import ROOT, Run, say
from common.optimizer import SGD
from common.trainer import RnnlmTrainer
from datasets import ptb
from models import SimpleRnnlm

# The iterations of an epoch of PTB's training text (929,589 ids) in batches
# of N lanes of T steps.
EPOCH_ITERATIONS = (929_589 - 1) // (N * T)


def largest_allocations(step, top=6):
    """Run ``step`` once, tracing every bytecode, and return the biggest
    memory jumps within one bytecode, i.e. one NumPy operation:
    ``[(bytes, file, line), ...]``.

    NumPy reports its array buffers to ``tracemalloc``; resetting the peak
    before each bytecode and reading it after gives the most memory that
    bytecode allocated at once: the size of the array it created (plus any
    temporary it freed again), an upper bound on its largest single array.
    """
    jumps = {}
    last = {"where": None, "base": 0}

    def record():
        current, peak = tracemalloc.get_traced_memory()
        where = last["where"]
        if where is not None:
            jumps[where] = max(jumps.get(where, 0), peak - last["base"])
        tracemalloc.reset_peak()
        last["base"] = tracemalloc.get_traced_memory()[0]

    def tracer(frame, event, arg):
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        if event == "opcode":
            record()
            last["where"] = (frame.f_code.co_filename, frame.f_lineno)
        elif event == "return" and frame.f_back is not None:
            # What runs next belongs to the caller's line: e.g. NumPy's C
            # function after its Python dispatcher (np.empty_like) returns.
            record()
            last["where"] = (frame.f_back.f_code.co_filename, frame.f_back.f_lineno)
        return tracer

    gc.collect()
    tracemalloc.start()
    sys.settrace(tracer)
    try:
        step()
    finally:
        sys.settrace(None)
        record()
        tracemalloc.stop()
    ranked = sorted(((b, f, line or 0) for (f, line), b in jumps.items()),
                    key=lambda r: r[0], reverse=True)
    return ranked[:top]


def layer_array_dtypes(model, step):
    """Wrap every layer's forward/backward for one ``step`` and collect the
    dtype and size of every array they return or keep as attributes:
    ``{dtype name: (largest size in elements, where)}``."""
    seen = {}
    wrapped = []

    def note(value, where):
        if isinstance(value, np.ndarray):
            name = value.dtype.name
            if value.size > seen.get(name, (-1, ""))[0]:
                seen[name] = (value.size, where)
        elif isinstance(value, (tuple, list)):
            for v in value:
                note(v, where)

    def wrap(layer, method):
        original = getattr(layer, method)
        label = f"{type(layer).__name__}.{method}"

        def checked(*args, **kwargs):
            out = original(*args, **kwargs)
            note(out, f"{label} output")
            for attr, value in vars(layer).items():
                if attr not in ("params", "grads", "forward", "backward"):
                    note(value, f"{label}: .{attr}")
            return out

        setattr(layer, method, checked)
        wrapped.append((layer, method))

    for layer in [*model.layers, model.loss_layer]:
        wrap(layer, "forward")
        wrap(layer, "backward")
    try:
        step()
    finally:
        for layer, method in wrapped:
            delattr(layer, method)
    return seen


def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def epoch_child(data_dir, iters):
    """In a fresh process: one PTB epoch (or ``iters`` iterations) of
    ``RnnlmTrainer.fit``; print what it cost as one JSON line."""
    corpus, _, _ = ptb.load_data("train", data_dir=data_dir)
    xs, ts = corpus[:-1], corpus[1:]
    model = SimpleRnnlm(V, D, H, seed=0)
    trainer = RnnlmTrainer(model, SGD(lr=LR))
    gc.collect()
    setup_peak = _status_kb("VmHWM")  # this process's peak so far: imports and data
    # Writing 5 to clear_refs resets VmHWM (Linux), so the peak is the epoch's.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    rss_before = _status_kb("VmRSS")
    per_epoch = len(xs) // (N * T)
    t0 = time.perf_counter()
    # (A part of an epoch: one perplexity point, at its end, over all of it;
    # fewer iterations than the default interval of 20 gave none: "nan".)
    trainer.fit(xs, ts, max_epoch=1, batch_size=N, time_size=T, max_iters=iters or None,
                eval_interval=iters or 20, verbose=False)
    seconds = time.perf_counter() - t0
    done = trainer.epoch * per_epoch + trainer.iteration
    ppl = trainer.history["train_ppl"][-1] if trainer.history["train_ppl"] else (
        trainer.ppl_list[-1] if trainer.ppl_list else float("nan"))
    print(json.dumps({
        "iterations": done,
        "iterations_per_epoch": per_epoch,
        "seconds": seconds,
        "ms_per_iteration": seconds / max(done, 1) * 1e3,
        "train_ppl": ppl,
        "rss_before_kb": rss_before,
        "setup_peak_rss_kb": setup_peak,
        # With the reset: the epoch's peak; without: the whole child's.
        "peak_rss_kb": _status_kb("VmHWM"),
        "hwm_reset": hwm_reset,
        # ru_maxrss survives exec, so it may be the parent's peak: a last resort.
        "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def run_epoch_child(data_dir, iters, threads=None):
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"),
           "--_epoch-child", str(iters)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the epoch subprocess failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory(run: Run, big, xs, ts, epoch_iters: int) -> bool:
    """Print the memory section; return whether the float64 check passed."""
    results = run.results
    say("\n== memory")
    model, optimizer, trainer = big["rnn"]
    step = training_step(model, optimizer, trainer, xs, ts, N, T)
    step()  # steady state: buffers sized for this batch shape already exist
    top = largest_allocations(step)
    logits = N * T * V
    biggest = top[0][0] if top else 0
    f64_logits = biggest >= logits * 8
    dtypes = layer_array_dtypes(model, step)
    f64_kept = dtypes.get("float64", (0, ""))[0]
    results["memory"] = {
        "largest_allocations": [{"bytes": b, "file": os.path.relpath(f, ROOT), "line": line}
                                for b, f, line in top],
        "logits_elements": logits,
        "float64_logits_allocated": f64_logits,
        "layer_array_dtypes": {d: {"largest_elements": n, "where": w}
                               for d, (n, w) in dtypes.items()},
    }
    say("largest allocations within one NumPy operation of a training iteration (tracemalloc):")
    for b, f, line in top:
        src = ""
        try:
            with open(f) as fh:
                src = fh.readlines()[line - 1].strip()
        except (OSError, IndexError):
            pass
        per = f" = N*T*V x {b / logits:.2f} B" if b >= logits else ""
        say(f"  {b / 1e6:8.2f} MB{per}  {os.path.relpath(f, ROOT)}:{line}  {src}")
    if top:
        itemsize = top[0][0] / logits
        kind = ("a float32 (N,T,V) array" if abs(itemsize - 4) < 0.05 else
                f"{itemsize:.2f} bytes per logit")
        say(f"largest: {top[0][0]:,} bytes = {kind}")
    say("arrays returned or kept by the layers, largest per dtype: " + ", ".join(
        f"{d} {n:,} ({w})" for d, (n, w) in sorted(dtypes.items())))
    if f64_kept:
        say(f"warning: a layer returned or kept a float64 array of {f64_kept:,} elements "
            f"({dtypes['float64'][1]})")
    verdict = "FAILED" if f64_logits or f64_kept >= logits else "ok"
    say(f"no float64 array of the logits' size ({logits:,} elements) in the training path: "
        f"{verdict}")
    epoch_peak(run, epoch_iters)
    return verdict == "ok"


def epoch_peak(run: Run, epoch_iters: int) -> None:
    """Run (part of) a PTB epoch in a child process; print its time and peak memory."""
    results = run.results
    what = (f"{epoch_iters} iterations of an epoch" if epoch_iters
            else "a full epoch")
    say(f"running {what} of RnnlmTrainer.fit in a subprocess ...")
    epoch = run_epoch_child(run.data_dir, epoch_iters, run.threads)
    results["memory"]["epoch"] = epoch
    peak = epoch["peak_rss_kb"] or epoch["ru_maxrss_kb"]
    say(f"{epoch['iterations']} / {epoch['iterations_per_epoch']} iterations in "
        f"{epoch['seconds']:.1f} s ({epoch['ms_per_iteration']:.1f} ms/iteration, "
        f"train ppl {epoch['train_ppl']:.1f})")
    if epoch["hwm_reset"]:
        say(f"peak RSS during the epoch {peak / 1024:.1f} MiB (VmHWM, reset before the epoch); "
            f"RSS before it {epoch['rss_before_kb'] / 1024:.1f} MiB, so the training "
            f"adds {(peak - epoch['rss_before_kb']) / 1024:.1f} MiB; peak of the setup "
            f"(imports, PTB, model) {epoch['setup_peak_rss_kb'] / 1024:.1f} MiB")
    else:
        say(f"peak RSS of the child process (setup and epoch; VmHWM could not be reset) "
            f"{peak / 1024:.1f} MiB; RSS before the epoch {epoch['rss_before_kb'] / 1024:.1f} MiB")
