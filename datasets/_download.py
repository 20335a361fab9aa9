"""Small file helpers for the corpus loaders: hashing, atomic writes, verified downloads.

Nothing here knows about a particular corpus; ``ptb.py`` decides which URLs
to try and what the files must hash to.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import urllib.parse
import urllib.request
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from common.serialization import atomic_open

__all__ = [
    "NETWORK_ERRORS",
    "DownloadError",
    "WriteError",
    "atomic_file",
    "fetch",
    "sha256_file",
]

_CHUNK = 1 << 16  # 64 KiB: small enough to stream, large enough to be quick


class DownloadError(OSError):
    """A download that did not produce the expected file (scheme, size or checksum problem).

    It is an OSError so that one ``except OSError`` catches it together with
    the network errors urllib raises.
    """


class WriteError(OSError):
    """A download that arrived but could not be written on the local disk: the
    folder is a file, is read-only or cannot be created, or the disk is full.

    An OSError with the ``errno``, ``strerror`` and ``filename`` of the error
    of the disk (its ``__cause__``). Callers catch it *before*
    :data:`NETWORK_ERRORS`: another URL would fail the same way, and the fix
    is on this machine, not on the network.
    """


# Everything a failed download can raise: OSError covers urllib's URLError and
# HTTPError, timeouts, TLS errors and DownloadError; HTTPException covers
# protocol errors such as BadStatusLine that are not OSErrors.
NETWORK_ERRORS: tuple[type[Exception], ...] = (OSError, http.client.HTTPException)


def sha256_file(path: str | os.PathLike) -> str:
    """Return the SHA-256 of a file as 64 lowercase hex digits (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_file(path: str | os.PathLike) -> AbstractContextManager[BinaryIO]:
    """Write ``path`` all at once or not at all: ``with atomic_file(path) as f: ...``.

    The project's one atomic write, :func:`common.serialization.atomic_open`:
    a temporary file in the same folder, renamed onto ``path`` when the block
    ends normally and deleted if it raises (KeyboardInterrupt included), so a
    reader never sees a half-written file; temporaries left by killed
    processes are cleaned up on the next write.
    """
    return atomic_open(path)


def fetch(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    *,
    timeout: float,
    allow_http: bool = False,
    max_bytes: int = 64 << 20,
) -> Path:
    """Download ``url`` to ``dest``, keeping it only if its SHA-256 equals ``sha256``.

    Args:
        url: an ``https://`` URL (``http://`` only when ``allow_http`` is true,
            which callers use for an explicitly configured test server).
        dest: final path; written atomically (see :func:`atomic_file`).
        sha256: expected hex digest of the complete file.
        timeout: seconds allowed for connecting and for each read, so that an
            offline machine fails quickly instead of hanging.
        allow_http: accept plain ``http://``.
        max_bytes: refuse bodies larger than this (protects the disk from a
            misbehaving server).

    Returns:
        ``Path(dest)``.

    Raises:
        DownloadError: bad scheme or malformed URL, short or oversized body, or
            checksum mismatch.
        WriteError: the body could not be written at ``dest`` (a local problem:
            a file in the way of the folder, no permission, a full disk).
        OSError, http.client.HTTPException: network errors, passed through
            (``urllib.error.URLError``/``HTTPError`` are OSErrors).
    On any error nothing is left at ``dest`` that was not there before.
    """
    allowed = ("https", "http") if allow_http else ("https",)
    try:
        _check_scheme(url, allowed)
        # Certificate and host-name verification stay on (the default context).
        context = ssl.create_default_context()
        request = urllib.request.Request(url, headers={"User-Agent": "rnnlab"})
        response = urllib.request.urlopen(request, timeout=timeout, context=context)
    except ValueError as err:  # (UnicodeError too: a host name that IDNA cannot encode)
        raise DownloadError(f"malformed URL {url!r} ({err})") from err
    with response:
        # urllib follows redirects; do not let one downgrade https to http.
        _check_scheme(response.geturl(), allowed)
        declared = response.headers.get("Content-Length")
        declared_size = int(declared) if declared and declared.isdigit() else None
        if declared_size is not None and declared_size > max_bytes:
            raise DownloadError(
                f"server announces {declared_size} bytes, over the {max_bytes}-byte limit"
            )
        digest = hashlib.sha256()
        received = 0
        # An OSError below comes from the network while a chunk is being read, and
        # from the local disk otherwise (creating the temporary, writing, fsync,
        # rename): the disk's become WriteError, so that no caller takes a full
        # disk for a server that is down.
        reading = False
        try:
            with atomic_file(dest) as f:
                while True:
                    reading = True
                    chunk = response.read(_CHUNK)
                    reading = False
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > max_bytes:
                        raise DownloadError(f"body exceeds the {max_bytes}-byte limit")
                    digest.update(chunk)
                    f.write(chunk)
                # http.client returns b"" when the connection closes early instead of
                # raising, so compare with the announced length ourselves.
                if declared_size is not None and received != declared_size:
                    raise DownloadError(
                        f"incomplete download: received {received} of {declared_size} bytes"
                    )
                actual = digest.hexdigest()
                if actual != sha256:
                    raise DownloadError(
                        f"SHA-256 mismatch after download: expected {sha256}, got {actual} "
                        f"({received} bytes)"
                    )
        except OSError as err:
            if reading or isinstance(err, DownloadError):
                raise
            if err.errno is None:
                raise WriteError(f"{err} (writing {os.fspath(dest)})") from err
            # (A failed rename names the temporary first and dest second: name dest.)
            named = err.filename2 or err.filename or os.fspath(dest)
            raise WriteError(err.errno, err.strerror, named) from err
    return Path(dest)


def _check_scheme(url: str, allowed: tuple[str, ...]) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in allowed:
        raise DownloadError(
            f"refusing {scheme or 'scheme-less'} URL {url!r}: "
            f"only {' or '.join(allowed)} is allowed"
        )
