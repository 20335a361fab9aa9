"""The word-level reference configuration: rnnlab against a floor, a bound and PyTorch.

SimpleRnnlm (and the LSTM ``models.Rnnlm``), V = 10,000, D = H = 100,
N = 20, T = 35, SGD, full PTB train. One training iteration is compared with

* the *floor*: the three output-layer products ``x @ W``, ``x.T @ dy``,
  ``dy @ W.T`` (x (700, 100), W (100, 10,000), dy (700, 10,000)) and one
  float32 ``exp`` over 700 x 10,000 values, the work no implementation of
  this model can skip (sum of the four medians). Target: <= 1.35 x floor.
* PyTorch on the CPU, the same model and loop, the same batches, with as
  many threads as NumPy's BLAS. Target: <= 0.7 x torch.
* a *two-core bound*: the floor's products as BLAS runs them and its exp
  shared perfectly among the threads, everything else counted as free (for
  the LSTM plus its own products). No NumPy implementation can beat it.

Then where an rnnlab iteration's time goes, layer by layer.
"""

from collections import defaultdict
from contextlib import nullcontext

import numpy as np

from benchmarks.contenders import LR, D, H, N, T, V, torch_model, torch_step, training_step
from benchmarks.harness import (
    Run,
    fmt_ms,
    low,
    median,
    round_robin,
    say,
    settle,
    spread,
    timed_methods,
)
from common.optimizer import SGD
from common.parallel import managed
from common.trainer import RnnlmTrainer
from models import Rnnlm, SimpleRnnlm

TARGET_FLOOR = 1.35  # iteration <= 1.35 x floor
TARGET_TORCH = 0.7  # iteration <= 0.7 x torch


def floor_functions(rng):
    """The floor's four operations, and the LSTM's own products (for its bound)."""
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
    g4 = 4 * H  # the LSTM's 4H = 400 gate columns
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
    return floor_fns, lstm_fns


def training_iteration(run: Run, xs, ts, blocks: int, rounds: int, warmup: int) -> dict:
    """Time the models against the floor and torch; return the models for later sections."""
    torch = run.torch
    results = run.results
    floor_fns, lstm_fns = floor_functions(np.random.default_rng(0))
    numpy_fns, torch_fns, first_loss, copied = {}, {}, {}, {}
    models = {"rnn": SimpleRnnlm(V, D, H, seed=0), "lstm": Rnnlm(V, D, H, seed=0)}
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
        numpy_fns[f"rnnlab {kind}"] = training_step(model, optimizer, trainer, xs, ts, N, T)
        with managed():
            first_loss.setdefault(kind, {})["rnnlab"] = float(numpy_fns[f"rnnlab {kind}"]())

    say("\n== training iteration, V=10000 D=H=100 N=20 T=35 (batch + forward + backward + SGD)")
    samples = defaultdict(list)
    for _ in range(blocks):
        # The floor is plain NumPy with BLAS's threads; rnnlab runs as in fit.
        for group, context in (({**floor_fns, **lstm_fns}, nullcontext), (numpy_fns, managed),
                               (torch_fns, nullcontext)):
            if group:
                round_robin(group, rounds, warmup, samples, context)
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

    p10 = {name: low(s) for name, s in samples.items()}
    low_floor = sum(p10[name] for name in floor_fns)
    results["floor_ms"]["total_p10"] = low_floor * 1e3

    # A bound no NumPy implementation on these cores can beat: the floor's
    # products as BLAS runs them (on all its threads) and its exp shared
    # perfectly among the threads; for the LSTM also its own products (input
    # projection, dx, dWx, dWh, and 2T recurrent products, those shared
    # perfectly too). Everything else (tanh, gates, row sums, update, Python)
    # counts as free, so the bound is below what can really be reached.
    pool = results["machine"]["rnnlab_elementwise_threads"] or 1
    bound = {"rnn": med["x @ W"] + med["x.T @ dy"] + med["dy @ W.T"] + med["exp"] / pool}
    bound["lstm"] = (bound["rnn"] + med["lstm xs @ Wx"] + 2 * med["lstm xs.T @ dA"]
                     + med["lstm dA @ Wx.T"] + 2 * T * med["lstm h @ Wh"] / pool)
    results["bound_ms"] = {kind: b * 1e3 for kind, b in bound.items()}
    for kind in models:
        results[kind] = _report_model(run, kind, samples, med, p10, floor, low_floor, bound,
                                      first_loss, copied, bool(torch_fns))
    return med, big


def _report_model(run, kind, samples, med, p10, floor, low_floor, bound, first_loss, copied,
                  with_torch):
    ours = med[f"rnnlab {kind}"]
    q1, q3 = spread(samples[f"rnnlab {kind}"])
    entry = {"rnnlab_ms": ours * 1e3, "rnnlab_iqr_ms": [q1 * 1e3, q3 * 1e3],
             "samples": len(samples[f"rnnlab {kind}"]),
             "ratio_to_floor": ours / floor,
             "ratio_to_floor_p10": p10[f"rnnlab {kind}"] / low_floor,
             "first_loss": first_loss[kind]}
    label = "RNN " if kind == "rnn" else "LSTM"
    say(f"{label} rnnlab         {fmt_ms(ours)}   (IQR {q1 * 1e3:.2f} - {q3 * 1e3:.2f})")
    say(f"{label}   rnnlab / floor = {ours / floor:.3f} "
        f"(target <= {TARGET_FLOOR}: "
        f"{run.target(f'{kind}: iteration / floor', ours / floor, TARGET_FLOOR)}); "
        f"with 10th percentiles {entry['ratio_to_floor_p10']:.3f}")
    entry.update(bound_ms=bound[kind] * 1e3, ratio_to_bound=ours / bound[kind])
    if not with_torch:  # (the bound is rnnlab's own: reported without torch too)
        say(f"{label}   two-core bound {bound[kind] * 1e3:.2f} ms: rnnlab / bound = "
            f"{ours / bound[kind]:.3f}")
        return entry
    theirs = med[f"torch {kind}"]
    t1, t3 = spread(samples[f"torch {kind}"])
    entry.update(torch_ms=theirs * 1e3, torch_iqr_ms=[t1 * 1e3, t3 * 1e3],
                 ratio_to_torch=ours / theirs,
                 ratio_to_torch_p10=p10[f"rnnlab {kind}"] / p10[f"torch {kind}"],
                 torch_weights_copied=copied[kind])
    say(f"{label} torch          {fmt_ms(theirs)}   (IQR {t1 * 1e3:.2f} - {t3 * 1e3:.2f})")
    say(f"{label}   rnnlab / torch = {ours / theirs:.3f} (target <= {TARGET_TORCH}: "
        f"{run.target(f'{kind}: rnnlab / torch', ours / theirs, TARGET_TORCH)}); "
        f"with 10th percentiles {entry['ratio_to_torch_p10']:.3f}")
    need = TARGET_TORCH * theirs
    entry.update(torch_target_over_bound=need / bound[kind])
    say(f"{label}   two-core bound {bound[kind] * 1e3:.2f} ms: rnnlab / bound = "
        f"{ours / bound[kind]:.3f}; the torch target needs <= {need * 1e3:.2f} ms "
        f"= {need / bound[kind]:.3f} x bound")
    note = "same weights" if copied[kind] else "weights not copied: losses differ"
    say(f"{label} first-batch loss: rnnlab {first_loss[kind]['rnnlab']:.5f}, "
        f"torch {first_loss[kind]['torch']:.5f} ({note})")
    return entry


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
    step = training_step(model, optimizer, trainer, xs, ts, N, T)
    whole = defaultdict(list)
    with timed_methods(targets) as samples:
        round_robin({"iteration": step}, rounds, warmup, whole, context=managed)
    k = warmup  # drop the warm-up calls of every stage (one call per iteration)
    stages = {label: median(s[k:]) * 1e3 for label, s in samples.items()}
    return stages, median(whole["iteration"]) * 1e3


def where_time_goes(run: Run, med, big, xs, ts, rounds: int, warmup: int) -> None:
    say("\n== where an rnnlab iteration's time goes (median ms per call, timed separately)")
    # TimeAffine.backward computes dx = dy @ W.T; its weight gradient x.T @ dy
    # is deferred to an idle core and lands in the model's backward (the last line).
    floor_part = {"TimeAffine.forward": med["x @ W"],
                  "TimeAffine.backward": med["dy @ W.T"],
                  "TimeSoftmaxWithLoss.forward": med["exp"]}
    for kind, (model, optimizer, trainer) in big.items():
        stages, whole = stage_breakdown(model, optimizer, trainer, xs, ts,
                                        rounds=rounds, warmup=warmup)
        run.results[kind]["stages_ms"] = stages
        say(f"{'RNN' if kind == 'rnn' else 'LSTM'}: iteration {whole:.2f} ms with the timers")
        for label, ms in stages.items():
            extra = ""
            if label in floor_part:
                extra = f"   floor part {floor_part[label] * 1e3:6.2f}, beyond it " \
                        f"{ms - floor_part[label] * 1e3:6.2f}"
            say(f"  {label:30s} {ms:7.2f}{extra}")
        say(f"  {'(deferred weight gradients, and Python between the stages)':30s} "
            f"{whole - sum(stages.values()):7.2f}")
