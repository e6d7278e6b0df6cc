"""Backends: the adapters that turn a bound spec into a framework's native object."""

from __future__ import annotations

__all__ = ["Backend"]

from lossbridge.backends.base import Backend
