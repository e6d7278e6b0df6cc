"""Optimizers on the JAX backend as Optax transformations: pytrees, chain, inject_hyperparams,
schedules, dtype stability (no retracing), low precision, errors. Oracles are Optax's own."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossbridge
from lossbridge import InputError, ParameterError

OPTIMIZERS = sorted(e.name for e in lossbridge.catalog(kind="optimizer") if lossbridge.spec(e.name).gradient_driven)


def _tree(dtype: Any = jnp.float64) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    leaf = lambda *shape: jnp.asarray(rng.normal(size=shape), dtype=dtype)  # noqa: E731
    return {"dense": {"w": leaf(4, 3), "b": leaf(3)}, "stack": [leaf(2, 2), (leaf(5), leaf())]}


def _grads_like(params: Any, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), dtype=p.dtype), params)


def _run(tx: optax.GradientTransformation, params: Any, steps: int = 10) -> Any:
    state = tx.init(params)
    for t in range(steps):
        updates, state = tx.update(_grads_like(params, t), state, params)
        params = optax.apply_updates(params, updates)
    return params


def _close(a: Any, b: Any, rtol: float = 1e-12) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-300)


def test_is_a_gradient_transformation():
    tx = lossbridge.get("adam", backend="jax")
    assert isinstance(tx, optax.GradientTransformation)
    assert tx.spec.name == "adam" and tx.bound.hyper["lr"] == 1e-3


def test_nested_pytree_matches_optax():
    params = _tree()
    ours = _run(lossbridge.get("sgd", backend="jax", convention="optax", lr=0.1, momentum=0.9), params)
    _close(ours, _run(optax.sgd(0.1, momentum=0.9), params))


def test_chain_after_clip_by_global_norm():
    params = _tree()
    ours = optax.chain(
        optax.clip_by_global_norm(0.5), lossbridge.get("adam", backend="jax", convention="optax", lr=0.01)
    )
    native = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.01))
    _close(_run(ours, params), _run(native, params))


def test_schedule_as_learning_rate():
    params = _tree()
    schedule = optax.exponential_decay(0.1, transition_steps=2, decay_rate=0.5)
    ours = lossbridge.get("adam", backend="jax", convention="optax", lr=schedule)
    _close(_run(ours, params), _run(optax.adam(schedule), params))


def test_inject_hyperparams_changes_lr_without_recompiling():
    params = _tree()
    traces = []

    def make_step(tx):
        @jax.jit
        def step(params, state, grads):
            traces.append(1)
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        return step

    ours_tx = optax.inject_hyperparams(lossbridge.get("sgd", backend="jax", convention="optax").factory)(
        lr=0.1, momentum=0.9
    )
    native_tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)
    ours, native = (params, ours_tx.init(params)), (params, native_tx.init(params))
    step, native_step = make_step(ours_tx), jax.jit(native_tx.update)
    for t, lr in enumerate([0.1, 0.1, 0.01, 0.5, 0.02]):
        ours[1].hyperparams["lr"] = jnp.asarray(lr)
        native[1].hyperparams["learning_rate"] = jnp.asarray(lr)
        g = _grads_like(params, t)
        ours = step(ours[0], ours[1], g)
        updates, state = native_step(g, native[1], native[0])
        native = (optax.apply_updates(native[0], updates), state)
    assert len(traces) == 1
    _close(ours[0], native[0])


def test_factory_rejects_unknown_hyperparameters():
    factory = lossbridge.get("adam", backend="jax").factory
    assert "lr" in __import__("inspect").signature(factory).parameters
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'learning_rate'; valid: lr"):
        factory(learning_rate=0.1)
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'learning_rate'"):
        factory(learning_rate=jnp.asarray(0.1))


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16])
def test_state_dtypes_are_stable_and_nothing_retraces(name, dtype):
    tx = lossbridge.get(name, backend="jax")
    params = _tree(dtype)
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    before = jax.tree.map(lambda x: (x.dtype, x.shape), state)
    for t in range(4):
        params, state = step(params, state, _grads_like(params, t))
    assert len(traces) == 1
    assert jax.tree.map(lambda x: (x.dtype, x.shape), state) == before
    assert all(p.dtype == dtype for p in jax.tree.leaves(params))
    assert all(bool(jnp.isfinite(p.astype(jnp.float32)).all()) for p in jax.tree.leaves(params))


def test_float32_params_stay_float32_with_x64_enabled():
    params = _tree(jnp.float32)
    tx = lossbridge.get("adam", backend="jax", lr=0.01)
    updates, state = tx.update(_grads_like(params, 0), tx.init(params), params)
    assert {u.dtype for u in jax.tree.leaves(updates)} == {jnp.dtype("float32")}
    assert state.count.dtype == jnp.int32


def test_bfloat16_params_are_updated_in_float32():
    p = {"w": jnp.asarray([1.0, -2.0, 3.0], jnp.bfloat16)}
    g = {"w": jnp.asarray([0.5, 0.25, -1.0], jnp.bfloat16)}
    tx = lossbridge.get("sgd", backend="jax", lr=0.1, momentum=0.9)
    ref = optax.sgd(0.1, momentum=0.9)
    ours_u, _ = tx.update(g, tx.init(p), p)
    ref_u, _ = ref.update({"w": g["w"].astype(jnp.float32)}, ref.init({"w": p["w"].astype(jnp.float32)}))
    assert ours_u["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(ours_u["w"]), np.asarray(ref_u["w"].astype(jnp.bfloat16)))


def test_update_without_params():
    params = _tree()
    tx = lossbridge.get("sgd", backend="jax", convention="optax", lr=0.1)
    updates, _ = tx.update(params, tx.init(params))
    _close(updates, jax.tree.map(lambda p: -0.1 * p, params))
    decayed = lossbridge.get("sgd", backend="jax", lr=0.1, weight_decay=0.01)
    with pytest.raises(InputError, match=r"params: sgd .* needs the current parameters, got None"):
        decayed.update(params, decayed.init(params))


def test_integer_parameters_are_rejected():
    tx = lossbridge.get("adam", backend="jax")
    expected = "params: expected floating-point or complex arrays, got a leaf of dtype int32"
    with pytest.raises(InputError, match=expected):
        tx.init({"w": jnp.ones(3, jnp.int32)})


def test_invalid_hyperparameter_is_named():
    with pytest.raises(ParameterError, match=r"adam: parameter 'lr' expects float in \[0, inf\), got -1"):
        lossbridge.get("adam", backend="jax", lr=-1.0)


def test_foreign_arrays_are_rejected():
    xps = pytest.importorskip("array_api_strict")
    tx = lossbridge.get("sgd", backend="jax")
    with pytest.raises(InputError, match=r"params: expected an array for the jax backend, got array_api_strict"):
        tx.init([xps.ones(3)])
