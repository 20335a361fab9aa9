"""datasets._download.fetch against local servers: the certificate is
checked, a redirect may not downgrade https to http, and a body over
max_bytes is refused, each leaving nothing at the destination.

The HTTPS server uses a self-signed certificate made with the openssl
command (skipped where there is none); SSL_CERT_FILE makes it trusted
only in the tests that mean to trust it.
"""

from __future__ import annotations

import hashlib
import http.server
import shutil
import ssl
import subprocess
import urllib.error

import pytest

from datasets._download import DownloadError, fetch

BODY = b"the quick brown fox\n" * 100
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()


class BodyHandler(http.server.BaseHTTPRequestHandler):
    """Serves BODY at every path (no Content-Length when ``announce`` is False)."""

    announce = True

    def do_GET(self):
        self.send_response(200)
        if self.announce:
            self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
        self.close_connection = True

    def log_message(self, format, *args):
        pass


class UnannouncedBodyHandler(BodyHandler):
    announce = False


def redirect_handler(location):
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            pass

    return Redirect


@pytest.fixture
def certificate(tmp_path):
    """``(cert.pem, key.pem)`` of a self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return str(cert), str(key)


def test_a_server_whose_certificate_is_not_trusted_is_refused(serve, certificate,
                                                              tmp_path):
    url = serve(handler=BodyHandler, certificate=certificate) + "ptb.train.txt"
    dest = tmp_path / "cache" / "ptb.train.txt"

    with pytest.raises(urllib.error.URLError) as info:
        fetch(url, dest, BODY_SHA256, timeout=5)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_the_same_server_once_its_certificate_is_trusted_is_read(serve, certificate,
                                                                 tmp_path, monkeypatch):
    # (So that the test above fails for the certificate, not for the server.)
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    url = serve(handler=BodyHandler, certificate=certificate) + "ptb.train.txt"
    dest = tmp_path / "ptb.train.txt"

    fetch(url, dest, BODY_SHA256, timeout=5)
    assert dest.read_bytes() == BODY


def test_a_redirect_from_https_to_http_is_refused(serve, certificate, tmp_path,
                                                  monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    plain = serve(handler=BodyHandler) + "ptb.train.txt"
    url = serve(handler=redirect_handler(plain), certificate=certificate) + "ptb.train.txt"
    dest = tmp_path / "ptb.train.txt"

    with pytest.raises(DownloadError, match="refusing http URL"):
        fetch(url, dest, BODY_SHA256, timeout=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "key.pem"]


def test_a_body_over_max_bytes_is_refused_though_the_server_does_not_announce_it(
        serve, tmp_path):
    url = serve(handler=UnannouncedBodyHandler) + "ptb.train.txt"
    dest = tmp_path / "ptb.train.txt"

    with pytest.raises(DownloadError, match=f"body exceeds the {len(BODY) - 1}-byte limit"):
        fetch(url, dest, BODY_SHA256, timeout=5, allow_http=True, max_bytes=len(BODY) - 1)
    assert list(tmp_path.iterdir()) == []


def test_a_body_of_exactly_max_bytes_is_kept(serve, tmp_path):
    url = serve(handler=UnannouncedBodyHandler) + "ptb.train.txt"
    dest = tmp_path / "ptb.train.txt"

    fetch(url, dest, BODY_SHA256, timeout=5, allow_http=True, max_bytes=len(BODY))
    assert dest.read_bytes() == BODY
