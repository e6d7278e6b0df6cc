"""lossbridge-strict: the array-api-strict backend (see :mod:`lossbridge_strict.plugin`)."""

from __future__ import annotations

__all__: list[str] = []
