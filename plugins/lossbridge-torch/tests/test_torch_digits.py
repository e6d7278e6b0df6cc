"""The seed example on PyTorch reaches >= 90% validation accuracy and tracks the NumPy run."""

from __future__ import annotations

import numpy as np

import lossbridge
from lossbridge.demo import load_digits_data, train_digits_numpy


def test_train_digits_reaches_90_percent_and_matches_the_numpy_curve() -> None:
    data = load_digits_data()
    result = lossbridge.registry.default_registry().backend("torch").train_digits(data)
    assert result.backend == "torch"
    assert len(result.train_loss) == data.epochs
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.val_accuracy >= 0.90
    reference = train_digits_numpy(data)  # the same weights, batches and spec, in NumPy
    assert np.max(np.abs(np.subtract(result.train_loss, reference.train_loss))) < 1e-3
