"""The rescue never writes into the folder that refused the file: a model
whose ``--save`` failed in the current folder goes to the home folder,
not beside the failed path under a numbered name (where the user would
not look, and where the next write would likely fail too)."""

import errno
import os

import pytest

import common.rescue as rescue
from common.rescue import rescue_folders, rescue_words, save_or_rescue


@pytest.fixture
def places(tmp_path, monkeypatch):
    """The current folder (where --save points), home and temporary folders."""
    for name in ("here", "home", "tmp", "shm"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(rescue.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr(rescue, "_IN_MEMORY", str(tmp_path / "shm"))
    return tmp_path / "here", tmp_path / "home"


def refusing_only(path):
    """A ``write`` that refuses ``path`` itself (a read-only model file, say)."""
    def write(target):
        if target == str(path):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), target)
        with open(target, "w") as f:
            f.write("model")
        return target
    return write


def test_the_folder_that_refused_is_not_a_rescue_folder(places):
    here, home = places
    error = OSError(errno.EACCES, "Permission denied")
    folders = rescue_folders(str(here / "m.npz"), error)
    assert str(here) not in folders
    assert folders[0] == str(home)


def test_a_model_refused_in_the_current_folder_is_written_to_home(places):
    here, home = places
    (here / "m.npz").write_text("the old model, read-only")

    written, error = save_or_rescue(refusing_only(here / "m.npz"), str(here / "m.npz"))

    assert written == str(home / "m.npz") and (home / "m.npz").read_text() == "model"
    assert sorted(os.listdir(here)) == ["m.npz"]
    assert rescue_words("the model", "--save", str(here / "m.npz"), written, error).endswith(
        f"the model was written to {home / 'm.npz'} instead")
