"""Margin losses under each framework's convention against the REAL framework, in float64.

Values and input gradients, every reduction, at random points and exactly on the kinks (a hinge
argument of 0, tied class scores), where each framework's autodiff makes its own choice:
PyTorch's MultiMarginLoss / MultiLabelMarginLoss kernels take 0 (``z > 0``), its HingeEmbeddingLoss
(``clamp_min``) the whole gradient, Keras (``tf.maximum``) the whole gradient, Optax (``jnp.maximum``,
``jnp.max``) an equal split. Expected numbers come from torch, keras and optax themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge

REDUCTIONS = ("mean", "sum", "none")
KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}
N, C = 6, 5


def _close(actual: Any, expected: Any, rtol: float = 1e-10) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=rtol, atol=1e-12)


def _rng() -> np.random.Generator:
    return np.random.default_rng(314)


def _labels() -> np.ndarray:
    return _rng().integers(0, C, size=N)


def _scores(point: str, labels: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """Random scores, or scores whose first rows sit on the margin or tie (exact in binary)."""
    f = 1.5 * _rng().normal(size=(N, C))
    if point == "kinks":
        for k, t in enumerate(labels[:4]):
            r1, r2 = (t + 1) % C, (t + 2) % C
            f[k] = -3.0 - 0.5 * np.arange(C)
            f[k, r1] = 0.5
            if k in (1, 2):
                f[k, r2] = 0.5  # tied rivals
            f[k, t] = 0.25 if k == 1 else 0.5 + margin  # rows 0 and 2: exactly on the margin
            if k == 3:
                f[k, r1], f[k, t] = 0.0, 0.5  # a rival tied with Keras's masked true slot (0)
    return f


def _signs(point: str, margin: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    y = 2.0 * _rng().integers(0, 2, size=(N, 4)) - 1.0
    f = 1.5 * _rng().normal(size=(N, 4))
    if point == "kinks":
        f[::2] = margin * y[::2]  # y f = margin exactly
    return y, f


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _torch_run(torch: Any, module: Any, pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    out = module(x, torch.as_tensor(target))
    out.sum().backward()
    return out.detach().numpy(), x.grad.numpy()


_MULTI_MARGIN = {
    "default": {},
    "p2": {"p": 2},
    "margin": {"margin": 0.75},
    "weight": {"weight": np.linspace(0.5, 2.0, C)},
    "p2-weight-margin": {"p": 2, "margin": 0.5, "weight": np.linspace(2.0, 0.5, C)},
}


@pytest.mark.parametrize("point", ["random", "kinks"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(_MULTI_MARGIN))
def test_torch_multi_margin_loss(torch: Any, case: str, reduction: str, point: str) -> None:
    kw = dict(_MULTI_MARGIN[case])
    native = {k: torch.tensor(v) if k == "weight" else v for k, v in kw.items()}
    labels = _labels()
    scores = _scores(point, labels, kw.get("margin", 1.0))
    value, grad = _torch_run(torch, torch.nn.MultiMarginLoss(reduction=reduction, **native), scores, labels)
    loss = lossbridge.get("MultiMarginLoss", convention="torch", reduction=reduction, **kw)
    assert loss.bound.spec.name == "multi_margin"
    mine, my_grad = loss.value_and_grad(labels, scores)
    _close(mine, value)
    _close(my_grad, grad)


def _label_lists() -> np.ndarray:
    rows = np.full((N, C), -1)
    rng = _rng()
    for row in rows:
        k = int(rng.integers(0, C + 1))
        row[:k] = rng.permutation(C)[:k]
        if k < C - 1:
            row[k + 1 :] = rng.integers(-1, C, size=C - k - 1)  # after the first -1: ignored
    rows[1] = [2, 2, 0, -1, 4]  # a label listed twice counts twice
    return rows


@pytest.mark.parametrize("point", ["random", "kinks"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_torch_multilabel_margin_loss(torch: Any, reduction: str, point: str) -> None:
    targets = _label_lists()
    scores = 1.5 * _rng().normal(size=(N, C))
    if point == "kinks":
        targets[0] = [1, -1, -1, -1, -1]
        scores[0] = [0.0, 1.0, 0.0, 0.25, -3.0]  # classes 0 and 2 exactly on the margin below class 1
    value, grad = _torch_run(torch, torch.nn.MultiLabelMarginLoss(reduction=reduction), scores, targets)
    for name in ("MultiLabelMarginLoss", "MultiLabelMargin"):
        loss = lossbridge.get(name, convention="torch", reduction=reduction)
        assert loss.bound.spec.name == "multilabel_margin"
        mine, my_grad = loss.value_and_grad(targets, scores)
        _close(mine, value)
        _close(my_grad, grad)


@pytest.mark.parametrize("point", ["random", "kinks"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.75])
def test_torch_hinge_embedding_loss(torch: Any, margin: float, reduction: str, point: str) -> None:
    y = 2.0 * _rng().integers(0, 2, size=(N, 3)) - 1.0
    d = np.abs(1.5 * _rng().normal(size=(N, 3)))
    if point == "kinks":
        y[0], d[0] = -1.0, margin  # clamp_min at equality: the whole gradient
    value, grad = _torch_run(torch, torch.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction), d, y)
    loss = lossbridge.get("HingeEmbeddingLoss", convention="torch", margin=margin, reduction=reduction)
    assert loss.bound.spec.name == "hinge_embedding"
    mine, my_grad = loss.value_and_grad(y, d)
    _close(mine, value)
    _close(my_grad, grad)


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


def _keras_run(native: Callable[..., Any], y_true: np.ndarray, y_pred: np.ndarray,
               weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf

    f = tf.Variable(y_pred, dtype=tf.float64)
    with tf.GradientTape() as tape:
        out = native(y_true, f) if weight is None else native(y_true, f, sample_weight=weight)
        total = tf.reduce_sum(out)
    return out.numpy(), tape.gradient(total, f).numpy()


def _keras_inputs(case: str, point: str) -> tuple[np.ndarray, np.ndarray]:
    if case == "CategoricalHinge":
        labels = _labels()
        return np.eye(C)[labels], _scores(point, labels)
    y, f = _signs(point)
    return ((y + 1) / 2 if case == "SquaredHinge" else y), f  # {0, 1} labels for one of them


@pytest.mark.parametrize("point", ["random", "kinks"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ["Hinge", "SquaredHinge", "CategoricalHinge"])
def test_keras_margin_losses(keras: Any, case: str, reduction: str, weighted: bool, point: str) -> None:
    y_true, y_pred = _keras_inputs(case, point)
    weight = _rng().uniform(0.0, 2.0, size=N) if weighted else None
    native = getattr(keras.losses, case)(reduction=KERAS_REDUCTION[reduction], dtype="float64")
    value, grad = _keras_run(native, y_true, y_pred, weight)
    loss = lossbridge.get(case, convention="keras", reduction=reduction, dtype="float64")
    mine, my_grad = loss.value_and_grad(y_true, y_pred, sample_weight=weight)
    _close(mine, value)
    _close(my_grad, grad)


@pytest.mark.parametrize("point", ["random", "kinks"])
@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "categorical_hinge"])
def test_keras_margin_functions(keras: Any, name: str, point: str) -> None:
    case = {"hinge": "Hinge", "squared_hinge": "SquaredHinge", "categorical_hinge": "CategoricalHinge"}[name]
    y_true, y_pred = _keras_inputs(case, point)
    value, grad = _keras_run(getattr(keras.losses, name), y_true, y_pred, None)
    loss = lossbridge.get(name, convention="keras", reduction="none", dtype="float64")
    mine, my_grad = loss.value_and_grad(y_true, y_pred)
    _close(mine, value)
    _close(my_grad, grad)


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


_OPTAX = {
    "hinge_loss": ("hinge", 1.0),
    "perceptron_loss": ("hinge", 0.0),
    "multiclass_hinge_loss": ("multiclass_hinge", 1.0),
    "multiclass_perceptron_loss": ("multiclass_hinge", 0.0),
}


def _optax_inputs(name: str, point: str) -> tuple[np.ndarray, np.ndarray]:
    margin = _OPTAX[name][1]
    if name.startswith("multiclass"):
        labels = _labels()
        return labels, _scores(point, labels, margin)
    return _signs(point, margin)


@pytest.mark.parametrize("point", ["random", "kinks"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(_OPTAX))
def test_optax_margin_losses(optax: Any, name: str, reduction: str, point: str) -> None:
    import jax
    import jax.numpy as jnp

    y_true, y_pred = _optax_inputs(name, point)
    native = getattr(optax.losses, name)
    reduce = {"mean": jnp.mean, "sum": jnp.sum, "none": jnp.sum}[reduction]
    value = np.asarray(native(y_pred, y_true))
    grad = np.asarray(jax.grad(lambda f: reduce(native(f, y_true)))(jnp.asarray(y_pred)))
    expected = {"mean": value.mean(), "sum": value.sum(), "none": value}[reduction]
    loss = lossbridge.get(name, convention="optax", reduction=reduction)
    assert loss.bound.spec.name == _OPTAX[name][0]
    mine, my_grad = loss.value_and_grad(y_true, y_pred)
    _close(mine, expected)
    _close(my_grad, grad)
