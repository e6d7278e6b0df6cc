"""Shared pieces of the subcommands: the rich console, optional-extra checks, plugin warnings."""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Any

from lossbridge.errors import LossbridgeError
from lossbridge.registry import PluginWarning, Registry, default_registry

__all__ = ["CliError", "add_text_row", "console", "load_registry", "require", "table"]


class CliError(LossbridgeError):
    """A usage error found by the command itself (exit status 2, message to stderr)."""


def require(module: str, extra: str, what: str) -> None:
    """Raise :class:`CliError` telling how to install ``extra`` when ``module`` is missing."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken install
        found = False
    if not found:
        raise CliError(f'{what} needs {module}, which is not installed: pip install "lossbridge[{extra}]"')


def console(*, stderr: bool = False) -> Any:
    """A rich console on stdout (or stderr); piped output without ``COLUMNS`` gets 160 columns, not 80."""
    from rich.console import Console

    plain = Console(stderr=stderr, highlight=False)
    if plain.is_terminal or os.environ.get("COLUMNS"):
        return plain
    return Console(stderr=stderr, width=max(plain.width, 160), highlight=False)


def table(*columns: str, title: str | None = None) -> Any:
    """A rich table with ``columns``, folding long cells instead of truncating them."""
    from rich.table import Table

    out = Table(title=title, title_justify="left", show_lines=False)
    for col in columns:
        out.add_column(col, overflow="fold")
    return out


def add_text_row(grid: Any, *cells: str) -> None:
    """Add a row of plain text: brackets in docs (``[eps, 1 - eps]``) are not read as rich markup."""
    from rich.markup import escape

    grid.add_row(*(escape(c) for c in cells))


def load_registry() -> tuple[Registry, list[str]]:
    """The default registry, loaded, and the plugin warnings loading it raised (not re-emitted)."""
    registry = default_registry()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        registry.backends()  # forces discovery of every plugin
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    for w in caught:  # anything else keeps its usual treatment
        if not issubclass(w.category, PluginWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return registry, messages
