"""Registers the array-api-strict backend; importing this module imports no array library."""

from __future__ import annotations

from typing import Any

import lossbridge

from ._backend import StrictBackend


@lossbridge.hookimpl
def lossbridge_register_backends(register: Any) -> None:
    """The ``strict`` backend (alias ``array_api_strict``)."""
    register(StrictBackend())
