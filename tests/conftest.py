"""Shared fixtures: float64 random arrays for gradient checks; for the
scripts' tests, a folder of their own to run in (``here``) and a file of
pairs to train on (``pairs_file``); a local HTTP server for the download
tests (``serve``); another process holding a checkpoint's run lock
(``holder``); SIGTERM raising an exception instead of ending the test run
(``sigterm_raises``).

``RNNLAB_PTB_DIR`` given as a relative path (``../shared/data/ptb``) is
made absolute once, from the folder pytest started in: some tests run
scripts in a folder of their own, where the relative path would name
nothing.
"""

import functools
import http.server
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

if os.environ.get("RNNLAB_PTB_DIR"):
    os.environ["RNNLAB_PTB_DIR"] = os.path.abspath(os.environ["RNNLAB_PTB_DIR"])


class Terminated(Exception):
    """What SIGTERM raises under ``sigterm_raises`` where the code tested leaves
    the signal alone."""


@pytest.fixture
def sigterm_raises():
    """SIGTERM (and SIGHUP, which scripts take alike) raises :class:`Terminated`
    during the test: a script that let the signal's default action end it
    would otherwise end the whole test run."""

    def handler(signum, frame):
        raise Terminated

    signums = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A fresh folder to run a script in (its outputs land there), plots headless."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


@pytest.fixture
def pairs_file(tmp_path):
    """300 tab-separated pairs of a reversal task ('abc' -> 'cba')."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcde"), size=rng.integers(2, 5))) for _ in range(300)]
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    return str(path)


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def serve():
    """``serve(folder)`` or ``serve(handler=...)`` starts a local server; returns its base URL.
    With ``certificate=(cert.pem, key.pem)`` it serves HTTPS."""
    servers = []

    def start(folder: Path | None = None, handler=QuietFileHandler, certificate=None) -> str:
        if folder is not None:
            handler = functools.partial(handler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        scheme = "http"
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"{scheme}://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


HOLDER = """
    import sys
    from common.run_lock import holding_checkpoint
    with holding_checkpoint(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes it
"""


@pytest.fixture
def holder():
    """``holder(path)`` starts another process holding ``path``'s run lock
    (common.run_lock) and returns it; ended afterwards."""
    started = []

    def start(path):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(path)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                   text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=30)
        process.stdin.close()  # (left open, a ResourceWarning under python -X dev)
        process.stdout.close()


@pytest.fixture
def memory_runs_out(monkeypatch):
    """``memory_runs_out(cls, n)``: ``cls.forward`` raises ``MemoryError`` at
    its ``n``-th call (a training step that finds no memory), as it was before
    and after."""
    def arrange(cls, n):
        calls, forward = [], cls.forward

        def failing(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == n:
                raise MemoryError
            return forward(self, *args, **kwargs)

        monkeypatch.setattr(cls, "forward", failing)

    return arrange
