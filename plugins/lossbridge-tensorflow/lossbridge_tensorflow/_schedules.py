"""Schedules as ``keras.optimizers.schedules.LearningRateSchedule`` objects.

Computed as Keras computes its own schedules: the step (``optimizer.iterations``, 0 for the first
update) cast to the schedule's dtype (float32 unless told) and the formula evaluated in that dtype
with lossbridge's TensorFlow Array API namespace. Serializable: ``get_config`` holds the spec name,
the convention and the parameters, and ``keras.saving`` finds the class as
``lossbridge>LossbridgeSchedule``.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

import lossbridge
from lossbridge.bound import BoundSchedule, bind

__all__ = ["KerasSchedule"]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


@keras.saving.register_keras_serializable(package="lossbridge", name="LossbridgeSchedule")
class KerasSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A lossbridge schedule as a Keras ``LearningRateSchedule``: ``schedule(step) -> value``."""

    def __init__(
        self, spec: str, convention: str | None = None, params: dict[str, Any] | None = None, dtype: str = "float32"
    ) -> None:
        super().__init__()
        found = lossbridge.spec(spec)
        self.bound: BoundSchedule = bind(found, convention=convention, params=params or {})
        self.dtype = dtype
        self._given = dict(params or {})

    @classmethod
    def from_bound(cls, bound: BoundSchedule, dtype: str = "float32") -> KerasSchedule:
        """The schedule for an already-resolved ``bound``."""
        conv = bound.convention.framework if bound.convention else None
        return cls(bound.spec.name, conv, dict(bound.params), dtype)

    def __call__(self, step: Any) -> Any:
        from lossbridge_tensorflow import array_api

        step = tf.cast(step, self.dtype)
        return self.bound(array_api, step)

    def get_config(self) -> dict[str, Any]:
        conv = self.bound.convention.framework if self.bound.convention else None
        params = {k: _plain(v) for k, v in self.bound.params.items()}
        return {"spec": self.bound.spec.name, "convention": conv, "params": params, "dtype": self.dtype}

    def __repr__(self) -> str:
        return f"<lossbridge keras schedule {self.bound.spec.name!r} {dict(self.bound.params)}>"
