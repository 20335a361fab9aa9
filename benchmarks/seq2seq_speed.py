"""Speed of the sequence-to-sequence models against a textbook-style reference.

Run as ``python -m benchmarks.seq2seq_speed`` (``--help`` for the options).
For each model, on the task the textbook trains it on, with the textbook's
sizes (batch 128, wordvec 16; hidden 128 on addition, 256 on dates):

* **training**: the time of one epoch (45,000 pairs, 351 iterations of
  forward, backward, clipping at 5 and an Adam step), measured over
  ``--iters`` iterations and scaled to the epoch; rnnlab (as its trainer
  runs it, inside ``common.parallel.managed()``, each batch by halves on
  the two cores) against :mod:`benchmarks.reference_seq2seq`, both at
  their steady pace after a warm-up run. Target: rnnlab at least 2x faster.
  Beside them the iteration's *two-core bound* (:mod:`benchmarks.bounds`:
  its products, and one ``exp`` and one ``tanh`` per LSTM step, shared
  perfectly between the cores; everything else free), scaled to the epoch,
  and what the target asks: half the reference's epoch, as a multiple of
  the bound.
* **evaluation**: the exact-match accuracy of the 5,000 test pairs, all at
  once (``common.util.seq2seq_accuracy``) against one question per call
  (the textbook's loop, on the reference model and on rnnlab's), measured
  on ``--eval-questions`` questions and scaled to 5,000. Target: at least
  10x faster. Both models hold the same weights, so their answers agree.

As a section of a larger benchmark: :func:`add_arguments` adds the options
to a parser, :func:`configure` checks them, :func:`run` prints the tables
and returns their rows.

Each time is the median of ``--repeats`` runs. The machine's BLAS and
thread counts are printed first; ``--threads N`` limits NumPy's BLAS to
``N`` threads for the reference (rnnlab manages the cores itself).
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

from benchmarks import bounds
from benchmarks import reference_seq2seq as ref
from benchmarks.command_line import cpu_count, ends_on_interrupt
from benchmarks.harness import helper_rests_note
from common import blas, data_parallel
from common.cli import HelpFormatter, outputs_may_close, results_status
from common.data_parallel import batch_halves
from common.optimizer import Adam
from common.parallel import num_threads, thread_count_problem
from common.util import clip_grads, seq2seq_accuracy
from models.attention_seq2seq import AttentionSeq2seq
from models.peeky_seq2seq import PeekySeq2seq
from models.seq2seq import Seq2seq

BATCH = 128
EPOCH_PAIRS = 45_000
EPOCH_ITERATIONS = EPOCH_PAIRS // BATCH  # 351
TEST_PAIRS = 5_000
PROG = "python -m benchmarks.seq2seq_speed"

# name, rnnlab class, reference class, task, hidden size
CONFIGS = [
    ("Seq2seq", Seq2seq, ref.Seq2seq, "addition", 128),
    ("PeekySeq2seq", PeekySeq2seq, ref.PeekySeq2seq, "addition", 128),
    ("AttentionSeq2seq", AttentionSeq2seq, ref.AttentionSeq2seq, "date", 256),
]


def iteration_bound_ms(name, H, V, T_enc, T_dec, threads, repeats) -> float:
    """The two-core bound of one training iteration of model ``name`` (a
    ``CONFIGS`` name) in ms: both LSTMs (the encoder starting from zeros),
    the output layer, for peeky the encoding's share of the decoder's gates
    (once per answer, its gradients too) and, for attention, the six
    batched products of the attention layer."""
    N, D = BATCH, 16
    peeky, attention = name == "PeekySeq2seq", name == "AttentionSeq2seq"
    layers = [("lstm", N, T_enc, D, H, True), ("lstm", N, T_dec, D, H)]
    width = H * (2 if peeky or attention else 1)  # what the output layer reads
    rows = N * T_dec
    products = [(rows, width, V), (width, rows, V), (rows, V, width)]
    if peeky:  # h @ Wx[:H], and its gradients
        products += [(N, H, 4 * H), (N, 4 * H, H), (H, N, 4 * H)]
    if attention:  # scores, context, and their gradients, one batch of N each
        products += [(T_dec, H, T_enc, N), (T_dec, T_enc, H, N), (T_dec, H, T_enc, N),
                     (T_enc, T_dec, H, N), (T_enc, T_dec, H, N), (T_dec, T_enc, H, N)]
    return bounds.bound_ms(layers, products, threads, repeats)


def load_task(task, reverse):
    """The task's data from :mod:`datasets.sequence` (reversed questions for addition)."""
    from datasets import sequence

    (x_train, t_train), (x_test, t_test) = sequence.load_data(task)
    _, id_to_char = sequence.get_vocab()
    if reverse:
        x_train, x_test = x_train[:, ::-1].copy(), x_test[:, ::-1].copy()
    return x_train, t_train, x_test, t_test, len(id_to_char)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rnnlab_iterations(forward_backward, model, optimizer, x, t, iters):
    """What the trainer does per iteration: each batch's loss and gradients
    computed by halves (``forward_backward`` of
    :func:`common.data_parallel.batch_halves`), then clipping and the update."""
    for i in range(iters):
        forward_backward(x[i * BATCH:(i + 1) * BATCH], t[i * BATCH:(i + 1) * BATCH])
        clip_grads(model.grads, 5.0)
        optimizer.update(model.params, model.grads)


def rnnlab_one_by_one(model, questions, answers):
    correct = 0
    for i in range(len(questions)):
        guess = model.generate(questions[i:i + 1], int(answers[i, 0]), answers.shape[1] - 1)
        correct += bool((guess[0] == answers[i, 1:]).all())
    return correct / len(questions)


def set_reference_threads(n):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return blas.set_threads(n)
    threadpool_limits(limits=n, user_api="blas")
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this benchmark's options (``--iters``, ``--eval-questions``, ``--repeats``,
    ``--threads``, ``--models``) to ``parser``."""
    parser.add_argument("--iters", type=int, default=20,
                        help=f"training iterations timed per run, scaled to an epoch (1 to "
                             f"{EPOCH_ITERATIONS}, the iterations of an epoch)")
    parser.add_argument("--eval-questions", type=int, default=300,
                        help=f"questions answered one per call per run, scaled to the "
                             f"{TEST_PAIRS:,} test pairs (1 to {TEST_PAIRS:,})")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit NumPy's BLAS to this many threads, from 1 to the "
                             "machine's CPUs (default: as it is)")
    parser.add_argument("--models", nargs="+", default=[c[0] for c in CONFIGS],
                        choices=[c[0] for c in CONFIGS], help="which models to time")


def configure(args: argparse.Namespace) -> str | None:
    """Check the counts and apply ``--threads``; the error message, or None if all is well."""
    for name in ("iters", "eval_questions", "repeats"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be at least 1"
    # More would run out of pairs (an epoch) or scale fewer answers than timed (the test set).
    if args.iters > EPOCH_ITERATIONS:
        return (f"--iters must be at most {EPOCH_ITERATIONS} (the iterations of an epoch of "
                f"{EPOCH_PAIRS:,} pairs), got {args.iters}")
    if args.eval_questions > TEST_PAIRS:
        return (f"--eval-questions must be at most {TEST_PAIRS:,} (the test pairs), got "
                f"{args.eval_questions}")
    if args.threads is not None and not 1 <= args.threads <= cpu_count():
        return (f"--threads must be from 1 to {cpu_count()} (the CPUs this process may use), got "
                f"{args.threads}")
    if args.threads is not None and not set_reference_threads(args.threads):
        return f"cannot set the BLAS threads to {args.threads}"
    return None


def print_machine() -> None:
    print(f"machine   {platform.machine()} {platform.processor() or ''}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"numpy     {np.__version__}, BLAS threads {blas.get_threads()}, "
          f"rnnlab threads {num_threads()}")


def time_training(model, reference, x_train, t_train, args) -> tuple[float, float]:
    """Seconds per epoch of rnnlab and of the reference, from ``args.iters`` iterations.

    Both at their steady pace, as through an epoch: each keeps one optimizer
    (its state made by a warm-up run), and rnnlab one
    :func:`~common.data_parallel.batch_halves` context (its helper process
    begun once), as the trainer holds them for a whole ``fit``.
    """
    n = args.iters * BATCH
    x, t = x_train[:n], t_train[:n]
    scale = (EPOCH_PAIRS // BATCH) / args.iters
    optimizer, ref_optimizer = Adam(0.001), ref.Adam(0.001)
    with batch_halves(model, (BATCH, *x.shape[1:]), (BATCH, *t.shape[1:])) as forward_backward:

        def run_rnnlab():
            rnnlab_iterations(forward_backward, model, optimizer, x, t, args.iters)

        run_rnnlab()  # warm-up (the helper, the caches, the optimizer's state)
        t_lib = median_time(run_rnnlab, args.repeats) * scale

    def run_reference():
        ref.fit(reference, ref_optimizer, x, t, BATCH, 5.0, max_iters=args.iters)

    run_reference()  # warm-up, the same
    t_ref = median_time(run_reference, args.repeats) * scale
    return t_lib, t_ref


def time_evaluation(model, reference, x_test, t_test, args) -> tuple:
    """``(batched s, reference 1/call s, rnnlab 1/call s, accuracy, answers agree)`` for
    5,000 questions; the one-per-call times from ``args.eval_questions`` of them."""
    ref.copy_params(reference, model)  # the same weights in both, again after training steps
    q = args.eval_questions
    qx, qt = x_test[:q], t_test[:q]
    t_batched = median_time(lambda: seq2seq_accuracy(model, x_test, t_test), args.repeats)
    acc_batched = seq2seq_accuracy(model, x_test, t_test)
    scale_eval = TEST_PAIRS / q
    t_ref_one = median_time(lambda: ref.accuracy_one_by_one(reference, qx, qt),
                            args.repeats) * scale_eval
    t_lib_one = median_time(lambda: rnnlab_one_by_one(model, qx, qt), args.repeats) * scale_eval
    # The answers themselves: an untrained pair scores 0 on both sides, whatever it says.
    ours = np.asarray(model.generate(qx, qt[:, 0], qt.shape[1] - 1))
    same = bool(np.array_equal(ours, ref.answers_one_by_one(reference, qx, qt)))
    return t_batched, t_ref_one, t_lib_one, acc_batched, same


def print_evaluation(eval_rows: list[tuple]) -> None:
    print()
    print(f"{'evaluation of 5,000':<20}{'batched s':>10}{'ref 1/call':>12}{'ratio':>8}"
          f"{'rnnlab 1/call':>15}{'ratio':>8}  answers agree")
    for name, t_b, t_r, t_l, acc, same in eval_rows:
        print(f"{name:<20}{t_b:>10.2f}{t_r:>12.2f}{t_r / t_b:>7.0f}x{t_l:>15.2f}{t_l / t_b:>7.0f}x"
              f"  {'yes' if same else 'NO'} (accuracy {acc:.3f})")


def run(args: argparse.Namespace) -> tuple[list[tuple], list[tuple]]:
    """Time the models ``args.models`` (options of :func:`add_arguments`, checked by
    :func:`configure`) and print both tables.

    Returns:
        training rows ``(name, task, rnnlab s/epoch, reference s/epoch, bound s/epoch)`` and
        evaluation rows ``(name, batched s, reference 1/call s, rnnlab 1/call s,
        accuracy, answers agree)``.
    """
    print(f"epoch     {EPOCH_PAIRS:,} pairs = {EPOCH_PAIRS // BATCH} iterations of {BATCH}; "
          f"timed over {args.iters} iterations, median of {args.repeats}")
    print()
    header = (f"{'model':<18}{'task':<10}{'rnnlab s/epoch':>16}{'reference':>12}{'ratio':>8}"
              f"{'bound':>8}{'rnnlab/bound':>14}{'target/bound':>14}")
    rows, eval_rows = [], []
    for name, cls, ref_cls, task, H in CONFIGS:
        if name not in args.models:
            continue
        x_train, t_train, x_test, t_test, V = load_task(task, reverse=task == "addition")
        model, reference = cls(V, 16, H, seed=0), ref_cls(V, 16, H, seed=0)
        ref.copy_params(reference, model)
        rests_before = data_parallel.rests()
        t_lib, t_ref = time_training(model, reference, x_train, t_train, args)
        rests = data_parallel.rests() - rests_before
        bound = iteration_bound_ms(name, H, V, x_train.shape[1], t_train.shape[1] - 1,
                                   num_threads(), args.repeats * 5) * (EPOCH_PAIRS // BATCH) / 1e3
        rows.append((name, task, t_lib, t_ref, bound))
        print(f"{header}\n" if len(rows) == 1 else "", end="")
        print(f"{name:<18}{task:<10}{t_lib:>16.2f}{t_ref:>12.2f}{t_ref / t_lib:>7.1f}x"
              f"{bound:>8.2f}{t_lib / bound:>14.2f}{t_ref / 2 / bound:>14.2f}", flush=True)
        if rests:
            print(f"  ({helper_rests_note(rests)})")
        eval_rows.append((name, *time_evaluation(model, reference, x_test, t_test, args)))
    print_evaluation(eval_rows)
    return rows, eval_rows


def main(argv: list[str] | None = None) -> tuple[list[tuple], list[tuple]]:
    """Check the flags (a usage error exits with 2), then time and print."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Time rnnlab's seq2seq models against a textbook-style reference.",
        formatter_class=HelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if problem := thread_count_problem():
        parser.error(problem)
    error = configure(args)
    if error:
        parser.error(error)
    print_machine()
    return run(args)


@ends_on_interrupt
def command(argv: list[str] | None = None) -> int:
    """:func:`main` as a command: its exit status, 0; 130 after Ctrl-C, 143
    after SIGTERM. A reader of stdout that stops reading (``| head``), or a
    full disk under it, does not end it in a traceback."""
    with outputs_may_close():
        main(argv)
        return results_status(0)


if __name__ == "__main__":
    sys.exit(command())
