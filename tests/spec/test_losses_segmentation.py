"""The Dice / Tversky spec against a float64 NumPy transcription of the textbook formula."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import ParameterError


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _tversky(y: np.ndarray, p: np.ndarray, axes: tuple[int, ...], a: float, b: float, s: float, e: float) -> np.ndarray:
    """Salehi et al. (2017): 1 - (TP + s) / (TP + a FP + b FN + s + e), FP = sum p(1-y), FN = sum (1-p)y."""
    tp = (y * p).sum(axis=axes)
    fp = (p * (1 - y)).sum(axis=axes)
    fn = ((1 - p) * y).sum(axis=axes)
    return 1 - (tp + s) / (tp + a * fp + b * fn + s + e)


def _fd(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)) / (2 * h)
    return g


def test_default_is_per_sample_dice_with_smooth_one() -> None:
    y = (_rng().uniform(size=(4, 3, 5)) > 0.5).astype(float)
    p = _rng().uniform(size=(4, 3, 5))
    expected = 1 - (2 * (y * p).sum(axis=(1, 2)) + 2) / (y.sum(axis=(1, 2)) + p.sum(axis=(1, 2)) + 2)
    np.testing.assert_allclose(lossbridge.get("dice", reduction="none")(y, p), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("params", "axes"),
    [
        ({"alpha": 0.3, "beta": 0.7, "smooth": 0.0, "eps": 1e-7}, (1, 2)),
        ({"alpha": 0.9, "beta": 0.1, "default_axis": "all"}, (0, 1, 2)),
        ({"axis": (0, 2), "smooth": 0.5}, (0, 2)),
    ],
)
def test_values_match_the_tversky_index(params: dict, axes: tuple[int, ...]) -> None:
    y, p = _rng().uniform(size=(2, 3, 4, 5))
    full = {"alpha": 0.5, "beta": 0.5, "smooth": 1.0, "eps": 0.0, **params}
    expected = _tversky(y, p, axes, full["alpha"], full["beta"], full["smooth"], full["eps"])
    got = lossbridge.get("tversky", reduction="none", **params)(y, p)
    if 2 not in axes:  # the last axis is kept: classes, averaged
        expected = expected.mean(axis=-1)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_dice_is_tversky_at_one_half() -> None:
    y, p = _rng().uniform(size=(2, 5, 6))
    dice = 1 - 2 * (y * p).sum(axis=1) / (y.sum(axis=1) + p.sum(axis=1))
    got = lossbridge.get("dice", smooth=0.0, reduction="none")(y, p)
    np.testing.assert_allclose(got, dice, rtol=1e-12)


def test_perfect_and_disjoint_masks() -> None:
    y = np.array([[1.0, 1.0, 0.0, 0.0]])
    loss = lossbridge.get("dice", smooth=0.0, reduction="none")
    np.testing.assert_allclose(loss(y, y), [0.0], atol=1e-15)
    np.testing.assert_allclose(loss(y, 1 - y), [1.0], atol=1e-15)
    np.testing.assert_allclose(lossbridge.get("dice", reduction="none")(0 * y, 0 * y), [0.0])  # smooth: empty = perfect


_GRAD_CASES = [
    ({}, (3, 4)),
    ({"alpha": 0.2, "beta": 1.3, "smooth": 0.0, "eps": 1e-3, "default_axis": "all"}, (3, 4)),
    ({"default_axis": "spatial", "from_logits": True}, (2, 3, 4)),
    ({"default_axis": "spatial", "from_logits": True, "class_reduction": "sum", "ignore_background": True,
      "class_weights": [0.5, 1.0, 2.0, 3.0]}, (2, 3, 4)),
    ({"default_axis": "spatial", "from_logits": True, "frequency_weights": True, "class_reduction": "none"}, (2, 3, 4)),
    ({"default_axis": "sample", "from_logits": True, "activation": "sigmoid", "axis": (1,)}, (2, 3, 4)),
    ({"default_axis": "spatial", "from_logits": True}, (2, 3, 1)),  # one channel: sigmoid
]


@pytest.mark.parametrize(("params", "shape"), _GRAD_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_vjp_matches_central_differences(params: dict, shape: tuple[int, ...], reduction: str) -> None:
    rng = _rng()
    y = (rng.uniform(size=shape) > 0.4).astype(float)
    x = rng.normal(size=shape) if params.get("from_logits") else rng.uniform(0.05, 0.95, size=shape)
    loss = lossbridge.get("dice", reduction=reduction, **params)
    w = rng.uniform(0.5, 2.0, size=shape[:1]) if reduction == "mean" and params.get("default_axis") != "all" else None
    numeric = _fd(lambda z: float(loss(y, z, sample_weight=w)), x)
    np.testing.assert_allclose(loss.grad(y, x, sample_weight=w), numeric, rtol=1e-6, atol=1e-9)


def test_frequency_weights_are_inverse_squared_frequencies() -> None:
    rng = _rng()
    y = np.eye(3)[rng.integers(0, 3, size=(2, 6))]
    x = rng.normal(size=(2, 6, 3))
    per_class = lossbridge.get("dice", default_axis="spatial", from_logits=True, class_reduction="none",
                               reduction="none")(y, x)
    f = y.sum(axis=(0, 1))
    w = 1 / (f**2 + 1e-7)
    w = w / w.sum() * 3
    weighted = lossbridge.get("dice", default_axis="spatial", from_logits=True, class_reduction="none",
                              frequency_weights=True, reduction="none")(y, x)
    np.testing.assert_allclose(weighted, per_class * w, rtol=1e-12)


@pytest.mark.parametrize(
    "bad",
    [{"alpha": -0.1}, {"smooth": -1.0}, {"default_axis": "batch"}, {"class_reduction": "max"}, {"from_logits": 1}],
)
def test_invalid_parameters_are_named(bad: dict) -> None:
    with pytest.raises(ParameterError, match=next(iter(bad))):
        lossbridge.get("dice", **bad)
