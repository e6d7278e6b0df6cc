"""Schedules as Optax schedules: pure, jittable functions ``count -> value``.

The function takes the number of updates taken so far (Optax's ``count``, an int32 array or a
Python int) and returns the value in the default floating dtype (float64 with x64 enabled). It can
be passed as ``learning_rate=`` to any Optax optimizer and as ``lr=`` to lossbridge's JAX optimizers.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from lossbridge.bound import BoundSchedule

__all__ = ["make_schedule"]


def make_schedule(bound: BoundSchedule) -> Any:
    """An Optax schedule (``optax.Schedule``) computing ``bound`` with ``jax.numpy``."""

    def schedule(count: Any) -> Any:
        step = jnp.asarray(count, dtype=jnp.result_type(float))
        return bound(jnp, step)

    schedule.__name__ = bound.spec.name
    schedule.__doc__ = f"{bound.spec.summary}\n\nFormula: {bound.spec.formula}"
    schedule.bound = bound  # type: ignore[attr-defined]
    return schedule
