"""How fast rnnlab trains, against a floor, against PyTorch and against the textbook.

The benchmark lives in the package ``benchmarks/`` (see
``benchmarks/main.py`` for what it measures); this script runs it:

    python scripts/benchmark.py              # full run (a few minutes)
    python scripts/benchmark.py --quick      # short run (< 1 minute)
    python scripts/benchmark.py --json       # JSON on stdout, progress on stderr
"""

import os
import sys

# Scripts are not packages: make the repository importable when run as
# "python scripts/benchmark.py".
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
