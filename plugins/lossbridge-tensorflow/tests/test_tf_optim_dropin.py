"""Drop-in fidelity of the Keras optimizers: LossScaleOptimizer, saving without custom_objects."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

import lossbridge  # noqa: E402


def _opt(**kw):
    return lossbridge.get("Adam", backend="tensorflow", convention="keras", **kw)


def test_keras_loss_scale_optimizer_wraps_ours():
    opt = keras.optimizers.LossScaleOptimizer(_opt(learning_rate=0.01))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=opt, loss="mse")
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 1), "float32")
    before = model.get_weights()[0].copy()
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.allclose(model.get_weights()[0], before)


def test_keras_model_with_our_optimizer_saves_and_reloads(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=_opt(learning_rate=0.01), loss="mse")
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer).__name__ == type(model.optimizer).__name__
    loaded.fit(x, y, epochs=1, verbose=0)
