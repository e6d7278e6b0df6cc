"""Regression losses under each framework's convention against the REAL framework, in float64.

lossbridge runs on the NumPy backend, called by the framework's own name and keyword arguments;
the expected values and input gradients come from torch.nn (autograd), keras.losses
(tf.GradientTape) and optax.losses (jax.grad). Points are random, plus the kinks: zero residuals,
residuals of exactly +-delta, predictions exactly on Keras's clip floor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

REDUCTIONS = ("mean", "sum", "none")
KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def _close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=1e-10, atol=1e-13)


def _positive_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(6)
    y, f = np.exp(rng.normal(size=(2, 5, 4)))
    y[0, 0] = 0.0
    f[0, 1] = float(np.float32(1e-7))  # exactly on Keras's floor (float32 1e-7): the gradient passes
    f[0, 2] = 1e-7  # below it in float64: the gradient is 0
    f[0, 3] = y[0, 3]
    return y, f


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


_TORCH_CASES = {
    "L1Loss": {},
    "MSELoss": {},
    "HuberLoss": {"delta": 0.75},
    "SmoothL1Loss": {"beta": 0.5},
    "SmoothL1Loss-beta0": {"beta": 0.0},
    "SmoothL1Loss-beta1": {},
}


def _torch_kink_points(kwargs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    delta = kwargs.get("delta", kwargs.get("beta", 1.0))
    y = np.round(np.random.default_rng(5).normal(size=(5, 4)), 3)  # few bits, so y +- delta is exact
    f = np.round(np.random.default_rng(8).normal(size=(5, 4)), 3)
    f[0, :2] = y[0, :2]
    f[1, 0], f[1, 1] = y[1, 0] + delta, y[1, 1] - delta
    return y, f


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(_TORCH_CASES))
def test_torch_regression_losses_match_torch_nn_values_and_gradients(torch: Any, case: str, reduction: str) -> None:
    name, kwargs = case.split("-")[0], _TORCH_CASES[case]
    y, f = _torch_kink_points(kwargs)
    tf_ = torch.tensor(f, requires_grad=True)
    native = getattr(torch.nn, name)(reduction=reduction, **kwargs)(tf_, torch.tensor(y))
    (expected_grad,) = torch.autograd.grad(native.sum(), tf_)
    ours = lossbridge.get(name, convention="torch", reduction=reduction, **kwargs)
    value, grad = ours.value_and_grad(y, f)
    _close(value, native.detach().numpy())
    _close(grad, expected_grad.numpy())


def test_torch_functional_names_resolve_to_the_same_losses(torch: Any) -> None:
    y, f = _torch_kink_points({"beta": 0.5})
    for fn, kwargs in (("smooth_l1_loss", {"beta": 0.5}), ("huber_loss", {"delta": 0.5}), ("l1_loss", {}),
                       ("mse_loss", {})):
        expected = getattr(torch.nn.functional, fn)(torch.tensor(f), torch.tensor(y), **kwargs)
        _close(lossbridge.get(fn, convention="torch", **kwargs)(y, f), expected.numpy())


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Any:
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


_KERAS_CASES = {
    "MeanSquaredError": {},
    "MeanAbsoluteError": {},
    "MeanAbsolutePercentageError": {},
    "MeanSquaredLogarithmicError": {},
    "Huber": {"delta": 0.75},
    "LogCosh": {},
}


def _keras_value_and_grad(keras: Any, loss: Any, y: np.ndarray, f: np.ndarray, w: np.ndarray | None) -> Any:
    import tensorflow as tf

    var = tf.Variable(f)
    with tf.GradientTape() as tape:
        value = loss(tf.constant(y), var, sample_weight=None if w is None else tf.constant(w))
        total = tf.reduce_sum(value)
    return value.numpy(), tape.gradient(total, var).numpy()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(_KERAS_CASES))
def test_keras_regression_losses_match_keras_values_and_gradients(
    keras: Any, name: str, reduction: str, weighted: bool
) -> None:
    kwargs = _KERAS_CASES[name]
    positive = name in ("MeanSquaredLogarithmicError", "MeanAbsolutePercentageError")
    y, f = _positive_points() if positive else _torch_kink_points({"delta": kwargs.get("delta", 1.0)})
    if name == "MeanAbsolutePercentageError":
        y[0, 1], f[0, 1] = -y[0, 1], 0.3  # a negative target
    w = np.linspace(0.0, 2.0, y.shape[0]) if weighted else None
    native = getattr(keras.losses, name)(reduction=KERAS_REDUCTION[reduction], dtype="float64", **kwargs)
    expected, expected_grad = _keras_value_and_grad(keras, native, y, f, w)
    ours = lossbridge.get(name, convention="keras", reduction=reduction, dtype="float64", **kwargs)
    value, grad = ours.value_and_grad(y, f, sample_weight=w)
    _close(value, expected)
    _close(grad, expected_grad)


@pytest.mark.parametrize("name", ["mse", "mae", "mape", "msle", "mean_squared_error", "log_cosh", "huber"])
def test_keras_function_names_match_the_keras_functions(keras: Any, name: str) -> None:
    y, f = _positive_points()
    fn = keras.losses.get(name)
    expected = np.asarray(fn(y, f))  # per sample, in the inputs' float64
    _close(lossbridge.get(name, convention="keras", reduction="none", dtype="float64")(y, f), expected)


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jax() -> Any:
    jax = pytest.importorskip("jax")
    pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)
    return jax


_OPTAX_CASES = {
    "squared_error": {},
    "l2_loss": {},
    "huber_loss": {"delta": 0.75},
    "log_cosh": {},
}


@pytest.mark.parametrize("name", sorted(_OPTAX_CASES))
def test_optax_regression_losses_match_optax_values_and_gradients(jax: Any, name: str) -> None:
    import optax

    kwargs = _OPTAX_CASES[name]
    y, f = _torch_kink_points({"delta": kwargs.get("delta", 1.0)})
    fn = getattr(optax.losses, name)
    expected = fn(jax.numpy.asarray(f), jax.numpy.asarray(y), **kwargs)
    expected_grad = jax.grad(lambda p: fn(p, jax.numpy.asarray(y), **kwargs).sum())(jax.numpy.asarray(f))
    ours = lossbridge.get(name, convention="optax", **kwargs)
    value, grad = ours.value_and_grad(y, f)
    _close(value, np.asarray(expected))
    _close(grad, np.asarray(expected_grad))
