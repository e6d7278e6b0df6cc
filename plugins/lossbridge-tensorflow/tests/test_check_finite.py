"""``check_finite=True`` on the Keras losses and optimizers: opt-in (TensorFlow propagates NaN, as
every framework does); eagerly an ``InputError`` naming the argument and the first bad index; inside
``tf.function`` a run-time ``InvalidArgumentError`` naming the argument; nothing under XLA (documented).
Also TensorFlow's float32/float64 ``log`` of subnormal numbers in lossbridge's Array API namespace."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossbridge
from lossbridge.bound import bind
from lossbridge.errors import InputError
from lossbridge.registry import default_registry

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


def _backend():
    return default_registry().backend("tensorflow")


def _loss(name: str = "mse", convention: str | None = "keras", **options):
    return _backend().materialize_loss(bind(lossbridge.spec(name), convention=convention, params={}), **options)


def _optimizer(name: str = "adam", **options):
    return _backend().materialize_optimizer(bind(lossbridge.spec(name), convention="keras", params={}), **options)


def test_loss_check_finite_is_off_by_default() -> None:
    loss = _loss()
    assert loss.check_finite is False
    assert math.isnan(float(loss(np.zeros((1, 2)), np.array([[np.nan, 1.0]]))))


def test_loss_check_finite_names_the_argument_and_index() -> None:
    loss = _loss(check_finite=True)
    message = r"y_pred: expected finite values \(check_finite=True\), got nan at index \(1, 0\) \(1 non-finite of 4\)"
    with pytest.raises(InputError, match=message):
        loss(np.zeros((2, 2)), np.array([[0.0, 1.0], [np.nan, 2.0]]))
    with pytest.raises(InputError, match=r"y_true: .* got inf at index \(0, 1\)"):
        loss(np.array([[0.0, np.inf]]), np.zeros((1, 2)))
    with pytest.raises(InputError, match=r"sample_weight: .* got -inf at index \(1,\)"):
        loss(np.zeros((2, 2)), np.zeros((2, 2)), sample_weight=np.array([1.0, -np.inf]))
    assert float(loss(np.zeros((1, 2)), np.ones((1, 2)))) == pytest.approx(1.0)


def test_loss_check_finite_native_class_and_config() -> None:
    loss = lossbridge.get("MeanSquaredError", backend="tensorflow", convention="keras")
    checked = type(loss).from_config({**loss.get_config(), "check_finite": True})
    assert checked.check_finite and checked.get_config()["check_finite"] is True
    assert "check_finite" not in loss.get_config()
    with pytest.raises(InputError, match="y_pred"):
        checked(np.zeros(2), np.array([np.nan, 0.0]))


def test_loss_check_finite_in_tf_function_raises_at_run_time() -> None:
    loss = _loss(check_finite=True)
    f = tf.function(lambda t, p: loss(t, p))
    assert float(f(tf.zeros((1, 2)), tf.ones((1, 2)))) == pytest.approx(1.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"y_pred: expected finite values"):
        f(tf.zeros((1, 2)), tf.constant([[np.nan, 1.0]]))


def test_optimizer_check_finite_names_the_variable() -> None:
    w = tf.Variable(np.ones(3), name="w")
    opt = _optimizer(check_finite=True)
    opt.build([w])
    before = w.numpy().copy()
    with pytest.raises(InputError, match=r"grads\['w(:0)?'\]: expected finite values \(check_finite=True\), got nan "
                                         r"at index \(1,\)"):
        opt.apply([tf.constant([0.0, np.nan, 1.0], tf.float64)], [w])
    np.testing.assert_array_equal(w.numpy(), before)  # refused before the step
    opt.apply([tf.constant([1.0, 1.0, 1.0], tf.float64)], [w])
    assert np.all(np.isfinite(w.numpy())) and not np.array_equal(w.numpy(), before)
    assert opt.get_config()["check_finite"] is True
    assert type(opt).from_config(opt.get_config()).check_finite is True


def test_optimizer_check_finite_off_propagates_nan() -> None:
    w = tf.Variable(np.ones(2))
    opt = _optimizer()
    assert opt.check_finite is False and "check_finite" not in opt.get_config()
    opt.apply([tf.constant([np.nan, 1.0], tf.float64)], [w])
    assert np.isnan(w.numpy()[0])


def test_optimizer_check_finite_in_tf_function() -> None:
    w = tf.Variable(np.ones(2))
    opt = _optimizer(check_finite=True)
    opt.build([w])
    step = tf.function(lambda g: opt.apply([g], [w]))
    step(tf.constant([1.0, 1.0], tf.float64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"grads\[.*\]: expected finite values"):
        step(tf.constant([np.inf, 1.0], tf.float64))


# -- the Array API namespace: log of subnormal numbers (TensorFlow flushes them or misses them) ----
@pytest.mark.parametrize(
    ("dtype", "values"),
    [("float32", [1e-40, 1.4e-45, 1.1e-38, 0.0, 2.0, 3e38]), ("float64", [1e-310, 5e-324, 0.0, 2.0, 1e-300])],
)
def test_namespace_log_is_exact_at_subnormals(dtype: str, values: list[float]) -> None:
    from lossbridge_tensorflow import array_api as xp

    x = np.array(values, dtype=dtype)
    with np.errstate(divide="ignore"):
        expected = np.log(x.astype(np.float64))
    got = xp.log(tf.constant(x)).numpy()
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, expected, rtol=float(np.finfo(dtype).eps))
    np.testing.assert_allclose(xp.log2(tf.constant(x)).numpy(), expected / math.log(2.0), rtol=4 * np.finfo(dtype).eps)
    xla = tf.function(xp.log, jit_compile=True)(tf.constant(x)).numpy()
    np.testing.assert_allclose(xla, expected, rtol=float(np.finfo(dtype).eps))


def test_namespace_log_gradient_is_tensorflows() -> None:
    from lossbridge_tensorflow import array_api as xp

    x = tf.constant([0.5, 2.0], tf.float64)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = xp.log(x)
        d = inner.gradient(y, x)
    np.testing.assert_allclose(d.numpy(), [2.0, 0.5])
    np.testing.assert_allclose(outer.gradient(d, x).numpy(), [-4.0, -0.25])


def test_kl_divergence_float32_subnormal_prediction_regression() -> None:
    """The fuzzer's minimal case (``lossbridge check --fuzz 50 --backend tensorflow``): a subnormal
    float32 prediction made TensorFlow's log -103.97 for every subnormal (value off by 4%)."""
    y_true = np.array([0.2902044653892517, 0.22424755990505219, 0.4855479896068573], dtype=np.float32)
    y_pred = np.array([1.0, 3.2229864679470793e-44, 7.0064923216240854e-44], dtype=np.float32)
    loss = lossbridge.get("kl_divergence", backend="tensorflow")
    got = float(loss(tf.constant(y_true), tf.constant(y_pred)))
    t, p = y_true.astype(np.float64), y_pred.astype(np.float64)
    expected = float(np.sum(t * (np.log(t) - np.log(p))))  # one row: Kullback & Leibler (1951)
    assert math.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-5)


def test_check_finite_through_lossbridge_get() -> None:
    loss = lossbridge.get("mse", backend="tensorflow", convention="keras", check_finite=True)
    with pytest.raises(InputError, match=r"y_pred: expected finite values \(check_finite=True\)"):
        loss(np.array([1.0, 2.0]), np.array([1.0, np.nan]))
    assert lossbridge.get("adam", backend="tensorflow", convention="keras", check_finite=True) is not None
