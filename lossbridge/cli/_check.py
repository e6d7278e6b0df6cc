"""``lossbridge check``: run the conformance kit with a progress bar and print the matrix."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import lossbridge
from lossbridge.cli._console import console, table
from lossbridge.registry import default_registry
from lossbridge.testing import Check, Report, generate_checks

__all__ = ["add_parser", "collect_checks", "matrix_table", "run"]

#: How many failing checks are listed under the matrix (the JSON report has all of them).
MAX_FAILURES_SHOWN = 20


def add_parser(sub: Any) -> None:
    """Register the ``check`` subcommand."""
    p = sub.add_parser("check", help="run the conformance kit on installed backends")
    p.add_argument(
        "--backend", metavar="NAME", nargs="+", action="extend", help="backends (default: all installed)"
    )
    p.add_argument("--spec", metavar="NAME", nargs="+", action="extend", help="specs (default: all)")
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        nargs="+",
        action="extend",
        help="dtypes (default: each backend's)",
    )
    p.add_argument("--json", metavar="FILE", type=Path, help="write the full report as JSON")
    p.set_defaults(run=run)


def collect_checks(
    backends: list[str] | None, specs: list[str] | None, dtypes: list[str] | None
) -> list[Check]:
    """Every check of the chosen backends (names are validated: unknown ones raise the library error)."""
    registry = default_registry()
    names = [registry.backend(b).name for b in backends] if backends else lossbridge.available_backends()
    wanted = [registry.spec(s).name for s in specs] if specs else None
    checks: list[Check] = []
    for name in dict.fromkeys(names):
        checks += generate_checks(name, specs=wanted, dtypes=dtypes)
    return checks


def _run_all(checks: list[Check]) -> Report:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    report = Report()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("conformance", total=len(checks))
        for check in checks:
            progress.update(task, description=check.check_id)
            report.results.append(check.run())
            progress.advance(task)
    return report


def matrix_table(report: Report) -> Any:
    """Rows are specs, columns backends, cells the worst relative error (FAIL marked)."""
    matrix = report.matrix()
    backends = sorted({b for row in matrix.values() for b in row})
    grid = table("spec", *backends)
    for spec in sorted(matrix):
        cells = []
        for b in backends:
            cell = matrix[spec].get(b)
            if cell is None:
                cells.append("-")
            elif cell["passed"]:
                cells.append(f"[green]{cell['worst']:.1e}[/green] ({cell['checks']})")
            else:
                cells.append(f"[bold red]{cell['worst']:.1e} FAIL[/bold red] ({cell['checks']})")
        grid.add_row(spec, *cells)
    return grid


def run(args: argparse.Namespace, registry_warnings: list[str]) -> int:
    """Run the checks; exit status 1 when any fails."""
    from rich.markup import escape

    checks = collect_checks(args.backend, args.spec, args.dtype)
    report = _run_all(checks)
    out = console()
    out.print("Worst relative error against the float64 NumPy reference (number of checks):")
    out.print(matrix_table(report))
    failed = report.failed
    for result in failed[:MAX_FAILURES_SHOWN]:
        out.print(f"[red]FAIL[/red] {escape(result.check_id)}: {escape(result.message)}")
    if len(failed) > MAX_FAILURES_SHOWN:
        out.print(f"... and {len(failed) - MAX_FAILURES_SHOWN} more failures (see --json)")
    if args.json is not None:
        args.json.write_text(report.to_json(), encoding="utf-8")
        out.print(f"report written to {args.json}")
    out.print(f"{len(report.results) - len(failed)} of {len(report.results)} checks passed.")
    return 1 if failed else 0
