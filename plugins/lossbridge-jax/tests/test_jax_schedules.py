"""lossbridge schedules as Optax schedules: jittable, equal to Optax's own, usable as learning rates."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jnp = jax.numpy

STEPS = 1000


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


SGDR = [{"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 20, "decay_steps": 300},
        {"init_value": 0.0, "peak_value": 0.05, "warmup_steps": 0, "decay_steps": 700, "end_value": 1e-3}]
CASES = [  # Optax's own function names and keyword arguments, for lossbridge and for Optax
    ("warmup_cosine_decay_schedule",
     {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 100, "decay_steps": 800, "end_value": 1e-3}),
    ("exponential_decay", {"init_value": 0.1, "transition_steps": 50, "decay_rate": 0.9, "transition_begin": 20}),
    ("warmup_exponential_decay_schedule",
     {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 50, "transition_steps": 30, "decay_rate": 0.8}),
    ("polynomial_schedule", {"init_value": 0.1, "end_value": 0.0, "power": 2.0, "transition_steps": 500}),
    ("cosine_onecycle_schedule", {"transition_steps": 800, "peak_value": 0.5}),
    ("sgdr_schedule", {"cosine_kwargs": SGDR}),
]


@pytest.mark.parametrize(("native", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_jax_schedule_matches_optax_under_jit(native: str, kwargs: dict) -> None:
    ours = jax.jit(lossbridge.get(native, backend="jax", convention="optax", **kwargs))
    theirs = getattr(optax, native)(**kwargs)
    counts = jnp.arange(STEPS, dtype=jnp.int64)
    np.testing.assert_allclose(np.asarray(jax.vmap(ours)(counts)), np.asarray(jax.vmap(theirs)(counts)),
                               rtol=1e-12, atol=1e-14)


def test_jax_join_schedules_of_lossbridge_children_under_jit() -> None:
    warm = lossbridge.get("linear_schedule", backend="jax", convention="optax", init_value=0.0, end_value=0.1,
                          transition_steps=100)
    decay = lossbridge.get("cosine_decay_schedule", backend="jax", convention="optax", init_value=0.1,
                           decay_steps=900)
    ours = jax.jit(lossbridge.get("join_schedules", backend="jax", convention="optax", schedules=[warm, decay],
                                  boundaries=[100]))
    theirs = optax.join_schedules([optax.linear_schedule(0.0, 0.1, 100), optax.cosine_decay_schedule(0.1, 900)],
                                  [100])
    counts = jnp.arange(STEPS, dtype=jnp.int64)
    np.testing.assert_allclose(np.asarray(jax.vmap(ours)(counts)), np.asarray(jax.vmap(theirs)(counts)),
                               rtol=1e-12, atol=1e-14)


def test_jax_schedule_as_optax_learning_rate() -> None:
    sched = lossbridge.get("exponential_decay", backend="jax", convention="optax", init_value=0.1,
                           decay_rate=0.5, transition_steps=1)
    # Optax's own schedule sees its int32 count and computes in float32; ours in the default float dtype
    for lr, rtol in ((sched, 1e-12), (optax.exponential_decay(0.1, 1, 0.5), 1e-6)):
        opt = optax.sgd(learning_rate=lr)
        params = jnp.ones(1)
        state = opt.init(params)
        for _ in range(3):
            updates, state = opt.update(jnp.ones(1), state, params)
            params = optax.apply_updates(params, updates)
        assert float(params[0]) == pytest.approx(1 - 0.1 - 0.05 - 0.025, rel=rtol)


def test_jax_schedule_as_lossbridge_optimizer_lr() -> None:
    sched = lossbridge.get("exponential_decay", backend="jax", convention="optax", init_value=0.1,
                           decay_rate=0.5, transition_steps=1)
    opt = lossbridge.get("sgd", backend="jax", lr=sched)
    params = jnp.ones(1, dtype=jnp.float64)
    state = opt.init(params)
    for _ in range(3):
        updates, state = opt.update(jnp.ones(1, dtype=jnp.float64), state, params)
        params = optax.apply_updates(params, updates)
    assert float(params[0]) == pytest.approx(1 - 0.1 - 0.05 - 0.025, rel=1e-12)


def test_jax_schedule_equals_numpy_for_one_spec() -> None:
    """One spec and convention: the Optax schedule and the NumPy callable agree (all three: tests/conventions)."""
    params = {"lr": 0.1, "T_max": 300, "eta_min": 1e-3}
    ours = lossbridge.get("CosineAnnealingLR", backend="jax", convention="torch", **params)
    ref = lossbridge.get("CosineAnnealingLR", convention="torch", **params)
    values = np.asarray(jax.vmap(ours)(jnp.arange(STEPS)))
    np.testing.assert_allclose(values, ref(np.arange(STEPS)), rtol=1e-12, atol=1e-15)
