"""The fix that ``unreachable_words`` gives fits who owns the folder that
keeps the user out: its owner may ``chmod u+x`` it; anyone else can only
ask the owner (``chmod a+x``), since chmod of another's folder fails."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from common import file_access

from user_permissions import AS_ROOT, NOBODY, a_users_permissions

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def base(tmp_path):
    """A folder anyone may enter (as root, outside tmp_path's mode-700 parents)."""
    folder = Path(tempfile.mkdtemp(prefix="rnnlab-fix-")) if AS_ROOT else tmp_path
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for sub in folder.iterdir():
            sub.chmod(0o755)
        if AS_ROOT:
            shutil.rmtree(folder)


def shut_folder(base, name, owned_by_the_user):
    """``base/name`` with a file in it, which its owner (the test's user, or
    another) has shut: no search permission."""
    folder = base / name
    folder.mkdir()
    (folder / "book.txt").write_text("the cat sat\n")
    if AS_ROOT and owned_by_the_user:
        os.chown(folder, NOBODY, NOBODY)  # the user a_users_permissions takes
    if not AS_ROOT and not owned_by_the_user:
        pytest.skip("only root can make a folder another user owns")
    folder.chmod(0o600 if owned_by_the_user else 0o700)
    return folder


@pytest.mark.parametrize("owned_by_the_user, fix", [
    (True, "chmod u+x {folder}"),  # one's own folder: fixed with chmod u+x
    (False, "its owner can let others in: chmod a+x {folder}"),  # another's: left to its owner
])
def test_the_fix_fits_who_owns_the_folder(base, owned_by_the_user, fix):
    folder = shut_folder(base, "mine" if owned_by_the_user else "theirs", owned_by_the_user)
    with a_users_permissions():
        words = file_access.unreachable_words(folder / "book.txt")
    assert words == (f"cannot reach {folder / 'book.txt'}: this user may not enter the folder "
                     f"{folder} ({fix.format(folder=folder)})")
