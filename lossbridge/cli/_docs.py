"""``lossbridge docs``: build the guide (MkDocs + Material) or write its generated pages.

``lossbridge docs build DIR`` builds the site into DIR from ``mkdocs.yml`` (strict: a failing
snippet, a missing picture or a broken link fails it); ``lossbridge docs generate DIR`` writes only
the generated Markdown and pictures, to read or to diff. Both need ``pip install "lossbridge[docs]"``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from lossbridge.cli._console import CliError, require

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``docs`` subcommand."""
    p = sub.add_parser("docs", help="build the guide: a page per spec, choosing and porting pages")
    action = p.add_subparsers(dest="docs_action", metavar="ACTION", required=True)
    build = action.add_parser("build", help="build the site into DIR with MkDocs (strict)")
    build.add_argument("dir", type=Path, help="where the site is written")
    build.add_argument("--config", type=Path, default=Path("mkdocs.yml"), help="the MkDocs configuration")
    build.add_argument("--no-strict", action="store_true", help="report failures as warnings only")
    gen = action.add_parser("generate", help="write the generated Markdown pages and pictures into DIR")
    gen.add_argument("dir", type=Path, help="a directory for the pages")
    gen.add_argument("--fast", action="store_true", help="no pictures, no snippet runs (a draft)")
    p.set_defaults(run=run)


def _build(args: argparse.Namespace) -> int:
    require("mkdocs", "docs", "lossbridge docs build")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    if not args.config.is_file():
        raise CliError(f"{args.config}: no such MkDocs configuration (run from the repository root or give --config)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)-7s -  %(message)s"))
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        build(load_config(str(args.config), site_dir=str(args.dir.resolve()), strict=not args.no_strict))
    except (MkDocsException, SystemExit) as exc:
        print(f"lossbridge: the site did not build: {exc}", file=sys.stderr)
        return 1
    finally:
        logger.removeHandler(handler)
    print(f"site written to {args.dir}/index.html")
    return 0


def _generate(args: argparse.Namespace) -> int:
    require("matplotlib", "docs", "lossbridge docs generate")
    from lossbridge.docs import generate

    report = generate(args.dir, pictures=not args.fast, run_snippets=not args.fast)
    for failure in report.failures:
        print(f"lossbridge: warning: {failure}", file=sys.stderr)
    print(f"{len(report.pages)} files written to {args.dir} in {report.seconds:.1f} s")
    return 1 if report.failures else 0


def run(args: argparse.Namespace, registry_warnings: list[str]) -> int:
    """Build the site, or write its generated pages."""
    return _build(args) if args.docs_action == "build" else _generate(args)
