"""The example plugin's specs against textbook formulas written here in float64 NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge


def test_poisson_matches_the_textbook_negative_log_likelihood() -> None:
    rng = np.random.default_rng(1)
    y, rate = rng.poisson(3.0, size=10).astype(float), rng.uniform(0.5, 5.0, size=10)
    loss = lossbridge.get("poisson")
    assert float(loss(y, rate)) == pytest.approx(np.mean(rate - y * np.log(rate)), rel=1e-12)
    log_loss = lossbridge.get("poisson", log_input=True)
    assert float(log_loss(y, np.log(rate))) == pytest.approx(np.mean(rate - y * np.log(rate)), rel=1e-12)


def test_lion_matches_the_paper_update() -> None:
    rng = np.random.default_rng(2)
    theta, grads = rng.normal(size=5), rng.normal(size=(20, 5))
    lr, b1, b2, wd = 1e-2, 0.9, 0.99, 0.1
    expected, m = theta.copy(), np.zeros(5)
    for g in grads:  # Chen et al. (2023), Algorithm 2
        expected = expected - lr * (np.sign(b1 * m + (1 - b1) * g) + wd * expected)
        m = b2 * m + (1 - b2) * g
    params = [theta.copy()]
    opt = lossbridge.get("lion", lr=lr, weight_decay=wd)
    for g in grads:
        opt.step(params, [g])
    np.testing.assert_allclose(params[0], expected, rtol=1e-13)


def test_the_plugin_is_listed_with_its_distribution() -> None:
    rows = {e.name: e.distribution for e in lossbridge.catalog()}
    assert rows["poisson"] == "lossbridge-example" and rows["lion"] == "lossbridge-example"
