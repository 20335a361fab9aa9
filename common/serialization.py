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
missing file) that names the file and the problem.
"""

import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

META_KEY = "__meta__"


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file, fsync it, rename it to ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        # mkstemp makes the file private (0600); give it the permissions an
        # ordinary open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # KeyboardInterrupt included: nothing half-written may stay behind.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder):
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


def save_npz(path, arrays, meta=None):
    """Write ``arrays`` (``{name: ndarray}``) and ``meta`` (JSON) to ``path``."""
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY!r} is reserved for the metadata")
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    for name, a in payload.items():
        if a.dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which cannot be saved safely")
    payload[META_KEY] = np.array(json.dumps(meta or {}))
    atomic_write(path, lambda f: np.savez(f, **payload))


def load_npz(path):
    """Read a file written by :func:`save_npz`; returns ``(arrays, meta)``.

    The archive is read member by member with :mod:`zipfile` and
    ``numpy.lib.format``: every member must be a ``.npy`` array of a plain
    (non-object) dtype whose header fits the bytes the member holds, so a
    hostile file can neither run code (nothing is unpickled) nor make us
    allocate more memory than its own size.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not an .npz file")
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
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
            RuntimeError) as exc:
        # BadZipFile: a truncated or damaged archive (bad CRC ...); zlib.error:
        # corrupt compressed data; NotImplementedError / RuntimeError: an
        # unsupported compression method or an encrypted member.
        raise ValueError(f"cannot read {path} as an rnnlab .npz file: it is damaged or "
                         f"truncated ({exc})") from exc

    meta_array = arrays.pop(META_KEY, None)
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
    return arrays, meta


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
