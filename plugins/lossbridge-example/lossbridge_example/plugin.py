"""The plugin module named by the entry point; it only registers specs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lossbridge
from lossbridge_example.specs import LION, POISSON


@lossbridge.hookimpl
def lossbridge_register_specs(register: Callable[[Any], None]) -> None:
    """Add ``poisson`` and ``lion`` to lossbridge's catalog."""
    register(POISSON)
    register(LION)
