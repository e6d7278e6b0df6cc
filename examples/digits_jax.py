"""The seed example on JAX: Dense(64, relu) -> Dense(10) on scikit-learn's digits.

Trained with ``lossbridge.get("sparse_categorical_crossentropy", backend="jax", from_logits=True)``
and ``lossbridge.get("adam", backend="jax", lr=1e-3)`` (an ``optax.GradientTransformation``) in a
``jax.jit``-compiled step. Run: ``python examples/digits_jax.py`` (needs lossbridge-jax).
"""

from __future__ import annotations

import lossbridge
from lossbridge.demo import load_digits_data


def main() -> None:
    """Train once and print the loss curve and the validation accuracy."""
    data = load_digits_data()
    result = lossbridge.registry.default_registry().backend("jax").train_digits(data)
    for epoch, loss in enumerate(result.train_loss, start=1):
        print(f"epoch {epoch:2d}  train loss {loss:.4f}")
    print(f"validation accuracy {result.val_accuracy:.3f}  ({result.seconds:.2f} s)")


if __name__ == "__main__":
    main()
