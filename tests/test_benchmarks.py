"""The benchmark package and the timing scripts, as a user meets them.

The timings themselves are checked by running the scripts (figures in the
README), never by timed unit tests; here only what must hold on any machine.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["benchmark.py", "time_medium_config.py", "time_zaremba_small.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_describes_the_script_and_starts_no_work(script):
    """``--help`` prints the script's own description and returns at once
    (issue 12, finding 9: time_medium_config.py started training)."""
    path = ROOT / "scripts" / script
    first_line = path.read_text().split('"""')[1].splitlines()[0].strip()
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")
    assert first_line.split(":")[0][:40] in " ".join(proc.stdout.split())


def test_the_reference_is_imported_from_the_benchmarks_package():
    from benchmarks import reference_textbook

    assert not (ROOT / "tests" / "reference_textbook.py").exists()
    assert hasattr(reference_textbook, "SimpleRnnlm")
