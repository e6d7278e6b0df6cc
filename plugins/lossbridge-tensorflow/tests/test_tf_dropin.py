"""Drop-in fidelity regressions: each cause found by running Keras's own loss suite on lossbridge.

See ``tests/compat/test_keras_losses_suite.py`` for the suite itself.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


def _get(spec, /, **kw):
    return lossbridge.get(spec, backend="tensorflow", convention="keras", **kw)


def test_keras_sample_weight_n1_on_a_summing_loss(keras):
    """KLDivergence sums over the last axis: a (N, 1) sample_weight weights its N values."""
    y_true = np.asarray([[0.5, 0.8, 0.12], [0.7, 0.43, 0.8]], dtype="float32")
    y_pred = np.asarray([[0.4, 0.9, 0.12], [0.36, 0.3, 0.4]], dtype="float32")
    w = np.asarray([[1.2], [3.4]], dtype="float32")
    ours = float(_get("KLDivergence")(y_true, y_pred, sample_weight=w))
    native = float(keras.losses.KLDivergence()(y_true, y_pred, sample_weight=w))
    assert ours == pytest.approx(native, rel=1e-5)


def test_keras_out_of_range_values_computed_as_keras_does(keras):
    """Keras checks no value ranges: MSLE clips negative targets, Dice takes any label values."""
    y_true = np.array([[1, 9, 2], [-5, -2, 6]])
    y_pred = np.array([[4, 8, 12], [8, 1, 3]], dtype="float32")
    for name in ("MeanSquaredLogarithmicError", "Dice"):
        ours = float(_get(name)(y_true, y_pred))
        native = float(getattr(keras.losses, name)()(y_true, y_pred))
        assert ours == pytest.approx(native, rel=1e-5), name


def test_keras_reduction_error_is_keras_message(keras):
    with pytest.raises(ValueError, match="Invalid value for argument `reduction`"):
        _get("Hinge", reduction="abc")


def test_keras_axis_keyword(keras):
    """Keras's cross-entropies take axis=-1; any other axis is TF-Keras's error."""
    assert _get("BinaryCrossentropy", axis=-1) is not None
    with pytest.raises(ValueError, match=r"Only axis=-1 is currently supported\. Received: axis=0"):
        _get("SparseCategoricalCrossentropy", axis=0)


def test_keras_get_config_has_keras_keys(keras):
    """get_config holds Keras's keys (plus changed parameters under Keras's names); from_config rebuilds."""
    loss = _get("Huber", reduction="sum", name="huber")
    assert loss.get_config() == keras.losses.Huber(reduction="sum", name="huber").get_config()
    assert type(loss).__name__ == "Huber"
    changed = _get("Huber", delta=2.0)
    assert changed.get_config()["delta"] == 2.0
    revived = type(changed).from_config(changed.get_config())
    assert revived.bound.params == changed.bound.params
    tversky = _get("Tversky", alpha=0.2, beta=0.8, name="t")
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tversky))
    assert again.get_config() == tversky.get_config() and again.bound.params == tversky.bound.params


def test_keras_model_saves_and_reloads_without_custom_objects(keras, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=_get("CategoricalCrossentropy", from_logits=True, label_smoothing=0.1))
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(8) % 3]
    before = float(model.evaluate(x, y, verbose=0))
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.loss).__name__ == "CategoricalCrossentropy"
    assert reloaded.loss.bound.params == model.loss.bound.params
    assert float(reloaded.evaluate(x, y, verbose=0)) == pytest.approx(before, rel=1e-6)


def test_keras_mixed_float16_policy(keras):
    """Under mixed_float16 a Keras loss computes in float32 (the loss dtype is floatx); so does ours."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        y_true = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float16")
        y_pred = np.array([[0.3, 0.7], [0.6, 0.4]], dtype="float16")
        ours = _get("MeanSquaredError")(y_true, y_pred)
        native = keras.losses.MeanSquaredError()(y_true, y_pred)
        assert ours.dtype == native.dtype
        assert float(ours) == pytest.approx(float(native), rel=1e-3)
    finally:
        keras.config.set_dtype_policy(previous)
