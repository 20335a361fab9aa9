"""Files that are there but that this user may not reach or read
(common.file_access): every reader says which, and the chmod that fixes it.

A file inside a folder the user may not enter looked missing ("no such
file", "model file not found"), a PTB folder behind one ended in a
traceback, and a file the user may not read gave a bare ``[Errno 13]``.
None of it shows to root, who may enter and read anything, and the tests
usually run as root: so each check runs inside
:func:`user_permissions.a_users_permissions`.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from common import file_access
from common.serialization import load_npz
from datasets import ptb, sequence, text
from models import Seq2seq, SimpleRnnlm

from script_loader import load_script
from user_permissions import AS_ROOT, a_users_permissions

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

PTB = Path(os.environ.get("RNNLAB_PTB_DIR")
           or Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ptb")


@pytest.fixture
def place(tmp_path):
    """A folder this user can reach, holding ``open/`` (anyone may enter it)
    with ``secret.txt``, ``secret.npz`` and ``ptb/`` (its valid file
    unreadable), ``shut/`` (no one but its owner may enter it) with
    ``book.txt``, ``pairs.tsv``, ``model.npz``, the PTB files and ``sub/``,
    and ``out/``, where anyone may write."""
    # As root, tmp_path's parents (/tmp/pytest-of-root, mode 700) keep nobody out too.
    base = Path(tempfile.mkdtemp(prefix="rnnlab-access-")) if AS_ROOT else tmp_path
    base.chmod(0o755)
    book = "the cat sat on the mat .\n" * 40
    pairs = "".join(f"{a}+{a}\t{2 * a}\n" for a in range(10, 60))
    model = SimpleRnnlm(7, 4, 4, seed=0)
    for folder in ("open", "shut", "shut/sub", "open/ptb", "shut/ptb", "out"):
        (base / folder).mkdir()
    (base / "out").chmod(0o777)  # (where the scripts may write, as anyone)
    for folder in ("open", "shut"):
        (base / folder / "book.txt").write_text(book)
        (base / folder / "pairs.tsv").write_text(pairs)
        model.save_params(str(base / folder / "model.npz"), vocab=list("abcdefg"))
        for name in ptb.SHA256:
            shutil.copyfile(PTB / name, base / folder / "ptb" / name)
    (base / "shut" / "sub" / "book.txt").write_text(book)
    shutil.copyfile(base / "open" / "book.txt", base / "open" / "secret.txt")
    shutil.copyfile(base / "open" / "model.npz", base / "open" / "secret.npz")
    for path in ("open/secret.txt", "open/secret.npz", "open/ptb/ptb.valid.txt"):
        (base / path).chmod(0o600 if AS_ROOT else 0o200)  # (root's: nobody may read)
    (base / "shut").chmod(0o700 if AS_ROOT else 0o600)  # (no one else / not even its owner)
    with a_users_permissions():
        if not os.access(base / "open", os.X_OK, effective_ids=True) or os.access(
                base / "shut", os.X_OK, effective_ids=True):
            pytest.skip(f"{base} does not give another user the access these tests need")
    try:
        yield base
    finally:
        (base / "shut").chmod(0o755)
        for path in ("open/secret.txt", "open/secret.npz", "open/ptb/ptb.valid.txt"):
            (base / path).chmod(0o644)
        if AS_ROOT:
            shutil.rmtree(base)


def assert_unreachable(message, path, folder):
    assert f"cannot reach {path}: this user may not enter the folder {folder}" in message
    assert f"+x {folder}" in message  # the fix: chmod u+x (one's own) or a+x (by its owner)
    assert "no such" not in message and "not found" not in message and "Errno" not in message


def assert_unreadable(message, path):
    assert f"cannot read {path}: this user may not read it" in message
    assert f"+r {path}" in message and "Errno" not in message


# -- the words ----------------------------------------------------------------------------------


def test_the_folder_that_keeps_the_user_out_is_named(place):
    with a_users_permissions():
        assert file_access.blocked_folder(place / "shut" / "book.txt") == str(place / "shut")
        # Deeper: the folder that refuses, not the one asked about.
        assert file_access.blocked_folder(place / "shut" / "sub" / "book.txt") == \
            str(place / "shut")
        assert file_access.blocked_folder(place / "shut" / "no-such-file") == str(place / "shut")
        assert file_access.blocked_folder(place / "open" / "no-such-file") is None
        assert file_access.blocked_folder(place / "open" / "secret.txt") is None
        assert file_access.unreachable_words(place / "open" / "no-such-file") is None
        assert_unreachable(file_access.unreachable_words(place / "shut" / "book.txt"),
                           place / "shut" / "book.txt", place / "shut")
        assert_unreadable(file_access.unreadable_words(place / "open" / "secret.txt"),
                          place / "open" / "secret.txt")
    # Root may enter: nothing keeps it out (nor a user from a folder of its own, chmod back).
    if AS_ROOT:
        assert file_access.blocked_folder(place / "shut" / "book.txt") is None


# -- the library's readers ----------------------------------------------------------------------


READERS = {
    "text.read_text": text.read_text,
    "text.load_data": text.load_data,
    "sequence.load_data": sequence.load_data,
    "serialization.load_npz": load_npz,
    "Seq2seq.load_params": lambda path: Seq2seq(7, 4, 4).load_params(path),
}
FILES = {"text.read_text": "book.txt", "text.load_data": "book.txt",
         "sequence.load_data": "pairs.tsv", "serialization.load_npz": "model.npz",
         "Seq2seq.load_params": "model.npz"}


@pytest.mark.parametrize("reader", READERS)
def test_a_file_behind_a_shut_folder_is_not_called_missing(place, reader):
    path = place / "shut" / FILES[reader]
    with a_users_permissions(), pytest.raises(PermissionError) as info:
        READERS[reader](str(path))
    assert_unreachable(str(info.value), path, place / "shut")


@pytest.mark.parametrize("reader", READERS)
def test_a_file_the_user_may_not_read_says_so_and_how_to_fix_it(place, reader):
    path = place / "open" / ("secret.npz" if FILES[reader].endswith(".npz") else "secret.txt")
    if reader == "sequence.load_data":
        (place / "open" / "secret.txt").chmod(0o644)
        (place / "open" / "secret.txt").write_text((place / "open" / "pairs.tsv").read_text())
        (place / "open" / "secret.txt").chmod(0o600 if AS_ROOT else 0o200)
    with a_users_permissions(), pytest.raises(PermissionError) as info:
        READERS[reader](str(path))
    assert_unreadable(str(info.value), path)


def test_a_ptb_folder_behind_a_shut_one_or_with_an_unreadable_file(place, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(place / "open"))  # (root's cache: nobody's none)
    with a_users_permissions():
        with pytest.raises(ptb.DataSourceError) as shut:
            ptb.load_data("valid", data_dir=place / "shut" / "ptb")
        with pytest.raises(ptb.DataSourceError) as unreadable:
            ptb.load_data("valid", data_dir=place / "open" / "ptb")
        monkeypatch.setenv(ptb.ENV_DIR, str(place / "shut" / "ptb"))
        with pytest.raises(ptb.DataSourceError) as env:
            ptb.load_data("valid")
    assert_unreachable(str(shut.value), place / "shut" / "ptb" / "ptb.train.txt", place / "shut")
    assert_unreadable(str(unreadable.value), place / "open" / "ptb" / "ptb.valid.txt")
    assert f"point ${ptb.ENV_DIR} at another folder" in str(env.value)
    assert_unreachable(str(env.value), place / "shut" / "ptb" / "ptb.train.txt", place / "shut")


# -- the scripts --------------------------------------------------------------------------------


SCRIPTS = [
    ("train_rnnlm", ["--text-file", "{shut}/book.txt"], "{shut}/book.txt"),
    ("train_rnnlm", ["--text-file", "{open}/secret.txt"], "{open}/secret.txt"),
    ("train_rnnlm", ["--data-dir", "{shut}"], "{shut}/ptb.train.txt"),  # (ptb's words)
    ("train_rnnlm", ["--data-dir", "{shut}/ptb"], "{shut}/ptb"),  # (the script's)
    ("train_rnnlm", ["--resume", "{shut}/model.npz"], "{shut}/model.npz"),
    ("train_seq2seq", ["--data", "{shut}/pairs.tsv"], "{shut}/pairs.tsv"),
    ("train_seq2seq", ["--load", "{open}/secret.npz"], "{open}/secret.npz"),
    ("generate_text", ["--model", "{shut}/model.npz"], "{shut}/model.npz"),
    ("generate_text", ["--model", "{open}/secret.npz"], "{open}/secret.npz"),
    ("inspect_model", ["surprisal", "--model", "{shut}/model.npz", "--text", "a b"],
     "{shut}/model.npz"),
    ("inspect_model", ["units", "--model", "{open}/model.npz", "--text-file",
                       "{open}/secret.txt"], "{open}/secret.txt"),
]


@pytest.mark.parametrize("name, argv, path", SCRIPTS,
                         ids=[f"{name} {' '.join(argv[:2])}" for name, argv, _ in SCRIPTS])
def test_the_scripts_say_which_permission_is_missing(place, name, argv, path, capsys,
                                                     monkeypatch):
    monkeypatch.chdir(place / "out")
    monkeypatch.setenv("XDG_CACHE_HOME", str(place / "out"))
    where = {"shut": place / "shut", "open": place / "open"}
    argv = [arg.format(**where) for arg in argv]
    path = Path(path.format(**where))
    script = load_script(name)
    with a_users_permissions():
        try:
            code = script.main([*argv, "--epochs", "1"] if name.startswith("train") else argv)
        except SystemExit as exit_:  # (argparse's error)
            code = exit_.code
    assert code == 2
    message = capsys.readouterr().err
    if path.parent.name == "open" and path.name.startswith("secret"):
        assert_unreadable(message, path)
    else:
        assert_unreachable(message, path, place / "shut")
    assert "Traceback" not in message


def test_the_timing_scripts_data_dir_check_too(place):
    from benchmarks import command_line

    with a_users_permissions():
        problem = command_line.data_dir_problem(str(place / "shut" / "ptb"))
    assert problem.startswith(f"--data-dir {place / 'shut' / 'ptb'}: ")
    assert_unreachable(problem, place / "shut" / "ptb", place / "shut")
