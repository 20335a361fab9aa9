"""Saving, loading, checkpoints and the run lock: the findings of the saving audit.

1. An output that is a device or a named pipe (``--save /dev/null``), given
   directly or through a link, was replaced by a regular file, and the
   pre-run check let it through; now both refuse it, naming its kind.
2. The run lock did not follow a symbolic link: a run given ``latest.npz ->
   run.npz`` and one given ``run.npz`` both trained, replacing each other's
   checkpoint. Now the link and its target share one lock.
3. A file of a few kB whose config claims ``num_layers: 1000000000`` (and
   ``--num-layers 100000000``) built a structure a layer until memory ran out;
   now a file may have 10,000 layers, and so may the flag.
4. A named pipe given as a model or checkpoint made the load wait forever.
5. ``save_params(vocab=set(...))`` stored the words in the set's order,
   another one every run, and ids stored as tokens were only found later.
6. A checkpoint with damaged running sums, an iteration beyond its epoch or
   a negative learning rate was taken by ``resume`` and failed inside ``fit``.
7. From Python, a model or figure saved under a file's name used as a folder
   said ``File exists``, one saved over a folder named a hidden temporary
   (a heat map after drawing it all), and a path given as bytes failed
   inside ``save_params`` and ``load_model``.
8. A model's config with a tuple or a NumPy number was checkpointed but
   never resumed (read back, it differed from the model's); one JSON cannot
   hold (NaN, a Path, a set) trained a whole epoch, then failed in ``json``.
"""

import copy
import os
import stat
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from common.optimizer import Adam
from common.run_lock import CheckpointInUse, holding_checkpoint
from common.serialization import load_npz, load_npz_meta, output_path_problem, save_npz
from common.trainer import RnnlmTrainer
from models import BetterRnnlm, SimpleRnnlm, load_model

from script_loader import load_script, usage_error

ROOT = Path(__file__).resolve().parent.parent
posix_only = pytest.mark.skipif(os.name != "posix", reason="named pipes, device nodes, flock")
SMALL_RUN = ["--corpus", "synthetic", "--corpus-size", "800", "--batch-size", "4",
             "--time-size", "5", "--wordvec-size", "8", "--hidden-size", "8", "--epochs", "1",
             "--plot", "none"]


@pytest.fixture
def fifo(tmp_path):
    """A named pipe, ``pipe.npz``. A reader left waiting on it for a writer (as
    loads once did, forever) is let go with an empty read, so that such a test
    fails instead of hanging."""
    path = tmp_path / "pipe.npz"
    os.mkfifo(path)
    done = threading.Event()

    def release_readers():
        while not done.wait(0.2):
            try:  # succeeds only while a reader has the pipe open
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    thread = threading.Thread(target=release_readers, daemon=True)
    thread.start()
    yield path
    done.set()
    thread.join()


@pytest.fixture
def char_device(tmp_path):
    """A private copy of /dev/null (character device 1, 3) in tmp_path; the
    real one is never touched. Making one needs root (CAP_MKNOD)."""
    path = tmp_path / "null.npz"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc}); the named pipe tests cover "
                    "the same refusal")
    return path


# -- 1. an output that is not a regular file is refused, not replaced ---------------------------


@posix_only
@pytest.mark.parametrize("through_a_link", [False, True])
def test_saving_over_a_named_pipe_is_refused_and_the_pipe_stays(fifo, through_a_link, tmp_path):
    path = fifo
    if through_a_link:
        path = tmp_path / "link.npz"
        path.symlink_to(fifo)
    with pytest.raises(OSError, match=r"it is a named pipe \(FIFO\), not a file"):
        SimpleRnnlm(5, 4, 4, seed=0).save_params(path)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({fifo.name, path.name})
    problem = output_path_problem("--save", str(path), "model.npz")
    link = f" (a link to {fifo})" if through_a_link else ""
    assert problem == (f"--save {path}{link} is a named pipe (FIFO), not a file; "
                       f"give a file name")


@posix_only
def test_saving_over_a_device_is_refused_and_the_device_stays(char_device):
    with pytest.raises(OSError, match="it is a character device, not a file"):
        save_npz(char_device, {"w": np.zeros(3)})
    assert stat.S_ISCHR(os.stat(char_device).st_mode)
    assert output_path_problem("--save", str(char_device), "model.npz") == (
        f"--save {char_device} is a character device, not a file; give a file name")


@posix_only
def test_train_rnnlm_refuses_to_save_into_a_named_pipe_before_training(fifo, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = usage_error(load_script("train_rnnlm").main, [*SMALL_RUN, "--save", str(fifo)],
                      capsys)
    assert f"--save {fifo} is a named pipe (FIFO), not a file; give a file name" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# -- 2. a symbolic link to a checkpoint shares its target's lock --------------------------------


@posix_only
@pytest.mark.parametrize("held, asked", [("real.npz", "link.npz"), ("link.npz", "real.npz")])
def test_a_checkpoint_and_a_link_to_it_share_one_lock(held, asked, tmp_path, holder):
    (tmp_path / "link.npz").symlink_to("real.npz")  # (a link to a file not yet written too)
    other = holder(tmp_path / held)
    with pytest.raises(CheckpointInUse, match=f"another training \\(process {other.pid}\\)"):
        with holding_checkpoint(tmp_path / asked):
            pass


# -- 3. an absurd layer count is refused at once, not by running out of memory -----------------


def test_a_small_file_claiming_a_billion_layers_is_refused_at_once(tmp_path):
    path = tmp_path / "deep.npz"
    BetterRnnlm(10, 4, 4, num_layers=1, seed=0).save_params(path)
    arrays, meta = load_npz(path)
    meta["config"]["num_layers"] = 10**9
    save_npz(path, arrays, meta)
    with pytest.raises(ValueError, match="num_layers is 1000000000, more than the 10,000 layers"):
        load_model(path)


def test_train_rnnlm_refuses_a_hundred_million_layers_while_reading_its_flags(capsys):
    err = usage_error(load_script("train_rnnlm").main,
                      [*SMALL_RUN, "--model", "better", "--num-layers", "100000000"], capsys)
    assert "argument --num-layers: must be at most 10000, got 100000000" in err


def test_a_checkpoint_claiming_a_billion_layers_is_refused_as_damaged(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.chdir(tmp_path)
    main = load_script("train_rnnlm").main
    assert main([*SMALL_RUN, "--model", "better", "--num-layers", "1", "--quiet",
                 "--checkpoint", "ck.npz"]) == 0
    arrays, meta = load_npz("ck.npz")
    meta["settings"]["num_layers"] = meta["config"]["num_layers"] = 10**9
    save_npz("ck.npz", arrays, meta)
    capsys.readouterr()
    err = usage_error(main, ["--resume", "ck.npz"], capsys)
    assert "the checkpoint is damaged: its setting --num-layers is 1000000000" in err


# -- 4. a named pipe is not read as a model or checkpoint ---------------------------------------


@posix_only
@pytest.mark.parametrize("load", [load_npz, load_npz_meta, load_model,
                                  lambda p: RnnlmTrainer(SimpleRnnlm(5, 4, 4), Adam()).resume(p)],
                         ids=["load_npz", "load_npz_meta", "load_model", "resume"])
def test_loading_a_named_pipe_is_refused_instead_of_waiting_for_a_writer(load, fifo):
    with pytest.raises(ValueError, match=r"pipe.npz is a named pipe \(FIFO\), not an .npz file"):
        load(fifo)


# -- 5. the vocabulary saved is a list of strings in id order -----------------------------------


@pytest.mark.parametrize("vocab, message", [
    (set(["the", "cat", "sat"]), "vocab is a set, which has no order"),
    (frozenset(["the", "cat", "sat"]), "vocab is a frozenset, which has no order"),
    (range(3), "vocab's token for id 0 is 0 \\(int\\), not a string"),
    ({0: "the", 1: 7, 2: "sat"}, "vocab's token for id 1 is 7 \\(int\\), not a string"),
])
def test_save_params_refuses_an_unordered_vocab_or_tokens_that_are_not_strings(vocab, message,
                                                                                tmp_path):
    with pytest.raises(ValueError, match=message) as info:
        SimpleRnnlm(3, 4, 4, seed=0).save_params(tmp_path / "m.npz", vocab=vocab)
    assert "id_to_word" in str(info.value)  # what to pass instead
    assert not (tmp_path / "m.npz").exists()


# -- 6. damaged sums, iteration and lr are refused by resume, before anything changes ------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    ids = np.random.default_rng(0).integers(0, 30, size=201)
    RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=1), Adam(0.01)).fit(
        ids[:-1], ids[1:], max_epoch=1, batch_size=4, time_size=5, max_iters=3,
        checkpoint=path, verbose=False)
    return path


@pytest.mark.parametrize("part, key, value, message", [
    ("trainer", "sums", ["x", 1, 0.0, 0], r"its sums must be \[loss, count, loss, count\]"),
    ("trainer", "iteration", 10**6, "iteration must be an integer from 0 to 10, the iterations "
                                    "of its epoch, got 1000000"),
    ("trainer", "iteration", 11, "iteration must be an integer from 0 to 10, the iterations "
                                 "of its epoch, got 11"),  # (one past the end)
    ("optimizer_scalars", "lr", -1.0, "lr must be a finite number >= 0, got -1.0"),
])
def test_resume_refuses_damaged_sums_iteration_and_lr_before_changing_anything(
        part, key, value, message, checkpoint, tmp_path):
    arrays, meta = load_npz(checkpoint)
    meta = copy.deepcopy(meta)
    meta[part][key] = value
    damaged = tmp_path / "damaged.npz"
    save_npz(damaged, arrays, meta)
    trainer = RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=2), Adam(0.01))
    before = ([p.copy() for p in trainer.model.params], trainer.state_dict())
    with pytest.raises(ValueError, match=message) as info:
        trainer.resume(damaged)
    assert str(damaged) in str(info.value)
    assert all(np.array_equal(p, q) for p, q in zip(before[0], trainer.model.params, strict=True))
    assert trainer.state_dict() == before[1] and trainer.optimizer.lr == 0.01


def test_resume_takes_the_iteration_at_the_end_of_the_epoch(checkpoint, tmp_path):
    # (The last batch of the epoch done, its end not yet.)
    arrays, meta = load_npz(checkpoint)
    assert meta["trainer"]["iters_per_epoch"] == 10
    meta["trainer"]["iteration"] = 10
    save_npz(tmp_path / "end.npz", arrays, meta)
    trainer = RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=2), Adam(0.01)).resume(tmp_path / "end.npz")
    assert trainer.iteration == 10


def test_resume_without_iters_per_epoch_takes_only_iteration_0(checkpoint, tmp_path):
    arrays, meta = load_npz(checkpoint)
    meta["trainer"].update(iters_per_epoch=None, iteration=1)
    save_npz(tmp_path / "unknown.npz", arrays, meta)
    with pytest.raises(ValueError, match="iteration must be an integer 0, as its "
                                         "iters_per_epoch is not recorded, got 1"):
        RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=2), Adam(0.01)).resume(tmp_path / "unknown.npz")


# -- 7. paths that cannot be a file, and paths as bytes ----------------------------------


def test_a_file_on_the_way_or_a_folder_in_the_place_is_named(tmp_path):
    model = SimpleRnnlm(5, 4, 3, seed=0)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="notes.txt is a file, not a folder"):
        model.save_params(tmp_path / "notes.txt" / "m.npz")
    (tmp_path / "m.npz").mkdir()
    with pytest.raises(ValueError, match="m.npz is a folder; give a file name in it"):
        model.save_params(tmp_path / "m.npz")


def test_a_float64_value_beyond_float32_is_refused_not_loaded_as_inf(tmp_path):
    model = SimpleRnnlm(5, 4, 3, seed=0)
    arrays = {name: p.astype(np.float64) for name, p in model.named_params().items()}
    arrays["rnn.b"][1] = 1e300
    with pytest.raises(ValueError, match=r"parameter 'rnn.b' holds 1e\+300, beyond the range "
                                         r"of the model's float32"):
        model.set_named_params(arrays, "m.npz")
    assert np.isfinite(model.named_params()["rnn.b"]).all()  # nothing changed
    arrays["rnn.b"][1] = np.inf  # not finite to begin with: as given
    model.set_named_params(arrays, "m.npz")


def test_float16_arrays_as_the_books_pickles_hold_load_without_a_warning():
    import warnings

    model = SimpleRnnlm(5, 4, 3, seed=0)
    arrays = [p.astype(np.float16) for p in model.params]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (float16's range against float32's: no cast)
        model.set_params_list(arrays)
    np.testing.assert_array_equal(model.params[0], arrays[0].astype(np.float32))


def test_a_heat_map_over_a_folder_is_refused_before_it_is_drawn(tmp_path, monkeypatch):
    import matplotlib.figure

    from common.attention_map import plot_attention

    def no_drawing(*args, **kwargs):
        raise AssertionError("drawn before the path was checked")

    monkeypatch.setattr(matplotlib.figure, "Figure", no_drawing)
    (tmp_path / "map.png").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        plot_attention(np.full((2, 3), 1 / 3), list("abc"), list("xy"),
                       path=tmp_path / "map.png")


def test_a_path_given_as_bytes_saves_and_loads(tmp_path):
    path = os.fsencode(tmp_path / "m.npz")
    model = SimpleRnnlm(5, 4, 3, seed=0)
    assert model.save_params(path) == str(tmp_path / "m.npz")
    again, _ = load_model(path)
    np.testing.assert_array_equal(again.params[0], model.params[0])
    model.load_params(path)


# -- 8. a model's config that JSON changes or cannot hold ----------------------------------


class Tagged(SimpleRnnlm):
    """SimpleRnnlm with one more config entry, ``tag``, of any value."""

    def __init__(self, *args, tag=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = {**self.config, "tag": tag}


def run_with_checkpoint(model, path, **fit):
    corpus = np.random.default_rng(0).integers(0, 5, 200)
    trainer = RnnlmTrainer(model, Adam(0.01))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=2, time_size=5,
                checkpoint=path, verbose=False, **fit)
    return trainer


@pytest.mark.parametrize("tag", [(0, 1), np.int64(7), [np.float32(0.5)]])
def test_a_config_that_json_reads_back_as_its_equal_resumes(tag, tmp_path):
    """A tuple comes back a list, NumPy's numbers Python's: the same config."""
    path = tmp_path / "ck.npz"
    run_with_checkpoint(Tagged(5, 4, 3, seed=0, tag=tag), path, max_iters=3)
    RnnlmTrainer(Tagged(5, 4, 3, seed=0, tag=tag), Adam(0.01)).resume(path)


@pytest.mark.parametrize(("tag", "why"), [(float("nan"), "Out of range float"),
                                          (Path("a"), "PosixPath|WindowsPath"),
                                          ({1, 2}, "set is not a JSON value")])
def test_a_config_json_cannot_hold_is_refused_before_training(tag, why, tmp_path):
    model = Tagged(5, 4, 3, seed=0, tag=tag)
    with pytest.raises(TypeError, match=rf"Tagged's config\['tag'\] = .* cannot be written to a "
                                        rf"file \(.*({why}).*\).*a checkpoint holds it"):
        run_with_checkpoint(model, tmp_path / "ck.npz")
    assert not (tmp_path / "ck.npz").exists()
    with pytest.raises(TypeError, match=r"Tagged's config\['tag'\]"):
        model.save_params(tmp_path / "m.npz")


def test_an_output_under_a_folder_that_cannot_be_made_is_refused_before_the_run(tmp_path,
                                                                                 monkeypatch):
    """Judged by trying, not by the permission bits: root passes those even
    in /proc, where the run then trained to the end and lost its model."""
    real_mkdir = os.mkdir

    def refused(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied")
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refused)
    problem = output_path_problem("--save", str(tmp_path / "new" / "m.npz"), "m.npz")
    assert problem == (f"--save {tmp_path / 'new' / 'm.npz'}: cannot create folders in "
                       f"{tmp_path} (Permission denied)")
    monkeypatch.undo()
    assert output_path_problem("--save", str(tmp_path / "new" / "m.npz"), "m.npz") is None
    assert not (tmp_path / "new").exists()  # nothing left by the check
    if os.path.isdir("/proc/self"):
        problem = output_path_problem("--save", "/proc/x/m.npz", "m.npz")
        assert "cannot create folders in /proc" in problem



@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_the_way_to_an_output_is_walked_as_written(tmp_path, monkeypatch):
    """A link to nothing, a '..' after a folder that is not there, a name too
    long: each passed the check, and the run lost its model at the end."""
    monkeypatch.chdir(tmp_path)
    os.symlink(tmp_path / "no_such_disk", "runs")
    assert output_path_problem("--save", "runs/exp1/m.npz", "m.npz") == (
        f"--save runs/exp1/m.npz: {tmp_path / 'runs'} is a link to "
        f"{tmp_path / 'no_such_disk'}, which does not exist")
    assert "nosuch does not exist, so the '..' after it names nothing" in output_path_problem(
        "--save", "nosuch/../m.npz", "m.npz")
    assert "is too long for this file system" in output_path_problem(
        "--save", "x" * 300 + "/m.npz", "m.npz")
    assert "is too long for this file system" in output_path_problem(
        "--save", "m" * 300 + ".npz", "m.npz")
    with pytest.raises(NotADirectoryError, match="which does not exist"):
        SimpleRnnlm(5, 4, 3, seed=0).save_params("runs/exp1/m.npz")
    assert sorted(os.listdir(tmp_path)) == ["runs"]


def test_a_checkpoint_and_plots_named_by_bytes(tmp_path):
    from common.attention_map import plot_attention

    trainer = run_with_checkpoint(SimpleRnnlm(5, 4, 3, seed=0), os.fsencode(tmp_path / "ck.npz"),
                                  plot_path=os.fsencode(tmp_path / "p.png"))  # (on Ctrl-C)
    assert (tmp_path / "ck.npz").is_file()
    RnnlmTrainer(SimpleRnnlm(5, 4, 3, seed=0), Adam(0.01)).resume(os.fsencode(tmp_path / "ck.npz"))
    plot_attention(np.full((2, 3), 1 / 3), list("abc"), list("xy"),
                   path=os.fsencode(tmp_path / "map.png"))
    assert (tmp_path / "map.png").is_file() and trainer.epoch == 1


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_path_through_a_link_and_dots_is_written_where_the_system_reads_it(tmp_path,
                                                                            monkeypatch):
    """``data/..`` after a link is the folder above the link's target: the
    check and the writer read it so (the writer folded it away, made another
    folder and failed to rename into the right one, after training)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real" / "deep").mkdir(parents=True)
    os.symlink("real/deep", "data")
    model = SimpleRnnlm(5, 4, 3, seed=0)
    for path in ("data/../models/m.npz", "out/./m.npz", "new/./sub/m.npz"):
        assert output_path_problem("--save", path, "m.npz") is None
        model.save_params(path)
    assert (tmp_path / "real" / "models" / "m.npz").is_file()
    assert (tmp_path / "out" / "m.npz").is_file() and (tmp_path / "new" / "sub" / "m.npz").is_file()
    assert not (tmp_path / "models").exists()
    assert output_path_problem("--save", "new2/sub/./../m.npz", "m.npz") == (
        f"--save new2/sub/./../m.npz: {tmp_path / 'new2' / 'sub'} does not exist, so the '..' "
        f"after it names nothing; write the path without it")


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_the_check_through_a_link_and_dots_holds_where_mkdtemp_returns_absolute_paths(
        tmp_path, monkeypatch):
    """Since Python 3.12 ``tempfile.mkdtemp`` returns its folder's path made
    absolute, which folds ``data/..`` into the link's own folder: the check
    removed a folder that was not there, refused the path and left its
    temporary folder behind (Python 3.13; here made so on any version)."""
    made_absolute = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp",
                        lambda *args, **kwargs: os.path.abspath(made_absolute(*args, **kwargs)))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real" / "deep").mkdir(parents=True)
    os.symlink("real/deep", "data")
    assert output_path_problem("--save", "data/../models/m.npz", "m.npz") is None
    assert sorted(os.listdir(tmp_path / "real")) == ["deep"]


@pytest.mark.skipif(os.name != "posix", reason="a folder removed while in it")
def test_an_absolute_path_is_written_after_the_working_folder_is_gone(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    SimpleRnnlm(5, 4, 3, seed=0).save_params(tmp_path / "m.npz")
    assert (tmp_path / "m.npz").is_file()


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_a_checkpoint_in_a_folder_not_made_yet_is_locked_at_once(tmp_path):
    """The lock file could not be made before the folder was: a second
    training was not kept out until the first checkpoint."""
    from common.run_lock import holding_checkpoint

    with holding_checkpoint(tmp_path / "new" / "deeper" / "ck.npz"):
        assert (tmp_path / "new" / "deeper" / "ck.npz.lock").is_file()
    assert os.listdir(tmp_path) == []  # made for the lock, and empty: removed with it
    with holding_checkpoint(tmp_path / "new" / "ck.npz"):
        (tmp_path / "new" / "ck.npz").write_bytes(b"a checkpoint")
    assert os.listdir(tmp_path / "new") == ["ck.npz"]


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_a_folder_another_run_makes_first_is_no_reason_to_go_without_the_lock(tmp_path,
                                                                              monkeypatch):
    """A sweep starting runs into sibling folders: the shared parent made by
    another run between this one's look and its mkdir left it with no lock."""
    from common.run_lock import holding_checkpoint

    real_mkdir = os.mkdir

    def another_run_first(path, *args, **kwargs):
        if os.path.basename(path) == "runs" and not os.path.exists(path):
            real_mkdir(path)  # the other run wins the race: FileExistsError here
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", another_run_first)
    with holding_checkpoint(tmp_path / "runs" / "b" / "ck.npz"):
        assert (tmp_path / "runs" / "b" / "ck.npz.lock").is_file()
    assert os.listdir(tmp_path) == ["runs"]  # not this run's to remove


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_a_folder_another_run_removes_meanwhile_is_made_again(tmp_path, monkeypatch):
    """The mirror of the race above: the shared parent removed by a refused run
    between this one's look and its mkdir."""
    from common.run_lock import holding_checkpoint

    (tmp_path / "runs").mkdir()
    real_mkdir, removed = os.mkdir, []

    def another_run_removes_it_once(path, *args, **kwargs):
        if not removed and str(path).endswith(os.path.join("runs", "b")):
            removed.append(1)
            os.rmdir(tmp_path / "runs")
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", another_run_removes_it_once)
    with holding_checkpoint(tmp_path / "runs" / "b" / "ck.npz"):
        assert (tmp_path / "runs" / "b" / "ck.npz.lock").is_file()


def test_fit_options_read_a_bytes_path_as_a_str():
    from common.fit_options import FitOptions

    assert FitOptions(checkpoint=b"ck.npz", plot_path=b"p.png").checkpoint == "ck.npz"
