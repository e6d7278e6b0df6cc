"""Sparsemax losses against a sort-based NumPy sparsemax (Martins & Astudillo, Alg. 1) and finite differences."""

from __future__ import annotations

import numpy as np

import lossbridge

RNG = np.random.default_rng(3)


def _sparsemax_sorted(z):
    out = np.empty_like(z)
    for i, row in enumerate(z):
        s = np.sort(row)[::-1]
        cs = np.cumsum(s)
        k = np.arange(1, len(row) + 1)
        kz = k[1 + k * s > cs].max()
        tau = (cs[kz - 1] - 1) / kz
        out[i] = np.maximum(row - tau, 0)
    return out


def test_multiclass_sparsemax_loss_textbook_value_and_gradient():
    z = 1.5 * RNG.normal(size=(7, 5))
    z[0, :2] = 0.4  # a tie
    y = RNG.integers(0, 5, size=7)
    p = _sparsemax_sorted(z)
    s = p > 0
    tau = ((z * s).sum(-1) - 1) / s.sum(-1)
    expected = -z[np.arange(7), y] + 0.5 * ((z**2 - tau[:, None] ** 2) * s).sum(-1) + 0.5  # Martins eq. (14)
    loss = lossbridge.get("multiclass_sparsemax_loss", reduction="none")
    np.testing.assert_allclose(loss(y, z), expected, rtol=1e-12, atol=1e-14)
    grad = lossbridge.get("multiclass_sparsemax_loss", reduction="sum").grad(y, z)
    np.testing.assert_allclose(grad, p - np.eye(5)[y], atol=1e-14)


def test_binary_sparsemax_piecewise_and_continuous_gradient_at_the_switch_points():
    y = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    x = np.array([-1.0, 1.0, -1.0, 1.0, 0.2])
    t = np.where(y == 1, -x, x)
    expected = np.where(t <= -1, 0, np.where(t >= 1, t, (t + 1) ** 2 / 4))
    loss = lossbridge.get("sparsemax_loss", reduction="none")
    np.testing.assert_allclose(loss(y, x), expected, rtol=1e-15)
    grad = lossbridge.get("sparsemax_loss", reduction="sum").grad(y, x)
    np.testing.assert_allclose(grad, [-1.0, 0.0, 0.0, 1.0, -0.4], atol=1e-15)
