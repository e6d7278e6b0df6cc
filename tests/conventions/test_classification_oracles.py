"""Classification losses under each framework's convention, by the framework's own names and
keywords, on the NumPy backend, against the REAL torch.nn / keras.losses / optax.losses in float64:
values and input gradients, every reduction, sample weights where the framework has them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge

REDUCTIONS = ("mean", "sum", "none")
KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def _close(actual: Any, expected: Any, rtol: float = 1e-10) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=rtol, atol=1e-13)


def _rng() -> np.random.Generator:
    return np.random.default_rng(77)


def _labels01(shape: tuple[int, ...]) -> np.ndarray:
    y = _rng().integers(0, 2, size=shape).astype(np.float64)
    y.flat[0], y.flat[1] = 1.0, 0.0
    return y


def _probs(shape: tuple[int, ...]) -> np.ndarray:
    p = _rng().uniform(0.02, 0.98, size=shape)
    p.flat[0], p.flat[1] = 0.0, 1.0  # exact edges, maximally wrong against the labels above
    p.flat[2], p.flat[3] = 1e-7, 1.0 - 1e-7  # Keras's clip edges
    return p


def _logits(shape: tuple[int, ...]) -> np.ndarray:
    x = 2.0 * _rng().normal(size=shape)
    x.flat[0], x.flat[1] = 30.0, -30.0
    return x


def _rows(shape: tuple[int, ...]) -> np.ndarray:
    z = np.exp(_rng().normal(size=shape))
    return z / z.sum(axis=-1, keepdims=True)


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _torch_value_and_grad(torch: Any, module: Any, pred: np.ndarray, target: np.ndarray) -> tuple[Any, Any]:
    x = torch.from_numpy(pred.copy()).requires_grad_()
    t = torch.from_numpy(target.copy())
    out = module(x, t)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), x.grad.numpy()


def _torch_cases(torch: Any) -> dict[str, tuple[str, dict[str, Any], np.ndarray, np.ndarray]]:
    cls = _rng().integers(0, 5, size=(8,))
    cls[3] = -100
    w5 = np.linspace(0.5, 2.0, 5)
    return {
        "bce-probs-weight": ("BCELoss", {"weight": np.linspace(0.5, 1.5, 4)}, _labels01((6, 4)), _probs((6, 4))),
        "bce-logits-pos_weight": (
            "BCEWithLogitsLoss",
            {"pos_weight": np.array([0.5, 1.0, 2.0, 3.0]), "weight": np.linspace(1.0, 2.0, 4)},
            _rng().uniform(0.0, 1.0, size=(6, 4)),
            _logits((6, 4)),
        ),
        "soft_margin": ("SoftMarginLoss", {}, 2.0 * _labels01((6, 4)) - 1.0, _logits((6, 4))),
        "multilabel_soft_margin": (
            "MultiLabelSoftMarginLoss", {"weight": np.linspace(0.5, 2.0, 4)}, _labels01((6, 4)), _logits((6, 4)),
        ),
        "nll-weighted": ("NLLLoss", {"weight": w5}, cls, np.log(_rows((8, 5)))),
        "ce-probs-weight-smoothing": (
            "categorical_crossentropy", {"weight": w5, "label_smoothing": 0.2}, _rows((6, 5)), _logits((6, 5)),
        ),
        "ce-ignore-weighted": ("CrossEntropyLoss", {"weight": w5}, cls, _logits((8, 5))),
    }


def _native_torch(torch: Any, name: str, kwargs: dict[str, Any], reduction: str) -> Any:
    nn = torch.nn
    native = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    cls = {"categorical_crossentropy": nn.CrossEntropyLoss}.get(name) or getattr(nn, name)
    return cls(reduction=reduction, **native)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "case",
    ["bce-probs-weight", "bce-logits-pos_weight", "soft_margin", "multilabel_soft_margin", "nll-weighted",
     "ce-probs-weight-smoothing", "ce-ignore-weighted"],
)
def test_torch_classification_values_and_gradients(torch: Any, case: str, reduction: str) -> None:
    name, kwargs, target, pred = _torch_cases(torch)[case]
    value, grad = _torch_value_and_grad(torch, _native_torch(torch, name, kwargs, reduction), pred, target)
    loss = lossbridge.get(name, convention="torch", reduction=reduction, **kwargs)
    mine, mine_grad = loss.value_and_grad(target, pred)
    _close(mine, value)
    if reduction != "none":
        _close(mine_grad, grad)  # at p exactly 0 or 1 too: torch's backward is the convention's


def test_torch_bce_gradient_at_exact_zero_and_one_is_torchs_backward(torch: Any) -> None:
    y, p = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0, 0.0])
    value, grad = _torch_value_and_grad(torch, torch.nn.BCELoss(reduction="sum"), p, y)
    mine, mine_grad = lossbridge.get("BCELoss", convention="torch", reduction="sum").value_and_grad(y, p)
    _close(mine, value)
    # torch's backward divides by max(p (1 - p), 1e-12): -+1e12 where p is exactly 0 or 1 and the
    # label disagrees, 0 where it agrees. It is not the derivative of its clamped log; the torch
    # convention reproduces it, lossbridge's own default keeps the derivative (0 on the flat floor,
    # d(-y log p)/dp = -1/p where the log is not floored).
    _close(grad, [-1e12, 1e12, 0.0, 0.0], rtol=1e-8)  # torch keeps its 1e-12 as a float32 constant
    _close(mine_grad, grad)
    _, own_grad = lossbridge.get("bce", reduction="sum").value_and_grad(y, p)
    _close(own_grad, [0.0, 0.0, -1.0, 1.0])


def test_torch_cross_entropy_weights_the_smoothing_term_per_class(torch: Any) -> None:
    cls = _rng().integers(0, 5, size=(8,))
    x, w = _logits((8, 5)), np.linspace(0.5, 2.0, 5)
    native = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(w), label_smoothing=0.3)
    value, _ = _torch_value_and_grad(torch, native, x, cls)
    _close(lossbridge.get("CrossEntropyLoss", convention="torch", weight=w, label_smoothing=0.3)(cls, x), value)


def test_torch_smoothing_weights_match_when_the_spec_gets_the_class_weights(torch: Any) -> None:
    """The spec side of the weighted smoothing: values per sample times w_y equal torch's 'none'."""
    cls = _rng().integers(0, 5, size=(8,))
    x, w = _logits((8, 5)), np.linspace(0.5, 2.0, 5)
    native = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(w), label_smoothing=0.3, reduction="none")
    value, _ = _torch_value_and_grad(torch, native, x, cls)
    spec = lossbridge.spec("sparse_categorical_crossentropy")
    mine = spec.fn(cls, x, xp=np, from_logits=True, label_smoothing=0.3, weight_smoothing=True, class_weight=w)
    _close(mine * w[cls], value)


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    keras = pytest.importorskip("keras")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


def _keras_cases() -> dict[str, tuple[str, dict[str, Any], np.ndarray, np.ndarray]]:
    return {
        "focal-probs": ("BinaryFocalCrossentropy", {"gamma": 1.5, "label_smoothing": 0.1},
                        _labels01((6, 4)), _probs((6, 4))),
        "focal-logits-balanced": (
            "BinaryFocalCrossentropy", {"from_logits": True, "apply_class_balancing": True, "alpha": 0.3},
            _labels01((6, 4)), _logits((6, 4)),
        ),
        "cat-focal-probs": ("CategoricalFocalCrossentropy", {"alpha": 0.4, "gamma": 2.5},
                            np.eye(5)[_rng().integers(0, 5, size=6)], 0.8 * _rows((6, 5))),
        "cat-focal-logits": ("CategoricalFocalCrossentropy", {"from_logits": True, "label_smoothing": 0.1},
                             _rows((6, 5)), _logits((6, 5))),
        "gce": ("CategoricalGeneralizedCrossEntropy", {"q": 0.7}, _rng().integers(0, 5, size=(6,)), _rows((6, 5))),
        "bce-probs": ("BinaryCrossentropy", {}, _labels01((6, 4)), _probs((6, 4))),
    }


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(_keras_cases()))
def test_keras_classification_values_and_gradients(keras: Any, case: str, reduction: str, weighted: bool) -> None:
    import tensorflow as tf

    name, kwargs, y_true, y_pred = _keras_cases()[case]
    weight = _rng().uniform(0.0, 2.0, size=y_pred.shape[:1]) if weighted else None
    native = getattr(keras.losses, name)(reduction=KERAS_REDUCTION[reduction], dtype="float64", **kwargs)
    x = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        out = native(y_true, x, sample_weight=weight)
        total = tf.reduce_sum(out)
    grad = tape.gradient(total, x).numpy()
    loss = lossbridge.get(name, convention="keras", reduction=reduction, dtype="float64", **kwargs)
    mine, mine_grad = loss.value_and_grad(y_true, y_pred, sample_weight=weight)
    _close(mine, out.numpy())
    if reduction != "none":
        _close(mine_grad, grad)


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _optax_cases() -> dict[str, tuple[str, dict[str, Any], np.ndarray, np.ndarray]]:
    safe = _logits((6, 5))
    safe_rows = _rows((6, 5))
    safe[0, 2], safe_rows[0, 2] = -np.inf, 0.0
    safe_rows[0] /= safe_rows[0].sum()
    return {
        "sigmoid_focal_loss": ("sigmoid_focal_loss", {"gamma": 2.0}, _labels01((6, 4)), _logits((6, 4))),
        "sigmoid_focal_loss-alpha": ("sigmoid_focal_loss", {"alpha": 0.25, "gamma": 1.0},
                                     _rng().uniform(size=(6, 4)), _logits((6, 4))),
        "poly_loss_cross_entropy": ("poly_loss_cross_entropy", {"epsilon": 1.5}, _rows((6, 5)), _logits((6, 5))),
        "safe_softmax_cross_entropy": ("safe_softmax_cross_entropy", {}, safe_rows, safe),
        "sparsemax_loss": ("sparsemax_loss", {}, _labels01((6, 4)),
                           np.concatenate([[-1.0, 1.0, 0.3, -0.2], _logits((20,))]).reshape(6, 4)),
        "multiclass_sparsemax_loss": ("multiclass_sparsemax_loss", {}, _rng().integers(0, 5, size=(6,)),
                                      _logits((6, 5))),
        "softmax_cross_entropy_with_integer_labels": (
            "softmax_cross_entropy_with_integer_labels", {}, _rng().integers(0, 5, size=(6,)), _logits((6, 5)),
        ),
    }


@pytest.mark.parametrize("case", list(_optax_cases()))
def test_optax_classification_values_and_gradients(optax: Any, case: str) -> None:
    import jax
    import jax.numpy as jnp

    name, kwargs, y_true, y_pred = _optax_cases()[case]
    fn = getattr(optax.losses, name)
    expected = np.asarray(fn(jnp.asarray(y_pred), jnp.asarray(y_true), **kwargs))
    grad = np.asarray(jax.grad(lambda x: jnp.sum(fn(x, jnp.asarray(y_true), **kwargs)))(jnp.asarray(y_pred)))
    loss = lossbridge.get(name, convention="optax", **kwargs)
    mine, mine_grad = loss.value_and_grad(y_true, y_pred)
    _close(mine, expected)
    finite = np.isfinite(y_pred)
    _close(np.asarray(mine_grad)[finite], grad[finite])
    _close(lossbridge.get(name, convention="optax", reduction="mean", **kwargs)(y_true, y_pred), expected.mean())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_cross_entropy_gradient_along_probability_targets(torch: Any, reduction: str) -> None:
    """torch's CrossEntropyLoss with probability targets is differentiable in the targets; lossbridge's
    torch module gives the same target gradient (zero targets included), float64."""
    x = _logits((5, 4))
    t = _rows((5, 4))
    t[0] = [0.0, 1.0, 0.0, 0.0]
    t[1] = [0.5, 0.0, 0.5, 0.0]
    ours = lossbridge.get("CrossEntropyLoss", backend="torch", convention="torch", reduction=reduction)
    native = torch.nn.CrossEntropyLoss(reduction=reduction)
    grads = []
    for module in (ours, native):
        xt = torch.from_numpy(x.copy()).requires_grad_()
        tt = torch.from_numpy(t.copy()).requires_grad_()
        out = module(xt, tt)
        out.backward(torch.ones_like(out))
        grads.append((out.detach().numpy(), xt.grad.numpy(), tt.grad.numpy()))
    for a, e in zip(grads[0], grads[1], strict=True):
        _close(a, e)
