"""Files rnnlab writes: never an input, never half-written, never a temporary's
name, a replaced file keeps its permissions, a symbolic link stays a link.

Each test is one finding of the file-writing audit: ``inspect_model.py`` may
not write over its --model or --text-file; its heat map and the plot of
``gradient_through_time.py`` are written atomically; a model file's problems
name the file; a path ending in a separator (a folder) or naming a read-only
file is refused before any work; ``trainer.plot(ylim=(0, ...))`` on the log
axis warns that the 0 is ignored.
"""

import errno
import os
import shutil
import stat
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from common.serialization import (
    atomic_open,
    atomic_write,
    load_npz,
    output_path_problem,
    save_npz,
)
from models import AttentionSeq2seq, Rnnlm

from script_loader import load_script, usage_error
from user_permissions import AS_ROOT, a_users_permissions

TEXT = 'def f(x):\n    return "a(b)" + x  # note\n' * 4
CHARS = sorted(set(TEXT))
SEQ_VOCAB = list("0123456789+_ ")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Pictures an earlier run drew (matplotlib says so inside): replaced, unlike a user's file.
EARLIER_MAP = PNG_MAGIC + b"Software: Matplotlib; the heat map of an earlier run"
EARLIER_PLOT = PNG_MAGIC + b"Software: Matplotlib; the plot of an earlier run"
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits and links")


script = load_script


inspect_model = script("inspect_model")


def temporaries(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


def char_model(path):
    Rnnlm(len(CHARS), 8, 6, seed=0).save_params(path, vocab=CHARS, level="char")
    return path


# -- 1. inspect_model.py never writes over the files it reads ---------------------------------


@pytest.mark.parametrize("command, flag, victim", [
    ("units", "--html", "--model"),
    ("surprisal", "--html", "--model"),
    ("surprisal", "--html", "--text-file"),
    ("units", "--png", "--text-file"),
    ("attention", "--png", "--model"),
])
def test_inspect_model_refuses_an_output_that_is_one_of_its_inputs(command, flag, victim,
                                                                   tmp_path, capsys):
    if command == "attention":
        model = tmp_path / "att.png"  # an odd name for a model file, but a file all the same
        AttentionSeq2seq(len(SEQ_VOCAB), 6, 8, seed=0).save_params(model, vocab=SEQ_VOCAB,
                                                                  task="custom")
        source = ["--input", "1+2", "--width", "5", "--answer-length", "3"]
    else:
        model = char_model(tmp_path / "model.npz")
        text = tmp_path / ("text.png" if flag == "--png" else "text.txt")
        text.write_text(TEXT, encoding="utf-8")
        source = ["--text-file", str(text)]
    argv = [command, "--model", str(model), *source]
    inputs = dict(zip(argv[1::2], argv[2::2], strict=False))
    target = Path(inputs[victim])
    before = target.read_bytes()

    err = usage_error(inspect_model.main, [*argv, flag, str(target)], capsys)

    assert f"{flag} {target} is the {victim} file: writing it would destroy that file" in err
    assert target.read_bytes() == before


# -- 2. heat maps and plots are written atomically --------------------------------------------


@pytest.fixture
def png_writer_failing_midway(monkeypatch):
    """PNG saving writes 100 bytes and then fails: a full disk, or Ctrl-C, while
    matplotlib writes the file. Set ``failing.error`` to the exception raised."""
    from PIL import Image

    Image.init()

    def failing(im, fp, filename, *args, **kwargs):
        fp.write(PNG_MAGIC + b"x" * 92)
        fp.flush()
        raise failing.error

    failing.error = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setitem(Image.SAVE, "PNG", failing)
    return failing


@pytest.mark.parametrize("error, code", [
    (OSError(errno.ENOSPC, "No space left on device"), 1),
    (KeyboardInterrupt(), 130),
])
def test_a_heat_map_that_fails_midway_leaves_the_old_one(error, code, tmp_path, capsys,
                                                        png_writer_failing_midway):
    model = char_model(tmp_path / "model.npz")
    png = tmp_path / "units.png"
    png.write_bytes(EARLIER_MAP)
    png_writer_failing_midway.error = error

    assert inspect_model.main(["units", "--model", str(model), "--text", TEXT,
                               "--png", str(png)]) == code

    assert png.read_bytes() == EARLIER_MAP
    assert temporaries(tmp_path) == []


def test_a_heat_map_is_still_written_in_the_format_its_suffix_names(tmp_path, capsys):
    model = char_model(tmp_path / "model.npz")
    svg = tmp_path / "units.svg"
    assert inspect_model.main(["units", "--model", str(model), "--text", TEXT,
                               "--png", str(svg)]) == 0
    assert svg.read_bytes().startswith(b"<?xml")


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()])
def test_a_gradient_through_time_plot_that_fails_midway_leaves_the_old_one(
        error, tmp_path, capsys, png_writer_failing_midway):
    """A full disk: one line and exit status 1 (the results are printed already); Ctrl-C
    goes on up. Either way the old plot stays whole."""
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 300, encoding="utf-8")
    png = tmp_path / "g.png"
    png.write_bytes(EARLIER_PLOT)
    png_writer_failing_midway.error = error
    gtt = script("gradient_through_time")

    argv = ["--text-file", str(text), "--iters", "2", "--hidden-size", "4", "--wordvec-size",
            "4", "--batch-size", "2", "--time-size", "4", "--eval-length", "6",
            "--eval-batch", "2", "--plot", str(png)]

    if isinstance(error, OSError):
        assert gtt.main(argv) == 1
        assert capsys.readouterr().err == (f"error: cannot write the plot --plot {png}: "
                                           "No space left on device\n")
    else:
        with pytest.raises(KeyboardInterrupt):
            gtt.main(argv)

    assert png.read_bytes() == EARLIER_PLOT
    assert temporaries(tmp_path) == []


def test_gradient_through_time_refuses_a_plot_over_its_text_file(tmp_path, capsys):
    text = tmp_path / "t.png"  # any name will do for a text file
    text.write_text("the cat sat on the mat. " * 300, encoding="utf-8")
    err = usage_error(script("gradient_through_time").main,
                      ["--text-file", str(text), "--iters", "1", "--hidden-size", "4",
                       "--wordvec-size", "4", "--batch-size", "2", "--time-size", "4",
                       "--eval-length", "6", "--eval-batch", "2", "--plot", str(text)], capsys)
    assert "is the --text-file file" in err
    assert text.read_text(encoding="utf-8").startswith("the cat sat")


# -- 3. a model file's problems name the file --------------------------------------------------


@pytest.mark.parametrize("command", ["surprisal", "attention"])
@pytest.mark.parametrize("meta, problem", [
    ({"model": "NoSuchModel", "config": {}}, "unknown model class 'NoSuchModel'"),
    ({"model": "Rnnlm", "config": [10, 4, 4]}, "must be a dict of arguments"),
])
def test_a_model_file_that_cannot_be_rebuilt_is_named_in_the_message(command, meta, problem,
                                                                     tmp_path, capsys):
    model = tmp_path / "strange.npz"
    save_npz(model, {"w": np.zeros(3, np.float32)}, {**meta, "vocab": CHARS})
    rest = ["--text", TEXT] if command == "surprisal" else ["--input", "1+2", "--width", "5",
                                                           "--answer-length", "3"]
    err = usage_error(inspect_model.main, [command, "--model", str(model), *rest], capsys)
    assert err.startswith(f"error: {model}: ") and problem in err


# -- 4. a path ending in a separator names a folder: refused before the work -----------------


def test_an_output_path_ending_in_a_separator_is_refused_as_a_folder(tmp_path):
    path = os.path.join(tmp_path, "newdir") + os.sep
    problem = output_path_problem("--save", path, "model.npz")
    assert problem == (f"--save {path} names a folder (it ends in {os.sep!r}), not a file; "
                       f"give a file name in it, e.g. {os.path.join(path, 'model.npz')}")
    with pytest.raises(IsADirectoryError, match="a file name is needed"):
        with atomic_open(path) as f:
            f.write(b"never written")
    assert os.listdir(tmp_path) == []  # not even the folder


def test_train_rnnlm_refuses_a_checkpoint_folder_before_training(tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    train_rnnlm = script("train_rnnlm")
    err = usage_error(train_rnnlm.main,
                      ["--corpus", "synthetic", "--corpus-size", "800", "--batch-size", "4",
                       "--time-size", "5", "--wordvec-size", "8", "--hidden-size", "8",
                       "--epochs", "1", "--plot", "none", "--checkpoint", "newdir2/"],
                      capsys)
    assert "--checkpoint newdir2/ names a folder" in err and "newdir2/model.npz" in err
    assert os.listdir(tmp_path) == []  # nothing trained, nothing written


def test_inspect_model_refuses_a_page_folder_before_the_work(tmp_path, capsys):
    model = char_model(tmp_path / "model.npz")
    page = os.path.join(tmp_path, "pages") + os.sep
    err = usage_error(inspect_model.main, ["surprisal", "--model", str(model), "--text", TEXT,
                                           "--html", page], capsys)
    assert f"--html {page} names a folder" in err
    assert not os.path.exists(page)


# -- 5. permissions: a replaced file keeps its mode; a read-only one is refused --------------


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_a_replaced_file_keeps_its_permissions(mode, tmp_path):
    path = tmp_path / "m.npz"
    save_npz(path, {"w": np.zeros(2)})
    os.chmod(path, mode)
    save_npz(path, {"w": np.ones(2)})
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    np.testing.assert_array_equal(load_npz(path)[0]["w"], np.ones(2))


@posix_only
def test_a_new_file_gets_the_permissions_of_an_ordinary_open(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.txt", lambda f: f.write(b"x"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o644


@posix_only
@pytest.mark.parametrize("mode", [0o444, 0o400])
def test_a_read_only_output_is_refused_before_the_work(mode, tmp_path, capsys):
    page = tmp_path / "units.html"
    page.write_text("kept")
    os.chmod(page, mode)
    problem = output_path_problem("--html", page, "units.html")
    assert problem == (f"--html {page} is read-only (mode {mode:o}); make it writable "
                       f"(chmod u+w {page}) or give another path")
    model = char_model(tmp_path / "model.npz")
    err = usage_error(inspect_model.main, ["surprisal", "--model", str(model), "--text", TEXT,
                                           "--html", str(page)], capsys)
    assert "is read-only" in err
    assert page.read_text() == "kept" and stat.S_IMODE(os.stat(page).st_mode) == mode


@posix_only
def test_another_users_file_in_a_sticky_folder_is_refused_before_the_work(monkeypatch, capsys):
    """The writers rename the new file over the old, which a folder with the
    sticky bit (as /tmp) allows only the file's owner: another user's
    world-writable file there passed the check, and the model trained was
    lost when --save failed at the end."""
    if not AS_ROOT:
        pytest.skip("only root can make a file of another user")
    shared = Path(tempfile.mkdtemp(prefix="rnnlab-sticky-"))
    try:
        shared.chmod(0o1777)
        theirs, mine = shared / "theirs.npz", shared / "mine.npz"
        save_npz(theirs, {"w": np.zeros(2)})
        theirs.chmod(0o666)
        monkeypatch.chdir(shared)
        # (Read before: the checkout may be in a folder nobody may enter, as CI's is.)
        train_rnnlm = script("train_rnnlm")
        with a_users_permissions():
            problem = output_path_problem("--save", theirs, "model.npz")
            with pytest.raises(PermissionError):
                save_npz(theirs, {"w": np.ones(2)})  # what the check spares a run
            save_npz(mine, {"w": np.zeros(2)})
            assert output_path_problem("--save", mine, "model.npz") is None  # one's own
            save_npz(mine, {"w": np.ones(2)})
            err = usage_error(train_rnnlm.main, ["--corpus", "synthetic", "--epochs", "1",
                                                 "--save", str(theirs)], capsys)
        assert problem == (f"--save {theirs} belongs to another user, and {shared} has the "
                           f"sticky bit (as /tmp has): only a file's owner may replace a file "
                           f"there; give another path")
        assert problem in err
        np.testing.assert_array_equal(load_npz(theirs)[0]["w"], np.zeros(2))
    finally:
        shutil.rmtree(shared)


# -- 6. a symbolic link is written through -----------------------------------------------------


@posix_only
def test_a_symbolic_link_is_written_through(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    target = runs / "model-v1.npz"
    save_npz(target, {"w": np.zeros(2)})
    link = tmp_path / "latest.npz"
    link.symlink_to(target)

    save_npz(link, {"w": np.ones(2)})

    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(load_npz(target)[0]["w"], np.ones(2))
    assert temporaries(tmp_path) == [] and temporaries(runs) == []


@posix_only
def test_a_link_to_a_file_not_yet_written_creates_it(tmp_path):
    link = tmp_path / "out.txt"
    link.symlink_to("real.txt")  # relative, to a file that does not exist yet
    atomic_write(link, lambda f: f.write(b"new"))
    assert link.is_symlink() and (tmp_path / "real.txt").read_bytes() == b"new"


@posix_only
def test_a_link_keeps_the_permissions_of_its_target(tmp_path):
    target = tmp_path / "target.txt"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write(link, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new" and stat.S_IMODE(os.stat(target).st_mode) == 0o600


@posix_only
def test_a_link_that_leads_round_in_a_loop_is_refused_and_stays_a_link(tmp_path, monkeypatch,
                                                                      capsys):
    """``a -> b -> a``: a write to ``a`` put a file in place of the link (the
    path resolved stops inside the loop), and the readers said "no such file"."""
    monkeypatch.chdir(tmp_path)
    Path("a").symlink_to("b")
    Path("b").symlink_to("a")
    err = usage_error(load_script("train_rnnlm").main, ["--save", "a", "--epochs", "1"], capsys)
    assert "error: --save a is a link that leads round in a loop (to b); give another path" in err
    assert output_path_problem("--save", "a/m.npz", "m.npz") == (
        f"--save a/m.npz: {tmp_path / 'a'} is a link that leads round in a loop (to b)")
    with pytest.raises(OSError, match="a link that leads round in a loop") as info:
        save_npz("a", {"w": np.zeros(2)})
    assert info.value.errno == errno.ELOOP
    assert os.readlink("a") == "b" and os.readlink("b") == "a"  # both still links
    with pytest.raises(ValueError, match=r"^a is a link that leads round in a loop \(to b\)"):
        load_npz("a")
    err = usage_error(load_script("train_seq2seq").main, ["--load", "a"], capsys)
    assert "--load a: a link that leads round in a loop" in err


@posix_only
def test_inspect_model_refuses_a_page_that_links_to_its_model(tmp_path, capsys):
    model = char_model(tmp_path / "model.npz")
    page = tmp_path / "page.html"
    page.symlink_to(model)
    err = usage_error(inspect_model.main, ["surprisal", "--model", str(model), "--text", TEXT,
                                           "--html", str(page)], capsys)
    assert "is the --model file" in err


# -- 7. the book's ylim=(0, top) on the log axis: the 0 is ignored, with a warning ------------


def test_plot_warns_that_the_books_lower_limit_0_is_ignored_on_the_log_axis(tmp_path):
    from common.optimizer import SGD
    from common.trainer import RnnlmTrainer
    from datasets import synthetic
    from models import SimpleRnnlm

    corpus = synthetic.load_data("train", n_tokens=600)[0]
    trainer = RnnlmTrainer(SimpleRnnlm(400, 4, 4, seed=0), SGD(0.5))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=4, time_size=5,
                eval_interval=5, verbose=False)
    with pytest.warns(UserWarning, match="the lower limit 0 cannot be shown on a log axis "
                                         "and is ignored"):
        (ax,) = trainer.plot(ylim=(0, 500), path=tmp_path / "p.png").axes
    assert ax.get_yscale() == "log" and ax.get_ylim()[1] == 500
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a linear axis shows the 0: nothing to warn about
        (ax,) = trainer.plot(ylim=(0, 500), path=tmp_path / "p.png", logy=False).axes
    assert ax.get_ylim() == (0, 500)



# -- 8. a picture or a page is not drawn over a file of the user's ------------------------------


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """Files rnnlab writes at a picture's or a page's flag, by their names."""
    import matplotlib.pyplot as plt

    from common.plot import save_figure
    from common.units_html import write_units_page

    folder = tmp_path_factory.mktemp("ours")
    fig = plt.figure()
    for name in ("p.png", "p.pdf", "p.svg", "p.jpg", "p.eps"):
        save_figure(fig, folder / name)
    plt.close(fig)
    write_units_page(folder / "u.html", ["a", "b"], "char", [], bits=[1.0, 2.0])
    return folder


@pytest.mark.parametrize("name", ["p.png", "p.pdf", "p.svg", "p.jpg", "p.eps", "u.html"])
def test_what_rnnlab_drew_there_before_is_replaced(ours, name):
    from common.cli import picture_over_problem

    page = name.endswith(".html")
    assert picture_over_problem("--plot", str(ours / name), overwrite=False, page=page) is None


def test_a_page_written_before_pages_named_rnnlab_is_replaced_too(ours, tmp_path):
    from common.cli import picture_over_problem
    from common.units_html import GENERATOR

    old = tmp_path / "old.html"
    old.write_text("\n".join(line for line in (ours / "u.html").read_text().splitlines()
                             if GENERATOR not in line))
    assert picture_over_problem("--html", str(old), overwrite=None, page=True) is None


@pytest.mark.parametrize("name, content, what", [
    ("thesis.pdf", b"%PDF-1.4 my thesis", "picture"),
    ("photo.png", PNG_MAGIC + b"a photo", "picture"),
    ("notes.html", b"<html><body>my notes</body></html>", "page"),
    ("notes.md", b"# my notes", "page"),  # (a page's flag: whatever its name)
])
def test_a_file_of_the_users_is_replaced_only_when_asked(tmp_path, name, content, what):
    from common.cli import picture_over_problem

    path = tmp_path / name
    path.write_bytes(content)
    page = what == "page"
    assert picture_over_problem("--plot", str(path), overwrite=False, page=page) == (
        f"--plot {path} exists already and is not a {what} rnnlab wrote (another file?): "
        f"give another name, or pass --overwrite to replace it")
    assert picture_over_problem("--html", str(path), overwrite=None, page=page).endswith(
        "give another name, or move it away first")  # (a script without --overwrite)
    assert picture_over_problem("--plot", str(path), overwrite=True, page=page) is None
    path.write_bytes(b"")
    assert picture_over_problem("--plot", str(path), overwrite=False,
                                page=page) is None  # nothing to lose


def test_a_model_or_checkpoint_of_a_pictures_name_is_not_judged_as_a_picture(tmp_path):
    import argparse

    from common.cli import output_flags_problem

    (tmp_path / "m.png").write_bytes(b"a model saved by an earlier run")
    args = argparse.Namespace(save=str(tmp_path / "m.png"), overwrite=False)
    assert output_flags_problem(args, {"save": "m.npz"}) is None  # (--save has its own checks)


def test_train_rnnlm_refuses_a_plot_over_a_users_file_before_training(tmp_path, monkeypatch,
                                                                       capsys):
    """``--plot thesis.pdf`` replaced the user's PDF with the plot, unasked."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thesis.pdf").write_bytes(b"%PDF-1.4 my thesis")
    train = script("train_rnnlm")
    monkeypatch.setattr(train, "train", lambda *a: pytest.fail("trained"))
    err = usage_error(train.main, ["--corpus", "synthetic", "--plot", "thesis.pdf"], capsys)
    assert err.startswith("error: --plot thesis.pdf exists already and is not a picture "
                          "rnnlab wrote")
    assert (tmp_path / "thesis.pdf").read_bytes() == b"%PDF-1.4 my thesis"


def test_inspect_model_refuses_a_page_over_a_users_file(tmp_path, capsys):
    model = char_model(tmp_path / "model.npz")
    notes = tmp_path / "notes.html"
    notes.write_text("<p>my notes</p>")
    err = usage_error(inspect_model.main, ["units", "--model", str(model), "--text", TEXT,
                                           "--html", str(notes)], capsys)
    assert "exists already and is not a page rnnlab wrote" in err and "move it away" in err
    assert notes.read_text() == "<p>my notes</p>"
