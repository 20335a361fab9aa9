"""Time reproduction 2 (Zaremba et al.'s small configuration) against a bound.

The configuration of ``scripts/reproduce_zaremba_small.py``: two LSTM layers
of 200, V = 10,000, batch 20, time 20, SGD lr 20 with clipping 0.25,
13 epochs with a validation pass after each and one test pass. This script
does not train it to the end. In one process it measures

* ``RnnlmTrainer.fit``: milliseconds per iteration (after a warm-up), and
  ``eval_perplexity`` on a slice of PTB valid: milliseconds per token;
* a *two-core bound* per iteration: the step's matrix products as BLAS runs
  them on all its threads (the output layer's three, and per LSTM layer the
  input projection, dx, dWx, dWh and the 2T recurrent products, the latter
  shared perfectly among the threads), and, shared perfectly among the
  threads, one exp over the logits, one exp over the gates and one tanh of
  the cells per layer, and one pass of ``p - g`` over every parameter.
  Everything else (the backward's elementwise work, row sums, clipping,
  Python) counts as free, so no NumPy implementation on this machine can be
  faster;

and prints both as the wall time of the whole reproduction, beside the
issue's 30-minute budget.

It also prints where ``fit``'s time goes, layer by layer.

    python scripts/time_zaremba_small.py [--data-dir DIR] [--iters 60]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.command_line import ends_on_interrupt, load_ptb  # noqa: E402
from benchmarks.harness import median_time, timed_methods  # noqa: E402
from common.cli import at_least, outputs_may_close, results_status  # noqa: E402
from common.optimizer import SGD  # noqa: E402
from common.parallel import num_threads, thread_count_problem  # noqa: E402
from common.trainer import RnnlmTrainer  # noqa: E402
from common.util import eval_perplexity  # noqa: E402
from models import BetterRnnlm  # noqa: E402

V, H, N, T, LAYERS, EPOCHS = 10_000, 200, 20, 20, 2, 13
BUDGET_S = 30 * 60


def stage_times(model, trainer, xs, ts, options, max_iters):
    """Median seconds per call of every layer's forward and backward, and of
    the update, while ``fit`` runs on up to ``max_iters`` iterations."""
    loss = model.loss_layer
    layers = list(enumerate(model.layers))
    targets = [(layer, "forward", f"{i} {type(layer).__name__}.forward") for i, layer in layers]
    targets.append((loss, "forward", f"{type(loss).__name__}.forward"))
    targets += [(layer, "backward", f"{i} {type(layer).__name__}.backward")
                for i, layer in reversed(layers)]
    targets.append((model, "backward", "whole backward (weight gradients finish on both cores)"))
    targets.append((trainer.optimizer, "update", "SGD.update"))
    with timed_methods(targets) as samples:
        trainer.fit(xs, ts, max_iters=max_iters, **options)
    return {label: statistics.median(v) for label, v in samples.items()}


def bound_parts(repeats):
    """Median seconds of each product (BLAS's threads) and of the exp (one thread)."""
    rng = np.random.default_rng(0)
    rows, G = N * T, 4 * H

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    h1, Wb, dy = f32(rows, H + 1), f32(H + 1, V), f32(rows, V)
    W = Wb[:H]
    x, Wx, dA = f32(rows, H), f32(H, G), f32(rows, G)
    h, Wh = f32(N, H), f32(H, G)
    logits = np.empty_like(dy)
    gates, gate_values, cells, tanh_cells = f32(rows, G), f32(rows, G), f32(rows, H), f32(rows, H)
    # Every parameter (embedding, 2 LSTM layers, output layer) is read with
    # its gradient and written once per update: one subtract is the least.
    shapes = [(V, H)] + [(H, G), (H, G), (G,)] * LAYERS + [(H + 1, V)]
    params = [f32(*shape) for shape in shapes]
    grads = [f32(*shape) for shape in shapes]

    def update():
        for p, g in zip(params, grads, strict=True):
            np.subtract(p, g, out=p)

    fns = {
        "out: h @ W": lambda: h1 @ Wb,
        "out: h.T @ dy": lambda: h1.T @ dy,
        "out: dy @ W.T": lambda: dy @ W.T,
        "exp over the logits": lambda: np.exp(dy, out=logits),
        "lstm: x @ Wx": lambda: x @ Wx,
        "lstm: x.T @ dA": lambda: x.T @ dA,
        "lstm: dA @ Wx.T": lambda: dA @ Wx.T,
        "lstm: h @ Wh": lambda: h @ Wh,
        "lstm: exp over the gates": lambda: np.exp(gates, out=gate_values),
        "lstm: tanh(c)": lambda: np.tanh(cells, out=tanh_cells),
        "update: p - g": update,
    }
    return {name: median_time(fn, repeats) for name, fn in fns.items()}


@ends_on_interrupt
def main(argv=None):
    """Time it; return the exit status (130 or 143 when interrupted); a usage
    error exits with 2. A reader of stdout that stops reading (``| head``),
    or a full disk under it, does not end it in a traceback."""
    with outputs_may_close():
        return results_status(time_zaremba(argv))


def time_zaremba(argv):
    """:func:`main`, its outputs taken care of."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None,
                   help="folder with the PTB files (default: $RNNLAB_PTB_DIR, the cache, or "
                        "a download)")
    p.add_argument("--iters", type=at_least(1), default=60,
                   help="timed iterations of fit, at least 1 (default 60)")
    args = p.parse_args(argv)
    if problem := thread_count_problem():
        p.error(problem)

    train, valid, test = load_ptb(p, ["train", "valid", "test"], args.data_dir)
    xs, ts = train[:-1], train[1:]
    iters_per_epoch = len(xs) // (N * T)
    if 5 + args.iters + 30 > iters_per_epoch:  # the warm-up, the timing and the stages: one epoch
        p.error(f"--iters must be at most {iters_per_epoch - 35} (an epoch of PTB is "
                f"{iters_per_epoch} iterations, 35 of them for the warm-up and the stages), "
                f"got {args.iters}")
    eval_tokens = EPOCHS * (len(valid) - 1) + len(test) - 1

    model = BetterRnnlm(V, H, H, num_layers=LAYERS, dropout_ratio=0.0, tie_weights=False,
                        init_scale=0.1, seed=0)
    trainer = RnnlmTrainer(model, SGD(20.0))
    options = dict(max_epoch=1, batch_size=N, time_size=T, max_grad=0.25, verbose=False)
    trainer.fit(xs, ts, max_iters=5, **options)
    t0 = time.perf_counter()
    trainer.fit(xs, ts, max_iters=5 + args.iters, **options)
    fit_s = (time.perf_counter() - t0) / args.iters
    slice_ = valid[:8001]
    eval_perplexity(model, slice_[:801], batch_size=10)  # warm-up
    t0 = time.perf_counter()
    eval_perplexity(model, slice_, batch_size=10)
    eval_s_per_token = (time.perf_counter() - t0) / (len(slice_) - 1)

    stages = stage_times(model, trainer, xs, ts, options, max_iters=5 + args.iters + 30)
    parts = bound_parts(repeats=15)
    k = num_threads()
    exp_shared = parts["exp over the logits"] / k
    out = parts["out: h @ W"] + parts["out: h.T @ dy"] + parts["out: dy @ W.T"]
    gate_funcs = (parts["lstm: exp over the gates"] + parts["lstm: tanh(c)"]) / k
    per_layer = (parts["lstm: x @ Wx"] + 2 * parts["lstm: x.T @ dA"] + parts["lstm: dA @ Wx.T"]
                 + 2 * T * parts["lstm: h @ Wh"] / k + gate_funcs)
    update = parts["update: p - g"] / k
    bound_s = out + exp_shared + LAYERS * per_layer + update
    # Evaluation: only the forward products and functions, per token.
    eval_bound = (parts["out: h @ W"] + exp_shared + LAYERS * (
        parts["lstm: x @ Wx"] + T * parts["lstm: h @ Wh"] / k + gate_funcs)) / (N * T)

    iters = EPOCHS * iters_per_epoch
    print(f"Zaremba small: V={V}, 2 x LSTM {H}, N={N}, T={T}; {iters_per_epoch} iterations "
          f"per epoch, {EPOCHS} epochs = {iters:,} iterations; {eval_tokens:,} tokens of "
          f"validation and test; {k} threads")
    print("bound parts (ms): " + ", ".join(f"{name} {s * 1e3:.3f}" for name, s in parts.items()))
    print(f"  output products {out * 1e3:.2f} + exp / {k} {exp_shared * 1e3:.2f} + "
          f"{LAYERS} LSTM layers x {per_layer * 1e3:.2f} + update / {k} {update * 1e3:.2f} "
          f"= {bound_s * 1e3:.2f} ms/iteration")
    rows = [("two-core bound", bound_s, eval_bound), ("rnnlab fit", fit_s, eval_s_per_token)]
    for label, per_iter, per_token in rows:
        train_s, eval_s = per_iter * iters, per_token * eval_tokens
        total = train_s + eval_s
        print(f"{label:15s} {per_iter * 1e3:6.2f} ms/iteration -> training {train_s / 60:5.1f} "
              f"min + evaluation {eval_s / 60:4.1f} min = {total / 60:5.1f} min "
              f"({total / BUDGET_S:.2f} x the 30-minute budget)")
    print("where fit's time goes (median ms per call over 30 iterations, with the timers):")
    for label, seconds in stages.items():
        print(f"  {label:56s} {seconds * 1e3:6.2f}")
    room = (BUDGET_S - eval_bound * eval_tokens) / iters
    print(f"the budget allows {room * 1e3:.2f} ms/iteration = {room / bound_s:.3f} x the bound; "
          f"rnnlab's fit is {fit_s / bound_s:.3f} x the bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
