"""Each loss convention, run on the NumPy reference backend, against the REAL framework in float64.

The expected numbers come from torch.nn, keras.losses and optax.losses themselves (never from
lossbridge); every framework is imported with ``pytest.importorskip``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge

REDUCTIONS = ("mean", "sum", "none")
KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def _close(actual: Any, expected: Any, rtol: float = 1e-10) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    np.testing.assert_allclose(actual, np.asarray(expected), rtol=rtol, atol=1e-12)


def _rng() -> np.random.Generator:
    return np.random.default_rng(20241124)


def _probs(shape: tuple[int, ...]) -> np.ndarray:
    p = _rng().uniform(0.01, 0.99, size=shape)
    p.flat[0], p.flat[1] = 0.0, 1.0  # exact edges: torch floors the log, keras clips p
    return p


def _labels01(shape: tuple[int, ...]) -> np.ndarray:
    y = _rng().integers(0, 2, size=shape).astype(np.float64)
    y.flat[0], y.flat[1] = 1.0, 0.0  # the edges above are maximally wrong
    return y


def _logits(shape: tuple[int, ...], extreme: bool = True) -> np.ndarray:
    x = 3.0 * _rng().normal(size=shape)
    if extreme:
        x.flat[:4] = [50.0, -50.0, 1000.0, -1000.0]
    return x


def _rows(shape: tuple[int, ...], total: float = 1.0) -> np.ndarray:
    z = np.exp(_rng().normal(size=shape))
    return total * z / z.sum(axis=-1, keepdims=True)


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _t(torch: Any, x: np.ndarray) -> Any:
    return torch.from_numpy(np.ascontiguousarray(x))


def _torch_cases(torch: Any) -> dict[str, tuple[Callable[..., Any], tuple[np.ndarray, ...], dict[str, Any]]]:
    nn = torch.nn
    y, yhat = _rng().normal(size=(2, 6, 4))
    cls = _rng().integers(0, 5, size=(7,))
    cls[2] = -100
    a, p, n = _rng().normal(size=(3, 6, 8))
    return {
        "mse": (nn.MSELoss, (y, yhat), {}),
        "mae": (nn.L1Loss, (y, yhat), {}),
        "huber": (lambda **k: nn.HuberLoss(delta=0.7, **k), (y, yhat), {"delta": 0.7}),
        "bce-probs": (nn.BCELoss, (_labels01((6, 4)), _probs((6, 4))), {}),
        "bce-logits": (nn.BCEWithLogitsLoss, (_labels01((6, 4)), _logits((6, 4))), {"from_logits": True}),
        "cce": (
            lambda **k: nn.CrossEntropyLoss(label_smoothing=0.2, **k),
            (_rows((6, 5)), _logits((6, 5))),
            {"label_smoothing": 0.2},
        ),
        "sparse": (nn.CrossEntropyLoss, (cls, _logits((7, 5))), {}),
        "sparse-weighted": (
            lambda **k: nn.CrossEntropyLoss(weight=torch.linspace(0.5, 2.0, 5, dtype=torch.float64), **k),
            (cls, _logits((7, 5))),
            {"class_weight": np.linspace(0.5, 2.0, 5)},
        ),
        "sparse-ignore-3-smoothing": (
            lambda **k: nn.CrossEntropyLoss(ignore_index=3, label_smoothing=0.1, **k),
            (np.where(cls == -100, 3, cls), _logits((7, 5))),
            {"ignore_index": 3, "label_smoothing": 0.1},
        ),
        "triplet": (lambda **k: nn.TripletMarginLoss(margin=2.0, **k), (a, p, n), {"margin": 2.0}),
        "triplet-p1-swap": (
            lambda **k: nn.TripletMarginLoss(margin=2.0, p=1.0, swap=True, **k),
            (a, p, n),
            {"margin": 2.0, "p": 1.0, "swap": True},
        ),
    }


_TORCH_SPEC = {
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "sparse": "sparse_categorical_crossentropy",
    "triplet": "triplet_margin",
}
_TORCH_CASES = (
    "mse",
    "mae",
    "huber",
    "bce-probs",
    "bce-logits",
    "cce",
    "sparse",
    "sparse-weighted",
    "sparse-ignore-3-smoothing",
    "triplet",
    "triplet-p1-swap",
)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", _TORCH_CASES)
def test_torch_convention_matches_torch_nn(torch: Any, case: str, reduction: str) -> None:
    make, arrays, params = _torch_cases(torch)[case]
    name = _TORCH_SPEC.get(case.split("-")[0], case.split("-")[0])
    spec = lossbridge.spec(name)
    loss = lossbridge.get(name, convention="torch", reduction=reduction, **params)
    if spec.inputs[0].role == "target":  # torch order: (prediction, target)
        expected = make(reduction=reduction)(_t(torch, arrays[1]), _t(torch, arrays[0]))
    else:
        expected = make(reduction=reduction)(*(_t(torch, x) for x in arrays))
    _close(loss(*arrays), expected.numpy())


def test_torch_bce_gradient_matches_autograd_inside_the_domain(torch: Any) -> None:
    y, p = _labels01((6, 4)), _rng().uniform(0.05, 0.95, size=(6, 4))
    tp = _t(torch, p).requires_grad_()
    torch.nn.BCELoss()(tp, _t(torch, y)).backward()
    _close(lossbridge.get("bce", convention="torch").grad(y, p), tp.grad.numpy())


def test_torch_triplet_gradient_matches_autograd(torch: Any) -> None:
    a, p, n = _rng().normal(size=(3, 5, 4))
    ta, tp, tn = (_t(torch, x).requires_grad_() for x in (a, p, n))
    torch.nn.TripletMarginLoss(margin=3.0, swap=True)(ta, tp, tn).backward()
    grads = lossbridge.get("triplet_margin", convention="torch", margin=3.0, swap=True).grad(a, p, n)
    for mine, theirs in zip(grads, (ta, tp, tn), strict=True):
        _close(mine, theirs.grad.numpy())


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    keras = pytest.importorskip("keras")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


def _keras_cases(keras: Any) -> dict[str, tuple[Any, tuple[np.ndarray, ...], dict[str, Any]]]:
    losses = keras.losses
    y, yhat = _rng().normal(size=(2, 6, 4))
    scores = _rng().normal(size=(6, 4))
    scores[0] = [-1.0, -2.0, -0.5, -3.0]  # every score negative: Keras's max counts the true slot as 0
    one_hot = np.eye(4)[_rng().integers(0, 4, size=6)]
    return {
        "mse": (losses.MeanSquaredError, (y, yhat), {}),
        "mae": (losses.MeanAbsoluteError, (y, yhat), {}),
        "huber": (lambda **k: losses.Huber(delta=0.7, **k), (y, yhat), {"delta": 0.7}),
        "bce-probs": (
            lambda **k: losses.BinaryCrossentropy(label_smoothing=0.1, **k),
            (_labels01((6, 4)), _probs((6, 4))),
            {"label_smoothing": 0.1},
        ),
        "bce-logits": (
            lambda **k: losses.BinaryCrossentropy(from_logits=True, **k),
            (_labels01((6, 4)), _logits((6, 4))),
            {"from_logits": True},
        ),
        "cce-probs": (
            lambda **k: losses.CategoricalCrossentropy(label_smoothing=0.2, **k),
            (_rows((6, 5)), _rows((6, 5), total=0.7)),  # rows summing to 0.7: Keras renormalizes
            {"label_smoothing": 0.2},
        ),
        "cce-logits": (
            lambda **k: losses.CategoricalCrossentropy(from_logits=True, **k),
            (_rows((6, 5)), _logits((6, 5))),
            {"from_logits": True},
        ),
        "sparse-probs": (
            losses.SparseCategoricalCrossentropy,
            (_rng().integers(0, 5, size=(7,)), np.vstack([_rows((6, 5), total=0.8), [[0.0, 1.0, 0, 0, 0]]])),
            {},
        ),
        "sparse-logits": (
            lambda **k: losses.SparseCategoricalCrossentropy(from_logits=True, **k),
            (_rng().integers(0, 5, size=(7,)), _logits((7, 5))),
            {"from_logits": True},
        ),
        "sparse-ignore": (
            lambda **k: losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=2, **k),
            (np.array([0, 2, 1, 2, 4, 3, 2]), _logits((7, 5))),
            {"from_logits": True, "ignore_index": 2},
        ),
        "hinge-01": (losses.Hinge, (_labels01((6, 4)), scores), {}),
        "hinge-sign": (losses.Hinge, (2 * _labels01((6, 4)) - 1, scores), {}),
        "squared_hinge-01": (losses.SquaredHinge, (_labels01((6, 4)), scores), {}),
        "multiclass_hinge": (losses.CategoricalHinge, (one_hot, scores), {}),
    }


_KERAS_SPEC = {
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "sparse": "sparse_categorical_crossentropy",
}
_KERAS_CASES = (
    "mse",
    "mae",
    "huber",
    "bce-probs",
    "bce-logits",
    "cce-probs",
    "cce-logits",
    "sparse-probs",
    "sparse-logits",
    "sparse-ignore",
    "hinge-01",
    "hinge-sign",
    "squared_hinge-01",
    "multiclass_hinge",
)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", _KERAS_CASES)
def test_keras_convention_matches_keras_losses(keras: Any, case: str, reduction: str, weighted: bool) -> None:
    make, (y_true, y_pred), params = _keras_cases(keras)[case]
    name = _KERAS_SPEC.get(case.split("-")[0], case.split("-")[0])
    weight = _rng().uniform(0.0, 2.0, size=y_pred.shape[:1]) if weighted else None
    native = make(reduction=KERAS_REDUCTION[reduction])
    expected = keras.ops.convert_to_numpy(native(y_true, y_pred, sample_weight=weight))
    loss = lossbridge.get(name, convention="keras", reduction=reduction, dtype="float64", **params)
    _close(loss(y_true, y_pred, sample_weight=weight), expected)


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _optax_cases(optax: Any) -> dict[str, tuple[Callable[..., Any], tuple[np.ndarray, ...], dict[str, Any]]]:
    ol = optax.losses
    y, yhat = _rng().normal(size=(2, 6, 4))
    cls = _rng().integers(0, 5, size=(7,))
    a, p, n = _rng().normal(size=(3, 6, 8))
    return {
        "mse": (lambda t, f: ol.squared_error(f, t), (y, yhat), {}),
        "huber": (lambda t, f: ol.huber_loss(f, t, delta=0.7), (y, yhat), {"delta": 0.7}),
        "binary_crossentropy": (
            lambda t, f: ol.sigmoid_binary_cross_entropy(f, t),
            (_labels01((6, 4)), _logits((6, 4))),
            {},
        ),
        "categorical_crossentropy": (
            lambda t, f: ol.softmax_cross_entropy(f, t),
            (_rows((6, 5)), _logits((6, 5))),
            {},
        ),
        "sparse_categorical_crossentropy": (
            lambda t, f: ol.softmax_cross_entropy_with_integer_labels(f, t),
            (cls, _logits((7, 5))),
            {},
        ),
        "hinge": (lambda t, f: ol.hinge_loss(f, t), (2 * _labels01((6, 4)) - 1, _logits((6, 4), False)), {}),
        "multiclass_hinge": (lambda t, f: ol.multiclass_hinge_loss(f, t), (cls, _logits((7, 5), False)), {}),
        "triplet_margin": (lambda *x: ol.triplet_margin_loss(*x, margin=2.0), (a, p, n), {"margin": 2.0}),
    }


_OPTAX_CASES = (
    "mse",
    "huber",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "hinge",
    "multiclass_hinge",
    "triplet_margin",
)


@pytest.mark.parametrize("case", _OPTAX_CASES)
def test_optax_convention_matches_optax_losses(optax: Any, case: str) -> None:
    fn, arrays, params = _optax_cases(optax)[case]
    expected = np.asarray(fn(*arrays))
    loss = lossbridge.get(case, convention="optax", **params)  # optax: unreduced by default
    _close(loss(*arrays), expected)
    _close(lossbridge.get(case, convention="optax", reduction="mean", **params)(*arrays), expected.mean())


# -- traceability -----------------------------------------------------------------------------------
_LOSSES = (
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


@pytest.mark.parametrize("name", _LOSSES)
def test_spec_function_and_vjp_trace_under_jax_jit(optax: Any, name: str) -> None:
    import jax
    import jax.numpy as jnp

    from lossbridge.spec._domain import domain

    spec = lossbridge.spec(name)
    params = lossbridge.get(name).bound.params
    shape = (5, 4) if spec.elementwise else (6, 5)
    rng = _rng()
    arrays = [domain(i.domain_for(params)).sample(rng, shape, np.float64, False) for i in spec.inputs]
    values = jax.jit(lambda *xs: spec.fn(*xs, xp=jnp, **params))(*arrays)
    _close(values, spec.fn(*arrays, xp=np, **params))
    grads = jax.jit(lambda *xs: spec.vjp(*xs, jnp.ones(values.shape), xp=jnp, **params))(*arrays)
    argnums = tuple(k for k, i in enumerate(spec.inputs) if i.differentiable)
    auto = jax.grad(lambda *xs: jnp.sum(spec.fn(*xs, xp=jnp, **params)), argnums=argnums)(*arrays)
    for mine, theirs in zip(grads, auto, strict=True):
        _close(mine, theirs, rtol=1e-9)
