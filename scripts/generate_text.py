"""Sample text from a language model saved by ``train_rnnlm.py --save``.

    python scripts/train_rnnlm.py --corpus synthetic --epochs 5 --save model.npz
    python scripts/generate_text.py --model model.npz --start "the dog" --length 30 --seed 1

    python scripts/train_rnnlm.py --corpus text --text-file book.txt --level char \\
        --model lstm --optimizer adam --lr 0.01 --save chars.npz
    python scripts/generate_text.py --model chars.npz --start "Once" --stop '\\n'

The file holds the parameters, the model class and its constructor
arguments, the vocabulary and the token level; nothing else is needed. The
prompt is printed first, then the sample: word-level tokens joined by
spaces with ``<eos>`` shown as a line break, characters joined as they are.
Problems with the file or the arguments exit with status 2 and a message.
"""

import argparse
import codecs
import contextlib
import difflib
import io
import math
import os
import sys
import unicodedata
import warnings

# Running "python scripts/generate_text.py" from a clone puts scripts/ (not the
# repository) on sys.path; make the packages importable without installing.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from common.checkpoint import is_checkpoint_file  # noqa: E402
from common.cli import (  # noqa: E402
    add_import_flag,
    at_least,
    import_model_classes,
    model_load_words,
    point_at_null,
    user_path,
    writable,
)
from common.inspection import (  # noqa: E402
    guess_level,
    model_vocab,
    nonfinite_weights_problem,
)
from common.memory import NotEnoughMemory, available_bytes, check_memory  # noqa: E402
from common.parallel import thread_count_problem  # noqa: E402
from common.serialization import load_npz_meta  # noqa: E402
from datasets.text import tokenize  # noqa: E402
from models import SEQ2SEQ_CLASS_NAMES, LanguageModel, checkpoint_to_model_words  # noqa: E402
from models import load_model as _load_model  # noqa: E402
from models.beam_search import useful_width  # noqa: E402
from models.generate import generate, iter_generate  # noqa: E402

EOS = "<eos>"

EXAMPLES = """examples:
  python scripts/train_rnnlm.py --corpus synthetic --epochs 5 --save model.npz
  python scripts/generate_text.py --model model.npz --start "the dog" --length 30 --seed 1
  python scripts/generate_text.py --model chars.npz --start Once --stop '\\n' --temperature 0.8

The model file holds the parameters, the model class, its sizes, the
vocabulary and the token level: nothing else is needed. The prompt is
printed, then the sample. Bad arguments or a bad model file: a message
and exit status 2.
"""


class UsageError(Exception):
    """A problem with the model file or the arguments (exit status 2)."""


def _temperature(text):
    try:
        value = float(text)
    except ValueError:  # in common.cli's words, not argparse's "invalid _temperature value"
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (0 is greedy), "
                                         f"got {text}")
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="generate_text.py",
        description="Sample text from a language model saved by train_rnnlm.py --save\n"
                    "(or by model.save_params(path, vocab=id_to_word)).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=user_path, required=True, metavar="FILE",
                   help="the .npz file written by train_rnnlm.py --save (required)")
    p.add_argument("--start", default=None, metavar="TEXT",
                   help="the prompt: words separated by spaces, a line end as <eos> (word "
                        "level), or text (char level) (default: the start of a sentence, i.e. "
                        "after <eos>, or of a line; for a model with neither, its first "
                        "token, shown)")
    p.add_argument("--length", type=at_least(0), default=100, metavar="N",
                   help="how many tokens to sample after the prompt (default: 100)")
    p.add_argument("--temperature", type=_temperature, default=1.0, metavar="T",
                   help="divides the scores: below 1 more conservative, above 1 more random, "
                        "0 greedy (default: 1.0)")
    p.add_argument("--top-k", type=at_least(1), default=None, metavar="K",
                   help="sample among the K most likely tokens only (default: all tokens)")
    p.add_argument("--seed", type=at_least(0), default=None, metavar="S",
                   help="random seed: the same seed gives the same text (default: a fresh "
                        "seed each run)")
    p.add_argument("--beam-width", type=at_least(1), default=None, metavar="K",
                   help="search for the most likely text keeping K candidates instead of "
                        "sampling (1 is greedy; about 48 x K x vocabulary bytes, refused when "
                        "more than the memory available; takes no --temperature, --top-k or "
                        "--seed) (default: sample)")
    p.add_argument("--stop", default=None, metavar="TOKEN",
                   help="stop after this token (one character at char level) is produced; "
                        "escapes such as '\\n' are understood, and at word level '\\n' means "
                        "<eos> (default: run for --length tokens)")
    add_import_flag(p)
    return p


def parse_args(argv=None):
    """The parsed flags; bad values exit with status 2 and a one-line message."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if problem := thread_count_problem() or import_model_classes(args.imports):
        parser.error(problem)
    if args.beam_width is not None and (args.temperature != 1.0 or args.top_k is not None
                                        or args.seed is not None):
        parser.error("--beam-width searches for the most likely text: it takes no "
                     "--temperature, --top-k or --seed")
    # (A notice, not a refusal: a sweep of temperatures may well include 0.)
    unused = [f for f, value in (("--top-k", args.top_k), ("--seed", args.seed))
              if value is not None]
    if args.temperature == 0 and unused:
        print(f"notice: --temperature 0 takes the most likely token at every step: "
              f"{' and '.join(unused)} change{'s' if len(unused) == 1 else ''} nothing",
              file=sys.stderr)
    return args


def checkpoint_message(path) -> str:
    """What to say when the model file ``path`` is a training checkpoint."""
    try:
        meta = load_npz_meta(path)
    except (OSError, ValueError):
        meta = {}
    saved = meta.get("model")
    if saved in SEQ2SEQ_CLASS_NAMES:
        return (f"{path} is a training checkpoint of a sequence-to-sequence run "
                f"(train_seq2seq.py --checkpoint), not a language model; generate_text.py "
                f"samples from the models train_rnnlm.py trains")
    return (f"{path} is a training checkpoint, which has no vocabulary; generate from the "
            f"file written by --save ({checkpoint_to_model_words(path, meta)})")


def load_model(path):
    """``(model, vocab, level)`` from a file written by ``train_rnnlm.py --save``.

    ``vocab`` is the list of tokens the model knows (id -> token). The
    file's arrays are checked against the sizes its config claims before
    the model is built. Raises :class:`UsageError` for a missing,
    unreadable, inconsistent or incomplete file. A file that does not record
    its level and whose tokens are all single characters is read at char
    level, with a ``notice:`` line on stderr saying so.
    """
    if is_checkpoint_file(path):  # (loading says what is wrong with another file)
        raise UsageError(checkpoint_message(path))
    try:
        model, meta = _load_model(path)
    except FileNotFoundError:
        raise UsageError(f"model file not found: {path}") from None
    except PermissionError as exc:  # (its words name the file and the fix)
        raise UsageError(str(exc)) from None
    except (OSError, ValueError) as exc:
        message = model_load_words(exc)
        if not message.startswith(os.fspath(path)):
            message = f"cannot rebuild the model from {path}: {message}"
        raise UsageError(message) from None
    except MemoryError:
        raise UsageError(f"not enough memory to build the model saved in {path}") from None
    if not isinstance(model, LanguageModel):
        raise UsageError(f"{path} holds the model {type(model).__name__}, not a language model; "
                         "generate_text.py samples from the models train_rnnlm.py trains")
    if problem := nonfinite_weights_problem(model, path):
        raise UsageError(problem)
    vocab = meta.get("vocab")
    if not vocab:
        raise UsageError(f"{path} has no vocabulary, so ids cannot be turned into text; save "
                         "it with train_rnnlm.py --save or model.save_params(path, "
                         "vocab=id_to_word)")
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise UsageError(f"{path}: the vocabulary is not a list of strings")
    try:
        vocab = model_vocab(vocab, model.vocab_size, path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    level = meta.get("level")
    if not level:
        level = guess_level(vocab)
        if level == "char":
            # Only this guess can be wrong: a vocabulary of words that are all one
            # character long (digits, say) looks the same; <eos> or a longer token
            # leaves no doubt. Said once, so that a refused " " has its reason.
            print(f"notice: {path} does not record its token level: guessed char level, "
                  f"since every token is one character and none is {EOS}; if the tokens "
                  f"are words, record it with model.save_params(path, vocab=..., "
                  f"level=\"word\")", file=sys.stderr)
    if level not in ("word", "char"):
        raise UsageError(f"{path}: unknown token level {level!r} in the metadata")
    return model, vocab, level


def unescape(s):
    r"""Python escapes in ``s``: ``\n`` -> newline, ``\t`` -> tab, ``\u00e9`` -> é."""
    try:
        with warnings.catch_warnings():
            # An unknown escape (\\q) is only a DeprecationWarning in Python: an error here.
            warnings.simplefilter("error", DeprecationWarning)
            # latin-1 round trip keeps non-ASCII characters as they are.
            return codecs.decode(s.encode("latin-1", "backslashreplace"), "unicode_escape")
    except UnicodeDecodeError as exc:
        raise UsageError(f"bad escape sequence in {s!r}: {exc.reason}") from None
    except DeprecationWarning:
        raise UsageError(f"bad escape sequence in {s!r}: a backslash starts an escape "
                         f"(\\n, \\t, \\u00e9); write a backslash itself as \\\\") from None


def tokenize_prompt(start, level):
    """``--start`` cut as the training text was: characters, or words with
    ``<eos>`` at each line end (a prompt of several lines; a word ``<eos>``
    typed in it is one too)."""
    return tokenize(start, level)


def encode_prompt(tokens, vocab, level):
    """Map prompt tokens to ids; an unknown token is a :class:`UsageError`."""
    index = {t: i for i, t in enumerate(vocab)}
    ids = []
    for i, token in enumerate(tokens):
        if token not in index:
            cluster = _cluster(tokens, i) if level == "char" else token
            form = None if _other_form(token, vocab, level) else \
                _other_form(cluster, vocab, level)
            if form is None:
                raise UsageError(_unknown_message(token, vocab, level))
            # An accent typed as a mark of its own (e + U+0301, as macOS may write
            # it) for a model of precomposed letters: the mark alone, or its letter
            # alone, has no other form; the letter with its marks has.
            name, spelled = form[0], _spell(token)
            raise UsageError(
                f"the character {token!r}{f' ({spelled})' if spelled != token else ''} is not "
                f"in the model's vocabulary ({len(vocab)} tokens); the model knows "
                f"{_spell(cluster)} as {_spell(form[1])} (another Unicode form): give the text "
                f"in {name} form, e.g. with unicodedata.normalize({name!r}, text)")
        ids.append(index[token])
    return ids


def _cluster(chars, i):
    """The characters about ``chars[i]`` that NFC joins with it, as a string:
    a letter and its marks (``o`` + U+0323 + U+0302 as ộ), Hangul jamo as a
    syllable (whose vowels and finals are no combining marks)."""
    def nfc_length(start, end):
        return len(unicodedata.normalize("NFC", "".join(chars[start:end])))

    # Back to the letter the marks (or a syllable's later jamo) belong to, then on
    # while NFC joins the next character: a mark joins no mark without its letter.
    start = i
    while start > 0 and (unicodedata.combining(chars[start])
                         or "\u1160" <= chars[start] <= "\u11ff"):  # (Hangul vowels, finals)
        start -= 1
    end = start + 1
    while end < len(chars) and nfc_length(start, end + 1) <= nfc_length(start, end):
        end += 1
    return "".join(chars[start:max(end, i + 1)])


def _unknown_message(token, vocab, level, escapes=False):
    """Why ``token`` (a prompt's, or ``--stop``'s when ``escapes``) cannot be encoded."""
    what = "character" if level == "char" else "word"
    message = f"the {what} {token!r} is not in the model's vocabulary ({len(vocab)} tokens)"
    if form := _other_form(token, vocab, level):
        # é typed precomposed (NFC, as most keyboards) and a model of e + U+0301 (NFD,
        # as some macOS files) look the same but are different tokens.
        name, known = form
        if not escapes:
            how = f"give the text in {name} form, e.g. with unicodedata.normalize({name!r}, text)"
        elif level == "char" and len(known) > 1:  # --stop takes one character
            how = f"stop at its last character, --stop {ascii(known[-1])}"
        else:
            how = f"--stop {ascii(known)}"
        return (f"{message}; the model knows it as {_spell(known)} (another Unicode form): "
                f"{how}")
    close = difflib.get_close_matches(token, vocab, n=5, cutoff=0.6) if level == "word" else []
    if close:
        message += "; close known words: " + ", ".join(close)
    else:
        known = [t for t in vocab if t != EOS][:10]
        message += "; some known " + what + "s: " + ", ".join(repr(t) for t in known)
    return message


def _other_form(token, vocab, level):
    """``(name, form)``: ``token`` in the normal form ("NFC" or "NFD") the model
    knows (every character of it, at char level), or None."""
    known = set(vocab)
    for name in ("NFC", "NFD"):
        form = unicodedata.normalize(name, token)
        if form != token and (form in known if level == "word" else set(form) <= known):
            return name, form
    return None


def _spell(chars):
    """``chars`` one by one, marks and invisible ones by code point: "e + U+0301"."""
    return " + ".join(c if c.isprintable() and unicodedata.category(c)[0] not in "MC"
                      and unicodedata.category(c) != "Sk" else f"U+{ord(c):04X}" for c in chars)


def default_start(vocab, level):
    """``(prompt, shown)``: begin like a sentence (after <eos>) or a line
    (after a newline), unseen; without either in ``vocab``, from its first
    token, shown as a --start would be (with a notice on stderr)."""
    # (A text of old Mac line ends, a lone CR each, has no "\n": its lines end in "\r".)
    boundary = EOS if level == "word" else "\n" if "\n" in vocab or "\r" not in vocab else "\r"
    if boundary in vocab:
        return [boundary], []
    print(f"notice: the model has no {'<eos>' if level == 'word' else 'line break'} to start "
          f"after: the sample starts from its first token, {vocab[0]!r} (--start chooses "
          f"another)", file=sys.stderr)
    return [vocab[0]], [vocab[0]]


def stop_token(stop, level):
    token = unescape(stop)
    if level == "word" and token in ("\n", "\r", "\r\n"):  # (a line end of any kind is <eos>)
        token = EOS
    return token


def stop_id_of(stop, vocab, level):
    """The id of ``--stop`` in ``vocab``; :class:`UsageError` for one the model cannot produce."""
    token = stop_token(stop, level)
    if level == "char" and len(token) != 1:
        # "\r\n", or an emoji of several code points, is several tokens: generation
        # stops after one token, so it could never stop "after" them.
        message = f"--stop must be one character at character level, got {len(token)}"
        if token:
            message += f": {token!r} ({_spell(token)})"
        if (form := _other_form(token, vocab, level)) and len(form[1]) == 1:
            message += (f"; the model knows it as {_spell(form[1])} (another Unicode "
                        f"form): --stop {ascii(form[1])}")
        elif token and token[-1] in vocab:
            message += f"; stop at one of them, e.g. the last: --stop {ascii(token[-1])}"
        raise UsageError(message)
    if token not in vocab:
        if level == "char" and token == "\n" and "\r" in vocab:
            raise UsageError("--stop: the model has no '\\n': its text's lines end with a lone "
                             "'\\r' (old Mac line ends): --stop '\\r'")
        raise UsageError(f"--stop: {_unknown_message(token, vocab, level, escapes=True)}")
    return vocab.index(token)


def beam_search_bytes(model, width, length):
    """An estimate of what beam search with ``width`` beams holds at its peak, by part."""
    V = model.vocab_size
    shapes = [p.shape for p in model.named_params().values()]
    columns = sum(s[1] for s in shapes if len(s) == 2 and s[1] != V)
    parts = {
        # models/beam_search.py, per step: the (width, V) log-probabilities in
        # float64, their exp, the candidates, their negation, argsort's int64
        # order, and the model's float32 scores: about 48 bytes an entry.
        "scores": 48 * width * V,
        # Every layer's output and state for each beam, in float32, about three
        # times over (computed, gathered for the chosen beams, carried).
        "states": 12 * width * columns,
        "history": 3 * 8 * width * length,  # int64 ids of every beam, copied each step
    }
    parts["total"] = sum(parts.values())
    return parts


def check_beam_memory(model, width, length, asked):
    """Raise :class:`UsageError` when beam search would not fit in the memory available
    (``asked``: the width the command line gave, before :func:`models.beam_search.useful_width`)."""
    estimate = beam_search_bytes(model, width, length)
    available = available_bytes()
    fits = available * width // estimate["total"] if available else 0
    if fits >= 1:  # (every part grows with the width)
        hint = f"; --beam-width {fits} or less fits"
    else:  # not even one beam: the history of a long --length
        one = beam_search_bytes(model, 1, 0)["total"]
        length_fits = (available - one) // beam_search_bytes(model, 1, 1)["history"] \
            if available else 0
        hint = (f"; --beam-width 1 with --length {length_fits} or less fits"
                if length_fits >= 1 else "")
    try:
        check_memory(estimate, available, hint=hint)
    except NotEnoughMemory as exc:
        raise UsageError(f"--beam-width {asked} and --length {length} with a vocabulary of "
                         f"{model.vocab_size}: {exc}") from None


def detokenize(tokens, level):
    """Word level: spaces between words, a line break for <eos>; char level: as is."""
    text = io.StringIO()
    TextOut(text, level).write(tokens)
    return text.getvalue()


class TextOut:
    """Writes tokens to ``stream`` as they come, joined as :func:`detokenize`
    joins them, so the sample shows as it grows and what was written before
    an interruption stays written. ``end()`` closes the last line.
    """

    def __init__(self, stream, level):
        self.stream, self.level = stream, level
        self.last = ""  # the last piece written ("" before the first)
        self.warned = False  # about the encoding, once per text

    def write(self, tokens):
        pieces = []
        for token in tokens:
            if self.level == "word" and token == EOS:
                piece = "\n"
            elif self.level == "word" and self.last not in ("", "\n"):
                piece = " " + token
            else:
                piece = token
            pieces.append(piece)
            self.last = piece[-1:] or self.last
        self._put("".join(pieces))

    def end(self):
        if self.last != "\n":
            self._put("\n")
            self.last = "\n"

    def _put(self, text):
        out = writable(text, self.stream, warn=not self.warned)
        self.warned = self.warned or out != text
        self.stream.write(out)
        self.stream.flush()


def main(argv=None):
    if sys.stderr is None:  # closed (2>&-): the notices go nowhere, never into the text
        with open(os.devnull, "w") as nowhere, contextlib.redirect_stderr(nowhere):
            return main(argv)
    args = parse_args(argv)
    if sys.stdout is None:  # closed before the start (>&-): refused before the work
        print("error: standard output is closed, so the text could go nowhere; write it to "
              "a file (> out.txt) or a pipe", file=sys.stderr)
        return 1
    try:
        model, vocab, level = load_model(args.model)
        if args.start is not None:
            prompt = tokenize_prompt(args.start, level)
            if not prompt:
                raise UsageError("--start is empty")
            if level == "word" and EOS in prompt and EOS not in vocab:
                raise UsageError("--start holds a line end (or the word <eos>), read as <eos> "
                                 "as in training, and this model never saw one (its text had "
                                 "no line ends): give the prompt on one line, without <eos>")
            shown = prompt
        else:
            prompt, shown = default_start(vocab, level)
        start_ids = encode_prompt(prompt, vocab, level)
        stop_id = None
        if args.stop is not None:
            stop_id = stop_id_of(args.stop, vocab, level)
        if args.top_k is not None and args.top_k > len(vocab):
            raise UsageError(f"--top-k {args.top_k} is larger than the vocabulary "
                             f"({len(vocab)} tokens)")
        beam_width = args.beam_width
        if beam_width is not None:
            beam_width = useful_width(beam_width, model.vocab_size, args.length)
            check_beam_memory(model, beam_width, args.length, asked=args.beam_width)
        # (Sampling needs no such check: each token is written as it is drawn.)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    out = TextOut(sys.stdout, level)
    try:
        out.write(shown)
        # The functions, not the method: the book's RnnlmGen and BetterRnnlmGen,
        # which a file may hold, override generate with the book's arguments.
        if beam_width is not None:  # the best text is known only at the end
            out.write([vocab[i] for i in generate(model, start_ids, args.length,
                                                  stop_id=stop_id, beam_width=beam_width)])
        else:  # each token as it is drawn
            for i in iter_generate(model, start_ids, args.length,
                                   temperature=args.temperature, top_k=args.top_k,
                                   stop_id=stop_id, rng=args.seed):
                out.write([vocab[i]])
        out.end()
    except FloatingPointError as exc:
        _end_quietly(out)
        print(f"error: {exc} (the model file holds non-finite weights?)", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader (e.g. `| head`) stopped reading
        point_at_null(sys.stdout)
        return 0
    except KeyboardInterrupt:  # what was written stays; its line is closed
        _end_quietly(out)
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk or a closed terminal behind stdout
        print(f"error: cannot write the text: {exc}", file=sys.stderr)
        return 1
    except MemoryError:  # past the check (threads and BLAS take memory after it)
        _end_quietly(out)
        what = (f"beam search with --beam-width {args.beam_width}: give a smaller "
                f"--beam-width" if beam_width is not None else "sampling")
        print(f"error: not enough memory for the {what}", file=sys.stderr)
        return 1
    return 0


def _end_quietly(out):
    """Close the sample's last line after a failure, if the output still takes it."""
    try:
        out.end()
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
