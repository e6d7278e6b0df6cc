"""The seed example on PyTorch: Dense(64, relu) -> Dense(10) on scikit-learn's digits.

An ``nn.Sequential`` trained with ``lossbridge.get("sparse_categorical_crossentropy",
backend="torch", from_logits=True)`` (an ``nn.Module``) and the optimizer class
``lossbridge.get("adam", backend="torch", lr=1e-3)`` used as ``Adam(model.parameters())``.
Run: ``python examples/digits_torch.py`` (needs lossbridge-torch).
"""

from __future__ import annotations

import lossbridge
from lossbridge.demo import load_digits_data


def main() -> None:
    """Train once and print the loss curve and the validation accuracy."""
    data = load_digits_data()
    result = lossbridge.registry.default_registry().backend("torch").train_digits(data)
    for epoch, loss in enumerate(result.train_loss, start=1):
        print(f"epoch {epoch:2d}  train loss {loss:.4f}")
    print(f"validation accuracy {result.val_accuracy:.3f}  ({result.seconds:.2f} s)")


if __name__ == "__main__":
    main()
