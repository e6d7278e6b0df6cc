"""``python -m benchmarks``: every spec with a native counterpart, on every installed backend."""

from __future__ import annotations

import sys

from benchmarks._catalog_bench import main

if __name__ == "__main__":
    sys.exit(main())
