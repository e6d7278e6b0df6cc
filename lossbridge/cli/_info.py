"""``lossbridge info NAME``: formula, parameters, usage, references and conventions of one spec."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lossbridge.cli._console import add_text_row, console, require, table
from lossbridge.conventions import LOSSBRIDGE_REDUCTION, Convention, Reduction
from lossbridge.registry import default_registry
from lossbridge.spec import LossSpec, OptimizerSpec, ScheduleSpec

__all__ = ["add_parser", "convention_rows", "describe_reduction", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``info`` subcommand."""
    p = sub.add_parser("info", help="formula, parameters, usage and conventions of one spec")
    p.add_argument("name", help="a spec name or alias, e.g. adam, bce, huber")
    p.add_argument(
        "--plot", metavar="FILE", type=Path, help="write the spec's picture (as on its guide page) to FILE (PNG)"
    )
    p.set_defaults(run=run)


def describe_reduction(rule: Reduction) -> str:
    """A reduction rule in words: default, last-axis mean, weighted-mean normalization."""
    parts = [f"default {rule.default!r}"]
    parts.append("mean over last axis first" if rule.feature_mean else "every element a term")
    parts.append(
        "weighted mean / sum of weights" if rule.normalize_by == "weights" else "weighted mean / count"
    )
    return "; ".join(parts)


def _param_diffs(found: LossSpec | OptimizerSpec | ScheduleSpec, conv: Convention) -> str:
    defaults = {p.name: p.default for p in found.all_params()}
    diffs = [
        f"{k}={v!r} (default {defaults.get(k)!r})"
        for k, v in conv.params.items()
        if k not in defaults or defaults[k] != v
    ]
    return "; ".join(diffs) or "same as default"


def convention_rows(found: LossSpec | OptimizerSpec | ScheduleSpec) -> list[tuple[str, ...]]:
    """One row per convention: framework, native object, params that differ, reduction, dtype, notes."""
    own_rule = describe_reduction(LOSSBRIDGE_REDUCTION) if isinstance(found, LossSpec) else ""
    rows: list[tuple[str, ...]] = [
        ("lossbridge (default)", "-", "the defaults above", own_rule, "", "lossbridge's own cited defaults")
    ]
    for fw in sorted(found.conventions):
        conv = found.conventions[fw]
        rule = ""
        if isinstance(found, LossSpec) and conv.reduction is not None:
            rule = "same" if conv.reduction == LOSSBRIDGE_REDUCTION else describe_reduction(conv.reduction)
        dtype = conv.hyper_dtype or ""
        if dtype and conv.rounded is not None:
            dtype += f" ({', '.join(conv.rounded) or 'none'} rounded)"
        rows.append((fw, conv.native, _param_diffs(found, conv), rule, dtype, conv.notes))
    return rows


def _params_table(found: LossSpec | OptimizerSpec | ScheduleSpec) -> Any:
    grid = table("parameter", "default", "valid values", "meaning", title="Parameters")
    for p in found.all_params():
        add_text_row(grid, p.name, repr(p.default), p.describe(), p.doc)
    return grid


def _conventions_table(found: LossSpec | OptimizerSpec | ScheduleSpec) -> Any:
    columns = ["convention", "native", "parameters vs default"]
    columns += ["reduction"] if isinstance(found, LossSpec) else []
    columns += ["hyper dtype"] if isinstance(found, OptimizerSpec) else []
    grid = table(
        *columns, "notes", title="Conventions (how each framework differs from lossbridge's default)"
    )
    for fw, native, params, rule, dtype, notes in convention_rows(found):
        middle = (rule,) if isinstance(found, LossSpec) else (dtype,)
        add_text_row(grid, fw, native, params, *middle, notes)
    return grid


def _names_table(found: LossSpec | OptimizerSpec | ScheduleSpec) -> Any:
    """How the frameworks' own names resolve to this spec, per convention, with their presets."""
    from lossbridge.registry import native_keys

    title = "Framework names (lossbridge.get(name, convention=...))"
    grid = table("convention", "framework name", "presets", title=title)
    for fw, conv in sorted(found.conventions.items()):
        shown = {**{k: {} for k in _native_names(conv.native)}, **conv.names}
        for name, preset in sorted(shown.items()):
            add_text_row(grid, fw, name, ", ".join(f"{k}={v!r}" for k, v in preset.items()) or "-")
        if not shown:
            add_text_row(grid, fw, ", ".join(sorted(native_keys(fw, conv))) or "-", "-")
    return grid


def _native_names(native: str) -> list[str]:
    first = native.split()[0] if native else ""
    last = first.split(".")[-1]
    return [last] if "." in first and last.isidentifier() else []


def run(args: argparse.Namespace, registry_warnings: list[str]) -> int:
    """Print everything the spec declares."""
    from rich.markup import escape

    found = default_registry().spec(args.name)  # what lossbridge.spec(name) returns
    out = console()
    out.print(f"[bold]{found.name}[/bold] ({found.kind}) - {escape(found.summary)}")
    if found.aliases:
        out.print(f"aliases: {', '.join(found.aliases)}")
    if isinstance(found, LossSpec):
        out.print(f"tasks: {', '.join(sorted(found.tasks))}")
        out.print(f"inputs: {', '.join(f'{i.name} ({i.role})' for i in found.inputs)}")
    out.print(f"provided by: {default_registry().provider(found.name)}")
    out.print("\n[bold]Formula[/bold] (LaTeX)")
    out.print(escape(found.formula), highlight=False)
    out.print()
    out.print(_params_table(found))
    if found.usage:
        out.print("\n[bold]When to use it, pitfalls[/bold]")
        out.print(escape(found.usage))
    out.print("\n[bold]References[/bold]")
    for ref in found.references:
        out.print(f"- {escape(ref)}")
    out.print()
    out.print(_conventions_table(found))
    if found.conventions:
        out.print()
        out.print(_names_table(found))
    if args.plot is not None:
        require("matplotlib", "plot", "lossbridge info --plot")
        from lossbridge.docs import plot_spec

        out.print(f"picture written to {plot_spec(found, args.plot)}")
    return 0
