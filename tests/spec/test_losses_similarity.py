"""Similarity, metric and ranking specs against float64 NumPy textbook formulas and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge
from lossbridge import ParameterError

RNG = np.random.default_rng(11)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def _cases() -> dict[str, tuple[dict, tuple[np.ndarray, ...]]]:
    x = RNG.normal(size=(6, 4))
    z = RNG.normal(size=(6, 4))
    w = RNG.normal(size=(6, 4))
    unit = x / np.linalg.norm(x, axis=-1, keepdims=True)
    groups = np.array([0, 0, 1, 1, 2, 2])
    return {
        "cosine_similarity": ({}, (z, x)),
        "cosine_embedding": ({"margin": 0.1}, (x, z, np.array([1.0, -1, 1, -1, -1, 1]))),
        "ntxent": ({"temperature": 0.5}, (groups, x)),
        "triplet_margin": ({"margin": 2.0}, (x, z, w)),
        "contrastive": ({"margin": 2.0}, (x, z, np.array([1.0, 0, 1, 0, 0, 1]))),
        "circle": ({"gamma": 4.0}, (groups, unit)),
        "margin_ranking": ({"margin": 0.2}, (x[:, 0], z[:, 0], np.sign(w[:, 0]))),
        "ranking_softmax": ({}, (RNG.integers(0, 3, size=(6, 4)).astype(float), x)),
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_vjp_matches_central_differences(name: str) -> None:
    params, arrays = _cases()[name]
    loss = lossbridge.get(name, reduction="sum", **params)
    _, grads = loss.value_and_grad(*arrays)
    grads = grads if isinstance(grads, tuple) else (grads,)
    spec = lossbridge.spec(name)
    positions = [k for k, i in enumerate(spec.inputs) if i.differentiable]
    h = 1e-6
    for k, g in zip(positions, grads):
        numeric = np.zeros_like(arrays[k])
        for idx in np.ndindex(arrays[k].shape):
            up, down = [np.array(a, copy=True) for a in arrays], [np.array(a, copy=True) for a in arrays]
            up[k][idx] += h
            down[k][idx] -= h
            numeric[idx] = (loss(*up) - loss(*down)) / (2 * h)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7)


def test_cosine_forms_against_the_formula() -> None:
    y, p = RNG.normal(size=(2, 5, 3))
    cos = _cos(y, p)
    for form, expected in (("negative", -cos), ("similarity", cos), ("distance", 1 - cos)):
        got = lossbridge.get("cosine_similarity", form=form, reduction="none")(y, p)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -2])
def test_cosine_along_another_axis(axis: int) -> None:
    """axis names the vectors' axis: the values keep the other axes in order; the gradient matches
    central differences in the caller's layout."""
    y, p = RNG.normal(size=(2, 3, 4, 5))
    expected = -_cos(np.moveaxis(y, axis, -1), np.moveaxis(p, axis, -1))
    loss = lossbridge.get("cosine_similarity", axis=axis, reduction="none")
    np.testing.assert_allclose(loss(y, p), expected, rtol=1e-12)
    summed = lossbridge.get("cosine_similarity", axis=axis, reduction="sum")
    grad = summed.grad(y, p)
    assert grad.shape == p.shape
    numeric = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        up, down = np.array(p, copy=True), np.array(p, copy=True)
        up[idx] += 1e-6
        down[idx] -= 1e-6
        numeric[idx] = (summed(y, up) - summed(y, down)) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_cosine_embedding_against_the_formula() -> None:
    a, b = RNG.normal(size=(2, 7, 3))
    y = np.array([1.0, -1, 1, -1, -1, 1, -1])
    cos = _cos(a, b)
    expected = np.where(y == 1, 1 - cos, np.maximum(cos - 0.2, 0))
    got = lossbridge.get("cosine_embedding", margin=0.2, eps=0.0, reduction="none")(a, b, y)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_margin_ranking_corner_gradient_is_the_declared_share() -> None:
    x = np.array([0.5, 1.0])
    y = np.array([1.0, -1.0])
    for share in (0.0, 0.5, 1.0):
        g1, _ = lossbridge.get("margin_ranking", kink_gradient=share, reduction="sum").grad(x, x.copy(), y)
        np.testing.assert_allclose(g1, -y * share)


def test_ranking_softmax_against_the_formula() -> None:
    s = RNG.normal(size=(3, 5))
    y = RNG.integers(0, 3, size=(3, 5)).astype(float)
    logp = s - np.log(np.exp(s).sum(-1, keepdims=True))
    got = lossbridge.get("ranking_softmax", reduction="none")(y, s)
    np.testing.assert_allclose(got, -(y * logp).sum(-1), rtol=1e-12)


def test_cosine_form_must_be_known() -> None:
    with pytest.raises(ParameterError, match="form"):
        lossbridge.get("cosine_similarity", form="angle")
