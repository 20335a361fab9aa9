"""Where one training iteration of the addition models goes, piece by piece.

Run as ``python -m benchmarks.seq2seq_parts``. For ``Seq2seq`` and
``PeekySeq2seq`` with the textbook's sizes (batch 128, wordvec 16, hidden
128, reversed addition), the median over ``--repeats`` calls of:

* **half**: forward and backward of half a batch (64 rows) on one core,
  as each process computes its half under :mod:`common.data_parallel`;
* **by halves**: the whole batch's gradients, the second half by the
  helper process (what the trainer does);
* **clip**, **adam**: the gradient clipping at 5 and the Adam update;
* **iteration**: all of it, as :mod:`benchmarks.seq2seq_speed` times it;
* **target**: half the reference's iteration
  (:mod:`benchmarks.reference_seq2seq`, its BLAS on all cores), timed in
  the same run: the speed target of the README's sequence-to-sequence
  section, per iteration.

Then, on one core, two pieces of a half's LSTM step: NumPy's float32
``exp`` over its gates (64 x 512) and its recurrent product (64 x 128 x
512), in µs.

What the figures show: whether a half alone already takes longer than the
target allows a whole iteration, and how the step's elementwise work
compares with its product on this CPU.
"""

import argparse

import numpy as np

from benchmarks import reference_seq2seq as ref
from benchmarks.command_line import ends_on_interrupt
from benchmarks.seq2seq_speed import BATCH, load_task, median_time
from common.cli import HelpFormatter, outputs_may_close, results_status
from common.data_parallel import _forward_backward, batch_halves
from common.optimizer import Adam
from common.parallel import managed, thread_count_problem
from common.util import clip_grads
from models import PeekySeq2seq, Seq2seq


def median_ms(fn, repeats):
    """:func:`benchmarks.seq2seq_speed.median_time` in ms."""
    return median_time(fn, repeats) * 1e3


def parts_ms(model_class, x, t, V, repeats) -> tuple:
    """``(half, by halves, clip, adam, iteration)`` in ms for a fresh model."""
    model, optimizer = model_class(V, 16, 128, seed=1), Adam()
    n = len(x) // 2
    half = median_ms(lambda: _forward_backward(model, x[:n], t[:n]), repeats)
    clip = median_ms(lambda: clip_grads(model.grads, 5.0), repeats)
    adam = median_ms(lambda: optimizer.update(model.params, model.grads), repeats)
    with batch_halves(model, x.shape, t.shape) as forward_backward:
        forward_backward(x, t)  # the helper started

        def iteration():
            forward_backward(x, t)
            clip_grads(model.grads, 5.0)
            optimizer.update(model.params, model.grads)

        whole = median_ms(lambda: forward_backward(x, t), repeats)
        it = median_ms(iteration, repeats)
    return half, whole, clip, adam, it


def step_pieces_us(repeats) -> tuple:
    """``(exp, product)`` in µs: float32 ``exp`` over 64 x 512 gates, and the
    64 x 128 x 512 recurrent product, on one core."""
    rng = np.random.default_rng(0)
    gates = rng.standard_normal((64, 512)).astype(np.float32)
    h = rng.standard_normal((64, 128)).astype(np.float32)
    Wh = rng.standard_normal((128, 512)).astype(np.float32)
    out = np.empty_like(gates)
    with managed():  # BLAS on one thread
        exp = median_ms(lambda: np.exp(gates, out=out), repeats * 10) * 1e3
        product = median_ms(lambda: np.matmul(h, Wh, out=out), repeats * 10) * 1e3
    return exp, product


def reference_ms(reference_class, x, t, V, repeats) -> float:
    """One iteration of the reference (forward, backward, clipping, Adam) in ms."""
    model, optimizer = reference_class(V, 16, 128, seed=1), ref.Adam(0.001)
    ref.fit(model, optimizer, x, t, BATCH, 5.0)  # warm-up
    return median_ms(lambda: ref.fit(model, optimizer, x, t, BATCH, 5.0), repeats)


@ends_on_interrupt
def main(argv=None) -> int:
    """Time the pieces and print them; return the exit status (0; 130 or 143
    when interrupted: the helper processes ended, one line); a usage error
    exits with 2. A reader of stdout that stops reading (``| head``), or a
    full disk under it, does not end it in a traceback
    (``common.cli.outputs_may_close``)."""
    with outputs_may_close():
        return results_status(_parts(argv))


def _parts(argv) -> int:
    """:func:`main`, its outputs taken care of."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seq2seq_parts",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--repeats", type=int, default=60, help="calls per figure (median)")
    args = parser.parse_args(argv)
    if problem := thread_count_problem():
        parser.error(problem)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    x_train, t_train, _, _, V = load_task("addition", reverse=True)
    x, t = x_train[:BATCH], t_train[:BATCH]
    print("model          half ms  by halves ms  clip ms  adam ms  iteration ms  target ms")
    for model_class, reference_class in ((Seq2seq, ref.Seq2seq),
                                         (PeekySeq2seq, ref.PeekySeq2seq)):
        half, whole, clip, adam, it = parts_ms(model_class, x, t, V, args.repeats)
        target = reference_ms(reference_class, x, t, V, args.repeats) / 2
        print(f"{model_class.__name__:<14} {half:7.2f}  {whole:12.2f}  {clip:7.3f}  "
              f"{adam:7.3f}  {it:12.2f}  {target:9.2f}")
    exp, product = step_pieces_us(args.repeats)
    print(f"one core: float32 exp over 64 x 512 gates {exp:.1f} us, "
          f"the 64 x 128 x 512 product {product:.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
