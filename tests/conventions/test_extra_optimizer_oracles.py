"""Optimistic GD, optimistic Adam, Fromage and SM3 under the Optax convention against the REAL optax.

Both sides are built the Optax way (native name, native keyword arguments): for example
``lossbridge.get("optimistic_adam", convention="optax", learning_rate=0.01, optimism=0.03)`` next to
``optax.optimistic_adam(learning_rate=0.01, optimism=0.03)``. Each minimizes the same objective (least
squares plus a non-convex cosine term, on parameters of rank 1, 2 and 3) from its own iterates in
float64 for 100 steps; every iterate must agree to 1e-10 relative. One case per optimizer changes the
learning rate after step 50 (Optax ``inject_hyperparams``; lossbridge ``set_hyper(lr=...)``).
None of these optimizers exists in torch.optim (2.13) or keras.optimizers (3.15).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import pytest

import lossbridge

STEPS = 100
RTOL = 1e-10
LR_CHANGE_STEP = 50
Grad = Callable[[list[np.ndarray]], list[np.ndarray]]


class Case(NamedTuple):
    name: str  # the Optax function name
    native: dict[str, Any]  # Optax's own keyword arguments, given to both sides
    new_lr: float | None = None  # set after LR_CHANGE_STEP steps (both sides)


def _problem() -> tuple[list[np.ndarray], Grad]:
    """0.5 * mean((A P - B)^2) + 0.1 * sum(cos 2p), P the parameter reshaped to (3, -1)."""
    rng = np.random.default_rng(23)
    start = [rng.normal(size=(3,)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2, 2))]
    mats = [rng.normal(size=(8, 3)) for _ in start]
    targets = [rng.normal(size=(8, p.reshape(3, -1).shape[1])) for p in start]

    def grad(params: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for p, a, b in zip(params, mats, targets, strict=True):
            g = a.T @ (a @ p.reshape(3, -1) - b) / a.shape[0]
            out.append(g.reshape(p.shape) - 0.2 * np.sin(2.0 * p))
        return out

    return start, grad


def _get(name: str, **native: Any) -> Any:
    """``lossbridge.get`` under optax; Optax's deprecated ``optimistic_adam`` warns as Optax does."""
    if name == "optimistic_adam":
        with pytest.warns(DeprecationWarning, match="use `optimistic_adam_v2` instead"):
            return lossbridge.get(name, convention="optax", **native)
    return lossbridge.get(name, convention="optax", **native)


def _lossbridge_trajectory(case: Case) -> list[list[np.ndarray]]:
    opt = _get(case.name, **case.native)
    start, grad = _problem()
    params = [p.copy() for p in start]
    out = []
    for t in range(1, STEPS + 1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            opt.set_hyper(lr=case.new_lr)
        opt.step(params, grad(params))
        out.append([p.copy() for p in params])
    return out


def _assert_same(actual: list[list[np.ndarray]], expected: list[list[np.ndarray]]) -> None:
    assert len(actual) == len(expected) == STEPS
    moved = max(np.max(np.abs(a - s)) for a, s in zip(expected[-1], _problem()[0], strict=True))
    assert moved > 1e-3  # the optimizer did something
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        for k, (a, e) in enumerate(zip(got, want, strict=True)):
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= RTOL, f"step {t}, parameter {k}: relative error {err:.3g}"


def _ids(cases: list[Case]) -> list[str]:
    return [
        f"{c.name}-"
        + ("-".join(f"{k}={v}" for k, v in c.native.items()) or "default")
        + ("-lr_change" if c.new_lr is not None else "")
        for c in cases
    ]


OPTAX_CASES = [
    Case("optimistic_gradient_descent", {"learning_rate": 0.05}),
    Case("optimistic_gradient_descent", {"learning_rate": 0.05, "alpha": 0.7, "beta": 0.4}),
    Case("optimistic_gradient_descent", {"learning_rate": 0.05}, new_lr=0.02),
    Case("optimistic_adam_v2", {"learning_rate": 0.01}),
    Case(
        "optimistic_adam_v2",
        {"learning_rate": 0.02, "alpha": 0.8, "beta": 0.5, "b1": 0.8, "b2": 0.99, "eps": 1e-6, "nesterov": False},
    ),
    Case("optimistic_adam_v2", {"learning_rate": 0.01, "eps_root": 1e-8}, new_lr=0.03),
    Case("optimistic_adam", {"learning_rate": 0.01}),  # optimism = learning_rate
    Case("optimistic_adam", {"learning_rate": 0.01, "optimism": 0.03, "b1": 0.7, "nesterov": False}),
    Case("optimistic_adam", {"learning_rate": 0.01}, new_lr=0.03),  # the optimism follows the lr
    Case("fromage", {"learning_rate": 0.01}),
    Case("fromage", {"learning_rate": 0.1, "min_norm": 1e-3}),
    Case("fromage", {"learning_rate": 0.05}, new_lr=0.2),
    Case("sm3", {"learning_rate": 0.05}),
    Case("sm3", {"learning_rate": 0.1, "momentum": 0.5}),
    Case("sm3", {"learning_rate": 0.05}, new_lr=0.2),
]


@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _optax_trajectory(optax: Any, case: Case) -> list[list[np.ndarray]]:
    import jax
    import jax.numpy as jnp

    start, grad = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optax.optimistic_adam is deprecated
        tx = optax.inject_hyperparams(getattr(optax, case.name))(**case.native)
        params = [jnp.asarray(p) for p in start]
        state = tx.init(params)
    update = jax.jit(tx.update)
    out = []
    for t in range(1, STEPS + 1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            state.hyperparams["learning_rate"] = jnp.asarray(case.new_lr)
        grads = grad([np.asarray(p) for p in params])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            updates, state = update([jnp.asarray(g) for g in grads], state, params)
        params = optax.apply_updates(params, updates)
        out.append([np.asarray(p, dtype=np.float64) for p in params])
    return out


@pytest.mark.parametrize("case", OPTAX_CASES, ids=_ids(OPTAX_CASES))
def test_optax_extra_optimizers_match_optax(optax: Any, case: Case) -> None:
    _assert_same(_lossbridge_trajectory(case), _optax_trajectory(optax, case))


def test_optax_optimistic_first_step_uses_current_gradient(optax: Any) -> None:
    """Optax's first optimistic step has no previous gradient and uses the current one: -lr * alpha * g."""
    import jax.numpy as jnp

    tx = optax.optimistic_gradient_descent(learning_rate=0.1, alpha=0.5, beta=2.0)
    first, _ = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
    assert float(first[0]) == pytest.approx(-0.05, rel=1e-12)
    ours = lossbridge.get("optimistic_gradient_descent", convention="optax", learning_rate=0.1, alpha=0.5, beta=2.0)
    params = [np.zeros(1)]
    ours.step(params, [np.ones(1)])
    assert params[0][0] == pytest.approx(-0.05, rel=1e-12)


def test_optax_names_resolve_to_the_specs(optax: Any) -> None:
    for native, spec in [
        ("optimistic_gradient_descent", "optimistic_gradient_descent"),
        ("optimistic_adam", "optimistic_adam"),
        ("optimistic_adam_v2", "optimistic_adam"),
        ("fromage", "fromage"),
        ("sm3", "sm3"),
    ]:
        assert hasattr(optax, native)
        assert _get(native).spec.name == spec
