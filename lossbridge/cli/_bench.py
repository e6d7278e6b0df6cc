"""``lossbridge bench``: the catalog benchmark (``python -m benchmarks``) from a source checkout.

The benchmark lives in the repository's ``benchmarks`` package, not in the installed library: this
subcommand runs it when that package is importable (from the current directory or next to an
editable install of lossbridge) and otherwise says how to get it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from lossbridge.cli._console import CliError

__all__ = ["add_parser", "run"]

_HOW = (
    "lossbridge bench runs the benchmarks package of a lossbridge source checkout: clone the repository, "
    "install it (pip install -e .) and run `lossbridge bench` or `python -m benchmarks` from its root"
)


def _bench_module() -> ModuleType | None:
    """``benchmarks._catalog_bench`` from the current directory or the checkout lossbridge runs from."""
    import lossbridge

    for root in (Path.cwd(), Path(lossbridge.__file__).resolve().parents[1]):
        if (root / "benchmarks" / "_catalog_bench.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            try:
                return importlib.import_module("benchmarks._catalog_bench")
            except Exception:  # a broken checkout must not break the other subcommands
                return None
    return None


def add_parser(sub: Any) -> None:
    """Register the ``bench`` subcommand with the benchmark's own options (when the checkout is there)."""
    p = sub.add_parser(
        "bench",
        help="time every spec against each framework's own object (python -m benchmarks; source checkout)",
    )
    module = _bench_module()
    if module is not None:
        module.build_parser(p)
    else:
        p.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's options")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, registry_warnings: list[str]) -> int:
    """Run the benchmark with the parsed options."""
    module = _bench_module()
    if module is None:
        raise CliError(_HOW)
    status: int = module.run_args(args)
    return status
