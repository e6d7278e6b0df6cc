"""Merge the per-backend reports into ``reports/matrix.json`` and print the matrix at the end.

Each backend's checks run as their own test (in parallel under pytest-xdist), each writing
``reports/matrix-<backend>.json``; the controller process merges what this run wrote.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lossbridge.testing import Report

REPORT_DIR = Path(os.environ.get("LOSSBRIDGE_MATRIX_REPORT", "reports/matrix.json")).parent


def backend_report(backend: str) -> Path:
    return REPORT_DIR / f"matrix-{backend}.json"


def pytest_sessionstart(session: Any) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller clears stale reports
        for old in REPORT_DIR.glob("matrix-*.json"):
            old.unlink()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    parts = sorted(REPORT_DIR.glob("matrix-*.json"))
    if not parts:
        return
    merged = Report([r for p in parts for r in Report.from_json(p.read_text()).results])
    (REPORT_DIR / "matrix.json").write_text(merged.to_json())
    terminalreporter.section("lossbridge conformance matrix (worst relative error vs float64 NumPy)")
    terminalreporter.write_line(merged.format_matrix())
    terminalreporter.write_line(
        f"{len(merged.results)} checks, {len(merged.failed)} failed; written to {REPORT_DIR / 'matrix.json'}"
    )
