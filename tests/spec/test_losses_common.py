"""Checks every seed loss spec passes: registration, doctests, analytic vjp vs finite differences,
and an unchanged run on array-api-strict. Family-specific values live in test_losses_<family>.py.
"""

from __future__ import annotations

import doctest
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.bound import bind
from lossbridge.spec import _classification, _margin, _metric, _ops, _regression

Builder = Callable[[np.random.Generator], tuple[np.ndarray, ...]]


def _reg(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.normal(size=(4, 3)), rng.normal(size=(4, 3))


def _bin_probs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.integers(0, 2, size=(4, 3)).astype(float), rng.uniform(0.05, 0.95, size=(4, 3))


def _bin_logits(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.uniform(0, 1, size=(4, 3)), 3.0 * rng.normal(size=(4, 3))


def _rows(rng: np.random.Generator, shape: tuple[int, ...] = (4, 5)) -> np.ndarray:
    z = np.exp(rng.normal(size=shape))
    return z / z.sum(axis=-1, keepdims=True)


def _cat_probs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return _rows(rng), 0.9 * _rows(rng)


def _cat_logits(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return _rows(rng), 2.0 * rng.normal(size=(4, 5))


def _sparse_probs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.integers(0, 5, size=(4,)), 0.9 * _rows(rng)


def _sparse_logits(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.integers(0, 5, size=(2, 3)), 2.0 * rng.normal(size=(2, 3, 5))


def _sparse_logits_torch_layout(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    y, x = _sparse_logits(rng)
    return y, np.moveaxis(x, -1, 1)  # (N, C, d1): the class axis where torch users hold it


def _signs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.integers(0, 2, size=(4, 3)).astype(float), rng.normal(size=(4, 3))


def _one_hot_scores(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return np.eye(5)[rng.integers(0, 5, size=4)], rng.normal(size=(4, 5)) - 1.0


def _triplets(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return tuple(rng.normal(size=(3, 4, 6)))


CASES: dict[str, tuple[str, dict[str, Any], Builder]] = {
    "mae": ("mae", {}, _reg),
    "huber": ("huber", {"delta": 0.6}, _reg),
    "huber-keras": ("huber", {"convention": "keras", "dtype": "float64"}, _reg),
    "bce-probs": ("binary_crossentropy", {}, _bin_probs),
    "bce-probs-clip": ("binary_crossentropy", {"clip_eps": 0.1, "label_smoothing": 0.2}, _bin_probs),
    "bce-logits": ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.3}, _bin_logits),
    "bce-logits-floor": ("binary_crossentropy", {"from_logits": True, "log_min": -2.0}, _bin_logits),
    "cce-probs": ("categorical_crossentropy", {}, _cat_probs),
    "cce-before-clip": (
        "categorical_crossentropy",
        {"convention": "keras", "clip_eps": 0.05, "dtype": "float64"},
        _cat_probs,
    ),
    "cce-after-clip": ("categorical_crossentropy", {"normalize": "after_clip", "clip_eps": 0.05}, _cat_probs),
    "cce-logits": ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.1}, _cat_logits),
    "sparse-probs": ("sparse_categorical_crossentropy", {"convention": "keras", "dtype": "float64"}, _sparse_probs),
    "sparse-logits": ("sparse_categorical_crossentropy", {"from_logits": True}, _sparse_logits),
    "sparse-weighted": (
        "sparse_categorical_crossentropy",
        {
            "convention": "torch",
            "class_weight": [0.5, 1.0, 2.0, 1.5, 0.2],
            "ignore_index": 3,
            "label_smoothing": 0.1,
        },
        _sparse_logits_torch_layout,
    ),
    "sparse-caffe-floor": (
        "sparse_categorical_crossentropy",
        {"from_logits": True, "log_min": -1.5},
        _sparse_logits,
    ),
    "hinge": ("hinge", {}, _signs),
    "squared_hinge": ("squared_hinge", {}, _signs),
    "multiclass_hinge": ("multiclass_hinge", {}, _sparse_logits),
    "multiclass_hinge-keras": ("multiclass_hinge", {"convention": "keras", "dtype": "float64"}, _one_hot_scores),
    "triplet": ("triplet_margin", {"margin": 3.0}, _triplets),
    "triplet-torch-p3": ("triplet_margin", {"convention": "torch", "p": 3.0, "margin": 3.0}, _triplets),
    "triplet-p1-swap": ("triplet_margin", {"p": 1.0, "swap": True, "margin": 3.0}, _triplets),
}


def _loss(case: str, **extra: Any) -> tuple[Any, tuple[np.ndarray, ...]]:
    name, params, build = CASES[case]
    params = {**params, **extra}
    convention = params.pop("convention", None)
    return lossbridge.get(name, convention=convention, **params), build(np.random.default_rng(7))


def _central_differences(loss: Any, arrays: tuple[np.ndarray, ...], k: int, weight: np.ndarray) -> np.ndarray:
    h = 1e-6
    grad = np.zeros_like(arrays[k])
    for idx in np.ndindex(arrays[k].shape):
        shifted = []
        for sign in (1.0, -1.0):
            x = arrays[k].copy()
            x[idx] += sign * h
            shifted.append(float(loss(*arrays[:k], x, *arrays[k + 1 :], sample_weight=weight)))
        grad[idx] = (shifted[0] - shifted[1]) / (2 * h)
    return grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_vjp_matches_central_differences(case: str, reduction: str) -> None:
    loss, arrays = _loss(case, reduction=reduction)
    weight = np.random.default_rng(3).uniform(0.5, 1.5, size=arrays[-1].shape[:1])
    _, grads = loss.value_and_grad(*arrays, sample_weight=weight)
    grads = grads if isinstance(grads, tuple) else (grads,)
    diff = [k for k, i in enumerate(loss.spec.inputs) if i.differentiable]
    for k, grad in zip(diff, grads, strict=True):
        if reduction == "none":  # the gradient of the sum of the weighted terms
            summed = lossbridge.get(
                loss.spec.name, convention=_conv(case), **{**_params(case), "reduction": "sum"}
            )
            expected = _central_differences(summed, arrays, k, weight)
        else:
            expected = _central_differences(loss, arrays, k, weight)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


def _conv(case: str) -> str | None:
    return CASES[case][1].get("convention")


def _params(case: str) -> dict[str, Any]:
    return {k: v for k, v in CASES[case][1].items() if k != "convention"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_runs_unchanged_on_array_api_strict(case: str) -> None:
    xps = pytest.importorskip("array_api_strict")
    loss, arrays = _loss(case, reduction="none")
    bound = bind(loss.spec, convention=_conv(case), params={**_params(case), "reduction": "none"})
    weight = np.linspace(0.5, 1.5, arrays[-1].shape[0])
    value, grads = bound.value_and_grad(
        xps, *(xps.asarray(x) for x in arrays), sample_weight=xps.asarray(weight)
    )
    ref_value, ref_grads = loss.value_and_grad(*arrays, sample_weight=weight)
    ref_grads = ref_grads if isinstance(ref_grads, tuple) else (ref_grads,)
    np.testing.assert_allclose(np.asarray(value), ref_value, rtol=1e-12)
    for mine, ref in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(np.asarray(mine), ref, rtol=1e-12)


@pytest.mark.parametrize("module", [_regression, _classification, _margin, _metric, _ops])
def test_docstring_examples_run(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


_SEED = (
    "mse",
    "mae",
    "huber",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "hinge",
    "squared_hinge",
    "multiclass_hinge",
    "triplet_margin",
)


@pytest.mark.parametrize("name", _SEED)
def test_spec_is_registered_with_aliases_and_valid_conventions(name: str) -> None:
    spec = lossbridge.spec(name)
    spec.validate_declaration()
    for alias in spec.aliases:
        assert lossbridge.spec(alias) is spec
    assert (
        spec.usage and spec.references and spec.formula and spec.fn.__doc__ and ".. math::" in spec.fn.__doc__
    )
    for fw, conv in spec.conventions.items():
        assert conv.notes, fw
        bind(spec, convention=fw)  # every convention's values validate


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("bce", "binary_crossentropy"),
        ("log_loss", "binary_crossentropy"),
        ("L1", "mae"),
        ("Huber-Loss", "huber"),
        ("crammer_singer", "multiclass_hinge"),
        ("triplet", "triplet_margin"),
    ],
)
def test_aliases_resolve(alias: str, name: str) -> None:
    assert lossbridge.spec(alias).name == name
