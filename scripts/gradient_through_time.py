"""Train a tanh RNN, an LSTM and a GRU the same way; plot how far back their gradients reach.

    python scripts/gradient_through_time.py                  # a few minutes on 2 cores
    python scripts/gradient_through_time.py --text-file book.txt --iters 2000

Each model (``SimpleRnnlm``, ``Rnnlm``, ``GruRnnlm``, the same sizes and
seed) is trained on the same character-level text with the same optimizer,
learning rate, clipping and batches: windows of ``--time-size`` characters
from random places of the training text, each read from a zero state.
Then, on a held-out batch of ``--eval-length`` characters per sequence
(from the validation part of the text), the script measures for every
earlier step ``t`` the norm of the gradient of the loss at the last step
with respect to the hidden state after step ``t``
(:func:`common.inspection.gradient_through_time`), averaged over the batch,
and draws one line per model.

The text is ``--text-file`` (any UTF-8 file, read as characters), by
default ``ptb.train.txt`` of the Penn Treebank folder (``--data-dir`` or
``$RNNLAB_PTB_DIR``; see the README's Data section); the first
``--corpus-size`` characters are cut 90/5/5 into train, valid and test.

A Ctrl-C draws the models finished so far (exit status 130); a model whose
training or held-out loss passes ``max(5 x log V, 10)`` nats (it diverged:
its gradients would measure nothing) ends the run with an error, the models
before it drawn. Such a plot of some models says so in its title, and is
written beside a plot already there (``NAME-partial.png``), not over it.
"""

import argparse
import math
import os
import sys
import time

# Running "python scripts/gradient_through_time.py" from a clone puts scripts/ (not the
# repository) on sys.path; make the packages importable without installing.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

from common.cli import (  # noqa: E402
    HelpFormatter,
    at_least,
    drawing_problem,
    empty_flag_problem,
    output_flags_problem,
    outputs_may_close,
    plot_path,
    positive_float,
    ptb_message_in_flag_words,
    user_path,
)
from common.inspection import gradient_through_time  # noqa: E402
from common.memory import (  # noqa: E402
    NotEnoughMemory,
    available_bytes,
    check_memory,
    estimate_training_bytes,
    language_model_shapes,
    text_reading_error,
)
from common.optimizer import Adam  # noqa: E402
from common.parallel import managed, thread_count_problem  # noqa: E402
from common.plot import save_figure  # noqa: E402
from common.training_guards import divergence_bound  # noqa: E402
from common.util import clip_grads  # noqa: E402
from datasets import ptb, text  # noqa: E402
from models import build_model  # noqa: E402

MODELS = (("simple", "tanh RNN (SimpleRnnlm)"), ("lstm", "LSTM (Rnnlm)"),
          ("gru", "GRU (GruRnnlm)"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Train a tanh RNN, an LSTM and a GRU the same way and plot the norm of\n"
                    "d(loss at the last step)/d(hidden state) at every earlier step.",
        formatter_class=HelpFormatter)
    p.add_argument("--text-file", type=user_path, default=None,
                   help="UTF-8 text, read as characters (default: ptb.train.txt)")
    p.add_argument("--data-dir", type=user_path, default=None,
                   help="PTB folder for the default text (default: $RNNLAB_PTB_DIR, else the "
                        "user cache, else a download)")
    p.add_argument("--corpus-size", type=at_least(0), default=400_000,
                   help="use the first N characters (0 = all)")
    p.add_argument("--wordvec-size", type=at_least(1), default=32, help="embedding size D")
    p.add_argument("--hidden-size", type=at_least(1), default=128, help="hidden size H")
    p.add_argument("--batch-size", type=at_least(1), default=32, help="windows per batch")
    p.add_argument("--time-size", type=at_least(1), default=50, help="training window length")
    p.add_argument("--iters", type=at_least(1), default=3000,
                   help="training iterations per model")
    p.add_argument("--lr", type=positive_float, default=0.003, help="Adam's learning rate")
    p.add_argument("--max-grad", type=positive_float, default=5.0,
                   help="gradient-norm clipping")
    p.add_argument("--eval-length", type=at_least(1), default=100,
                   help="length of the held-out sequences (steps of the plot)")
    p.add_argument("--eval-batch", type=at_least(1), default=64, help="held-out sequences")
    p.add_argument("--seed", type=at_least(0), default=0,
                   help="seed of the weights and of the batches")
    p.add_argument("--plot", type=plot_path, default="gradient_through_time.png",
                   help="where to draw; its suffix names the format (.png, .pdf, .svg); "
                        "'none': no plot")
    args = p.parse_args(argv)
    if problem := thread_count_problem():
        p.error(problem)
    if args.text_file is not None and args.data_dir is not None:
        p.error("--data-dir names the PTB folder of the default text; it has no use with "
                "--text-file: give one of them")
    if problem := empty_flag_problem(args, {"text_file": "a text file",
                                            "data_dir": "the PTB folder"}):
        p.error(problem)
    if problem := (output_flags_problem(args, {"plot": "gradient_through_time.png"},
                                        inputs=("text_file",))
                   or drawing_problem(args, ("plot",))):
        p.error(problem)
    return args


def text_path(args):
    """The text to read: ``--text-file``, else PTB's training file."""
    if args.text_file is not None:
        return args.text_file
    return os.path.join(ptb.find_data_dir(args.data_dir), "ptb.train.txt")


def load_text(path, args):
    corpus, word_to_id, _ = text.load_data(path, level="char")
    if args.corpus_size:
        corpus = corpus[:args.corpus_size]
    train, valid, _ = text.split_corpus(corpus)
    return train, valid, len(word_to_id)


def memory_problem(args, V) -> str | None:
    """Why training and probing the largest of the models (the LSTM) would not
    fit in the memory available, or None."""
    shapes = language_model_shapes("lstm", V, args.wordvec_size, args.hidden_size)
    estimate = max((estimate_training_bytes(shapes, n, t, "Adam") for n, t in
                    ((args.batch_size, args.time_size), (args.eval_batch, args.eval_length))),
                   key=lambda e: e["total"])
    try:
        check_memory(estimate, available_bytes(estimate), hint="; use a smaller --hidden-size, "
                     "--wordvec-size, --batch-size or --eval-batch")
    except NotEnoughMemory as exc:
        return str(exc)
    return None


def window_problem(corpus, length, part, flag):
    """Why windows of ``length + 1`` ids cannot be cut from ``corpus``, or None."""
    if corpus.size >= length + 1:
        return None
    return (f"the {part} part of the text has {corpus.size} characters; {flag} {length} needs "
            f"{length + 1}: give a smaller {flag}, or more text (--corpus-size, --text-file)")


def windows(corpus, n, length, rng):
    """``n`` random windows of ``length + 1`` ids: inputs and next-token targets."""
    starts = rng.integers(0, corpus.size - length, size=n)
    block = corpus[starts[:, None] + np.arange(length + 1)]
    return block[:, :-1], block[:, 1:]


class Diverged(Exception):
    """A training whose loss passed the divergence bound (or is not a number)."""


def train(model, corpus, args, bound):
    """Adam on random windows, each from a zero state; returns the last losses'
    mean. Raises :class:`Diverged` at a loss above ``bound``
    (``divergence_bound(V)``): the gradients of such a model measure nothing."""
    optimizer = Adam(lr=args.lr)
    rng = np.random.default_rng(args.seed)  # the same batches for every model
    losses = []
    # (Overflow on the way to a diverged loss is said below, once, in words.)
    with managed(), np.errstate(over="ignore", invalid="ignore"):
        for i in range(args.iters):
            xs, ts = windows(corpus, args.batch_size, args.time_size, rng)
            model.reset_state()
            losses.append(model.forward(xs, ts))
            if not losses[-1] <= bound:
                raise Diverged(diverged_words(f"its loss is {losses[-1]:.4g} nats at iteration "
                                              f"{i + 1}", bound, args))
            model.backward()
            clip_grads(model.grads, args.max_grad)
            optimizer.update(model.params, model.grads)
    return float(np.mean(losses[-50:]))


def diverged_words(what, bound, args):
    return (f"{what}, above {bound:.3g} nats (max(5 x log V, 10)): it diverged; lower --lr "
            f"(now {args.lr:g}) or --max-grad (now {args.max_grad:g})")


def measure(model, xs, ts, bound, args):
    """``(held-out loss, gradient norms)`` of a trained model; raises
    :class:`Diverged` where either is past what a model that learnt gives
    (the loss ``bound``; the last update of the training may be the one that
    blew it up)."""
    with np.errstate(over="ignore", invalid="ignore"):
        held = held_out_loss(model, xs, ts)
        norms = gradient_through_time(model, xs, ts)
    if not held <= bound:
        raise Diverged(diverged_words(f"its held-out loss is {held:.4g} nats after training",
                                      bound, args))
    if not np.isfinite(norms).all():
        raise Diverged(diverged_words("its gradients through time overflow after training, "
                                      f"and its held-out loss is {held:.4g} nats", bound, args))
    return held, norms


def held_out_loss(model, xs, ts):
    model.eval()
    model.reset_state()
    return model.forward(xs, ts)


def plot(curves, args, path, note=None):
    import matplotlib
    if "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, norms in curves:
        back = np.arange(norms.size)[::-1]  # steps between h_t and the last step
        # A gradient that underflowed to 0 has no place on a log axis: its line
        # would just stop; the legend says from how far back.
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            label = f"{label} (0 from {int(back[zero[-1]])} steps back)"
        # A line through one point draws nothing (--eval-length 1): short curves get markers.
        ax.semilogy(back, np.where(norms > 0, norms, np.nan), label=label,
                    marker="o" if norms.size <= 10 else None, ms=4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole steps, not -0.04
    if max(norms.size for _, norms in curves) == 1:
        ax.set_xlim(-1, 1)
    ax.set_xlabel("steps back from the last step (T - 1 - t)")
    ax.set_ylabel("mean || d loss_T / d h_t ||")
    ax.set_title(f"Gradient through time, held-out batch of {args.eval_batch} x "
                 f"{args.eval_length} characters" + (f"\n({note})" if note else ""),
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    # Atomically: a full disk or Ctrl-C while drawing leaves the old file as it was.
    save_figure(fig, path)
    return fig


def main(argv=None):
    args = parse_args(argv)
    # A reader that stops reading (| head) or a full disk under the table: the run
    # goes on and draws its plot; a file name an ASCII terminal cannot show: escaped.
    with outputs_may_close():
        return _run(args)


def _run(args):
    path = None
    try:
        path = text_path(args)
        train_ids, valid_ids, V = load_text(path, args)
    except (OSError, ValueError, ptb.DataNotFoundError) as exc:
        print(f"error: {ptb_message_in_flag_words(str(exc))}", file=sys.stderr)
        return 2
    except MemoryError:  # (--corpus-size cuts the text once it is read whole)
        flag = "--text-file" if args.text_file is not None else "the PTB file"
        print(f"error: {text_reading_error(flag, path)}", file=sys.stderr)
        return 2
    # Checked now, not minutes into training.
    if problem := (window_problem(train_ids, args.time_size, "training", "--time-size")
                   or window_problem(valid_ids, args.eval_length, "held-out", "--eval-length")
                   or memory_problem(args, V)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(f"{os.path.basename(path)}: {train_ids.size:,} training characters, {V} distinct; "
          f"H = {args.hidden_size}, D = {args.wordvec_size}, {args.iters} iterations of "
          f"{args.batch_size} x {args.time_size}, Adam lr {args.lr}, clipping {args.max_grad}")
    eval_xs, eval_ts = windows(valid_ids, args.eval_batch, args.eval_length,
                               np.random.default_rng(args.seed + 1))
    curves, bound = [], divergence_bound(V)
    steps_back = sorted({k for k in (0, 10, 25, 50, args.eval_length - 1)
                         if k < args.eval_length})
    print("model                   train loss  held-out bits/char  |grad| at "
          + ", ".join(map(str, steps_back)) + " steps back   time")
    try:
        for name, label in MODELS:
            model = build_model(name, V, args.wordvec_size, args.hidden_size, seed=args.seed)
            start = time.perf_counter()
            try:
                loss = train(model, train_ids, args, bound)
                held, norms = measure(model, eval_xs, eval_ts, bound, args)
            except Diverged as exc:
                print(f"error: {label}: {exc}", file=sys.stderr)
                # (The models before it: their curves stand.)
                return _draw(curves, args, 1, f"{label} diverged")
            seconds = time.perf_counter() - start
            curves.append((label, norms))
            back = [norms[-1 - k] for k in steps_back]
            print(f"{label:24s}{loss:10.3f}  {held / math.log(2):18.3f}  "
                  + "  ".join(f"{b:.2e}" for b in back) + f"   {seconds:.0f} s", flush=True)
    except KeyboardInterrupt:  # minutes of training: the models done so far are drawn
        print("\ninterrupted", file=sys.stderr)
        return _draw(curves, args, 130, "interrupted")
    return _draw(curves, args, 0)


def _draw(curves, args, status, why=None):
    """Draw the finished models' ``curves`` (if any, and asked); ``status``,
    or 1 when the plot cannot be written. A plot of some models only (``why``
    says why the others are missing) says so in its title, and does not
    replace a plot already there (a whole run's, perhaps): it goes beside
    it, ``NAME-partial.png``."""
    if not (args.plot and curves):
        return status
    path, note = args.plot, None
    if why is not None:
        note = f"{why}: {len(curves)} of {len(MODELS)} models"
        if os.path.exists(path):
            stem, suffix = os.path.splitext(path)
            path = f"{stem}-partial{suffix}"
    try:
        plot(curves, args, path, note)
    except OSError as exc:  # a full disk: the numbers above are the run's results
        print(f"error: cannot write the plot --plot {path}: {exc.strerror or exc}",
              file=sys.stderr)
        return status or 1
    print(f"plot: {path}" + (f" ({note})" if note else ""))
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # (before the first model, or a second Ctrl-C: nothing to keep)
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
