"""Look inside a model saved by ``train_rnnlm.py --save``: units over text, surprisal.

    python scripts/inspect_model.py units --model char.npz --text-file some.py \\
        --html units.html --png units.png
    python scripts/inspect_model.py surprisal --model simple.npz --text "the company said"

``units`` records every hidden (and, for an LSTM, cell) unit over the text,
finds the units that follow simple properties of it (inside quotes or
brackets, position in the line or sentence, end of a word) and prints them
with Pearson's r; ``--html`` writes a self-contained page where the text is
coloured by the unit chosen in a picker, with the model's top-5 next-token
guesses for every position; ``--png`` draws those units as a heat map.

    python scripts/inspect_model.py attention --model date.npz \
        --input "september 27, 1994" --png attention_one.png

``surprisal`` prints, as TSV, every token's log-probability (natural log)
and bits under the model, and the text's perplexity. The first token is
context and is not scored (a text of T tokens has T - 1 scores), as in
``eval_perplexity``. ``--html`` writes the same page coloured by surprisal.

``attention`` answers one question with a sequence-to-sequence model with
attention saved by ``train_seq2seq.py --save`` and draws the attention
weights (one row per answer character, one column per question character)
with :func:`common.attention_map.plot_attention`, as ``train_seq2seq.py``
does; it prints the answer and, for each answer character, the question
character it attends to most.

Problems with the file or the arguments exit with status 2 and a message;
a model that computes NaN or inf, or output that cannot be written, with 1.
"""

import argparse
import contextlib
import json
import os
import sys

# Running "python scripts/inspect_model.py" from a clone puts scripts/ (not the
# repository) on sys.path; make the packages importable without installing.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

from common.cli import (  # noqa: E402
    HelpFormatter,
    add_import_flag,
    drawing_problem,
    empty_flag_problem,
    import_model_classes,
    model_load_words,
    output_flags_problem,
    outputs_may_close,
    pickle_name_problem,
    point_at_null,
    results_status,
    user_path,
)
from common.inspection import (  # noqa: E402
    encode_text,
    interesting_units,
    load_model,
    model_units,
    model_vocab,
    nonfinite_weights_problem,
    record_states,
    text_properties,
    token_surprisal,
    top_guesses,
    unit_index,
)
from common.memory import NotEnoughMemory, available_bytes, check_memory  # noqa: E402
from common.parallel import thread_count_problem  # noqa: E402
from common.plot import (  # noqa: E402
    SANS,
    plot_format,
    quiet_glyphs,
    readable_text_colour,
    save_figure,
    text_fonts,
)
from common.units_html import write_units_page  # noqa: E402
from datasets.text import CorpusError, read_text  # noqa: E402


class UsageError(Exception):
    """A problem with the model file, the text or the arguments (exit status 2)."""


class OutputFailed(Exception):
    """An output file that could not be written, named (exit status 1)."""


@contextlib.contextmanager
def writing(flag, path):
    """Name the output a write failed on (a full disk, a file-size limit):
    the error alone does not say whether it was the page, the picture or
    the table on standard output."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputFailed(f"cannot write {flag} {one_line(path)}: "
                           f"{exc.strerror or exc}") from exc


# attention: the heat map labels a row per answer character and a column per
# question character; units: a column per token; more than this many cannot be
# read (a typo such as --answer-length 1000000000 would run for hours).
MAX_HEAT_MAP_CHARACTERS = 1000
# Drawing a heat map of 300 x 300 characters (78 million pixels at 100 dpi)
# took 3.5 GB, about 44 bytes a pixel; rounded down, as the estimate is a
# lower bound.
HEAT_MAP_BYTES_PER_PIXEL = 40
# units: tokens the heat map shows by default.
HEAT_MAP_LENGTH = 80
# units: a heat map's word labels are cut to this many characters: one word of
# thousands (a line without spaces) pushed every other label and the map itself
# out of the picture. (A unit's label is made here, of bounded length.)
MAX_LABEL = 40


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Look inside a language model saved by train_rnnlm.py --save.",
        formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(q):
        q.add_argument("--model", type=user_path, required=True,
                       help="the .npz file of train_rnnlm.py --save")
        add_import_flag(q)
        src = q.add_mutually_exclusive_group(required=True)
        src.add_argument("--text", help="the text itself")
        src.add_argument("--text-file", type=user_path, help="a UTF-8 file holding the text")
        q.add_argument("--offset", type=int, default=0,
                       help="start this many characters into the text")
        q.add_argument("--length", type=int, default=None,
                       help="use at most this many tokens (default: all; units: 3000)")
        q.add_argument("--html", type=user_path, default=None,
                       help="write the coloured page here (default: none)")

    u = sub.add_parser("units", help="units over text: HTML page, heat map, correlations",
                       formatter_class=HelpFormatter)
    common(u)
    u.add_argument("--units", default="",
                   help="comma-separated units to show besides the interesting ones, "
                        "e.g. h0:3,c0:17 (h: hidden, c: LSTM cell, then layer:unit) "
                        "(default: none)")
    u.add_argument("--per-property", type=int, default=1,
                   help="how many units to report for each property of the text")
    u.add_argument("--png", type=user_path, default=None,
                   help="draw the interesting units as a heat map here (default: none)")
    u.add_argument("--png-start", type=int, default=0,
                   help="first token of the heat map (counted from --offset)")
    u.add_argument("--png-length", type=int, default=HEAT_MAP_LENGTH,
                   help=f"tokens shown in the heat map, at most {MAX_HEAT_MAP_CHARACTERS:,}")

    s = sub.add_parser("surprisal", help="log-probability and bits of every token (TSV)",
                       formatter_class=HelpFormatter)
    common(s)

    a = sub.add_parser("attention", help="attention weights of a seq2seq model as a heat map",
                       formatter_class=HelpFormatter)
    a.add_argument("--model", type=user_path, required=True,
                   help="the .npz file of train_seq2seq.py --save (an attention model)")
    add_import_flag(a)
    a.add_argument("--input", required=True, help="the question, as written")
    # (Not train_seq2seq.py's attention.png, the maps of its test questions.)
    a.add_argument("--png", type=user_path, default="attention_one.png",
                   help="where to draw the heat map")
    a.add_argument("--width", type=int, default=None,
                   help="pad the question with spaces to this width (default: the width "
                        "the model was trained on)")
    a.add_argument("--answer-length", type=int, default=None,
                   help="characters to generate after the start character (default: as in "
                        "the answers the model was trained on)")
    a.add_argument("--start", default="_", help="the character that starts every answer")
    args = p.parse_args(argv)
    if problem := thread_count_problem() or import_model_classes(args.imports):
        p.error(problem)
    # (An unset shell variable: not a default, nor a page or plot silently not written.)
    if problem := empty_flag_problem(args, {"model": "the model file",
                                            "text_file": "a text file",
                                            "png": "the picture to write",
                                            "html": "the page to write"}):
        p.error(problem)
    # An output may not name the model or the text file: writing it would destroy them.
    if problem := (output_flags_problem(args, {"png": "map.png", "html": "units.html"},
                                        inputs=("model", "text_file"))
                   or pickle_name_problem(args, ("html",), suffix=".html")
                   or drawing_problem(args, ("png",), may_skip=False)):
        p.error(problem)
    if (getattr(args, "html", None) or "").lower().endswith(".npz"):
        p.error(f"--html {args.html}: .npz names rnnlab's models and checkpoints, which a page "
                f"written there would replace; give a name ending in .html")
    if getattr(args, "png", None):
        try:
            plot_format(args.png)
        except ValueError as exc:
            p.error(f"--png: {exc}")
    if args.command == "attention":
        for name, what in (("width", "a column per question"),
                           ("answer_length", "a row per answer")):
            value = getattr(args, name)
            if value is not None and value < 1:
                p.error(f"--{name.replace('_', '-')} must be >= 1")
            if value is not None and value > MAX_HEAT_MAP_CHARACTERS:
                p.error(f"--{name.replace('_', '-')} {value}: the heat map has {what} "
                        f"character, and more than {MAX_HEAT_MAP_CHARACTERS:,} cannot be read; "
                        f"give at most {MAX_HEAT_MAP_CHARACTERS:,}")
        if not args.input.strip():
            p.error("--input is empty: give the question, e.g. --input \"16+75\"")
        return args
    if args.offset < 0:
        p.error("--offset must be >= 0")
    if args.length is not None and args.length < 2:
        p.error("--length must be >= 2")
    if args.command == "units" and (args.per_property < 1 or args.png_length < 1
                                    or args.png_start < 0):
        p.error("--per-property and --png-length must be >= 1, --png-start >= 0")
    if args.command == "units" and args.png_length > MAX_HEAT_MAP_CHARACTERS:
        # (5,000 tokens drew a picture 93,775 pixels wide, in 74 s)
        p.error(f"--png-length {args.png_length}: the heat map has a column per token, and "
                f"more than {MAX_HEAT_MAP_CHARACTERS:,} cannot be read; give at most "
                f"{MAX_HEAT_MAP_CHARACTERS:,} (the page, --html, shows the whole text)")
    return args


def read_input(args, vocab, level, default_length=None):
    if args.text is not None:
        content = args.text
    else:
        try:
            # As training reads it (a byte-order mark dropped, line ends kept).
            content = read_text(args.text_file)
        except FileNotFoundError:
            raise UsageError(f"text file not found: {args.text_file}") from None
        except IsADirectoryError:
            raise UsageError(f"--text-file {args.text_file} is a folder; give a text file "
                             "in it") from None
        except (CorpusError, PermissionError) as exc:  # their words name the file and the fix
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"cannot read the text file {args.text_file}: "
                             f"{exc.strerror or exc}") from None
    content = content[args.offset:]
    length = args.length or default_length
    try:  # (what lies past the length is not read, nor checked)
        tokens, ids = encode_text(content, vocab, level, limit=length or None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if len(tokens) < 2:
        raise UsageError(f"the text has {len(tokens)} token(s) at {level} level; at least 2 "
                         "are needed (the first one is context)")
    return tokens, ids


def shown(token, encoding=None):
    """A token written on one line (JSON string syntax: "\\n", "\\t", quotes
    escaped); where the output's ``encoding`` cannot hold it, JSON's own
    ``\\u00e9`` escapes (still JSON, unlike the backslash escapes the output
    would write)."""
    text = json.dumps(token, ensure_ascii=False)
    try:
        if encoding:
            text.encode(encoding)
    except UnicodeEncodeError:
        return json.dumps(token)
    except LookupError:  # (an encoding Python does not know: as it is)
        pass
    return text


def one_line(name):
    """A file name as it is where it prints on one line (all of them do);
    else as :func:`shown` writes a token for stdout (a newline or an
    undecodable byte in a ``#`` line of the table would start a row or stop
    the output)."""
    return name if name.isprintable() else shown(name, getattr(sys.stdout, "encoding", None))


def guesses_at(probs, vocab, k=5):
    """The ``k`` most likely next tokens and their probabilities, at every position."""
    idx, p = top_guesses(probs, k)
    return [[(vocab[i], q) for i, q in zip(row_i, row_p, strict=True)]
            for row_i, row_p in zip(idx, p, strict=True)]


def finite_surprisal(model, ids):
    """:func:`token_surprisal`, refused (``FloatingPointError``) when its perplexity overflows."""
    s = token_surprisal(model, ids)
    if not np.isfinite(s.perplexity):
        # Only scores far outside what training produces (huge weights) give e**710 and more.
        raise FloatingPointError(f"the model's perplexity overflows (a mean of "
                                 f"{s.total_loss / s.log_prob.size:.3g} nats per token): its "
                                 "weights are far too large (a run that diverged?); retrain "
                                 "with a smaller --lr or with --max-grad")
    return s


def run_surprisal(args, model, vocab, level):
    tokens, ids = read_input(args, vocab, level)
    if args.html:
        check_table_memory(model, tokens)
    s = finite_surprisal(model, ids)
    out = sys.stdout
    encoding = getattr(out, "encoding", None)
    out.write(f"# {one_line(args.model)}: {type(model).__name__}, {level} level; "
              "the first token is context and is not scored\n")
    out.write("position\ttoken\tlog_prob\tbits\n")
    out.write(f"0\t{shown(tokens[0], encoding)}\t\t\n")
    for t in range(1, len(tokens)):
        out.write(f"{t}\t{shown(tokens[t], encoding)}\t{s.log_prob[t - 1]:.4f}\t"
                  f"{s.bits[t - 1]:.3f}\n")
    out.write(f"# {s.log_prob.size} scored tokens: {s.total_loss:.3f} nats in all, "
              f"{s.bits_per_token:.3f} bits per token, perplexity {s.perplexity:.3f}\n")
    if args.html:
        bits = [None, *s.bits]
        guesses = guesses_at(record_states(model, ids).probs, vocab)
        with writing("--html", args.html):
            write_units_page(args.html, tokens, level, [], bits=bits, guesses=guesses,
                             title=f"surprisal under {os.path.basename(args.model)}",
                             notes=f"perplexity {s.perplexity:.3f} over {s.log_prob.size} "
                                   f"scored tokens ({s.bits_per_token:.3f} bits per token); "
                                   "the first token is context and is not scored")
        print(f"# page: {one_line(args.html)}")
    return 0


def unused_units_flags(args, names) -> list[str]:
    """What ``units`` flags given without the output they are for change: nothing."""
    notices = []
    if names and not (args.html or args.png):
        notices.append("--units shows its units on the --html page or the --png heat map; "
                       "without either it changes nothing")
    if not args.png and (args.png_start != 0 or args.png_length != HEAT_MAP_LENGTH):
        notices.append("--png-start and --png-length place the --png heat map; without --png "
                       "they change nothing")
    return notices


def run_units(args, model, vocab, level):
    tokens, ids = read_input(args, vocab, level, default_length=3000)
    # Everything the arguments can get wrong is refused before the (long) recording.
    names = list(filter(None, (n.strip() for n in args.units.split(","))))
    units = model_units(model)
    if not units[0]:
        raise UsageError(f"{one_line(args.model)} holds a {type(model).__name__}, which has no "
                         f"recurrent layer: no unit carries a state to show (surprisal reads "
                         f"any language model)")
    for name in names:
        try:
            unit_index(name, *units)
        except ValueError as exc:
            raise UsageError(f"--units: {exc}") from None
    for notice in unused_units_flags(args, names):
        print(f"notice: {notice}", file=sys.stderr)
    if args.png and args.png_start >= len(tokens):
        raise UsageError(f"--png-start {args.png_start} is past the text's {len(tokens)} "
                         f"tokens; give a number from 0 to {len(tokens) - 1}")
    props = text_properties(tokens, level)
    if not props and not names:
        raise UsageError("no unit to show: no property of the text varies (quotes, brackets, "
                         "position in the line or sentence, word ends), so no unit can follow "
                         "one; give a longer or more varied text, or name units with --units, "
                         "e.g. --units h0:0")
    if args.html:
        check_table_memory(model, tokens)
    window = slice(args.png_start, args.png_start + args.png_length)
    if args.png:  # (at most the units asked for and per_property of each property, and
        # never more than the model has: h of each layer, and c of an LSTM's)
        every = sum(width * (2 if cell else 1) for width, cell in zip(*units, strict=True))
        rows = min(every, len(set(names)) + args.per_property * len(props))
        check_heat_map_memory(rows, tokens[window], level)
    # (The next-token table only for the page: tokens x vocabulary floats.)
    rec = record_states(model, ids, probs=bool(args.html))
    found = interesting_units(rec, props, per_property=args.per_property)
    print(f"{one_line(args.model)}: {type(model).__name__}, {level} level, "
          f"{len(tokens)} tokens, {len(rec.units())} units")
    print("unit\tproperty\tr")
    for f in found:
        print(f"{f.unit}\t{f.prop}\t{f.r:+.3f}")
    shown_units = [(f.unit, f"{f.unit}: {f.prop} (r = {f.r:+.3f})", rec.unit(f.unit))
                   for f in found]
    for name in names:
        if name not in [u[0] for u in shown_units]:
            shown_units.append((name, name, rec.unit(name)))
    if args.html:
        s = finite_surprisal(model, ids)
        with writing("--html", args.html):
            write_units_page(args.html, tokens, level, shown_units,
                             guesses=guesses_at(rec.probs, vocab),
                             bits=[None, *s.bits],
                             title=f"units of {os.path.basename(args.model)} over the text",
                             notes=f"{type(model).__name__}, {level} level; red: positive, "
                                   f"blue: negative; perplexity {s.perplexity:.3f} (first "
                                   "token not scored). Hover over a token, click to pin it.")
        print(f"page: {one_line(args.html)}")
    if args.png:
        with writing("--png", args.png):
            heat_map([(name, label, values[window]) for name, label, values in shown_units],
                     tokens[window], level, args.png)
        print(f"heat map: {one_line(args.png)}")
    return 0


def cut_label(label: str) -> str:
    """``label`` as the heat map writes it: cut after MAX_LABEL characters."""
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "\u2026"


def heat_map_inches(n_units, tokens, level) -> tuple[float, float]:
    """The heat map's ``(width, height)`` in inches (drawn at 110 dots an inch)."""
    cell = 0.17 if level == "char" else 0.45
    # Word level: room below for the words, written upwards (7 pt: about 0.07 inch a character).
    words = 0.0 if level == "char" else 0.07 * max(map(len, map(cut_label, tokens)), default=0)
    return max(6.0, 2.5 + cell * len(tokens)), 0.6 + 0.42 * n_units + words


def check_heat_map_memory(n_units, tokens, level):
    """Raise :class:`UsageError` when drawing the units heat map would not
    fit in the memory available (1,000 words by 32 units took 3.5 GB)."""
    width, height = heat_map_inches(n_units, tokens, level)
    drawing = int(width * height * 110**2) * HEAT_MAP_BYTES_PER_PIXEL
    try:
        check_memory({"drawing": drawing, "total": drawing}, available_bytes(),
                     hint="; give a smaller --png-length, or fewer --units or --per-property")
    except NotEnoughMemory as exc:
        raise UsageError(f"--png over {len(tokens):,} tokens and {n_units} units: {exc}"
                         ) from None


def heat_map(units, tokens, level, path):
    """One row per unit over the first tokens; each row scaled to its largest magnitude."""
    import matplotlib
    if "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = len(tokens)
    rows = np.array([np.asarray(v, np.float64) for _, _, v in units])
    scale = np.abs(rows).max(axis=1, keepdims=True)
    rows = rows / np.where(scale > 0, scale, 1)
    fig, ax = plt.subplots(figsize=heat_map_inches(len(units), tokens, level))
    image = ax.imshow(rows, cmap="bwr", vmin=-1, vmax=1, aspect="auto",
                      interpolation="nearest")
    ax.set_yticks(range(len(units)), [label for _, label, _ in units], fontsize=8,
                  parse_math=False)
    if level == "char":
        shown = [{"\n": "\u21b5", "\t": "\u21e5", " ": "\u00b7"}.get(ch, ch) for ch in tokens]
        # Text as written ("$" is no math), glyphs the monospace font lacks from fonts
        # that hold them.
        literal = {"family": text_fonts(shown), "parse_math": False}
        background = image.to_rgba(rows)  # (units, T, 4): the colour of every cell
        for t, ch in enumerate(shown):
            for r in range(len(units)):
                ax.text(t, r, ch, ha="center", va="center", fontsize=7,
                        color=readable_text_colour(background[r, t, :3]), **literal)
        ax.set_xticks([])
    else:
        labels = [cut_label(token) for token in tokens]
        ax.set_xticks(range(T), labels, rotation=90, fontsize=7, parse_math=False,
                      family=text_fonts(labels, SANS))
    # (Over the figure, not the map: a narrow map under wide unit labels cut it off.)
    fig.suptitle("units over the text (each row scaled to its largest |value|; red +, blue -)",
                 fontsize=9)
    with quiet_glyphs():  # (text_fonts has said which characters no font holds)
        fig.tight_layout()
    try:
        # Atomically: a full disk or Ctrl-C while drawing leaves the old file as it was.
        save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)


def run_attention(args):
    """Answer one question and draw where the decoder looked at each step."""
    from common.attention_map import attention_matrix, plot_attention
    from models import LanguageModel
    from models import load_model as load_any_model

    model, meta = checked(load_any_model, args.model)
    name = type(model).__name__
    if isinstance(model, LanguageModel):
        raise UsageError(f"{args.model} holds the language model {name}: attention needs a "
                         "sequence-to-sequence model with attention (train_seq2seq.py --model "
                         "attention --save); inspect a language model with units or surprisal")
    attention = getattr(getattr(model, "decoder", None), "attention", None)
    if attention is None or not hasattr(attention, "attention_weights"):
        raise UsageError(f"{args.model} holds the model {name}, which has no "
                         "attention; train one with train_seq2seq.py --model attention")
    vocab = meta.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(c, str) for c in vocab or [None]):
        raise UsageError(f"{args.model} has no vocabulary; save it with train_seq2seq.py --save")
    try:
        vocab = model_vocab(vocab, model.config["vocab_size"], args.model, "characters")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    index = {c: i for i, c in enumerate(vocab)}
    width, answer_length = seq2seq_widths(meta, args)
    check_attention_memory(model, width, answer_length)
    question = args.input.ljust(width)
    if len(args.input) < width and " " not in index:  # (questions of one width, no padding)
        raise UsageError(f"--input {args.input!r} has {len(args.input)} characters, and the "
                         f"model's questions {width} with no space to pad with (its vocabulary "
                         f"has none): give {width} characters")
    unknown = sorted({c for c in question if c not in index})
    if unknown:
        raise UsageError(f"{len(unknown)} characters of --input are not in the model's "
                         "vocabulary: " + ", ".join(map(repr, unknown)))
    if args.start not in index:
        raise UsageError(f"--start {args.start!r} is not in the model's vocabulary")
    reverse = bool(meta.get("reverse"))
    read = question[::-1] if reverse else question  # what the encoder was trained to read
    xs = np.array([[index[c] for c in read]])
    answer_ids = model.generate(xs, index[args.start], answer_length)[0]
    answer = "".join(vocab[int(i)] for i in answer_ids)
    weights = attention_matrix(attention.attention_weights, 0)  # (answer, question as read)
    if reverse:
        weights = weights[:, ::-1]  # columns in the order the question is written
    print(f"{question!r} -> {answer!r}"
          + ("  (the model reads the question reversed)" if reverse else ""))
    for t, c in enumerate(answer):
        j = int(np.argmax(weights[t]))
        print(f"  answer {t} {c!r}: most attention on question {j} {question[j]!r} "
              f"({weights[t, j]:.3f})")
    with writing("--png", args.png):
        plot_attention(weights, list(question), list(answer), path=args.png,
                       title=f"{question.strip()} -> {answer.strip()}")
    print(f"heat map: {one_line(args.png)}")
    return 0


def seq2seq_widths(meta, args):
    """``(question width, answer characters after the start)`` for ``attention``:
    the flags', else those the model was trained on (saved with it by
    train_seq2seq.py, or its task's)."""
    from datasets import sequence

    width, length = args.width, args.answer_length
    saved_q, saved_a = sequence.trained_widths(meta)
    if width is None and saved_q is not None:
        width = saved_q
    if length is None and saved_a is not None:
        length = saved_a - 1
    task = meta.get("task")
    if (width is None or length is None) and task is None:  # (None would load the addition task)
        raise UsageError(f"{args.model} does not record the widths of the pairs it was trained "
                         f"on, nor its task (a model saved from Python): give --width and "
                         f"--answer-length")
    if width is None or length is None:
        try:
            (x, t), _ = sequence.load_data(task)
        except (OSError, TypeError, ValueError) as exc:
            raise UsageError(f"cannot tell the widths the model was trained with (task "
                             f"{task!r}: {exc}); give --width and --answer-length") from None
        width = x.shape[1] if width is None else width
        length = t.shape[1] - 1 if length is None else length
    if len(args.input) > width:
        raise UsageError(f"--input has {len(args.input)} characters; the model's questions "
                         f"have {width} (--width)")
    return width, length


def attention_bytes(model, width, answer_length):
    """An estimate of what answering one question of ``width`` characters with
    ``answer_length`` characters and drawing its heat map hold, by part."""
    V = model.vocab_size
    shapes = [p.shape for p in model.named_params().values()]
    columns = sum(s[1] for s in shapes if len(s) == 2 and s[1] != V)
    # plot_attention's figure: 0.28 inch a column and 0.3 a row besides the
    # margins, at 100 dots an inch.
    pixels = (max(400, 28 * width + 150)) * (max(250, 30 * answer_length + 120))
    parts = {
        # Every layer's output at every step in float32, about three times over.
        "states": 12 * (width + answer_length) * columns,
        # A row of weights per answer character: float32, then float64 twice.
        "attention": 20 * width * answer_length,
        "heat map": HEAT_MAP_BYTES_PER_PIXEL * pixels,
    }
    parts["total"] = sum(parts.values())
    return parts


def check_table_memory(model, tokens):
    """Raise :class:`UsageError` when the page's table of next-token
    probabilities (a float32 row of the vocabulary at every token, for its
    five best guesses) would not fit in the memory available."""
    table = len(tokens) * model.vocab_size * 4
    try:
        check_memory({"next-token table": table, "total": table + 64 * 2**20},
                     available_bytes(), hint="; give a smaller --length, or leave out --html")
    except NotEnoughMemory as exc:
        raise UsageError(f"--html over {len(tokens):,} tokens of a {model.vocab_size:,}-token "
                         f"vocabulary: {exc}") from None


def check_attention_memory(model, width, answer_length):
    """Raise :class:`UsageError` when ``attention`` would not fit in the memory available."""
    try:
        check_memory(attention_bytes(model, width, answer_length), available_bytes(),
                     hint="; give a smaller --width or --answer-length")
    except NotEnoughMemory as exc:
        raise UsageError(f"--width {width} and --answer-length {answer_length}: "
                         f"{exc}") from None


def checked(load, path):
    """``load(path)``, for a model file; its problems as :class:`UsageError`."""
    try:
        result = load(path)
    except FileNotFoundError:
        raise UsageError(f"model file not found: {path}") from None
    except (OSError, TypeError, ValueError) as exc:
        message = model_load_words(exc)
        if os.fspath(path) not in message:  # e.g. an unknown model class: say in which file
            message = f"{path}: {message}"
        raise UsageError(message) from None
    except MemoryError:
        raise UsageError(f"not enough memory to build the model saved in {path}") from None
    model = result[0]
    if problem := nonfinite_weights_problem(model, path):
        raise UsageError(problem)
    return result


def main(argv=None):
    args = parse_args(argv)
    if sys.stdout is None:  # closed before the start (>&-): refused before the work
        print("error: standard output is closed, so the table could go nowhere; write it to "
              "a file (> table.txt) or a pipe (> /dev/null keeps only the --html and --png "
              "files)", file=sys.stderr)
        return 1
    # A reader that stops reading (| head) or a full disk under the table: the run
    # goes on and writes its page and picture (a table that could not be written
    # is an error, exit status 1; a reader that stopped, none, and no notice);
    # tokens an ASCII terminal cannot show: escaped.
    with outputs_may_close(notice=False):
        return results_status(_run(args))


def _run(args):
    try:
        if args.command == "attention":
            code = run_attention(args)
        else:
            model, vocab, level = checked(load_model, args.model)
            run = run_surprisal if args.command == "surprisal" else run_units
            code = run(args, model, vocab, level)
        sys.stdout.flush()  # here, so that a closed pipe or a full disk is reported below
        return code
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FloatingPointError, OutputFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader (e.g. `| head`) stopped reading
        point_at_null(sys.stdout)
        return 0
    except OSError as exc:  # a full disk behind stdout (the files are named above)
        print(f"error: cannot write the output: {exc}", file=sys.stderr)
        return 1
    except MemoryError:  # a whole long text's tokens and states, past the checks
        print("error: not enough memory for the text: give a smaller --length (its first "
              "tokens; --offset for a later part)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
