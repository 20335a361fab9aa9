"""How fast rnnlab trains, against a floor, against PyTorch and against the textbook.

    python scripts/benchmark.py              # full run (a few minutes)
    python scripts/benchmark.py --quick      # short run (< 1 minute)
    python scripts/benchmark.py --json       # JSON on stdout, progress on stderr

Every figure of a comparison is measured in one process, as the median of
repeated runs, and reported as a ratio, so that a busy machine slows both
sides of a ratio alike. What is measured:

* The reference configuration: SimpleRnnlm, V = 10,000, D = H = 100, N = 20,
  T = 35, SGD, full PTB train. One training iteration is what
  ``RnnlmTrainer.fit`` does per batch: ``get_batch`` + forward + backward +
  update. It is compared with

  - the *floor*: the three output-layer products ``x @ W``, ``x.T @ dy``,
    ``dy @ W.T`` (x (700, 100), W (100, 10,000), dy (700, 10,000)) and one
    float32 ``exp`` over 700 x 10,000 values, i.e. the work no implementation
    of this model can skip (sum of the four medians). Target: <= 1.35 x floor.
  - PyTorch on the CPU, the same model and loop (nn.Embedding -> nn.RNN ->
    nn.Linear -> F.cross_entropy, carried detached state, torch.optim.SGD,
    ``zero_grad(set_to_none=True)``), the same batches from the same
    ``get_batch``, with as many threads as NumPy's BLAS. Target: <= 0.7 x torch.
  - a *two-core bound*: the floor's products as BLAS runs them and its exp
    shared perfectly among the threads, everything else counted as free
    (for the LSTM plus its own products). No NumPy implementation can beat
    it; the report says how far rnnlab is from it, and how close to it the
    torch target would require.

  NumPy's (OpenBLAS's) and PyTorch's thread pools spin for a while after
  their work; on a small machine the spinning threads of one would slow the
  other, so the floor, rnnlab and torch are timed in alternating blocks,
  each with its own warm-up and a pause after it, never interleaved call by
  call. rnnlab's iteration runs as in ``RnnlmTrainer.fit``, inside
  ``common.parallel.managed()`` (BLAS single-threaded, rnnlab spreading the
  work over its own threads); the floor is plain NumPy with BLAS's threads.
* The same for the LSTM model ``models.Rnnlm`` against ``nn.LSTM``.
* The demo configuration (first 1,000 words of PTB, V = 418, N = 10, T = 5,
  D = H = 100): rnnlab against the textbook implementation in
  ``tests/reference_textbook.py``. Target: >= 3 x fewer microseconds. Timed
  beside them, as a bound, the same step written as one plain NumPy function
  (:func:`lean_step`): how much faster than the textbook NumPy code of any
  structure gets.
* ``eval_perplexity`` on PTB valid: tokens per second.
* Memory: peak resident set of a full-PTB epoch, run by ``RnnlmTrainer.fit``
  in a child process (``--quick``: a slice of the epoch); the largest single
  allocation of a training iteration (``tracemalloc``, to which NumPy reports
  its array buffers), with the check that no float64 array of the logits'
  size (N * T * V) is allocated in the training path.

The exit status is 1 if that float64 check fails, or (with ``--check``) if
any speed target is missed.
"""

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections import defaultdict
from contextlib import contextmanager

# Scripts are not packages: make the library and tests/ (for the textbook
# reference) importable when run as "python scripts/benchmark.py".
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(_ROOT, "tests"), _ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402
import reference_textbook as textbook  # noqa: E402

from common import blas  # noqa: E402
from common.optimizer import SGD  # noqa: E402
from common.parallel import managed  # noqa: E402
from common.trainer import RnnlmTrainer  # noqa: E402
from common.util import eval_perplexity  # noqa: E402
from datasets import ptb  # noqa: E402
from models import SimpleRnnlm  # noqa: E402

# The reference configuration of the issue.
V, D, H, N, T = 10_000, 100, 100, 20, 35
# The demo configuration.
SMALL_WORDS, SMALL_N, SMALL_T = 1000, 10, 5
LR = 0.1

TARGET_FLOOR = 1.35  # iteration <= 1.35 x floor
TARGET_TORCH = 0.7  # iteration <= 0.7 x torch
TARGET_TEXTBOOK = 3.0  # textbook / rnnlab >= 3

_out = sys.stdout  # human-readable report; stderr under --json


def say(*args):
    print(*args, file=_out, flush=True)


def median(xs):
    return statistics.median(xs)


def spread(xs):
    """The interquartile range ``(q1, q3)``: how noisy a median is."""
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


# -- the machine -------------------------------------------------------------------


def set_blas_threads(n):
    """Limit NumPy's BLAS to ``n`` threads (threadpoolctl, else OpenBLAS via
    ctypes); return whether it worked."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")
        return True
    except ImportError:
        return blas.set_threads(n)


def blas_info():
    """``(description, threads, how the thread count was found)``."""
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            p = pools[0]
            desc = (f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
                    f"{p.get('threading_layer')} threading)")
            return desc, int(p["num_threads"]), "threadpoolctl"
    except ImportError:
        pass
    desc = "unknown"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = np.show_config(mode="dicts")
        dep = cfg["Build Dependencies"]["blas"]
        desc = f"{dep.get('name')} {dep.get('version')}"
        if dep.get("openblas configuration"):
            desc += f" [{dep['openblas configuration']}]"
    except Exception:  # a description only: never fail on it
        pass
    threads = blas.get_threads()
    if threads:
        return desc, threads, "OpenBLAS get_num_threads (threadpoolctl not installed)"
    return desc, os.cpu_count() or 1, "os.cpu_count() (threadpoolctl not installed)"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- timing ------------------------------------------------------------------------


def round_robin(fns, rounds, warmup, samples):
    """Call every function of ``fns`` once per round, ``warmup + rounds``
    rounds; append the timed rounds' seconds to ``samples[name]``.

    The rounds run inside ``managed()``, as the iterations of
    ``RnnlmTrainer.fit`` do: rnnlab's steps share the cores their way (BLAS
    single-threaded once they spread work), and the plain NumPy of the
    floor and the textbook is untouched as long as nothing spreads.
    """
    with managed():
        for r in range(warmup + rounds):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if r >= warmup:
                    samples[name].append(dt)


def settle():
    """Wait until the idle worker threads of the group just timed (OpenBLAS's,
    torch's) have stopped spinning, so that they do not slow the next group."""
    time.sleep(0.25)


# -- the models being timed ----------------------------------------------------------


def rnnlab_step(model, optimizer, trainer, xs, ts, batch_size, time_size):
    """One iteration of ``RnnlmTrainer.fit`` (without its bookkeeping).

    ``fit`` runs all its iterations inside one ``common.parallel.managed()``
    context; time these steps inside one too (see :func:`round_robin`).
    """

    def step():
        batch_x, batch_t = trainer.get_batch(xs, ts, batch_size, time_size)
        loss = model.forward(batch_x, batch_t)
        model.backward()
        optimizer.update(model.params, model.grads)
        return loss

    return step


def textbook_step(model, optimizer, fetch, xs, ts, batch_size, time_size):
    def step():
        batch_x, batch_t = fetch.get_batch(xs, ts, batch_size, time_size)
        loss = model.forward(batch_x, batch_t)
        model.backward()
        optimizer.update(model.params, model.grads)
        return loss

    return step


def lean_step(ours, xs, ts, batch_size, time_size):
    """SimpleRnnlm's iteration written as one plain NumPy function, as a bound.

    No layers, no input checks, no thread pool: the fewest NumPy calls we
    could write the model's step with (embedding rows, one input product,
    ``T`` recurrent steps, one output product, softmax with loss, the
    backward products, an SGD update that scatters straight into the
    embedding). It starts from a copy of ``ours``'s weights and reads the
    batches as ``RnnlmTrainer.get_batch`` does. It shows how far any NumPy
    implementation of the demo step can be from the textbook's, whatever
    its structure. Returns ``step``; ``step()`` returns the loss.
    """
    E, Wx, Wh, b, Wa, ba = ours.params
    E, Wx, Wh, b = E.copy(), Wx.copy(), Wh.copy(), b.copy()
    Wab = np.concatenate([Wa, ba[None]])  # bias folded into the product (a copy)
    D, H = Wx.shape
    N, T = batch_size, time_size
    hs = np.empty((T + 1, N, H), dtype=np.float32)  # time-major, hs[0] = carried state
    hs[0] = 0
    h1 = np.empty((T * N, H + 1), dtype=np.float32)  # [h, 1] of every step
    h1[:, H] = 1
    rows = np.arange(T * N)
    lr = np.float32(LR)
    scale = np.float32(1 / (T * N))
    fetch = RnnlmTrainer(None, None)

    def step():
        batch_x, batch_t = fetch.get_batch(xs, ts, N, T)
        ids, targets = batch_x.T.reshape(-1), batch_t.T.reshape(-1)  # time-major
        x = E[ids]
        a = (x @ Wx + b).reshape(T, N, H)
        for t in range(T):
            at = a[t]
            at += hs[t] @ Wh
            np.tanh(at, out=hs[t + 1])
        h1[:, :H] = hs[1:].reshape(T * N, H)
        y = h1 @ Wab
        y -= y.max(axis=1, keepdims=True)
        np.exp(y, out=y)
        s = y.sum(axis=1)
        loss = float(np.log(s).sum() - np.log(y[rows, targets]).sum()) * float(scale)
        y *= (scale / s)[:, None]
        y[rows, targets] -= scale
        dWab = h1.T @ y
        dh_all = (y @ Wab[:H].T).reshape(T, N, H)
        da = np.empty((T, N, H), dtype=np.float32)
        dh = np.zeros((N, H), dtype=np.float32)
        for t in range(T - 1, -1, -1):
            d = np.add(dh_all[t], dh, out=da[t])
            d *= 1 - hs[t + 1] * hs[t + 1]
            dh = d @ Wh.T
        da2 = da.reshape(T * N, H)
        dWx, dWh = x.T @ da2, hs[:T].reshape(T * N, H).T @ da2
        db, dx = da2.sum(axis=0), da2 @ Wx.T
        hs[0] = hs[T]  # stateful
        np.subtract.at(E.reshape(-1), (ids[:, None] * D + np.arange(D)).reshape(-1),
                       (lr * dx).reshape(-1))
        for p, g in ((Wx, dWx), (Wh, dWh), (b, db), (Wab, dWab)):
            p -= lr * g
        return loss

    return step


def torch_model(torch, cell, ours):
    """The same model in PyTorch, holding a copy of ``ours``'s weights."""
    nn, F = torch.nn, torch.nn.functional

    class TorchRnnlm(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, D)
            if cell == "rnn":
                self.rnn = nn.RNN(D, H, nonlinearity="tanh", batch_first=True)
            else:
                self.rnn = nn.LSTM(D, H, batch_first=True)
            self.affine = nn.Linear(H, V)
            self.state = None

        def forward(self, x, t):
            hs, state = self.rnn(self.embed(x), self.state)
            # Carried to the next batch, the gradient stops at the boundary.
            if isinstance(state, tuple):
                self.state = tuple(s.detach() for s in state)
            else:
                self.state = state.detach()
            logits = self.affine(hs)
            return F.cross_entropy(logits.reshape(-1, V), t.reshape(-1))

    model = TorchRnnlm()
    p = ours.params
    gates = 1 if cell == "rnn" else 4
    shapes = [(V, D), (D, gates * H), (H, gates * H), (gates * H,), (H, V), (V,)]
    copied = len(p) == 6 and [tuple(a.shape) for a in p] == shapes
    if copied:
        # W_ih = Wx.T, W_hh = Wh.T, b_ih + b_hh = b; Linear holds W.T.
        with torch.no_grad():
            model.embed.weight.copy_(torch.from_numpy(p[0]))
            model.rnn.weight_ih_l0.copy_(torch.from_numpy(p[1].T.copy()))
            model.rnn.weight_hh_l0.copy_(torch.from_numpy(p[2].T.copy()))
            model.rnn.bias_ih_l0.copy_(torch.from_numpy(p[3]))
            model.rnn.bias_hh_l0.zero_()
            model.affine.weight.copy_(torch.from_numpy(p[4].T.copy()))
            model.affine.bias.copy_(torch.from_numpy(p[5]))
    return model, copied


def torch_step(torch, model, trainer, xs, ts):
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        batch_x, batch_t = trainer.get_batch(xs, ts, N, T)
        x = torch.from_numpy(batch_x).long()
        t = torch.from_numpy(batch_t).long()
        loss = model(x, t)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


# -- where an iteration's time goes ----------------------------------------------------


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


def stage_breakdown(model, optimizer, trainer, xs, ts, rounds, warmup):
    """Median milliseconds of each layer's forward/backward, the batch fetch
    and the update, timed by wrapping the bound methods for a few iterations."""
    loss = model.loss_layer
    targets = [(trainer, "get_batch", "get_batch")]
    targets += [(layer, "forward", f"{type(layer).__name__}.forward") for layer in model.layers]
    targets += [(loss, "forward", f"{type(loss).__name__}.forward"),
                (loss, "backward", f"{type(loss).__name__}.backward")]
    targets += [(layer, "backward", f"{type(layer).__name__}.backward")
                for layer in reversed(model.layers)]
    targets.append((optimizer, "update", f"{type(optimizer).__name__}.update"))
    step = rnnlab_step(model, optimizer, trainer, xs, ts, N, T)
    whole = defaultdict(list)
    with timed_methods(targets) as samples:
        round_robin({"iteration": step}, rounds, warmup, whole)
    k = warmup  # drop the warm-up calls of every stage (one call per iteration)
    stages = {label: median(s[k:]) * 1e3 for label, s in samples.items()}
    return stages, median(whole["iteration"]) * 1e3


# -- memory ------------------------------------------------------------------------------


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
    trainer.fit(xs, ts, max_epoch=1, batch_size=N, time_size=T, max_iters=iters or None,
                verbose=False)
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
    cmd = [sys.executable, os.path.abspath(__file__), "--_epoch-child", str(iters)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the epoch subprocess failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the benchmark ------------------------------------------------------------------------


def load_ptb(data_dir):
    train, _, _ = ptb.load_data("train", data_dir=data_dir)
    valid, _, _ = ptb.load_data("valid", data_dir=data_dir)
    return train, valid


def default_data_dir():
    env = os.environ.get(ptb.ENV_DIR)
    if env:
        return env
    return os.path.join(os.path.dirname(_ROOT), "shared", "data", "ptb")


def fmt_ms(s):
    return f"{s * 1e3:8.2f} ms"


def main(argv=None):
    global _out
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and only a slice of the epoch (< 1 minute)")
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON on stdout (the report goes to stderr)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the PTB files (default: $RNNLAB_PTB_DIR, else "
                        "<repo>/../shared/data/ptb)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparisons")
    p.add_argument("--epoch-iters", type=int, default=None,
                   help="iterations of the memory run (default: a full epoch; 20 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="set NumPy's BLAS threads (and torch's, which always follows them) "
                        "to this number; default: leave BLAS as it is")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 if a speed target is missed")
    p.add_argument("--_epoch-child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()

    if args.threads is not None and not set_blas_threads(args.threads):
        print(f"could not set the BLAS threads to {args.threads}", file=sys.stderr)
        return 2
    if args._epoch_child is not None:
        epoch_child(data_dir, args._epoch_child)
        return 0
    if args.json:
        _out = sys.stderr

    quick = args.quick
    # Many short blocks, so that a change in the machine's load between
    # blocks falls on rnnlab and torch alike.
    blocks, rounds, warmup = (3, 3, 2) if quick else (6, 5, 3)
    stage_rounds, stage_warmup = (3, 1) if quick else (10, 2)
    small_rounds, small_warmup = (300, 50) if quick else (3000, 300)
    eval_runs = 1 if quick else 3
    epoch_iters = args.epoch_iters if args.epoch_iters is not None else (20 if quick else 0)

    results = {"quick": quick}
    targets = []

    def target(name, value, limit, higher_is_better=False):
        ok = value >= limit if higher_is_better else value <= limit
        targets.append({"name": name, "value": value, "target": limit,
                        "higher_is_better": higher_is_better, "ok": bool(ok)})
        return "ok" if ok else "MISSED"

    # -- machine
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
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
    }
    try:  # rnnlab's own thread pool for elementwise work, where the library has one
        from common.parallel import num_threads

        machine["rnnlab_elementwise_threads"] = num_threads()
    except ImportError:
        machine["rnnlab_elementwise_threads"] = None
    if torch:
        torch.set_num_threads(threads)
        machine["torch_threads"] = torch.get_num_threads()
        machine["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
    results["machine"] = machine
    say("== machine")
    say(f"cpu            {machine['cpu']}, os.cpu_count() = {machine['cores']}")
    say(f"python {machine['python']}, numpy {machine['numpy']}")
    say(f"BLAS           {blas_desc}")
    say(f"threads        numpy BLAS {threads} (from {threads_from})"
        + (f", torch {machine['torch_threads']} (torch.set_num_threads)" if torch else "")
        + (f", rnnlab elementwise pool {machine['rnnlab_elementwise_threads']}"
           if machine["rnnlab_elementwise_threads"] else ""))
    say(f"torch          {machine['torch'] or 'not installed or --no-torch: comparisons skipped'}")
    say(f"load average   {machine['load_average_start']:.2f} (1 min) at the start"
        + ("  -- the machine is busy: expect noisy figures"
           if machine["load_average_start"] > 0.5 * (os.cpu_count() or 1) else ""))
    say(f"mode           {'--quick' if quick else 'full'}: {blocks} blocks x {rounds} timed "
        f"iterations after {warmup} warm-up per block")

    train, valid = load_ptb(data_dir)
    xs, ts = train[:-1], train[1:]

    # -- the reference configuration: rnnlab, floor, torch
    rng = np.random.default_rng(0)
    fx = rng.standard_normal((N * T, D)).astype(np.float32)
    fW = rng.standard_normal((D, V)).astype(np.float32)
    fdy = rng.standard_normal((N * T, V)).astype(np.float32)
    fbuf = np.empty_like(fdy)
    floor_fns = {
        "x @ W": lambda: fx @ fW,
        "x.T @ dy": lambda: fx.T @ fdy,
        "dy @ W.T": lambda: fdy @ fW.T,
        "exp": lambda: np.exp(fdy, out=fbuf),
    }

    # The LSTM's own products (4H = 400 gate columns), for its bound below.
    g4 = 4 * H
    lx = rng.standard_normal((N * T, D)).astype(np.float32)
    lWx = rng.standard_normal((D, g4)).astype(np.float32)
    ldA = rng.standard_normal((N * T, g4)).astype(np.float32)
    lh = rng.standard_normal((N, H)).astype(np.float32)
    lWh = rng.standard_normal((H, g4)).astype(np.float32)
    lstm_fns = {
        "lstm xs @ Wx": lambda: lx @ lWx,
        "lstm xs.T @ dA": lambda: lx.T @ ldA,
        "lstm dA @ Wx.T": lambda: ldA @ lWx.T,
        "lstm h @ Wh": lambda: lh @ lWh,
    }

    numpy_fns, torch_fns, first_loss, copied = {}, {}, {}, {}
    models = {"rnn": SimpleRnnlm(V, D, H, seed=0)}
    try:
        from models import Rnnlm

        models["lstm"] = Rnnlm(V, D, H, seed=0)
    except ImportError as exc:
        say(f"LSTM: models.Rnnlm not available ({exc})")
    big = {}
    for kind, model in models.items():
        optimizer = SGD(lr=LR)
        trainer = RnnlmTrainer(model, optimizer)
        big[kind] = (model, optimizer, trainer)
        if torch:
            tmodel, copied[kind] = torch_model(torch, kind, model)
            torch_fns[f"torch {kind}"] = torch_step(torch, tmodel, RnnlmTrainer(None, None),
                                                    xs, ts)
            first_loss[kind] = {"torch": torch_fns[f"torch {kind}"]()}
        numpy_fns[f"rnnlab {kind}"] = rnnlab_step(model, optimizer, trainer, xs, ts, N, T)
        first_loss.setdefault(kind, {})["rnnlab"] = float(numpy_fns[f"rnnlab {kind}"]())

    say("\n== training iteration, V=10000 D=H=100 N=20 T=35 (batch + forward + backward + SGD)")
    samples = defaultdict(list)
    for _ in range(blocks):
        for group in ({**floor_fns, **lstm_fns}, numpy_fns, torch_fns):
            if group:
                round_robin(group, rounds, warmup, samples)
                settle()
    med = {name: median(s) for name, s in samples.items()}
    floor = sum(med[name] for name in floor_fns)
    results["floor_ms"] = {name: med[name] * 1e3 for name in floor_fns}
    results["floor_ms"]["total"] = floor * 1e3
    for name in floor_fns:
        q1, q3 = spread(samples[name])
        say(f"floor  {name:10s} {fmt_ms(med[name])}   (IQR {q1 * 1e3:.2f} - {q3 * 1e3:.2f})")
    say(f"floor  {'total':10s} {fmt_ms(floor)}   (sum of the four medians)")
    say("LSTM products (for its bound): " + ", ".join(
        f"{name[5:]} {med[name] * 1e3:.3f}" for name in lstm_fns) + " ms")

    # Contention only ever adds time, so the 10th percentile is the least
    # disturbed estimate; printed beside the medians as a noise check.
    low = {name: statistics.quantiles(s, n=10)[0] if len(s) >= 10 else min(s)
           for name, s in samples.items()}
    low_floor = sum(low[name] for name in floor_fns)
    results["floor_ms"]["total_p10"] = low_floor * 1e3

    # A bound no NumPy implementation on these cores can beat: the floor's
    # products as BLAS runs them (on all its threads) and its exp shared
    # perfectly among the threads; for the LSTM also its own products (input
    # projection, dx, dWx, dWh, and 2T recurrent products, those shared
    # perfectly too). Everything else (tanh, gates, row sums, update, Python)
    # counts as free, so the bound is below what can really be reached.
    pool = machine["rnnlab_elementwise_threads"] or 1
    bound = {"rnn": med["x @ W"] + med["x.T @ dy"] + med["dy @ W.T"] + med["exp"] / pool}
    bound["lstm"] = (bound["rnn"] + med["lstm xs @ Wx"] + 2 * med["lstm xs.T @ dA"]
                     + med["lstm dA @ Wx.T"] + 2 * T * med["lstm h @ Wh"] / pool)
    results["bound_ms"] = {kind: b * 1e3 for kind, b in bound.items()}
    for kind in models:
        ours = med[f"rnnlab {kind}"]
        q1, q3 = spread(samples[f"rnnlab {kind}"])
        entry = {"rnnlab_ms": ours * 1e3, "rnnlab_iqr_ms": [q1 * 1e3, q3 * 1e3],
                 "samples": len(samples[f"rnnlab {kind}"]),
                 "ratio_to_floor": ours / floor,
                 "ratio_to_floor_p10": low[f"rnnlab {kind}"] / low_floor,
                 "first_loss": first_loss[kind]}
        label = "RNN " if kind == "rnn" else "LSTM"
        say(f"{label} rnnlab         {fmt_ms(ours)}   (IQR {q1 * 1e3:.2f} - {q3 * 1e3:.2f})")
        say(f"{label}   rnnlab / floor = {ours / floor:.3f} "
            f"(target <= {TARGET_FLOOR}: "
            f"{target(f'{kind}: iteration / floor', ours / floor, TARGET_FLOOR)}); "
            f"with 10th percentiles {entry['ratio_to_floor_p10']:.3f}")
        if torch_fns:
            theirs = med[f"torch {kind}"]
            t1, t3 = spread(samples[f"torch {kind}"])
            entry.update(torch_ms=theirs * 1e3, torch_iqr_ms=[t1 * 1e3, t3 * 1e3],
                         ratio_to_torch=ours / theirs,
                         ratio_to_torch_p10=low[f"rnnlab {kind}"] / low[f"torch {kind}"],
                         torch_weights_copied=copied[kind])
            say(f"{label} torch          {fmt_ms(theirs)}   (IQR {t1 * 1e3:.2f} - {t3 * 1e3:.2f})")
            say(f"{label}   rnnlab / torch = {ours / theirs:.3f} (target <= {TARGET_TORCH}: "
                f"{target(f'{kind}: rnnlab / torch', ours / theirs, TARGET_TORCH)}); "
                f"with 10th percentiles {entry['ratio_to_torch_p10']:.3f}")
            need = TARGET_TORCH * theirs
            entry.update(bound_ms=bound[kind] * 1e3, ratio_to_bound=ours / bound[kind],
                         torch_target_over_bound=need / bound[kind])
            say(f"{label}   two-core bound {bound[kind] * 1e3:.2f} ms: rnnlab / bound = "
                f"{ours / bound[kind]:.3f}; the torch target needs <= {need * 1e3:.2f} ms "
                f"= {need / bound[kind]:.3f} x bound")
            note = "same weights" if copied[kind] else "weights not copied: losses differ"
            say(f"{label} first-batch loss: rnnlab {first_loss[kind]['rnnlab']:.5f}, "
                f"torch {first_loss[kind]['torch']:.5f} ({note})")
        results[kind] = entry
    if "lstm" not in models:
        results["lstm"] = {"available": False}

    # -- where the time goes
    say("\n== where an rnnlab iteration's time goes (median ms per call, timed separately)")
    # TimeAffine.backward computes dx = dy @ W.T; its weight gradient x.T @ dy
    # is deferred to an idle core and lands in the model's backward (the last line).
    floor_part = {"TimeAffine.forward": med["x @ W"],
                  "TimeAffine.backward": med["dy @ W.T"],
                  "TimeSoftmaxWithLoss.forward": med["exp"]}
    for kind, (model, optimizer, trainer) in big.items():
        stages, whole = stage_breakdown(model, optimizer, trainer, xs, ts,
                                        rounds=stage_rounds, warmup=stage_warmup)
        results[kind]["stages_ms"] = stages
        say(f"{'RNN' if kind == 'rnn' else 'LSTM'}: iteration {whole:.2f} ms with the timers")
        for label, ms in stages.items():
            extra = ""
            if label in floor_part:
                extra = f"   floor part {floor_part[label] * 1e3:6.2f}, beyond it " \
                        f"{ms - floor_part[label] * 1e3:6.2f}"
            say(f"  {label:30s} {ms:7.2f}{extra}")
        say(f"  {'(deferred weight gradients, and Python between the stages)':30s} "
            f"{whole - sum(stages.values()):7.2f}")

    # -- the demo configuration against the textbook
    say(f"\n== demo configuration: first {SMALL_WORDS} words of PTB, N={SMALL_N} T={SMALL_T} "
        f"D=H={D}")
    small = train[:SMALL_WORDS]
    sv = int(small.max()) + 1
    sxs, sts = small[:-1], small[1:]
    ours = SimpleRnnlm(sv, D, H, seed=0)
    ours_opt = SGD(lr=LR)
    ref_model = textbook.SimpleRnnlm(sv, D, H, seed=0)
    ref_model.load_params(ours.params)
    # The lean bound starts from the same weights; its first loss must be ours.
    lean = lean_step(ours, sxs, sts, SMALL_N, SMALL_T)
    first_x, first_t = RnnlmTrainer(None, None).get_batch(sxs, sts, SMALL_N, SMALL_T)
    ours_first = float(ours.forward(first_x, first_t))
    ours.reset_state()
    lean_first = lean()
    small_fns = {
        "rnnlab": rnnlab_step(ours, ours_opt, RnnlmTrainer(ours, ours_opt), sxs, sts,
                              SMALL_N, SMALL_T),
        "textbook": textbook_step(ref_model, textbook.SGD(lr=LR), textbook.BatchFetcher(),
                                  sxs, sts, SMALL_N, SMALL_T),
        "lean": lean,
    }
    small_samples = defaultdict(list)
    round_robin(small_fns, small_rounds, small_warmup, small_samples)
    us = {name: median(s) * 1e6 for name, s in small_samples.items()}
    speedup = us["textbook"] / us["rnnlab"]
    lean_speedup = us["textbook"] / us["lean"]
    results["small"] = {"vocab_size": sv, "rnnlab_us": us["rnnlab"],
                        "textbook_us": us["textbook"], "speedup": speedup,
                        "lean_us": us["lean"], "lean_speedup": lean_speedup,
                        "first_loss": {"rnnlab": ours_first, "lean": lean_first},
                        "samples": small_rounds}
    say(f"V = {sv}; {small_rounds} iterations each, interleaved")
    say(f"rnnlab      {us['rnnlab']:9.1f} us/iteration")
    say(f"textbook    {us['textbook']:9.1f} us/iteration   textbook / rnnlab = {speedup:.2f} "
        f"(target >= {TARGET_TEXTBOOK}: "
        f"{target('demo: textbook / rnnlab', speedup, TARGET_TEXTBOOK, True)})")
    say(f"lean bound  {us['lean']:9.1f} us/iteration   textbook / lean = {lean_speedup:.2f}: "
        f"the step as one plain NumPy function (first loss {lean_first:.5f}, "
        f"rnnlab {ours_first:.5f})")

    # -- evaluation
    say(f"\n== eval_perplexity on PTB valid ({len(valid):,} tokens, batch 10, time 35)")
    model = big["rnn"][0]
    times = []
    ppl = None
    for _ in range(eval_runs):
        t0 = time.perf_counter()
        ppl = eval_perplexity(model, valid, batch_size=10, time_size=35)
        times.append(time.perf_counter() - t0)
    tokens = len(valid) - 1
    results["eval"] = {"tokens": tokens, "seconds": median(times),
                       "tokens_per_s": tokens / median(times), "ppl": ppl, "runs": eval_runs}
    say(f"{median(times):.2f} s (median of {eval_runs}) = {tokens / median(times):,.0f} tokens/s "
        f"(ppl {ppl:.1f} after the timing iterations)")

    # -- memory
    say("\n== memory")
    model, optimizer, trainer = big["rnn"]
    step = rnnlab_step(model, optimizer, trainer, xs, ts, N, T)
    step()  # steady state: buffers sized for this batch shape already exist
    top = largest_allocations(step)
    logits = N * T * V
    biggest = top[0][0] if top else 0
    f64_logits = biggest >= logits * 8
    dtypes = layer_array_dtypes(model, step)
    f64_kept = dtypes.get("float64", (0, ""))[0]
    results["memory"] = {
        "largest_allocations": [{"bytes": b, "file": os.path.relpath(f, _ROOT), "line": line}
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
        say(f"  {b / 1e6:8.2f} MB{per}  {os.path.relpath(f, _ROOT)}:{line}  {src}")
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
    f64_ok = verdict == "ok"

    what = (f"{epoch_iters} iterations of an epoch" if epoch_iters
            else "a full epoch")
    say(f"running {what} of RnnlmTrainer.fit in a subprocess ...")
    epoch = run_epoch_child(data_dir, epoch_iters, args.threads)
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

    # -- summary
    results["targets"] = targets
    results["machine"]["load_average_end"] = os.getloadavg()[0]
    say(f"\n== targets (load average at the end {os.getloadavg()[0]:.2f})")
    for t in targets:
        sign = ">=" if t["higher_is_better"] else "<="
        say(f"  {t['name']:28s} {t['value']:7.3f}  {sign} {t['target']}  "
            f"{'ok' if t['ok'] else 'MISSED'}")
    say(f"  {'no float64 logits array':28s} {'ok' if f64_ok else 'FAILED'}")
    if args.json:
        print(json.dumps(results, indent=2, default=float))
    if not f64_ok:
        return 1
    if args.check and not all(t["ok"] for t in targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
