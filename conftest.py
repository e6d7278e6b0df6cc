"""Repository-wide pytest hooks: each tox environment reports its time against its budget.

``LOSSBRIDGE_BUDGET_SECONDS`` (set per environment in tox.ini) is the environment's share of the
30-minute matrix. The time is reported, never asserted: speed lives in benchmarks/, not in tests.
"""

from __future__ import annotations

import os
import time
from typing import Any

_START = time.monotonic()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    budget = os.environ.get("LOSSBRIDGE_BUDGET_SECONDS")
    if not budget:
        return
    used = time.monotonic() - _START
    verdict = "within" if used <= float(budget) else "OVER"
    terminalreporter.write_line(
        f"lossbridge time budget: this pytest run took {used:.0f} s; the environment's budget is {budget} s "
        f"(this run alone is {verdict} it)"
    )
