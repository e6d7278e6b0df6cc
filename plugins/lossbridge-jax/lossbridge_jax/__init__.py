"""lossbridge-jax: lossbridge's losses and optimizers as JAX functions and Optax transformations.

Importing this package does not import JAX; the backend imports it the first time it
materializes a loss or an optimizer.
"""

from __future__ import annotations

__all__ = ["JaxBackend"]

from ._backend import JaxBackend
