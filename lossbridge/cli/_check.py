"""``lossbridge check``: run the conformance kit with a progress bar and print the matrix."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import lossbridge
from lossbridge.cli._console import console, table
from lossbridge.registry import default_registry
from lossbridge.testing import Check, Report, generate_checks

__all__ = ["add_parser", "collect_checks", "matrix_table", "run", "run_fuzz"]

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
    p.add_argument(
        "--fuzz",
        metavar="N",
        type=int,
        help="instead of the fixed cases, a property-based search (Hypothesis): N examples per spec per backend",
    )
    p.add_argument("--seed", metavar="S", type=int, help="with --fuzz: the random seed (default: a fresh one)")
    p.add_argument(
        "--log",
        metavar="FILE",
        type=Path,
        help="with --fuzz: append one line per finished spec search (and each failure) to FILE as it ends",
    )
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

    if args.fuzz is not None:
        return run_fuzz(args)
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


def run_fuzz(args: argparse.Namespace) -> int:
    """``--fuzz N``: N Hypothesis examples per spec per backend; each failure is printed shrunk, with
    a ready-to-paste reproduction. Exit status 1 when any spec fails."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lossbridge.testing import FuzzResult, fuzz_spec

    if args.fuzz < 1:
        raise lossbridge.InputError(f"--fuzz: expected a number of examples >= 1, got {args.fuzz}")
    registry = default_registry()
    names = [registry.backend(b).name for b in args.backend] if args.backend else lossbridge.available_backends()
    wanted = {registry.spec(s).name for s in args.spec} if args.spec else None
    specs = sorted(
        s.name for s, _ in registry.specs() if s.kind != "schedule" and (wanted is None or s.name in wanted)
    )
    jobs = [(b, s) for b in dict.fromkeys(names) for s in specs]
    results: list[FuzzResult] = []
    log = getattr(args, "log", None)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("fuzz", total=len(jobs))
        for backend, spec in jobs:
            progress.update(task, description=f"{backend}-{spec}")
            seed = None if args.seed is None else args.seed
            started = time.perf_counter()
            results.append(fuzz_spec(spec, backend, max_examples=args.fuzz, dtypes=args.dtype, seed=seed))
            if log is not None:
                _log_result(log, results[-1], time.perf_counter() - started)
            progress.advance(task)
    out = console()
    grid = table("spec", *dict.fromkeys(names))
    cells = {(r.backend, r.spec): r for r in results}
    for spec in specs:
        row = []
        for backend in dict.fromkeys(names):
            r = cells[(backend, spec)]
            row.append(f"[green]ok[/green] ({r.examples})" if r.passed else f"[bold red]FAIL[/bold red] ({r.examples})")
        grid.add_row(spec, *row)
    out.print(f"Property-based search, {args.fuzz} examples per spec per backend:")
    out.print(grid)
    failed = [r for r in results if not r.passed]
    for r in failed:
        out.print(f"[red]FAIL[/red] {escape(r.message)}")
        out.print(escape(r.reproduction), highlight=False)
        out.print()
    if args.json is not None:
        import json
        from dataclasses import asdict

        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")
        out.print(f"report written to {args.json}")
    out.print(f"{len(results) - len(failed)} of {len(results)} spec x backend searches passed.")
    return 1 if failed else 0


def _log_result(path: Path, result: Any, seconds: float) -> None:
    """Append one line (and a failure's message and reproduction) to ``path`` as a search ends."""
    status = "ok" if result.passed else "FAIL"
    lines = [f"{result.backend}-{result.spec}: {status} ({result.examples} examples, {seconds:.1f} s)"]
    if not result.passed:
        lines += [result.message, result.reproduction, ""]
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
