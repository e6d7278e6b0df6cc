"""The conformance kit on the NumPy reference backend (including finite-difference gradients)."""

from __future__ import annotations

from lossbridge.testing import Check, parametrize_with_checks


@parametrize_with_checks(backend="numpy")
def test_numpy_backend_conforms(check: Check) -> None:
    check()
