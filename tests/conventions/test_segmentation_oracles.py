"""Dice / Tversky under the Keras and Optax conventions against the real frameworks in float64."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge

KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": None}


def _close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=1e-10, atol=1e-13)


def _data(shape: tuple[int, ...] = (3, 4, 5, 3)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    y = np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]
    return y, rng.uniform(0.01, 0.99, size=shape), 2.0 * rng.normal(size=shape)


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


# (keras class, keras kwargs, lossbridge name, lossbridge kwargs); Keras's Tversky alpha weights the
# false negatives (lossbridge's beta): the keras convention's kwargs swap them, so the native
# keyword values are passed unchanged, as a Keras user writes them.
_KERAS = {
    "dice": ("Dice", {}, "Dice", {}),
    "dice-axis": ("Dice", {"axis": (1, 2)}, "Dice", {"axis": (1, 2)}),
    "tversky": ("Tversky", {"alpha": 0.2, "beta": 0.7, "axis": (1, 2, 3)}, "Tversky",
                {"alpha": 0.2, "beta": 0.7, "axis": (1, 2, 3)}),
    "tversky-all": ("Tversky", {"alpha": 0.6, "beta": 0.3}, "Tversky", {"alpha": 0.6, "beta": 0.3}),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", sorted(_KERAS))
def test_keras_dice_and_tversky_values_and_gradients(keras: Any, case: str, reduction: str) -> None:
    import tensorflow as tf

    cls, native_kw, name, ours = _KERAS[case]
    y, p, _ = _data()
    native = getattr(keras.losses, cls)(reduction=KERAS_REDUCTION[reduction], dtype="float64", **native_kw)
    tp = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(native(y, tp))
    loss = lossbridge.get(name, convention="keras", reduction=reduction, dtype="float64", **ours)
    _close(loss(y, p), keras.ops.convert_to_numpy(native(y, p)))
    summed = loss if reduction != "none" else lossbridge.get(
        name, convention="keras", reduction="sum", dtype="float64", **ours
    )
    _close(summed.grad(y, p), tape.gradient(value, tp).numpy())


def test_keras_dice_with_sample_weight_per_sample_axes(keras: Any) -> None:
    y, p, _ = _data()
    w = np.linspace(0.2, 1.7, 3)
    native = keras.losses.Dice(axis=(1, 2, 3), dtype="float64")
    loss = lossbridge.get("Dice", convention="keras", axis=(1, 2, 3), dtype="float64")
    _close(loss(y, p, sample_weight=w), keras.ops.convert_to_numpy(native(y, p, sample_weight=w)))


def test_keras_functional_names_resolve(keras: Any) -> None:
    y, p, _ = _data()
    _close(lossbridge.get("dice", convention="keras", reduction="none", dtype="float64")(y, p),
           keras.ops.convert_to_numpy(keras.losses.dice(y, p)))
    _close(lossbridge.get("tversky", convention="keras", reduction="none", dtype="float64")(y, p),
           keras.ops.convert_to_numpy(keras.losses.tversky(y, p)))


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _optax_cases(optax: Any) -> dict[str, tuple[Any, str, dict[str, Any], bool]]:
    ol = optax.losses
    w = np.array([0.5, 1.0, 2.0])
    return {
        "dice_loss": (lambda x, y: ol.dice_loss(x, y), "dice_loss", {}, False),
        "dice_loss-tversky-weights": (
            lambda x, y: ol.dice_loss(x, y, alpha=0.3, beta=0.8, smooth=0.5, class_weights=w, ignore_background=True),
            "dice_loss", {"alpha": 0.3, "beta": 0.8, "smooth": 0.5, "class_weights": w, "ignore_background": True},
            False,
        ),
        "dice_loss-class-sum": (lambda x, y: ol.dice_loss(x, y, reduction="sum", axis=(1,)), "dice_loss",
                                {"class_reduction": "sum", "axis": (1,)}, False),
        "dice_loss-probabilities": (lambda x, y: ol.dice_loss(x, y, apply_softmax=False), "dice_loss",
                                    {"apply_softmax": False}, True),
        "binary_dice_loss": (lambda x, y: ol.binary_dice_loss(x[..., 0], y[..., 0]), "binary_dice_loss", {}, False),
        "multiclass_generalized_dice_loss": (
            lambda x, y: ol.multiclass_generalized_dice_loss(x, y), "multiclass_generalized_dice_loss", {}, False
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["dice_loss", "dice_loss-tversky-weights", "dice_loss-class-sum", "dice_loss-probabilities",
     "binary_dice_loss", "multiclass_generalized_dice_loss"],
)
def test_optax_dice_values_and_gradients(optax: Any, case: str) -> None:
    import jax
    import jax.numpy as jnp

    fn, name, ours, probabilities = _optax_cases(optax)[case]
    y, p, x = _data()
    if probabilities:
        x = p / p.sum(axis=-1, keepdims=True)
    if name == "binary_dice_loss":
        y, x = y[..., :1], x[..., :1]
        y_in, x_in = y[..., 0], x[..., 0]
    else:
        y_in, x_in = y, x
    expected = np.asarray(fn(jnp.asarray(x), jnp.asarray(y)))
    loss = lossbridge.get(name, convention="optax", **ours)
    _close(loss(y_in, x_in), expected)
    auto = jax.grad(lambda z: jnp.sum(fn(z, jnp.asarray(y))))(jnp.asarray(x))
    scalar = name == "multiclass_generalized_dice_loss"  # optax returns the mean itself
    summed = lossbridge.get(name, convention="optax", **({**ours} if scalar else {**ours, "reduction": "sum"}))
    grad = summed.grad(y_in, x_in)
    _close(grad, np.asarray(auto)[..., 0] if name == "binary_dice_loss" else np.asarray(auto))


def test_optax_dice_probabilities_must_sum_to_one_over_classes(optax: Any) -> None:
    """Optax's dice_loss with apply_softmax=False raises ValueError unless rows sum to 1; so does ours."""
    import jax.numpy as jnp

    y, p, _ = _data()
    rows = p / p.sum(axis=-1, keepdims=True)
    loss = lossbridge.get("dice_loss", convention="optax", apply_softmax=False)
    _close(loss(y, rows), np.asarray(optax.losses.dice_loss(jnp.asarray(rows), jnp.asarray(y), apply_softmax=False)))
    bad = rows * 1.5
    with pytest.raises(ValueError, match="valid probability distributions"):
        optax.losses.dice_loss(jnp.asarray(bad), jnp.asarray(y), apply_softmax=False)
    with pytest.raises(ValueError, match="valid probability distributions"):
        loss(y, bad)
