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
import difflib
import os
import sys

# Running "python scripts/generate_text.py" from a clone puts scripts/ (not the
# repository) on sys.path; make the packages importable without installing.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from common.serialization import load_npz  # noqa: E402
from models import model_from_config  # noqa: E402

EOS = "<eos>"


class UsageError(Exception):
    """A problem with the model file or the arguments (exit status 2)."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Sample text from a language model saved by train_rnnlm.py --save.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", required=True, help="the .npz file written by train_rnnlm.py --save")
    p.add_argument("--start", default=None,
                   help="the prompt: words separated by spaces (word level) or text (char "
                        "level); default: the start of a sentence (word level) or line (char)")
    p.add_argument("--length", type=int, default=100, help="how many tokens to sample")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="below 1 is more conservative, above 1 more random; 0 is greedy")
    p.add_argument("--top-k", type=int, default=None,
                   help="sample among the K most likely tokens only")
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed, same text)")
    p.add_argument("--stop", default=None,
                   help="stop after this token is produced; escapes such as '\\n' are "
                        "understood (at word level '\\n' means <eos>)")
    args = p.parse_args(argv)
    if args.length < 0:
        p.error("--length must be >= 0")
    if not args.temperature >= 0:
        p.error("--temperature must be >= 0")
    if args.top_k is not None and args.top_k < 1:
        p.error("--top-k must be >= 1")
    return args


def load_model(path):
    """``(model, vocab, level)`` from a file written by ``train_rnnlm.py --save``.

    ``vocab`` is the list of tokens the model knows (id -> token).
    Raises :class:`UsageError` for a missing, unreadable or incomplete file.
    """
    if os.path.isfile(path):
        with open(path, "rb") as f:
            signature = f.read(4)
        if signature not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise UsageError(f"{path} is not an .npz file (no zip signature); pass the file "
                             "written by train_rnnlm.py --save")
    try:
        arrays, meta = load_npz(path)
    except FileNotFoundError:
        raise UsageError(f"model file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if meta.get("format") == "rnnlab-checkpoint":
        raise UsageError(f"{path} is a training checkpoint (train_rnnlm.py --checkpoint), which "
                         "has no vocabulary; generate from the file written by --save")
    for key in ("model", "config"):
        if key not in meta:
            raise UsageError(f"{path} has no {key!r} in its metadata: it holds parameters but "
                             "not the model description; save it with train_rnnlm.py --save "
                             "or model.save_params")
    vocab = meta.get("vocab")
    if not vocab:
        raise UsageError(f"{path} has no vocabulary, so ids cannot be turned into text; save "
                         "it with train_rnnlm.py --save or model.save_params(path, "
                         "vocab=id_to_word)")
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise UsageError(f"{path}: the vocabulary is not a list of strings")
    try:
        model = model_from_config(meta["model"], meta["config"])
        model.set_named_params(arrays, source=path)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"cannot rebuild the model from {path}: {exc}") from None
    V = model.vocab_size
    if len(vocab) < V:
        raise UsageError(f"{path}: the vocabulary has {len(vocab)} tokens but the model "
                         f"has {V}")
    # A model trained on the start of a corpus (train_rnnlm.py --corpus-size) may
    # know only the first V ids of the corpus' vocabulary.
    vocab = vocab[:V]
    level = meta.get("level") or _guess_level(vocab)
    if level not in ("word", "char"):
        raise UsageError(f"{path}: unknown token level {level!r} in the metadata")
    return model, vocab, level


def _guess_level(vocab):
    """For a file without a 'level': single characters and no <eos> mean char level."""
    return "char" if EOS not in vocab and all(len(t) == 1 for t in vocab) else "word"


def unescape(s):
    r"""Python escapes in ``s``: ``\n`` -> newline, ``\t`` -> tab, ``\u00e9`` -> é."""
    try:
        # latin-1 round trip keeps non-ASCII characters as they are.
        return codecs.decode(s.encode("latin-1", "backslashreplace"), "unicode_escape")
    except UnicodeDecodeError as exc:
        raise UsageError(f"bad escape sequence in {s!r}: {exc.reason}") from None


def tokenize_prompt(start, level):
    if level == "char":
        return list(start)
    return start.split()


def encode_prompt(tokens, vocab, level):
    """Map prompt tokens to ids; an unknown token is a :class:`UsageError`."""
    index = {t: i for i, t in enumerate(vocab)}
    ids = []
    for token in tokens:
        if token not in index:
            raise UsageError(_unknown_message(token, vocab, level))
        ids.append(index[token])
    return ids


def _unknown_message(token, vocab, level):
    what = "character" if level == "char" else "word"
    message = f"the {what} {token!r} is not in the model's vocabulary ({len(vocab)} tokens)"
    close = difflib.get_close_matches(token, vocab, n=5, cutoff=0.6) if level == "word" else []
    if close:
        message += "; close known words: " + ", ".join(close)
    else:
        known = [t for t in vocab if t != EOS][:10]
        message += "; some known " + what + "s: " + ", ".join(repr(t) for t in known)
    return message


def default_start(vocab, level):
    """Begin like a sentence (after <eos>) or a line (after a newline) when possible."""
    boundary = EOS if level == "word" else "\n"
    return [boundary] if boundary in vocab else [vocab[0]]


def stop_token(stop, level):
    token = unescape(stop)
    if level == "word" and token == "\n":
        token = EOS
    return token


def detokenize(tokens, level):
    """Word level: spaces between words, a line break for <eos>; char level: as is."""
    if level == "char":
        return "".join(tokens)
    out = []
    for token in tokens:
        if token == EOS:
            out.append("\n")
        else:
            if out and out[-1] != "\n":
                out.append(" ")
            out.append(token)
    return "".join(out)


def main(argv=None):
    args = parse_args(argv)
    try:
        model, vocab, level = load_model(args.model)
        if args.start is not None:
            prompt = tokenize_prompt(args.start, level)
            if not prompt:
                raise UsageError("--start is empty")
            shown = prompt
        else:
            prompt, shown = default_start(vocab, level), []
        start_ids = encode_prompt(prompt, vocab, level)
        stop_id = None
        if args.stop is not None:
            token = stop_token(args.stop, level)
            if token not in vocab:
                raise UsageError(f"--stop: {_unknown_message(token, vocab, level)}")
            stop_id = vocab.index(token)
        if args.top_k is not None and args.top_k > len(vocab):
            raise UsageError(f"--top-k {args.top_k} is larger than the vocabulary "
                             f"({len(vocab)} tokens)")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    ids = model.generate(start_ids, args.length, temperature=args.temperature,
                         top_k=args.top_k, stop_id=stop_id, rng=args.seed)
    text = detokenize(shown + [vocab[i] for i in ids], level)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
