"""Load a program of ``scripts/`` as a module, for tests that call its
``main`` or its functions (the scripts are not a package).

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
