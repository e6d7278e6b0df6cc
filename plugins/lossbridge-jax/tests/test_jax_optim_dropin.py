"""Drop-in fidelity of the Optax transformations: Optax's state field names, no recompilation."""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

import lossbridge  # noqa: E402


def test_optax_adam_state_has_mu_and_nu():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    state = lossbridge.get("adam", backend="jax", convention="optax", learning_rate=0.1).init(params)
    mu = optax.tree_utils.tree_get(state, "mu")
    assert jax.tree.structure(mu) == jax.tree.structure(params)
    assert state.nu["w"].shape == (2, 3)
    assert set(state.slots["w"]) == {"m", "v"}  # the spec's names, per parameter


def test_optax_sgd_momentum_is_trace():
    state = lossbridge.get("sgd", backend="jax", convention="optax", learning_rate=0.1, momentum=0.9).init(
        jnp.zeros(2)
    )
    assert optax.tree_utils.tree_get(state, "trace").shape == (2,)


def test_optax_uncommitted_params_get_uncommitted_slots_and_no_recompile():
    tx = lossbridge.get("adam", backend="jax", convention="optax", learning_rate=0.1)
    params = jnp.array([1.0, 2.0])
    state = tx.init(params)
    assert not state.mu.committed

    @jax.jit
    def step(p, s):
        g = jax.grad(lambda q: jnp.sum(q**2))(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    params, state = step(params, state)
    before = step._cache_size()
    step(params, state)
    assert step._cache_size() == before


def test_optax_committed_params_keep_their_sharding():
    params = jax.device_put(jnp.ones(4), jax.devices()[0])
    state = lossbridge.get("adam", backend="jax", convention="optax").init(params)
    assert state.mu.committed and state.mu.sharding == params.sharding
