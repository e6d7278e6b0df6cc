"""Gradient transforms on JAX: lossbridge's transform specs are ``optax.GradientTransformation``s.

``lossbridge.get("clip_by_global_norm", backend="jax", max_norm=1.0)`` goes through the optimizer
path (:func:`lossbridge_jax._optim.make_transformation`): a transform spec's ``update`` returns the
transformed gradients, which is what Optax's ``update`` returns, so the object composes with
``optax.chain`` (with Optax's transformations and with lossbridge's), with ``optax.MultiSteps``,
``optax.masked`` and ``optax.inject_hyperparams`` (through ``tx.factory``) like any Optax
transformation. A transform that does not read the parameters runs with ``update(grads, state)``.

:func:`chain` is what ``lossbridge.chain(*parts, accumulate=k)`` does on JAX.
"""

from __future__ import annotations

from typing import Any

import optax

from lossbridge.errors import ParameterError

__all__ = ["chain"]


def chain(*parts: Any, accumulate: int = 1) -> Any:
    """``optax.chain(*parts)``, inside ``optax.MultiSteps(every_k_schedule=accumulate)`` when ``accumulate > 1``."""
    for k, part in enumerate(parts):
        if not (callable(getattr(part, "init", None)) and callable(getattr(part, "update", None))):
            raise ParameterError(f"chain: part {k} ({type(part).__name__}) is not an optax.GradientTransformation")
    tx = optax.chain(*parts)
    if accumulate > 1:
        return optax.MultiSteps(tx, every_k_schedule=accumulate)
    return tx
