"""Arrays and JSON metadata in one ``.npz`` file: written atomically, read
without ever unpickling.

``save_npz(path, arrays, meta)`` writes ``{name: array}`` plus ``meta`` (any
JSON-serialisable dict) stored as a unicode string under ``'__meta__'``.
The file is written to a temporary name in the same folder, flushed to disk
and renamed over ``path``, so an interruption leaves either the old file or
the new one, never half of one.

``load_npz(path)`` returns ``(arrays, meta)``. It never unpickles and
turns every way a file can be wrong (missing, empty, truncated, not a zip,
a pickle, a lone ``.npy``, members that are not arrays, object arrays,
broken metadata) into one ``ValueError`` (``FileNotFoundError`` for a
missing file; ``PermissionError`` for one this user may not reach or read,
saying which and the ``chmod`` that fixes it) that names the file and the
problem.

Every file rnnlab writes goes through :func:`atomic_write` (or
:func:`atomic_open`). A process killed in the middle of a write (SIGKILL,
power loss) cannot delete its temporary file, so the temporary's name says
whose it is, ``.<name>.<host>-<pid>-<random>.tmp``: the next write to the
same path removes the temporaries of processes of this machine that are no
longer running, and leaves those of live writers alone. A file replaced
keeps its permission bits, and a symbolic link is written through: the file
it points to is replaced, and the link stays a link. Only a regular file is
ever replaced: a device (``/dev/null``), a named pipe or a socket, given
directly or through a link, is refused, never turned into a regular file;
nor is one read as an ``.npz`` file (reading a named pipe would wait forever).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO

import numpy as np

from .file_access import unreachable_words, unreadable_words

__all__ = [
    "META_KEY",
    "NOTHING_READ_SHA256",
    "atomic_open",
    "as_read_back",
    "atomic_write",
    "check_target",
    "config_problem",
    "folders_on_the_way",
    "ids_sha256",
    "link_loops",
    "load_npz",
    "loop_words",
    "remove_stale_temporaries",
    "save_npz",
    "short_stem",
    "space_problem",
    "special_file_kind",
    "to_json",
]

META_KEY = "__meta__"

# Which machine wrote a temporary file: a process id means nothing on another
# host sharing the folder (NFS), so only this host's temporaries are judged.
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
# Temporaries named by older versions (tempfile.mkstemp: 8 random characters)
# carry no process id; they are removed once this old, when no write can
# still be going on.
_LEGACY_MAX_AGE_S = 24 * 3600


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary file, fsync it, rename it to ``path``.

    Either the whole new content reaches ``path`` or ``path`` stays as it was;
    on any exception (KeyboardInterrupt included) the temporary file is
    deleted and the exception passes on. Temporary files that killed writers
    left behind for ``path`` are removed first (see the module docstring).
    """
    with atomic_open(path) as f:
        write(f)


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """``with atomic_open(path) as f:`` write ``f``; ``path`` is replaced when the block ends.

    The context-manager form of :func:`atomic_write`: the binary file is a
    temporary in ``path``'s folder (created if needed); at the end of the
    block it is flushed, fsynced and renamed over ``path`` (``os.replace``:
    atomic on POSIX and Windows). If the block raises, the temporary is
    deleted and ``path`` is left as it was.

    A file replaced keeps its permission bits (a ``0o600`` file stays
    private, a ``0o444`` one read-only); a new one gets those an ordinary
    ``open`` would give. A symbolic link is written through: the temporary
    goes next to the file it points to and replaces that file, so the link
    stays a link, to the new content. A ``path`` that cannot be a file (a
    folder, a folder on the way that is a file, a device, a named pipe, a
    socket; see :func:`check_target`) is refused before anything is created.
    """
    path = check_target(path)
    target = write_target(path)
    folder = folder_of(target)
    name = os.path.basename(target)
    mode = _kept_mode(target)
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(target)
    try:
        fd, tmp = _create_temporary(folder, name)
    except OSError as exc:
        # The temporary's name means nothing to the caller: name the file they asked for.
        raise OSError(exc.errno, exc.strerror, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                _set_mode(f.fileno(), tmp, mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        # KeyboardInterrupt included: nothing half-written may stay behind.
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def check_target(path: str | os.PathLike | bytes) -> str:
    """``path`` as a str, when :func:`atomic_open` can put a file there; else
    the error it would meet, raised before anything is created (or drawn):

    * ``IsADirectoryError``: ``path`` ends in a separator, or is a folder;
    * ``NotADirectoryError``: a folder on the way is a file;
    * ``OSError`` (EINVAL): ``path`` is (or links to) a device, a named pipe
      or a socket, which a rename would replace by a regular file.
    """
    path = os.fsdecode(path)
    if _names_a_folder(path):
        raise IsADirectoryError(errno.EISDIR, "it names a folder, not a file; a file name is "
                                "needed", path)
    if link_loops(path):
        # (realpath stops in the loop: a rename would replace a link of it by a file)
        raise OSError(errno.ELOOP, "it is a link that leads round in a loop; give another "
                      "path", path)
    target = write_target(path)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "it is a folder; give a file name in it", path)
    kind = special_file_kind(target)
    if kind is not None:
        # A rename would put a regular file in its place (as root, /dev/null itself).
        raise OSError(errno.EINVAL, f"it is {kind}, not a file; give a file name", path)
    existing, missing = folders_on_the_way(target)
    if problem := _way_problem(existing, missing):
        raise NotADirectoryError(errno.ENOTDIR, problem, path)
    return path


def folder_of(path: str) -> str:
    """The folder of the file ``path``, absolute, as the system reads the path:
    ``..`` is not folded away (after a link, ``link/..`` is the folder above
    the link's target, not the one holding the link). A relative ``path``
    whose current folder was removed (``rm -r`` of a run's folder while it
    trains) raises ``FileNotFoundError`` saying so."""
    if not os.path.isabs(path):
        try:
            here = os.getcwd()
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "the current folder was removed, and the path "
                                    "is relative to it", path) from None
        path = os.path.join(here, path)
    return os.path.dirname(path)


def folders_on_the_way(target: str) -> tuple[str, list[str]]:
    """``(existing, missing)``: the nearest folder on the way to the file
    ``target`` that is there (a link counts, even one to nothing), and the
    names of those below it that a writer must make, in order (``.`` and
    ``..`` included, as written)."""
    folder = folder_of(target)
    missing = []
    while not os.path.lexists(folder):
        parent, name = os.path.split(folder)
        if parent == folder:  # a drive or a share that is not there (Windows)
            break
        missing.append(name)
        folder = parent
    return folder, missing[::-1]


def _way_problem(existing: str, missing: list[str]) -> str | None:
    """Why the folders ``missing`` cannot be made under ``existing``
    (:func:`folders_on_the_way`), in words; None when nothing in the path
    itself forbids it."""
    if not os.path.lexists(existing):
        return f"{existing} does not exist"
    if link_loops(existing):
        return f"{existing} is {loop_words(existing)}"
    if os.path.islink(existing) and not os.path.exists(existing):
        return f"{existing} is a link to {os.readlink(existing)}, which does not exist"
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    made = existing
    for name in missing:
        if name == os.pardir:  # the folder before it is not there yet
            return (f"{made} does not exist, so the {os.pardir!r} after it names nothing; "
                    f"write the path without it")
        if name != os.curdir:
            made = os.path.join(made, name)
    return None


def _names_a_folder(path: str) -> bool:
    """Whether ``path`` has no file name: it ends in a separator (``'runs/'``), or in
    ``.`` or ``..``."""
    return os.path.basename(path) in ("", ".", "..")


def write_target(path: str) -> str:
    """The file a write to ``path`` replaces: ``path``, or for a symbolic link the
    file it points to (links followed to the end), which may not exist yet."""
    return os.path.realpath(path) if os.path.islink(path) else path


def link_loops(path: str) -> bool:
    """Whether ``path`` is a symbolic link whose links lead round in a loop
    (``a -> b -> a``): it points at no file, and none can be made there."""
    if not os.path.islink(path):
        return False
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def loop_words(path: str) -> str:
    """What the link ``path``, which :func:`link_loops`, is, in words."""
    return f"a link that leads round in a loop (to {os.readlink(path)})"


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether the paths ``a`` and ``b`` name one file (or folder): where both
    exist, the same file as the system reads them (links, ``..`` after a
    link, hard links); else the same path once links are resolved.

    Not ``os.path.abspath`` of each: it joins a relative path to the working
    folder as the system names it, links resolved (``/private/tmp/run``
    on macOS), and folds ``link/..`` by its letters, so one file typed two
    ways looked like two.
    """
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.realpath(a) == os.path.realpath(b)


def special_file_kind(path: str) -> str | None:
    """What the existing ``path`` (links followed) is, in words, when it is
    neither a regular file nor a folder (``'a character device'``, ``'a named
    pipe (FIFO)'`` ...); None for a regular file, a folder or no file."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # no such file (a dangling link), or a name the OS refuses
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, kind in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


def _kept_mode(target: str) -> int | None:
    """The permission bits the new content of ``target`` keeps: those of the
    regular file there now (setuid, setgid and sticky bits are not kept, as
    writing to a file clears them), or None for a new file."""
    try:
        st = os.stat(target)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) & 0o777 if stat.S_ISREG(st.st_mode) else None


def _set_mode(fd: int, tmp: str, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows before Python 3.13: only the read-only flag is kept
        os.chmod(tmp, mode)


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporary files that killed writers of ``path`` left; return their paths.

    A temporary is stale when the process named in it (on this host) is no
    longer running, or, for a name without a process id (older versions) or
    where liveness cannot be checked, when it has not changed for a day.
    Temporaries of running processes, of other hosts and of other targets
    are never touched.
    """
    path = os.fsdecode(path)
    folder = folder_of(path)
    stem = re.escape(short_stem(os.path.basename(path)))
    ours = re.compile(rf"\.{stem}\.(?P<host>[0-9a-f]{{8}})-(?P<pid>\d+)-[0-9a-f]{{8}}\.tmp")
    legacy = re.compile(rf"\.{stem}\.[a-z0-9_]{{8}}\.(?:tmp|part)")
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = ours.fullmatch(entry.name)
        if match:
            if match["host"] != _HOST or int(match["pid"]) == os.getpid():
                continue
            alive = _process_alive(int(match["pid"]))
            stale = alive is False or (alive is None and _age_s(entry) > _LEGACY_MAX_AGE_S)
        elif legacy.fullmatch(entry.name):
            stale = _age_s(entry) > _LEGACY_MAX_AGE_S
        else:
            continue
        if stale:
            with suppress(OSError):  # gone already, or not ours to delete
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed


def short_stem(name: str) -> str:
    """``name`` itself when at most 200 bytes, else ``h`` and 32 hex digits of
    its SHA-256: a stem that leaves room for a suffix (a temporary's, a lock
    file's ``.lock``) within the usual 255-byte limit of a file name."""
    if len(name.encode("utf-8", "surrogateescape")) > 200:
        return "h" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return name


def _create_temporary(folder: str, name: str) -> tuple[int, str]:
    """Open a new, uniquely named temporary for ``name`` in ``folder``: ``(fd, path)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(
            folder,
            f".{short_stem(name)}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp",
        )
        try:
            # Mode 0o666 less the umask: the permissions an ordinary open() gives.
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file for {name} in {folder}")


def _process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` runs on this host (None: cannot tell here)."""
    if os.name != "posix":
        return None  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return None
    return True


def _age_s(entry: os.DirEntry) -> float:
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def has_pickle_name(path: str | os.PathLike) -> bool:
    """Whether ``path`` ends in a pickle's suffix (``.pkl``, ``.pickle``): a
    name rnnlab refuses to write, since its files are ``.npz`` and a pickle's
    loading can run any code."""
    return os.fsdecode(path).lower().endswith((".pkl", ".pickle"))


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, in hex: what a run records of the data
    file it reads, so that resuming it on a changed file can be refused."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# What file_sha256 gives a pipe (/dev/stdin, <(...)) already read to its end,
# as runs before ids_sha256 recorded: it identifies no data.
NOTHING_READ_SHA256 = hashlib.sha256(b"").hexdigest()


def ids_sha256(arrays: Sequence[np.ndarray], tokens: Sequence[str]) -> str:
    """The SHA-256 of token ids (``arrays``, in order) and of the vocabulary
    they index (``tokens``, in id order), in hex: what a run records of data
    read from a pipe, whose bytes cannot be read again to be hashed."""
    digest = hashlib.sha256()
    for ids in arrays:
        digest.update(repr(ids.shape).encode())
        digest.update(np.ascontiguousarray(ids, dtype="<i8").tobytes())
    digest.update(json.dumps(list(tokens)).encode())
    return digest.hexdigest()


def save_npz(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write ``arrays`` (``{name: ndarray}``) and ``meta`` (JSON) to ``path``, atomically.

    Raises:
        ValueError: an array named ``'__meta__'``, ``'file'`` or ``'allow_pickle'``.
        TypeError: an object array (it could only be saved as a pickle), or
            ``meta`` that JSON cannot represent.
    """
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY!r} is reserved for the metadata")
    for name in _SAVEZ_ARGUMENTS & set(arrays):
        # np.savez would take them as its own arguments (allow_pickle silently).
        raise ValueError(f"an array cannot be named {name!r} (an argument of np.savez)")
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    for name, a in payload.items():
        if a.dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which cannot be saved safely")
    payload[META_KEY] = np.array(to_json(meta or {}))
    atomic_write(path, lambda f: np.savez(f, **payload))  # type: ignore[arg-type]


_SAVEZ_ARGUMENTS = {"file", "allow_pickle"}


def is_index_key(text: str) -> bool:
    """Whether ``text`` is an index as rnnlab writes one into a key of its
    files (``m.0``, ``state/12``): ``0``, ``12``; not ``00``, nor the digits
    of other scripts, which ``str.isdigit`` takes."""
    return re.fullmatch(r"0|[1-9][0-9]*", text, flags=re.ASCII) is not None


def to_json(value: Any, allow_nan: bool = True) -> str:
    """``value`` as JSON text; NumPy's numbers (a size counted with NumPy,
    ``corpus.max() + 1``) as the Python numbers they hold."""
    return json.dumps(value, default=_plain_number, allow_nan=allow_nan)


def _plain_number(value):
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def config_problem(config: Mapping[str, Any]) -> str | None:
    """Why a model's ``config`` cannot be written to a file and read back as
    the model's (JSON: numbers, strings, True/False/None, lists and dicts of
    them; a tuple reads back as a list), naming the entry; or None."""
    if not isinstance(config, Mapping):
        return f"config is a {type(config).__name__}, not a dict"
    for key, value in config.items():
        try:
            to_json({key: value}, allow_nan=False)
        except (TypeError, ValueError) as error:
            return (f"config[{key!r}] = {value!r:.80} cannot be written to a file ({error}); "
                    f"give the model numbers, strings, True/False/None, or lists and dicts "
                    f"of them")
    return None


def as_read_back(value: Any) -> Any:
    """``value`` as a file written by :func:`save_npz` gives it back (tuples
    as lists, NumPy numbers as Python's): what a file's metadata is compared
    with."""
    return json.loads(to_json(value))


def load_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_npz`; returns ``(arrays, meta)``.

    The archive is read member by member with :mod:`zipfile` and
    ``numpy.lib.format``: every member must be a ``.npy`` array of a plain
    (non-object) dtype whose header fits the bytes the member holds, so a
    hostile file can neither run code (nothing is unpickled) nor make us
    allocate more memory than its own size.
    """
    path = os.fsdecode(path)
    if not os.path.exists(path):
        if unreachable := unreachable_words(path):
            raise PermissionError(unreachable)
        if link_loops(path):
            raise ValueError(f"{path} is {loop_words(path)}, not an .npz file")
        raise FileNotFoundError(f"no such file: {path}")
    _check_readable_kind(path)
    try:
        with open(path, "rb") as f:
            problem = _sniff(f.read(8))
        if problem:
            raise _Unreadable(problem)
        arrays = {}
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = _member_name(info)
                arrays[name] = _read_member(archive, info)
    except _Unreadable as exc:
        raise ValueError(f"cannot read {path} as an rnnlab .npz file: {exc}") from None
    except PermissionError:
        raise PermissionError(unreadable_words(path)) from None
    except DAMAGED_ARCHIVE_ERRORS as exc:
        raise ValueError(f"cannot read {path} as an rnnlab .npz file: it is damaged or "
                         f"truncated ({exc})") from exc

    return arrays, _parse_meta(path, arrays.pop(META_KEY, None))


def load_npz_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Only the metadata of a file written by :func:`save_npz` (its arrays are
    not read): to tell what a file is before replacing it. ValueError when it
    is not such a file."""
    path = os.fsdecode(path)
    if os.path.exists(path):  # (a missing file: zipfile's FileNotFoundError, as before)
        _check_readable_kind(path)
    elif unreachable := unreachable_words(path):
        raise PermissionError(unreachable)
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(META_KEY + ".npy")
            except KeyError:
                meta_array = None
            else:
                _member_name(info)
                meta_array = _read_member(archive, info)
    except _Unreadable as exc:
        raise ValueError(f"cannot read {path} as an rnnlab .npz file: {exc}") from None
    except PermissionError:
        raise PermissionError(unreadable_words(path)) from None
    except DAMAGED_ARCHIVE_ERRORS as exc:
        raise ValueError(f"cannot read {path} as an rnnlab .npz file ({exc})") from exc
    return _parse_meta(path, meta_array)


def _check_readable_kind(path: str) -> None:
    """Refuse (ValueError) a ``path`` that is a folder, a device, a named pipe
    or a socket: only a regular file is read as an archive (opening a named
    pipe would wait for a writer forever)."""
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not an .npz file")
    kind = special_file_kind(path)
    if kind is not None:
        raise ValueError(f"{path} is {kind}, not an .npz file; give the path of a file "
                         "written by rnnlab")


def _parse_meta(path, meta_array) -> dict[str, Any]:
    if meta_array is None:
        raise ValueError(f"{path} has no {META_KEY!r} entry: it was not written by rnnlab")
    if meta_array.ndim != 0 or meta_array.dtype.kind != "U":
        raise ValueError(f"{path}: its {META_KEY!r} entry is not a JSON string")
    try:
        meta = json.loads(str(meta_array))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: its metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its metadata is not a JSON object")
    return meta


# What reading a damaged archive raises: BadZipFile, a truncated or damaged
# archive (bad CRC ...); zlib.error, corrupt compressed data;
# NotImplementedError / RuntimeError, an unsupported compression method or an
# encrypted member; OSError and EOFError, a file cut short.
DAMAGED_ARCHIVE_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error,
                          NotImplementedError, RuntimeError)


class _Unreadable(Exception):
    """Why a file is not an .npz archive that rnnlab reads (internal)."""


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
_NPY_MAGIC = b"\x93NUMPY"


def _sniff(head):
    """Why the first bytes of a file show it is no .npz archive (None if they may be)."""
    if not head:
        return "it is empty"
    if head.startswith(_ZIP_MAGIC):
        return None
    if head.startswith(_NPY_MAGIC):
        return "it holds a single .npy array, not an .npz archive"
    if head[:1] == b"\x80":
        return "it looks like a Python pickle, which rnnlab never loads (unpickling can run code)"
    return "it is not an .npz (zip) archive"


# np.savez stores members, np.savez_compressed deflates them (by at most
# about 1032 to 1); other methods are refused.
_MAX_RATIO = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1100}


def _member_name(info):
    if info.is_dir() or not info.filename.endswith(".npy"):
        raise _Unreadable(f"its member {info.filename!r} is not a .npy array")
    if info.compress_type not in _MAX_RATIO:
        raise _Unreadable(f"its member {info.filename!r} uses zip compression method "
                          f"{info.compress_type}; rnnlab reads stored or deflated members")
    return info.filename[: -len(".npy")]


def _read_member(archive, info):
    """One ``.npy`` member, its header checked before any data is read."""
    name = info.filename
    fmt = np.lib.format
    with archive.open(info) as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                raise _Unreadable(f"its member {name!r} uses .npy format version {version}, "
                                  "which rnnlab does not read")
        except (_Unreadable, zipfile.BadZipFile):
            raise
        except Exception as exc:
            # A hostile header can fail NumPy's parser in many ways (ValueError,
            # SyntaxError, tokenize.TokenError ...); it is parsed as a literal,
            # never run, so every failure just means "not an array".
            raise _Unreadable(f"its member {name!r} is not a valid .npy array "
                              f"({type(exc).__name__}: {exc})") from exc
    if dtype.hasobject:
        raise _Unreadable(f"its member {name!r} holds Python objects (dtype object), which "
                          "would need unpickling; rnnlab never loads pickles")
    size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if size > info.file_size:
        raise _Unreadable(f"its member {name!r} is truncated: its header promises {size} "
                          f"bytes of data, the member holds {info.file_size}")
    if size > _MAX_RATIO[info.compress_type] * info.compress_size:
        raise _Unreadable(f"its member {name!r} claims {size} bytes of data, more than its "
                          f"{info.compress_size} compressed bytes can hold")
    try:
        with archive.open(info) as f:
            return fmt.read_array(f, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise _Unreadable(f"its member {name!r} is not a valid .npy array ({exc})") from exc


def output_path_problem(flag_name: str, path: str | os.PathLike, example: str) -> str | None:
    """Why the file ``path`` (given as ``flag_name``: a flag, or an argument's
    name) cannot be written, or None; to check before a long run, not after.

    Folders that do not exist yet count as writable where they can be
    created (the writers create them); the check writes and removes one
    temporary file in the output's folder, or one temporary folder in the
    nearest that exists. ``example`` is a file name the
    message suggests when ``path`` is a folder, or ends in a separator (a
    folder, existing or not). An existing file that is not writable (no
    write permission bit: checked on the bits, as root may write any file)
    is refused: rnnlab does not replace a read-only file, nor another user's
    file in a folder with the sticky bit (``/tmp``), nor anything that
    is not a regular file (a device such as ``/dev/null``, a named pipe, a
    socket). A symbolic link is judged by the file it points to, which the
    writers replace.
    """
    path = os.fsdecode(path)
    try:
        folder_of(path)
    except FileNotFoundError as exc:  # started in a folder that was removed since
        return (f"{flag_name} {path}: {exc.strerror}; give a path from / (or cd to a "
                f"folder that exists)")
    if os.path.isdir(path):
        return (f"{flag_name} {path} is a folder; give a file name in it, e.g. "
                f"{os.path.join(path, example)}")
    if link_loops(path):
        return f"{flag_name} {path} is {loop_words(path)}; give another path"
    if _names_a_folder(path):
        ending = f" (it ends in {path[-1]!r})" if path[-1] in (os.sep, os.altsep) else ""
        return (f"{flag_name} {path} names a folder{ending}, not a file; give a file name "
                f"in it, e.g. {os.path.join(path, example)}")
    target = write_target(path)
    kind = special_file_kind(target)
    if kind is not None:
        link = f" (a link to {target})" if target != path else ""
        return f"{flag_name} {path}{link} is {kind}, not a file; give a file name"
    existing, missing = folders_on_the_way(target)
    if problem := _way_problem(existing, missing):
        return f"{flag_name} {path}: {problem}"
    if too_long := _long_name(existing, [*missing, os.path.basename(target)]):
        return f"{flag_name} {path}: the name {too_long[:40]}... is too long for this file system"
    folder = folder_of(target)
    if missing:
        # Tried (a folder of a name of its own, which no other process uses), not
        # judged by the permission bits, which root passes everywhere (also in
        # /proc, where none can be made).
        # The folder is named from `existing` and mkdtemp's base name: since
        # Python 3.12 mkdtemp returns its path made absolute, which folds a
        # "link/.." into the link's own folder, not the one the system reads.
        try:
            os.rmdir(os.path.join(existing, os.path.basename(tempfile.mkdtemp(dir=existing))))
        except OSError as exc:
            return f"{flag_name} {path}: cannot create folders in {existing} ({exc.strerror})"
        return None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"{flag_name} {path}: cannot write in {folder} ({exc.strerror})"
    return _read_only_problem(flag_name, path, target)


def _long_name(folder: str, names: list[str]) -> str | None:
    """The first of ``names`` longer than the file system of ``folder`` allows, or None."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        limit = 255
    if not hasattr(os, "pathconf"):  # Windows: 255 UTF-16 units, not bytes
        return next((name for name in names if len(name.encode("utf-16-le")) > 2 * limit),
                    None)
    return next((name for name in names if len(os.fsencode(name)) > limit), None)


def _read_only_problem(flag_name: str, path: str, target: str) -> str | None:
    """Why the existing file ``target`` (``path`` as given) may not be replaced, or None."""
    try:
        st = os.stat(target)
    except OSError:
        return None  # a new file
    if not stat.S_ISREG(st.st_mode):
        return None  # (output_path_problem has refused what is not a file)
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o222:
        return (f"{flag_name} {path} is read-only (mode {mode:03o}); make it writable "
                f"(chmod u+w {path}) or give another path")
    if not os.access(target, os.W_OK):
        return (f"{flag_name} {path}: no permission to write this file (mode {mode:03o}); "
                f"give another path")
    # The writers rename a new file over the old one: in a folder with the
    # sticky bit (/tmp), only the file's owner (or the folder's) may, whatever
    # the file's own bits say, and the write would fail at the end of the run.
    folder = folder_of(target)
    try:
        folder_st, me = os.stat(folder), os.geteuid()
    except (OSError, AttributeError):  # (no geteuid on Windows, where no sticky bit either)
        return None
    if folder_st.st_mode & stat.S_ISVTX and me not in (0, st.st_uid, folder_st.st_uid):
        return (f"{flag_name} {path} belongs to another user, and {folder} has the sticky "
                f"bit (as /tmp has): only a file's owner may replace a file there; give "
                f"another path")
    return None


def replaced_size(path: str | os.PathLike) -> int:
    """The bytes of the file at ``path`` now (through a link), which writing
    there frees once the new file is whole; 0 where there is none."""
    target = write_target(os.fsdecode(path))
    try:
        return os.path.getsize(target) if os.path.isfile(target) else 0
    except OSError:
        return 0


def space_problem(outputs: Mapping[str, tuple]) -> str | None:
    """Why the files ``outputs`` (``{flag: (path, size)}``, ``size`` a lower
    bound of the file's bytes, a path None for an output not asked for)
    cannot all be written for lack of disk space, or None; to check before a
    long run, whose files are written during it and at its end. A third
    value, ``(path, size, at_once)``, is the free space the output needs at
    one moment, when that is more than its size: a file written again and
    again is there twice while it is replaced, before the others are
    written.

    Files on one disk count together: they are there at the same time (a
    run's last checkpoint and its model), less the files they replace. A
    file replaced needs its whole new size free too, the old one being
    removed only once the new one is written. The space counted is what
    this user may fill (root may also fill the blocks a file system keeps
    for it). A disk that cannot be asked counts as large enough. A file
    above the largest this process may write (``ulimit -f``,
    ``RLIMIT_FSIZE``) is a problem too: its write would fail with ``File too
    large``.
    """
    limit = _file_size_limit()
    for flag, (path, size, *_) in outputs.items():
        if path is not None and limit is not None and size > limit:
            return (f"{flag} {path} will take at least {_size(size)}, more than the largest "
                    f"file this process may write, {_size(limit)} (ulimit -f); raise the "
                    f"limit (ulimit -f unlimited) before the run")
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    disks: dict[int, tuple[int, str, list[tuple[str, str, int, int, int]]]] = {}
    for flag, (path, size, *at_once) in outputs.items():
        if path is None:
            continue
        old = replaced_size(path)
        existing, _ = folders_on_the_way(write_target(os.fsdecode(path)))
        try:
            st = os.statvfs(existing)
            device = os.stat(existing).st_dev
        except (AttributeError, OSError, ValueError):  # (no statvfs on Windows)
            continue
        free = (st.f_bfree if root else st.f_bavail) * st.f_frsize
        disks.setdefault(device, (free, existing, []))[2].append(
            (flag, path, size, old, max([size, *at_once])))
    for free, folder, files in disks.values():
        need = sum(size - old for _, _, size, old, _ in files)  # (all there at the end)
        flag, path, size, _, moment = max(files, key=lambda file: file[4])
        if moment > max(need, free):
            replaced = (f", and {_size(moment)} while it is replaced (the old file kept until "
                        f"the new one is whole)" if moment > size else "")
            return (f"{flag} {path} will take at least {_size(size)}{replaced}, on the disk "
                    f"that holds {folder}, which has {_size(free)} free; free some space there "
                    f"or give another path")
        if need > free:
            which = (f"{files[0][0]} {files[0][1]}" if len(files) == 1 else
                     " and ".join(f"{flag} {path} ({_size(size)})"
                                  for flag, path, size, _, _ in files))
            beyond = " more than the files they replace" if any(f[3] for f in files) else ""
            return (f"{which} will take at least {_size(need)}{beyond} on the disk that holds "
                    f"{folder}, which has {_size(free)} free; free some space there or "
                    f"give {'another path' if len(files) == 1 else 'other paths'}")
    return None


def _file_size_limit() -> int | None:
    """The largest file this process may write, in bytes (``ulimit -f``), or
    None: no limit, or a system without one (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"
