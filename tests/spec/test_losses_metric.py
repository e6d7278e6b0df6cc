"""The triplet margin loss against float64 NumPy textbook formulas (both eps placements, swap)."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge
from lossbridge import InputError, ParameterError

RNG = np.random.default_rng(23)
A, P, N = RNG.normal(size=(3, 7, 5))
W = RNG.uniform(0.0, 2.0, size=7)


def _root_distance(x: np.ndarray, z: np.ndarray, p: float, eps: float) -> np.ndarray:
    return (np.sum(np.abs(x - z) ** p, axis=-1) + eps) ** (1 / p)


def _difference_distance(x: np.ndarray, z: np.ndarray, p: float, eps: float) -> np.ndarray:
    return np.sum(np.abs(x - z + eps) ** p, axis=-1) ** (1 / p)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("placement", ["root", "difference"])
def test_values_match_the_textbook_formula(placement: str, p: float, reduction: str) -> None:
    dist = _root_distance if placement == "root" else _difference_distance
    eps, margin = 1e-3, 2.5
    per_sample = np.maximum(0.0, margin + dist(A, P, p, eps) - dist(A, N, p, eps)) * W
    expected = {"none": per_sample, "sum": per_sample.sum(), "mean": per_sample.sum() / W.sum()}
    loss = lossbridge.get(
        "triplet_margin", p=p, eps=eps, margin=margin, eps_placement=placement, reduction=reduction
    )
    np.testing.assert_allclose(loss(A, P, N, sample_weight=W), expected[reduction], rtol=1e-12)


def test_swap_uses_the_smaller_negative_distance() -> None:
    d_an, d_pn = _root_distance(A, N, 2.0, 1e-6), _root_distance(P, N, 2.0, 1e-6)
    expected = np.maximum(0.0, 2.5 + _root_distance(A, P, 2.0, 1e-6) - np.minimum(d_an, d_pn))
    got = lossbridge.get("triplet_margin", swap=True, margin=2.5, reduction="none")(A, P, N)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.any(d_pn < d_an)  # the swap is exercised


def test_root_placement_is_symmetric_and_difference_placement_is_not() -> None:
    # with the negative on the anchor and a large margin, the loss is margin + d(a, p) - d(a, a)
    root = lossbridge.get("triplet_margin", margin=100.0, reduction="none")
    np.testing.assert_allclose(root(A, P, A), root(P, A, P), rtol=1e-14)
    torch_style = lossbridge.get(
        "triplet_margin", convention="torch", margin=100.0, eps=0.1, reduction="none"
    )
    assert not np.allclose(torch_style(A, P, A), torch_style(P, A, P), rtol=1e-6)


def test_coincident_points_have_a_finite_gradient() -> None:
    grads = lossbridge.get("triplet_margin").grad(A, A.copy(), N)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_all_three_inputs_must_have_the_same_shape() -> None:
    with pytest.raises(
        InputError,
        match=r"negative: expected shape \(7, 5\) \(negative and anchor must have the same shape.*\), got \(7, 4\)",
    ):
        lossbridge.get("triplet_margin")(A, P, N[:, :4])


def test_integer_embeddings_and_empty_batches_are_refused() -> None:
    with pytest.raises(InputError, match="positive: expected a floating-point array, got dtype int64"):
        lossbridge.get("triplet_margin")(A, np.ones((7, 5), dtype=np.int64), N)
    with pytest.raises(InputError, match=r"anchor: expected a non-empty batch, got shape \(0, 5\)"):
        lossbridge.get("triplet_margin")(np.zeros((0, 5)), np.zeros((0, 5)), np.zeros((0, 5)))


def test_norm_degree_below_one_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"parameter 'p' expects float in \[1, inf\), got 0.5"):
        lossbridge.get("triplet_margin", p=0.5)


def test_triplet_distance_function_is_a_callable_or_none() -> None:
    """A user distance (any callable on the backend's arrays) replaces the p-norm; values only on NumPy."""
    rng = np.random.default_rng(4)
    a, p, n = rng.normal(size=(3, 5, 3))

    def manhattan(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        return np.abs(x1 - x2).sum(axis=-1)

    loss = lossbridge.get("triplet_margin", distance_function=manhattan, swap=True, reduction="none")
    d_neg = np.minimum(manhattan(a, n), manhattan(p, n))
    np.testing.assert_allclose(loss(a, p, n), np.maximum(1.0 + manhattan(a, p) - d_neg, 0.0), rtol=1e-13)
    with pytest.raises(ParameterError, match="distance_function"):
        lossbridge.get("triplet_margin", distance_function="euclidean")


def test_triplet_max_norm_is_refused_not_computed_as_one() -> None:
    """torch's p=inf is the max-norm; the p-power form would give |u|^inf summed to the 0th power = 1."""
    with pytest.raises(lossbridge.ParameterError, match=r"'p' expects float in \[1, inf\), got inf"):
        lossbridge.get("triplet_margin", p=float("inf"))
