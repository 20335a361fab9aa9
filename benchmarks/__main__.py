"""``python -m benchmarks``: the same as ``python scripts/benchmark.py``."""

import sys

from benchmarks.main import main

sys.exit(main(prog="python -m benchmarks"))
