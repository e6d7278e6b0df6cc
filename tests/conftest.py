"""Core test fixtures: a fresh registry per test that wants one, pinned to what is installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import lossbridge.registry


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """Forget the process-wide registry before and after, so plugins added meanwhile are found."""
    lossbridge.registry.reset_default_registry()
    yield
    lossbridge.registry.reset_default_registry()
