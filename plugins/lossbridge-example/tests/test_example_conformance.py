"""The conformance kit, through its public API only, on every installed backend."""

from __future__ import annotations

import lossbridge
from lossbridge.testing import Check, parametrize_with_checks


@parametrize_with_checks(backend=lossbridge.available_backends(), specs=["quantile", "qhm"])
def test_example_specs_conform_on_every_backend(check: Check) -> None:
    check()
