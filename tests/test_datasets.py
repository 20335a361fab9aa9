"""Tests for the corpora: datasets.ptb, datasets.synthetic and datasets.text.

The PTB tests read the real files from ``$RNNLAB_PTB_DIR`` or
``../shared/data/ptb`` next to the repository. Downloads are tested against a
local HTTP server on 127.0.0.1; no test touches the network.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from common.serialization import load_npz
from datasets import ptb, synthetic, text

REPO_ROOT = Path(__file__).resolve().parents[1]
# Read once at import: the autouse fixture below clears the variable in every test.
REAL_PTB_DIR = Path(
    os.environ.get("RNNLAB_PTB_DIR") or REPO_ROOT.parent / "shared" / "data" / "ptb"
)
PTB_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(autouse=True)
def ptb_cache(tmp_path, monkeypatch) -> Path:
    """Give each test its own empty user cache and no PTB environment settings.

    Any download a test does not set up on purpose goes to a closed local
    port, so it fails at once instead of reaching the internet.
    """
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(ptb.ENV_DIR, raising=False)
    monkeypatch.setenv(ptb.ENV_URL, "http://127.0.0.1:9/")
    return ptb.cache_dir()


@pytest.fixture
def ptb_dir() -> Path:
    if not REAL_PTB_DIR.is_dir():
        pytest.skip(f"Penn Treebank files not present at {REAL_PTB_DIR} (set RNNLAB_PTB_DIR)")
    return REAL_PTB_DIR


@pytest.fixture
def ptb_copy(ptb_dir, tmp_path) -> Path:
    """A private copy of the three PTB files that a test may damage."""
    copy = tmp_path / "ptb-copy"
    copy.mkdir()
    for name in PTB_FILES:
        shutil.copyfile(ptb_dir / name, copy / name)
    return copy


class ShortBodyHandler(http.server.BaseHTTPRequestHandler):
    """Announces 1,000 bytes, sends 12, then closes the connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"aer banknote")

    def log_message(self, format, *args):
        pass


def files_in(folder: Path) -> list[str]:
    """Names of everything in ``folder`` (hidden temporary files included)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------
# PTB: contents


def test_ptb_splits_have_the_published_sizes(ptb_dir):
    train, word_to_id, id_to_word = ptb.load_data("train", data_dir=ptb_dir)
    valid, valid_word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    test, test_word_to_id, _ = ptb.load_data("test", data_dir=ptb_dir)

    assert (len(train), len(valid), len(test)) == (929_589, 73_760, 82_430)
    assert len(word_to_id) == len(id_to_word) == 10_000
    assert word_to_id["aer"] == 0 and id_to_word[0] == "aer"
    assert word_to_id == valid_word_to_id == test_word_to_id
    for corpus in (train, valid, test):
        assert corpus.dtype == np.int32 and corpus.ndim == 1
        assert 0 <= corpus.min() and corpus.max() < 10_000


def test_ptb_newlines_become_eos(ptb_dir):
    train, _, id_to_word = ptb.load_data("train", data_dir=ptb_dir)
    first_line = (ptb_dir / "ptb.train.txt").read_text().split("\n")[0].split()
    words = [id_to_word[i] for i in train[: len(first_line) + 2]]
    assert words == first_line + ["<eos>", "pierre"]


def test_val_is_an_alias_for_valid(ptb_dir):
    val, _, _ = ptb.load_data("val", data_dir=ptb_dir)
    valid, _, _ = ptb.load_data("valid", data_dir=ptb_dir)
    np.testing.assert_array_equal(val, valid)


def test_the_books_data_type_keyword_names_the_split(ptb_dir):
    """The book's signature is load_data(data_type='train')."""
    val, _, _ = ptb.load_data(data_type="val", data_dir=ptb_dir)
    test, _, _ = ptb.load_data("test", data_dir=ptb_dir)
    assert len(val) == 73760 and len(test) == 82430
    with pytest.raises(TypeError, match="give one"):
        ptb.load_data("test", data_type="val", data_dir=ptb_dir)
    with pytest.raises(TypeError, match="give one"):  # the default's value given, too
        ptb.load_data("train", data_type="val", data_dir=ptb_dir)


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="'train', 'valid'"):
        ptb.load_data("training")


# ---------------------------------------------------------------------------
# PTB: checksums


def test_truncated_file_is_rejected(ptb_copy):
    train = ptb_copy / "ptb.train.txt"
    train.write_bytes(train.read_bytes()[:1000])

    with pytest.raises(ptb.ChecksumError) as info:
        ptb.load_data("train", data_dir=ptb_copy)
    message = str(info.value)
    assert str(train) in message
    assert f"expected {ptb.SHA256['ptb.train.txt']}" in message
    assert f"actual   {hashlib.sha256(train.read_bytes()).hexdigest()}" in message
    assert "Fix:" in message


def test_altered_file_is_rejected(ptb_copy):
    test = ptb_copy / "ptb.test.txt"
    data = bytearray(test.read_bytes())
    data[100] = ord("#")  # same size, one byte different
    test.write_bytes(bytes(data))

    with pytest.raises(ptb.ChecksumError, match=r"ptb\.test\.txt .*SHA-256") as info:
        ptb.load_data("train", data_dir=ptb_copy)
    assert "CR LF" not in str(info.value)


def test_a_file_with_windows_line_ends_is_rejected_saying_so(ptb_copy):
    """A copy converted to CR LF (git's core.autocrlf) was 'truncated or altered'."""
    valid = ptb_copy / "ptb.valid.txt"
    valid.write_bytes(valid.read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(ptb.ChecksumError, match=r"ptb\.valid\.txt .* its lines end with CR "
                                                r"LF, Windows line ends, .* dos2unix"):
        ptb.load_data("train", data_dir=ptb_copy)


# ---------------------------------------------------------------------------
# PTB: where the files are looked for


def test_data_dir_argument_comes_before_the_environment(ptb_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(ptb.ENV_DIR, str(tmp_path / "nothing-here"))
    assert ptb.find_data_dir(ptb_dir) == ptb_dir


def test_environment_folder_comes_before_the_cache(ptb_dir, monkeypatch):
    monkeypatch.setenv(ptb.ENV_DIR, str(ptb_dir))
    assert ptb.find_data_dir() == ptb_dir


def test_an_incomplete_environment_folder_is_an_error_not_a_download(
    tmp_path, monkeypatch, ptb_cache
):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(ptb.ENV_DIR, str(empty))

    with pytest.raises(ptb.DataSourceError) as info:
        ptb.find_data_dir()
    message = str(info.value)
    assert f"$RNNLAB_PTB_DIR={str(empty)!r}" in message
    assert "lacks ptb.train.txt, ptb.valid.txt, ptb.test.txt" in message
    assert "point $RNNLAB_PTB_DIR at a folder" in message and "unset" in message
    assert info.value.source == "RNNLAB_PTB_DIR" and info.value.folder == empty
    assert files_in(ptb_cache) == []  # an explicit folder is never a reason to download


def test_the_cache_is_used_when_no_folder_is_given(ptb_copy, ptb_cache):
    shutil.copytree(ptb_copy, ptb_cache)
    assert ptb.find_data_dir() == ptb_cache


def test_loading_never_writes_into_data_dir(ptb_copy, ptb_cache):
    before = files_in(ptb_copy)
    ptb.load_data("valid", data_dir=ptb_copy)
    assert files_in(ptb_copy) == before
    assert any(name.endswith(".npz") for name in files_in(ptb_cache))


# ---------------------------------------------------------------------------
# PTB: downloading (from a local server)


def test_download_fills_the_cache_and_loads(ptb_copy, ptb_cache, serve, monkeypatch):
    monkeypatch.setenv(ptb.ENV_URL, serve(ptb_copy))

    corpus, word_to_id, _ = ptb.load_data("test")

    assert len(corpus) == 82_430 and len(word_to_id) == 10_000
    for name in PTB_FILES:
        assert (ptb_cache / name).read_bytes() == (ptb_copy / name).read_bytes()
    assert not [name for name in files_in(ptb_cache) if name.endswith(".part")]


def test_download_tries_the_next_url_after_a_failure(ptb_copy, tmp_path, serve):
    empty = tmp_path / "empty"
    empty.mkdir()
    dest = ptb.download(tmp_path / "dest", base_urls=[serve(empty), serve(ptb_copy)])
    assert files_in(dest) == sorted(PTB_FILES)


def test_a_failed_download_leaves_nothing_behind(tmp_path, ptb_cache, serve, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = serve(empty)
    monkeypatch.setenv(ptb.ENV_URL, base)

    with pytest.raises(ptb.DataNotFoundError) as info:
        ptb.load_data("train")
    message = str(info.value)
    assert f"{base}ptb.train.txt" in message and "404" in message
    assert str(ptb_cache) in message  # where to put the files by hand
    assert files_in(ptb_cache) == []


def test_a_short_download_leaves_nothing_behind(ptb_cache, serve, monkeypatch):
    monkeypatch.setenv(ptb.ENV_URL, serve(handler=ShortBodyHandler))

    with pytest.raises(ptb.DataNotFoundError, match="incomplete download: received 12 of 1000"):
        ptb.load_data("train")
    assert files_in(ptb_cache) == []


def test_a_corrupt_download_fails_its_checksum_and_leaves_nothing(
    ptb_copy, ptb_cache, serve, monkeypatch
):
    train = ptb_copy / "ptb.train.txt"
    train.write_bytes(train.read_bytes()[:5000])
    monkeypatch.setenv(ptb.ENV_URL, serve(ptb_copy))

    with pytest.raises(ptb.DataNotFoundError, match="SHA-256 mismatch after download"):
        ptb.load_data("train")
    assert files_in(ptb_cache) == []


def test_default_mirrors_must_be_https(monkeypatch):
    monkeypatch.delenv(ptb.ENV_URL)
    monkeypatch.setattr(ptb, "MIRRORS", ("http://127.0.0.1:9/",))

    with pytest.raises(ptb.DataNotFoundError, match="refusing http URL"):
        ptb.load_data("train")


def test_download_can_be_forbidden():
    with pytest.raises(ptb.DataNotFoundError, match="allow_download=False"):
        ptb.find_data_dir(allow_download=False)


# ---------------------------------------------------------------------------
# PTB: the .npz cache of token ids


def test_token_ids_are_cached_as_npz_without_pickles(ptb_dir, ptb_cache, monkeypatch):
    first, word_to_id, _ = ptb.load_data("train", data_dir=ptb_dir)
    [npz_name] = [name for name in files_in(ptb_cache) if name.endswith(".npz")]
    with np.load(ptb_cache / npz_name, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["corpus"], first)
        assert npz["vocab"].tolist() == list(word_to_id)

    def no_tokenising(*args, **kwargs):
        raise AssertionError("the text was tokenised again instead of read from the cache")

    monkeypatch.setattr(text, "load_data", no_tokenising)
    second, second_word_to_id, _ = ptb.load_data("train", data_dir=ptb_dir)
    np.testing.assert_array_equal(second, first)
    assert second_word_to_id == word_to_id


def test_a_damaged_npz_cache_is_rebuilt(ptb_dir, ptb_cache):
    first, _, _ = ptb.load_data("valid", data_dir=ptb_dir)
    for npz in ptb_cache.glob("*.npz"):
        npz.write_bytes(b"not a zip file")
    second, _, _ = ptb.load_data("valid", data_dir=ptb_dir)
    np.testing.assert_array_equal(second, first)


def test_a_cache_rewritten_with_its_hash_recomputed_is_rebuilt(ptb_dir, ptb_cache):
    """Its own hash vouched only for its own contents: ids out of range, a
    vocabulary with a word twice or another split's, rewritten with the hash
    of what was written, were returned as they were."""
    right, word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    vocab = list(word_to_id)
    path = ptb._npz_path("valid")
    for corpus, words in ((np.append(right[:-1], 123456).astype(np.int32), vocab),
                          (right, vocab[:-1] + vocab[:1]),
                          (right, vocab[::-1])):
        ptb._write_npz(path, "valid", corpus, words)
        again, again_word_to_id, id_to_word = ptb.load_data("valid", data_dir=ptb_dir)
        np.testing.assert_array_equal(again, right)
        assert again_word_to_id == word_to_id and len(id_to_word) == len(word_to_id) == 10000


def test_a_cache_folder_this_user_may_not_enter(ptb_dir, ptb_cache, monkeypatch):
    """(Python's is_file and is_dir raise for a folder one may not enter: with
    a named folder the load failed with a bare PermissionError, though a cache
    costs only time; with none, it was no DataSourceError either.)"""
    def shut(method):
        def checked(self):
            if ptb_cache == self or ptb_cache in self.parents:
                raise PermissionError(13, "Permission denied", str(self))
            return method(self)
        return checked

    monkeypatch.setattr(Path, "is_file", shut(Path.is_file))
    monkeypatch.setattr(Path, "is_dir", shut(Path.is_dir))
    corpus, _, _ = ptb.load_data("valid", data_dir=ptb_dir)
    assert corpus.size == 73760
    with pytest.raises(ptb.DataSourceError, match=rf"(?s)cannot enter {ptb_cache} \(Permission "
                                                  r"denied\).*Fix: set XDG_CACHE_HOME"):
        ptb.load_data("valid")


def test_no_home_folder_costs_a_named_folder_only_the_cache(ptb_dir, monkeypatch):
    # (A container's arbitrary user id, no HOME: Path.home raised RuntimeError
    # even with data_dir, from a message about the cache built in advance.)
    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with pytest.warns(ptb.CacheWarning, match="no folder for the Penn Treebank id cache"):
        corpus, _, _ = ptb.load_data("test", data_dir=ptb_dir)
    assert corpus.size == 82430
    with pytest.raises(ptb.DataSourceError, match="no home folder .* set XDG_CACHE_HOME"):
        ptb.load_data("test")
    with pytest.raises(ptb.DataSourceError, match="(?s)folder .* does not exist.*\\(none here: "
                                                  "no home folder"):
        ptb.load_data("test", data_dir=ptb_dir / "missing")


@pytest.mark.parametrize("url", ["https://[::1/", "https://raw..githubusercontent.com/",
                                 "https://" + "a" * 64 + ".example/"],
                         ids=["ipv6-unclosed", "empty-label", "label-too-long"])
def test_a_malformed_url_is_a_failed_download(tmp_path, url):
    # (ValueError or UnicodeError, a traceback, instead of the list of what was tried.)
    with pytest.raises(ptb.DataNotFoundError, match="DownloadError: malformed URL"):
        ptb.download(tmp_path / "dest", base_urls=[url])
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


@pytest.fixture
def filled_cache(ptb_dir, ptb_cache) -> Path:
    """The user cache holding verified copies of the three files."""
    ptb_cache.mkdir(parents=True)
    for name in ptb.SHA256:
        shutil.copyfile(ptb_dir / name, ptb_cache / name)
    return ptb_cache


def make_unreadable(monkeypatch, path: Path) -> None:
    """Reading ``path`` fails as it does for a file without read permission.

    (chmod cannot do it for tests run as root, who may read anything.)
    """
    real = ptb.sha256_file

    def sha256_file(p):
        if Path(p) == path:
            raise PermissionError(13, "Permission denied", str(p))
        return real(p)

    monkeypatch.setattr(ptb, "sha256_file", sha256_file)


def test_an_unreadable_cache_file_is_a_data_source_error_naming_it(filled_cache, monkeypatch):
    bad = filled_cache / "ptb.test.txt"
    make_unreadable(monkeypatch, bad)
    with pytest.raises(ptb.DataSourceError) as info:
        ptb.load_data("test")
    message = str(info.value)
    assert str(bad) in message and "Permission denied" in message
    assert f"chmod u+r {bad}" in message and "delete it" in message  # the fix
    assert "data_dir=" in message and ptb.ENV_DIR in message  # and the other ways
    assert info.value.source == "cache" and info.value.folder == filled_cache
    assert not isinstance(info.value, ptb.DataNotFoundError)  # no fallback on another corpus


def test_an_unreadable_cache_file_without_download_is_the_same_error(filled_cache, monkeypatch):
    make_unreadable(monkeypatch, filled_cache / "ptb.valid.txt")
    with pytest.raises(ptb.DataSourceError, match="cannot read .*ptb.valid.txt"):
        ptb.find_data_dir(allow_download=False)


def test_download_into_a_folder_with_an_unreadable_file_names_it(filled_cache, monkeypatch):
    bad = filled_cache / "ptb.train.txt"
    make_unreadable(monkeypatch, bad)
    with pytest.raises(ptb.DataSourceError) as info:
        ptb.download(filled_cache)
    assert str(bad) in str(info.value) and "dest_dir" in str(info.value)
    assert info.value.source == "dest_dir"


def huge_header_archive(path: Path) -> None:
    """A zip whose corpus.npy header claims 10**12 int32s (3.64 TiB) but holds 16 bytes."""
    buf = io.BytesIO()
    header = {"descr": "<i4", "fortran_order": False, "shape": (10**12,)}
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(b"\0" * 16)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("corpus.npy", buf.getvalue())


def test_an_id_cache_claiming_a_huge_array_is_rebuilt(ptb_dir, ptb_cache):
    first, word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    [valid_npz] = ptb_cache.glob("ptb.valid.*.npz")
    huge_header_archive(valid_npz)

    second, second_word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    np.testing.assert_array_equal(second, first)
    assert second_word_to_id == word_to_id
    arrays, _ = load_npz(valid_npz)  # rebuilt: a good cache again
    np.testing.assert_array_equal(arrays["corpus"], first)


def test_an_id_cache_with_damaged_compressed_data_is_rebuilt(ptb_dir, ptb_cache):
    first, _, _ = ptb.load_data("valid", data_dir=ptb_dir)
    [valid_npz] = ptb_cache.glob("ptb.valid.*.npz")
    with zipfile.ZipFile(valid_npz, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("corpus.npy", b"x" * 1000)
    raw = bytearray(valid_npz.read_bytes())
    raw[40:60] = b"\xff" * 20
    valid_npz.write_bytes(bytes(raw))
    np.testing.assert_array_equal(ptb.load_data("valid", data_dir=ptb_dir)[0], first)


def test_an_id_cache_with_a_vocabulary_of_numbers_is_rebuilt(ptb_dir, ptb_cache):
    first, word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    [valid_npz] = ptb_cache.glob("ptb.valid.*.npz")
    with np.load(valid_npz, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["vocab"] = np.arange(len(word_to_id))
    with open(valid_npz, "wb") as f:
        np.savez(f, **arrays)
    second, second_word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    np.testing.assert_array_equal(second, first)
    assert second_word_to_id == word_to_id


# ---------------------------------------------------------------------------
# Synthetic corpus


def test_synthetic_is_deterministic():
    a, _, _ = synthetic.load_data("train", n_tokens=5_000, seed=3)
    b, _, _ = synthetic.load_data("train", n_tokens=5_000, seed=3)
    c, _, _ = synthetic.load_data("train", n_tokens=5_000, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_synthetic_takes_none_for_train_as_ptb_does():
    # (A drop-in for ptb.load_data, which takes None for 'train': it gave a TypeError.)
    np.testing.assert_array_equal(synthetic.load_data(None, n_tokens=50)[0],
                                  synthetic.load_data("train", n_tokens=50)[0])


def test_synthetic_splits_differ_but_share_one_vocabulary():
    train, train_vocab, id_to_word = synthetic.load_data("train")
    valid, valid_vocab, _ = synthetic.load_data("val")
    test, test_vocab, _ = synthetic.load_data("test")

    assert (len(train), len(valid), len(test)) == (100_000, 10_000, 10_000)
    assert train_vocab == valid_vocab == test_vocab
    assert not np.array_equal(valid, test)
    assert 200 <= len(train_vocab) <= 1_000  # a few hundred words
    assert id_to_word == {i: w for w, i in train_vocab.items()}
    for corpus in (train, valid, test):
        assert corpus.dtype == np.int32
        assert 0 <= corpus.min() and corpus.max() < len(train_vocab)


def test_synthetic_sentences_end_with_eos_and_respect_a_an():
    words = synthetic.generate(20_000, seed=0)
    assert words.count("<eos>") > 1_000
    for word, next_word in zip(words[:-1], words[1:], strict=True):
        if word == "a":
            assert next_word[0] not in "aeiou"
        if word == "an":
            assert next_word[0] in "aeiou"


def test_synthetic_is_learnable():
    """Even a bigram model beats the uniform guess by far on held-out text."""
    train, word_to_id, _ = synthetic.load_data("train")
    valid, _, _ = synthetic.load_data("valid")
    V = len(word_to_id)
    counts = np.full((V, V), 0.1)  # add-0.1 smoothing
    np.add.at(counts, (train[:-1], train[1:]), 1)
    probs = counts / counts.sum(axis=1, keepdims=True)
    perplexity = np.exp(-np.log(probs[valid[:-1], valid[1:]]).mean())
    assert perplexity < V / 5


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        synthetic.load_data("dev")
    with pytest.raises(ValueError, match="n_tokens"):
        synthetic.load_data(n_tokens=1)


# ---------------------------------------------------------------------------
# Any text file


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def test_word_level_follows_the_ptb_convention(tmp_path):
    path = write(tmp_path / "t.txt", "the cat sat\nthe dog\n")
    corpus, word_to_id, id_to_word = text.load_data(path)

    assert list(word_to_id) == ["the", "cat", "sat", "<eos>", "dog"]
    assert corpus.tolist() == [0, 1, 2, 3, 0, 4, 3]
    assert corpus.dtype == np.int32
    assert id_to_word == {0: "the", 1: "cat", 2: "sat", 3: "<eos>", 4: "dog"}


def test_word_level_without_a_final_newline():
    assert text.tokenize("a  b\n\nc") == ["a", "b", "<eos>", "<eos>", "c"]


def test_char_level_keeps_every_character(tmp_path):
    path = write(tmp_path / "t.txt", "ab\nba é")
    corpus, word_to_id, _ = text.load_data(path, level="char")

    assert list(word_to_id) == ["a", "b", "\n", " ", "é"]
    assert corpus.tolist() == [0, 1, 2, 1, 0, 3, 4]


def test_a_byte_order_mark_is_not_a_token(tmp_path):
    path = write(tmp_path / "t.txt", "\ufeffhello world")
    _, word_to_id, _ = text.load_data(path)
    assert list(word_to_id) == ["hello", "world"]


def test_held_out_file_reuses_the_training_vocabulary(tmp_path):
    _, word_to_id, _ = text.load_data(write(tmp_path / "train.txt", "a b c\nc b a\n"))
    held_out, held_out_vocab, id_to_word = text.load_data(
        write(tmp_path / "valid.txt", "c a\n"), vocab=word_to_id
    )
    assert held_out.tolist() == [2, 0, 3]
    assert held_out_vocab == word_to_id and held_out_vocab is not word_to_id
    assert id_to_word[3] == "<eos>"


def test_unknown_token_names_the_token_and_line(tmp_path):
    _, word_to_id, _ = text.load_data(write(tmp_path / "train.txt", "the cat\n"))
    path = write(tmp_path / "valid.txt", "the cat\nthe zebra\n")

    with pytest.raises(text.UnknownTokenError, match=r"line 2: token 'zebra'") as info:
        text.load_data(path, vocab=word_to_id)
    assert isinstance(info.value, ValueError)
    assert info.value.token == "zebra"


def test_id_to_word_is_not_accepted_as_vocab(tmp_path):
    path = write(tmp_path / "t.txt", "a b\n")
    with pytest.raises(ValueError, match="did you pass id_to_word"):
        text.load_data(path, vocab={0: "a", 1: "b"})


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="text file not found"):
        text.load_data(tmp_path / "nope.txt")


@pytest.mark.parametrize("make, name, message", [
    (lambda d: os.symlink("nowhere.txt", d / "book.txt"), "book.txt",
     r"book.txt \(absolute: .*\); it is a link to nowhere.txt, which leads to "
     r".*/nowhere.txt, which does not exist"),
    # Relative to the link's folder, through a second link: the file that is missing.
    (lambda d: ((d / "data").mkdir(), os.symlink("hop", d / "data" / "book.txt"),
                os.symlink("../texts/book.txt", d / "data" / "hop")), "data/book.txt",
     r"it is a link to hop, which leads to .*/texts/book.txt, which does not exist"),
    # 'd/../book.txt' from d/ is d/d/../book.txt, missing, though d/book.txt (the
    # path realpath folds it to) exists: not named as the missing file.
    (lambda d: ((d / "d").mkdir(), (d / "d" / "book.txt").write_text("a b\n"),
                os.symlink("d/../book.txt", d / "d" / "odd.txt")), "d/odd.txt",
     r"it is a link to d/../book.txt, which does not exist$"),
    (lambda d: os.symlink("book.txt", d / "book.txt"), "book.txt",
     r"book.txt is a link that leads round in a loop \(to book.txt\); give the path of the "
     r"text file itself"),
    (lambda d: (os.symlink("b", d / "a"), os.symlink("a", d / "b")), "a/book.txt",
     r"a/book.txt has links on its way that lead round in a loop"),
    (lambda d: (d / "notes.txt").write_text("a b\n"), "notes.txt/book.txt",
     r"notes.txt/book.txt: .*notes.txt is a file, not a folder; give the path of the text "
     r"file"),
], ids=["link-to-none", "link-to-a-link-to-none", "link-to-a-folded-path", "link-loop",
        "loop-on-the-way", "file-as-folder"])
def test_a_path_that_names_no_file_says_why(tmp_path, make, name, message):
    """A link round in a loop, or a file named as a folder, surfaced as a raw
    '[Errno 40] Too many levels of symbolic links' (or Errno 20); a link to
    nothing as 'not found', without a word of the link."""
    make(tmp_path)
    with pytest.raises(FileNotFoundError, match="text file not found: .*" + message):
        text.read_text(tmp_path / name)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"hello", "has 1 token.*at least 2"),
        (b"hello\nw\xf6rld\n", r"not valid UTF-8: byte offset 7 \(line 2\)"),
        # UTF-16 without a byte-order mark is valid UTF-8, a NUL between letters
        ("a b\n".encode("utf-16-le"), r"holds a NUL byte \(line 1\).*UTF-16"),
        (b"  \n\t\n\n", "holds only blank lines at word level.*2 distinct tokens"),
    ],
    ids=["empty", "single-token", "invalid-utf8", "utf16-without-bom", "only-whitespace"],
)
def test_unusable_files_raise_a_corpus_error(tmp_path, content, message):
    path = write(tmp_path / "t.txt", content)
    with pytest.raises(text.CorpusError, match=message) as info:
        text.load_data(path)
    assert str(path) in str(info.value)


def test_a_text_of_one_distinct_character_has_nothing_to_predict(tmp_path):
    path = write(tmp_path / "t.txt", "aaaaaaaa")
    with pytest.raises(text.CorpusError, match="holds only the token 'a' at char level"):
        text.load_data(path, level="char")


def test_a_tilde_path_that_is_not_found_says_it_is_not_expanded():
    with pytest.raises(FileNotFoundError, match="'~' is not expanded here"):
        text.load_data("~/surely-not-here-rnnlab.txt")


def test_invalid_utf8_keeps_the_codec_error_as_its_cause(tmp_path):
    path = write(tmp_path / "t.txt", b"\xff\xfe")
    with pytest.raises(text.CorpusError) as info:
        text.load_data(path)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_unknown_level(tmp_path):
    with pytest.raises(ValueError, match="level must be one of"):
        text.load_data(write(tmp_path / "t.txt", "a b"), level="sentence")


def test_split_corpus_cuts_contiguous_parts():
    corpus = np.arange(100, dtype=np.int32)
    train, valid, test = text.split_corpus(corpus)

    assert (len(train), len(valid), len(test)) == (90, 5, 5)
    np.testing.assert_array_equal(np.concatenate([train, valid, test]), corpus)


def test_split_corpus_rejects_bad_requests():
    with pytest.raises(ValueError, match="sum to 1"):
        text.split_corpus(np.arange(100), (0.5, 0.2))
    with pytest.raises(ValueError, match=r"too short.* \(about 40 tokens or more\)"):
        text.split_corpus(np.arange(10), (0.9, 0.05, 0.05))
    with pytest.raises(ValueError, match="too short"):  # parts of 18, 1 and 1 tokens
        text.split_corpus(np.arange(20), (0.9, 0.05, 0.05))
    assert [len(part) for part in text.split_corpus(np.arange(40))] == [36, 2, 2]
    # Rounding can leave a part short at the length the fractions alone ask for:
    # the advice is then a longer corpus, not this one.
    with pytest.raises(ValueError, match=r"of 50 tokens is too short.*about 51 tokens"):
        text.split_corpus(np.arange(50), (0.35, 0.04, 0.61))
    with pytest.raises(ValueError, match=r"of 2 tokens is too short.*about 51 tokens"):
        text.split_corpus(np.arange(2), (0.35, 0.04, 0.61))
    assert min(map(len, text.split_corpus(np.arange(51), (0.35, 0.04, 0.61)))) >= 2
    # Fractions whose sum is 1 within the tolerance but leave a part nothing.
    with pytest.raises(ValueError, match=r"leave part 2 no tokens"):
        text.split_corpus(np.arange(100), (1.0, 1e-7))
    with pytest.raises(ValueError, match=r"give part 1 a share too small to hold 2 tokens"):
        text.split_corpus(np.arange(10), (1e-308, 1.0))  # (an OverflowError)
    # A share of 1e-6: the length advised is one that splits.
    with pytest.raises(ValueError, match=r"about (\d+) tokens") as info:
        text.split_corpus(np.arange(10), (0.999998, 1e-6, 1e-6))
    advised = int(re.search(r"about (\d+) tokens", str(info.value)).group(1))
    assert min(map(len, text.split_corpus(np.arange(advised), (0.999998, 1e-6, 1e-6)))) >= 2


# ---------------------------------------------------------------------------
# Issue 12: a named source never falls back (finding 4), the id cache is
# verified (13), an unwritable cache warns once (10), arguments are checked
# up front (6)


def load_or_fall_back(**kwargs):
    """What a program may do (as scripts/train_rnnlm.py): fall back only if nothing was named."""
    try:
        return ptb.load_data("train", **kwargs)[0]
    except ptb.DataNotFoundError:
        return "synthetic"


def test_a_named_folder_that_does_not_exist_is_a_source_error_not_a_fallback(tmp_path):
    missing = tmp_path / "nonexistent"
    with pytest.raises(ptb.DataSourceError) as info:
        load_or_fall_back(data_dir=missing)
    error = info.value
    assert isinstance(error, ValueError) and not isinstance(error, ptb.DataNotFoundError)
    assert error.source == "data_dir" and error.folder == missing
    message = str(error)
    assert f"data_dir={str(missing)!r}: folder {missing} does not exist" in message
    assert "Fix: put ptb.train.txt" in message and "leave data_dir unset" in message


def test_a_folder_with_a_tilde_no_shell_expanded_says_so(monkeypatch):
    monkeypatch.setenv(ptb.ENV_DIR, "~/ptb-not-here")  # quoted: the shell left it
    with pytest.raises(ptb.DataSourceError, match=r"folder ~/ptb-not-here does not exist "
                                                  r"\('~' is not expanded here: write the full "
                                                  r"path\)"):
        ptb.load_data("train")


def test_a_truncated_file_in_the_environment_folder_is_a_source_error(ptb_copy, monkeypatch):
    train = ptb_copy / "ptb.train.txt"
    train.write_bytes(train.read_bytes()[:100_000])
    monkeypatch.setenv(ptb.ENV_DIR, str(ptb_copy))

    with pytest.raises(ptb.DataSourceError) as info:
        load_or_fall_back()
    error = info.value
    assert isinstance(error, ptb.ChecksumError) and not isinstance(error, ptb.DataNotFoundError)
    assert error.source == "RNNLAB_PTB_DIR"
    assert f"$RNNLAB_PTB_DIR={str(ptb_copy)!r}" in str(error) and "truncated" in str(error)


def test_a_file_named_as_data_dir_is_a_source_error(tmp_path):
    a_file = write(tmp_path / "ptb.train.txt", "not a folder")
    with pytest.raises(ptb.DataSourceError, match="is a file, not a folder") as info:
        ptb.load_data("train", data_dir=a_file)
    assert "put ptb.train.txt" not in str(info.value)  # into a file: no advice to follow


def test_an_empty_environment_folder_is_reported_as_ignored(monkeypatch):
    monkeypatch.setenv(ptb.ENV_DIR, "")
    with pytest.raises(ptb.DataNotFoundError, match=r"\$RNNLAB_PTB_DIR: set but empty, so "
                                                    "ignored"):
        ptb.load_data("train")


def test_only_nothing_named_and_nothing_found_is_data_not_found():
    # autouse fixture: no data_dir, no $RNNLAB_PTB_DIR, empty cache, downloads fail
    assert load_or_fall_back() == "synthetic"
    with pytest.raises(ptb.DataNotFoundError) as info:
        ptb.load_data("train")
    assert not isinstance(info.value, ptb.DataSourceError)


def rewrite_cached(npz_path: Path, **changes) -> None:
    """Rewrite a cached .npz keeping its metadata but replacing some arrays."""
    with np.load(npz_path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays.update(changes)
    with open(npz_path, "wb") as f:
        np.savez(f, **arrays)


def test_a_cache_of_all_zeros_is_not_trusted(ptb_dir, ptb_cache):
    first, word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    [valid_npz] = ptb_cache.glob("ptb.valid.*.npz")
    rewrite_cached(valid_npz, corpus=np.zeros_like(first))

    second, second_word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    np.testing.assert_array_equal(second, first)
    assert second_word_to_id == word_to_id
    # and the rebuilt cache is good again
    with np.load(valid_npz, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["corpus"], first)


def test_a_cache_with_a_tampered_vocabulary_or_text_hash_is_rebuilt(ptb_dir, ptb_cache):
    first, word_to_id, _ = ptb.load_data("valid", data_dir=ptb_dir)
    [valid_npz] = ptb_cache.glob("ptb.valid.*.npz")
    vocab = list(word_to_id)
    vocab[0], vocab[1] = vocab[1], vocab[0]
    rewrite_cached(valid_npz, vocab=np.array(vocab))
    assert ptb.load_data("valid", data_dir=ptb_dir)[1] == word_to_id

    rewrite_cached(valid_npz, text_sha256=np.array("0" * 64))  # made from another text
    np.testing.assert_array_equal(ptb.load_data("valid", data_dir=ptb_dir)[0], first)


def test_the_cache_records_the_hashes_of_its_sources(ptb_dir, ptb_cache):
    ptb.load_data("valid", data_dir=ptb_dir)
    [valid_npz] = ptb_cache.glob("ptb.valid.*.npz")
    with np.load(valid_npz, allow_pickle=False) as npz:
        assert str(npz["text_sha256"]) == hashlib.sha256(
            (ptb_dir / "ptb.valid.txt").read_bytes()
        ).hexdigest()
        assert str(npz["train_sha256"]) == ptb.SHA256["ptb.train.txt"]
        assert len(str(npz["ids_sha256"])) == 64


def test_an_unwritable_cache_warns_once_per_process(ptb_dir, tmp_path, monkeypatch):
    # A regular file where the cache folder should be: unwritable even for root.
    blocker = write(tmp_path / "not-a-folder", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(ptb, "_unwritable_warned", set(), raising=False)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        valid, _, _ = ptb.load_data("valid", data_dir=ptb_dir)
        test, _, _ = ptb.load_data("test", data_dir=ptb_dir)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert issubclass(caught[0].category, ptb.CacheWarning)
    assert "XDG_CACHE_HOME" in messages[0] and str(blocker) in messages[0]
    assert caught[0].filename == __file__  # points at the caller, not inside datasets/
    assert (len(valid), len(test)) == (73_760, 82_430)  # loading itself still works


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: ptb.load_data(["train"]), TypeError, r"split must be 'train', .* got list"),
        (lambda: ptb.load_data("train", data_dir=""), ValueError, "data_dir must be a folder"),
        (lambda: ptb.load_data("train", data_dir=3), TypeError, "data_dir must be .* got int"),
        (lambda: synthetic.load_data(["train"]), TypeError, "split must be .* got list"),
        (lambda: synthetic.load_data(seed=True), TypeError, "seed must be an int, got True"),
        (lambda: synthetic.load_data(seed=-1), ValueError, "seed must be >= 0, got -1"),
        (lambda: synthetic.load_data(seed="1"), TypeError, "seed must be an int"),
        (lambda: synthetic.load_data(n_tokens=2.5), TypeError, "n_tokens must be an int"),
        (lambda: synthetic.generate(10, seed="abc"), TypeError, "seed must be an int"),
        (lambda: text.load_data(None), TypeError, "path must be a file path .* NoneType"),
        (lambda: text.load_data(""), ValueError, "path must be a file path, got an empty"),
        (lambda: text.load_data("a\0b.txt"), ValueError, "path must be .* holds a NUL"),
        (lambda: text.load_data("x.txt", level=["char"]), ValueError, "level must be one of"),
        (lambda: text.split_corpus(np.arange(100), ("a", "b")), ValueError,
         "fractions must be a sequence of numbers"),
        (lambda: ptb.download("", base_urls=["http://127.0.0.1:9/"]), ValueError,
         "dest_dir must be a folder path or None, got an empty string"),
        (lambda: ptb.download(base_urls=["http://127.0.0.1:9/"], timeout=0), ValueError,
         "timeout must be a positive number of seconds, got 0"),
        (lambda: ptb.download(base_urls=["http://127.0.0.1:9/"], timeout=float("nan")),
         ValueError, "timeout must be a positive number"),
        (lambda: ptb.download(base_urls=[None]), TypeError, "base_urls must be a URL"),
    ],
    ids=["ptb-split-list", "ptb-empty-dir", "ptb-dir-int", "synthetic-split-list",
         "synthetic-seed-bool", "synthetic-seed-negative", "synthetic-seed-str",
         "synthetic-n-tokens-float", "generate-seed-str", "text-path-none", "text-path-empty",
         "text-path-nul",
         "text-level-list", "split-fractions-str", "download-empty-dest", "download-timeout-0",
         "download-timeout-nan", "download-url-none"],
)
def test_loaders_check_their_arguments_up_front_in_one_line(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_numpy_integers_are_ints():
    a, _, _ = synthetic.load_data("valid", n_tokens=np.int64(50), seed=np.int32(2))
    b, _, _ = synthetic.load_data("valid", n_tokens=50, seed=2)
    np.testing.assert_array_equal(a, b)


def test_a_named_folder_says_what_is_in_the_place_of_a_file(ptb_copy):
    # (A dangling link, a pipe or a folder of the file's name was "missing".)
    (ptb_copy / "ptb.valid.txt").unlink()
    (ptb_copy / "ptb.valid.txt").symlink_to(ptb_copy / "gone.txt")
    (ptb_copy / "ptb.test.txt").unlink()
    (ptb_copy / "ptb.test.txt").mkdir()
    with pytest.raises(ptb.DataSourceError, match=r"lacks ptb.valid.txt \(in its place: a link "
                                                  r"to .*gone.txt, which does not exist\), "
                                                  r"ptb.test.txt \(in its place: a folder\)"):
        ptb.load_data("train", data_dir=ptb_copy)
    (ptb_copy / "ptb.test.txt").rmdir()
    os.mkfifo(ptb_copy / "ptb.test.txt")
    with pytest.raises(ptb.DataSourceError, match=r"ptb.test.txt \(in its place: a named pipe"):
        ptb.load_data("train", data_dir=ptb_copy)


def test_a_file_replaced_between_its_check_and_its_reading_is_refused(ptb_copy, monkeypatch):
    # (The ids of whatever was read were returned, and cached as the split's.)
    real = text.load_data

    def replaced_meanwhile(path, *args, **kwargs):
        corpus, word_to_id, id_to_word = real(path, *args, **kwargs)
        if Path(path).name == "ptb.valid.txt":  # (train, read first for the vocabulary, not)
            corpus = corpus[::-1].copy()
        return corpus, word_to_id, id_to_word

    monkeypatch.setattr(text, "load_data", replaced_meanwhile)
    with pytest.raises(ptb.DataSourceError, match="ptb.valid.txt gave other ids than the "
                                                  "published split's: it was replaced") as info:
        ptb.load_data("valid", data_dir=ptb_copy)
    assert info.value.source == "data_dir"
    assert not list(ptb.cache_dir().glob("ptb.valid.*"))
