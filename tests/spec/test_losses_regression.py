"""Regression losses (mse, mae, huber) against scikit-learn and float64 NumPy textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

import lossbridge
from lossbridge import InputError, ParameterError

RNG = np.random.default_rng(11)
Y, YHAT = RNG.normal(size=(2, 8, 3))
W = RNG.uniform(0.0, 2.0, size=8)


def _huber_textbook(y: np.ndarray, yhat: np.ndarray, delta: float) -> np.ndarray:
    e = yhat - y
    return np.where(np.abs(e) <= delta, 0.5 * e**2, delta * (np.abs(e) - 0.5 * delta))


@pytest.mark.parametrize(("name", "metric"), [("mse", mean_squared_error), ("mae", mean_absolute_error)])
def test_mean_matches_sklearn_with_and_without_sample_weight(name: str, metric: object) -> None:
    loss = lossbridge.get(name)
    np.testing.assert_allclose(loss(Y, YHAT), metric(Y, YHAT), rtol=1e-12)
    np.testing.assert_allclose(loss(Y, YHAT, sample_weight=W), metric(Y, YHAT, sample_weight=W), rtol=1e-12)
    np.testing.assert_allclose(
        loss(Y[:, 0], YHAT[:, 0], sample_weight=W), metric(Y[:, 0], YHAT[:, 0], sample_weight=W)
    )


@pytest.mark.parametrize(
    ("name", "params", "textbook"),
    [
        ("mse", {}, lambda y, f: (f - y) ** 2),
        ("mae", {}, lambda y, f: np.abs(f - y)),
        ("huber", {}, lambda y, f: _huber_textbook(y, f, 1.0)),
        ("huber", {"delta": 0.3}, lambda y, f: _huber_textbook(y, f, 0.3)),
        ("huber", {"delta": 5.0}, lambda y, f: _huber_textbook(y, f, 5.0)),
    ],
)
def test_each_reduction_matches_the_textbook_formula(name: str, params: dict, textbook: object) -> None:
    per_element = textbook(Y, YHAT)
    weighted = per_element * W[:, None]
    expected = {"none": weighted, "sum": weighted.sum(), "mean": weighted.sum() / (W.sum() * Y.shape[1])}
    for reduction, value in expected.items():
        got = lossbridge.get(name, reduction=reduction, **params)(Y, YHAT, sample_weight=W)
        np.testing.assert_allclose(got, value, rtol=1e-12)


def test_keras_convention_averages_the_last_axis_then_divides_by_the_batch_size() -> None:
    per_sample = ((YHAT - Y) ** 2).mean(axis=-1)
    got = lossbridge.get("mse", convention="keras")(Y, YHAT, sample_weight=W)
    np.testing.assert_allclose(got, (per_sample * W).sum() / len(W), rtol=1e-12)


def test_huber_is_quadratic_inside_and_linear_outside_delta() -> None:
    loss = lossbridge.get("huber", delta=2.0, reduction="none")
    y = np.zeros(4)
    np.testing.assert_allclose(loss(y, np.array([0.5, -2.0, 3.0, -10.0])), [0.125, 2.0, 4.0, 18.0])
    np.testing.assert_allclose(loss.grad(y, np.array([0.5, -2.0, 3.0, -10.0])), [0.5, -2.0, 2.0, -2.0])


def test_zero_weights_give_a_zero_sum() -> None:
    assert float(lossbridge.get("mae", reduction="sum")(Y, YHAT, sample_weight=np.zeros(8))) == 0.0


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(
        InputError, match=r"y_true: expected shape \(8, 3\) \(the shape of y_pred\), got \(8, 2\)"
    ):
        lossbridge.get("mae")(Y[:, :2], YHAT)


def test_integer_predictions_are_refused() -> None:
    with pytest.raises(InputError, match="y_pred: expected a floating-point array, got dtype int64"):
        lossbridge.get("huber")(Y, np.ones((8, 3), dtype=np.int64))


def test_empty_batch_is_refused() -> None:
    with pytest.raises(InputError, match=r"y_pred: expected a non-empty batch, got shape \(0, 3\)"):
        lossbridge.get("mse")(np.zeros((0, 3)), np.zeros((0, 3)))


def test_sample_weight_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(
        InputError, match=r"sample_weight: expected shape \(8, 3\) or a leading part of it, got \(3,\)"
    ):
        lossbridge.get("mse")(Y, YHAT, sample_weight=np.ones(3))


@pytest.mark.parametrize("delta", [0.0, -1.0, "1"])
def test_invalid_delta_is_refused_with_its_range(delta: object) -> None:
    with pytest.raises(ParameterError, match=r"huber: parameter 'delta' expects float in \(0, inf\), got"):
        lossbridge.get("huber", delta=delta)
