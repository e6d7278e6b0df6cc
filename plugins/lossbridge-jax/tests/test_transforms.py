"""Gradient transforms on JAX: Optax transformations that chain, jit, run without params, inject hyperparams."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossbridge


def _tree() -> dict[str, jax.Array]:
    rng = np.random.default_rng(0)
    return {"w": jnp.asarray(rng.normal(size=(4, 3)) * 3), "b": jnp.asarray(rng.normal(size=(3,)) * 3)}


@pytest.mark.parametrize(("name", "native"), [("clip_by_global_norm", {"max_norm": 1.0}), ("clip", {"max_delta": 0.5}),
                                              ("clip_by_block_rms", {"threshold": 0.5}), ("centralize", {}),
                                              ("ema", {"decay": 0.9})])
def test_jitted_update_matches_optax_on_a_tree(name: str, native: dict) -> None:
    grads = _tree()
    ours = lossbridge.get(name, backend="jax", convention="optax", **native)
    theirs = getattr(optax, name)(**native)
    s1, s2 = ours.init(grads), theirs.init(grads)
    for _ in range(3):
        u1, s1 = jax.jit(ours.update)(grads, s1)
        u2, s2 = theirs.update(grads, s2)
    for k in grads:
        np.testing.assert_allclose(np.asarray(u1[k]), np.asarray(u2[k]), rtol=1e-13)


def test_adaptive_grad_clip_needs_params() -> None:
    grads = _tree()
    tx = lossbridge.get("adaptive_grad_clip", backend="jax", clipping=0.01)
    with pytest.raises(lossbridge.InputError, match="needs the current parameters"):
        tx.update(grads, tx.init(grads))
    u, _ = tx.update(grads, tx.init(grads), grads)
    want, _ = optax.adaptive_grad_clip(0.01).update(grads, optax.EmptyState(), grads)
    for k in grads:
        np.testing.assert_allclose(np.asarray(u[k]), np.asarray(want[k]), rtol=1e-13)


def test_inject_hyperparams_and_state_names() -> None:
    grads = _tree()
    tx = lossbridge.get("clip_by_global_norm", backend="jax", max_norm=1.0)
    injected = optax.inject_hyperparams(tx.factory)(max_norm=1.0)
    state = injected.init(grads)
    state.hyperparams["max_norm"] = jnp.asarray(0.5)
    u, state = injected.update(grads, state)
    norm = optax.tree.norm(u)
    assert float(norm) == pytest.approx(0.5, rel=1e-12)
    ema = lossbridge.get("ema", backend="jax", convention="optax", decay=0.5, accumulator_dtype=jnp.float32)
    st = ema.init(grads)
    assert st.ema["w"].dtype == jnp.float32  # Optax's field name and accumulator_dtype


def test_lossbridge_chain_is_optax_chain() -> None:
    parts = (lossbridge.get("clip", backend="jax", max_delta=0.5), optax.sgd(0.1))
    assert isinstance(lossbridge.chain(*parts, accumulate=2), optax.MultiSteps)
    tx = lossbridge.chain(*parts)
    params = _tree()
    u, _ = tx.update(params, tx.init(params), params)
    for k in params:
        np.testing.assert_allclose(np.asarray(u[k]), -0.1 * np.clip(np.asarray(params[k]), -0.5, 0.5), rtol=1e-14)
