"""The seed example in JAX: Dense(64, relu) -> Dense(10) trained with lossbridge's loss and Adam.

A JAX user's loop: a pure ``forward`` over a dict of parameters, the lossbridge loss function and
the lossbridge Optax transformation inside one ``jax.jit``-compiled step.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lossbridge
from lossbridge.demo import DigitsData, TrainingResult

__all__ = ["forward", "train_digits"]


def forward(params: dict[str, Any], x: Any) -> Any:
    """Logits of the two-layer network: ``relu(x @ w1 + b1) @ w2 + b2``."""
    hidden = jax.nn.relu(x @ params["w1"] + params["b1"])
    return hidden @ params["w2"] + params["b2"]


def train_digits(data: DigitsData) -> TrainingResult:
    """Train from ``data.init`` over ``data``'s mini-batches; mean loss per epoch, val accuracy."""
    loss_fn = lossbridge.get("sparse_categorical_crossentropy", backend="jax", from_logits=True)
    tx = lossbridge.get("adam", backend="jax", lr=data.lr)

    def objective(params: dict[str, Any], x: Any, y: Any) -> Any:
        return loss_fn(forward(params, x), y)

    @jax.jit
    def step(params: dict[str, Any], state: Any, x: Any, y: Any) -> tuple[Any, Any, Any]:
        value, grads = jax.value_and_grad(objective)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    params = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in data.init.items()}
    state = tx.init(params)
    x_train, y_train = data.x_train, data.y_train.astype(np.int32)
    result = TrainingResult("jax")
    start = time.perf_counter()
    for epoch in range(data.epochs):
        values = []
        for idx in data.batches(epoch):
            params, state, value = step(params, state, x_train[idx], y_train[idx])
            values.append(value)
        result.train_loss.append(float(np.mean(np.asarray(jax.device_get(values)))))
    result.seconds = time.perf_counter() - start
    logits = forward(params, jnp.asarray(data.x_val))
    result.val_accuracy = float(np.mean(np.asarray(jnp.argmax(logits, axis=1)) == data.y_val))
    return result
