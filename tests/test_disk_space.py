"""A disk too small for a run's files is refused before its first batch.

A run with ``--save`` on a nearly full disk trained to its end and then
lost the model ("cannot write --save ...: No space left on device"); a
``--checkpoint`` lost its first epoch. The training scripts now compare a
lower bound of each file's size with the disk's free space once the model
and optimizer are built (``common.cli.disk_space_problem``). The disk's free
space is what ``os.statvfs`` says, made small here.
"""

import os
from types import SimpleNamespace

import numpy as np
import pytest

from common.checkpoint import least_bytes, save_checkpoint
from common.cli import disk_space_problem
from common.optimizer import SGD, Adam
from common.serialization import space_problem
from common.trainer import RnnlmTrainer, Trainer
from models import Seq2seq, SimpleRnnlm

from script_loader import load_script, usage_error

pytestmark = pytest.mark.skipif(not hasattr(os, "statvfs"), reason="os.statvfs (POSIX)")


@pytest.fixture
def free_bytes(monkeypatch):
    """Set ``free_bytes.value`` to the free space every disk reports."""
    real = os.statvfs
    state = SimpleNamespace(value=None)

    def statvfs(path):
        st = real(path)
        if state.value is None:
            return st
        blocks = state.value // st.f_frsize
        return SimpleNamespace(f_frsize=st.f_frsize, f_bavail=blocks, f_bfree=blocks)

    monkeypatch.setattr(os, "statvfs", statvfs)
    return state


def test_files_on_one_disk_count_together(tmp_path, free_bytes):
    free_bytes.value = 3 * 2**20
    two = {"--checkpoint": (str(tmp_path / "c.npz"), 2 * 2**20),
           "--save": (str(tmp_path / "m.npz"), 2 * 2**20)}
    assert space_problem(two) == (
        f"--checkpoint {tmp_path / 'c.npz'} (2.0 MiB) and --save {tmp_path / 'm.npz'} "
        f"(2.0 MiB) will take at least 4.0 MiB on the disk that holds {tmp_path}, which has "
        f"3.0 MiB free; free some space there or give other paths")
    assert space_problem({**two, "--save": (None, 2 * 2**20)}) is None  # not asked for
    # A folder still to be made: the disk of the nearest one that exists.
    assert space_problem({"--save": (str(tmp_path / "new" / "m.npz"), 4 * 2**20)}) == (
        f"--save {tmp_path / 'new' / 'm.npz'} will take at least 4.0 MiB on the disk that "
        f"holds {tmp_path}, which has 3.0 MiB free; free some space there or give another path")


@pytest.mark.parametrize("optimizer, copies", [(SGD, 1), (Adam, 3)])
def test_the_bounds_are_below_what_is_written(tmp_path, optimizer, copies):
    """A bound above a file's size would refuse a run that fits."""
    model = SimpleRnnlm(50, 8, 8, seed=0)
    trainer = RnnlmTrainer(model, optimizer(lr=0.1))
    params = sum(p.nbytes for p in model.named_params().values())
    assert least_bytes(trainer) == copies * params
    xs = np.arange(200) % 50
    trainer.fit(xs, (xs + 1) % 50, max_epoch=1, batch_size=2, time_size=5)  # (the state)
    save_checkpoint(tmp_path / "c.npz", trainer)
    vocab = [f"word{i}" for i in range(50)]
    model.save_params(str(tmp_path / "m.npz"), vocab=vocab)
    assert os.path.getsize(tmp_path / "c.npz") >= least_bytes(trainer)
    words = 4 * sum(len(w) + 2 for w in vocab)
    assert os.path.getsize(tmp_path / "m.npz") >= params + words
    # ... and disk_space_problem asks for exactly those.
    with pytest.MonkeyPatch.context() as patch:
        asked = []
        patch.setattr("common.cli.space_problem", asked.append)
        disk_space_problem(trainer, "m.npz", "c.npz", vocab)
    # A new checkpoint is written twice (its epoch's end, the run's end), the
    # old file there until the new one is whole: twice the disk at once.
    assert asked == [{"--checkpoint": ("c.npz", least_bytes(trainer), 2 * least_bytes(trainer)),
                      "--save": ("m.npz", params + words)}]


def test_a_validating_run_counts_the_parameters_it_keeps(tmp_path, monkeypatch):
    """A run that validates keeps the best epoch's parameters in its
    checkpoint, and the last epoch's at its end once the best are put
    back: counted, its checkpoints on a disk that had room for the model
    and Adam's moments alone filled it an epoch in, and the run stopped."""
    model = SimpleRnnlm(50, 8, 8, seed=0)
    trainer = RnnlmTrainer(model, Adam(lr=0.1))
    params = sum(p.nbytes for p in model.named_params().values())
    xs = np.arange(400) % 50
    asked = []
    monkeypatch.setattr("common.cli.space_problem", asked.append)
    disk_space_problem(trainer, None, str(tmp_path / "c.npz"), [], kept_copies=2)
    largest, at_once = asked[0]["--checkpoint"][1:]
    assert (largest, at_once) == (5 * params, 4 * params + 5 * params)
    written = []
    save = save_checkpoint

    def measured(path, trainer):
        save(path, trainer)
        written.append(os.path.getsize(path))

    monkeypatch.setattr("common.training_guards.save_checkpoint", measured)
    trainer.fit(xs[:300], (xs[:300] + 1) % 50, max_epoch=2, batch_size=2, time_size=5,
                val_corpus=xs[300:], checkpoint=tmp_path / "c.npz", verbose=False)
    assert trainer.last_params is not None  # (the best put back)
    assert written[-1] >= largest
    assert written[-2] + written[-1] >= at_once  # the last replacement: both there
    # A checkpoint there already (a resumed run's): its space is freed once the
    # first new one is whole, which the second write may take.
    asked.clear()
    disk_space_problem(trainer, None, str(tmp_path / "c.npz"), [], kept_copies=2)
    old = os.path.getsize(tmp_path / "c.npz")
    assert asked[0]["--checkpoint"][1:] == (largest, max(4 * params, 4 * params + largest - old))


def test_a_checkpoint_is_there_twice_only_while_it_is_replaced(tmp_path, free_bytes):
    """The model is written at the end, the checkpoint's old file gone: the
    disk needs the larger of the two moments, not their sum."""
    mib = 2**20
    free_bytes.value = 8 * mib
    files = {"--checkpoint": (str(tmp_path / "c.npz"), 3 * mib, 6 * mib),
             "--save": (str(tmp_path / "m.npz"), 2 * mib)}
    assert space_problem(files) is None  # 6 MiB while replaced, then 3 + 2
    free_bytes.value = 5 * mib
    assert space_problem(files) == (
        f"--checkpoint {tmp_path / 'c.npz'} will take at least 3.0 MiB, and 6.0 MiB while it "
        f"is replaced (the old file kept until the new one is whole), on the disk that holds "
        f"{tmp_path}, which has 5.0 MiB free; free some space there or give another path")


def test_a_checkpoint_every_n_iterations_is_written_twice_if_the_run_has_n(tmp_path,
                                                                          monkeypatch):
    """Once, if N is above the run's iterations (at its end only); else its
    first write may come before any validation: the model and the
    optimizer's state only."""
    trainer = RnnlmTrainer(SimpleRnnlm(50, 8, 8, seed=0), Adam(lr=0.1))
    asked = []
    monkeypatch.setattr("common.cli.space_problem", asked.append)
    for iterations in (99, 100):
        disk_space_problem(trainer, None, str(tmp_path / "c.npz"), [], kept_copies=2,
                           checkpoint_every=100, iterations=iterations)
    (_, largest, once), (_, _, twice) = (a["--checkpoint"] for a in asked)
    assert once == largest and twice == least_bytes(trainer) + largest


def test_the_files_a_run_replaces_are_freed_by_the_end(tmp_path, free_bytes):
    """A resumed run's checkpoint replaces the file it resumed: that space
    comes back before the model is written."""
    mib = 2**20
    (tmp_path / "c.npz").write_bytes(b"\0" * (3 * mib))
    files = {"--checkpoint": (str(tmp_path / "c.npz"), 3 * mib),
             "--save": (str(tmp_path / "m.npz"), 2 * mib)}
    free_bytes.value = 3 * mib
    assert space_problem(files) is None  # 3 MiB while replaced, then 3 - 3 + 2
    free_bytes.value = 2 * mib + mib // 2
    assert space_problem(files) == (
        f"--checkpoint {tmp_path / 'c.npz'} will take at least 3.0 MiB, on the disk that holds "
        f"{tmp_path}, which has 2.5 MiB free; free some space there or give another path")


def test_sizes_below_a_mebibyte_are_said_in_kibibytes(tmp_path, free_bytes):
    free_bytes.value = 40 * 2**10
    assert space_problem({"--save": (str(tmp_path / "m.npz"), 60 * 2**10)}) == (
        f"--save {tmp_path / 'm.npz'} will take at least 60.0 KiB on the disk that holds "
        f"{tmp_path}, which has 40.0 KiB free; free some space there or give another path")


def test_train_rnnlm_refuses_a_full_disk_before_training(tmp_path, monkeypatch, capsys,
                                                         free_bytes):
    monkeypatch.chdir(tmp_path)
    free_bytes.value = 2**16
    script = load_script("train_rnnlm")
    trained = []
    monkeypatch.setattr(script, "train", lambda *a: trained.append(1))
    err = usage_error(script.main, ["--corpus", "synthetic", "--save", "m.npz", "--checkpoint",
                                    "c.npz", "--plot", "p.png", "--quiet"], capsys)
    assert err.startswith("error: --checkpoint c.npz (") and "free some space" in err
    assert trained == [] and os.listdir(tmp_path) == []


@pytest.mark.parametrize("script_name, argv, kept", [
    ("train_rnnlm", ["--corpus", "synthetic", "--quiet"], 0),
    ("train_rnnlm", ["--corpus", "synthetic", "--quiet", "--val"], 2),  # best, then last
    ("train_seq2seq", ["--data", "pairs.tsv", "--batch-size", "16"], 0),
    ("train_seq2seq", ["--data", "pairs.tsv", "--batch-size", "16", "--val", "16"], 1),
])
def test_the_scripts_count_the_copies_their_runs_keep(tmp_path, monkeypatch, script_name,
                                                      argv, kept):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.tsv").write_text("".join(f"{a}+{a}\t{2 * a}\n" for a in range(10, 90)))
    script = load_script(script_name)
    asked = []

    def checked(trainer, save, checkpoint, vocab, kept_copies=0, checkpoint_every=None,
                iterations=None):
        asked.append(kept_copies)
        pytest.fail("checked")

    monkeypatch.setattr(script, "disk_space_problem", checked)
    with pytest.raises(pytest.fail.Exception, match="checked"):
        script.main([*argv, "--checkpoint", "c.npz"])
    assert asked == [kept]


def test_train_seq2seq_refuses_a_full_disk_before_training(tmp_path, monkeypatch, capsys,
                                                           free_bytes):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.tsv").write_text("".join(f"{a}+{a}\t{2 * a}\n" for a in range(10, 90)))
    free_bytes.value = 2**16
    script = load_script("train_seq2seq")
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("trained"))
    argv = ["--data", "pairs.tsv", "--batch-size", "16", "--save", "m.npz", "--plot", "p.png"]
    err = usage_error(script.main, argv, capsys)
    assert err.startswith("error: --save m.npz will take at least ") and "free some" in err
    assert sorted(os.listdir(tmp_path)) == ["pairs.tsv"]
    # Room for it: the run goes on to train.
    free_bytes.value = 2**30
    with pytest.raises(pytest.fail.Exception, match="trained"):
        script.main(argv)


def test_a_seq2seq_models_file_is_above_its_bound(tmp_path):
    model = Seq2seq(13, 16, 32, seed=0)
    vocab = list("0123456789+_ ")
    model.save_params(str(tmp_path / "s.npz"), vocab=vocab)
    params = sum(p.nbytes for p in model.named_params().values())
    assert os.path.getsize(tmp_path / "s.npz") >= params + 4 * sum(len(c) + 2 for c in vocab)


@pytest.fixture
def file_size_limit():
    """Set ``file_size_limit(n)``: the largest file this process may write
    (``ulimit -f``, soft), put back after the test."""
    resource = pytest.importorskip("resource")  # (POSIX)
    before = resource.getrlimit(resource.RLIMIT_FSIZE)

    def set_limit(n):
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, before[1]))

    yield set_limit
    resource.setrlimit(resource.RLIMIT_FSIZE, before)


def test_a_file_above_ulimit_f_is_refused(tmp_path, file_size_limit):
    """Under ``ulimit -f`` a run's first checkpoint failed with "File too
    large" and the model after it, nothing saved."""
    file_size_limit(2**20)
    assert space_problem({"--save": (str(tmp_path / "m.npz"), 2**20)}) is None
    assert space_problem({"--save": (str(tmp_path / "m.npz"), 2**20 + 1)}) == (
        f"--save {tmp_path / 'm.npz'} will take at least 1.0 MiB, more than the largest file "
        f"this process may write, 1.0 MiB (ulimit -f); raise the limit (ulimit -f unlimited) "
        f"before the run")
    assert space_problem({"--save": (None, 2**21)}) is None  # not asked for


def test_train_rnnlm_refuses_a_checkpoint_above_ulimit_f(tmp_path, monkeypatch, capsys,
                                                         file_size_limit):
    monkeypatch.chdir(tmp_path)
    script = load_script("train_rnnlm")
    monkeypatch.setattr(script, "train", lambda *a: pytest.fail("trained"))
    file_size_limit(2**16)
    err = usage_error(script.main, ["--corpus", "synthetic", "--hidden-size", "200",
                                    "--checkpoint", "c.npz", "--plot", "none"], capsys)
    assert err.startswith("error: --checkpoint c.npz will take at least ")
    assert "(ulimit -f)" in err and os.listdir(tmp_path) == []
