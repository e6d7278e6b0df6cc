"""Probabilistic losses (poisson, gaussian_nll, kl_divergence) against float64 NumPy textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossbridge
from lossbridge import InputError, ParameterError

RNG = np.random.default_rng(17)
COUNTS = RNG.poisson(2.0, size=(6, 3)).astype(np.float64)
COUNTS[0] = [0.0, 1.0, 5.0]
RATES = np.exp(RNG.normal(size=(6, 3)))
MEANS, TARGETS = RNG.normal(size=(2, 6, 3))
VARS = np.exp(RNG.normal(size=(6, 3)))
W = RNG.uniform(0.0, 2.0, size=6)


def _rows(seed: int) -> np.ndarray:
    z = np.exp(np.random.default_rng(seed).normal(size=(6, 3)))
    return z / z.sum(axis=-1, keepdims=True)


P, Q = _rows(1), _rows(2)
P[0] = [0.0, 0.4, 0.6]


def _log_factorial(y: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda k: math.lgamma(k + 1.0))(y)


def _stirling(y: np.ndarray) -> np.ndarray:
    safe = np.where(y > 1, y, 1.0)
    return np.where(y > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)


def _central(loss: object, inputs: list[np.ndarray], k: int, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(inputs[k])
    for idx in np.ndindex(grad.shape):
        plus, minus = [a.copy() for a in inputs], [a.copy() for a in inputs]
        plus[k][idx] += h
        minus[k][idx] -= h
        grad[idx] = (float(loss(*plus)) - float(loss(*minus))) / (2 * h)
    return grad


# -- poisson ----------------------------------------------------------------------------------------
def test_poisson_is_the_negative_log_likelihood_up_to_log_factorial() -> None:
    nll = RATES - COUNTS * np.log(RATES) + _log_factorial(COUNTS)  # -log(rate^y e^-rate / y!)
    got = lossbridge.get("poisson", reduction="none")(COUNTS, RATES)
    np.testing.assert_allclose(got + _log_factorial(COUNTS), nll, rtol=1e-12)
    logs = lossbridge.get("poisson", log_input=True, reduction="none")(COUNTS, np.log(RATES))
    np.testing.assert_allclose(logs, got, rtol=1e-12)


def test_poisson_full_adds_stirlings_approximation_for_counts_above_one() -> None:
    got = lossbridge.get("poisson", full=True, reduction="none")(COUNTS, RATES)
    np.testing.assert_allclose(got, RATES - COUNTS * np.log(RATES) + _stirling(COUNTS), rtol=1e-12)
    big = COUNTS > 1
    # an approximation of log(y!): 6% off at y = 2, better for larger counts
    np.testing.assert_allclose(_stirling(COUNTS)[big], _log_factorial(COUNTS)[big], rtol=0.07)


@pytest.mark.parametrize("params", [{}, {"log_input": True}, {"eps": 0.1, "full": True}])
def test_poisson_gradient_matches_central_differences(params: dict) -> None:
    pred = np.log(RATES) if params.get("log_input") else RATES
    loss = lossbridge.get("poisson", reduction="sum", **params)
    np.testing.assert_allclose(loss.grad(COUNTS, pred), _central(loss, [COUNTS, pred], 1), rtol=1e-6, atol=1e-8)


def test_poisson_refuses_negative_counts() -> None:
    with pytest.raises(InputError, match="y_true: expected non-negative counts"):
        lossbridge.get("poisson")(-COUNTS - 1.0, RATES)


# -- gaussian_nll -----------------------------------------------------------------------------------
def test_gaussian_nll_is_the_normal_negative_log_likelihood() -> None:
    density = np.exp(-((TARGETS - MEANS) ** 2) / (2 * VARS)) / np.sqrt(2 * np.pi * VARS)
    full = lossbridge.get("gaussian_nll", full=True, reduction="none")(TARGETS, MEANS, VARS)
    np.testing.assert_allclose(full, -np.log(density), rtol=1e-12)
    plain = lossbridge.get("gaussian_nll", reduction="mean")(TARGETS, MEANS, VARS, sample_weight=W)
    expected = ((-np.log(density) - 0.5 * np.log(2 * np.pi)) * W[:, None]).sum() / (W.sum() * 3)
    assert float(plain) == pytest.approx(expected, rel=1e-12)


def test_gaussian_nll_gradients_match_central_differences() -> None:
    loss = lossbridge.get("gaussian_nll", reduction="sum")
    d_mean, d_var = loss.grad(TARGETS, MEANS, VARS)
    np.testing.assert_allclose(d_mean, _central(loss, [TARGETS, MEANS, VARS], 1), rtol=1e-6)
    np.testing.assert_allclose(d_var, _central(loss, [TARGETS, MEANS, VARS], 2), rtol=1e-6, atol=1e-8)


def test_gaussian_nll_clamps_the_variance_and_its_gradient_below_eps() -> None:
    var = VARS.copy()
    var[0, 0], var[0, 1] = 1e-3, 1e-5
    y, mu = TARGETS, MEANS
    values = lossbridge.get("gaussian_nll", eps=1e-3, reduction="none")(y, mu, var)
    assert values[0, 1] == pytest.approx(0.5 * (np.log(1e-3) + (mu[0, 1] - y[0, 1]) ** 2 / 1e-3), rel=1e-12)
    _, d_var = lossbridge.get("gaussian_nll", eps=1e-3, reduction="sum").grad(y, mu, var)
    assert d_var[0, 1] == 0.0 and d_var[0, 0] != 0.0
    _, through = lossbridge.get("gaussian_nll", eps=1e-3, straight_through=True, reduction="sum").grad(y, mu, var)
    e = mu[0, 1] - y[0, 1]
    assert through[0, 1] == pytest.approx(0.5 * (1 / 1e-3 - e**2 / 1e-6), rel=1e-12)


def test_gaussian_nll_spec_broadcasts_one_variance_per_sample() -> None:
    spec = lossbridge.spec("gaussian_nll")
    var = VARS[:, 0]
    got = spec.fn(TARGETS, MEANS, var, xp=np)
    np.testing.assert_allclose(got, spec.fn(TARGETS, MEANS, np.repeat(var[:, None], 3, axis=1), xp=np))
    _, d_var = spec.vjp(TARGETS, MEANS, var[:, None], np.ones((6, 3)), xp=np)
    _, d_full = spec.vjp(TARGETS, MEANS, np.repeat(var[:, None], 3, axis=1), np.ones((6, 3)), xp=np)
    np.testing.assert_allclose(d_var, d_full.sum(axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("eps", [0.0, -1e-6])
def test_gaussian_nll_refuses_a_non_positive_eps(eps: float) -> None:
    with pytest.raises(ParameterError, match="gaussian_nll: parameter 'eps' expects float in"):
        lossbridge.get("gaussian_nll", eps=eps)


# -- kl_divergence ----------------------------------------------------------------------------------
def _kl_textbook(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / q), 0.0)
    return terms.sum(axis=-1)


@pytest.mark.parametrize(
    ("params", "target", "prediction"),
    [
        ({}, P, Q),
        ({"log_input": True}, P, np.log(Q)),
        ({"log_input": True, "log_target": True}, np.log(_rows(1)), np.log(Q)),
    ],
)
def test_kl_divergence_matches_the_textbook_sum_in_every_input_form(params: dict, target, prediction) -> None:
    p = np.exp(target) if params.get("log_target") else target
    expected = _kl_textbook(p, Q)
    got = lossbridge.get("kl_divergence", reduction="none", **params)(target, prediction)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    mean = lossbridge.get("kl_divergence", **params)(target, prediction, sample_weight=W)
    assert float(mean) == pytest.approx((expected * W).sum() / W.sum(), rel=1e-12)


def test_kl_divergence_per_element_terms_and_batchmean() -> None:
    loss = lossbridge.get("kl_divergence", axis=None, log_input=True, reduction="batchmean")
    assert float(loss(P, np.log(Q))) == pytest.approx(_kl_textbook(P, Q).sum() / 6, rel=1e-12)


def test_generalized_kl_adds_the_mass_difference() -> None:
    p, q = 2.0 * P, 3.0 * Q
    got = lossbridge.get("kl_divergence", generalized=True, reduction="none")(p, q)
    np.testing.assert_allclose(got, _kl_textbook(p, q) + (q - p).sum(axis=-1), rtol=1e-12)


def test_kl_clipping_clips_both_arguments_and_zeroes_the_gradient_beyond() -> None:
    q = Q.copy()
    q[1, 0] = 0.0
    got = lossbridge.get("kl_divergence", clip_eps=1e-4, reduction="none")(P, q)
    pc, qc = np.clip(P, 1e-4, 1.0), np.clip(q, 1e-4, 1.0)
    np.testing.assert_allclose(got, (pc * np.log(pc / qc)).sum(axis=-1), rtol=1e-12)
    grad = lossbridge.get("kl_divergence", clip_eps=1e-4, reduction="sum").grad(P, q)
    assert grad[1, 0] == 0.0


@pytest.mark.parametrize(
    "params", [{}, {"log_input": True}, {"generalized": True}, {"axis": None, "log_input": True, "generalized": True}]
)
def test_kl_gradient_matches_central_differences(params: dict) -> None:
    target = P + 0.01
    pred = np.log(Q) if params.get("log_input") else Q
    loss = lossbridge.get("kl_divergence", reduction="sum", **params)
    np.testing.assert_allclose(loss.grad(target, pred), _central(loss, [target, pred], 1), rtol=1e-6, atol=1e-8)


def test_kl_zero_target_probabilities_contribute_nothing() -> None:
    grad = lossbridge.get("kl_divergence", reduction="sum").grad(P, Q)
    assert grad[0, 0] == 0.0


def test_kl_refuses_log_probabilities_above_zero() -> None:
    with pytest.raises(InputError, match=r"y_pred: expected log-probabilities \(<= 0\)"):
        lossbridge.get("kl_divergence", log_input=True)(P, Q + 1.0)
