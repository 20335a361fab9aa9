"""Load a program of ``scripts/`` as a module, for tests that call its
``main`` or its functions (the scripts are not a package), and read the
message of a command line it refuses (:func:`usage_error`,
:func:`usage_error_line`). :func:`sys_path_kept`, imported into a test
module, undoes what a ``--repo`` script puts on ``sys.path``.

Each call executes the file afresh, as a new module that is not put in
``sys.modules``: a test that patches one copy leaves the others alone.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name):
    """``scripts/<name>.py`` as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def usage_error(main, argv, capsys):
    """The message (stderr) of a command line that ``main`` refuses with exit
    status 2, by argparse's ``SystemExit`` or by returning 2."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    return capsys.readouterr().err


def usage_error_line(capsys, main, argv):
    """The last line of the usage error (argparse's exit status 2, no
    traceback) that ``main(argv)`` ends with: the one-line message."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.fixture(autouse=True)
def sys_path_kept(monkeypatch):
    """The --repo scripts put their checkout on sys.path: undone after each
    test of a module that imports this fixture."""
    monkeypatch.setattr(sys, "path", list(sys.path))
