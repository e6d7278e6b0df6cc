"""Conventions are data applied by the core: Keras's input forms work on the JAX backend too,
with Keras's numbers (the expected values are textbook float64 NumPy)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import lossbridge


def test_keras_rank_rule_float_labels_and_loss_dtype_on_jax() -> None:
    probs = jnp.asarray([[0.8, 0.2], [0.3, 0.7]], dtype=jnp.float64)
    labels = jnp.asarray([[0.0], [1.0]], dtype=jnp.float64)  # (N, 1) float labels
    loss = lossbridge.get("sparse_categorical_crossentropy", backend="jax", convention="keras")
    value = loss(probs, labels)
    assert value.dtype == jnp.float32  # Keras's loss dtype
    np.testing.assert_allclose(float(value), -np.mean(np.log([0.8, 0.7])), rtol=1e-6)
    mse = lossbridge.get("mse", backend="jax", convention="keras", dtype="float64")
    y, f = jnp.asarray([1.0, 2.0]), jnp.asarray([[1.5], [2.0]])
    assert float(mse(f, y)) == 0.125  # (N,) targets against (N, 1) predictions
