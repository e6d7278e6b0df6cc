"""The entry point of lossbridge-jax: registers :class:`~lossbridge_jax.JaxBackend` (imports no JAX)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lossbridge

from ._backend import JaxBackend
from ._native_loss import NATIVE_LOSSES, native_loss_factory

__all__ = ["lossbridge_register_backends", "lossbridge_register_overrides"]


@lossbridge.hookimpl
def lossbridge_register_backends(register: Callable[[Any], None]) -> None:
    """Register the JAX backend."""
    register(JaxBackend())


@lossbridge.hookimpl
def lossbridge_register_overrides(register: Callable[..., None]) -> None:
    """Verified fast paths: ``optax.losses`` kernels under ``convention="optax"`` (``_native_loss.NATIVE_LOSSES``)."""
    for entry in NATIVE_LOSSES:
        register(entry.spec, "jax", native_loss_factory(entry.spec), kind="loss")
