"""The digits example on the TensorFlow backend: a compiled Keras model with lossbridge's loss and Adam.

Same initial weights and mini-batches as every other backend (``lossbridge.demo``), so the loss
curve can be compared with theirs (``lossbridge demo``)::

    python examples/digits_tensorflow.py
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import lossbridge
from lossbridge.demo import load_digits_data
from lossbridge.registry import default_registry


def main() -> None:
    data = load_digits_data()
    result = default_registry().backend("tensorflow").train_digits(data)
    print(
        f"lossbridge {lossbridge.__name__} on {result.backend}: "
        f"val_accuracy={result.val_accuracy:.4f} in {result.seconds:.1f}s"
    )
    for epoch, loss in enumerate(result.train_loss, start=1):
        print(f"epoch {epoch:2d}  train loss {loss:.6f}")


if __name__ == "__main__":
    main()
