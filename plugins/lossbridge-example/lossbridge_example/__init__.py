"""lossbridge-example: the quantile (pinball) loss and quasi-hyperbolic momentum (QHM) as a lossbridge plugin."""

from __future__ import annotations

__all__: list[str] = []
