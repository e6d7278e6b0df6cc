"""The third oracle: under ``convention="optax"`` lossbridge matches Optax itself, in float64.

Losses: values (unreduced, as Optax returns them) and input gradients. Optimizers: 100 steps on
a small least-squares problem, the gradients of Optax's own run fed to both, relative error
<= 1e-10. Every registered spec with an ``optax`` convention must have an oracle here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossbridge

TOL = 1e-10


def _rel(actual: Any, expected: Any) -> float:
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-300))


def _optax_convention(kind: str, oracles: dict[str, Any]) -> list[str]:
    """The specs of lossbridge's own seed catalog with an optax convention.

    These run end to end on the JAX backend against Optax here. Every other spec's optax convention
    is checked against Optax on the reference backend (tests/conventions), and the conformance kit
    checks the JAX backend against that reference, so each is verified on JAX transitively.
    """
    return sorted(e.name for e in lossbridge.catalog(kind=kind) if "optax" in e.conventions and e.name in oracles)


# -- losses ------------------------------------------------------------------------------------------
def _logits(rng: np.random.Generator, shape=(6, 4)) -> np.ndarray:
    return 2.0 * rng.normal(size=shape)


def _bce(rng):
    return (
        (_logits(rng), rng.integers(0, 2, size=(6, 4)).astype(np.float64)),
        {},
        optax.losses.sigmoid_binary_cross_entropy,
    )


def _cce(rng):
    target = np.exp(rng.normal(size=(6, 4)))
    return (_logits(rng), target / target.sum(-1, keepdims=True)), {}, optax.losses.softmax_cross_entropy


def _scce(rng):
    return (
        (_logits(rng), rng.integers(0, 4, size=6)),
        {},
        optax.losses.softmax_cross_entropy_with_integer_labels,
    )


def _hinge(rng):
    sign = (2 * rng.integers(0, 2, size=(6, 4)) - 1).astype(np.float64)
    return (_logits(rng), sign), {}, optax.losses.hinge_loss


def _huber(rng):
    return (
        (2 * rng.normal(size=(6, 4)), rng.normal(size=(6, 4))),
        {"delta": 0.7},
        lambda p, t: optax.losses.huber_loss(p, t, delta=0.7),
    )


def _mse(rng):
    return (rng.normal(size=(6, 4)), rng.normal(size=(6, 4))), {}, optax.losses.squared_error


def _mc_hinge(rng):
    return (_logits(rng), rng.integers(0, 4, size=6)), {}, optax.losses.multiclass_hinge_loss


def _triplet(rng):
    arrays = tuple(rng.normal(size=(6, 5)) for _ in range(3))
    return arrays, {"margin": 0.5}, lambda a, p, n: optax.losses.triplet_margin_loss(a, p, n, margin=0.5)


LOSS_ORACLES: dict[
    str, Callable[[np.random.Generator], tuple[tuple[np.ndarray, ...], dict[str, Any], Any]]
] = {
    "binary_crossentropy": _bce,
    "categorical_crossentropy": _cce,
    "sparse_categorical_crossentropy": _scce,
    "hinge": _hinge,
    "huber": _huber,
    "mse": _mse,
    "multiclass_hinge": _mc_hinge,
    "triplet_margin": _triplet,
}


@pytest.mark.parametrize("name", _optax_convention("loss", LOSS_ORACLES))
def test_loss_matches_optax(name):
    arrays, params, native = LOSS_ORACLES[name](np.random.default_rng(0))
    ours = lossbridge.get(name, backend="jax", convention="optax", **params)
    args = [jnp.asarray(a) for a in arrays]
    expected, actual = native(*args), ours(*args)
    assert actual.dtype == jnp.float64
    assert _rel(actual, expected) <= TOL
    diff = [
        k for k, a in enumerate(args) if jnp.issubdtype(a.dtype, jnp.floating) and (k == 0 or len(args) == 3)
    ]

    def summed(fn):
        return jax.grad(lambda *d: jnp.sum(fn(*_replace(args, diff, d))), argnums=tuple(range(len(diff))))

    for g_ours, g_native in zip(
        summed(ours)(*[args[k] for k in diff]), summed(native)(*[args[k] for k in diff]), strict=True
    ):
        assert _rel(g_ours, g_native) <= TOL


def _replace(args: list[Any], positions: list[int], values: tuple[Any, ...]) -> list[Any]:
    out = list(args)
    for k, v in zip(positions, values, strict=True):
        out[k] = v
    return out


# -- optimizers ----------------------------------------------------------------------------------------
def _problem() -> tuple[list[np.ndarray], Callable[[list[Any]], list[Any]]]:
    """Least squares ``A x - b`` plus two quadratic matrix terms (one large enough for Optax's
    Adafactor to factor, >= 128 on both axes)."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(8, 3)), rng.normal(size=8)
    m, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    big_m, big_target = rng.normal(size=(130, 129)), rng.normal(size=(130, 129))

    def grad(params: list[Any]) -> list[Any]:  # works on NumPy and JAX arrays
        x, w, z = params
        return [a.T @ (a @ x - b) / 8.0, (w - target) * m, (z - big_target) * big_m]

    return [rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=(130, 129))], grad


OPTIMIZER_ORACLES: dict[str, list[tuple[dict[str, Any], Callable[[], optax.GradientTransformation]]]] = {
    "sgd": [
        ({"lr": 0.05}, lambda: optax.sgd(0.05)),
        ({"lr": 0.05, "momentum": 0.9}, lambda: optax.sgd(0.05, momentum=0.9)),
        (
            {"lr": 0.05, "momentum": 0.8, "nesterov": True},
            lambda: optax.sgd(0.05, momentum=0.8, nesterov=True),
        ),
    ],
    "adam": [
        ({"lr": 0.01}, lambda: optax.adam(0.01)),
        (
            {"lr": 0.02, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-6, "eps_root": 1e-9},
            lambda: optax.adam(0.02, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-9),
        ),
        ({"lr": 0.01, "amsgrad": True}, lambda: optax.amsgrad(0.01)),
    ],
    "adamw": [
        ({"lr": 0.01}, lambda: optax.adamw(0.01)),
        ({"lr": 0.01, "weight_decay": 0.1}, lambda: optax.adamw(0.01, weight_decay=0.1)),
    ],
    "lamb": [
        ({"lr": 0.01}, lambda: optax.lamb(0.01)),
        ({"lr": 0.01, "weight_decay": 0.05}, lambda: optax.lamb(0.01, weight_decay=0.05)),
    ],
    "adafactor": [
        ({"lr": 0.01}, lambda: optax.adafactor(0.01)),
        ({"lr": 0.05, "weight_decay": 0.5}, lambda: optax.adafactor(0.05, weight_decay_rate=0.5)),
    ],
    "lion": [
        ({"lr": 0.001}, lambda: optax.lion(0.001)),
        ({"lr": 0.001, "weight_decay": 0.1}, lambda: optax.lion(0.001, weight_decay=0.1)),
    ],
}


def _optimizer_cases() -> list[Any]:
    cases = []
    for name in _optax_convention("optimizer", OPTIMIZER_ORACLES):
        for k, (params, native) in enumerate(OPTIMIZER_ORACLES[name]):
            cases.append(pytest.param(name, params, native, id=f"{name}-{k}"))
    return cases


def _run(
    tx: optax.GradientTransformation, start: list[np.ndarray], grads: list[list[Any]]
) -> list[list[np.ndarray]]:
    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    params = [jnp.asarray(p) for p in start]
    state, path = tx.init(params), []
    for g in grads:
        params, state = step(params, state, g)
        path.append([np.asarray(p) for p in params])
    return path


def _optax_grads(
    tx: optax.GradientTransformation, start: list[np.ndarray], grad: Callable
) -> list[list[Any]]:
    """Optax's own closed-loop run: the gradient it saw at each of the 100 steps."""

    @jax.jit
    def step(params, state):
        g = grad(params)
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state, g

    params = [jnp.asarray(p) for p in start]
    state, grads = tx.init(params), []
    for _ in range(100):
        params, state, g = step(params, state)
        grads.append(g)
    return grads


@pytest.mark.parametrize(("name", "params", "native"), _optimizer_cases())
def test_optimizer_matches_optax_over_100_steps(name, params, native):
    start, grad = _problem()
    reference = native()
    grads = _optax_grads(reference, start, grad)
    expected = _run(reference, start, grads)
    ours = _run(lossbridge.get(name, backend="jax", convention="optax", **params), start, grads)
    worst = max(
        _rel(a, e) for pa, pe in zip(ours, expected, strict=True) for a, e in zip(pa, pe, strict=True)
    )
    assert worst <= TOL, f"worst relative error {worst:.3g}"
