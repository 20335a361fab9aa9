"""Regression tests for four audit findings:

* an unreadable file in the PTB cache gave a PermissionError traceback
  instead of a DataSourceError naming the file and the fix;
* a damaged PTB id cache whose header claims a huge array gave MemoryError
  instead of being rebuilt;
* the book's ``save_params(file_name=...)`` / ``load_params(file_name=...)``
  did not map (the name was stored as metadata, or was a TypeError);
* ``BetterRnnlm`` refused D != H by default, while the README says its
  weights are tied when D == H.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from common.serialization import load_npz
from datasets import ptb
from models import BetterRnnlm, BetterRnnlmGen, Rnnlm, build_model, load_model, model_from_config

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_PTB_DIR = Path(
    os.environ.get("RNNLAB_PTB_DIR") or REPO_ROOT.parent / "shared" / "data" / "ptb"
)


@pytest.fixture(autouse=True)
def ptb_cache(tmp_path, monkeypatch) -> Path:
    """A private, empty user cache; no PTB folder named; downloads go to a closed port."""
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


# ---------------------------------------------------------------------------
# 1. An unreadable file in the PTB cache


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


# ---------------------------------------------------------------------------
# 2. A damaged id cache is rebuilt, whatever its header claims


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
# 3. The book's file_name= of save_params / load_params


def test_save_params_takes_the_books_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Rnnlm(12, 4, 5, seed=0)
    path = str(tmp_path / "mine.npz")
    assert model.save_params(file_name=path) == path
    assert os.listdir(tmp_path) == ["mine.npz"]  # not Rnnlm.npz
    _, meta = load_npz(path)
    assert "file_name" not in meta


def test_load_params_takes_the_books_file_name(tmp_path):
    path = tmp_path / "mine.npz"
    Rnnlm(12, 4, 5, seed=0).save_params(path)
    other = Rnnlm(12, 4, 5, seed=1)
    other.load_params(file_name=path)
    for a, b in zip(other.params, Rnnlm(12, 4, 5, seed=0).params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_positional_paths_and_the_default_file_are_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Rnnlm(12, 4, 5, seed=0)
    assert model.save_params() == "Rnnlm.npz"
    assert model.save_params("b.npz") == "b.npz"
    model.load_params()
    model.load_params("b.npz")
    assert sorted(os.listdir(tmp_path)) == ["Rnnlm.npz", "b.npz"]


@pytest.mark.parametrize("method", ["save_params", "load_params"])
def test_path_and_file_name_together_are_refused(tmp_path, method):
    model = Rnnlm(12, 4, 5, seed=0)
    model.save_params(tmp_path / "a.npz")
    with pytest.raises(TypeError, match="got the file twice.*give one"):
        getattr(model, method)(tmp_path / "a.npz", file_name=tmp_path / "b.npz")
    assert not (tmp_path / "b.npz").exists()


@pytest.mark.parametrize("key, meant", [("filename", "file_name"), ("fileName", "file_name"),
                                        ("fname", "file_name"), ("file", "file_name"),
                                        ("paths", "path"), ("vocabs", "vocab"),
                                        ("vocabulary", "vocab")])
def test_a_misspelt_argument_is_not_stored_as_metadata(tmp_path, monkeypatch, key, meant):
    monkeypatch.chdir(tmp_path)
    model = Rnnlm(12, 4, 5, seed=0)
    with pytest.raises(TypeError, match=f"{key}=.*did you mean {meant}="):
        model.save_params(**{key: "x.npz"})
    assert os.listdir(tmp_path) == []


def test_real_metadata_is_still_stored(tmp_path):
    path = tmp_path / "m.npz"
    meta = dict(level="char", task="custom", reverse=True, data_seed=7, data_sha256="0" * 64,
                accuracy=0.5)
    Rnnlm(12, 4, 5, seed=0).save_params(path, vocab=[str(i) for i in range(12)], **meta)
    _, saved = load_npz(path)
    assert {k: saved[k] for k in meta} == meta


# ---------------------------------------------------------------------------
# 4. BetterRnnlm ties its weights when D == H, by default


def test_better_rnnlm_unties_by_default_when_d_differs_from_h():
    model = BetterRnnlm(20, 8, 16, seed=0)
    assert model.config["tie_weights"] is False
    assert model.affine.params[0].shape == (16, 20)
    assert model.affine.params[0] is not model.embed.params[0]
    assert BetterRnnlmGen(20, 8, 16, seed=0).config["tie_weights"] is False


def test_better_rnnlm_ties_by_default_when_d_equals_h():
    model = BetterRnnlm(20, 8, 8, seed=0)
    assert model.config["tie_weights"] is True
    assert model.affine.params[0] is model.embed.params[0]
    assert BetterRnnlm().config["tie_weights"] is True  # the book's 650/650 model


def test_better_rnnlm_explicit_choices_are_kept():
    assert BetterRnnlm(20, 8, 8, tie_weights=False, seed=0).config["tie_weights"] is False
    assert BetterRnnlm(20, 8, 8, tie_weights=True, seed=0).config["tie_weights"] is True
    with pytest.raises(ValueError, match="tie_weights needs wordvec_size == hidden_size"):
        BetterRnnlm(20, 8, 16, tie_weights=True)
    with pytest.raises(ValueError, match="tie_weights must be True or False"):
        BetterRnnlm(20, 8, 8, tie_weights="yes")


@pytest.mark.parametrize("D, H, tie", [(8, 16, None), (8, 8, None), (8, 8, False)])
def test_better_rnnlm_files_record_the_choice_made(tmp_path, D, H, tie):
    kwargs = {} if tie is None else {"tie_weights": tie}
    model = BetterRnnlm(20, D, H, dropout_ratio=0.0, seed=0, **kwargs)
    path = tmp_path / "b.npz"
    model.save_params(path)
    _, meta = load_npz(path)
    assert meta["config"]["tie_weights"] is model.config["tie_weights"]

    loaded, _ = load_model(path)
    assert loaded.config == model.config
    assert len(loaded.named_params()) == len(model.named_params())
    for name, p in model.named_params().items():
        np.testing.assert_array_equal(loaded.named_params()[name], p)
    rebuilt = model_from_config("BetterRnnlm", model.config)
    assert rebuilt.config == model.config


def test_better_rnnlm_param_shapes_follow_the_default():
    """A config without tie_weights means the class default: tied exactly when D == H."""
    untied = BetterRnnlm.param_shapes({"vocab_size": 20, "wordvec_size": 8, "hidden_size": 16})
    assert untied["affine.W"] == (16, 20)
    tied = BetterRnnlm.param_shapes({"vocab_size": 20, "wordvec_size": 8, "hidden_size": 8})
    assert "affine.W" not in tied
    for config in ({"vocab_size": 20, "wordvec_size": 8, "hidden_size": 16},
                   {"vocab_size": 20, "wordvec_size": 8, "hidden_size": 8}):
        model = BetterRnnlm(**config)
        assert {k: tuple(v.shape) for k, v in model.named_params().items()} == \
            BetterRnnlm.param_shapes(config)


def test_build_model_and_the_class_agree():
    for D, H in ((8, 16), (8, 8)):
        built = build_model("better", 20, D, H, seed=0)
        assert built.config == BetterRnnlm(20, D, H, seed=0).config
