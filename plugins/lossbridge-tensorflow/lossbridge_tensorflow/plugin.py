"""The entry point lossbridge loads: registers the TensorFlow backend without importing TensorFlow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lossbridge

from ._backend import TensorflowBackend

__all__ = ["lossbridge_register_backends"]


@lossbridge.hookimpl
def lossbridge_register_backends(register: Callable[[Any], None]) -> None:
    """Register the TensorFlow/Keras backend (``"tensorflow"``, aliases ``"tf"``, ``"keras"``)."""
    register(TensorflowBackend())
