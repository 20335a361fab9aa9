"""The data loaders' audit findings 1, 2, 3, 5 and 6, one example each.

1. a PTB cache that cannot be written is a ``DataSourceError`` (no fallback),
   while a network failure is still a failed download;
2. a lone CR ends a line at word level (char level keeps line ends as written);
3. a book-layout line with a second ``'_'`` is named as the cause;
5. ``vocab=`` with ids that are not ints is a ``ValueError`` naming the token;
6. a byte-order mark after the start of a file is refused, naming its line.

Downloads go to a local HTTP server on 127.0.0.1, as in ``test_datasets.py``;
no test touches the network.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import http.server
import time
from pathlib import Path

import numpy as np
import pytest

from datasets import _download, ptb, sequence, text

from script_loader import load_script


@pytest.fixture(autouse=True)
def ptb_cache(tmp_path, monkeypatch) -> Path:
    """An empty user cache of the test's own; stray downloads go to a closed port."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(ptb.ENV_DIR, raising=False)
    monkeypatch.setenv(ptb.ENV_URL, "http://127.0.0.1:9/")
    return ptb.cache_dir()


class StallingHandler(http.server.BaseHTTPRequestHandler):
    """Sends the headers and a few bytes of a body, then nothing more for a while."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"aer banknote")
        self.wfile.flush()
        time.sleep(3)  # far beyond the client's 0.1 s timeout, however busy the cores


@pytest.fixture
def mirror(tmp_path, serve, monkeypatch) -> str:
    """A reachable server (``$RNNLAB_PTB_URL``) with three files to download.

    Their bytes are not PTB's: each test here fails before the checksum is compared.
    """
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in ptb.SHA256:
        (folder / name).write_text("aer banknote berlitz\n")
    url = serve(folder)
    monkeypatch.setenv(ptb.ENV_URL, url)
    return url


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# ---------------------------------------------------------------------------
# 1. An unwritable PTB cache is a DataSourceError, not a failed download


def test_a_file_in_the_way_of_the_cache_is_a_source_error_not_a_fallback(
    ptb_cache, mirror
):
    ptb_cache.parent.mkdir(parents=True)
    write(ptb_cache, "x\n")  # a file where the cache folder should be

    with pytest.raises(ptb.DataSourceError) as info:
        ptb.load_data("train")
    error = info.value
    assert not isinstance(error, ptb.DataNotFoundError)  # a program must not fall back
    assert error.source == "cache" and error.folder == ptb_cache
    message = str(error)
    assert f"{ptb_cache} is a file, not a folder" in message
    assert "XDG_CACHE_HOME" in message and "data_dir=" in message and ptb.ENV_DIR in message
    assert ptb_cache.read_text() == "x\n"  # left as it was


def test_offline_a_file_in_the_way_of_the_cache_is_still_a_failed_download(ptb_cache):
    # Nothing could be downloaded anyway (the closed port): a program may fall
    # back to another corpus, as the README's first command does.
    ptb_cache.parent.mkdir(parents=True)
    write(ptb_cache, "x\n")
    with pytest.raises(ptb.DataNotFoundError):
        ptb.load_data("train")


def test_a_bad_byte_after_a_byte_order_mark_is_named_at_its_offset_in_the_file(tmp_path):
    # The codec counts from after the mark; cutting the file there split a character.
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbf\xc3\xa9\xc3\xa9\xff\n")
    with pytest.raises(text.CorpusError, match=r"byte offset 7 \(line 1\) holds b'\\xff'"):
        text.read_text(path)


@contextlib.contextmanager
def failing_atomic_file(error: OSError, path):
    """``atomic_file`` whose writes fail with ``error`` (a full disk, say): the
    real temporary is made, and removed when the write fails."""

    class Failing:
        def write(self, data):
            raise error

    with real_atomic_file(path):
        yield Failing()


real_atomic_file = _download.atomic_file


@pytest.mark.parametrize(
    "code, strerror, fix",
    [
        (errno.ENOSPC, "No space left on device", "free space on the disk"),
        (errno.EACCES, "Permission denied", "chmod u+w"),  # what root cannot be shown
        (errno.EROFS, "Read-only file system", "read-only"),
    ],
    ids=["full-disk", "no-permission", "read-only"],
)
def test_a_download_that_cannot_be_written_is_a_source_error(
    ptb_cache, mirror, monkeypatch, code, strerror, fix
):
    monkeypatch.setattr(_download, "atomic_file",
                        functools.partial(failing_atomic_file, OSError(code, strerror)))

    with pytest.raises(ptb.DataSourceError) as info:
        ptb.load_data("train")
    message = str(info.value)
    assert strerror in message and str(ptb_cache) in message
    assert fix in message and "XDG_CACHE_HOME" in message
    assert not [p.name for p in ptb_cache.iterdir()]  # no temporary left behind


def test_a_network_error_while_reading_is_still_a_failed_download(serve):
    # The server stalls mid-body: a read timeout, an OSError raised while the
    # temporary file is open, which must not be taken for a problem of the disk.
    with pytest.raises(ptb.DataNotFoundError, match="timed out"):
        ptb.download(base_urls=[serve(handler=StallingHandler)], timeout=0.1)


def test_train_rnnlm_stops_on_an_unwritable_cache_instead_of_training_on_synthetic(
    ptb_cache, mirror, tmp_path, monkeypatch, capsys
):
    ptb_cache.parent.mkdir(parents=True)
    write(ptb_cache, "x\n")
    monkeypatch.chdir(tmp_path)
    script = load_script("train_rnnlm")

    with pytest.raises(SystemExit) as info:
        script.main(["--epochs", "1", "--hidden-size", "8", "--wordvec-size", "8",
                     "--plot", "none", "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot store the Penn Treebank files in {ptb_cache}")
    assert "--data-dir" in err and "synthetic" not in err


def test_train_rnnlm_stops_when_the_server_it_was_given_fails(tmp_path, monkeypatch, capsys):
    """$RNNLAB_PTB_URL names where PTB is to come from: a failed download from
    it trained on the synthetic corpus, with a notice of one line that left out
    the URL and its error."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        load_script("train_rnnlm").main(["--epochs", "1", "--hidden-size", "8",
                                         "--wordvec-size", "8", "--plot", "none", "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "http://127.0.0.1:9/" in err
    assert err.endswith("Stopped rather than training on the synthetic corpus: RNNLAB_PTB_URL "
                        "names the server to download PTB from; unset it, or pass --corpus "
                        "synthetic, for the synthetic corpus\n")
    assert not list(tmp_path.iterdir())
    # Blanks and commas alone name no server (ptb then tries its own mirrors):
    # offline, the demo's corpus, as before.
    monkeypatch.setenv(ptb.ENV_URL, " , ")
    monkeypatch.setattr(ptb, "MIRRORS", ("http://127.0.0.1:9/",))
    load_script("train_rnnlm").main(["--epochs", "1", "--hidden-size", "8", "--wordvec-size",
                                     "8", "--plot", "none", "--quiet"])
    assert "training on the built-in synthetic corpus instead" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# 2. Line ends: a lone CR ends a line at word level


def test_lone_cr_line_ends_give_eos_at_word_level(tmp_path):
    lf = "the cat sat\non the mat\n"
    for line_end in ("\r\n", "\r"):
        path = write(tmp_path / "t.txt", lf.replace("\n", line_end))
        _, word_to_id, _ = text.load_data(path)
        assert text.tokenize(text.read_text(path)) == text.tokenize(lf)
        assert text.EOS in word_to_id


def test_line_numbers_in_messages_count_lone_cr_line_ends(tmp_path):
    _, vocab, _ = text.load_data(write(tmp_path / "a.txt", "a b\n"))
    with pytest.raises(text.UnknownTokenError, match="line 3: token 'z'"):
        text.load_data(write(tmp_path / "b.txt", "a\rb\rz\r"), vocab=vocab)


def test_char_level_keeps_line_ends_as_the_file_writes_them():
    assert text.tokenize("a\r\nb\rc\n", "char") == ["a", "\r", "\n", "b", "\r", "c", "\n"]


# ---------------------------------------------------------------------------
# 3. A second '_' in a book-layout line is named, not the padding


def test_a_second_underscore_in_a_book_line_is_named_as_the_cause(tmp_path):
    # Questions '49_97' and '9_87 ', answers '_146' and '_96 ': every line padded.
    path = write(tmp_path / "pairs.txt", "49_97_146\n9_87 _96 \n")
    with pytest.raises(sequence.SequenceDataError) as info:
        sequence.load_data(path)
    message = str(info.value)
    assert "Line 2, '9_87 _96 ', holds 2 '_'" in message
    assert "the question ends at the first '_'" in message
    assert "question<TAB>answer" in message


# ---------------------------------------------------------------------------
# 5. vocab= with ids that are not ints


@pytest.mark.parametrize("bad_id", ["1", 1.0, True], ids=["str", "float", "bool"])
def test_vocab_ids_that_are_not_ints_are_a_value_error_naming_the_token(tmp_path, bad_id):
    path = write(tmp_path / "t.txt", "hello world\n")
    with pytest.raises(ValueError, match=rf"got the id {bad_id!r} .* for the token 'world'"):
        text.load_data(path, vocab={"hello": 0, "world": bad_id, text.EOS: 2})


def test_numpy_integer_vocab_ids_are_ints(tmp_path):
    path = write(tmp_path / "t.txt", "hello world\n")
    vocab = {"hello": np.int64(0), "world": np.int32(1), text.EOS: 2}
    corpus, _, _ = text.load_data(path, vocab=vocab)
    assert corpus.tolist() == [0, 1, 2]


# ---------------------------------------------------------------------------
# 6. A byte-order mark after the start of a file


@pytest.mark.parametrize("level", text.LEVELS)
def test_a_byte_order_mark_after_the_start_is_refused_naming_its_line(tmp_path, level):
    # cat a.txt b.txt, where b.txt begins with a byte-order mark
    path = write(tmp_path / "joined.txt", b"hello world\n\xef\xbb\xbfsecond file\n")
    with pytest.raises(text.CorpusError) as info:
        text.load_data(path, level=level)
    message = str(info.value)
    assert f"{path}, line 2: a byte-order mark (U+FEFF)" in message
    assert "sed" in message  # how to remove it


def test_a_pair_file_with_a_byte_order_mark_inside_is_refused(tmp_path):
    path = write(tmp_path / "pairs.tsv", "1+1\t2\n\ufeff2+2\t4\n")
    with pytest.raises(sequence.SequenceDataError, match="line 2: a byte-order mark"):
        sequence.load_data(path)
