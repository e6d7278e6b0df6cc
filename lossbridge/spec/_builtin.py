"""lossbridge's own specs, registered through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lossbridge.hookspecs import hookimpl
from lossbridge.spec import (
    _adaptive,
    _classification,
    _factored,
    _first_order,
    _margin,
    _metric,
    _regression,
)

__all__ = ["SPECS", "lossbridge_register_specs"]

#: Every built-in spec, family by family.
SPECS = (
    _regression.SPECS
    + _classification.SPECS
    + _margin.SPECS
    + _metric.SPECS
    + _first_order.SPECS
    + _adaptive.SPECS
    + _factored.SPECS
)


@hookimpl
def lossbridge_register_specs(register: Callable[[Any], None]) -> None:
    """Register every built-in loss and optimizer."""
    for spec in SPECS:
        register(spec)
