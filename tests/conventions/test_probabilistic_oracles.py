"""Probabilistic losses under each framework's convention against the REAL framework, in float64.

lossbridge runs on the NumPy backend, called by the framework's own name and keyword arguments;
expected values and input gradients come from torch.nn (autograd), keras.losses (tf.GradientTape)
and optax.losses (jax.grad). Points include the edges: zero and unit counts (Stirling's mask),
variances on and below the clamp, zero target probabilities, predictions on Keras's clip edges.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import lossbridge

REDUCTIONS = ("mean", "sum", "none")
KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def _close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=1e-10, atol=1e-13)


def _counts() -> np.ndarray:
    y = np.random.default_rng(1).poisson(2.0, size=(5, 4)).astype(np.float64)
    y[0, :3] = [0.0, 1.0, 2.0]
    return y


def _rows(seed: int, shape: tuple[int, ...] = (5, 4)) -> np.ndarray:
    z = np.exp(np.random.default_rng(seed).normal(size=shape))
    return z / z.sum(axis=-1, keepdims=True)


def _kl_points() -> tuple[np.ndarray, np.ndarray]:
    p, q = _rows(2), _rows(3)
    p[0] = [0.0, 0.25, 0.75, 0.0]  # zero target probabilities: 0 log 0 = 0
    q[1] = [1e-7, 1.0, 0.0, 0.5]  # Keras's clip edges and a zero under its floor
    return p, q


# -- torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _torch_check(torch: Any, name: str, kwargs: dict[str, Any], reduction: str, arrays: dict[str, np.ndarray],
                 order: tuple[str, ...]) -> None:
    """Compare ``torch.nn.<name>`` called in ``order`` with lossbridge called truth first."""
    tensors = {k: torch.tensor(v, requires_grad=k != "y_true") for k, v in arrays.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # KLDivLoss's warning about reduction="mean"
        native = getattr(torch.nn, name)(reduction=reduction, **kwargs)(*(tensors[k] for k in order))
    wrt = [k for k in arrays if k != "y_true"]
    expected_grads = torch.autograd.grad(native.sum(), [tensors[k] for k in wrt])
    ours = lossbridge.get(name, convention="torch", reduction=reduction, **kwargs)
    value, grads = ours.value_and_grad(*(arrays[k] for k in arrays))
    grads = grads if isinstance(grads, tuple) else (grads,)
    _close(value, native.detach().numpy())
    for mine, theirs in zip(grads, expected_grads, strict=True):
        _close(mine, theirs.numpy())


_POISSON_CASES = {
    "log-input": {},
    "log-input-full": {"full": True},
    "rates": {"log_input": False},
    "rates-full-eps": {"log_input": False, "full": True, "eps": 1e-3},
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(_POISSON_CASES))
def test_torch_poisson_nll_loss_matches(torch: Any, case: str, reduction: str) -> None:
    kwargs = _POISSON_CASES[case]
    rates = np.exp(np.random.default_rng(4).normal(size=(5, 4)))
    rates[0, 3] = 0.0 if kwargs.get("log_input", True) is False and kwargs.get("eps") else rates[0, 3]
    pred = rates if kwargs.get("log_input", True) is False else np.log(rates)
    arrays = {"y_true": _counts(), "y_pred": pred}
    _torch_check(torch, "PoissonNLLLoss", kwargs, reduction, arrays, ("y_pred", "y_true"))


def _variances(shape: tuple[int, ...]) -> np.ndarray:
    var = np.exp(np.random.default_rng(6).normal(size=shape))
    flat = var.reshape(-1)
    flat[0], flat[1] = 1e-6, 2.5e-7  # on the clamp, and below it (torch's gradient passes through)
    return var


_GAUSSIAN_CASES = {
    "same-shape": ({}, (5, 4)),
    "same-shape-full-eps": ({"full": True, "eps": 1e-3}, (5, 4)),
    "last-dim-1": ({}, (5, 1)),
    "one-fewer-axis": ({}, (5,)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(_GAUSSIAN_CASES))
def test_torch_gaussian_nll_loss_matches(torch: Any, case: str, reduction: str) -> None:
    kwargs, var_shape = _GAUSSIAN_CASES[case]
    rng = np.random.default_rng(7)
    arrays = {"y_true": rng.normal(size=(5, 4)), "y_pred": rng.normal(size=(5, 4)), "var": _variances(var_shape)}
    _torch_check(torch, "GaussianNLLLoss", kwargs, reduction, arrays, ("y_pred", "y_true", "var"))


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", [*REDUCTIONS, "batchmean"])
def test_torch_kl_div_loss_matches(torch: Any, reduction: str, log_target: bool) -> None:
    p, q = _rows(2), _rows(3)
    if not log_target:
        p[0] = [0.0, 0.25, 0.75, 0.0]
    target = np.log(p) if log_target else p
    arrays = {"y_true": target, "y_pred": np.log(q)}
    _torch_check(torch, "KLDivLoss", {"log_target": log_target}, reduction, arrays, ("y_pred", "y_true"))


# -- keras ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tf() -> Any:
    pytest.importorskip("keras")
    return pytest.importorskip("tensorflow")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["Poisson", "KLDivergence"])
def test_keras_poisson_and_kl_divergence_match(tf: Any, name: str, reduction: str, weighted: bool) -> None:
    import keras

    if name == "Poisson":
        y = _counts()
        f = np.exp(np.random.default_rng(4).normal(size=(5, 4)))
        f[1, 0] = 0.0  # a zero rate: log(0 + 1e-7)
    else:
        y, f = _kl_points()
    w = np.linspace(0.0, 2.0, 5) if weighted else None
    native = getattr(keras.losses, name)(reduction=KERAS_REDUCTION[reduction], dtype="float64")
    var = tf.Variable(f)
    with tf.GradientTape() as tape:
        expected = native(tf.constant(y), var, sample_weight=None if w is None else tf.constant(w))
        total = tf.reduce_sum(expected)
    expected_grad = tape.gradient(total, var)
    ours = lossbridge.get(name, convention="keras", reduction=reduction, dtype="float64")
    value, grad = ours.value_and_grad(y, f, sample_weight=w)
    _close(value, expected.numpy())
    _close(grad, expected_grad.numpy())


@pytest.mark.parametrize("name", ["poisson", "kl_divergence", "kld"])
def test_keras_function_names_match_the_keras_functions(tf: Any, name: str) -> None:
    import keras

    y, f = (_counts(), _rows(3) * 4.0) if name == "poisson" else _kl_points()
    expected = np.asarray(keras.losses.get(name)(y, f))
    _close(lossbridge.get(name, convention="keras", reduction="none", dtype="float64")(y, f), expected)


# -- optax ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jax() -> Any:
    jax = pytest.importorskip("jax")
    pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)
    return jax


@pytest.mark.parametrize(
    "name", ["kl_divergence", "kl_divergence_with_log_targets", "generalized_kl_divergence", "convex_kl_divergence"]
)
def test_optax_kl_divergences_match(jax: Any, name: str) -> None:
    import optax

    p, q = _rows(2), _rows(3)
    if name == "kl_divergence_with_log_targets":
        target = np.log(p)
    else:
        p[0] = [0.0, 0.25, 0.75, 0.0]
        target = p * (3.0 if "generalized" in name or "convex" in name else 1.0)  # unnormalized measures
    log_q = np.log(q)
    fn = getattr(optax.losses, name)
    jt = jax.numpy.asarray(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # convex_kl_divergence is deprecated in optax
        expected = fn(jax.numpy.asarray(log_q), jt)
        expected_grad = jax.grad(lambda x: fn(x, jt).sum())(jax.numpy.asarray(log_q))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ours warns for the deprecated name too (tested elsewhere)
        loss = lossbridge.get(name, convention="optax")
    value, grad = loss.value_and_grad(target, log_q)
    _close(value, np.asarray(expected))
    _close(grad, np.asarray(expected_grad))
