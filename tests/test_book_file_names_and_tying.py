"""The book's names for a model's file, and BetterRnnlm's weight tying.

* ``save_params(file_name=...)`` / ``load_params(file_name=...)`` take the
  book's keyword for the path (before, the name was stored as metadata, or
  was a TypeError), and metadata keys that look like a misspelt argument
  are refused rather than stored;
* ``BetterRnnlm`` ties its weights by default when D == H, as the README
  says, and leaves them untied otherwise (before, D != H was refused).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from common.serialization import load_npz
from models import BetterRnnlm, BetterRnnlmGen, Rnnlm, build_model, load_model, model_from_config

# ---------------------------------------------------------------------------
# The book's file_name= of save_params / load_params


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
# BetterRnnlm ties its weights when D == H, by default


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
