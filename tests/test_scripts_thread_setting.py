"""A bad RNNLAB_NUM_THREADS is a usage error of every script, before any
work starts (issue 12, finding 6): one line, exit status 2, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv", [
    ["train_rnnlm.py", "--corpus", "synthetic", "--epochs", "1"],
    ["train_seq2seq.py", "--epochs", "1"],
    ["generate_text.py", "--model", "missing.npz"],
    ["inspect_model.py", "surprisal", "--model", "missing.npz", "--text", "a b"],
    ["gradient_through_time.py", "--iters", "1"],
])
@pytest.mark.parametrize("setting", ["abc", "0", "-2"])
def test_a_bad_thread_count_is_a_usage_error_of_every_script(argv, setting, tmp_path):
    env = dict(os.environ, RNNLAB_NUM_THREADS=setting, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / argv[0]), *argv[1:]],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "RNNLAB_NUM_THREADS must be a positive integer" in done.stderr
    assert f"got {setting!r}" in done.stderr
    assert not any(tmp_path.iterdir())  # nothing was written
