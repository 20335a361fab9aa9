"""The demo configuration: rnnlab against the textbook-style reference.

The first 1,000 words of PTB, V = 418, N = 10, T = 5, D = H = 100: rnnlab
against :mod:`benchmarks.reference_textbook`. Target: >= 3 x fewer
microseconds. Timed beside them, as a bound, the same step written as one
plain NumPy function (:func:`benchmarks.contenders.lean_step`): how much
faster than the textbook NumPy code of any structure gets. The three are
interleaved call by call inside ``managed()``, as ``fit`` runs (none of
them hands work to other threads at this size).
"""

from collections import defaultdict

from benchmarks import reference_textbook as textbook
from benchmarks.contenders import (
    LR,
    SMALL_N,
    SMALL_T,
    SMALL_WORDS,
    D,
    H,
    lean_step,
    training_step,
)
from benchmarks.harness import Run, median, round_robin, say
from common.optimizer import SGD
from common.parallel import managed
from common.trainer import RnnlmTrainer
from models import SimpleRnnlm

TARGET_TEXTBOOK = 3.0  # textbook / rnnlab >= 3


def demo(run: Run, train, rounds: int, warmup: int) -> None:
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
    fns = {
        "rnnlab": training_step(ours, ours_opt, RnnlmTrainer(ours, ours_opt), sxs, sts,
                              SMALL_N, SMALL_T),
        "textbook": training_step(ref_model, textbook.SGD(lr=LR), textbook.BatchFetcher(),
                                  sxs, sts, SMALL_N, SMALL_T),
        "lean": lean,
    }
    samples = defaultdict(list)
    round_robin(fns, rounds, warmup, samples, context=managed)
    us = {name: median(s) * 1e6 for name, s in samples.items()}
    speedup = us["textbook"] / us["rnnlab"]
    lean_speedup = us["textbook"] / us["lean"]
    run.results["small"] = {"vocab_size": sv, "rnnlab_us": us["rnnlab"],
                            "textbook_us": us["textbook"], "speedup": speedup,
                            "lean_us": us["lean"], "lean_speedup": lean_speedup,
                            "first_loss": {"rnnlab": ours_first, "lean": lean_first},
                            "samples": rounds}
    say(f"V = {sv}; {rounds} iterations each, interleaved")
    say(f"rnnlab      {us['rnnlab']:9.1f} us/iteration")
    say(f"textbook    {us['textbook']:9.1f} us/iteration   textbook / rnnlab = {speedup:.2f} "
        f"(target >= {TARGET_TEXTBOOK}: "
        f"{run.target('demo: textbook / rnnlab', speedup, TARGET_TEXTBOOK, True)})")
    say(f"lean bound  {us['lean']:9.1f} us/iteration   textbook / lean = {lean_speedup:.2f}: "
        f"the step as one plain NumPy function (first loss {lean_first:.5f}, "
        f"rnnlab {ours_first:.5f})")
