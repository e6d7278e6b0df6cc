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
    got = lossbridge.get("mse", convention="keras", dtype="float64")(Y, YHAT, sample_weight=W)
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
        InputError,
        match=r"y_true: expected shape \(8, 3\) \(y_true and y_pred must have the same shape.*\), got \(8, 2\)",
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


@pytest.mark.parametrize("delta", [-1.0, "1"])
def test_invalid_delta_is_refused_with_its_range(delta: object) -> None:
    with pytest.raises(ParameterError, match=r"huber: parameter .delta. expects float in \[0, inf\), got"):
        lossbridge.get("huber", delta=delta)


# -- scale, smooth L1, log-cosh, percentage and logarithmic errors ----------------------------------
def _central_differences(loss: object, y: np.ndarray, f: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(f)
    for idx in np.ndindex(f.shape):
        step = np.zeros_like(f)
        step[idx] = h
        grad[idx] = (float(loss(y, f + step)) - float(loss(y, f - step))) / (2 * h)
    return grad


def _smooth_l1_textbook(y: np.ndarray, f: np.ndarray, beta: float) -> np.ndarray:
    a = np.abs(f - y)  # Girshick (2015), with beta: 0.5 x^2 / beta if |x| < beta else |x| - beta / 2
    return a if beta == 0 else np.where(a < beta, 0.5 * a**2 / beta, a - 0.5 * beta)


_TEXTBOOK = [
    ("mse", {"scale": 0.5}, lambda y, f: 0.5 * (f - y) ** 2),
    ("huber", {"delta": 0.4, "smooth_l1": True}, lambda y, f: _smooth_l1_textbook(y, f, 0.4)),
    ("huber", {"delta": 0.0, "smooth_l1": True}, lambda y, f: np.abs(f - y)),
    ("log_cosh", {}, lambda y, f: np.log(np.cosh(f - y))),
    ("mape", {}, lambda y, f: 100.0 * np.abs(f - y) / np.maximum(np.abs(y), 1e-7)),
    ("mape", {"scale": 1.0, "eps": 0.5}, lambda y, f: np.abs(f - y) / np.maximum(np.abs(y), 0.5)),
]


@pytest.mark.parametrize(("name", "params", "textbook"), _TEXTBOOK)
def test_new_regression_losses_match_the_textbook_formula_for_each_reduction(
    name: str, params: dict, textbook: object
) -> None:
    weighted = textbook(Y, YHAT) * W[:, None]
    expected = {"none": weighted, "sum": weighted.sum(), "mean": weighted.sum() / (W.sum() * Y.shape[1])}
    for reduction, value in expected.items():
        got = lossbridge.get(name, reduction=reduction, **params)(Y, YHAT, sample_weight=W)
        np.testing.assert_allclose(got, value, rtol=1e-12)


def test_msle_matches_the_textbook_formula_and_floors_at_eps() -> None:
    y, f = np.exp(Y), np.exp(YHAT)
    expected = (np.log(1 + f) - np.log(1 + y)) ** 2
    np.testing.assert_allclose(lossbridge.get("msle", reduction="none")(y, f), expected, rtol=1e-12)
    f[0, 0] = 0.0
    got = lossbridge.get("msle", reduction="none", eps=0.5)(y, f)
    assert got[0, 0] == pytest.approx((np.log(1.5) - np.log(1 + max(y[0, 0], 0.5))) ** 2, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mse", {"scale": 0.5}),
        ("huber", {"delta": 0.4, "smooth_l1": True}),
        ("log_cosh", {}),
        ("mape", {}),
        ("msle", {"eps": 1e-3}),
    ],
)
def test_gradients_match_central_differences_away_from_kinks(name: str, params: dict) -> None:
    y, f = (np.exp(Y), np.exp(YHAT)) if name == "msle" else (Y, YHAT)
    loss = lossbridge.get(name, reduction="sum", **params)
    np.testing.assert_allclose(loss.grad(y, f), _central_differences(loss, y, f), rtol=1e-6, atol=1e-8)


def test_smooth_l1_gradient_at_the_kinks() -> None:
    y = np.zeros(5)
    f = np.array([0.0, 0.4, -0.4, 0.2, 3.0])
    grad = lossbridge.get("huber", delta=0.4, smooth_l1=True, reduction="sum").grad(y, f)
    np.testing.assert_allclose(grad, [0.0, 1.0, -1.0, 0.5, 1.0])
    l1 = lossbridge.get("huber", delta=0.0, smooth_l1=True, reduction="sum")
    np.testing.assert_allclose(l1.grad(y, f), [0.0, 1.0, -1.0, 1.0, 1.0])
    assert float(l1(y, f)) == pytest.approx(4.0)


def test_mae_mape_log_cosh_gradients_at_a_zero_residual_are_zero() -> None:
    y = np.array([1.5, -2.0])
    for name in ("mae", "mape", "log_cosh", "mse"):
        assert lossbridge.get(name, reduction="sum").grad(y, y.copy()).tolist() == [0.0, 0.0]


def test_msle_gradient_passes_on_the_floor_and_vanishes_below_it() -> None:
    y, f = np.array([1.0, 1.0, 1.0]), np.array([0.25, 0.1, 2.0])
    grad = lossbridge.get("msle", eps=0.25, reduction="sum").grad(y, f)
    assert grad[0] == pytest.approx(2 * (np.log(1.25) - np.log(2.0)) / 1.25, rel=1e-12)
    assert grad[1] == 0.0


def test_log_cosh_is_finite_for_huge_residuals() -> None:
    got = lossbridge.get("log_cosh", reduction="none")(np.zeros(2), np.array([1000.0, -1000.0]))
    np.testing.assert_allclose(got, 1000.0 - np.log(2.0), rtol=1e-15)


@pytest.mark.parametrize(("name", "params"), [("mse", {"scale": 0.0}), ("mape", {"eps": 0.0}), ("msle", {"eps": -1.0})])
def test_invalid_new_parameters_are_refused(name: str, params: dict) -> None:
    with pytest.raises(ParameterError, match=f"{name}: parameter '{next(iter(params))}' expects"):
        lossbridge.get(name, **params)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "log_cosh", "mape", "msle"])
def test_kinks_move_inputs_without_touching_the_originals(name: str) -> None:
    spec = lossbridge.spec(name)
    params = {p.name: p.default for p in spec.params}
    inputs = {"y_true": np.exp(Y), "y_pred": np.exp(YHAT)}
    moved = spec.kinks(np.random.default_rng(0), inputs, params)
    assert np.array_equal(inputs["y_pred"], np.exp(YHAT)) and not np.array_equal(moved["y_pred"], inputs["y_pred"])
