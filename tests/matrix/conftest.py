"""Print the cross-backend matrix at the end of the run (it is also written as JSON)."""

from __future__ import annotations

from typing import Any

from lossbridge.testing import Report

REPORTS: list[Report] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for report in REPORTS:
        terminalreporter.section("lossbridge cross-backend matrix (worst relative error vs float64 NumPy)")
        terminalreporter.write_line(report.format_matrix())
