"""How fast rnnlab trains, against a floor, against PyTorch and against the textbook.

    python scripts/benchmark.py              # full run (a few minutes)
    python scripts/benchmark.py --quick      # short run (< 1 minute)
    python scripts/benchmark.py --json       # JSON on stdout, progress on stderr
    python scripts/benchmark.py --only char  # the machine and one section

Every figure of a comparison is measured in one process, as the median of
repeated runs, and reported as a ratio, so that a busy machine slows both
sides of a ratio alike. The sections, in order:

* the machine (:mod:`benchmarks.harness`);
* the word-level reference configuration, V = 10,000, D = H = 100, N = 20,
  T = 35: rnnlab's SimpleRnnlm and LSTM Rnnlm against the floor, a two-core
  bound and PyTorch, and where an iteration's time goes
  (:mod:`benchmarks.word_level`);
* the character-level configuration (V = 50, LSTM H = 128, 256, 512 and a
  GRU), where the recurrence dominates, against a two-core bound and
  PyTorch (:mod:`benchmarks.char_level`);
* the demo configuration against the textbook-style reference and the lean
  step (:mod:`benchmarks.demo`);
* ``eval_perplexity`` on PTB valid (:mod:`benchmarks.evaluation`);
* memory (:mod:`benchmarks.memory`);
* the sequence-to-sequence models against a textbook-style reference: one
  training epoch, and answering the 5,000 test pairs at once against one
  question per call (:mod:`benchmarks.seq2seq_speed`).

The exit status is 1 if the float64 check of the memory section fails, or
(with ``--check``) if any speed target is missed: a target of two forms
(the character level's LSTM rows: within a ratio to PyTorch, 1.8 at H =
128 and 1.5 above, or within 1.15 x the two-core bound) only when neither
form is met.
"""

import argparse
import contextlib
import json
import math
import os
import sys

import numpy as np

from benchmarks import harness
from benchmarks.char_level import char_level
from benchmarks.command_line import (
    data_dir_problem,
    ends_on_interrupt,
    load_ptb,
    thread_count,
    thread_setting_problem,
)
from benchmarks.contenders import N, T
from benchmarks.demo import demo
from benchmarks.evaluation import evaluation
from benchmarks.harness import Run, say
from benchmarks.memory import EPOCH_ITERATIONS, epoch_child, memory
from benchmarks.seq2seq_speed import CONFIGS as SEQ2SEQ_CONFIGS
from benchmarks.seq2seq_speed import run as seq2seq_run
from benchmarks.word_level import training_iteration, where_time_goes
from common.cli import at_least, outputs_may_close, results_status

SECTIONS = ("word", "char", "seq2seq")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and only a slice of the epoch (< 1 minute)")
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON on stdout (the report goes to stderr); a "
                        "figure that could not be measured is null")
    p.add_argument("--data-dir", default=None,
                   help="folder with the PTB files (default: $RNNLAB_PTB_DIR, else "
                        "<repo>/../shared/data/ptb where it holds them, else the user cache, "
                        "downloading if needed)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparisons")
    p.add_argument("--epoch-iters", type=at_least(0), default=None, metavar="N",
                   help="iterations of the memory section's run of RnnlmTrainer.fit; 0 runs a "
                        "full epoch (default: a full epoch; 20 with --quick). Only the full "
                        "benchmark has the memory section: not with --only")
    p.add_argument("--threads", type=thread_count, default=None, metavar="N",
                   help="set NumPy's BLAS threads (and torch's, which always follows them) "
                        "to N, from 1 to the machine's CPUs (default: leave BLAS as it is)")
    p.add_argument("--only", choices=SECTIONS, default=None,
                   help="run only this section (after the machine's): word (the word-level "
                        "rows and where their time goes), char (the character-level rows) or "
                        "seq2seq (the sequence-to-sequence models against the textbook-style "
                        "reference) (default: every section)")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 if a speed target is missed")
    p.add_argument("--_epoch-child", type=at_least(0), default=None, help=argparse.SUPPRESS)
    return p


def parse_args(argv=None, prog: str | None = None) -> argparse.Namespace:
    """The flags of ``argv``, every one checked: a bad value, a bad
    ``RNNLAB_NUM_THREADS`` or a missing ``--data-dir`` is a usage error."""
    p = build_parser(prog)
    args = p.parse_args(argv)
    if problem := thread_setting_problem():
        p.error(problem)
    if args.only is not None and args.epoch_iters is not None:
        p.error(f"--epoch-iters sets the run of the memory section, which --only "
                f"{args.only} leaves out: drop one of the two flags")
    if args.epoch_iters is not None and args.epoch_iters > EPOCH_ITERATIONS:
        p.error(f"--epoch-iters must be at most {EPOCH_ITERATIONS} (an epoch of PTB in "
                f"batches of {N} x {T}; 0 runs it whole), got {args.epoch_iters}")
    if problem := data_dir_problem(args.data_dir):
        p.error(problem)
    args.parser = p  # for the usage errors of loading PTB
    return args


@ends_on_interrupt
def main(argv=None, prog: str | None = None) -> int:
    """Run the benchmark; return the exit status (0, 1; 130 or 143 when
    interrupted); a usage error exits with 2. A reader of stdout that stops
    reading (``| head``), or a full disk under it, does not end the run in a
    traceback: it goes on printing to nobody, with one notice on stderr, to
    its exit status (``common.cli.outputs_may_close``)."""
    with outputs_may_close():
        return results_status(_benchmark(argv, prog))


def _benchmark(argv, prog) -> int:
    """:func:`main`, its outputs taken care of."""
    args = parse_args(argv, prog)
    data_dir = args.data_dir or harness.default_data_dir()
    if args.threads is not None and not harness.set_blas_threads(args.threads):
        print(f"could not set the BLAS threads to {args.threads}", file=sys.stderr)
        return 2
    if args._epoch_child is not None:
        epoch_child(data_dir, args._epoch_child)
        return 0
    # Before any section: PTB is there, or the run stops now with a usage error.
    splits = load_ptb(args.parser, ("train", "valid"), data_dir) if args.only in (
        None, "word") else None
    if args.json:  # stdout is for the JSON alone
        harness.report_to(sys.stderr)
    try:
        return run_sections(args, data_dir, splits)
    finally:
        harness.report_to(None)


def run_sections(args, data_dir, splits=None) -> int:
    """Run the sections ``args`` ask for; return the exit status (see :func:`summary`).
    ``splits``: PTB's train and valid corpora, loaded here when not given."""
    torch, missing = None, "--no-torch" if args.no_torch else None
    if not args.no_torch:
        try:
            import torch
        except Exception as exc:  # noqa: BLE001 (a broken install raises OSError, not ImportError)
            torch, missing = None, f"cannot be imported ({type(exc).__name__}: {exc})"
    run = Run(quick=args.quick, data_dir=data_dir, threads=args.threads, torch=torch,
              torch_missing=missing, results={"quick": args.quick})

    q = args.quick
    # Many short blocks, so that a change in the machine's load between
    # blocks falls on rnnlab and torch alike.
    blocks, rounds, warmup = (3, 3, 2) if q else (6, 5, 3)
    run.results["machine"] = harness.describe_machine(run, blocks, rounds, warmup)
    if args.only == "char":
        char_level(run, *((2, 2, 1) if q else (4, 4, 2)))
        return summary(run, args, True)
    if args.only == "seq2seq":
        seq2seq(run, q)
        return summary(run, args, True)
    if splits is None:
        from datasets import ptb

        splits = [ptb.load_data(split, data_dir=data_dir)[0] for split in ("train", "valid")]
    train, valid = splits
    xs, ts = train[:-1], train[1:]

    med, big = training_iteration(run, xs, ts, blocks, rounds, warmup)
    where_time_goes(run, med, big, xs, ts, *((3, 1) if q else (10, 2)))
    if args.only == "word":
        return summary(run, args, True)
    char_level(run, *((2, 2, 1) if q else (4, 4, 2)))
    demo(run, train, *((300, 50) if q else (3000, 300)))
    evaluation(run, big["rnn"][0], valid, runs=1 if q else 3)
    epoch_iters = args.epoch_iters if args.epoch_iters is not None else (20 if q else 0)
    f64_ok = memory(run, big, xs, ts, epoch_iters)
    seq2seq(run, q)
    return summary(run, args, f64_ok)


def seq2seq(run: Run, quick: bool) -> None:
    """The sequence-to-sequence section: epochs and evaluation against the reference."""
    say("\n== sequence to sequence (rnnlab vs the textbook-style reference)")
    options = argparse.Namespace(iters=3 if quick else 10, eval_questions=20 if quick else 200,
                                 repeats=1 if quick else 3, threads=None,
                                 models=[config[0] for config in SEQ2SEQ_CONFIGS])
    with contextlib.redirect_stdout(harness.report_stream()):  # its tables are the report's
        rows, eval_rows = seq2seq_run(options)
    run.results["seq2seq"] = {
        "epoch_seconds": {name: {"rnnlab": lib, "reference": ref, "two_core_bound": bound}
                          for name, _, lib, ref, bound in rows},
        "evaluation_seconds": {r[0]: {"batched": r[1], "reference_one_per_call": r[2]}
                               for r in eval_rows},
    }
    for name, _, lib, ref, _ in rows:
        run.target(f"{name} epoch: reference / rnnlab", ref / lib, 2.0, higher_is_better=True)
    for r in eval_rows:
        run.target(f"{r[0]} eval: one per call / batched", r[2] / r[1], 10.0,
                   higher_is_better=True)


def summary(run: Run, args, f64_ok: bool) -> int:
    """Print the targets; return the exit status. A target of several forms
    (:meth:`benchmarks.harness.Run.target`) is met when any one of them is."""
    met = run.targets_met()
    run.results["targets"] = run.targets
    run.results["targets_met"] = met
    run.results["machine"]["load_average_end"] = os.getloadavg()[0]
    say(f"\n== targets (load average at the end {os.getloadavg()[0]:.2f})")
    for name, forms in run.target_forms().items():
        if len(forms) == 1:
            say(f"  {target_line(forms[0], 'ok' if met[name] else 'MISSED')}")
            continue
        count = "two" if len(forms) == 2 else len(forms)
        say(f"  {name}: one target in {count} forms, met by any one of them: "
            f"{'ok' if met[name] else 'MISSED'}")
        for t in forms:  # (a form not met is no miss where another is met)
            say(f"    {target_line(t, 'met' if t['ok'] else 'not met')}")
    if args.only is None:  # the memory section checks it
        say(f"  {'no float64 logits array':28s} {'ok' if f64_ok else 'FAILED'}")
    # The targets against PyTorch, unmeasured where it cannot be imported: a
    # miss under --check (they passed unseen), not with --no-torch (asked for).
    unmeasured = run.torch is None and args.only in (None, "word", "char")
    torch_missed = unmeasured and run.torch_missing != "--no-torch"
    if unmeasured:
        say(f"  the targets against PyTorch: not measured (torch {run.torch_missing})"
            + (": MISSED" if torch_missed else ""))
        run.results["targets_unmeasured"] = f"torch {run.torch_missing}"
    if args.json:
        print(json.dumps(strict_json(run.results), indent=2, allow_nan=False))
    if not f64_ok:
        return 1
    if args.check and (not all(met.values()) or torch_missed):
        return 1
    return 0


def target_line(t: dict, verdict: str) -> str:
    """One recorded target (or form of one) as a line of the summary."""
    sign = ">=" if t["higher_is_better"] else "<="
    return f"{t['name']:28s} {t['value']:7.3f}  {sign} {t['target']}  {verdict}"


def strict_json(value):
    """``value`` with NumPy's numbers made Python's, and every NaN or infinity
    None: strict JSON (``null``) has no NaN, and parsers other than Python's
    refuse it."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value
