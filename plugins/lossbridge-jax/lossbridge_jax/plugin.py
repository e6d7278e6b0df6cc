"""The entry point of lossbridge-jax: registers :class:`~lossbridge_jax.JaxBackend` (imports no JAX)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lossbridge

from ._backend import JaxBackend

__all__ = ["lossbridge_register_backends"]


@lossbridge.hookimpl
def lossbridge_register_backends(register: Callable[[Any], None]) -> None:
    """Register the JAX backend."""
    register(JaxBackend())
