"""The plugin contract is public: no file under ``plugins/`` uses a private name of the core.

A private name is a ``lossbridge._*`` module (or a ``_``-prefixed module anywhere below
``lossbridge``), or an ``_``-prefixed name imported from any ``lossbridge.*`` module. A plugin's
own modules (``lossbridge_torch._loss``) are its own business.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import lossbridge

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
FILES = sorted(PLUGINS.rglob("*.py"))


def _core_private(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "lossbridge" and any(p.startswith("_") for p in parts[1:])


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if _core_private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lossbridge":
            if _core_private(node.module):
                found.append(f"from {node.module} import ...")
            found += [f"from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            base = ast.unparse(node.value)
            if re.fullmatch(r"lossbridge(\.[a-z][a-z0-9_]*)*", base) and not node.attr.startswith("__"):
                found.append(f"{base}.{node.attr}")
    return found


def test_there_are_plugin_files_to_check() -> None:
    assert len(FILES) > 20


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(PLUGINS)) for p in FILES])
def test_plugin_file_uses_only_public_lossbridge_names(path: Path) -> None:
    assert _violations(path) == [], f"{path.relative_to(PLUGINS)} uses private lossbridge names"


def test_the_checker_finds_private_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import lossbridge._inputs\nfrom lossbridge.spec._domain import domain\n"
        "from lossbridge.registry import _KNOWN_BACKENDS\nx = lossbridge.registry._DEFAULT\n"
    )
    assert len(_violations(bad)) == 4


def test_public_all_matches_what_the_package_defines() -> None:
    assert sorted(lossbridge.__all__) == sorted(n for n in lossbridge.__all__ if hasattr(lossbridge, n))
