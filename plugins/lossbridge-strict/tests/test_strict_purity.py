"""Every registered spec runs on array-api-strict: anything outside the standard fails here."""

from __future__ import annotations

import pytest

pytest.importorskip("array_api_strict")

from lossbridge.testing import Check, parametrize_with_checks


@parametrize_with_checks(backend="strict")
def test_specs_are_pure_array_api(check: Check) -> None:
    check()
