"""lossbridge's own specs, registered through the same hook as any plugin's.

Every family module of this package (``lossbridge/spec/_<family>.py``) that defines a ``SPECS``
tuple contributes it; a new family file needs no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import lossbridge.spec as _package
from lossbridge.hookspecs import hookimpl

__all__ = ["SPECS", "family_modules", "lossbridge_register_specs"]


def family_modules() -> list[Any]:
    """The family modules of :mod:`lossbridge.spec`, in name order."""
    names = sorted(m.name for m in pkgutil.iter_modules(_package.__path__) if m.name.startswith("_"))
    modules = [importlib.import_module(f"{_package.__name__}.{n}") for n in names if n != "_builtin"]
    return [m for m in modules if isinstance(getattr(m, "SPECS", None), tuple)]


#: Every built-in spec, family by family.
SPECS: tuple[Any, ...] = tuple(spec for module in family_modules() for spec in module.SPECS)


@hookimpl
def lossbridge_register_specs(register: Callable[[Any], None]) -> None:
    """Register every built-in loss, optimizer and schedule."""
    for spec in SPECS:
        register(spec)
