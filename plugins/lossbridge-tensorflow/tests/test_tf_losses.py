"""Keras-loss behaviours of the TensorFlow backend: calling, reductions, weights, config, saving, fit.

Expected numbers come from float64 NumPy formulas written here or from keras.losses itself.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from lossbridge_tensorflow import KerasLoss

import lossbridge

RNG = np.random.default_rng(0)
Y_TRUE = RNG.normal(size=(6, 4))
Y_PRED = RNG.normal(size=(6, 4))
WEIGHT = RNG.uniform(0.1, 2.0, size=6)
PER_SAMPLE = ((Y_PRED - Y_TRUE) ** 2).mean(axis=-1)  # Keras's mean over the last axis


def keras_mse(**kwargs: object) -> KerasLoss:
    return lossbridge.get("mse", backend="tensorflow", convention="keras", **{"dtype": "float64", **kwargs})


def test_get_returns_a_keras_loss() -> None:
    loss = keras_mse()
    assert isinstance(loss, keras.losses.Loss)
    assert loss.reduction == "sum_over_batch_size"
    assert lossbridge.get("mse", backend="keras").spec.name == "mse"


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("sum_over_batch_size", (PER_SAMPLE * WEIGHT).sum() / 6),
        ("mean", (PER_SAMPLE * WEIGHT).sum() / 6),
        ("mean_with_sample_weight", (PER_SAMPLE * WEIGHT).sum() / WEIGHT.sum()),
        ("sum", (PER_SAMPLE * WEIGHT).sum()),
        ("none", PER_SAMPLE * WEIGHT),
        (None, PER_SAMPLE * WEIGHT),
    ],
)
def test_keras_reduction_names_weighted(reduction: str | None, expected: np.ndarray) -> None:
    loss = KerasLoss("mse", convention="keras", reduction=reduction, dtype="float64")
    got = loss(tf.constant(Y_TRUE), tf.constant(Y_PRED), sample_weight=tf.constant(WEIGHT))
    assert got.dtype == tf.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_unweighted_zero_weighted_and_numpy_inputs() -> None:
    loss = keras_mse()
    np.testing.assert_allclose(loss(Y_TRUE, Y_PRED).numpy(), PER_SAMPLE.mean(), rtol=1e-12)
    assert float(loss(Y_TRUE, Y_PRED, sample_weight=np.zeros(6))) == 0.0
    # Keras passes sample_weight positionally from model.compile
    np.testing.assert_allclose(loss(Y_TRUE, Y_PRED, WEIGHT).numpy(), (PER_SAMPLE * WEIGHT).mean(), rtol=1e-12)


def test_lossbridge_reduction_names_map_to_keras_names() -> None:
    assert lossbridge.get("mse", backend="tensorflow", convention="keras", reduction="sum").reduction == "sum"
    # lossbridge's own default normalizes a weighted mean by the weights
    own = lossbridge.get("mse", backend="tensorflow")
    assert own.reduction == "mean_with_sample_weight"
    expected = ((Y_PRED - Y_TRUE) ** 2 * WEIGHT[:, None]).sum() / (WEIGHT.sum() * 4)
    np.testing.assert_allclose(own(Y_TRUE, Y_PRED, sample_weight=WEIGHT).numpy(), expected, rtol=1e-12)


def test_bad_reduction_and_shapes_name_the_argument() -> None:
    with pytest.raises(lossbridge.ParameterError, match=r"reduction.*'sum_over_batch_size'.*got 'avg'"):
        KerasLoss("mse", convention="keras", reduction="avg")
    with pytest.raises(lossbridge.InputError, match=r"sample_weight: expected shape \(6,\)"):
        keras_mse()(Y_TRUE, Y_PRED, sample_weight=np.ones(5))
    with pytest.raises(lossbridge.InputError, match=r"y_true.*\(6, 4\).*\(6, 3\)"):
        keras_mse()(Y_TRUE[:, :3], Y_PRED)


def test_mixed_frameworks_raise() -> None:
    import array_api_strict  # a test dependency, so this runs in the tensorflow-only environment

    with pytest.raises(lossbridge.InputError, match=r"y_true: expected a tf.Tensor.*array_api_strict"):
        keras_mse()(array_api_strict.asarray(Y_TRUE), tf.constant(Y_PRED))


def test_low_precision_computes_in_float32() -> None:
    loss = lossbridge.get("mse", backend="tensorflow", convention="keras")  # Keras's loss dtype: float32
    y_pred = tf.Variable(tf.constant(Y_PRED, dtype=tf.float16))
    with tf.GradientTape() as tape:
        value = loss(tf.constant(Y_TRUE, dtype=tf.float16), y_pred)
    grad = tape.gradient(value, y_pred)
    assert value.dtype == tf.float32 and grad.dtype == tf.float16
    np.testing.assert_allclose(value.numpy(), PER_SAMPLE.mean(), rtol=2e-3)


def test_config_round_trip() -> None:
    loss = KerasLoss("mse", convention="keras", reduction="sum", name="my_mse")
    config = loss.get_config()
    assert config["spec"] == "mse" and config["convention"] == "keras" and config["reduction"] == "sum"
    again = KerasLoss.from_config(config)
    assert again.name == "my_mse" and again.reduction == "sum"
    assert again.get_config() == config
    np.testing.assert_allclose(again(Y_TRUE, Y_PRED).numpy(), loss(Y_TRUE, Y_PRED).numpy(), rtol=0)
    rebuilt = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(rebuilt, KerasLoss) and rebuilt.get_config() == config


def test_graph_and_xla() -> None:
    """Inside a user's own tf.function (AutoGraph converts the caller) and under XLA."""
    loss = keras_mse()
    expected = PER_SAMPLE.mean()
    for jit in (False, True):

        @tf.function(jit_compile=jit)
        def step(a: tf.Tensor, b: tf.Tensor, w: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return loss(a, b), loss(a, b, sample_weight=w)

        value, weighted = step(tf.constant(Y_TRUE), tf.constant(Y_PRED), tf.constant(WEIGHT))
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12)
        np.testing.assert_allclose(weighted.numpy(), (PER_SAMPLE * WEIGHT).mean(), rtol=1e-12)


def _regression_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    return model


def test_fit_with_sample_weights_save_and_reload(tmp_path: Path) -> None:
    x = RNG.normal(size=(64, 3)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.1).astype("float32")  # shape (64,), output (64, 1)
    weight = RNG.uniform(0.5, 1.5, size=64).astype("float32")
    model = _regression_model()
    loss = keras_mse()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss)
    history = model.fit(x, y, sample_weight=weight, epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # evaluate's weighted loss equals the NumPy formula on the trained model's predictions
    pred = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    expected = ((pred - y) ** 2 * weight).sum() / 64
    got = model.evaluate(x, y, sample_weight=weight, batch_size=64, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, KerasLoss) and loaded.loss.get_config() == loss.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0)
    np.testing.assert_allclose(
        loaded.evaluate(x, y, sample_weight=weight, batch_size=64, verbose=0), got, rtol=1e-6
    )


def test_ctc_takes_keras_two_array_call_and_round_trips() -> None:
    """``CTC()(y_true, y_pred)`` (lengths derived from non-zero labels), ``call``, and the config round trip."""
    logits = (np.arange(24).reshape((2, 4, 3)).astype("float32") - 12) / 100
    y_true = np.array([[1, 2, 1, 0], [1, 2, 0, 2]])
    loss = lossbridge.get("CTC", backend="tensorflow", convention="keras")
    expected = keras.losses.CTC()(y_true, logits)
    np.testing.assert_allclose(float(loss(y_true, logits)), float(expected), rtol=1e-5)
    np.testing.assert_allclose(loss.call(tf.constant(y_true), tf.constant(logits)).numpy(),
                               keras.losses.CTC(reduction=None)(y_true, logits).numpy(), rtol=1e-5)
    again = type(loss).from_config(loss.get_config())
    np.testing.assert_allclose(float(again(y_true, logits)), float(expected), rtol=1e-5)
    # the spec's own four arrays are still taken (unambiguous: integer labels, (N, T) paddings)
    paddings = (np.arange(4)[None] >= (y_true != 0).sum(axis=1)[:, None]).astype("float32")  # Keras's lengths
    np.testing.assert_allclose(float(loss(y_true, logits, paddings, np.zeros((2, 4), "float32"))),
                               float(expected), rtol=1e-5)
