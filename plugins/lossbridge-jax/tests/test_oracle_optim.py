"""JAX materialization of polyak_sgd, sophia, noisy_sgd: Optax's extra arguments ``value=`` / ``obj_fn=``,
the PRNG key in the state (numbers against Optax itself: tests/conventions/test_oracle_optim_oracles.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossbridge
from lossbridge.errors import InputError

_A = jnp.asarray([[1.0, 2.5], [0.5, 4.0], [3.0, 1.5]])


def _quadratic(p: dict) -> jax.Array:
    return 0.5 * jnp.sum(_A * p["w"] ** 2) + 0.5 * jnp.sum(p["b"] ** 2)


def test_sophia_hessian_estimate_is_exact_for_separable_quadratic() -> None:
    tx = lossbridge.get("sophia", backend="jax", update_interval=1, beta_2=0.0)
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    state = tx.init(params)
    assert state._fields == ("count", "mu", "nu", "rng_key")
    _, state = jax.jit(lambda g, s, p: tx.update(g, s, p, obj_fn=_quadratic))(jax.grad(_quadratic)(params), state,
                                                                             params)
    np.testing.assert_array_equal(np.asarray(state.nu["w"]), np.asarray(_A))  # r * (A r) = A for Rademacher r
    np.testing.assert_array_equal(np.asarray(state.nu["b"]), np.ones(2))


def test_sophia_key_advances_only_at_refresh_steps() -> None:
    tx = lossbridge.get("sophia", backend="jax", update_interval=3)
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    state = tx.init(params)
    keys = []
    for _ in range(4):
        _, state = tx.update(jax.grad(_quadratic)(params), state, params, obj_fn=_quadratic)
        keys.append(np.asarray(jax.random.key_data(state.rng_key)))
    assert not np.array_equal(keys[0], np.asarray(jax.random.key_data(jax.random.key(0))))
    np.testing.assert_array_equal(keys[0], keys[1])
    np.testing.assert_array_equal(keys[1], keys[2])
    assert not np.array_equal(keys[2], keys[3])  # step 4 = 1 + 3 refreshes


def test_missing_extra_arguments_are_input_errors() -> None:
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    grads = jax.grad(_quadratic)(params)
    polyak = lossbridge.get("polyak_sgd", backend="jax")
    with pytest.raises(InputError, match="value"):
        polyak.update(grads, polyak.init(params), params)
    sophia = lossbridge.get("sophia", backend="jax")
    with pytest.raises(InputError, match="obj_fn"):
        sophia.update(grads, sophia.init(params), params)


def test_polyak_sgd_jax_equals_numpy_given_the_same_values() -> None:
    tx = lossbridge.get("polyak_sgd", backend="jax", max_learning_rate=0.4)
    ref = lossbridge.get("polyak_sgd", backend="numpy", max_learning_rate=0.4)
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    state = tx.init(params)
    current = [np.ones((3, 2)), np.ones(2)]
    for _ in range(20):
        value, grads = jax.value_and_grad(_quadratic)(params)
        updates, state = tx.update(grads, state, params, value=value)
        params = optax.apply_updates(params, updates)
        ref.step(current, [np.asarray(grads["w"]), np.asarray(grads["b"])], value=float(value))
        np.testing.assert_allclose(np.asarray(params["w"]), current[0], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(params["b"]), current[1], rtol=1e-12)


def test_chains_with_optax_and_passes_value_through() -> None:
    tx = optax.chain(optax.clip_by_global_norm(1.0), lossbridge.get("polyak_sgd", backend="jax"))
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    value, grads = jax.value_and_grad(_quadratic)(params)
    updates, _ = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))(grads, tx.init(params), params, value)
    assert float(optax.tree.norm(updates)) > 0


def test_noisy_sgd_jit_and_reproducible() -> None:
    tx = lossbridge.get("noisy_sgd", backend="jax", lr=0.1, key=4)
    params = {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}
    step = jax.jit(tx.update)
    a, _ = step(jax.tree.map(jnp.zeros_like, params), tx.init(params))
    b, _ = step(jax.tree.map(jnp.zeros_like, params), tx.init(params))
    np.testing.assert_array_equal(np.asarray(a["w"]), np.asarray(b["w"]))
    assert float(jnp.abs(a["w"]).sum()) > 0



@pytest.mark.parametrize("name", ["polyak_sgd", "sophia", "noisy_sgd"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16])
def test_state_dtypes_are_stable_and_nothing_retraces(name: str, dtype: object) -> None:
    tx = lossbridge.get(name, backend="jax", update_interval=2) if name == "sophia" else lossbridge.get(
        name, backend="jax")
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3, 2)), dtype=dtype), "b": jnp.asarray(rng.normal(size=2), dtype=dtype)}

    def objective(p: dict) -> jax.Array:
        return sum(jnp.sum(jnp.sin(x.astype(jnp.float32))) for x in jax.tree.leaves(p))

    traces = []

    @jax.jit
    def step(params: dict, state: object) -> tuple:
        traces.append(1)
        value, grads = jax.value_and_grad(objective)(params)
        extra = {"value": value} if name == "polyak_sgd" else {"obj_fn": objective} if name == "sophia" else {}
        updates, state = tx.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    before = jax.tree.map(lambda x: (x.dtype, x.shape), state)
    for _ in range(4):
        params, state = step(params, state)
    assert len(traces) == 1
    assert jax.tree.map(lambda x: (x.dtype, x.shape), state) == before
    assert all(p.dtype == dtype for p in jax.tree.leaves(params))
    assert all(bool(jnp.isfinite(p.astype(jnp.float32)).all()) for p in jax.tree.leaves(params))
