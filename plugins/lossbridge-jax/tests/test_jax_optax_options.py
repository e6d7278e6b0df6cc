"""Optax's drop-in surface on the JAX backend: complex parameters, slot dtypes, masks, nesterov.

Regression tests for the causes found by Optax's own ``alias_test.py`` (tests/compat): every
expected number comes from the real ``optax`` object built with the same native keywords.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossbridge
from lossbridge import ParameterError
from lossbridge.bound import bind
from lossbridge.conventions import Convention
from lossbridge.spec import OptimizerSpec, Param


def _ours(name: str, **native: Any) -> Any:
    return lossbridge.get(name, backend="jax", convention="optax", **native)


def _run(tx: Any, params: Any, grads: list[Any]) -> tuple[Any, Any]:
    state = tx.init(params)
    step = jax.jit(tx.update)
    for g in grads:
        updates, state = step(g, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def _close(a: Any, b: Any, rtol: float = 2e-5) -> None:
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-6), a, b)


# -- complex parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "native"),
    [("adam", {"learning_rate": 0.1}), ("rmsprop", {"learning_rate": 0.01, "centered": True}),
     ("lamb", {"learning_rate": 0.01}), ("adagrad", {"learning_rate": 0.1}),
     ("sgd", {"learning_rate": 0.1, "momentum": 0.9})],
)
def test_complex_parameters_are_updated_as_optax_does(name: str, native: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2)), dtype=jnp.complex64)}
    grads = [{"w": jnp.asarray(rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2)), dtype=jnp.complex64)}
             for _ in range(5)]
    ours, state = _run(_ours(name, **native), params, grads)
    theirs, _ = _run(getattr(optax, name)(**native), params, grads)
    assert ours["w"].dtype == jnp.complex64
    assert state.count.dtype == jnp.int32
    _close(ours, theirs)


def test_complex_state_keeps_its_dtypes_across_jitted_steps() -> None:
    tx = _ours("adam", learning_rate=0.1)
    params = jnp.ones(3, jnp.complex64) * (1 + 1j)
    state = tx.init(params)
    _, new = jax.jit(tx.update)(params, state, params)
    assert jax.tree.map(lambda x: x.dtype, new) == jax.tree.map(lambda x: x.dtype, state)


# -- slot dtypes (data: Convention.slot_dtypes) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "native", "field"),
    [("adam", {"mu_dtype": jnp.bfloat16}, "mu"), ("adamw", {"mu_dtype": "bfloat16"}, "mu"),
     ("sgd", {"momentum": 0.9, "accumulator_dtype": jnp.bfloat16}, "trace"),
     ("signum", {"accumulator_dtype": jnp.bfloat16}, "mu")],
)
def test_slot_dtype_option_sets_that_slot_at_init_and_after_updates(name: str, native: dict, field: str) -> None:
    tx = _ours(name, learning_rate=0.1, **native)
    params = jnp.zeros(3, jnp.float32)
    state = tx.init(params)
    assert optax.tree.get(state, field).dtype == jnp.bfloat16
    updates, state = jax.jit(tx.update)(jnp.ones(3, jnp.float32), state, params)
    assert optax.tree.get(state, field).dtype == jnp.bfloat16
    assert updates.dtype == jnp.float32
    theirs = getattr(optax, name)(learning_rate=0.1, **native)
    expected, _ = theirs.update(jnp.ones(3, jnp.float32), theirs.init(params), params)
    _close(updates, expected, rtol=1e-2)  # the first update is computed before the bfloat16 cast


def test_slot_dtype_none_keeps_the_parameter_dtype_and_a_foreign_option_is_refused() -> None:
    state = _ours("adam", learning_rate=0.1, mu_dtype=None).init(jnp.zeros(2, jnp.bfloat16))
    assert state.mu.dtype == jnp.bfloat16
    with pytest.raises(ParameterError, match="'accumulator_dtype' is not one of this optimizer's Optax options"):
        _ours("adam", learning_rate=0.1, accumulator_dtype=jnp.float32)


def test_slot_dtype_survives_inject_hyperparams() -> None:
    tx = _ours("adam", learning_rate=0.1, mu_dtype=jnp.bfloat16)
    injected = optax.inject_hyperparams(tx.factory)(lr=0.1)
    state = injected.init(jnp.zeros(2, jnp.float32))
    assert state.inner_state.mu.dtype == jnp.bfloat16


# -- masks (data: Convention.masks) ----------------------------------------------------------------------
_PARAMS = {"w": jnp.full((2, 3), 2.0), "b": jnp.full((3,), -1.0)}
_GRADS = [jax.tree.map(lambda p, k=k: jnp.sin(p + k), _PARAMS) for k in range(4)]


@pytest.mark.parametrize(
    "mask", [{"w": True, "b": False}, lambda tree: jax.tree.map(lambda x: x.ndim > 1, tree), False, True]
)
@pytest.mark.parametrize("name", ["adamw", "lamb", "lion", "nadamw", "adamaxw"])
def test_weight_decay_mask_matches_optax(name: str, mask: Any) -> None:
    native = {"learning_rate": 0.05, "weight_decay": 0.3, "mask": mask}
    ours, _ = _run(_ours(name, **native), _PARAMS, _GRADS)
    theirs, _ = _run(getattr(optax, name)(**native), _PARAMS, _GRADS)
    _close(ours, theirs)


def test_lars_weight_decay_and_trust_ratio_masks_match_optax() -> None:
    native = {"learning_rate": 0.5, "weight_decay": 0.1, "weight_decay_mask": {"w": True, "b": False},
              "trust_ratio_mask": {"w": False, "b": True}}
    ours, _ = _run(_ours("lars", **native), _PARAMS, _GRADS)
    theirs, _ = _run(optax.lars(**native), _PARAMS, _GRADS)
    _close(ours, theirs)


def test_masked_decay_with_injected_weight_decay() -> None:
    mask = {"w": False, "b": True}
    ours = optax.inject_hyperparams(_ours("adamw", learning_rate=0.1, mask=mask).factory)(lr=0.1, weight_decay=0.5)
    theirs = optax.inject_hyperparams(optax.adamw)(learning_rate=0.1, weight_decay=0.5, mask=mask)
    a, _ = _run(ours, _PARAMS, _GRADS)
    b, _ = _run(theirs, _PARAMS, _GRADS)
    _close(a, b)


# -- nesterov and amsgrad's bias corrections (spec parameters) -------------------------------------------
@pytest.mark.parametrize(
    ("name", "native"),
    [("adam", {"nesterov": True}), ("adamw", {"nesterov": True}), ("adabelief", {"nesterov": True}),
     ("radam", {"nesterov": True}), ("nadam", {"nesterov": False}),
     ("amsgrad", {"bias_correction_mu": False, "bias_correction_nu": False})],
)
def test_native_switches_match_optax(name: str, native: dict[str, Any]) -> None:
    ours, _ = _run(_ours(name, learning_rate=0.05, **native), _PARAMS, _GRADS)
    theirs, _ = _run(getattr(optax, name)(learning_rate=0.05, **native), _PARAMS, _GRADS)
    _close(ours, theirs)


# -- state field names: Optax's where it has one, never colliding ------------------------------------------
def _field_spec(slots: tuple[str, ...]) -> OptimizerSpec:
    """A spec whose state has the given slot names: each slot adds the gradient times its position + 1."""

    def init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
        return {name: xp.zeros_like(param) + i for i, name in enumerate(slots)}

    def update(param: Any, grad: Any, state: dict, /, *, step: Any, xp: Any, lr: Any) -> tuple[Any, dict]:
        return -lr * grad, {name: state[name] + (i + 1) * grad for i, name in enumerate(slots)}

    return OptimizerSpec(
        name="fields_" + "_".join(slots), summary="test", init=init, update=update, slots=slots,
        params=(Param("lr", 0.1, "step size", low=0.0),), formula="x", references=("test",), usage="test",
        conventions={"optax": Convention("optax", "none")},
    )


@pytest.mark.parametrize(
    ("slots", "fields"),
    [(("m", "v"), ("mu", "nu")),  # Optax's names for the moments
     (("mu", "m"), ("mu", "m")),  # a spec's own 'mu' keeps its name; 'm' then keeps its own
     (("count",), ("count_slot",))],  # never the step counter's name
)
def test_state_fields_are_collision_free(slots: tuple[str, ...], fields: tuple[str, ...]) -> None:
    from lossbridge_jax import JaxBackend

    tx = JaxBackend().materialize_optimizer(bind(_field_spec(slots), convention="optax"))
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.ones(2), state)
    assert state._fields == ("count", *fields)
    for i, (slot, field) in enumerate(zip(slots, fields, strict=True)):
        np.testing.assert_array_equal(getattr(state, field), [2.0 * i + 1.0] * 2)  # init i, plus (i + 1) * 1
        assert state.slots[slot] is getattr(state, field)
