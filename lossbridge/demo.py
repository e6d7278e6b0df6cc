"""The seed's example: Dense(64, relu) -> Dense(10) on scikit-learn's bundled digits.

Every backend trains the same network from the same initial weights over the same mini-batches
with lossbridge's ``sparse_categorical_crossentropy`` and ``adam``, so their loss curves can be
compared directly. This module is framework-free; it needs scikit-learn only for the data
(``pip install lossbridge[demo]``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DigitsData", "TrainingResult", "load_digits_data", "train_digits_numpy"]


@dataclass(frozen=True)
class DigitsData:
    """Train/validation split, initial weights and batch order shared by every backend."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    init: dict[str, np.ndarray]
    batch_order: list[np.ndarray]
    batch_size: int = 32
    epochs: int = 10
    lr: float = 1e-3

    def batches(self, epoch: int) -> list[np.ndarray]:
        """Index arrays of the mini-batches of ``epoch``, in order."""
        order, bs = self.batch_order[epoch], self.batch_size
        return [order[k : k + bs] for k in range(0, len(order), bs)]


@dataclass
class TrainingResult:
    """What one backend's training run produced."""

    backend: str
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: float = 0.0
    seconds: float = 0.0


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def load_digits_data(*, seed: int = 0, epochs: int = 10, batch_size: int = 32, val_fraction: float = 0.2) -> DigitsData:
    """The digits data (1797 8x8 images, scaled to [0, 1]) split, with weights and batch order."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    n_val = round(len(x) * val_fraction)
    val, train = perm[:n_val], perm[n_val:]
    init = {
        "w1": _glorot(rng, 64, 64),
        "b1": np.zeros(64, np.float32),
        "w2": _glorot(rng, 64, 10),
        "b2": np.zeros(10, np.float32),
    }
    order = [rng.permutation(len(train)) for _ in range(epochs)]
    return DigitsData(
        x_train=(x[train] / 16.0).astype(np.float32),
        y_train=y[train].astype(np.int64),
        x_val=(x[val] / 16.0).astype(np.float32),
        y_val=y[val].astype(np.int64),
        init=init,
        batch_order=order,
        batch_size=batch_size,
        epochs=epochs,
    )


def _forward(p: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hidden = np.maximum(x @ p["w1"] + p["b1"], 0.0)
    return hidden, hidden @ p["w2"] + p["b2"]


def train_digits_numpy(data: DigitsData) -> TrainingResult:
    """Train with the NumPy backend: lossbridge's analytic loss gradient, backprop by hand."""
    import lossbridge

    loss = lossbridge.get("sparse_categorical_crossentropy", backend="numpy", from_logits=True)
    adam = lossbridge.get("adam", backend="numpy", lr=data.lr)
    params = {k: v.copy() for k, v in data.init.items()}
    result = TrainingResult("numpy")
    start = time.perf_counter()
    for epoch in range(data.epochs):
        losses = []
        for idx in data.batches(epoch):
            x, y = data.x_train[idx], data.y_train[idx]
            hidden, logits = _forward(params, x)
            value, d_logits = loss.value_and_grad(y, logits)
            d_hidden = (d_logits @ params["w2"].T) * (hidden > 0)
            grads = {
                "w1": x.T @ d_hidden,
                "b1": d_hidden.sum(axis=0),
                "w2": hidden.T @ d_logits,
                "b2": d_logits.sum(axis=0),
            }
            adam.step(params, grads)
            losses.append(float(value))
        result.train_loss.append(float(np.mean(losses)))
    result.seconds = time.perf_counter() - start
    _, logits = _forward(params, data.x_val)
    result.val_accuracy = float(np.mean(np.argmax(logits, axis=1) == data.y_val))
    return result
