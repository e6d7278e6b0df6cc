"""Optimizers with global state (Prodigy, D-Adapt AdamW) on the JAX backend against the NumPy backend.

The global state (``d`` and the weighted numerator) is part of the Optax state NamedTuple under
Optax's names (``estim_lr``, ``numerator_weighted``); the update sums over every leaf of a nested
pytree, jitted, and its trajectory equals lossbridge's NumPy backend in float64.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossbridge
from lossbridge import InputError


@pytest.fixture(autouse=True)
def _x64() -> Any:
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _problem() -> tuple[list[np.ndarray], Any]:
    rng = np.random.default_rng(5)
    start = [rng.normal(size=(4, 3)), rng.normal(size=(3,)), rng.normal(size=(2,))]
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))

    def grad(p: list[np.ndarray]) -> list[np.ndarray]:
        r = (a @ p[0] + p[1] - b) / len(a)
        return [a.T @ r, r.sum(axis=0), np.sin(p[2])]

    return start, grad


@pytest.mark.parametrize(
    ("name", "hyper"),
    [("prodigy", {}), ("prodigy", {"weight_decay": 0.1, "safeguard_warmup": True}),
     ("dadapt_adamw", {}), ("dadapt_adamw", {"weight_decay": 0.1, "lr": 0.5})],
)
def test_jax_global_matches_numpy(name: str, hyper: dict[str, Any]) -> None:
    start, grad = _problem()
    ref = lossbridge.get(name, **hyper)
    current = [p.copy() for p in start]
    tx = lossbridge.get(name, backend="jax", **hyper)
    params = {"w": jnp.asarray(start[0]), "rest": (jnp.asarray(start[1]), [jnp.asarray(start[2])])}
    state = tx.init(params)
    update = jax.jit(tx.update)
    for _ in range(50):
        g = grad(current)
        ref.step(current, g)
        grads = {"w": jnp.asarray(g[0]), "rest": (jnp.asarray(g[1]), [jnp.asarray(g[2])])}
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
        got = [params["w"], params["rest"][0], params["rest"][1][0]]
        for a, e in zip(got, current, strict=True):
            assert np.max(np.abs(np.asarray(a) - e)) <= 1e-10 * np.max(np.abs(e))
    np.testing.assert_allclose(float(state.estim_lr), float(ref._state.glob["d"]), rtol=1e-10)
    assert optax.tree_utils.tree_get(state, "numerator_weighted").shape == ()


def test_jax_global_inject_hyperparams_and_errors() -> None:
    tx = lossbridge.get("prodigy", backend="jax")
    injected = optax.inject_hyperparams(tx.factory)(lr=1.0)
    params = [jnp.ones(3), jnp.ones((2, 2))]
    state = injected.init(params)
    _, state = jax.jit(injected.update)([jnp.ones(3), jnp.ones((2, 2))], state, params)
    assert float(optax.tree_utils.tree_get(state, "estim_lr")) == pytest.approx(1e-6)
    with pytest.raises(InputError, match="params"):
        tx.update([jnp.ones(3)], tx.init([jnp.ones(3)]))
