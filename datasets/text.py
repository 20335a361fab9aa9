"""Any UTF-8 text file as a language-modelling corpus, at word or character level.

    from datasets import text

    corpus, word_to_id, id_to_word = text.load_data("my_book.txt", level="char")
    train, valid, test = text.split_corpus(corpus, (0.9, 0.05, 0.05))

    # or encode a held-out file with the vocabulary of the training file:
    corpus_val, _, _ = text.load_data("held_out.txt", vocab=word_to_id)

Tokens:

- ``level="word"``: each line is split on whitespace and every line end
  becomes the token ``<eos>`` (the Penn Treebank convention, so ``ptb.py``
  uses this same function). A line ends at ``"\\n"`` (Unix), ``"\\r\\n"``
  (Windows) or a lone ``"\\r"`` (old Macs), as in :mod:`datasets.sequence`:
  the same text gives the same tokens whatever its line ends (and line
  numbers in messages count lines this way, at both levels).
- ``level="char"``: every character is a token, line ends included as the
  file writes them: ``"\\n"`` (Unix), the two tokens ``"\\r"``, ``"\\n"``
  (Windows) or ``"\\r"`` (old Macs). They are not translated, so that the
  model learns the file's own characters and a text it is given later (by
  ``scripts/inspect_model.py``, say) reads the same way; a model trained on
  one kind of line end has not seen the others.

A byte-order mark (U+FEFF) is dropped at the start of the file, where
editors on Windows write it. Anywhere else it is an invisible character that
would stick to a word (``'\\ufeffsecond'`` is not ``'second'``), the trace of
two files joined with ``cat`` when the second began with one, so the file is
refused with a message naming the line and how to remove it.

Ids are given in order of first appearance, so the same file always gives
the same ids. Problems with the file raise :class:`CorpusError` (a
``ValueError``) or ``FileNotFoundError`` with a message that names the file
and what is wrong; they never surface as a bare codec or NumPy error.
"""

from __future__ import annotations

import codecs
import errno
import math
import os
import re
from collections.abc import Mapping, Sequence

import numpy as np

from common.file_access import is_terminal, unreadable_words
from common.serialization import link_loops, loop_words, special_file_kind

from ._checks import check_path, is_int

__all__ = [
    "EOS",
    "LEVELS",
    "CorpusError",
    "UnknownTokenError",
    "build_vocab",
    "encode",
    "load_data",
    "read_text",
    "split_corpus",
    "tokenize",
]

EOS = "<eos>"
LEVELS = ("word", "char")

# The fewest tokens a corpus can have: one input and the next token as its target.
MIN_TOKENS = 2


class CorpusError(ValueError):
    """A text that cannot be used as a corpus: bad encoding, empty, too short, unknown token."""


class UnknownTokenError(CorpusError):
    """A token that is not in the vocabulary used for encoding; ``.token`` names it."""

    def __init__(self, message: str, token: str):
        super().__init__(message)
        self.token = token


def read_text(path: str | os.PathLike) -> str:
    """Read a whole file as UTF-8 (a leading byte-order mark is dropped).

    Line ends are kept as they are (``"\\r\\n"`` stays two characters).

    Raises:
        FileNotFoundError: the file does not exist (also: a link to none, or
            links that lead round in a loop, or a file named as a folder on
            the way, ``notes.txt/book.txt``: the message says which).
        IsADirectoryError: ``path`` is a folder.
        PermissionError: this user may not read the file, or enter a folder on
            its way (the message says which, and the ``chmod`` that fixes it).
        CorpusError: the file is not text (a gzip, zip or ``.npz``, PNG or PDF
            file by its first bytes, or another binary file by its NUL bytes);
            the bytes are not valid UTF-8 (the message gives the byte offset and
            line of the first bad byte, and names UTF-16 or UTF-32 when the file
            looks like one); or a byte-order mark after the start of the file
            (named with its line).
    """
    path = check_path(path, "path")
    kind = special_file_kind(path)
    if kind in ("a character device", "a block device") and not is_terminal(path):
        # /dev/zero or a disk: read whole, it would fill the memory. (A pipe ends
        # when its writer does, and a terminal at Ctrl-D.)
        if str(path) in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"):
            # (A run of text piped in is resumed by piping the same text again.)
            raise CorpusError(f"{path} reads standard input, which is {kind} here (nothing is "
                              f"piped in): pipe the text in, e.g. cat book.txt | python ..., "
                              f"or give a text file")
        raise CorpusError(f"{path} is {kind}, not a text file; give a text file")
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        # Only a shell expands "~"; a quoted or "--flag=~/..." path reaches us as is.
        tilde = " ('~' is not expanded here: write the full path)" if str(path)[:1] == "~" else ""
        link = f"; it is {_dangling_words(path)}" if os.path.islink(path) else ""
        raise FileNotFoundError(
            f"text file not found: {path} (absolute: {path.absolute()}){link}{tilde}"
        ) from err
    except IsADirectoryError as err:
        raise IsADirectoryError(f"{path} is a folder; expected a text file") from err
    except PermissionError as err:  # the file's own permissions, or a folder on the way
        raise PermissionError(unreadable_words(path)) from err
    except NotADirectoryError as err:  # 'notes.txt/book.txt'
        on_the_way = next((folder for folder in path.parents if folder.is_file()), None)
        raise FileNotFoundError(f"text file not found: {path}: " + (
            f"{on_the_way} is a file, not a folder" if on_the_way else
            "a folder on its way is a file") + "; give the path of the text file") from err
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        what = (f"is {loop_words(str(path))}" if link_loops(str(path)) else
                "has links on its way that lead round in a loop")
        raise FileNotFoundError(f"text file not found: {path} {what}; give the path of the "
                                f"text file itself") from err
    # Before decoding: read as Latin-1, any binary file "decodes", and converting
    # it with iconv (the advice below) would only turn it into garbage text.
    if problem := _binary_file_problem(data, path):
        raise CorpusError(f"{path} {problem}")
    wide = _wide_encoding(data)
    if wide is None and (nul := data.find(b"\0")) >= 0 and not _stray_nuls(data):
        raise CorpusError(
            f"{path} holds a NUL byte (byte offset {nul}), which text never does, and does "
            f"not read as UTF-8, UTF-16 or UTF-32 text either: it looks like a binary file, "
            f"not text. Give a text file (UTF-8; UTF-16 without a byte-order mark, of a "
            f"script with few NUL bytes, cannot be told from binary data: re-save it as UTF-8)."
        )
    try:
        # "utf-8-sig" drops the byte-order mark some Windows editors write, which
        # would otherwise stick to the first word.
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        # The codec counts from after a leading byte-order mark: offsets in the file.
        mark = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
        start, end = err.start + mark, err.end + mark
        before = data[mark:start].decode("utf-8")  # valid up to the bad byte
        line = _line_number(before, len(before))
        bad = data[start:end]
        # UTF-16 or UTF-32 by its byte-order mark or its NULs; otherwise latin-1 is
        # the common case (and any byte is valid latin-1).
        if end == len(data) and err.reason == "unexpected end of data":
            if not wide and before.isascii():  # no UTF-8 beyond ASCII to vouch for the file
                source = "cp1252" if _windows_1252(data) else "latin1"
                raise CorpusError(
                    f"{path} ends in a byte that does not finish a UTF-8 character (line "
                    f"{line}), after text that is all ASCII: a file of another encoding, "
                    f"such as Latin-1 (re-save it as UTF-8, e.g. `iconv -f {source} -t "
                    f"utf-8 in.txt > out.txt`), or one cut at a byte count (drop its last, "
                    f"cut line, or cut it by lines, head -n)."
                ) from err
            raise CorpusError(
                f"{path} ends in the middle of a UTF-8 character (line {line}): a file cut at "
                f"a byte count? Drop its last, cut line, or cut it by lines (head -n)."
            ) from err
        where = f"byte offset {start} (line {line}) holds {bad!r} ({err.reason})"
        if not wide and not before.isascii():
            # Converted whole, the UTF-8 before the bad byte would become garbage.
            raise CorpusError(
                f"{path} is not valid UTF-8: {where}, after text that is UTF-8 with "
                f"characters beyond ASCII: the file mixes encodings (files of two encodings "
                f"joined?). Converting all of it would garble its UTF-8 part: re-type line "
                f"{line} and those like it, or drop the bytes that are not UTF-8, e.g. "
                f"`iconv -c -f utf-8 -t utf-8 in.txt > out.txt`."
            ) from err
        source = wide or ("cp1252" if _windows_1252(data) else "latin1")
        looks = f" (it looks like {wide[:6].upper()})" if wide else ""
        raise CorpusError(
            f"{path} is not valid UTF-8{looks}: {where}. Re-save the file as UTF-8, e.g. "
            f"`iconv -f {source} -t utf-8 in.txt > out.txt`."
        ) from err
    # NUL is valid UTF-8 but never in text: UTF-16 or UTF-32 without a byte-order
    # mark (ASCII letters with NULs between them) decodes "fine"; in UTF-8 text
    # otherwise, a stray one is a slip (a binary file with NULs was refused above).
    if (nul := content.find("\0")) >= 0:
        line = _line_number(content, nul)
        if wide is None:
            raise CorpusError(
                f"{path} holds a NUL byte (line {line}), which text never does: remove it, "
                f"e.g. `tr -d '\\000' < in.txt > out.txt`."
            )
        raise CorpusError(
            f"{path} holds a NUL byte (line {line}), which text never does: it looks like "
            f"{wide[:6].upper()} without a byte-order mark. Re-save it as UTF-8, e.g. "
            f"`iconv -f {wide} -t utf-8 in.txt > out.txt`."
        )
    # Only a leading byte-order mark is a mark ("utf-8-sig" dropped it); any other
    # U+FEFF is invisible and would become part of a token: refused, not guessed at.
    if (bom := content.find("\ufeff")) >= 0:
        line = _line_number(content, bom)
        raise CorpusError(
            f"{path}, line {line}: a byte-order mark (U+FEFF) after the start of the file, "
            f"an invisible character that would become part of a token. Were two files "
            f"joined with `cat`, the second beginning with a byte-order mark? Remove it, "
            f"e.g. `sed 's/\\xEF\\xBB\\xBF//g' in.txt > out.txt` (GNU sed)."
        )
    return content


# The first bytes of files given for a text file by mistake: what the file is and
# what to do instead ({path} is the file).
_SIGNATURES = (
    (b"\x1f\x8b", "a gzip file", "decompress it first, e.g. `gunzip -k {path}`"),
    (b"PK\x03\x04", "a zip archive", "extract the text file from it first, e.g. `unzip {path}`"),
    (b"\x93NUMPY", "a NumPy .npy file", "it holds an array; give a text file"),
    (b"\x89PNG", "a PNG image", "give a text file"),
    (b"%PDF-", "a PDF document", "extract its text first, e.g. `pdftotext {path} out.txt`"),
)

# Characters that text never holds (all C0 controls but tab, line ends and form
# feeds, and DEL): binary data read as UTF-16 or UTF-32 is full of them.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _dangling_words(path) -> str:
    """What the link ``path``, which leads to no file, is, in words: its target
    and, where another path is the one missing (the target read from the
    link's own folder, through further links), that path."""
    target, leads = os.readlink(path), os.path.realpath(path)
    # (realpath folds 'folder/..' by its letters: a path it names that exists is
    # not the missing one, and is not said)
    if leads == target or os.path.lexists(leads):
        return f"a link to {target}, which does not exist"
    return f"a link to {target}, which leads to {leads}, which does not exist"


def _binary_file_problem(data: bytes, path) -> str | None:
    """What ``data`` is when its first bytes say it is a binary file, or None."""
    for signature, what, advice in _SIGNATURES:
        # ("%PDF-" can also begin a line of text: a PDF has objects, and most hold bytes
        # that UTF-8 does not.)
        if data.startswith(signature) and not (signature == b"%PDF-" and _is_utf8(data)
                                               and b"endobj" not in data):
            if signature == b"PK\x03\x04" and path.suffix.lower() == ".npz":
                what, advice = "a NumPy .npz file (a zip archive of arrays)", (
                    "it holds arrays (a saved model, say); give a text file")
            return f"looks like {what}, not text: {advice.format(path=path)}"
    return None


def _stray_nuls(data: bytes) -> bool:
    """Whether the NULs of ``data`` are slips in UTF-8 text: the rest reads as
    UTF-8, they are few, and no other control character that text never
    holds is there (an array of small integers is all NULs and controls)."""
    if data.count(0) * 8 >= len(data) or not _is_utf8(data):
        return False
    return not _CONTROL.search(data.replace(b"\0", b"").decode("utf-8"))


def _windows_1252(data: bytes) -> bool:
    """Whether ``data`` reads as Windows-1252 and holds a byte of 0x80-0x9F,
    which that encoding makes quotes, dashes and the euro sign, and latin1
    invisible control characters."""
    if not re.search(rb"[\x80-\x9f]", data):
        return False
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _wide_encoding(data: bytes) -> str | None:
    """``"utf-32"`` or ``"utf-16"`` (by a byte-order mark), ``"utf-32le"``,
    ``"utf-32be"``, ``"utf-16le"`` or ``"utf-16be"`` (text without one), or None.

    The names are iconv's. Only a file with NUL bytes is tried without a mark:
    UTF-16 of non-Latin text may have none, but then it cannot be told from
    binary data either.
    """
    # UTF-32 first: its little-endian mark (ff fe 00 00) begins with UTF-16's (ff fe).
    for mark, name in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(mark):
            return name
    # A few NULs in a file of valid UTF-8 are a slip, and almost any two bytes read
    # as some CJK letter in UTF-16: naming that reading would send the user to iconv.
    # (UTF-16 or UTF-32 of Latin text is a half to three quarters NUL bytes; UTF-16
    # of CJK text has few, but is seldom valid UTF-8.)
    if b"\0" not in data or (data.count(0) * 8 < len(data) and _is_utf8(data)):
        return None
    # UTF-32 first again: ASCII in UTF-32 also reads as UTF-16 (with U+0000 between
    # the letters), but not the other way round (its units would pass U+10FFFF).
    # UTF-16 reads either way (h\0 is U+0068 or U+6800), so the NULs say which end
    # comes first: after the letters (odd offsets) in little-endian.
    utf16 = ("utf-16le", "utf-16be")
    if data[0::2].count(0) > data[1::2].count(0):
        utf16 = utf16[::-1]
    for name in ("utf-32le", "utf-32be", *utf16):
        try:
            content = data.decode(name)
        except UnicodeDecodeError:  # odd length, a lone surrogate, past U+10FFFF
            continue
        if not _CONTROL.search(content):
            return name
    return None


def tokenize(content: str, level: str = "word") -> list[str]:
    """Cut a string into tokens.

    Args:
        content: the text.
        level: ``"word"`` (whitespace-separated words, ``<eos>`` after each
            line) or ``"char"`` (one token per character).

    Returns:
        list of str tokens, in text order.
    """
    _check_level(level)
    if level == "char":
        return list(content)
    # Same as the book's content.replace("\n", " <eos> ").split(): every line end
    # gives one <eos>; text after the last one gives none.
    lines = _split_lines(content)
    tokens: list[str] = []
    for line in lines[:-1]:
        tokens.extend(line.split())
        tokens.append(EOS)
    tokens.extend(lines[-1].split())
    return tokens


def build_vocab(tokens: Sequence[str]) -> tuple[dict[str, int], dict[int, str]]:
    """Number the distinct tokens in order of first appearance.

    Returns:
        ``(word_to_id, id_to_word)``, with ids ``0 .. V-1``.
    """
    # dict keeps insertion order, so fromkeys lists tokens by first appearance.
    word_to_id = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    id_to_word = {i: token for token, i in word_to_id.items()}
    return word_to_id, id_to_word


def encode(tokens: Sequence[str], word_to_id: Mapping[str, int]) -> np.ndarray:
    """Map tokens to ids.

    Returns:
        np.int32 array of shape ``(len(tokens),)``.

    Raises:
        UnknownTokenError: a token is not in ``word_to_id`` (the message names
            it and its position in ``tokens``).
    """
    try:
        ids = [word_to_id[token] for token in tokens]
    except KeyError as err:
        token = err.args[0]
        raise UnknownTokenError(
            f"token {token!r} (position {list(tokens).index(token)}) is not in the vocabulary "
            f"of {len(word_to_id)} tokens",
            token,
        ) from err
    return np.array(ids, dtype=np.int32)


def load_data(
    path: str | os.PathLike,
    level: str = "word",
    vocab: Mapping[str, int] | None = None,
) -> tuple[np.ndarray, dict[str, int], dict[int, str]]:
    """Load a UTF-8 text file as one long sequence of token ids.

    Args:
        path: the text file.
        level: ``"word"`` or ``"char"`` (see the module docstring).
        vocab: optional ``word_to_id`` from another file (usually the training
            file) to encode this one with; every token must then be in it.
            Without it, a vocabulary is built from this file.

    Returns:
        ``(corpus, word_to_id, id_to_word)``: corpus is an np.int32 array of
        shape ``(num_tokens,)``; ``word_to_id`` maps token -> id and
        ``id_to_word`` id -> token, for ids ``0 .. V-1``.

    Raises:
        TypeError: ``path`` is not a str, bytes or os.PathLike.
        ValueError: empty ``path``, unknown ``level`` or malformed ``vocab``.
        FileNotFoundError: the file does not exist.
        IsADirectoryError: ``path`` is a folder.
        CorpusError: not UTF-8, empty, fewer than 2 tokens, or (without
            ``vocab``) fewer than 2 distinct tokens.
        UnknownTokenError: (with ``vocab``) a token missing from the
            vocabulary, named with its line number; a CorpusError too.
    """
    path = check_path(path, "path")
    _check_level(level)
    if vocab is not None:
        _check_vocab(vocab)
    content = read_text(path)
    if not content:
        raise CorpusError(f"{path} is empty; a corpus needs at least {MIN_TOKENS} tokens")
    tokens = tokenize(content, level)
    if len(tokens) < MIN_TOKENS:
        raise CorpusError(
            f"{path} has {len(tokens)} token(s) at {level} level; a language model needs at "
            f"least {MIN_TOKENS} (an input and the next token as its target)"
        )
    if vocab is None:
        word_to_id, id_to_word = build_vocab(tokens)
        if len(word_to_id) < 2:
            # With one distinct token every prediction is right: perplexity 1, nothing learnt.
            only = "only blank lines" if tokens[0] == EOS and level == "word" else (
                f"only the token {tokens[0]!r}")
            raise CorpusError(f"{path} holds {only} at {level} level; a language model needs "
                              f"at least 2 distinct tokens to have something to predict")
    else:
        word_to_id = dict(vocab)
        id_to_word = {i: token for token, i in word_to_id.items()}
    try:
        corpus = encode(tokens, word_to_id)
    except UnknownTokenError as err:
        token = err.token
        raise UnknownTokenError(
            f"{path}, line {_line_of(content, token, level)}: token {token!r} is not in the "
            f"given vocabulary ({len(word_to_id)} tokens). Encode held-out text with the "
            f"vocabulary of a file that contains all its tokens, or replace rare ones "
            f"(e.g. by '<unk>') beforehand.",
            token,
        ) from err
    return corpus, word_to_id, id_to_word


def split_corpus(
    corpus: np.ndarray, fractions: Sequence[float] = (0.9, 0.05, 0.05)
) -> tuple[np.ndarray, ...]:
    """Cut one corpus into consecutive parts, e.g. train/valid/test.

    The parts are contiguous slices (views, not copies) in order, so no
    sentence is shuffled across a boundary except the one cut at each border.

    Args:
        corpus: 1-D array of token ids, shape ``(num_tokens,)``.
        fractions: positive shares summing to 1, one per part.

    Returns:
        tuple of ``len(fractions)`` 1-D arrays whose lengths add up to
        ``len(corpus)``.

    Raises:
        ValueError: bad fractions, or a part would get fewer than 2 tokens.
    """
    corpus = np.asarray(corpus)
    if corpus.ndim != 1:
        raise ValueError(f"corpus must be 1-D, got shape {corpus.shape}")
    try:
        fractions = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be a sequence of numbers, got {fractions!r}") from None
    if not fractions or any(not f > 0 for f in fractions):
        raise ValueError(f"fractions must be positive numbers, got {fractions}")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must sum to 1, got {fractions} (sum {sum(fractions)})")
    n = len(corpus)
    cumulative = np.cumsum(fractions)
    # Each part's share as the cuts give it (the last takes what is left: the
    # sum may be off 1 by the tolerance above).
    shares = np.diff([0.0, *cumulative[:-1], 1.0])
    if shares.min() <= 0:
        raise ValueError(f"fractions {fractions} leave part {int(shares.argmin()) + 1} no "
                         f"tokens (they must sum to 1 with every part's share above 0)")
    parts = _parts(n, cumulative)
    sizes = [end - start for start, end in parts]
    if min(sizes) < MIN_TOKENS:
        # A longer corpus that splits, the first found from the length the smallest
        # share asks for: rounding can leave a part short there, never at
        # (MIN_TOKENS + 1) / share.
        least = float(shares.min())
        if not math.isfinite((MIN_TOKENS + 1) / least):  # (a share of 1e-308)
            raise ValueError(f"fractions {fractions} give part {int(shares.argmin()) + 1} a "
                             f"share too small to hold {MIN_TOKENS} tokens of any corpus")
        # (less a hair: a share of 0.05 comes out of the cuts as 0.04999999999999993)
        enough = max(n + 1, math.ceil(MIN_TOKENS / least - 1e-9))
        surely = max(enough, math.ceil((MIN_TOKENS + 1) / least))
        enough = next((m for m in range(enough, min(surely, enough + 1000))
                       if min(end - start for start, end in _parts(m, cumulative))
                       >= MIN_TOKENS), surely)
        raise ValueError(
            f"a corpus of {n} tokens is too short to split by {fractions}: the parts would "
            f"have {sizes} tokens, and each needs at least {MIN_TOKENS}: use a longer corpus "
            f"(about {enough} tokens or more)"
        )
    return tuple(corpus[start:end] for start, end in parts)


def _parts(n: int, cumulative) -> list[tuple[int, int]]:
    """``(start, end)`` of each part of ``n`` tokens split at the
    ``cumulative`` fractions (the last is 1)."""
    ends = [round(c * n) for c in cumulative[:-1]] + [n]
    return list(zip([0] + ends[:-1], ends, strict=True))


def _check_level(level: str) -> None:
    if not isinstance(level, str) or level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def _check_vocab(vocab: Mapping[str, int]) -> None:
    """Reject vocabularies that would silently give wrong ids."""
    if not isinstance(vocab, Mapping):
        raise ValueError(f"vocab must be a dict token -> id, got {type(vocab).__name__}")
    if any(not isinstance(token, str) for token in vocab):
        raise ValueError("vocab must map token (str) -> id (int); did you pass id_to_word?")
    # A vocabulary read back from JSON or CSV may hold its ids as strings ("1"),
    # which sorted() below could not compare with ints.
    for token, i in vocab.items():
        if not is_int(i):
            raise ValueError(
                f"vocab must map token (str) -> id (int); got the id {i!r} "
                f"({type(i).__name__}) for the token {token!r}: convert the ids to int, "
                f"e.g. {{token: int(i) for token, i in vocab.items()}}"
            )
    ids = sorted(vocab.values())
    if ids != list(range(len(vocab))):
        raise ValueError(f"vocab ids must be exactly 0 .. {len(vocab) - 1}, each used once")


def _split_lines(content: str) -> list[str]:
    """``content`` cut at its line ends: ``"\\n"``, ``"\\r\\n"`` or a lone ``"\\r"``.

    The lines of ``re.split(r"\\r\\n|\\r|\\n", content)``, as
    :mod:`datasets.sequence` reads pairs, but by ``str.split``: several times
    faster on a large file, and a file without ``"\\r"`` is not even copied.
    """
    if "\r" in content:
        content = content.replace("\r\n", "\n").replace("\r", "\n")
    return content.split("\n")


def _line_number(content: str, index: int) -> int:
    """1-based line of ``content[index]``, lines cut as :func:`_split_lines` cuts them."""
    count = content.count
    return count("\n", 0, index) + count("\r", 0, index) - count("\r\n", 0, index) + 1


def _line_of(content: str, token: str, level: str) -> int:
    """1-based line of the first occurrence of ``token`` (for error messages)."""
    if level == "word" and token == EOS:
        return 1  # the first line end, where <eos> first appears, ends line 1
    if level == "char":
        return _line_number(content, max(content.find(token), 0))
    for number, line in enumerate(_split_lines(content), start=1):
        if token in line.split():
            return number
    return 1
