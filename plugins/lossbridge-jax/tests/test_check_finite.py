"""``check_finite=True`` on the JAX losses and Optax transformations: opt-in (JAX propagates NaN,
as every framework does), an ``InputError`` naming the argument and the first bad index on concrete
arrays, skipped under ``jax.jit`` (tracers have no values: documented as eager-only)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossbridge
from lossbridge.bound import bind
from lossbridge.errors import InputError
from lossbridge.registry import default_registry


def _backend():
    return default_registry().backend("jax")


def _loss(name: str = "mse", **options):
    return _backend().materialize_loss(bind(lossbridge.spec(name), convention="optax", params={}), **options)


def _optimizer(name: str = "adam", **options):
    return _backend().materialize_optimizer(bind(lossbridge.spec(name), convention="optax", params={}), **options)


def test_loss_check_finite_is_off_by_default() -> None:
    loss = _loss()
    assert loss.check_finite is False
    assert jnp.isnan(loss(jnp.array([jnp.nan, 1.0]), jnp.zeros(2)).mean())


def test_loss_check_finite_names_the_argument_and_index() -> None:
    loss = _loss(check_finite=True)
    message = r"y_pred: expected finite values \(check_finite=True\), got nan at index \(1, 0\) \(1 non-finite of 4\)"
    with pytest.raises(InputError, match=message):
        loss(jnp.array([[0.0, 1.0], [jnp.nan, 2.0]]), jnp.zeros((2, 2)))
    with pytest.raises(InputError, match=r"y_true: .* got inf at index \(0,\)"):
        loss(jnp.zeros(2), np.array([np.inf, 0.0]))
    with pytest.raises(InputError, match=r"sample_weight: .* got -inf at index \(1,\)"):
        loss(jnp.zeros(2), jnp.zeros(2), sample_weight=jnp.array([1.0, -jnp.inf]))
    finite = loss(jnp.array([1.0, 2.0]), jnp.zeros(2))
    np.testing.assert_allclose(np.asarray(finite), [1.0, 4.0])


def test_loss_check_finite_integer_labels_pass() -> None:
    loss = _backend().materialize_loss(
        bind(lossbridge.spec("categorical_crossentropy"), params={"from_logits": True}), check_finite=True
    )
    with pytest.raises(InputError, match=r"expected finite values"):
        loss(jnp.array([[jnp.nan, 0.0]]), jnp.array([[1.0, 0.0]]))
    assert jnp.isfinite(loss(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 0.0]]))).all()


def test_loss_check_finite_is_skipped_under_jit() -> None:
    loss = _loss(check_finite=True)
    out = jax.jit(lambda p, t: loss(p, t))(jnp.array([jnp.nan, 1.0]), jnp.zeros(2))
    assert jnp.isnan(out[0])  # eager-only: a tracer has no values to check
    grad = jax.grad(lambda p: loss(p, jnp.zeros(2)).sum())(jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(grad), [2.0, 4.0])


@pytest.mark.parametrize("name", ["adam", "sgd", "prodigy"])
def test_optimizer_check_finite_names_the_leaf(name: str) -> None:
    if name not in {s.name for s, _ in default_registry().specs()}:
        pytest.skip(f"{name} is not in the catalog")
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(3)}
    grads = {"w": jnp.ones((2, 2)), "b": jnp.array([0.0, jnp.nan, 1.0])}
    tx = _optimizer(name, check_finite=True)
    state = tx.init(params)
    with pytest.raises(InputError, match=r"grads\['b'\]: expected finite values \(check_finite=True\), got nan "
                                         r"at index \(1,\)"):
        tx.update(grads, state, params)
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    assert all(bool(jnp.isfinite(u).all()) for u in jax.tree.leaves(updates))
    # off by default: the NaN propagates, as in Optax
    plain = _optimizer(name)
    updates, _ = plain.update(grads, plain.init(params), params)
    assert bool(jnp.isnan(updates["b"]).any())


def test_optimizer_check_finite_is_skipped_under_jit() -> None:
    tx = _optimizer(check_finite=True)
    params = [jnp.ones(2)]
    state = tx.init(params)
    updates, _ = jax.jit(tx.update)([jnp.array([jnp.inf, 1.0])], state, params)
    assert not bool(jnp.isfinite(updates[0][0]))


def test_check_finite_through_lossbridge_get() -> None:
    loss = lossbridge.get("mse", backend="jax", check_finite=True)
    with pytest.raises(InputError, match=r"y_pred: expected finite values \(check_finite=True\)"):
        loss(jnp.array([1.0, jnp.nan]), jnp.array([1.0, 2.0]))
    tx = lossbridge.get("adam", backend="jax", check_finite=True)
    params = [jnp.ones(2)]
    with pytest.raises(InputError, match="check_finite=True"):
        tx.update([jnp.array([jnp.inf, 1.0])], tx.init(params), params)
