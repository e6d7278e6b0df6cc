"""``lossbridge plugins``: installed plugins, their distributions, what each provides, load errors."""

from __future__ import annotations

import argparse
from typing import Any

from lossbridge.cli._console import console, table
from lossbridge.registry import default_registry

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``plugins`` subcommand."""
    p = sub.add_parser("plugins", help="installed plugins, what they provide and any load errors")
    p.set_defaults(run=run)


def _backend_cell(names: list[str], backends: dict[str, Any]) -> str:
    cells = []
    for name in names:
        backend = backends.get(name)
        if backend is None or backend.available():
            cells.append(name)
        else:
            cells.append(f"{name} (needs {', '.join(backend.requires)})")
    return ", ".join(cells) or "-"


def run(args: argparse.Namespace, registry_warnings: list[str]) -> int:
    """Print one row per plugin, then every load error in full."""
    from rich.markup import escape

    registry = default_registry()
    backends = registry.backends()
    grid = table("plugin", "distribution", "version", "specs", "backends", "overrides", "errors")
    errors: list[str] = []
    for info in registry.plugins.values():
        errors += [e for e in info.errors if e not in errors]
        cells = (
            info.name,
            info.distribution,
            info.version or "-",
            ", ".join(info.specs) or "-",
            _backend_cell(info.backends, backends),
            ", ".join(info.overrides) or "-",
        )
        grid.add_row(*map(escape, cells), f"[red]{len(info.errors)}[/red]" if info.errors else "0")
    errors += [m for m in registry_warnings if m not in errors]
    out = console()
    out.print(grid)
    if errors:
        out.print("\n[bold red]Load errors[/bold red]")
        for message in errors:
            out.print(f"- {escape(message)}")
    else:
        out.print("No load errors.")
    return 0
