"""Conventions are data applied by the core: Keras's input forms work on the torch backend too,
with Keras's numbers (the expected values are textbook float64 NumPy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lossbridge


def test_keras_rank_rule_float_labels_and_loss_dtype_on_torch() -> None:
    probs = torch.tensor([[0.8, 0.2], [0.3, 0.7]], dtype=torch.float64)
    labels = torch.tensor([[0.0], [1.0]], dtype=torch.float64)  # (N, 1) float labels, as model.fit gives
    loss = lossbridge.get("sparse_categorical_crossentropy", backend="torch", convention="keras")
    value = loss(probs, labels)
    assert value.dtype == torch.float32  # Keras computes a loss in its dtype, float32 unless told
    np.testing.assert_allclose(float(value), -np.mean(np.log([0.8, 0.7])), rtol=1e-6)
    mse = lossbridge.get("mse", backend="torch", convention="keras", dtype="float64")
    y, f = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([[1.5], [2.0]], dtype=torch.float64)
    assert float(mse(f, y)) == 0.125  # (N,) targets against (N, 1) predictions


def test_meta_tensors_skip_value_checks() -> None:
    loss = lossbridge.get("bce", backend="torch")
    out = loss(torch.empty(4, device="meta"), torch.empty(4, device="meta"))
    assert out.device.type == "meta" and out.shape == ()


def test_validate_false_turns_value_checks_off() -> None:
    bad = (torch.tensor([0.5, 1.5]), torch.tensor([1.0, 0.0]))  # a "probability" of 1.5
    with pytest.raises(lossbridge.InputError, match="y_pred: expected probabilities"):
        lossbridge.get("bce", backend="torch")(*bad)
    value = lossbridge.get("bce", backend="torch", validate=False)(*bad)  # computed as given, no check
    assert value.shape == ()
