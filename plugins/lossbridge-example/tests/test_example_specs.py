"""The example plugin's specs against textbook formulas written here in float64 NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge


def _pinball(y: np.ndarray, f: np.ndarray, tau: float) -> np.ndarray:
    """Koenker & Bassett (1978): tau * u above the prediction, (tau - 1) * u below, u = y - f."""
    u = y - f
    return np.where(u >= 0, tau * u, (tau - 1.0) * u)


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_quantile_matches_the_textbook_pinball_loss(tau: float, reduction: str) -> None:
    rng = np.random.default_rng(1)
    y, f, w = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.uniform(0.0, 2.0, size=4)
    weighted = _pinball(y, f, tau) * w[:, None]
    expected = {"none": weighted, "sum": weighted.sum(), "mean": weighted.sum() / (w.sum() * 3)}[reduction]
    loss = lossbridge.get("quantile", quantile=tau, reduction=reduction)
    np.testing.assert_allclose(loss(y, f, sample_weight=w), expected, rtol=1e-12)


def test_quantile_gradient_is_minus_tau_above_one_minus_tau_below_and_zero_on_the_target() -> None:
    y, f = np.array([1.0, 1.0, 1.0]), np.array([0.0, 2.0, 1.0])
    grad = lossbridge.get("quantile", quantile=0.8, reduction="sum").grad(y, f)
    np.testing.assert_allclose(grad, [-0.8, 0.2, 0.0], rtol=1e-15)


def test_quantile_gradient_matches_central_differences() -> None:
    rng = np.random.default_rng(3)
    y, f, h = rng.normal(size=6), rng.normal(size=6), 1e-6
    loss = lossbridge.get("quantile", quantile=0.3, reduction="sum")
    numeric = [(loss(y, f + h * e) - loss(y, f - h * e)) / (2 * h) for e in np.eye(6)]
    np.testing.assert_allclose(loss.grad(y, f), numeric, rtol=1e-6)


def test_quantile_outside_zero_one_is_refused() -> None:
    with pytest.raises(lossbridge.ParameterError, match="quantile"):
        lossbridge.get("quantile", quantile=1.0)


def test_qhm_with_nu_zero_is_plain_sgd_and_with_nu_one_is_ema_momentum() -> None:
    rng = np.random.default_rng(2)
    theta, grads = rng.normal(size=5), rng.normal(size=(20, 5))
    lr, beta = 1e-2, 0.9
    sgd, ema, buf = theta.copy(), theta.copy(), np.zeros(5)
    for g in grads:  # Ma & Yarats (2019), Section 2: the two limits of QHM
        sgd = sgd - lr * g
        buf = beta * buf + (1 - beta) * g
        ema = ema - lr * buf
    for nu, expected in ((0.0, sgd), (1.0, ema)):
        params = [theta.copy()]
        opt = lossbridge.get("qhm", lr=lr, momentum=beta, nu=nu)
        for g in grads:
            opt.step(params, [g])
        np.testing.assert_allclose(params[0], expected, rtol=1e-13)


def test_qhm_nu_outside_zero_one_is_refused() -> None:
    with pytest.raises(lossbridge.ParameterError, match="nu"):
        lossbridge.get("qhm", nu=1.5)


def test_the_plugin_is_listed_with_its_distribution() -> None:
    rows = {e.name: e.distribution for e in lossbridge.catalog()}
    assert rows["quantile"] == "lossbridge-example" and rows["qhm"] == "lossbridge-example"
