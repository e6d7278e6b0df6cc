"""lossbridge's PyTorch backend: losses as ``torch.nn.Module``, optimizers as ``torch.optim.Optimizer``.

Importing this package does not import torch; the backend imports it the first time it
materializes a loss or an optimizer.
"""

from __future__ import annotations

__all__ = ["TorchBackend"]

from ._backend import TorchBackend
