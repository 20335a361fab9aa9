"""A trained model that cannot be written at ``--save`` is written elsewhere.

The scripts check their output paths and the free space before the first
batch, but a disk can fill during the run (another program, the run's own
checkpoints), and the model, written last, was then lost: ``error: cannot
write --save ...: No space left on device`` and nothing on disk.
``common.rescue.save_or_rescue`` writes it to the current, home or
temporary folder instead, under a name no file there has, and the script
says where. Here a writer refuses one folder, as a full disk or a folder
made read-only would.
"""

import errno
import os

import numpy as np
import pytest

import common.rescue as rescue
import models
import models.base
from common.rescue import rescue_folders, rescue_words, save_or_rescue
from models import load_model

from script_loader import load_script


def writer_refusing(folder, err=errno.ENOSPC):
    """A ``write(path)`` that writes a small file, except in ``folder``."""
    written = []

    def write(path):
        if os.path.dirname(os.path.abspath(path)) == str(folder):
            raise OSError(err, os.strerror(err), path)
        with open(path, "w") as f:
            f.write("model")
        written.append(path)
        return path

    write.written = written
    return write


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A full folder, and the current, home, temporary and in-memory folders,
    each on a disk of its own (as the rescue sees them), all in ``tmp_path``."""
    names = ("full", "here", "home", "tmp", "shm")
    for name in names:
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(rescue.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr(rescue, "_IN_MEMORY", str(tmp_path / "shm"))
    disks = {str(tmp_path / name): number for number, name in enumerate(names)}
    monkeypatch.setattr(rescue, "_disk", lambda folder: disks[folder])
    return tmp_path / "full", tmp_path / "here", tmp_path / "home"


def test_a_file_that_can_be_written_goes_where_it_was_asked(places):
    full, here, home = places
    write = writer_refusing(full)
    assert save_or_rescue(write, str(home / "m.npz")) == (str(home / "m.npz"), None)
    assert write.written == [str(home / "m.npz")]


def test_refused_it_goes_to_the_current_folder_under_its_own_name(places):
    full, here, home = places
    written, error = save_or_rescue(writer_refusing(full, errno.EACCES), str(full / "m.npz"))
    assert written == str(here / "m.npz") and (here / "m.npz").read_text() == "model"
    assert error.errno == errno.EACCES
    assert rescue_words("the model", "--save", str(full / "m.npz"), written, error) == (
        f"cannot write --save {full / 'm.npz'} (Permission denied); the model was written "
        f"to {here / 'm.npz'} instead")


def test_a_save_path_that_became_a_folder_during_the_run_is_rescued(places):
    # save_params refuses a folder with an error that is both a ValueError (a
    # wrong argument) and an IsADirectoryError, so the rescue takes it too.
    full, here, home = places
    model = models.SimpleRnnlm(5, 4, 3, seed=0)
    (home / "m.npz").mkdir()
    with pytest.raises(ValueError, match="m.npz is a folder; give a file name in it"):
        model.save_params(home / "m.npz")
    written, error = save_or_rescue(model.save_params, str(home / "m.npz"))
    assert isinstance(error, IsADirectoryError) and written == str(here / "m.npz")
    assert load_model(written)[0].vocab_size == 5
    assert rescue_words("the model", "--save", str(home / "m.npz"), written, error).startswith(
        f"cannot write --save {home / 'm.npz'} ({home / 'm.npz'} is a folder; give a file "
        f"name in it")


def test_a_file_already_there_is_never_replaced(places):
    full, here, home = places
    (here / "m.npz").write_text("older work")
    (here / "m-2.npz").symlink_to(home / "elsewhere.npz")  # a link is a name taken too
    written, _ = save_or_rescue(writer_refusing(full), str(full / "m.npz"))
    assert written == str(here / "m-3.npz")
    assert (here / "m.npz").read_text() == "older work"
    assert not (home / "elsewhere.npz").exists()


def test_a_full_disk_sends_it_to_another_disk(places, monkeypatch):
    """When the whole disk refuses (no space, quota, read-only, failing), no
    folder on it is tried; when only the folder refuses, other folders on
    the disk are."""
    full, here, home = places
    disks = {str(full): 1, str(here): 1, str(home): 2}
    monkeypatch.setattr(rescue, "_disk", lambda folder: disks.get(folder, 3))
    assert rescue._disk(str(full)) == rescue._disk(str(here))
    for err in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO):
        error = OSError(err, os.strerror(err))
        assert rescue_folders(str(full / "m.npz"), error)[0] == str(home)
    error = OSError(errno.EACCES, os.strerror(errno.EACCES))
    assert rescue_folders(str(full / "m.npz"), error)[:2] == [str(here), str(home)]
    written, _ = save_or_rescue(writer_refusing(full), str(full / "m.npz"))
    assert written == str(home / "m.npz") and not (here / "m.npz").exists()


def test_a_folder_still_to_be_made_is_on_the_disk_above_it(tmp_path):
    assert rescue._disk(str(tmp_path / "new" / "newer")) == os.stat(tmp_path).st_dev


def test_no_folder_takes_it(places, monkeypatch):
    full, here, home = places

    def refuse_all(path):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(rescue, "rescue_folders", lambda path, error: [str(here), str(home)])
    written, error = save_or_rescue(refuse_all, str(full / "m.npz"))
    assert written is None and error.errno == errno.ENOSPC
    assert os.listdir(here) == [] and os.listdir(home) == []  # no empty files left
    assert rescue_words("the model", "--save", "m.npz", None, error) == (
        f"cannot write --save m.npz (No space left on device), nor in {here}, {home}")


def test_other_errors_and_ctrl_c_pass_on_and_leave_nothing(places):
    full, here, home = places

    def not_a_disk_problem(path):
        raise ValueError("vocab too short")

    with pytest.raises(ValueError):
        save_or_rescue(not_a_disk_problem, str(full / "m.npz"))
    first = writer_refusing(full)

    def interrupted(path):
        if os.path.dirname(path) == str(here):
            raise KeyboardInterrupt
        return first(path)

    with pytest.raises(KeyboardInterrupt):
        save_or_rescue(interrupted, str(full / "m.npz"))
    assert os.listdir(here) == []


def refuse_saves_in(monkeypatch, folder):
    """Model files in ``folder`` fail as on a disk that filled during the run."""
    real = models.base.save_npz

    def save_npz(path, arrays, meta):
        if os.path.dirname(os.path.abspath(path)) == str(folder):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, arrays, meta)

    monkeypatch.setattr(models.base, "save_npz", save_npz)


def test_train_rnnlm_keeps_the_model_when_save_fails_at_the_end(places, monkeypatch, capsys):
    full, here, home = places
    monkeypatch.setenv("MPLBACKEND", "Agg")
    refuse_saves_in(monkeypatch, full)
    script = load_script("train_rnnlm")
    code = script.main(["--corpus", "synthetic", "--corpus-size", "800", "--batch-size", "4",
                        "--wordvec-size", "8", "--hidden-size", "8", "--epochs", "1",
                        "--save", str(full / "m.npz"), "--plot", "p.png", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert (f"error: cannot write --save {full / 'm.npz'} (No space left on device); the "
            f"model was written to {here / 'm.npz'} instead") in err
    model, meta = load_model(here / "m.npz")
    assert type(model).__name__ == "SimpleRnnlm" and len(meta["vocab"]) >= model.vocab_size
    assert (here / "p.png").stat().st_size > 1000  # the plot is still written
    assert not (full / "m.npz").exists()


def test_train_seq2seq_keeps_the_model_when_save_fails_at_the_end(places, monkeypatch, capsys):
    full, here, home = places
    (here / "m.npz").write_text("another run's model")
    rows = np.random.default_rng(0).integers(10, 99, size=200)
    (home / "pairs.tsv").write_text("".join(f"{a}+1\t{a + 1}\n" for a in rows))
    refuse_saves_in(monkeypatch, full)
    script = load_script("train_seq2seq")
    code = script.main(["--data", str(home / "pairs.tsv"), "--epochs", "1", "--batch-size",
                        "32", "--wordvec-size", "4", "--hidden-size", "8", "--quiet",
                        "--plot", "none", "--save", str(full / "m.npz")])
    err = capsys.readouterr().err
    assert code == 1
    assert (f"error: cannot write --save {full / 'm.npz'} (No space left on device); the "
            f"model was written to {here / 'm-2.npz'} instead") in err
    assert (here / "m.npz").read_text() == "another run's model"
    model, meta = load_model(here / "m-2.npz")
    assert type(model).__name__ == "Seq2seq" and 0 <= meta["accuracy"] <= 1


def test_a_removed_current_folder_is_said_and_the_model_goes_home(places, monkeypatch, capsys):
    """``rm -r`` of the run's folder while it trains: every relative path then
    failed with a bare "No such file or directory", and finding a rescue
    folder raised from ``os.getcwd`` (a traceback, the model lost)."""
    import shutil

    from common.serialization import folder_of, output_path_problem
    from common.trainer import RnnlmTrainer

    full, here, home = places
    monkeypatch.setenv("MPLBACKEND", "Agg")
    real_fit = RnnlmTrainer.fit

    def fit_then_remove_the_folder(self, *args, **kwargs):
        result = real_fit(self, *args, **kwargs)
        shutil.rmtree(here)
        return result

    monkeypatch.setattr(RnnlmTrainer, "fit", fit_then_remove_the_folder)
    code = load_script("train_rnnlm").main(
        ["--corpus", "synthetic", "--corpus-size", "800", "--batch-size", "4",
         "--wordvec-size", "8", "--hidden-size", "8", "--epochs", "1", "--save", "m.npz",
         "--plot", "p.png", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert (f"error: cannot write --save m.npz (the current folder was removed, and the path "
            f"is relative to it); the model was written to {home / 'm.npz'} instead") in err
    assert "warning: could not write the plot --plot p.png" in err
    assert load_model(home / "m.npz")[0].vocab_size > 0
    with pytest.raises(FileNotFoundError, match="the current folder was removed"):
        folder_of("m.npz")
    # A run started in such a folder is refused before training (a traceback).
    assert output_path_problem("--save", "m.npz", "m.npz") == (
        "--save m.npz: the current folder was removed, and the path is relative to it; give "
        "a path from / (or cd to a folder that exists)")
    assert rescue_folders("m.npz", OSError(errno.ENOSPC, "full"))[0] == str(home)
