"""Focal, Poly-1 and generalized cross-entropy against float64 NumPy textbook formulas and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge
from lossbridge import ParameterError

RNG = np.random.default_rng(11)
Y01 = RNG.integers(0, 2, size=(5, 3)).astype(float)
P = RNG.uniform(0.05, 0.95, size=(5, 3))
X = 2.0 * RNG.normal(size=(5, 3))
ROWS = np.exp(RNG.normal(size=(5, 4)))
ROWS /= ROWS.sum(axis=-1, keepdims=True)
HOT = np.eye(4)[RNG.integers(0, 4, size=5)]
LABELS = RNG.integers(0, 4, size=5)


def _fd(loss, y, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (loss(y, x + e) - loss(y, x - e)) / (2 * h)
    return g


def test_binary_focal_textbook_with_balancing():
    a, g = 0.3, 1.5
    pt = Y01 * P + (1 - Y01) * (1 - P)
    bce = -(Y01 * np.log(P) + (1 - Y01) * np.log(1 - P))
    expected = (a * Y01 + (1 - a) * (1 - Y01)) * (1 - pt) ** g * bce
    loss = lossbridge.get("binary_focal_crossentropy", gamma=g, alpha=a, apply_class_balancing=True, reduction="none")
    np.testing.assert_allclose(loss(Y01, P), expected, rtol=1e-12)


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_focal_gradient_matches_finite_differences(from_logits):
    x = X if from_logits else P
    loss = lossbridge.get("binary_focal_crossentropy", from_logits=from_logits, label_smoothing=0.1, reduction="sum")
    np.testing.assert_allclose(loss.grad(Y01, x), _fd(loss, Y01, x), rtol=1e-6, atol=1e-9)


def test_categorical_focal_textbook_and_gradient():
    loss = lossbridge.get("categorical_focal_crossentropy", gamma=2.0, alpha=0.25, reduction="none")
    expected = -(0.25 * (1 - ROWS) ** 2 * HOT * np.log(ROWS)).sum(axis=-1)
    np.testing.assert_allclose(loss(HOT, ROWS), expected, rtol=1e-12)
    for kw, x in (({"from_logits": True}, X @ np.ones((3, 4))), ({"normalize": "before_clip"}, 0.7 * ROWS)):
        total = lossbridge.get("categorical_focal_crossentropy", reduction="sum", label_smoothing=0.1, **kw)
        np.testing.assert_allclose(total.grad(ROWS, x), _fd(total, ROWS, x), rtol=1e-6, atol=1e-9)


def test_gamma_zero_is_cross_entropy():
    focal = lossbridge.get("binary_focal_crossentropy", gamma=0.0, reduction="none")
    np.testing.assert_allclose(focal(Y01, P), lossbridge.get("bce", reduction="none")(Y01, P), rtol=1e-12)


def test_focal_factor_at_p_t_one_has_zero_gradient_for_gamma_above_one():
    grad = lossbridge.get("binary_focal_crossentropy", reduction="sum").grad(np.array([1.0, 0.0]), np.array([1.0, 0.0]))
    np.testing.assert_array_equal(grad, [-0.0, 0.0])


def test_poly_textbook_and_gradient():
    x = 2.0 * RNG.normal(size=(5, 4))
    p = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    expected = -(ROWS * np.log(p)).sum(-1) + 1.5 * (ROWS * (1 - p)).sum(-1)
    loss = lossbridge.get("poly_cross_entropy", epsilon=1.5, reduction="none")
    np.testing.assert_allclose(loss(ROWS, x), expected, rtol=1e-12)
    total = lossbridge.get("poly_cross_entropy", epsilon=1.5, reduction="sum")
    np.testing.assert_allclose(total.grad(ROWS, x), _fd(total, ROWS, x), rtol=1e-6, atol=1e-9)


def test_generalized_cross_entropy_textbook_and_limits():
    p_y = ROWS[np.arange(5), LABELS]
    loss = lossbridge.get("gce", q=0.7, reduction="none")
    np.testing.assert_allclose(loss(LABELS, ROWS), (1 - p_y**0.7) / 0.7, rtol=1e-12)
    np.testing.assert_allclose(lossbridge.get("gce", q=1.0, reduction="none")(LABELS, ROWS), 1 - p_y, rtol=1e-12)
    total = lossbridge.get("gce", q=0.7, reduction="sum")
    np.testing.assert_allclose(total.grad(LABELS, ROWS), _fd(total, LABELS, ROWS), rtol=1e-6, atol=1e-9)


def test_invalid_parameters_are_refused():
    with pytest.raises(ParameterError, match="'q'"):
        lossbridge.get("gce", q=0.0)
    with pytest.raises(ParameterError, match="'gamma'"):
        lossbridge.get("binary_focal_crossentropy", gamma=-1.0)


def test_gce_gradient_at_zero_probability_is_only_the_labels_entry():
    # d/dp_y (1 - p_y^q)/q = -p_y^(q-1): infinite at p_y = 0; the other classes' entries are 0, not NaN
    import lossbridge

    value, grad = lossbridge.get("generalized_cross_entropy", reduction="none").value_and_grad(
        np.array([0]), np.array([[0.0, 1.0]])
    )
    assert value.tolist() == [2.0]
    assert grad[0, 0] == -np.inf and grad[0, 1] == 0.0


def test_poly_loss_over_no_classes_is_zero_as_optax():
    """optax's own test_mask draws a random class mask, all False one time in 32: preds[mask] is empty, and
    optax.poly_loss_cross_entropy gives 0 there (log_softmax of nothing is nothing)."""
    from lossbridge.spec._ops import log_softmax

    assert log_softmax(np.zeros((3, 0)), xp=np).shape == (3, 0)
    loss = lossbridge.get("poly_loss_cross_entropy", convention="optax")
    assert loss(np.zeros(0), np.zeros(0)) == 0.0
