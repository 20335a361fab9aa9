"""Load a program of ``scripts/`` as a module, for tests that call its
``main`` or its functions (the scripts are not a package), and read the
message of a command line it refuses (:func:`usage_error`).

Each call executes the file afresh, as a new module that is not put in
``sys.modules``: a test that patches one copy leaves the others alone.
"""

import importlib.util
from pathlib import Path

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
