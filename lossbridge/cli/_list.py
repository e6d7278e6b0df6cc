"""``lossbridge list``: the catalog as a table, filterable by kind, task and backend.

Every registered spec is available on every installed backend unless materializing it raises.
Finding out imports the framework (seconds for TensorFlow), so it is done only for ``--backend``
and ``--verify``; otherwise the backends column lists the installed backends.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import lossbridge
from lossbridge.cli._console import CliError, add_text_row, console, table
from lossbridge.errors import close_matches
from lossbridge.registry import default_registry
from lossbridge.spec import TASKS

__all__ = ["add_parser", "available_on", "run"]

KINDS = ("loss", "optimizer", "transform", "schedule")


def _kind(entry: Any) -> str:
    """The row's kind: a gradient transform (``OptimizerSpec.role == "transform"``) shows as "transform"."""
    if entry.kind != "optimizer":
        return entry.kind
    return getattr(default_registry().spec(entry.name), "role", "optimizer")


def add_parser(sub: Any) -> None:
    """Register the ``list`` subcommand."""
    p = sub.add_parser("list", help="the catalog of losses, optimizers and schedules")
    p.add_argument("--kind", choices=KINDS, help="only this kind of spec")
    p.add_argument("--task", metavar="TASK", help=f"only specs for this task ({', '.join(sorted(TASKS))})")
    p.add_argument(
        "--backend", metavar="NAME", help="only specs this backend materializes (imports its framework)"
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="materialize every spec on every installed backend (imports each framework: slow) and "
        "list only the backends where that works",
    )
    p.set_defaults(run=run)


def check_task(task: str) -> str:
    """``task`` if it is a known task tag, else :class:`CliError` naming the valid ones."""
    if task in TASKS:
        return task
    hints = close_matches(task, sorted(TASKS))
    hint = f"; did you mean {', '.join(map(repr, hints))}?" if hints else ""
    raise CliError(f"unknown task {task!r}{hint} (valid tasks: {', '.join(sorted(TASKS))})")


def available_on(name: str, backend: str) -> bool:
    """Whether ``backend`` materializes spec ``name`` with its default parameters."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lossbridge.get(name, backend=backend)
    except Exception:  # any failure to materialize means "not available there"
        return False
    return True


def run(args: argparse.Namespace, registry_warnings: list[str]) -> int:
    """Print the catalog table."""
    task = check_task(args.task) if args.task else None
    if args.backend:
        backends = [default_registry().backend(args.backend).name]
    else:
        backends = lossbridge.available_backends()
    probe = bool(args.backend or args.verify)
    rows = []
    kind = "optimizer" if args.kind == "transform" else args.kind
    for entry in lossbridge.catalog(kind=kind, task=task):
        if args.kind in ("optimizer", "transform") and _kind(entry) != args.kind:
            continue
        where = [b for b in backends if not probe or available_on(entry.name, b)]
        if args.backend and not where:
            continue
        rows.append((entry, where))
    out = console()
    if not rows:
        out.print("No spec matches these filters.")
        return 0
    grid = table("name", "kind", "aliases", "tasks", "backends", "summary")
    grid.columns[-1].max_width = 60  # leave room for aliases and backends
    for entry, where in rows:
        add_text_row(
            grid,
            entry.name,
            _kind(entry),
            ", ".join(entry.aliases),
            ", ".join(entry.tasks) or "-",
            ", ".join(where) or "none",
            entry.summary,
        )
    out.print(grid)
    out.print(f"{len(rows)} spec(s). `lossbridge info NAME` shows formula, parameters and conventions.")
    if not probe:
        out.print(
            "Backends: every installed backend materializes every spec unless it raises; --verify tries them."
        )
    return 0
