"""The ``lossbridge`` command: browse the catalog, inspect a spec, run the conformance kit, the demo.

Subcommands: ``list``, ``info``, ``check``, ``plugins``, ``demo``, ``catalog`` (Markdown for the
README), ``docs`` (the guide site) and ``bench`` (the catalog benchmark, from a source checkout).
Tables and the progress bar use ``rich`` (``pip install "lossbridge[cli]"``); argument parsing is
the standard library's ``argparse``. Errors the library raises on purpose (unknown names, missing
backends) are printed to stderr with their own message and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from lossbridge.cli import _bench, _catalog, _check, _demo, _docs, _info, _list, _plugins
from lossbridge.cli._console import CliError, load_registry, require
from lossbridge.errors import LossbridgeError

__all__ = ["main"]

#: Each subcommand module provides ``add_parser(subparsers)`` and ``run(args, warnings) -> int``.
_COMMANDS = (_list, _info, _check, _plugins, _demo, _catalog, _docs, _bench)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lossbridge`` command."""
    parser = argparse.ArgumentParser(
        prog="lossbridge",
        description="Every loss and optimizer defined once, materialized natively for each framework.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if args.command != "catalog":  # the Markdown catalog is plain text
        require("rich", "cli", "the lossbridge command")
    _, registry_warnings = load_registry()
    run: Callable[[argparse.Namespace, list[str]], int] = args.run
    if args.command != "plugins":
        for message in registry_warnings:
            print(f"lossbridge: warning: {message}", file=sys.stderr)
    return run(args, registry_warnings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``lossbridge`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _dispatch(args)
    except (LossbridgeError, CliError) as exc:
        print(f"lossbridge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lossbridge: interrupted", file=sys.stderr)
        return 130
