"""The pluggy plugin module of ``lossbridge-torch`` (entry point ``torch`` in group ``lossbridge``).

Loading it never imports torch: the backend and the override factories import it lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lossbridge import hookimpl

from ._backend import TorchBackend
from ._native import NATIVE_KERNELS, native_factory
from ._native_loss import NATIVE_LOSSES, native_loss_factory

__all__ = ["lossbridge_register_backends", "lossbridge_register_overrides"]


@hookimpl
def lossbridge_register_backends(register: Callable[[Any], None]) -> None:
    """The ``torch`` backend (alias ``pytorch``)."""
    register(TorchBackend())


@hookimpl
def lossbridge_register_overrides(register: Callable[..., None]) -> None:
    """Verified fast paths: torch's fused optimizer kernels where they compute the spec exactly, and
    ``torch.nn.functional`` loss kernels under ``convention="torch"`` (``_native_loss.NATIVE_LOSSES``)."""
    for spec_name in NATIVE_KERNELS:
        register(spec_name, "torch", native_factory(spec_name), kind="optimizer")
    for spec_name in dict.fromkeys(entry.spec for entry in NATIVE_LOSSES):
        register(spec_name, "torch", native_loss_factory(spec_name), kind="loss")
