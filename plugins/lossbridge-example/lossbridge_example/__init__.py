"""lossbridge-example: a Poisson loss and the Lion optimizer as a third-party lossbridge plugin."""

from __future__ import annotations

__all__: list[str] = []
