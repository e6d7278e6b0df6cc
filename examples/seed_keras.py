"""The seed's own Keras code, with lossbridge objects in place of Keras's strings.

The seed document trains::

    model = Sequential([Dense(64, activation="relu"), Dense(10, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=10, validation_data=(x_val, y_val))

Here both strings become lossbridge objects under ``convention="keras"``, trained on
scikit-learn's bundled digits. With the same seed (same initial weights and shuffles) the history
matches the one from Keras's own strings; run it to see both side by side::

    python examples/seed_keras.py            # float32, Keras's default
    python examples/seed_keras.py --float64  # float64: the histories agree to ~1e-12
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import lossbridge


def load_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits (8x8 images scaled to [0, 1]), 80/20 train/validation split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    x, y = sk_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x / 16.0, y, test_size=0.2, random_state=seed, stratify=y
    )
    return x_train, y_train, x_val, y_val


def seed_model(loss: Any, optimizer: Any, *, seed: int = 0) -> keras.Model:
    """The seed's network, compiled with ``loss`` and ``optimizer`` (strings or objects)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss=loss, optimizer=optimizer, metrics=["accuracy"])
    return model


def train(
    loss: Any, optimizer: Any, *, epochs: int = 10, seed: int = 0, dtype: str = "float32"
) -> dict[str, list[float]]:
    """Train the seed's model in ``dtype`` (Keras's floatx) and return its history."""
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        x_train, y_train, x_val, y_val = load_digits(seed)
        model = seed_model(
            loss() if callable(loss) else loss, optimizer() if callable(optimizer) else optimizer, seed=seed
        )
        history = model.fit(
            x_train.astype(dtype),
            y_train,
            epochs=epochs,
            validation_data=(x_val.astype(dtype), y_val),
            verbose=0,
        )
    finally:
        keras.config.set_floatx(previous)
        keras.config.set_dtype_policy(policy)
    return history.history


def lossbridge_objects() -> tuple[Any, Any]:
    """The two strings of the seed, as lossbridge objects reproducing Keras."""
    loss = lossbridge.get("sparse_categorical_crossentropy", backend="tensorflow", convention="keras")
    adam = lossbridge.get("adam", backend="tensorflow", convention="keras")
    return loss, adam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--float64", action="store_true", help="train in float64 (keras floatx)")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    dtype = "float64" if args.float64 else "float32"
    ours = train(
        lambda: lossbridge_objects()[0], lambda: lossbridge_objects()[1], epochs=args.epochs, dtype=dtype
    )
    native = train("sparse_categorical_crossentropy", "adam", epochs=args.epochs, dtype=dtype)
    print(
        f"{'epoch':>5} {'loss (lossbridge)':>18} {'loss (keras)':>14} "
        f"{'val_acc (lb)':>12} {'val_acc (keras)':>15}"
    )
    for e in range(args.epochs):
        print(
            f"{e + 1:>5} {ours['loss'][e]:>18.10f} {native['loss'][e]:>14.10f} "
            f"{ours['val_accuracy'][e]:>12.4f} {native['val_accuracy'][e]:>15.4f}"
        )
    pairs = [(a, b) for k in ("loss", "val_loss") for a, b in zip(ours[k], native[k], strict=True)]
    worst = max(abs(a - b) / abs(b) for a, b in pairs)
    print(
        f"final validation accuracy: {ours['val_accuracy'][-1]:.4f} (lossbridge), "
        f"{native['val_accuracy'][-1]:.4f} (keras strings); largest relative loss difference {worst:.3g}"
    )


if __name__ == "__main__":
    main()
