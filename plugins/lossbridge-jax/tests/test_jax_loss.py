"""Losses on the JAX backend: pure functions under jit/grad/vmap/checkpoint, dtypes, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossbridge
from lossbridge import InputError, ParameterError
from lossbridge.spec import LossSpec

LOSSES = sorted(e.name for e in lossbridge.catalog(kind="loss"))


def _call_args(name: str, sample, dtype: str = "float64", shape=(4, 3), **params):
    loss = lossbridge.get(name, backend="jax", **params)
    spec = lossbridge.spec(name)
    assert isinstance(spec, LossSpec)
    inputs = sample(spec, shape, dtype, **params)
    return loss, [jnp.asarray(inputs[n]) for n in loss.argnames]


def _grad_fn(loss, n_args: int):
    """Gradient of the summed loss with respect to the first argument (the prediction)."""
    return jax.grad(lambda first, *rest: jnp.sum(loss(first, *rest)))


@pytest.mark.parametrize("name", LOSSES)
def test_prediction_comes_first(name):
    loss = lossbridge.get(name, backend="jax")
    roles = {i.name: i.role for i in lossbridge.spec(name).inputs}
    ranks = [{"prediction": 0, "target": 1}.get(roles[n], 2) for n in loss.argnames]
    assert ranks == sorted(ranks)
    assert lossbridge.spec(name).inputs[0].name in loss.argnames


@pytest.mark.parametrize("name", LOSSES)
def test_jit_and_grad_match_eager(name, sample):
    loss, args = _call_args(name, sample)
    eager = loss(*args)
    jitted = jax.jit(loss)(*args)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-12)
    grad = _grad_fn(loss, len(args))
    np.testing.assert_allclose(np.asarray(jax.jit(grad)(*args)), np.asarray(grad(*args)), rtol=1e-12)


#: Losses whose input domains sample arrays of any rank (CTC's label and padding domains are (N, T)).
BATCHABLE = [n for n in LOSSES if lossbridge.spec(n).min_ndim <= 2]


@pytest.mark.parametrize("name", BATCHABLE)
def test_vmap_over_a_leading_axis(name, sample):
    loss, args = _call_args(name, sample, shape=(2, 5, 3))
    mapped = jax.vmap(lambda *a: loss(*a, reduction="mean"))(*args)
    looped = [loss(*(a[k] for a in args), reduction="mean") for k in range(2)]
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(looped), rtol=1e-12)


@pytest.mark.parametrize("name", LOSSES)
def test_checkpoint_keeps_the_gradient(name, sample):
    loss, args = _call_args(name, sample)
    plain = _grad_fn(loss, len(args))(*args)
    remat = _grad_fn(jax.checkpoint(loss), len(args))(*args)
    np.testing.assert_allclose(np.asarray(remat), np.asarray(plain), rtol=1e-12)


@pytest.mark.parametrize("name", LOSSES)
def test_no_device_to_host_transfer_under_jit(name, sample):
    loss, args = _call_args(name, sample)
    compiled = jax.jit(jax.value_and_grad(lambda a, *rest: jnp.sum(loss(a, *rest))))
    with jax.transfer_guard_device_to_host("disallow"):
        value, grad = compiled(*args)
        value.block_until_ready()
    assert np.isfinite(float(value)) and grad.shape == args[0].shape


def test_value_checks_run_on_concrete_inputs_only():
    specs = [n for n in LOSSES if any(i.domain == "class_index" for i in lossbridge.spec(n).inputs)]
    if not specs:
        pytest.skip("no registered loss takes class indices yet")
    loss = lossbridge.get(specs[0], backend="jax")
    logits = jnp.zeros((2, 3))
    labels = jnp.asarray([0, 7])
    with pytest.raises(InputError, match=r"class indices in \[0, 2\].*got values in \[0, 7\]"):
        loss(logits, labels)
    # under a trace: no value check, so no error (the value at an invalid label is the gather's: NaN, as Optax's)
    jax.jit(loss)(logits, labels).block_until_ready()


def test_mse_float64_matches_the_textbook_formula():
    rng = np.random.default_rng(1)
    pred, target, weight = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)), rng.uniform(size=6)
    loss = lossbridge.get("mse", backend="jax")
    value = loss(jnp.asarray(pred), jnp.asarray(target))
    assert value.dtype == jnp.float64
    np.testing.assert_allclose(float(value), np.mean((pred - target) ** 2), rtol=1e-14)
    per_elem = (pred - target) ** 2 * weight[:, None]
    weighted = loss(jnp.asarray(pred), jnp.asarray(target), sample_weight=jnp.asarray(weight))
    np.testing.assert_allclose(float(weighted), per_elem.sum() / (4 * weight.sum()), rtol=1e-14)
    summed = loss(jnp.asarray(pred), jnp.asarray(target), reduction="sum")
    np.testing.assert_allclose(float(summed), np.sum((pred - target) ** 2), rtol=1e-14)
    grad = jax.grad(loss)(jnp.asarray(pred), jnp.asarray(target))
    np.testing.assert_allclose(np.asarray(grad), 2 * (pred - target) / pred.size, rtol=1e-14)


def test_optax_convention_is_unreduced():
    loss = lossbridge.get("mse", backend="jax", convention="optax")
    pred, target = jnp.asarray([[1.0, 2.0]]), jnp.asarray([[0.0, 0.0]])
    np.testing.assert_allclose(np.asarray(loss(pred, target)), [[1.0, 4.0]])
    assert float(loss(pred, target, reduction="mean")) == 2.5


def test_bfloat16_is_computed_in_float32():
    rng = np.random.default_rng(2)
    pred = jnp.asarray(rng.normal(size=(8, 3)), dtype=jnp.bfloat16)
    target = jnp.asarray(rng.normal(size=(8, 3)), dtype=jnp.bfloat16)
    loss = lossbridge.get("mse", backend="jax")
    value = jax.jit(loss)(pred, target)
    assert value.dtype == jnp.bfloat16  # the input's dtype, as Optax and torch return it
    exact = np.mean((np.asarray(pred, np.float64) - np.asarray(target, np.float64)) ** 2)
    assert float(value) == float(jnp.asarray(np.float32(exact), dtype=jnp.bfloat16))  # float32 math, one rounding
    grad = jax.grad(loss)(pred, target)
    assert grad.dtype == jnp.bfloat16


def test_float32_stays_float32_with_x64_enabled():
    loss = lossbridge.get("mse", backend="jax")
    pred = jnp.ones((3, 2), jnp.float32)
    assert loss(pred, jnp.zeros((3, 2), jnp.float32)).dtype == jnp.float32
    assert jax.grad(loss)(pred, jnp.zeros((3, 2), jnp.float32)).dtype == jnp.float32


def test_numpy_inputs_are_accepted():
    loss = lossbridge.get("mse", backend="jax")
    assert float(loss(np.array([1.0, 3.0]), np.array([1.0, 1.0]))) == 2.0


def test_another_frameworks_array_is_a_clear_error():
    xps = pytest.importorskip("array_api_strict")
    loss = lossbridge.get("mse", backend="jax")
    with pytest.raises(InputError, match=r"y_true: expected an array for the jax backend, got array_api_strict"):
        loss(jnp.ones(3), xps.ones(3))


def test_shape_mismatch_names_both_shapes():
    loss = lossbridge.get("mse", backend="jax")
    with pytest.raises(InputError, match=r"y_true: expected shape \(2, 3\).*got \(3, 2\)"):
        loss(jnp.ones((2, 3)), jnp.ones((3, 2)))
    with pytest.raises(InputError, match=r"y_true: expected shape \(2, 3\).*got \(3, 2\)"):
        jax.jit(loss)(jnp.ones((2, 3)), jnp.ones((3, 2)))


def test_integer_predictions_are_rejected():
    loss = lossbridge.get("mse", backend="jax")
    with pytest.raises(InputError, match="y_pred: expected a floating-point array, got dtype int"):
        loss(jnp.ones(3, jnp.int32), jnp.ones(3))


def test_bad_reduction_and_argument_count():
    loss = lossbridge.get("mse", backend="jax")
    with pytest.raises(ParameterError, match=r"'reduction' expects one of 'mean', 'sum', 'none'.*'avg'"):
        loss(jnp.ones(3), jnp.ones(3), reduction="avg")
    with pytest.raises(TypeError, match=r"mse: expected 2 arrays \(y_pred, y_true\), got 3"):
        loss(jnp.ones(3), jnp.ones(3), jnp.ones(3))


def test_sample_weight_of_the_wrong_shape():
    loss = lossbridge.get("mse", backend="jax")
    with pytest.raises(
        InputError, match=r"sample_weight: expected shape \(4, 2\) or a leading part of it, got \(3,\)"
    ):
        loss(jnp.ones((4, 2)), jnp.ones((4, 2)), sample_weight=jnp.ones(3))


def test_gradient_at_a_probability_of_exactly_one_is_the_textbook_one():
    loss = lossbridge.get("binary_crossentropy", backend="jax")
    y, p = jnp.asarray([1.0, 0.0]), jnp.asarray([1.0, 0.25])
    grad = jax.grad(loss)(p, y)  # mean of -[y log p + (1-y) log(1-p)]: d/dp = (-y/p + (1-y)/(1-p)) / 2
    np.testing.assert_allclose(np.asarray(grad), [-0.5, 0.5 / 0.75], rtol=1e-14)


def test_gradients_with_respect_to_soft_targets_and_sample_weight():
    x = jnp.asarray([[0.3, -1.2], [2.0, 0.1]])
    y = jnp.asarray([[0.2, 0.9], [0.5, 0.0]])
    bce = lossbridge.get("binary_crossentropy", backend="jax", from_logits=True, reduction="sum")
    # -(y log s(x) + (1-y) log(1-s(x))) has d/dy = -x
    np.testing.assert_allclose(np.asarray(jax.grad(bce, argnums=1)(x, y)), -np.asarray(x), rtol=1e-14)
    mse = lossbridge.get("mse", backend="jax", reduction="sum")
    w = jnp.asarray([0.5, 2.0])
    g_w = jax.grad(lambda w: mse(x, y, sample_weight=w))(w)
    np.testing.assert_allclose(
        np.asarray(g_w), np.sum((np.asarray(x) - np.asarray(y)) ** 2, axis=1), rtol=1e-14
    )
