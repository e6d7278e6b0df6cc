"""The seed example on JAX reaches >= 90% validation accuracy, and its loss curve falls."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge

pytest.importorskip("sklearn")


def test_train_digits_reaches_90_percent():
    from lossbridge.demo import load_digits_data

    data = load_digits_data()
    result = lossbridge.registry.default_registry().backend("jax").train_digits(data)
    assert result.backend == "jax"
    assert len(result.train_loss) == data.epochs
    assert all(np.isfinite(result.train_loss))
    assert result.train_loss[-1] < 0.5 * result.train_loss[0]
    assert result.val_accuracy >= 0.90
