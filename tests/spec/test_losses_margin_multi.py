"""Weston–Watkins, multi-label ranking and embedding hinges against float64 NumPy loops of the formulas."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import lossbridge
from lossbridge import InputError, ParameterError

RNG = np.random.default_rng(23)
N, C = 7, 5
SCORES = RNG.normal(size=(N, C))
LABELS = RNG.integers(0, C, size=N)
W = RNG.uniform(0.0, 2.0, size=N)
CLASS_W = np.linspace(0.5, 2.0, C)


def _fd(fun: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        grad[idx] = (fun(plus) - fun(minus)) / (2 * h)
    return grad


# -- Weston–Watkins ----------------------------------------------------------------------------------
def _weston_watkins(labels: np.ndarray, f: np.ndarray, p: int, margin: float) -> np.ndarray:
    out = np.zeros(len(f))
    for n, (y, row) in enumerate(zip(labels, f)):
        out[n] = sum(max(0.0, margin - row[y] + row[j]) ** p for j in range(len(row)) if j != y)
    return out


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("average", [False, True])
def test_multi_margin_matches_the_weston_watkins_sum(p: int, margin: float, average: bool) -> None:
    loss = lossbridge.get("multi_margin", p=p, margin=margin, average_classes=average, reduction="none")
    expected = _weston_watkins(LABELS, SCORES, p, margin) / (C if average else 1)
    np.testing.assert_allclose(loss(LABELS, SCORES), expected, rtol=1e-13)


@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_vjp_matches_finite_differences(p: int) -> None:
    loss = lossbridge.get("multi_margin", p=p, class_weight=CLASS_W)
    np.testing.assert_allclose(
        loss.grad(LABELS, SCORES, sample_weight=W),
        _fd(lambda x: loss(LABELS, x, sample_weight=W), SCORES), rtol=1e-6, atol=1e-9,
    )


def test_multi_margin_class_weight_scales_each_sample_by_its_label() -> None:
    loss = lossbridge.get("multi_margin", class_weight=CLASS_W, reduction="sum")
    np.testing.assert_allclose(loss(LABELS, SCORES), (_weston_watkins(LABELS, SCORES, 1, 1.0) * CLASS_W[LABELS]).sum(),
                               rtol=1e-13)


@pytest.mark.parametrize(("share", "expected"), [(0.0, [0.0, 0.0, 0.0]), (0.5, [0.5, -0.5, 0.0]),
                                                 (1.0, [1.0, -1.0, 0.0])])
def test_multi_margin_gradient_at_the_margin(share: float, expected: list[float]) -> None:
    grad = lossbridge.get("multi_margin", margin_gradient=share, reduction="sum").grad(
        np.array([1]), np.array([[0.0, 1.0, -2.0]])
    )
    np.testing.assert_array_equal(grad, [expected])
    squared = lossbridge.get("multi_margin", p=2, margin_gradient=share, reduction="sum")
    np.testing.assert_array_equal(squared.grad(np.array([1]), np.array([[0.0, 1.0, -2.0]])), [[0.0, 0.0, 0.0]])


def test_multi_margin_is_not_crammer_singer() -> None:
    scores, labels = np.array([[0.5, 1.0, 0.5]]), np.array([1])
    assert lossbridge.get("multi_margin")(labels, scores) == 1.0  # both rivals count
    assert lossbridge.get("multiclass_hinge")(labels, scores) == 0.5  # only the worst


def test_invalid_power_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"parameter 'p' expects one of 1, 2, got 3"):
        lossbridge.get("multi_margin", p=3)


# -- multi-label ranking -----------------------------------------------------------------------------
def _label_lists() -> np.ndarray:
    return np.array([
        [3, 0, -1, 1, 1],  # listed {3, 0}; what follows the first -1 is ignored
        [2, -1, -1, -1, -1],
        [4, 4, 1, -1, 0],  # 4 listed twice counts twice (PyTorch's loop)
        [0, 1, 2, 3, -1],
        [1, 3, 2, -1, 4],
        [0, 2, -1, 0, 0],
        [-1, 3, 1, 2, 0],  # nothing listed: zero loss
    ])


def _ranking_loop(targets: np.ndarray, f: np.ndarray, margin: float) -> np.ndarray:
    out = np.zeros(len(f))
    for n, (row_t, row) in enumerate(zip(targets, f)):
        listed = []
        for t in row_t:
            if t < 0:
                break
            listed.append(int(t))
        for j in listed:
            out[n] += sum(max(0.0, margin - row[j] + row[i]) for i in range(len(row)) if i not in listed)
    return out


@pytest.mark.parametrize("margin", [1.0, 0.4])
@pytest.mark.parametrize("average", [False, True])
def test_multilabel_margin_matches_the_pair_loop(margin: float, average: bool) -> None:
    loss = lossbridge.get("multilabel_margin", margin=margin, average_classes=average, reduction="none")
    expected = _ranking_loop(_label_lists(), SCORES, margin) / (C if average else 1)
    np.testing.assert_allclose(loss(_label_lists(), SCORES), expected, rtol=1e-13)
    assert loss(_label_lists(), SCORES)[-1] == 0.0


def test_multilabel_margin_vjp_matches_finite_differences() -> None:
    loss = lossbridge.get("multilabel_margin")
    np.testing.assert_allclose(
        loss.grad(_label_lists(), SCORES, sample_weight=W),
        _fd(lambda x: loss(_label_lists(), x, sample_weight=W), SCORES), rtol=1e-6, atol=1e-9,
    )


@pytest.mark.parametrize(("share", "expected"), [(0.0, [0.0, -1.0, 0.0, 1.0]), (1.0, [1.0, -3.0, 1.0, 1.0])])
def test_multilabel_margin_gradient_at_the_margin(share: float, expected: list[float]) -> None:
    grad = lossbridge.get("multilabel_margin", margin_gradient=share, reduction="sum").grad(
        np.array([[1, -1, 0, 0]]), np.array([[0.0, 1.0, 0.0, 0.3]])  # classes 0 and 2 exactly on the margin
    )
    np.testing.assert_array_equal(grad, [expected])


def test_label_lists_out_of_range_are_refused() -> None:
    with pytest.raises(InputError, match=r"y_true: expected class indices in \[0, 4\] padded with -1"):
        lossbridge.get("multilabel_margin")(np.array([[5, -1, -1, -1, -1]]), SCORES[:1])
    with pytest.raises(InputError, match=r"y_true: expected shape \(1, 5\)"):
        lossbridge.get("multilabel_margin")(np.array([[1, -1]]), SCORES[:1])


# -- embedding hinge ---------------------------------------------------------------------------------
def test_hinge_embedding_matches_the_textbook_formula() -> None:
    y = 2.0 * RNG.integers(0, 2, size=(N, 3)) - 1.0
    d = np.abs(RNG.normal(size=(N, 3))) * 1.5
    for margin in (1.0, 0.7):
        expected = np.where(y == 1, d, np.maximum(0.0, margin - d))
        got = lossbridge.get("hinge_embedding", margin=margin, reduction="none")(y, d)
        np.testing.assert_allclose(got, expected, rtol=1e-15)
    loss = lossbridge.get("hinge_embedding")
    np.testing.assert_allclose(loss.grad(y, d, sample_weight=W), _fd(lambda x: loss(y, x, sample_weight=W), d),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_hinge_embedding_gradient_at_the_margin(share: float) -> None:
    grad = lossbridge.get("hinge_embedding", margin_gradient=share, reduction="sum").grad(
        np.array([-1.0, -1.0, 1.0]), np.array([1.0, 0.5, 1.0])
    )
    np.testing.assert_array_equal(grad, [-share, -1.0, 1.0])


def test_hinge_embedding_refuses_zero_labels() -> None:
    with pytest.raises(InputError, match=r"y_true: expected labels in \{-1, 1\}"):
        lossbridge.get("hinge_embedding")(np.array([0.0, 1.0]), np.array([0.2, 0.3]))


# -- declared kinks ----------------------------------------------------------------------------------
def _hinge_arguments(name: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Every hinge argument z of the loss (margin 1), flattened."""
    y, f = inputs["y_true"], inputs["y_pred"]
    if name == "hinge_embedding":
        return (1.0 - f)[y == -1]
    if name == "multi_margin":
        return (1.0 - f[np.arange(len(f)), y][:, None] + f)[np.eye(C)[y] == 0]
    z = []
    for row_t, row in zip(y, f):
        listed = [int(t) for t in row_t[: int(np.argmax(row_t < 0))]] if (row_t < 0).any() else list(row_t)
        z += [1.0 - row[j] + row[i] for j in listed for i in range(C) if i not in listed]
    return np.array(z)


@pytest.mark.parametrize("name", ["multi_margin", "multilabel_margin", "hinge_embedding"])
def test_declared_kinks_land_exactly_on_the_margin(name: str) -> None:
    spec = lossbridge.spec(name)
    y = {"multi_margin": LABELS, "multilabel_margin": _label_lists()}.get(name, np.sign(SCORES) + (SCORES == 0))
    inputs = {"y_true": y, "y_pred": SCORES.copy()}
    moved = spec.kinks(np.random.default_rng(1), inputs, lossbridge.get(name).bound.params)
    np.testing.assert_array_equal(inputs["y_pred"], SCORES)
    assert np.sum(_hinge_arguments(name, moved) == 0.0) >= 2
    loss = lossbridge.get(name, reduction="sum")
    assert np.all(np.isfinite(loss.grad(moved["y_true"], moved["y_pred"])))
