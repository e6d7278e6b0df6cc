"""The plugin module named by the entry point; it only registers specs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lossbridge
from lossbridge_example.specs import QHM, QUANTILE


@lossbridge.hookimpl
def lossbridge_register_specs(register: Callable[[Any], None]) -> None:
    """Add ``quantile`` and ``qhm`` to lossbridge's catalog."""
    register(QUANTILE)
    register(QHM)
