"""``python -m lossbridge``: the same as the ``lossbridge`` command."""

from __future__ import annotations

import sys

from lossbridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
