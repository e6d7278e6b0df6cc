"""The conformance kit over every registered spec on the torch backend, float32 and float64."""

from __future__ import annotations

from typing import Any

from lossbridge.testing import parametrize_with_checks


@parametrize_with_checks(backend="torch")
def test_conformance(check: Any) -> None:
    check()
