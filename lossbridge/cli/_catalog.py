"""``lossbridge catalog``: the catalog as a Markdown table, and the README block generated from it.

The README's catalog lives between ``<!-- catalog:start -->`` and ``<!-- catalog:end -->`` and is
rewritten by ``lossbridge catalog --update-readme`` from lossbridge's built-in specs, never by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import lossbridge
from lossbridge.cli._console import CliError

__all__ = ["END", "START", "add_parser", "markdown_table", "rewrite_block", "run"]

START = "<!-- catalog:start -->"
END = "<!-- catalog:end -->"
BUILTIN = "lossbridge"
_NOTE = "<!-- generated from the specs by `lossbridge catalog --update-readme`: do not edit by hand -->"


def add_parser(sub: Any) -> None:
    """Register the ``catalog`` subcommand."""
    p = sub.add_parser("catalog", help="the catalog as Markdown; keeps README.md's catalog block up to date")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (the default output)")
    p.add_argument("--builtin", action="store_true", help="only lossbridge's own specs, not plugins'")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--update-readme",
        metavar="FILE",
        nargs="?",
        const=Path("README.md"),
        type=Path,
        help="rewrite the built-in catalog block of FILE (default README.md)",
    )
    group.add_argument(
        "--check-readme",
        metavar="FILE",
        nargs="?",
        const=Path("README.md"),
        type=Path,
        help="exit 1 if FILE's catalog block is not up to date",
    )
    p.set_defaults(run=run)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _framework_names(name: str) -> str:
    """The frameworks' own names of a spec, ``framework: Name, Name`` per convention."""
    from lossbridge._api import spec as lookup
    from lossbridge.registry import native_keys

    spec = lookup(name)
    parts = []
    for fw, conv in sorted(spec.conventions.items()):
        names = sorted({*conv.names, *_native_last(conv.native)}) or sorted(native_keys(fw, conv))
        parts.append(f"{fw}: " + ", ".join(f"`{n}`" for n in names))
    return "; ".join(parts) or "-"


def _native_last(native: str) -> list[str]:
    first = native.split()[0] if native else ""
    last = first.split(".")[-1]
    return [last] if "." in first and last.isidentifier() else []


def _rows(entries: list[Any]) -> list[str]:
    lines = ["| name | aliases | framework names | summary |", "|---|---|---|---|"]
    for e in entries:
        aliases = ", ".join(f"`{a}`" for a in e.aliases) or "-"
        cells = [f"`{e.name}`", aliases, _framework_names(e.name), _cell(e.summary)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown_table(*, builtin_only: bool = False) -> str:
    """The catalog as Markdown: losses grouped by task, then optimizers, then schedules."""
    entries = [e for e in lossbridge.catalog() if not builtin_only or e.distribution == BUILTIN]
    lines: list[str] = []
    losses = [e for e in entries if e.kind == "loss"]
    for task in sorted({t for e in losses for t in e.tasks}):
        lines += [f"**Losses for {task.replace('_', ' ')}**", "", *_rows([e for e in losses if task in e.tasks]), ""]
    for kind, title in (("optimizer", "Optimizers"), ("schedule", "Learning-rate schedules")):
        chosen = [e for e in entries if e.kind == kind]
        if chosen:
            lines += [f"**{title}**", "", *_rows(chosen), ""]
    return "\n".join(lines)


def rewrite_block(text: str, body: str, *, source: str = "README.md") -> str:
    """``text`` with the part between the catalog markers replaced by ``body``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise CliError(f"{source} has no catalog block: expected the lines {START!r} and then {END!r}")
    return text[: start + len(START)] + f"\n{_NOTE}\n\n{body}" + text[end:]


def _readme(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc


def run(args: argparse.Namespace, registry_warnings: list[str]) -> int:
    """Print the table, or rewrite / check the README block."""
    target = args.update_readme or args.check_readme
    if target is None:
        sys.stdout.write(markdown_table(builtin_only=args.builtin))
        return 0
    text = _readme(target)
    fresh = rewrite_block(text, markdown_table(builtin_only=True), source=str(target))
    if args.check_readme is not None:
        if fresh != text:
            print(f"{target}: the catalog block is out of date; run `lossbridge catalog --update-readme`")
            return 1
        print(f"{target}: the catalog block is up to date")
        return 0
    target.write_text(fresh, encoding="utf-8")
    print(f"{target}: catalog block rewritten")
    return 0
