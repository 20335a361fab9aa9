"""Train a recurrent language model with truncated BPTT and plot its perplexity.

With no arguments it runs the classic demo: SimpleRnnlm on the first 1,000
words of Penn Treebank, batch 10, time 5, D = H = 100, SGD lr 0.1, 100
epochs, perplexity curve in ppl.png (a few seconds on a laptop).

    python scripts/train_rnnlm.py                                   # the demo
    python scripts/train_rnnlm.py --corpus-size 0 --epochs 1 \\
        --batch-size 20 --time-size 35 --eval                       # full PTB
    python scripts/train_rnnlm.py --text-file book.txt --level char # any text, all of it

Everything is checked before training starts: the values of the flags, the
data source, the output paths and the memory the run needs. Ctrl-C,
SIGTERM or SIGHUP (the terminal closed) stop at an iteration boundary,
write the checkpoint, the model and the plot, and exit with 130 (Ctrl-C),
143 (SIGTERM) or 129 (SIGHUP); usage errors exit with 2, a diverged run or
one out of memory with 1.
"""

import argparse
import math
import os
import re
import shlex
import sys
import time

import numpy as np

# Running "python scripts/train_rnnlm.py" from a clone puts scripts/ (not the
# repository) on sys.path; make the packages importable without installing.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from common import optimizer as optimizers  # noqa: E402
from common.checkpoint import read_checkpoint  # noqa: E402
from common.cli import (  # noqa: E402
    HelpFormatter,
    add_on_nan_argument,
    at_least,
    checkpoint_problem,
    damaged_settings_problem,
    disk_space_problem,
    drawing_problem,
    empty_flag_problem,
    explicit_dests,
    flag,
    moved_checkpoint_notice,
    none_or,
    output_flags_problem,
    outputs_may_close,
    overflow_left_to_the_guard,
    pickle_name_problem,
    plot_path,
    printable,
    ptb_message_in_flag_words,
    recorded_paths,
    resumed_checkpoint_words,
    run_holding_checkpoint,
    same_setting,
    save_over_problem,
    skipped_batches_notice,
    user_path,
    write_if_memory_left,
)
from common.file_access import is_terminal, unreachable_words  # noqa: E402
from common.memory import (  # noqa: E402
    GATES,
    TEXT_BYTES_PER_BYTE,
    NotEnoughMemory,
    available_bytes,
    check_memory,
    estimate_training_bytes,
    language_model_shapes,
    may_split,
    reading_problem,
    text_reading_error,
)
from common.parallel import thread_count_problem  # noqa: E402
from common.rescue import rescue_words, save_or_rescue  # noqa: E402
from common.serialization import (  # noqa: E402
    NOTHING_READ_SHA256,
    file_sha256,
    ids_sha256,
    load_npz_meta,
)
from common.trainer import (  # noqa: E402
    CheckpointWriteError,
    RnnlmTrainer,
    TrainingDiverged,
    TrainingInterrupted,
    TrainingOutOfMemory,
)
from common.training_guards import DeferredTerminate, HeldInterrupt, stopped_at  # noqa: E402
from common.util import eval_perplexity  # noqa: E402
from datasets import ptb, synthetic, text  # noqa: E402
from models import MODELS, build_model  # noqa: E402
from models.better_rnnlm import MAX_FILE_LAYERS  # noqa: E402

# The classes of the runs this script can resume.
LANGUAGE_MODELS = {cls.__name__ for cls in MODELS.values()}
OPTIMIZERS = {
    "sgd": optimizers.SGD,
    "momentum": optimizers.Momentum,
    "adagrad": optimizers.AdaGrad,
    "rmsprop": optimizers.RMSprop,
    "adam": optimizers.Adam,
}

FLOAT32_MAX = float(np.finfo(np.float32).max)
# Settings a checkpoint records that define the run: --resume refuses
# other values. The others recorded (learning rate, schedules, outputs ...)
# may be changed on resuming; the new value is used and announced.
FIXED_ON_RESUME = ("corpus", "text_file", "level", "corpus_size", "model", "wordvec_size",
                   "hidden_size", "num_layers", "dropout", "no_tie", "batch_size", "time_size",
                   "optimizer", "eval_interval", "seed", "init_scale")
NOT_RECORDED = ("resume", "checkpoint", "overwrite", "quiet", "ignore_memory_check", "data_dir",
                "run_lr_halve_from", "moved_text")
# Recorded as absolute paths: a run resumed from another folder reads and writes the same files.
RECORDED_PATHS = ("text_file", "save", "plot")


class UsageError(Exception):
    """A mistake on the command line: printed as ``error: ...``, exit 2."""


def build_parser(description=None, defaults=None):
    """The parser; a reproduction script passes its own description and defaults."""
    p = argparse.ArgumentParser(
        description=description or "Train a recurrent language model (truncated BPTT) and plot "
                                   "its perplexity.",
        formatter_class=HelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument("--corpus", choices=["ptb", "synthetic", "text"], default=None,
                      help="training corpus; the synthetic corpus replaces PTB, with a "
                           "notice, only when no source was named and PTB cannot be found or "
                           "downloaded (default: none, which means ptb, or text when "
                           "--text-file is given)")
    data.add_argument("--data-dir", type=user_path, default=None,
                      help="folder holding ptb.train.txt, ptb.valid.txt, ptb.test.txt "
                           "(default: $RNNLAB_PTB_DIR, else the user cache, else a download)")
    data.add_argument("--text-file", type=user_path, default=None,
                      help="UTF-8 text file to train on; implies --corpus text (default: "
                           "none)")
    data.add_argument("--level", choices=["word", "char"], default="word",
                      help="tokens of --corpus text (PTB and synthetic are word level)")
    data.add_argument("--corpus-size", type=int, default=None,
                      help="train on the first N tokens only, 0 = all (default: 1000 of PTB "
                           "or the synthetic corpus, the demo; all of a --text-file)")
    model = p.add_argument_group("model")
    model.add_argument("--model", choices=["simple", "lstm", "gru", "better"], default="simple",
                       help="simple: SimpleRnnlm; lstm: Rnnlm; gru: GruRnnlm; better: BetterRnnlm")
    model.add_argument("--wordvec-size", type=int, default=100, help="embedding size D")
    model.add_argument("--hidden-size", type=int, default=100, help="hidden size H")
    model.add_argument("--num-layers", type=at_least(1, MAX_FILE_LAYERS), default=2,
                       help=f"LSTM layers of --model better (at most {MAX_FILE_LAYERS:,}, "
                            f"what a saved model may have)")
    model.add_argument("--dropout", type=float, default=0.5,
                       help="dropout ratio of --model better, in [0, 1)")
    model.add_argument("--no-tie", action="store_true",
                       help="--model better: separate output weights (else tied when D == H)")
    # (No default of its own: --no-tie's is the flag's, shown there.)
    tie = model.add_argument("--tie", dest="no_tie", action="store_false",
                             default=argparse.SUPPRESS,
                             help="--model better: the output weights tied to the embedding "
                                  "when D == H, undoing a --no-tie of the defaults (default: "
                                  "as --no-tie's says)")
    model.add_argument("--init-scale", type=none_or(float), default=None,
                       help="uniform init in +-scale; 'none': the model's own (default: the "
                            "model's own init)")
    train = p.add_argument_group("training")
    train.add_argument("--batch-size", type=int, default=10, help="lanes of truncated BPTT")
    train.add_argument("--time-size", type=int, default=5, help="truncated BPTT length")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd",
                       help="update rule")
    train.add_argument("--lr", type=float, default=0.1,
                       help="learning rate; with --resume a new value is used from there on")
    train.add_argument("--epochs", type=int, default=100,
                       help="epochs in all (with --resume: the run's total, counting those done)")
    # 'none' for each option that is off by default: a reproduction's defaults turn some on.
    train.add_argument("--max-grad", type=none_or(float), default=None,
                       help="clip the global gradient norm to this; 'none': no clipping "
                            "(default: no clipping)")
    train.add_argument("--clip-value", type=none_or(float), default=None,
                       help="clip every gradient element to +-this, as min-char-rnn does; "
                            "'none': no clipping (default: no clipping)")
    train.add_argument("--lr-decay", type=none_or(float), default=None,
                       help="divide lr by this (> 1) when validation perplexity does not "
                            "improve; implies --val; 'none': no decay (default: no decay)")
    train.add_argument("--lr-halve-from", type=none_or(int), default=None,
                       help="halve lr before every epoch from this epoch on (Zaremba et al.); "
                            "'none': never (default: never)")
    train.add_argument("--patience", type=none_or(int), default=None,
                       help="stop after this many epochs without improvement; implies --val; "
                            "'none': no early stopping (default: no early stopping)")
    # --no-val, --no-eval: a reproduction's defaults turn them on.
    train.add_argument("--val", action=argparse.BooleanOptionalAction, default=False,
                       help="validation perplexity after every epoch; keep the best model")
    train.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    add_on_nan_argument(train)
    train.add_argument("--eval-interval", type=int, default=20,
                       help="record the training perplexity every N iterations")
    out = p.add_argument_group("output")
    out.add_argument("--plot", type=plot_path, default="ppl.png",
                     help="where to write the perplexity plot; its suffix names the format "
                          "(.png, .pdf, .svg); 'none': no plot")
    out.add_argument("--save", type=user_path, default=None,
                     help="save the model parameters and vocabulary (.npz) (default: not saved)")
    out.add_argument("--eval", action=argparse.BooleanOptionalAction, default=False,
                     help="valid and test perplexity at the end")
    out.add_argument("--checkpoint", type=user_path, default=None,
                     help="write a resumable checkpoint (.npz) here during training "
                          "(default: none)")
    out.add_argument("--checkpoint-every", type=int, default=None,
                     help="checkpoint every N iterations (default: every epoch)")
    out.add_argument("--resume", type=user_path, default=None,
                     help="continue the run of this checkpoint, with its settings "
                          "(default: a fresh run)")
    out.add_argument("--overwrite", action="store_true",
                     help="let a fresh run replace an existing --checkpoint file (and "
                          "--save a file that is a checkpoint, or any other file than a "
                          "saved model; --plot any file but a plot)")
    out.add_argument("--log-every", type=int, default=None,
                     help="when stdout is not a terminal, a progress line every N iterations "
                          "(default: about 10 an epoch for epochs of 100+ iterations; 0: none)")
    out.add_argument("--ignore-memory-check", action="store_true",
                     help="train even when the memory estimate exceeds the available memory")
    out.add_argument("--quiet", action="store_true", help="no progress output")
    if defaults:
        p.set_defaults(**defaults)
        tie.default = argparse.SUPPRESS
        for action in p._actions:
            if action.dest in defaults and action.help and action is not tie:
                # The words "(default: ...)" describe this script's defaults; a
                # reproduction's own value is shown instead (HelpFormatter).
                action.help = re.sub(r" ?\(default: [^)]*\)", "", action.help)
    return p


def parse_args(argv=None, description=None, defaults=None):
    """``(args, explicit)``: the values, and the names given on the command line."""
    p = build_parser(description, defaults)
    args = p.parse_args(argv)
    args.text_sha256 = None  # of a --text-file; recorded by a run, checked on resume
    args.text_ids_sha256 = None  # of the token ids and vocabulary it gave; checked too
    args.run_lr_halve_from = None  # the resumed run's, read from its checkpoint
    args.moved_text = False  # resumed with the run's text named in another place
    if problem := thread_count_problem():
        p.error(problem)
    explicit = explicit_dests(build_parser(description), argv)
    try:
        check_args(args, explicit)
    except UsageError as exc:
        p.error(str(exc))
    return args, explicit


def check_args(args, explicit=()):
    """Every value in range, and no conflicting flags; raises UsageError."""
    positive = ("batch_size", "time_size", "epochs", "wordvec_size", "hidden_size", "num_layers",
                "eval_interval", "checkpoint_every", "patience")
    for name in positive:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{flag(name)} must be at least 1, got {value}")
    if args.lr_halve_from is not None and args.lr_halve_from < 2:
        raise UsageError(f"--lr-halve-from must be at least 2 (epoch 1 runs at --lr; give a "
                         f"lower --lr to start lower), got {args.lr_halve_from}")
    for name in ("corpus_size", "log_every", "seed"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise UsageError(f"{flag(name)} must be >= 0, got {getattr(args, name)}")
    for name in ("lr", "max_grad", "clip_value", "init_scale"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag(name)} must be a number > 0, got {value}")
    if args.init_scale is not None and args.init_scale > FLOAT32_MAX:
        raise UsageError(f"--init-scale must be at most {FLOAT32_MAX:.3g} (the largest float32 "
                         f"weight), got {args.init_scale}")
    if args.lr_decay is not None and not (math.isfinite(args.lr_decay) and args.lr_decay > 1):
        raise UsageError(f"--lr-decay must be a number > 1 (lr is divided by it), got "
                         f"{args.lr_decay}")
    if not (0 <= args.dropout < 1):
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if "val" in explicit and not args.val:
        for name in ("patience", "lr_decay"):
            if getattr(args, name):
                raise UsageError(f"{flag(name)} validates every epoch, which --no-val turns "
                                 f"off: drop --no-val, or give {flag(name)} none")
    _check_corpus_flags(args, explicit)


def _check_corpus_flags(args, explicit):
    if problem := empty_flag_problem(args, {"text_file": "a text file",
                                            "data_dir": "the PTB folder",
                                            "save": "the model's file",
                                            "checkpoint": "the checkpoint's file",
                                            "resume": "the checkpoint to resume"}):
        raise UsageError(problem)
    if args.text_file and "corpus" not in explicit:
        args.corpus = "text"  # --text-file alone means: train on that file (whatever the default)
    if args.text_file and args.corpus in ("ptb", "synthetic"):
        raise UsageError(f"--text-file is read only with --corpus text, not --corpus "
                         f"{args.corpus}")
    if args.corpus == "text" and not args.text_file:
        raise UsageError("--corpus text needs --text-file")
    if args.corpus_size is None:
        # The demo trains on the first 1,000 words of PTB; a user's own text is read whole.
        args.corpus_size = 0 if args.corpus == "text" else 1000
    if args.level == "char" and args.corpus != "text" and "level" in explicit:
        raise UsageError("--level char needs a text file (--text-file F); PTB and the "
                         "synthetic corpus are word level")
    if args.data_dir is not None and args.corpus in ("synthetic", "text"):
        raise UsageError(f"--data-dir names the PTB folder; it has no use with --corpus "
                         f"{args.corpus}")
    if args.checkpoint_every is not None and not (args.checkpoint or args.resume):
        raise UsageError("--checkpoint-every needs --checkpoint FILE to write the checkpoints "
                         "to")


def ignored_flags_notices(args, explicit):
    """Notices for flags given on the command line that the run does not use."""
    notices = []
    for name in ("num_layers", "dropout", "no_tie"):
        if name in explicit and _unused_by_the_run(name, vars(args)):
            given = _flag_given(name, getattr(args, name))
            notices.append(
                f"notice: {given} is used only by --model better; --model {args.model} "
                f"ignores it" if args.model != "better" else
                f"notice: {given} changes nothing where --wordvec-size differs from "
                f"--hidden-size (such a model is never tied)")
    if "overwrite" in explicit and not (args.checkpoint or args.save or args.plot):
        notices.append("notice: --overwrite concerns only a --checkpoint file (and a --save "
                       "file that is a checkpoint, a --plot file that is not a plot); none is "
                       "written")
    if args.quiet and args.log_every and "log_every" in explicit:
        notices.append("notice: --quiet turns off the progress lines of --log-every")
    elif "log_every" in explicit and sys.stdout.isatty():
        notices.append("notice: --log-every writes lines only when stdout is not a terminal; "
                       "here a progress bar shows the progress")
    return notices


# -- resuming -----------------------------------------------------------------------------


def settings_of(args):
    """The run's settings, recorded in its checkpoints."""
    # A run resumed from another folder must find the same file, and write
    # its outputs where it began.
    return recorded_paths({k: v for k, v in vars(args).items() if k not in NOT_RECORDED},
                          RECORDED_PATHS, args.checkpoint)


def apply_checkpoint_settings(args, explicit):
    """Take the settings of ``--resume``'s checkpoint for every flag not given;
    refuse flags that would change the run; announce changed ones."""
    try:
        _, meta = read_checkpoint(args.resume)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot resume: {exc}") from None
    if meta.get("model") not in LANGUAGE_MODELS:
        raise UsageError(f"--resume {args.resume} is the checkpoint of a run of "
                         f"{meta.get('model')}, not of a language model: resume it with the "
                         f"script that wrote it (scripts/train_seq2seq.py for a "
                         f"sequence-to-sequence model)")
    recorded = meta.get("settings")
    if not isinstance(recorded, dict):
        return []  # an older checkpoint: the flags as given
    if problem := damaged_settings_problem(recorded, build_parser()):
        raise UsageError(f"cannot resume: {args.resume}: {problem}")
    notices = []
    # (resume() halves the rate once for a --lr-halve-from new to the run.)
    args.run_lr_halve_from = recorded.get("lr_halve_from")
    for name, value in recorded.items():
        if not hasattr(args, name):
            continue
        if name not in explicit:
            setattr(args, name, value)
        elif same_setting(name, getattr(args, name), value, RECORDED_PATHS):
            if name == "lr":  # the run's own: its schedule's rate goes on, not this again
                explicit.discard(name)
            continue
        elif _unused_by_the_run(name, recorded):
            continue  # (ignored_flags_notices says so)
        elif name == "text_file" and value is not None and recorded.get("text_ids_sha256"):
            # The run's text moved: read it from its new place. load_corpus
            # refuses it unless its bytes and token ids are the run's.
            notices.append(f"notice: the run's text is read from {getattr(args, name)} "
                           f"instead of {value}; it must be the same text (checked)")
            args.moved_text = True
        elif name in FIXED_ON_RESUME:
            # (--init-scale only draws the first weights: on resuming it changes nothing.)
            run = f"no {flag(name)}" if value is None else _as_given(name, value)
            raise UsageError(f"{_as_given(name, getattr(args, name))} differs from the run "
                             f"in {args.resume} ({run}); drop the flag to continue that run, or "
                             "start a new one")
        elif name not in ("epochs", "lr"):
            notices.append(f"notice: {_as_given(name, getattr(args, name))} replaces the "
                           f"checkpoint's {_as_given(name, value)} from here on")
    if notice := moved_checkpoint_notice(args.resume, recorded, ("save", "plot"), explicit):
        notices.append(notice)
    return notices


def _unused_by_the_run(name, recorded) -> bool:
    """Whether the setting ``name`` changes nothing in the run of the settings
    ``recorded`` (a checkpoint's, or this command line's): layers, dropout
    and tying of a model other than --model better, and tying where the
    embedding and the hidden state differ in size."""
    if name in ("num_layers", "dropout", "no_tie") and recorded.get("model") != "better":
        return True
    return name == "no_tie" and recorded.get("wordvec_size") != recorded.get("hidden_size")


def _shown(value):
    """A setting as a command line gives it: None (no plot, no file) as 'none'."""
    return "none" if value is None else value


# The switches that come in pairs: each value is said as the flag that gives it.
SWITCH_PAIRS = {"no_tie": ("--no-tie", "--tie"), "val": ("--val", "--no-val"),
                "eval": ("--eval", "--no-eval")}


def _flag_given(name, value):
    """The flag that gives the setting ``name`` its ``value``: ``--max-grad``;
    of a pair of switches, the one (``--tie`` for ``no_tie`` False)."""
    if name in SWITCH_PAIRS and isinstance(value, bool):
        return SWITCH_PAIRS[name][0 if value else 1]
    return flag(name)


def _as_given(name, value):
    """A setting as the command line that gives it: ``--max-grad 0.25``,
    ``--max-grad none``, ``--tie`` (for ``no_tie`` False), ``--no-val``."""
    if name in SWITCH_PAIRS and isinstance(value, bool):
        return _flag_given(name, value)
    return f"{flag(name)} {_shown(value)}"


# -- before training: paths, data, memory ----------------------------------------------------


def check_output_paths(args, explicit=()):
    """--save, --plot and --checkpoint: files we can write, before training."""
    examples = {"save": "model.npz", "plot": "ppl.png", "checkpoint": "model.npz"}
    # The checkpoint a run resumes from is also where it goes on checkpointing.
    if problem := output_flags_problem(args, examples, inputs=("text_file", "resume"),
                                       may_replace=(("checkpoint", "resume"),)):
        raise UsageError(resumed_checkpoint_words(problem, args, explicit))
    if problem := (pickle_name_problem(args, ("save", "checkpoint"))
                   or drawing_problem(args, ("plot",))
                   or ptb_output_problem(args, examples)):
        raise UsageError(problem)
    if problem := checkpoint_problem(args.checkpoint, args.resume, args.overwrite):
        raise UsageError(problem)
    if problem := save_over_problem(args.save, args.overwrite):
        raise UsageError(problem)


def ptb_output_problem(args, outputs):
    """Why an output of ``outputs`` (destinations) would replace one of the PTB
    files the run reads from ``--data-dir`` or ``$RNNLAB_PTB_DIR``, or None."""
    folder = args.data_dir or os.environ.get("RNNLAB_PTB_DIR")
    if args.corpus not in (None, "ptb") or not folder:
        return None
    where = f"--data-dir {folder}" if args.data_dir else f"$RNNLAB_PTB_DIR ({folder})"
    data = {os.path.realpath(os.path.join(folder, name)) for name in ptb.FILES.values()}
    for dest in outputs:
        path = getattr(args, dest, None)
        if path and os.path.realpath(path) in data:
            return (f"{flag(dest)} {path} is a PTB file of {where}, which the run reads: "
                    f"writing it would destroy the data; give another name")
    return None


def load_corpus(args):
    """Returns (train, valid, test, word_to_id, id_to_word, name)."""
    corpus = args.corpus or "ptb"
    if corpus == "ptb":
        loaded = _load_ptb(args)
        if loaded is not None:
            return loaded
        corpus = "synthetic"
    if corpus == "synthetic":
        train, w2i, i2w = synthetic.load_data("train")
        valid = synthetic.load_data("valid")[0]
        test = synthetic.load_data("test")[0]
        return train, valid, test, w2i, i2w, "synthetic"
    if args.resume and is_terminal(args.text_file):
        # (/dev/stdin typed at: it would wait, silently, for the text to be typed.)
        raise UsageError(f"{args.text_file} is a terminal: the run in {args.resume} read its "
                         f"text from a pipe; pipe the same text in again to resume it (cat "
                         f"FILE | python scripts/train_rnnlm.py --resume {args.resume})")
    try:
        _check_text_fits(args)
        full, w2i, i2w = text.load_data(args.text_file, level=args.level)
        # A pipe (/dev/stdin, <(...)) is drained by now, so its bytes cannot be
        # hashed again; the token ids and vocabulary it gave are checked anyway.
        sha256 = file_sha256(args.text_file) if os.path.isfile(args.text_file) else None
        ids_digest = ids_sha256([full], [i2w[i] for i in range(len(i2w))])
        if args.resume and (
            sha256 is not None and args.text_sha256 not in (None, NOTHING_READ_SHA256, sha256)
            or args.text_ids_sha256 not in (None, ids_digest)
        ):
            what = ("is not the text the run began with" if args.moved_text
                    else "has changed since the run began")
            raise UsageError(f"cannot resume: {args.text_file} {what} "
                             f"(its SHA-256 differs), and the run's token ids follow its "
                             f"{_tokens(args)}; "
                             f"restore the file, or start a new run")
        args.text_sha256, args.text_ids_sha256 = sha256, ids_digest
        try:
            train, valid, test = text.split_corpus(full)
        except ValueError as exc:  # a text too short to split
            hint = ("; --level char makes a token of each character" if args.level == "word"
                    else "")
            raise UsageError(f"--text-file {args.text_file}: {exc}{hint}") from None
    except FileNotFoundError as exc:
        if args.resume:  # the path came from the checkpoint, not from the user
            raise UsageError(f"the text file of the run in {args.resume}, {args.text_file}, is "
                             "gone (moved or deleted?): put it back there, or give its new "
                             "place with --text-file, to resume the run; or start a new one"
                             ) from None
        raise UsageError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except MemoryError:  # past --ignore-memory-check, or an estimate too low for this text
        raise UsageError(text_reading_error("--text-file", args.text_file)) from None
    return train, valid, test, w2i, i2w, printable(os.path.basename(args.text_file))


def _check_text_fits(args):
    """Refuse a text too large to read into the memory available, before reading it."""
    if args.ignore_memory_check or not os.path.isfile(args.text_file):
        return
    # A part that fits, cut by bytes; iconv -c drops the character cut in two at the end.
    if problem := reading_problem(
            "--text-file", args.text_file, TEXT_BYTES_PER_BYTE, available_bytes(),
            "each token is a Python object until it is an id",
            f"train on a part of the file that fits (--corpus-size still reads all of it), "
            f"e.g. head -c {{fits}} {shlex.quote(args.text_file)} "
            f"| iconv -c -f utf-8 -t utf-8 > part.txt"):
        raise UsageError(problem)


def _load_ptb(args):
    """PTB's splits; None when PTB cannot be had and the synthetic corpus may replace it."""
    named = _named_ptb_source(args)
    source_error = getattr(ptb, "DataSourceError", ())  # a named source that failed
    try:
        train, w2i, i2w = ptb.load_data("train", data_dir=args.data_dir)
        valid = ptb.load_data("valid", data_dir=args.data_dir)[0]
        test = ptb.load_data("test", data_dir=args.data_dir)[0]
        return train, valid, test, w2i, i2w, "PTB"
    except source_error as exc:
        raise UsageError(ptb_message_in_flag_words(str(exc))) from None
    except ptb.DataNotFoundError as exc:
        if named or args.corpus == "ptb":
            raise UsageError(ptb_message_in_flag_words(str(exc))) from None
        # A download from the server $RNNLAB_PTB_URL names: named too, so its
        # error, not the demo's corpus.
        if ptb.env_urls():
            raise UsageError(
                f"{ptb_message_in_flag_words(str(exc))}\nStopped rather than training on the "
                f"synthetic corpus: {ptb.ENV_URL} names the server to download PTB from; "
                f"unset it, or pass --corpus synthetic, for the synthetic corpus") from None
        first_line = str(exc).splitlines()[0]
        print(f"notice: Penn Treebank is not available ({first_line}).\n"
              "notice: training on the built-in synthetic corpus instead; pass --data-dir "
              "or set RNNLAB_PTB_DIR to use PTB.", file=sys.stderr)
        return None


def _named_ptb_source(args):
    """The PTB folder the user named (--data-dir or $RNNLAB_PTB_DIR), checked; or None."""
    if args.data_dir is not None:
        named, how = args.data_dir, f"--data-dir {args.data_dir}"
    elif os.environ.get(ptb.ENV_DIR):
        named, how = os.environ[ptb.ENV_DIR], f"{ptb.ENV_DIR}={os.environ[ptb.ENV_DIR]}"
    else:
        return None
    if not os.path.isdir(named):
        what = ("a file, not a folder" if os.path.exists(named) else
                unreachable_words(named) or "no such folder")
        raise UsageError(f"{how}: {what} (give the folder that holds ptb.train.txt, "
                         "ptb.valid.txt, ptb.test.txt)")
    return named


def check_corpus_size(args, n_positions):
    if n_positions < args.batch_size * args.time_size:
        size = f"--corpus-size {args.corpus_size} leaves" if args.corpus_size else "the corpus has"
        raise UsageError(f"{size} {n_positions} training positions, fewer than one batch of "
                         f"--batch-size {args.batch_size} x --time-size {args.time_size} = "
                         f"{args.batch_size * args.time_size}; use a smaller --batch-size or "
                         "--time-size, or more data")


def check_memory_of_run(args, vocab_size):
    tied = args.model == "better" and not args.no_tie and args.wordvec_size == args.hidden_size
    shapes = language_model_shapes(args.model, vocab_size, args.wordvec_size, args.hidden_size,
                                   args.num_layers, tied)
    g = GATES[args.model]
    # The held-out text is scored 10 rows x 35 steps at a time (eval_perplexity).
    held_out = args.eval or args.val or args.lr_decay or args.patience
    # BetterRnnlm's dropout draws masks, which the helper cannot replicate.
    replicable = not (args.model == "better" and args.dropout > 0)
    estimate = estimate_training_bytes(
        shapes, args.batch_size, args.time_size, OPTIMIZERS[args.optimizer].__name__,
        eval_rows=10 * 35 if held_out else 0,
        halves=may_split(args.batch_size, (args.hidden_size, g * args.hidden_size),
                         replicable=replicable))
    try:
        check_memory(estimate, available_bytes(estimate),
                     hint="; use a smaller --hidden-size, --wordvec-size or --batch-size, or "
                          "pass --ignore-memory-check to try anyway")
    except NotEnoughMemory as exc:
        raise UsageError(str(exc)) from None


# -- the run ------------------------------------------------------------------------------------


def prepare(args, explicit):
    """Everything before training; returns (trainer, data, notices)."""
    notices = apply_checkpoint_settings(args, explicit) if args.resume else []
    if args.resume:
        # A resumed run keeps checkpointing to the file it came from.
        args.checkpoint = args.checkpoint or args.resume
        check_args(args, explicit)
    check_output_paths(args, explicit)
    train, valid, test, word_to_id, id_to_word, name = load_corpus(args)
    # Record the corpus actually used: a resumed run never switches silently.
    args.corpus = {"PTB": "ptb", "synthetic": "synthetic"}.get(name, "text")
    if args.corpus_size:
        train = train[:args.corpus_size]
    check_corpus_size(args, len(train) - 1)
    # A small demo corpus uses only the ids it contains (like the textbook);
    # evaluating on held-out text needs the whole vocabulary.
    own_words = int(train.max()) + 1
    held_out = [flag(n) for n in ("eval", "val", "lr_decay", "patience") if getattr(args, n)]
    vocab_size = len(word_to_id) if held_out or not args.corpus_size else own_words
    if args.resume:  # the model of the run, whatever the flags would choose now
        vocab_size = resumed_vocab_size(args, vocab_size, len(word_to_id), held_out)
    elif held_out and args.corpus_size and vocab_size > own_words:
        tokens = _tokens(args)
        notices.append(f"notice: {_scoring(held_out)} held-out text, so the model "
                       f"has the whole vocabulary ({vocab_size:,} {tokens}), not the "
                       f"{own_words:,} up to the largest id of the first --corpus-size "
                       f"{args.corpus_size:,} {tokens}")
    if not args.ignore_memory_check:
        check_memory_of_run(args, vocab_size)
    try:
        model = build_model(args.model, vocab_size, wordvec_size=args.wordvec_size,
                            hidden_size=args.hidden_size, num_layers=args.num_layers,
                            dropout=args.dropout, init_scale=args.init_scale, seed=args.seed,
                            tie_weights=False if args.no_tie else None)
    except (MemoryError, ValueError) as exc:  # past --ignore-memory-check ("array is too big")
        detail = f" ({exc})" if isinstance(exc, ValueError) else ""
        raise UsageError(f"not enough memory for the model's weights (--hidden-size "
                         f"{args.hidden_size}, --wordvec-size {args.wordvec_size}, vocabulary "
                         f"{vocab_size:,}){detail}; use smaller sizes") from None
    trainer = RnnlmTrainer(model, OPTIMIZERS[args.optimizer](lr=args.lr))
    # (Validating, the run keeps the best epoch's parameters, and the last's once
    # fit puts the best back.)
    validates = bool(args.val or args.lr_decay or args.patience)
    iterations = (len(train) - 1) // (args.batch_size * args.time_size) * args.epochs
    if problem := disk_space_problem(trainer, args.save, args.checkpoint, id_to_word,
                                      kept_copies=2 * validates,
                                      checkpoint_every=args.checkpoint_every,
                                      iterations=iterations):
        raise UsageError(problem)
    trainer.settings = settings_of(args)
    # (At character level the perplexity is per character: the title says so.)
    level = " characters" if args.corpus == "text" and args.level == "char" else ""
    trainer.title = (f"{type(model).__name__} (D={args.wordvec_size}, H={args.hidden_size}) on "
                     f"{name}{level}, batch {args.batch_size} x time {args.time_size}, "
                     f"{args.optimizer} lr {args.lr:g}")
    idle = None
    if args.resume:
        resume(trainer, args, explicit, notices)
        if idle := nothing_to_train(trainer, args):
            notices.append(idle)
            # A finished run's model is its best epoch's where its last call validated
            # (fit puts it back before its last checkpoint; a call that validated
            # nothing keeps what it trained); one whose end was cut short (no memory,
            # a kill) holds the last epoch's, and its best ones are what it would
            # have saved.
            if trainer.best_params is not None and trainer.last_epoch_validated():
                trainer.model.set_named_params(trainer.best_params, source="the best parameters")
    notices += ignored_flags_notices(args, explicit)
    data = dict(train=train, valid=valid, test=test, id_to_word=id_to_word, name=name,
                vocab_size=vocab_size, idle=bool(idle))
    return trainer, data, notices


def _scoring(flags):
    """``'--val scores'``, ``'--val and --eval score'``."""
    return " and ".join(flags) + (" scores" if len(flags) == 1 else " score")


def _tokens(args) -> str:
    """What the run's tokens are called: characters at character level, else words."""
    return "characters" if args.corpus == "text" and args.level == "char" else "words"


def resumed_vocab_size(args, vocab_size, whole, held_out):
    """The vocabulary size of the model in ``--resume``'s checkpoint (read from its
    metadata); refused when the flags ``held_out`` need more words than it has."""
    try:
        recorded = int(load_npz_meta(args.resume)["config"]["vocab_size"])
    except (ValueError, OSError, KeyError, TypeError):
        return vocab_size  # trainer.resume says what is wrong with the file
    if held_out and recorded < whole:
        tokens = _tokens(args)
        raise UsageError(f"{_scoring(held_out)} held-out text, which needs the whole "
                         f"vocabulary ({whole:,} {tokens}), but the run in {args.resume} was "
                         f"built on the {recorded:,} {tokens} of its --corpus-size {tokens}: drop "
                         f"{' and '.join(held_out)} to continue it, or start a new run with "
                         f"them")
    return recorded


def nothing_to_train(trainer, args) -> str | None:
    """The notice of a resumed run that has nothing left to train (then the
    checkpoint stays as it is), or None: it has reached ``--epochs``, or it
    ended by early stopping, which its count of epochs without improvement
    still says under ``--patience``."""
    if trainer.epochs_to_reach(args.epochs) == 0:
        return (f"notice: the run in {args.resume} has reached --epochs {args.epochs} "
                f"already, so nothing is trained; give a larger --epochs (the run's total) to "
                f"go on")
    if (args.patience and trainer.iteration == 0 and trainer.bad_epochs >= args.patience
            and trainer.history["val_ppl"]):
        n = trainer.bad_epochs
        return (f"notice: the run in {args.resume} stopped early after epoch {trainer.epoch} "
                f"({n} epoch{'s' if n != 1 else ''} without a better validation perplexity, "
                f"--patience {args.patience}), so nothing is trained; give a larger --patience "
                f"to go on")
    return None


def resume(trainer, args, explicit, notices):
    try:
        trainer.resume(args.resume)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot resume: {exc}") from None
    except MemoryError:
        raise UsageError(f"cannot resume: not enough memory to read {args.resume} (it is "
                         f"kept as it is); free some memory, or resume on a machine with "
                         f"more") from None
    if "lr" in explicit and trainer.optimizer.lr != args.lr:
        notices.append(f"notice: --lr {args.lr:g} replaces the checkpoint's learning rate "
                       f"{trainer.optimizer.lr:g} from here on")
        trainer.optimizer.lr = args.lr
    # The halving before an epoch is done as the one before it ends: a schedule
    # new to the run has not done the one before the next epoch, if it is due.
    new, old = args.lr_halve_from, args.run_lr_halve_from
    nxt = trainer.epoch + 1
    if (new is not None and new != old and trainer.iteration == 0 and trainer.epoch
            and nxt >= new and not (old is not None and nxt >= old)):
        trainer.optimizer.lr /= 2


def train(trainer, args, data):
    """Fit; returns the exit status of an interrupted or failed run, else None."""
    try:
        with overflow_left_to_the_guard():
            trainer.fit(
                # --epochs counts the whole run, also when resumed from a checkpoint.
                data["train"][:-1], data["train"][1:],
                max_epoch=trainer.epochs_to_reach(args.epochs),
                batch_size=args.batch_size, time_size=args.time_size, max_grad=args.max_grad,
                eval_interval=args.eval_interval,
                val_corpus=data["valid"] if (args.val or args.lr_decay or args.patience) else None,
                lr_decay=args.lr_decay, patience=args.patience, lr_halve_from=args.lr_halve_from,
                checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                clip_value=args.clip_value, verbose=not args.quiet, log_every=args.log_every,
                on_nan=args.on_nan,
            )
    except TrainingInterrupted as exc:
        print(file=sys.stderr)
        save_outputs(trainer, args, data, stderr=True)
        print(exc, file=sys.stderr)  # the last line: how to resume
        return exc.exit_code
    except TrainingOutOfMemory as exc:
        # The failed batch was given back: the model as it stood is whole, and
        # written (--save), with the plot, as for a stop.
        print(f"error: {exc}", file=sys.stderr)
        if exc.model_as_it_stood:
            write_if_memory_left(lambda: save_outputs(trainer, args, data, stderr=True))
        return 1
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CheckpointWriteError as exc:  # the model and plot may still be written elsewhere
        print(f"error: {exc}", file=sys.stderr)
        save_outputs(trainer, args, data, stderr=True)
        return 1
    return None


def save_outputs(trainer, args, data, stderr=False):
    """The model first (--save), then the plot; a failed plot is only a warning.
    False when the model could not be written at --save (then it is written
    elsewhere if any folder takes it, see :mod:`common.rescue`)."""
    say = (lambda line: print(line, file=sys.stderr)) if stderr else print
    saved = True
    if args.save:
        level = args.level if args.corpus == "text" else "word"
        written, error = save_or_rescue(
            lambda path: trainer.model.save_params(path, vocab=data["id_to_word"], level=level),
            args.save)
        if error is not None:
            print(f"error: {rescue_words('the model', '--save', args.save, written, error)}",
                  file=sys.stderr)
            saved = False
        elif not args.quiet or stderr:
            say(f"model saved to {args.save}")
    if args.plot:
        try:
            trainer.plot(path=args.plot)
        except Exception as exc:  # noqa: BLE001 - a plot is never worth the model and checkpoint
            print(f"warning: could not write the plot --plot {args.plot} ({exc}); the model "
                  "and checkpoint are not affected", file=sys.stderr)
        else:
            if not args.quiet:
                say(f"perplexity plot: {args.plot}")
    return saved


def main(argv=None, description=None, defaults=None):
    """Run the script; returns the exit status (0, 1, 130, 143 or 129; 1 also when
    another training writes to the same --checkpoint); a usage error exits
    with 2 (``SystemExit``), as argparse does. A closed stdout (``| head``)
    does not stop the run: it goes on printing to nobody."""
    with outputs_may_close():
        args, explicit = parse_args(argv, description, defaults)
        return run_holding_checkpoint(args.checkpoint, run, args, explicit)


def run(args, explicit):
    """What :func:`main` does once the flags are read."""
    try:
        trainer, data, notices = prepare(args, explicit)
    except UsageError as exc:  # like argparse's own usage errors
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    for line in notices:
        print(line, file=sys.stderr)
    if not args.quiet:
        print(f"{type(trainer.model).__name__} on {data['name']}: {len(data['train']) - 1:,} "
              f"training tokens, vocabulary {data['vocab_size']:,}, batch {args.batch_size} x "
              f"time {args.time_size}, {args.optimizer} lr {trainer.optimizer.lr:g}")
    start = time.perf_counter()
    # A SIGTERM or SIGHUP after training waits until the files are written (fit
    # stops on one in training), then ends the run before the evaluation.
    with DeferredTerminate() as term:
        status = None if data["idle"] else train(trainer, args, data)
        if status is not None:
            return status
        elapsed = time.perf_counter() - start
        notice = skipped_batches_notice(trainer)
        if notice:
            print(notice, file=sys.stderr)
        # The files first: what is printed cannot lose them; a Ctrl-C waits for them.
        with HeldInterrupt() as held:
            if not save_outputs(trainer, args, data):
                return 1
        if held.received:
            print(f"interrupted after training ({stopped_at(trainer)}), its files written",
                  file=sys.stderr)
            return 130
    if term.received:
        print(f"stopped by {term.signal_name} after training ({stopped_at(trainer)}), its "
              f"files written", file=sys.stderr)
        return term.exit_code
    train_ppl = trainer.history["train_ppl"][-1] if trainer.history["train_ppl"] else math.nan
    print(f"train perplexity {train_ppl:.2f} (last epoch), {elapsed:.1f} s")
    if args.eval:
        for split in ("valid", "test"):
            try:
                ppl = eval_perplexity(trainer.model, data[split], batch_size=10, time_size=35)
            except MemoryError:
                kept = [f"--save {args.save}"] * bool(args.save) + \
                    [f"--checkpoint {args.checkpoint}"] * bool(args.checkpoint)
                kept = f"; the run's files are written ({', '.join(kept)})" if kept else ""
                print(f"error: not enough memory to score the {split} text (10 rows x 35 "
                      f"steps of a {trainer.model.vocab_size:,}-word vocabulary at a time)"
                      f"{kept}", file=sys.stderr)
                return 1
            line = f"{split} perplexity {ppl:.2f}"
            if args.corpus == "text" and args.level == "char":
                line += f" = {math.log2(ppl):.3f} bits per character"
            print(line)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # outside training (loading, evaluating): nothing to save
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
