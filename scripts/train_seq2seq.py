"""Train a sequence-to-sequence model on question/answer pairs of characters.

    python scripts/train_seq2seq.py --task addition --model peeky --reverse
    python scripts/train_seq2seq.py --task date --model attention --epochs 4
    python scripts/train_seq2seq.py --data pairs.tsv --model attention --bidirectional

The textbook's chapter 7-8 training (``train_seq2seq.py``, ``ch08/train.py``):
Adam, gradient clipping, shuffled mini-batches (common.trainer.Trainer).
After every epoch it prints a few test questions with the model's answers
(marked right or wrong) and the exact-match accuracy on the whole test set
(all questions answered at once; with ``--beam K`` also by beam search),
and redraws the accuracy plot. For an attention model it also draws the
attention weights of a few test questions as heat maps. ``--save`` writes
the parameters and the vocabulary to one ``.npz`` file (no pickles). Ctrl-C,
SIGTERM or SIGHUP (the terminal closed) stops at an iteration boundary,
after writing ``--checkpoint``, and exits with 130, 143 or 129.
"""

import argparse
import os
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.attention_map import attention_matrix, plot_attention  # noqa: E402
from common.checkpoint import FORMAT as CHECKPOINT_FORMAT  # noqa: E402
from common.checkpoint import read_checkpoint, save_checkpoint  # noqa: E402
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
    output_flags_problem,
    outputs_may_close,
    overflow_left_to_the_guard,
    pickle_name_problem,
    plot_path,
    positive_float,
    printable,
    recorded_paths,
    resumed_checkpoint_words,
    run_holding_checkpoint,
    same_setting,
    save_over_problem,
    skipped_batches_notice,
    user_path,
    write_if_memory_left,
)
from common.file_access import unreachable_words  # noqa: E402
from common.inspection import nonfinite_weights_problem, repeated_token_problem  # noqa: E402
from common.memory import (  # noqa: E402
    NotEnoughMemory,
    available_bytes,
    check_memory,
    estimate_training_bytes,
    gib,
    may_split,
    reading_problem,
)
from common.optimizer import Adam  # noqa: E402
from common.parallel import thread_count_problem  # noqa: E402
from common.plot import SANS, fitted_title, quiet_glyphs, save_figure, text_fonts  # noqa: E402
from common.rescue import rescue_words, save_or_rescue  # noqa: E402
from common.serialization import (  # noqa: E402
    file_sha256,
    link_loops,
    load_npz,
    load_npz_meta,
    special_file_kind,
)
from common.trainer import Trainer, TrainingInterrupted  # noqa: E402
from common.training_guards import (  # noqa: E402
    CheckpointWriteError,
    DeferredTerminate,
    TrainingDiverged,
    TrainingOutOfMemory,
    checkpoint_write_error,
    stopped_at,
)
from common.util import seq2seq_correct  # noqa: E402
from datasets import sequence  # noqa: E402
from models import AttentionSeq2seq, PeekySeq2seq, Seq2seq  # noqa: E402

MODELS = {"plain": Seq2seq, "peeky": PeekySeq2seq, "attention": AttentionSeq2seq}
MODEL_KEYS = {cls.__name__: key for key, cls in MODELS.items()}  # "Seq2seq" -> "plain"
# The textbook's hidden sizes: 128 for addition, 256 for dates (and any other data).
DEFAULT_HIDDEN = {"addition": 128, "date": 256, None: 256}
# What a resumed run keeps from its checkpoint: a flag that would change one is refused.
RUN_SETTINGS = ("task", "data", "data_seed", "model", "reverse", "bidirectional",
                "wordvec_size", "hidden_size", "batch_size", "lr", "max_grad", "lr_halve_from",
                "seed")
# The same, recorded by this version of the script (an older checkpoint lacks them).
LATER_RUN_SETTINGS = ("beam", "data_sha256", "vocab", "val", "eval_interval")
# What a resumed run takes from its checkpoint unless given anew.
RESUMED_DEFAULTS = ("epochs", "save", "plot", "attention_plot", "eval_batch", "show", "on_nan")
# Reading a --data file takes up to this many bytes of memory for each byte of
# the file: each line, question and answer is a Python object until they are
# ids (measured: 73 for lines of one character a side, 48 for the book's
# addition layout, 41 for lines of 120 characters, 19 for Chinese).
DATA_BYTES_PER_BYTE = 80


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Examples:\n  " + "\n  ".join(line.strip() for line in __doc__.split("\n\n")[1]
                                             .strip().splitlines()),
        formatter_class=lambda prog: HelpFormatter(prog, width=96))
    data = p.add_argument_group("data")
    source = data.add_mutually_exclusive_group()
    source.add_argument("--task", choices=["addition", "date"], default=None,
                        help="a task generated by rnnlab (default: addition, unless --data)")
    source.add_argument("--data", type=user_path, default=None, metavar="FILE",
                        help="pairs from a file: the textbook's layout (question, '_', answer, "
                             "each line padded with spaces to the same widths) or tab-separated "
                             "question<TAB>answer (default: none: --task's pairs)")
    data.add_argument("--data-seed", type=at_least(0, 2**32 - 1), default=1984,
                      help="seed of the generated tasks and of the train/test split")
    model = p.add_argument_group("model")
    model.add_argument("--model", choices=sorted(MODELS), default="plain",
                       help="plain: Seq2seq; peeky: PeekySeq2seq; attention: AttentionSeq2seq")
    model.add_argument("--reverse", action="store_true",
                       help="feed each question reversed (the textbook's trick for addition)")
    model.add_argument("--bidirectional", action="store_true",
                       help="bidirectional encoder (--model attention; even --hidden-size)")
    model.add_argument("--wordvec-size", type=at_least(1), default=16, help="embedding size D")
    model.add_argument("--hidden-size", type=at_least(1), default=None,
                       help="hidden size H (default: 128 for addition, 256 for date and --data)")
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=at_least(0), default=25, help="epochs in all")
    train.add_argument("--batch-size", type=at_least(1), default=128,
                       help="pairs per mini-batch")
    train.add_argument("--lr", type=positive_float, default=0.001, help="Adam's learning rate")
    train.add_argument("--max-grad", type=positive_float, default=5.0,
                       help="clip the global gradient norm to this")
    train.add_argument("--no-clip", action="store_true", help="no gradient clipping")
    train.add_argument("--lr-halve-from", type=at_least(2), default=None, metavar="EPOCH",
                       help="halve the learning rate before every epoch from this one on "
                            "(epoch 1 runs at --lr) (default: never)")
    train.add_argument("--seed", type=at_least(0), default=0,
                       help="seed of the weights and of the batch order")
    train.add_argument("--val", type=at_least(0), default=0, metavar="N",
                       help="hold out the last N training pairs: their loss is measured after "
                            "every epoch, and the parameters of the epoch with the lowest are "
                            "kept, put back at the end, scored on the test pairs and saved by "
                            "--save (0: train on all the pairs)")
    add_on_nan_argument(train)
    train.add_argument("--eval-interval", type=at_least(1), default=20,
                       help="record the training loss this often (iterations)")
    ev = p.add_argument_group("evaluation")
    ev.add_argument("--beam", type=at_least(1), default=1,
                    help="also measure the accuracy with beam search of this width (1: greedy "
                         "only; at most --eval-batch)")
    ev.add_argument("--show", type=at_least(0), default=3,
                    help="test questions printed with the model's answers each epoch")
    ev.add_argument("--eval-batch", type=at_least(1), default=1000,
                    help="questions answered at once when measuring the accuracy")
    out = p.add_argument_group("output")
    out.add_argument("--plot", type=plot_path, default="seq2seq_accuracy.png",
                     help="accuracy plot ('none': no plot)")
    out.add_argument("--attention-plot", type=plot_path, default="attention.png",
                     help="heat maps of the attention of a few test questions (--model "
                          "attention; 'none': no plot)")
    out.add_argument("--save", type=user_path, default=None, metavar="FILE",
                     help="save the parameters and the vocabulary (.npz) (default: not saved)")
    out.add_argument("--load", type=user_path, default=None, metavar="FILE",
                     help="start from parameters saved by --save (with --epochs 0: evaluate) "
                          "(default: none: new weights from --seed)")
    out.add_argument("--checkpoint", type=user_path, default=None, metavar="FILE",
                     help="write a checkpoint at the end of every epoch (and on Ctrl-C) "
                          "(default: none)")
    out.add_argument("--resume", type=user_path, default=None, metavar="FILE",
                     help="continue the run of this checkpoint, with its settings (a flag that "
                          "would change one is refused) (default: none: a new run)")
    out.add_argument("--ignore-memory-check", action="store_true",
                     help="train even when the memory estimate exceeds the available memory")
    out.add_argument("--overwrite", action="store_true",
                     help="replace an existing --checkpoint file (another run's), and "
                          "--save a file that is a checkpoint, or any other file than a saved "
                          "model; --plot or --attention-plot any file but a plot")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    if problem := thread_count_problem():
        p.error(problem)
    explicit = explicit_dests(p, argv)
    if problem := empty_flag_problem(args, {"data": "a file of pairs",
                                            "save": "the model's file",
                                            "load": "a saved model",
                                            "checkpoint": "the checkpoint's file",
                                            "resume": "the checkpoint to resume"}):
        p.error(problem)
    args.data_sha256 = None  # of a --data file; recorded by a run, checked on resume
    args.moved_data = False  # resumed with the run's --data named in another place
    args.vocab = None  # the characters of the --load model, by id, when --data numbers by them
    if args.data is not None:  # recorded so that a run resumes from any folder
        args.data = os.path.abspath(args.data)
    if args.resume and args.load:
        p.error("--resume continues a run with its own weights; --load would be ignored: "
                "give one of them")
    if args.epochs == 0 and not (args.load or args.resume):
        p.error("--epochs 0 trains nothing, and there is no model to evaluate: give --load "
                "FILE to evaluate a saved model, or --epochs N to train one")
    if args.epochs == 0 and args.load and args.checkpoint:
        p.error(f"--checkpoint {args.checkpoint} with --epochs 0: nothing is trained, so no "
                f"checkpoint would be written; leave out --checkpoint, or give --epochs N")
    if args.no_clip and "max_grad" in explicit:
        p.error("--no-clip and --max-grad contradict each other: give one of them")
    if args.resume:
        _take_run_settings(p, args, explicit)
    if args.task is None and args.data is None:
        args.task = "addition"
    if args.hidden_size is None:
        args.hidden_size = DEFAULT_HIDDEN[args.task]
    if args.no_clip:
        args.max_grad = None
    if args.bidirectional and args.model != "attention":
        p.error("--bidirectional needs --model attention")
    if "attention_plot" in explicit and args.attention_plot and args.model != "attention":
        p.error("--attention-plot needs --model attention (only it has attention weights to "
                "draw)")
    if args.beam > args.eval_batch:
        p.error(f"--beam {args.beam} is wider than --eval-batch {args.eval_batch}: beam search "
                f"answers --eval-batch // --beam questions at a time; raise --eval-batch")
    if args.bidirectional and args.hidden_size % 2:
        p.error(f"--bidirectional needs an even --hidden-size (half per direction), "
                f"got {args.hidden_size}")
    for name in ("data", "load", "resume"):
        path = getattr(args, name)
        if path is not None and not os.path.isfile(path):
            kind = special_file_kind(path)  # a pipe would be read once, not again to check it
            what = ("a directory, not a file" if os.path.isdir(path) else
                    f"{kind}, not a file; save its content to a file and give that" if kind
                    else "a link that leads round in a loop" if link_loops(path)
                    else "no such file")
            if unreachable := unreachable_words(path):  # (not "no such file": it may be there)
                p.error(f"--{name}: {unreachable}")
            if name == "data" and args.resume and "data" not in explicit:
                p.error(f"--resume {args.resume}: the run's --data file {path} is gone "
                        f"({what}); put it back there, or give its new place with --data, "
                        f"to continue the run")
            p.error(f"--{name} {path}: {what}")
    if args.save is not None and not args.save.lower().endswith(".npz"):
        p.error(f"--save {args.save}: the file name must end in .npz")
    outputs = {"save": "model.npz", "plot": "accuracy.png", "checkpoint": "run.npz"}
    if args.model == "attention":
        outputs["attention_plot"] = "attention.png"
    # --save over --load updates the model in place, as asked; a resumed run
    # goes on checkpointing to the file it resumes.
    if problem := output_flags_problem(args, outputs, inputs=("data", "load", "resume"),
                                       may_replace=(("save", "load"), ("checkpoint", "resume"))):
        p.error(resumed_checkpoint_words(problem, args, explicit))
    if problem := (pickle_name_problem(args, ("checkpoint",))
                   or drawing_problem(args, ("plot", "attention_plot"))):
        p.error(problem)
    if problem := checkpoint_problem(args.checkpoint, args.resume, args.overwrite):
        p.error(problem)
    if problem := save_over_problem(args.save, args.overwrite):
        p.error(problem)
    return args


def history_problem(history) -> str | None:
    """Why a checkpoint's recorded accuracy ``history`` is damaged, or None."""
    if not isinstance(history, dict):
        return f"its accuracy history is {type(history).__name__}, not a mapping"
    for key in ("greedy", "beam", "seconds", "cpu_seconds"):
        values = history.get(key, [])
        if not (isinstance(values, list) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
            return f"its accuracy history's {key!r} is {values!r}, not a list of numbers"
    return None


def _take_run_settings(parser, args, explicit):
    """A resumed run continues with the settings its checkpoint was written with;
    a flag in ``explicit`` (given on the command line) that would change one is
    refused."""
    try:
        _, meta = read_checkpoint(args.resume)
    except (ValueError, OSError) as exc:
        parser.error(f"--resume: {exc}{_saved_model_hint(args.resume)}")
    if meta.get("model") not in MODEL_KEYS:
        parser.error(f"--resume {args.resume} is the checkpoint of a run of {meta.get('model')}, "
                     f"not of a sequence-to-sequence model: resume it with the script that "
                     f"wrote it (scripts/train_rnnlm.py for a language model)")
    settings = meta.get("settings") or {}
    missing = [k for k in RUN_SETTINGS if k not in settings]
    if missing:
        parser.error(f"--resume {args.resume}: not a checkpoint of train_seq2seq.py "
                     f"(its settings lack {missing})")
    problem = damaged_settings_problem(settings, parser)
    if problem is None and settings.get("history") is not None:
        problem = history_problem(settings["history"])
        problem = problem and f"the checkpoint is damaged: {problem}"
    if problem:
        parser.error(f"--resume {args.resume}: {problem}")
    for key in RUN_SETTINGS + LATER_RUN_SETTINGS:
        if key not in settings:  # a later setting, not in an older checkpoint
            continue
        if key in explicit and not same_setting(key, getattr(args, key), settings[key], ("data",)):
            if key == "data" and settings[key] is not None and settings.get("data_sha256"):
                # The run's pairs moved: read them from their new place. main
                # refuses the file unless its SHA-256 is the run's.
                print(f"notice: the run's pairs are read from {args.data} instead of "
                      f"{settings[key]}; it must be the same file (checked)", file=sys.stderr)
                args.moved_data = True
                continue
            if key == "data" and settings[key] is None:
                ours = f"--task {settings['task']}"
            elif key == "task" and settings[key] is None:
                ours = f"--data {settings['data']}"
            elif isinstance(settings[key], bool):  # a switch: named, not valued
                ours = flag(key) if settings[key] else f"no {flag(key)}"
            elif settings[key] is None:  # a flag the run was started without
                ours = "--no-clip" if key == "max_grad" else f"no {flag(key)}"
            else:
                ours = f"{flag(key)} {settings[key]}"
            given = getattr(args, key)  # a switch given is on: named alone
            given = "" if isinstance(given, bool) else f" {given}"
            parser.error(f"--resume {args.resume}: {flag(key)}{given} differs "
                         f"from the run's {ours}; drop the flag to continue that run, or "
                         f"start a new one")
        setattr(args, key, settings[key])
    for key in RESUMED_DEFAULTS:
        if key in settings and key not in explicit:
            setattr(args, key, settings[key])
    outputs = ("save", "plot") + (("attention_plot",) if settings["model"] == "attention" else ())
    if notice := moved_checkpoint_notice(args.resume, settings, outputs, explicit):
        print(notice, file=sys.stderr)
    if args.no_clip and settings["max_grad"] is not None:
        parser.error(f"--resume {args.resume}: --no-clip differs from the run's --max-grad "
                     f"{settings['max_grad']}; drop the flag to continue that run")
    args.checkpoint = args.checkpoint or args.resume


def _saved_model_hint(path) -> str:
    """What to say when ``--resume`` names a model saved by ``--save``, not a checkpoint."""
    try:
        meta = load_npz_meta(path)
    except (ValueError, OSError):
        return ""
    saved = meta.get("model")
    if meta.get("format") == CHECKPOINT_FORMAT:  # a checkpoint this rnnlab cannot read
        return ""
    return f"; to start a run from its parameters, give --load {path}" \
        if saved in MODEL_KEYS else ""


def data_size_problem(args) -> str | None:
    """Why the --data file is too large to read into the memory available
    (checked before reading it), or None."""
    if args.ignore_memory_check or not args.data or not os.path.isfile(args.data):
        return None
    # The lines of a first part that fits (head -n -1: not the line cut in two).
    return reading_problem("--data", args.data, DATA_BYTES_PER_BYTE, available_bytes(),
                           "each line is Python objects until it is ids",
                           f"train on a part of its lines that fits, e.g. head -c {{fits}} "
                           f"{shlex.quote(args.data)} | head -n -1 > part.tsv")


def load_pairs(args):
    """``(x_train, t_train), (x_test, t_test), id_to_char`` (questions reversed if asked)."""
    # A path, so that a file called addition.txt is read, not the generated task.
    source = Path(args.data) if args.data else args.task
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sequence.SequenceDataWarning)
        (x_train, t_train), (x_test, t_test) = sequence.load_data(
            source, seed=args.data_seed, memory_check=not args.ignore_memory_check)
    for warning in caught:
        print(f"notice: {warning.message}", file=sys.stderr)
    _, id_to_char = sequence.get_vocab()
    if args.vocab is not None:
        (x_train, t_train, x_test, t_test), id_to_char = renumber(
            (x_train, t_train, x_test, t_test), id_to_char, args)
    if args.reverse:
        x_train, x_test = x_train[:, ::-1].copy(), x_test[:, ::-1].copy()
    return (x_train, t_train), (x_test, t_test), id_to_char


def renumber(arrays, id_to_char, args):
    """The ids of ``arrays`` (numbered by ``id_to_char``) renumbered by ``args.vocab``.

    A file numbers its characters in order of first appearance, so another file
    of the same characters numbers them differently from the file a --load
    model was trained on; the model reads them only by its own numbers.
    """
    model_id = {char: i for i, char in enumerate(args.vocab)}
    unknown = "".join(char for char in id_to_char.values() if char not in model_id)
    if unknown:
        model = f"--load {args.load}" if args.load else f"the run of {args.resume}"
        raise ValueError(f"--data {args.data} holds characters that {model} was not trained "
                         f"on: {unknown!r}; the model cannot read them: leave out the pairs "
                         f"that hold them, or train a new model on this file")
    table = np.array([model_id[id_to_char[i]] for i in range(len(id_to_char))], dtype=np.int32)
    return [table[a] for a in arrays], dict(enumerate(args.vocab))


def load_problem(args, path, meta, V, id_to_char, data_sha256=None) -> str | None:
    """Why the parameters in ``path`` (its metadata ``meta``) do not fit this
    run, said in flags, or None. ``data_sha256``: of the ``--data`` file."""
    saved = meta.get("model")
    if meta.get("format") == "rnnlab-checkpoint":
        return (f"--load {path} is a training checkpoint, not a model: continue its run with "
                f"--resume {path}" if saved in MODEL_KEYS else
                f"--load {path} is the training checkpoint of a run of {saved}, not of a "
                f"sequence-to-sequence model: give a file written by --save")
    if saved is not None and saved not in MODEL_KEYS:
        return (f"--load {path} holds a model of class {saved}, not a sequence-to-sequence model "
                f"({', '.join(MODEL_KEYS)}): give a file written by --save")
    config, want = meta.get("config") or {}, {
        "vocab_size": V, "wordvec_size": args.wordvec_size, "hidden_size": args.hidden_size}
    flags = {"wordvec_size": "--wordvec-size", "hidden_size": "--hidden-size"}
    mismatched = [f"{flags[k]} {config[k]}" for k in flags if k in config and config[k] != want[k]]
    model = MODEL_KEYS.get(saved)
    if model is not None and model != args.model:
        mismatched.insert(0, f"--model {model}")
    if config.get("bidirectional", False) != args.bidirectional and model == "attention":
        mismatched.append("--bidirectional" if config.get("bidirectional") else
                          "no --bidirectional")
    if mismatched:
        return f"--load {path} holds another model: give {' '.join(mismatched)}"
    if meta.get("vocab") is None and config.get("vocab_size", V) != V:  # (else: below)
        return (f"--load {path} was trained on a vocabulary of {config['vocab_size']} "
                f"characters, and these pairs have {V}: give the data it was trained on (it "
                f"was saved without its characters, save_params(..., vocab=id_to_char), so "
                f"they cannot be matched to other data)")
    seed = meta.get("data_seed")
    if seed is not None and seed != args.data_seed and _same_data(meta, args, data_sha256):
        # The split (and a generated task's pairs) follow the seed: other test pairs
        # would include pairs the model was trained on, and its accuracy would flatter it.
        return (f"--load {path} was trained on {args.data or args.task} with --data-seed "
                f"{seed}; with --data-seed {args.data_seed} its test pairs are not held out "
                f"from what it was trained on: give --data-seed {seed}")
    vocab = meta.get("vocab")
    if vocab is not None and vocab != [id_to_char[i] for i in range(V)]:
        seed = meta.get("data_seed")
        if sorted(vocab) == sorted(id_to_char.values()) and seed != args.data_seed:
            return (f"--load {path} numbers the same characters in another order: it was "
                    f"trained on data drawn with another --data-seed"
                    + (f" ({seed}): give --data-seed {seed}" if seed is not None else ""))
        # A --data file is read by the model's own ids (renumber), a generated task is not.
        task = meta.get("task")
        return (f"--load {path} was trained on another vocabulary"
                + (f" (of {task}): give --data with a file of that task"
                   if task not in (None, *sequence.TASKS) else
                   f" (of the {task} task): give --task {task}"
                   if task in sequence.TASKS and task != args.task else ""))
    if meta.get("reverse") is not None and meta["reverse"] != args.reverse:
        return (f"--load {path} was trained {'with' if meta['reverse'] else 'without'} "
                f"--reverse: {'add' if meta['reverse'] else 'drop'} the flag")
    return None


def other_widths(meta, question_width: int, answer_width: int) -> str | None:
    """How the widths a saved model was trained on (its metadata ``meta``)
    differ from this run's pairs, in words, or None (the same, or not
    recorded: see :func:`datasets.sequence.trained_widths`). A question is padded
    with spaces to the widest of its data set, and the model reads the
    spaces too: trained on 5 characters, it answers '32+33      ' otherwise."""
    saved = sequence.trained_widths(meta)
    if None in saved or saved == (question_width, answer_width):
        return None
    return (f"was trained on questions of {saved[0]} characters and answers of {saved[1]} "
            f"(start included); these pairs are {question_width} and {answer_width} wide")


def saved_meta_problem(meta) -> str | None:
    """Why the metadata of a file given to ``--load`` is damaged (of the wrong
    types, or a vocabulary that lists a character twice: a hand-edited file),
    or None."""
    config, vocab = meta.get("config"), meta.get("vocab")
    if config is not None and not isinstance(config, dict):
        return f"the file is damaged: its model config is {config!r}, not a mapping"
    if vocab is not None and not (isinstance(vocab, list)
                                  and all(isinstance(c, str) for c in vocab)):
        return "the file is damaged: its vocabulary is not a list of characters"
    if vocab is not None:  # (one character at two ids: --data would be renumbered wrongly)
        return repeated_token_problem(vocab, "the file")
    return None


def _same_data(meta, args, data_sha256) -> bool:
    """Whether a saved model (its metadata ``meta``) was trained on the pairs
    this run reads: the same generated task, or a file of the same content."""
    if args.data is None:
        return meta.get("task") == args.task
    if meta.get("data_sha256") is not None:
        return meta["data_sha256"] == data_sha256
    return meta.get("task") == args.data  # saved before the file's SHA-256 was recorded


def data_name(args) -> str:
    """The data in words: the task's name, or the --data file's, printable."""
    return printable(args.data) if args.data else args.task


def split_problem(args, n_train: int, n_test: int) -> str | None:
    """What makes the split unusable (too few pairs to train or to test on), or None."""
    name = data_name(args)
    total = n_train + n_test  # the pairs of the file or task, --val counted
    if args.val and args.val >= n_train:
        return (f"--val {args.val} would hold out all {n_train} training pairs of {name}; "
                f"give a smaller --val")
    n_train -= args.val
    if n_train < args.batch_size and args.epochs > 0:
        held = f" (after --val {args.val})" if args.val else ""
        return (f"{name} has {n_train} training pairs{held}, fewer than one batch of "
                f"--batch-size {args.batch_size}; use a smaller batch or more pairs")
    if n_test == 0:
        return (f"{name} leaves no test pairs (a tenth of the pairs is held out): "
                f"it needs at least 10 pairs, it has {total}")
    return None


def memory_problem(args, vocab_size: int, enc_steps: int, dec_steps: int,
                   n_test: int) -> str | None:
    """Why the run would not fit in the memory available (estimated before
    building the model: ``common.memory``), or None.

    The training step's activations are the encoder's over the question's
    steps and the decoder's over the answer's. Beyond them it counts
    attention's weights (``(N, T_dec,
    T_enc)``, kept for backward, and three more of that size in it) and the
    test set's scoring, ``--eval-batch`` questions at once (``n_test`` if
    fewer): the encoder's cached steps, for attention the encoder's states
    that every answer step reads (copied as beams are chosen), and the
    float64 scores of beam search.
    """
    config = {"vocab_size": vocab_size, "wordvec_size": args.wordvec_size,
              "hidden_size": args.hidden_size, "bidirectional": args.bidirectional}
    named = MODELS[args.model].param_shapes(config)
    shapes = list(named.values())
    H, itemsize, N = args.hidden_size, 4, args.batch_size
    # One step's activations (three copies, as common.memory counts them), the
    # encoder's matrices over the question's steps, the decoder's over the answer's
    # (the output layer's are the logits).
    widths = {part: sum(s[1] for name, s in named.items() if name.startswith(part)
                        and len(s) == 2 and not name.startswith("decoder.affine"))
              for part in ("encoder", "decoder")}
    extra = {"activations": 3 * N * (enc_steps * widths["encoder"]
                                     + dec_steps * widths["decoder"]) * itemsize,
             "logits": 3 * N * dec_steps * vocab_size * itemsize}
    encoded = H * (2 if args.bidirectional else 1)  # the width of the encoder's states
    # Greedy scoring answers --eval-batch questions at once; beam search then
    # --eval-batch // --beam of them, each in --beam rows (where the test set is
    # smaller, up to --beam times its questions): the larger of the two.
    rows = max(min(args.eval_batch, n_test), min(beam_questions(args), n_test) * args.beam)
    evaluation = rows * enc_steps * 8 * encoded * itemsize + rows * vocab_size * 8 * 3
    if args.model == "attention":
        extra["attention"] = 4 * args.batch_size * dec_steps * enc_steps * itemsize
        evaluation += 3 * rows * enc_steps * encoded * itemsize
    extra["evaluation"] = evaluation
    estimate = estimate_training_bytes(shapes, args.batch_size, 1, optimizer="Adam",
                                       halves=may_split(args.batch_size, (H, 4 * H)),
                                       extra=extra)
    try:
        check_memory(estimate, available_bytes(estimate), hint="; choose a smaller --hidden-size, "
                     "--wordvec-size, --batch-size or --eval-batch, or pass "
                     "--ignore-memory-check to try anyway")
    except NotEnoughMemory as exc:
        return str(exc)
    return None


def beam_questions(args) -> int:
    """How many test questions beam search answers at a time: ``--eval-batch
    // --beam``, each in ``--beam`` rows, as many rows as greedy scoring
    takes (at least 1: parse_args refuses a --beam wider than --eval-batch);
    --eval-batch itself without a beam."""
    return args.eval_batch // args.beam


def build_model(args, vocab_size):
    kwargs = {"bidirectional": True} if args.bidirectional else {}
    return MODELS[args.model](vocab_size, args.wordvec_size, args.hidden_size, seed=args.seed,
                              **kwargs)


def text(ids, id_to_char):
    return "".join(id_to_char[int(i)] for i in ids)


def shown(ids, id_to_char, width=40):
    """The text of ``ids`` as printed beside the others: cut to ``width`` characters,
    so that a file of long lines does not flood the log every epoch."""
    s = text(ids, id_to_char)
    return repr(s) if len(s) <= width else repr(s[:width]) + "..."


def show_answers(model, x, t, id_to_char, reverse, beam):
    """Print questions, right answers and the model's answers, marked."""
    guess = model.generate(x, t[:, 0], t.shape[1] - 1, beam_width=beam)
    for q, right, g in zip(x, t[:, 1:], guess, strict=True):
        question = shown(q[::-1] if reverse else q, id_to_char)
        mark = "right" if (g == right).all() else "WRONG"
        print(f"  Q {question:<33} T {shown(right, id_to_char):<14} "
              f"answer {shown(g, id_to_char):<14} {mark}")


def plot_accuracy(history, path, title):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    epochs = np.arange(1, len(history["greedy"]) + 1)
    ax.plot(epochs, history["greedy"], marker="o", label="greedy")
    if history.get("beam"):
        ax.plot(epochs, history["beam"], marker="s", label=f"beam {history['beam_width']}")
        ax.legend()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (exact match, test set)")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    # A "$" in --data's name is no math; its characters from the fonts that hold them.
    title = fitted_title(title, 76)  # (6 inches at 9 points, over off-centre axes)
    ax.set_title(title, fontsize=9, parse_math=False, family=text_fonts([title], SANS))
    with quiet_glyphs():  # (text_fonts has said which characters no font holds)
        fig.tight_layout()
    save_figure(fig, path)


def plot_attention_examples(model, x, t, id_to_char, reverse, path, beam):
    """Heat maps of the attention of the questions ``x`` (one panel each)."""
    from matplotlib.figure import Figure

    guess = model.generate(x, t[:, 0], t.shape[1] - 1, beam_width=beam)
    weights = model.decoder.attention.attention_weights
    fig = Figure(figsize=(8.0, 3.2 * len(x)))
    for row in range(len(x)):
        ax = fig.add_subplot(len(x), 1, row + 1)
        matrix = attention_matrix(weights, row)
        question = x[row]
        if reverse:  # show the question as written; the columns follow its characters
            question, matrix = question[::-1], matrix[:, ::-1]
        in_labels, out_labels = list(text(question, id_to_char)), list(text(guess[row], id_to_char))
        asked = "".join(in_labels).strip()
        asked = asked if len(asked) <= 40 else asked[:40] + "..."  # (as the log cuts it)
        plot_attention(matrix, in_labels, out_labels, ax=ax,
                       title=f"{asked} -> {''.join(out_labels)}")
    with quiet_glyphs():  # (text_fonts has said which characters no font holds)
        fig.tight_layout()
    save_figure(fig, path)


def main(argv=None):
    """Run the script; returns the exit status (0; 1 when training diverged,
    or another training writes to the same --checkpoint; 2 for bad data or
    flags; 130, 143 or 129 when stopped by a signal). A closed stdout (``| head``)
    does not stop the run: it goes on printing to nobody."""
    with outputs_may_close():
        try:
            return _run(argv)
        except KeyboardInterrupt:  # before training (reading or generating the data, ...)
            print("\ninterrupted", file=sys.stderr)
            return 130


def _run(argv):
    args = parse_args(argv)
    return run_holding_checkpoint(args.checkpoint, _run_holding, args)


def _run_holding(args):
    loaded = None  # (arrays, meta) of --load, read once
    if args.load:
        try:
            loaded = load_npz(args.load)
        except (ValueError, OSError) as exc:
            print(f"error: --load: {exc}", file=sys.stderr)
            return 2
        if problem := saved_meta_problem(loaded[1]):
            print(f"error: --load {args.load}: {problem}", file=sys.stderr)
            return 2
        if args.data and loaded[1].get("model") in MODEL_KEYS:  # read the file by its ids
            args.vocab = loaded[1].get("vocab")
    if problem := data_size_problem(args):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        (x_train, t_train), (x_test, t_test), id_to_char = load_pairs(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotEnoughMemory as exc:  # the pairs' padding: checked before, or ran out
        print(f"error: --data {exc}" + ("" if args.ignore_memory_check else
                                        "; or pass --ignore-memory-check to try anyway"),
              file=sys.stderr)
        return 2
    except sequence.PaddingMemoryError as exc:  # past --ignore-memory-check, or its estimate
        print(f"error: --data {exc}", file=sys.stderr)
        return 2
    except MemoryError:  # past --ignore-memory-check, or an estimate too low for this file
        what = (f"read --data {args.data} ({gib(os.path.getsize(args.data))}; reading takes "
                f"up to {DATA_BYTES_PER_BYTE} times that); train on a part of its lines"
                if args.data else f"make the {args.task} task's pairs (ulimit -v?)")
        print(f"error: not enough memory to {what}", file=sys.stderr)
        return 2
    problem = split_problem(args, len(x_train), len(x_test))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    val_data = None
    if args.val:  # the last pairs: the test pairs stay unseen, also by the choice of epoch
        val_data = (x_train[-args.val:], t_train[-args.val:])
        x_train, t_train = x_train[:-args.val], t_train[:-args.val]
    V = len(id_to_char)
    # The encoder's steps and the decoder's (its input: all of an answer but the last).
    enc_steps, dec_steps = x_train.shape[1], t_train.shape[1] - 1
    if not args.ignore_memory_check and (problem := memory_problem(args, V, enc_steps,
                                                                   dec_steps, len(x_test))):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    data_sha256 = file_sha256(args.data) if args.data else None
    if args.load:
        if problem := load_problem(args, args.load, loaded[1], V, id_to_char, data_sha256):
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if other := other_widths(loaded[1], x_train.shape[1], t_train.shape[1]):
            if args.epochs == 0:  # answers read with other padding: a wrong accuracy
                print(f"error: --load {args.load} {other}: its answers to these questions "
                      f"would be wrong (it reads the padding as part of each question); pad "
                      f"the pairs to its widths, or train on them (--epochs N)", file=sys.stderr)
                return 2
            print(f"notice: --load {args.load} {other}; it is trained on them from here on "
                  f"(its accuracy before that is not its accuracy on its own widths)",
                  file=sys.stderr)
    if args.data_sha256 not in (None, data_sha256):
        what = ("is not the file the run began with" if args.moved_data
                else "has changed since the run began")
        print(f"error: cannot resume: {args.data} {what} (its SHA-256 "
              f"differs); restore the file, or start a new run", file=sys.stderr)
        return 2
    args.data_sha256 = data_sha256
    try:
        model = build_model(args, V)
    except (MemoryError, ValueError) as exc:  # past --ignore-memory-check ("array is too big")
        detail = f" ({exc})" if isinstance(exc, ValueError) else ""
        print(f"error: not enough memory for the model's weights (--hidden-size "
              f"{args.hidden_size}, --wordvec-size {args.wordvec_size}, vocabulary {V})"
              f"{detail}; use smaller sizes", file=sys.stderr)
        return 2
    if loaded:
        try:
            model.set_named_params(loaded[0], source=args.load)
        except ValueError as exc:
            print(f"error: --load: {exc}", file=sys.stderr)
            return 2
        if problem := nonfinite_weights_problem(model, args.load):
            print(f"error: --load: {problem}", file=sys.stderr)
            return 2
    trainer = Trainer(model, Adam(lr=args.lr))
    # (Validating, the run keeps the best epoch's parameters; it never puts them back.)
    if problem := disk_space_problem(trainer, args.save, args.checkpoint, id_to_char,
                                     kept_copies=int(val_data is not None)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    trainer.settings = recorded_paths(
        {k: getattr(args, k) for k in RUN_SETTINGS + LATER_RUN_SETTINGS + RESUMED_DEFAULTS},
        ("save", "plot", "attention_plot"), args.checkpoint)
    # (The file's name, not its path, as train_rnnlm.py's: a title over the plots.)
    name = printable(os.path.basename(args.data)) if args.data else args.task
    trainer.title = (f"{type(model).__name__} on {name}{' (reversed)' if args.reverse else ''}, "
                     f"D={args.wordvec_size} H={args.hidden_size}")
    history = {"greedy": [], "beam": [], "beam_width": args.beam, "seconds": [],
               "cpu_seconds": []}
    if args.resume:
        try:
            trainer.resume(args.resume)
        except (ValueError, OSError) as exc:
            print(f"error: cannot resume: {exc}", file=sys.stderr)
            return 2
        except MemoryError:
            print(f"error: cannot resume: not enough memory to read {args.resume} (it is kept "
                  f"as it is); free some memory, or resume on a machine with more",
                  file=sys.stderr)
            return 2
        _, meta = read_checkpoint(args.resume)
        saved = (meta.get("settings") or {}).get("history")
        if saved:
            history.update(saved)
        print(f"resuming {args.resume}: {trainer.epoch} epochs done"
              + (f", and {trainer.iteration} iterations of epoch {trainer.epoch + 1}"
                 if trainer.iteration else ""))

    held = f", {args.val:,} validation" if args.val else ""
    print(f"{trainer.title}: {len(x_train):,} training{held} and {len(x_test):,} test pairs, "
          f"vocabulary {V}, questions {enc_steps} and answers {dec_steps} characters wide "
          f"(padded), {len(x_train) // args.batch_size} iterations an epoch")
    show_rows = np.random.default_rng(args.seed).choice(len(x_test), size=min(args.show,
                                                                               len(x_test)),
                                                        replace=False)
    if args.resume and not trainer.train_seconds and history["seconds"]:
        # A checkpoint from before the trainer kept the time: its epochs' time.
        trainer.train_seconds = history["seconds"][-1]
        trainer.train_cpu_seconds = (history.get("cpu_seconds") or [0.0])[-1]

    def score():
        """``(line, greedy, beam)``: the test accuracy of the model as it is now."""
        greedy = float(seq2seq_correct(model, x_test, t_test, args.eval_batch).mean())
        line, beam = f"accuracy {greedy:.4f} (greedy)", None
        if args.beam > 1:  # k rows a question: as many rows at once as greedy answers
            beam = float(seq2seq_correct(model, x_test, t_test, beam_questions(args),
                                         args.beam).mean())
            line += f", {beam:.4f} (beam {args.beam})"
        return line, greedy, beam

    def evaluate():
        """Score the model and record it in the run's history (a point of the plot)."""
        line, greedy, beam = score()
        history["greedy"].append(greedy)
        if beam is not None:
            history["beam"].append(beam)
        return line

    def write_plot(dest="plot"):
        """The accuracy plot (``dest`` "plot") or the attention heat maps
        ("attention_plot"); a failure is only a warning (the model is not affected)."""
        path = getattr(args, dest)
        try:
            if dest == "plot":
                plot_accuracy(history, path, trainer.title)
            else:
                rows = show_rows[:3] if len(show_rows) else np.arange(min(3, len(x_test)))
                plot_attention_examples(model, x_test[rows], t_test[rows], id_to_char,
                                        args.reverse, path, 1)
        except Exception as exc:  # noqa: BLE001 - a plot is never worth the model and checkpoint
            print(f"warning: could not write the plot {flag(dest)} {path} ({exc}); the model "
                  "and checkpoint are not affected", file=sys.stderr)
            return False
        return True

    def save_model(accuracy, why=""):
        """--save: the model as it is now (``accuracy``: its test accuracy, None
        when not measured); whether it was written."""
        def write(path):
            return model.save_params(path, vocab=id_to_char, task=args.data or args.task,
                                     reverse=args.reverse, data_seed=args.data_seed,
                                     data_sha256=args.data_sha256, accuracy=accuracy,
                                     question_width=int(x_train.shape[1]),
                                     answer_width=int(t_train.shape[1]))

        try:
            written, error = save_or_rescue(write, args.save)
        except ValueError as exc:
            print(f"error: cannot write --save {args.save}: {exc}", file=sys.stderr)
            return False
        if error is not None:
            print(f"error: {rescue_words('the model', '--save', args.save, written, error)}",
                  file=sys.stderr)
            return False
        print(f"saved {written}{why}", file=sys.stderr if why else sys.stdout)
        return True

    def keep_what_is_done(status):
        """A run stopped by a signal or a checkpoint it could not write:
        (--save) the model as it is now, then the plot of the epochs done."""
        if args.save and trainer.epoch + trainer.iteration > 0:
            save_model(None, f" (its parameters when the run stopped, {stopped_at(trainer)})")
        if args.plot and history["greedy"]:
            write_plot()
        return status

    def write_epoch_files():
        """After an epoch is scored: the plot, and (--checkpoint) the checkpoint
        again, now with the epoch's accuracy in the run's history; the exit
        status when the checkpoint cannot be written, else None."""
        nonlocal plotted
        if args.plot:
            plotted = write_plot() or plotted
        if args.checkpoint:
            trainer.settings["history"] = history
            try:
                save_checkpoint(args.checkpoint, trainer)
            except OSError as exc:
                print(f"error: {checkpoint_write_error(args.checkpoint, trainer, exc)}",
                      file=sys.stderr)
                return keep_what_is_done(1)
        return None

    def stopped_by_signal():
        how = (f"resume with --resume {args.checkpoint}" if args.checkpoint
               else "no checkpoint was asked for")
        print(file=sys.stderr)
        keep_what_is_done(term.exit_code)
        print(f"stopped by {term.signal_name} after epoch {trainer.epoch}; {how}",
              file=sys.stderr)
        return term.exit_code

    # Resumed partway through an epoch that --epochs leaves out (a longer run stopped).
    partway = trainer.iteration > 0 and trainer.epoch >= args.epochs
    if args.resume and trainer.epoch >= args.epochs:
        part = (f" and {trainer.iteration} iterations of epoch {trainer.epoch + 1}" if partway
                else "")
        print(f"nothing to train: --epochs {args.epochs} counts all the run's epochs, and "
              f"{args.resume} has done {trainer.epoch}{part}; give a larger --epochs to "
              f"continue it")
    # A SIGTERM or SIGHUP between two epochs' training waits until what is being
    # written is written, then stops the run as one during training does.
    plotted = False  # (written by write_epoch_files)
    with DeferredTerminate() as term:
        try:
            # Resumed from a run stopped while it scored its last epoch (the epoch's
            # checkpoint written, its accuracy not): scored, shown, plotted and recorded now.
            filled = len(history["greedy"]) < trainer.epoch
            while len(history["greedy"]) < trainer.epoch:
                line = evaluate()
                print(f"epoch {len(history['greedy'])}/{args.epochs} | {line} (scored on "
                      f"resuming: the run stopped before it was)")
            if filled:
                if len(history["seconds"]) < trainer.epoch:
                    history["seconds"].append(trainer.train_seconds)
                    history["cpu_seconds"].append(trainer.train_cpu_seconds)
                if (status := write_epoch_files()) is not None:
                    return status
            for epoch in range(trainer.epoch, args.epochs):
                if term.received:  # while the last epoch was scored and written
                    return stopped_by_signal()
                trainer.settings["history"] = history
                try:
                    with overflow_left_to_the_guard():
                        trainer.fit(x_train, t_train, max_epoch=1, batch_size=args.batch_size,
                                    max_grad=args.max_grad, eval_interval=args.eval_interval,
                                    checkpoint=args.checkpoint, verbose=not args.quiet,
                                    seed=args.seed, restore_best=False,
                                    lr_halve_from=args.lr_halve_from, on_nan=args.on_nan,
                                    val_data=val_data)
                except TrainingInterrupted as exc:
                    print(file=sys.stderr)
                    keep_what_is_done(exc.exit_code)
                    print(exc, file=sys.stderr)  # the last line: how to resume
                    return exc.exit_code  # 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP
                except CheckpointWriteError as exc:
                    print(f"\nerror: {exc}", file=sys.stderr)
                    return keep_what_is_done(1)
                except TrainingOutOfMemory as exc:
                    # The failed batch was given back: the model as it stood is whole,
                    # and written (--save), as for a stop.
                    print(f"\nerror: {exc}", file=sys.stderr)
                    if exc.model_as_it_stood:
                        write_if_memory_left(lambda: keep_what_is_done(1))
                    return 1
                except TrainingDiverged as exc:
                    print(f"\nerror: {exc}", file=sys.stderr)
                    return 1
                except ValueError as exc:  # e.g. resumed on data that no longer fits the run
                    print(f"\nerror: {exc}", file=sys.stderr)
                    return 2
                # Training only (the trainer's clock), not evaluation.
                train_seconds, cpu_seconds = trainer.train_seconds, trainer.train_cpu_seconds
                history["seconds"].append(train_seconds)
                history["cpu_seconds"].append(cpu_seconds)
                line = evaluate()
                if args.val:
                    line += f" | validation loss {trainer.last_val:.4f}"
                print(f"epoch {epoch + 1}/{args.epochs} | {line} | training time "
                      f"{train_seconds:.1f}s (CPU {cpu_seconds:.1f}s)")
                show_answers(model, x_test[show_rows], t_test[show_rows], id_to_char,
                             args.reverse, 1)
                if (status := write_epoch_files()) is not None:
                    return status
            if not history["greedy"]:  # --epochs 0 (e.g. with --load): evaluate only
                print(evaluate())
                show_answers(model, x_test[show_rows], t_test[show_rows], id_to_char,
                             args.reverse, 1)
            accuracy = history["greedy"][-1]  # of the parameters saved by --save
            if partway and trainer.epoch:
                # The last whole epoch's accuracy is not that of these parameters (with
                # no whole epoch, the score above, of --epochs 0, is theirs already).
                line, accuracy, _ = score()
                print(f"the parameters after {trainer.iteration} iterations of epoch "
                      f"{trainer.epoch + 1}: test {line}")
            # Partway, the model holds the parameters of an epoch not validated.
            if args.val and trainer.best_epoch is not None and (
                    partway or trainer.best_epoch != trainer.epoch):
                model.set_named_params(trainer.best_params,
                                       source="the best epoch's parameters")
                line, accuracy, _ = score()
                print(f"kept epoch {trainer.best_epoch}'s parameters (the lowest validation "
                      f"loss, {trainer.best_val_ppl:.4f}): test {line}")
            elif args.val and trainer.best_epoch is not None:
                print(f"kept the last epoch's parameters (the lowest validation loss, "
                      f"{trainer.best_val_ppl:.4f})")
            # The model first: a plot that cannot be written is only a warning.
            saved = not args.save or save_model(accuracy)
            if args.model == "attention" and args.attention_plot and write_plot("attention_plot"):
                print(f"attention heat maps: {args.attention_plot}")
            notice = skipped_batches_notice(trainer)
            if notice:
                print(notice, file=sys.stderr)
            if plotted:
                print(f"accuracy plot: {args.plot}")
        except FloatingPointError as exc:  # answering with weights gone non-finite
            print(f"\nerror: {exc}", file=sys.stderr)
            return 1
        except MemoryError:  # scoring the test pairs (fit's own is TrainingOutOfMemory)
            done = f"; epoch {trainer.epoch}'s checkpoint is written: resume with --resume " \
                   f"{args.checkpoint}" if args.checkpoint and trainer.epoch else ""
            at_once = min(beam_questions(args), len(x_test))
            how = (f"{at_once} questions at a time, each in {args.beam} rows (--beam); give a "
                   f"smaller --beam, or a smaller --eval-batch (at least --beam)"
                   if args.beam > 1 else
                   f"{at_once} questions at a time; give a smaller --eval-batch than {at_once}")
            print(f"\nerror: not enough memory to score the test pairs after epoch "
                  f"{trainer.epoch} ({how}){done}", file=sys.stderr)
            return keep_what_is_done(1)
        except KeyboardInterrupt:  # Ctrl-C between two epochs' training: evaluating, saving
            if not args.checkpoint:
                done = ""
            elif trainer.iteration == 0 and trainer.epoch:
                done = (f"; epoch {trainer.epoch}'s checkpoint is written: resume with "
                        f"--resume {args.checkpoint}")
            else:  # a second Ctrl-C, while the first one's checkpoint or model was written
                done = (f"; resume with --resume {args.checkpoint}"
                        if trainer.iteration and os.path.isfile(args.checkpoint) else "")
            print(file=sys.stderr)
            keep_what_is_done(130)
            print(f"interrupted {stopped_at(trainer)}{done}", file=sys.stderr)
            return 130
        if term.received:  # while the last epoch was scored or the files were written
            print(f"stopped by {term.signal_name} after epoch {trainer.epoch}"
                  + (", its files written" if saved else ""), file=sys.stderr)
            return term.exit_code
        return 0 if saved else 1


if __name__ == "__main__":
    sys.exit(main())
