"""Arrays and JSON metadata in one ``.npz`` file: written atomically, read
without ever unpickling.

``save_npz(path, arrays, meta)`` writes ``{name: array}`` plus ``meta`` (any
JSON-serialisable dict) stored as a unicode string under ``'__meta__'``.
The file is written to a temporary name in the same folder, flushed to disk
and renamed over ``path``, so an interruption leaves either the old file or
the new one, never half of one.

``load_npz(path)`` returns ``(arrays, meta)``. It reads with
``allow_pickle=False`` and turns every way a file can be wrong (missing,
truncated, not a zip, a pickle, object arrays, broken metadata) into one
``ValueError`` (``FileNotFoundError`` for a missing file) that names the
file and the problem.
"""

import json
import os
import tempfile
import zipfile

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
    """Read a file written by :func:`save_npz`; returns ``(arrays, meta)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            arrays = {name: data[name] for name in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        reason = str(exc)
        if "pickle" in reason:
            reason = "it contains pickled data, which rnnlab never loads"
        raise ValueError(f"cannot read {path} as an rnnlab .npz file: {reason}") from exc
    meta_array = arrays.pop(META_KEY, None)
    if meta_array is None:
        raise ValueError(f"{path} has no {META_KEY!r} entry: it was not written by rnnlab")
    try:
        meta = json.loads(str(meta_array))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ValueError(f"{path}: its metadata is not valid JSON ({exc})") from exc
    return arrays, meta
