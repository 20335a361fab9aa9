"""The character-level configuration: where the recurrence dominates (issue 14).

Embedding (V = 50, D = 32) -> LSTM(H) -> Affine, Adam, global-norm clipping,
N = 32, T = 64, for H = 128, 256, 512 (the README's character-level run),
and a GRU row at H = 256 (with ``--quick`` only the two rows of H = 256).
One training iteration (batch + forward + backward + clipping + Adam) of
rnnlab against the same model in PyTorch, the same batches of random
character ids, timed in alternating groups, and where rnnlab's iteration
goes, stage by stage (with ``--quick`` for H = 256 only).

The *two-core bound* of an iteration (:mod:`benchmarks.bounds`) is what
no NumPy implementation on these cores can beat: the products of the
iteration and one ``exp`` over the gates and one ``tanh`` of the cells per
step, shared perfectly among the threads, with the recurrent products at
one thread's share; everything else counts as free.
"""

from collections import defaultdict
from contextlib import contextmanager, nullcontext

import numpy as np

from benchmarks import bounds
from benchmarks.harness import (
    Run,
    helper_rests_note,
    median,
    round_robin,
    say,
    settle,
    timed_methods,
)
from common import data_parallel
from common.data_parallel import batch_halves
from common.optimizer import Adam
from common.trainer import RnnlmTrainer
from common.util import clip_grads
from models import GruRnnlm, Rnnlm

V, D, N, T = 50, 32, 32, 64
LR, MAX_GRAD = 2e-3, 5.0
CONFIGS = [("lstm", 128), ("lstm", 256), ("lstm", 512), ("gru", 256)]
QUICK_CONFIGS = [("lstm", 256), ("gru", 256)]  # --quick: a minute for the whole benchmark


def rnnlab_char_step(model, xs, ts):
    """One iteration as ``fit`` does it, with Adam and clipping: the step, the
    optimizer, and the context to time it in (the cores managed, and the
    batch computed by halves where that pays, :mod:`common.data_parallel`)."""
    optimizer, fetch = Adam(lr=LR), RnnlmTrainer(None, None)
    halves = {}

    @contextmanager
    def context():
        with batch_halves(model, (N, T), (N, T)) as forward_backward:  # managed() too
            halves["forward_backward"] = forward_backward
            try:
                yield
            finally:
                halves.clear()

    def step():
        batch_x, batch_t = fetch.get_batch(xs, ts, N, T)
        loss = halves["forward_backward"](batch_x, batch_t)
        clip_grads(model.grads, MAX_GRAD)
        optimizer.update(model.params, model.grads)
        return loss

    return step, optimizer, context


def torch_char_step(torch, cell, H, xs, ts):
    nn, F = torch.nn, torch.nn.functional

    class CharModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, D)
            self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(D, H, batch_first=True)
            self.affine = nn.Linear(H, V)
            self.state = None

        def forward(self, x, t):
            hs, state = self.rnn(self.embed(x), self.state)
            self.state = (tuple(s.detach() for s in state) if isinstance(state, tuple)
                          else state.detach())
            return F.cross_entropy(self.affine(hs).reshape(-1, V), t.reshape(-1))

    model = CharModel()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    fetch = RnnlmTrainer(None, None)

    def step():
        batch_x, batch_t = fetch.get_batch(xs, ts, N, T)
        loss = model(torch.from_numpy(batch_x).long(), torch.from_numpy(batch_t).long())
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


def bound_ms(cell, H, threads, repeats):
    """The two-core bound of one iteration, in milliseconds (:mod:`benchmarks.bounds`)."""
    output_layer = [(N * T, H, V), (H, N * T, V), (N * T, V, H)]  # y, dW, dh
    return bounds.bound_ms([(cell, N, T, D, H)], output_layer, threads, repeats)


def stage_breakdown(model, optimizer, step, context, rounds, warmup):
    """Median ms per call of each layer's forward/backward, clipping and Adam."""
    loss = model.loss_layer
    targets = [(layer, "forward", f"{type(layer).__name__}.forward") for layer in model.layers]
    targets += [(loss, "forward", f"{type(loss).__name__}.forward"),
                (loss, "backward", f"{type(loss).__name__}.backward")]
    targets += [(layer, "backward", f"{type(layer).__name__}.backward")
                for layer in reversed(model.layers)]
    targets.append((model, "backward", "whole backward (deferred work included)"))
    targets.append((optimizer, "update", f"{type(optimizer).__name__}.update"))
    whole = defaultdict(list)
    with timed_methods(targets) as samples:
        round_robin({"iteration": step}, rounds, warmup, whole, context=context)
    stages = {label: median(s[warmup:]) * 1e3 for label, s in samples.items()}
    return stages, median(whole["iteration"]) * 1e3


def char_level(run: Run, blocks: int, rounds: int, warmup: int) -> None:
    say(f"\n== character level: Embedding V={V} D={D} -> LSTM or GRU (H) -> Affine, Adam, "
        f"clipping {MAX_GRAD}, N={N} T={T}")
    corpus = np.random.default_rng(1).integers(0, V, size=N * T * 50)
    xs, ts = corpus[:-1], corpus[1:]
    threads = run.results["machine"]["rnnlab_elementwise_threads"] or 1
    results = run.results.setdefault("char_level", {})
    for cell, H in QUICK_CONFIGS if run.quick else CONFIGS:
        make = Rnnlm if cell == "lstm" else GruRnnlm
        model = make(V, D, H, seed=0)
        step, optimizer, rnnlab_context = rnnlab_char_step(model, xs, ts)
        groups = [({"rnnlab": step}, rnnlab_context)]
        if run.torch:
            groups.append(({"torch": torch_char_step(run.torch, cell, H, xs, ts)}, nullcontext))
        samples = defaultdict(list)
        rests_before = data_parallel.rests()
        for _ in range(blocks):
            for group, context in groups:
                round_robin(group, rounds, warmup, samples, context)
                settle()
        rests = data_parallel.rests() - rests_before
        ours = median(samples["rnnlab"]) * 1e3
        bound = bound_ms(cell, H, threads, repeats=5 if run.quick else 15)
        entry = {"rnnlab_ms": ours, "bound_ms": bound, "ratio_to_bound": ours / bound}
        line = (f"{cell.upper():4s} H={H:3d}: rnnlab {ours:7.2f} ms; two-core bound "
                f"{bound:6.2f} ms, rnnlab / bound = {ours / bound:.2f}")
        if run.torch:
            theirs = median(samples["torch"]) * 1e3
            entry.update(torch_ms=theirs, ratio_to_torch=ours / theirs,
                         torch_over_bound=theirs / bound)
            line += (f"; torch {theirs:7.2f} ms, rnnlab / torch = {ours / theirs:.2f} "
                     f"(torch / bound {theirs / bound:.2f})")
            if cell == "lstm":  # issue 14: this, or within 1.15 x the bound (either meets it)
                run.target(f"char LSTM H={H} / torch", ours / theirs, 1.8 if H == 128 else 1.5,
                           form_of=f"char LSTM H={H}")
        if cell == "lstm":
            run.target(f"char LSTM H={H} / bound", ours / bound, 1.15, form_of=f"char LSTM H={H}")
        if rests:
            entry["helper_rests"] = rests
            line += f" [{helper_rests_note(rests)}]"
        say(line)
        if H == 256 or not run.quick:  # where the time goes: every row of a full run
            stages, whole = stage_breakdown(model, optimizer, step, rnnlab_context,
                                            rounds=3 if run.quick else 6, warmup=1)
            entry["stages_ms"] = stages
            say(f"  where rnnlab's iteration goes ({whole:.2f} ms with the timers): " + ", ".join(
                f"{label} {ms:.2f}" for label, ms in stages.items()))
        results[f"{cell} H={H}"] = entry
