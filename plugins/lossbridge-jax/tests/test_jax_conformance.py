"""The conformance kit over every registered spec, float32 and float64, on the JAX backend."""

from __future__ import annotations

from lossbridge.testing import parametrize_with_checks


@parametrize_with_checks(backend="jax")
def test_conformance(check):
    check()
