"""Metric-learning, similarity and ranking losses under each convention against the REAL framework.

lossbridge runs on the NumPy backend (truth-first / spec order, analytic gradients); the expected
values and input gradients come from torch.nn, keras.losses and optax.losses in float64.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge

REDUCTIONS = ("mean", "sum", "none")
KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def _close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=1e-10, atol=1e-12)


def _rng() -> np.random.Generator:
    return np.random.default_rng(7081)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _pairs(n: int) -> np.ndarray:
    """Group labels where every group has at least two members."""
    return _rng().permutation(np.arange(n) // 2).astype(np.int64)


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _torch_run(torch: Any, native: Any, arrays: tuple[np.ndarray, ...], grad: tuple[bool, ...]) -> tuple[Any, list]:
    tensors = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    out = native(*tensors)
    out.sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t, g in zip(tensors, grad) if g]


def _torch_cases() -> dict[str, tuple[str, dict[str, Any], tuple[np.ndarray, ...], tuple[bool, ...]]]:
    rng = _rng()
    x1, x2 = rng.normal(size=(2, 10))
    y = np.sign(rng.normal(size=10))
    x1[:3] = x2[:3]  # margin 0: exactly on the corner
    a, b = rng.normal(size=(2, 6, 4))
    ys = np.sign(rng.normal(size=6))
    a[0], b[0], ys[0] = [1.0, 0, 0, 0], [0, 2.0, 0, 0], -1.0  # cos = margin = 0
    anc, pos, neg = rng.normal(size=(3, 7, 5))
    pos[0] = anc[0]  # zero distance
    return {
        "MarginRankingLoss": ("MarginRankingLoss", {}, (x1, x2, y), (True, True, False)),
        "MarginRankingLoss-margin": ("MarginRankingLoss", {"margin": 0.3}, (x1, x2, y), (True, True, False)),
        "CosineEmbeddingLoss": ("CosineEmbeddingLoss", {}, (a, b, ys), (True, True, False)),
        "CosineEmbeddingLoss-margin": ("CosineEmbeddingLoss", {"margin": 0.2}, (a, b, ys), (True, True, False)),
        "TripletMarginLoss": ("TripletMarginLoss", {}, (anc, pos, neg), (True, True, True)),
        "TripletMarginLoss-p1-swap": (
            "TripletMarginLoss", {"p": 1.0, "swap": True, "margin": 2.0, "eps": 1e-3}, (anc, pos, neg), (True,) * 3
        ),
        "TripletMarginWithDistanceLoss": (
            "TripletMarginWithDistanceLoss", {"margin": 1.5, "swap": True}, (anc, pos, neg), (True,) * 3
        ),
    }


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(_torch_cases()))
def test_torch_metric_losses_match_torch_nn(torch: Any, case: str, reduction: str) -> None:
    name, kwargs, arrays, grad = _torch_cases()[case]
    native = getattr(torch.nn, name)(reduction=reduction, **kwargs)
    expected, expected_grads = _torch_run(torch, native, arrays, grad)
    loss = lossbridge.get(name, convention="torch", reduction=reduction, **kwargs)
    value, grads = loss.value_and_grad(*arrays)
    _close(value, expected)
    for g, e in zip(grads, expected_grads):
        _close(g, e)


def test_torch_triplet_with_distance_default_is_pairwise_distance(torch: Any) -> None:
    anc, pos, neg = _rng().normal(size=(3, 5, 3))
    native = torch.nn.TripletMarginWithDistanceLoss(distance_function=torch.nn.PairwiseDistance())
    expected = native(*(torch.tensor(x) for x in (anc, pos, neg))).item()
    _close(lossbridge.get("TripletMarginWithDistanceLoss", convention="torch")(anc, pos, neg), expected)


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_torch_triplet_with_distance_function_on_torch(torch: Any, reduction: str, swap: bool) -> None:
    """A user distance_function (a torch callable) on the torch backend: values and autograd gradients."""
    rng = _rng()
    arrays = rng.normal(size=(3, 7, 5))

    def distance(x1: Any, x2: Any) -> Any:
        return 1.0 - torch.nn.functional.cosine_similarity(x1, x2)

    native = torch.nn.TripletMarginWithDistanceLoss(distance_function=distance, margin=0.5, swap=swap,
                                                    reduction=reduction)
    expected, expected_grads = _torch_run(torch, native, tuple(arrays), (True, True, True))
    ours = lossbridge.get("TripletMarginWithDistanceLoss", backend="torch", convention="torch",
                          distance_function=distance, margin=0.5, swap=swap, reduction=reduction)
    value, grads = _torch_run(torch, ours, tuple(arrays), (True, True, True))
    _close(value, expected)
    for g, e in zip(grads, expected_grads):
        _close(g, e)


def test_torch_triplet_distance_function_has_no_closed_form_gradient_on_numpy(torch: Any) -> None:
    anchor, positive, negative = _rng().normal(size=(3, 4, 3))

    def distance(x1: Any, x2: Any) -> Any:
        return np.abs(x1 - x2).sum(axis=-1)

    loss = lossbridge.get("TripletMarginWithDistanceLoss", convention="torch", distance_function=distance)
    gap = 1.0 + distance(anchor, positive) - distance(anchor, negative)
    _close(loss(anchor, positive, negative), np.maximum(gap, 0.0).mean())
    with pytest.raises(NotImplementedError, match="autograd"):
        loss.grad(anchor, positive, negative)


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    keras = pytest.importorskip("keras")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


def _keras_run(keras: Any, native: Any, y_true: np.ndarray, y_pred: np.ndarray, weight: Any) -> tuple[Any, Any]:
    import tensorflow as tf

    pred = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        out = native(y_true, pred, sample_weight=weight)
        total = tf.reduce_sum(out)
    return keras.ops.convert_to_numpy(out), tape.gradient(total, pred).numpy()


def _keras_cases() -> dict[str, tuple[str, str, dict[str, Any], np.ndarray, np.ndarray]]:
    rng = _rng()
    yt, yp = rng.normal(size=(2, 6, 5))
    yt[0] = 0.0  # a zero vector: its norm is floored
    emb = _unit(rng.normal(size=(8, 4)))
    emb[1] = emb[0]  # same-label rows at cosine distance 0 (the clamp's corner)
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 2])  # every class twice or more; rows 0 and 1 alike
    return {
        "CosineSimilarity": ("CosineSimilarity", "CosineSimilarity", {}, yt, yp),
        "cosine_similarity": ("cosine_similarity", "CosineSimilarity", {}, yt, yp),
        "Circle": ("Circle", "Circle", {}, labels, emb),
        "Circle-options": ("circle", "Circle", {"gamma": 16.0, "margin": 0.25, "remove_diagonal": False}, labels, emb),
    }


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(_keras_cases()))
def test_keras_similarity_losses_match_keras(keras: Any, case: str, reduction: str, weighted: bool) -> None:
    name, cls, kwargs, y_true, y_pred = _keras_cases()[case]
    weight = np.linspace(0.0, 2.0, y_pred.shape[0]) if weighted else None
    native = getattr(keras.losses, cls)(reduction=KERAS_REDUCTION[reduction], dtype="float64", **kwargs)
    expected, expected_grad = _keras_run(keras, native, y_true, y_pred, weight)
    loss = lossbridge.get(name, convention="keras", reduction=reduction, dtype="float64", **kwargs)
    value, grad = loss.value_and_grad(y_true, y_pred, sample_weight=weight)
    _close(value, expected)
    _close(grad, expected_grad)


def test_keras_circle_singleton_rows_are_zero(keras: Any) -> None:
    emb = _unit(_rng().normal(size=(5, 3)))
    labels = np.array([0, 0, 1, 1, 2])  # sample 4 has no positive
    native = keras.losses.Circle(reduction="none", dtype="float64")
    expected = keras.ops.convert_to_numpy(native(labels, emb))
    _close(lossbridge.get("Circle", convention="keras", reduction="none", dtype="float64")(labels, emb), expected)
    assert expected[4] == 0.0


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", "sum", "none"])
def test_keras_circle_zero_rows_leave_the_mean(keras: Any, reduction: str, weighted: bool) -> None:
    """Keras masks rows whose loss is exactly 0 out of the mean (set_keras_mask): values and gradients."""
    emb = _unit(_rng().normal(size=(6, 3)))
    labels = np.array([0, 0, 1, 1, 2, 3])  # rows 4 and 5 have no positive: loss 0, masked
    weight = np.array([2.0, 2.0, 1.0, 1.0, 0.5, 3.0]) if weighted else None
    native = keras.losses.Circle(reduction=reduction, dtype="float64")
    expected, expected_grad = _keras_run(keras, native, labels, emb, weight)
    loss = lossbridge.get("Circle", convention="keras", reduction=reduction, dtype="float64")
    value, grad = loss.value_and_grad(labels, emb, sample_weight=weight)
    _close(value, expected)
    _close(grad, expected_grad)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight"])
def test_keras_circle_all_rows_zero_gives_zero(keras: Any, reduction: str) -> None:
    """A batch without any positive pair: Keras's divide_no_nan gives 0, not 0/0."""
    emb = _unit(_rng().normal(size=(3, 3)))
    labels = np.array([0, 1, 2])
    native = keras.losses.Circle(reduction=reduction, dtype="float64")
    expected, expected_grad = _keras_run(keras, native, labels, emb, None)
    value, grad = lossbridge.get("Circle", convention="keras", reduction=reduction, dtype="float64").value_and_grad(
        labels, emb
    )
    assert float(expected) == 0.0
    _close(value, expected)
    _close(grad, expected_grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("axis", [0, 1, -2])
def test_keras_cosine_similarity_axis(keras: Any, axis: int, reduction: str) -> None:
    """CosineSimilarity(axis=...): vectors along any axis; the values keep the other axes."""
    rng = _rng()
    y_true, y_pred = rng.normal(size=(2, 4, 5, 3))
    kept = tuple(n for k, n in enumerate(y_pred.shape) if k != axis % y_pred.ndim)
    weight = np.linspace(0.5, 2.0, int(np.prod(kept))).reshape(kept)  # one weight per value
    native = keras.losses.CosineSimilarity(axis=axis, reduction=KERAS_REDUCTION[reduction], dtype="float64")
    expected, expected_grad = _keras_run(keras, native, y_true, y_pred, weight)
    loss = lossbridge.get("CosineSimilarity", convention="keras", axis=axis, reduction=reduction, dtype="float64")
    value, grad = loss.value_and_grad(y_true, y_pred, sample_weight=weight)
    _close(value, expected)
    _close(grad, expected_grad)


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _optax_cases() -> dict[str, tuple[str, dict[str, Any], tuple[np.ndarray, ...], int]]:
    """name -> (optax function, kwargs, arrays in optax order, number of differentiable leading arrays)."""
    rng = _rng()
    p, t = rng.normal(size=(2, 6, 5))
    emb = rng.normal(size=(8, 3))
    labels = _pairs(8)
    labels[:3] = 9  # a group of three
    anc, pos, neg = rng.normal(size=(3, 7, 4))
    pos[0] = anc[0]
    neg[1] = pos[1]  # with margin 0: exactly on the corner
    scores = rng.normal(size=(4, 6))
    relevance = rng.integers(0, 3, size=(4, 6)).astype(np.float64)
    return {
        "cosine_similarity": ("cosine_similarity", {}, (p, t), 1),
        "cosine_similarity-eps": ("cosine_similarity", {"epsilon": 0.5}, (0.1 * p, t), 1),
        "cosine_distance": ("cosine_distance", {}, (p, t), 1),
        "ntxent": ("ntxent", {}, (emb, labels), 1),
        "ntxent-temperature": ("ntxent", {"temperature": 0.5}, (emb, labels), 1),
        "triplet_margin_loss": ("triplet_margin_loss", {}, (anc, pos, neg), 3),
        "triplet_margin_loss-corner": ("triplet_margin_loss", {"margin": 0.0, "norm_degree": 4}, (anc, pos, neg), 3),
        "ranking_softmax_loss": ("ranking_softmax_loss", {}, (scores, relevance), 1),
    }


@pytest.mark.parametrize("reduction", [None, *REDUCTIONS])
@pytest.mark.parametrize("case", sorted(_optax_cases()))
def test_optax_similarity_losses_match_optax(optax: Any, case: str, reduction: str | None) -> None:
    import jax

    name, kwargs, arrays, n_diff = _optax_cases()[case]
    fn = getattr(optax.losses, name)
    expected = np.asarray(fn(*arrays, **kwargs))
    scalar = expected.ndim == 0  # ntxent and ranking_softmax_loss reduce with a mean themselves
    if reduction is not None and not scalar:
        expected = {"mean": expected.mean(), "sum": expected.sum(), "none": expected}[reduction]
    if reduction is not None and scalar and reduction != "mean":
        pytest.skip("optax returns only the mean")

    def total(*diff: Any) -> Any:
        out = fn(*diff, *arrays[n_diff:], **kwargs)
        return out.mean() if reduction == "mean" and not scalar else out.sum()

    expected_grads = jax.grad(total, argnums=tuple(range(n_diff)))(*arrays[:n_diff])
    ours = arrays[::-1] if n_diff == 1 else arrays  # NumPy: truth first
    params = {} if reduction is None else {"reduction": reduction}
    loss = lossbridge.get(name, convention="optax", **params, **kwargs)
    value, grads = loss.value_and_grad(*ours)
    grads = grads if isinstance(grads, tuple) else (grads,)
    _close(value, expected)
    for g, e in zip(grads, expected_grads):
        _close(g, e)


def test_optax_cosine_names_keep_their_framework_sign(optax: Any) -> None:
    p, t = _rng().normal(size=(2, 4, 3))
    plus = lossbridge.get("cosine_similarity", convention="optax")(t, p)
    minus = lossbridge.get("cosine_similarity", convention="keras", dtype="float64", reduction="none")(t, p)
    _close(plus, np.asarray(optax.losses.cosine_similarity(p, t)))
    _close(minus, -plus)
