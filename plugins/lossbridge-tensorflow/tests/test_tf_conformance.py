"""The conformance kit over every registered spec on the TensorFlow backend, float32 and float64.

Each check materializes the spec with ``lossbridge.get(..., backend="tensorflow")`` and drives the
real Keras objects through the backend's harness (GradientTape on a ``keras.losses.Loss`` call;
``optimizer.apply`` of a ``keras.optimizers.Optimizer`` for 100 steps), against the float64 NumPy
run of the spec.
"""

from __future__ import annotations

from typing import Any

from lossbridge.testing import parametrize_with_checks


@parametrize_with_checks(backend="tensorflow")
def test_conformance(check: Any) -> None:
    check()
