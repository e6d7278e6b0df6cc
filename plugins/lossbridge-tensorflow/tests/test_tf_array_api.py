"""The tf.Tensor Array API namespace vs array-api-strict: element-wise, promotion, operators, reductions.

Every comparison runs the same NumPy inputs through ``lossbridge_tensorflow.array_api`` (eagerly,
in ``tf.function`` and, for a representative subset, under XLA) and through array-api-strict, and
compares values, dtypes and shapes. Special cases the standard specifies are checked directly.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import array_api_strict as xs
import numpy as np
import pytest
import tensorflow as tf
from lossbridge_tensorflow import array_api as xp
from lossbridge_tensorflow.array_api.testing import assert_same, both, name_of, run, tol

MODES = ("eager", "function", "xla")
FLOATS = ("float32", "float64")
INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
SPECIAL = [-math.inf, -2.5, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.5, math.inf, math.nan]


@pytest.fixture(autouse=True)
def _quiet_numpy() -> Any:
    """The NumPy-backed reference warns on log(-1), 0/0 ...: those are the cases under test."""
    with np.errstate(all="ignore"):
        yield


# -- element-wise -----------------------------------------------------------------------------------

UNARY_FLOAT = [
    "abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh", "exp", "expm1",
    "floor", "isfinite", "isinf", "isnan", "log", "log1p", "log2", "log10", "negative", "positive",
    "round", "sign", "signbit", "sin", "sinh", "sqrt", "square", "tan", "tanh", "trunc", "reciprocal",
]  # fmt: skip
BINARY_FLOAT = [
    "add", "atan2", "copysign", "divide", "equal", "floor_divide", "greater", "greater_equal",
    "hypot", "less", "less_equal", "logaddexp", "maximum", "minimum", "multiply", "not_equal",
    "pow", "remainder", "subtract",
]  # fmt: skip
XLA_UNARY = ["exp", "log", "log1p", "sqrt", "tanh", "abs", "sign", "isnan", "round", "expm1"]
XLA_BINARY = ["add", "divide", "maximum", "minimum", "logaddexp", "pow", "remainder", "equal"]


def _unary_input(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([np.array(SPECIAL), rng.uniform(-3, 3, 20), [1e-8, -1e-8, 0.999]]).astype(dtype)


@pytest.mark.parametrize("mode", ("eager", "function"))
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", UNARY_FLOAT)
def test_unary_float(name: str, dtype: str, mode: str) -> None:
    (t,), (s,) = both([_unary_input(dtype)])
    assert_same(run(mode, getattr(xp, name), t), getattr(xs, name)(s), rtol=tol(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", XLA_UNARY)
def test_unary_float_xla(name: str, dtype: str) -> None:
    (t,), (s,) = both([_unary_input(dtype)])
    assert_same(run("xla", getattr(xp, name), t), getattr(xs, name)(s), rtol=tol(dtype, "xla"))


def _pairs(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = zip(*itertools.product(SPECIAL, SPECIAL), strict=True)
    return np.array(a, dtype=dtype), np.array(b, dtype=dtype)


@pytest.mark.parametrize("mode", ("eager", "function"))
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", BINARY_FLOAT)
def test_binary_float(name: str, dtype: str, mode: str) -> None:
    a, b = _pairs(dtype)
    if name in ("floor_divide", "remainder"):  # NumPy deviates from the standard at infinities
        keep = ~(np.isinf(a) | np.isinf(b))
        a, b = a[keep], b[keep]
    (t1, t2), (s1, s2) = both([a, b])
    assert_same(run(mode, getattr(xp, name), t1, t2), getattr(xs, name)(s1, s2), rtol=tol(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", XLA_BINARY)
def test_binary_float_xla(name: str, dtype: str) -> None:
    (t1, t2), (s1, s2) = both(list(_pairs(dtype)))
    assert_same(run("xla", getattr(xp, name), t1, t2), getattr(xs, name)(s1, s2), rtol=tol(dtype, "xla"))


BINARY_INT = [
    "add", "subtract", "multiply", "floor_divide", "remainder", "maximum", "minimum", "equal",
    "less", "greater_equal", "bitwise_and", "bitwise_or", "bitwise_xor", "pow",
]  # fmt: skip


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("name", BINARY_INT)
def test_binary_int(name: str, dtype: str) -> None:
    rng = np.random.default_rng(1)
    low = 0 if dtype.startswith("u") else -5
    a = rng.integers(low, 6, 30).astype(dtype)
    b = (
        rng.integers(1, 4, 30).astype(dtype)
        if name in ("floor_divide", "remainder", "pow")
        else (rng.integers(low, 6, 30).astype(dtype))
    )
    (t1, t2), (s1, s2) = both([a, b])
    assert_same(getattr(xp, name)(t1, t2), getattr(xs, name)(s1, s2))


@pytest.mark.parametrize(
    "name",
    [
        "abs",
        "negative",
        "sign",
        "square",
        "floor",
        "ceil",
        "round",
        "trunc",
        "isnan",
        "isinf",
        "isfinite",
        "bitwise_invert",
    ],
)
@pytest.mark.parametrize("dtype", ("int32", "int64"))
def test_unary_int(name: str, dtype: str) -> None:
    (t,), (s,) = both([np.array([-3, -1, 0, 2, 7], dtype=dtype)])
    assert_same(getattr(xp, name)(t), getattr(xs, name)(s))


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor", "equal", "not_equal"])
def test_logical(name: str) -> None:
    a, b = np.array([True, True, False, False]), np.array([True, False, True, False])
    (t1, t2), (s1, s2) = both([a, b])
    assert_same(getattr(xp, name)(t1, t2), getattr(xs, name)(s1, s2))
    assert_same(xp.logical_not(t1), xs.logical_not(s1))


def test_broadcasting_binary() -> None:
    a, b = np.arange(6.0).reshape(2, 3, 1), np.arange(4.0).reshape(4)
    (t1, t2), (s1, s2) = both([a, b])
    assert_same(xp.multiply(t1, t2), xs.multiply(s1, s2))
    assert_same(xp.where(t1 > 2.0, t1, t2), xs.where(s1 > 2.0, s1, s2))


# -- special cases the standard specifies -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_special_cases(mode: str, dtype: str) -> None:
    nan, inf = math.nan, math.inf

    def f(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return (
            xp.log1p(x),
            xp.maximum(x, y),
            xp.maximum(y, x),
            xp.minimum(x, y),
            xp.minimum(y, x),
            xp.logaddexp(x, y),
            xp.clip(x, -1.0, 1.0),
            xp.sign(x),
        )

    x = tf.constant([-1.0, -2.0, nan, inf, -inf, 0.0, inf], dtype)
    y = tf.constant([0.0, 0.0, 1.0, inf, -inf, nan, -inf], dtype)
    log1p, mx1, mx2, mn1, mn2, lae, clip, sign = (np.asarray(o) for o in run(mode, f, x, y))
    np.testing.assert_array_equal(log1p[:2], [-inf, nan])
    for out in (mx1, mx2, mn1, mn2):  # NaN propagates from either position
        np.testing.assert_array_equal(np.isnan(out), [False, False, True, False, False, True, False])
    np.testing.assert_array_equal(lae[3:], [inf, -inf, nan, inf])
    np.testing.assert_array_equal(clip, [-1.0, -1.0, nan, 1.0, -1.0, 0.0, 1.0])
    np.testing.assert_array_equal(sign, [-1.0, -1.0, nan, 1.0, -1.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", FLOATS)
def test_floor_divide_at_infinity_is_floor_of_quotient(dtype: str) -> None:
    """The standard defines floor_divide as floor(x1 / x2) at infinities (NumPy differs there)."""
    a, b = _pairs(dtype)
    expected = np.floor(a / b)
    np.testing.assert_array_equal(np.asarray(xp.floor_divide(tf.constant(a), tf.constant(b))), expected)


def test_division_and_remainder_edge_cases() -> None:
    a, b = np.array([1.0, -1.0, 0.0, -3.0, 3.0]), np.array([0.0, 0.0, 0.0, 2.0, -2.0])
    (t1, t2), (s1, s2) = both([a, b])
    for name in ("divide", "floor_divide", "remainder"):
        assert_same(getattr(xp, name)(t1, t2), getattr(xs, name)(s1, s2))


# -- type promotion -----------------------------------------------------------------------------------

PROMO = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "float16",
    "float32",
    "float64",
)


def _standard_promotion(a: str, b: str) -> str | None:
    """The standard's result dtype (array-api-strict; NumPy for float16, which strict lacks)."""
    if "float16" in (a, b):
        if a.startswith("float") and b.startswith("float"):
            return np.result_type(a, b).name
        return None
    try:
        return name_of(xs.result_type(getattr(xs, a), getattr(xs, b)))
    except TypeError:
        return None


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations_with_replacement(PROMO, 2)))
def test_promotion_matches_standard(a: str, b: str) -> None:
    expected = _standard_promotion(a, b)
    if expected is None:  # mixed kinds: undefined by the standard, decided in _dtypes
        if "bool" in (a, b):
            with pytest.raises(TypeError, match="bool mixes only with bool"):
                xp.result_type(getattr(xp, a), getattr(xp, b))
            return
        expected = next(d for d in (a, b) if d.startswith("float"))  # documented: the float wins
    assert xp.result_type(getattr(xp, a), getattr(xp, b)).name == expected
    if "bool" not in (a, b):
        x, y = tf.ones(2, getattr(xp, a)), tf.ones(3, getattr(xp, b))[:, None]
        assert xp.add(x, y).dtype.name == expected
        assert xp.add(x, y).shape == (3, 2)


def test_bfloat16_extension() -> None:
    assert xp.result_type(xp.bfloat16, xp.float16) == xp.float32
    assert xp.result_type(xp.bfloat16, xp.float64) == xp.float64
    assert xp.result_type(xp.bfloat16, 1.5) == xp.bfloat16
    assert xp.isdtype(xp.bfloat16, "real floating")
    assert xp.finfo(xp.bfloat16).bits == 16


SCALARS = (True, 2, -3, 2.5)


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ("bool", "int8", "int32", "int64", "uint8", "float32", "float64"))
def test_python_scalar_is_weak(dtype: str, scalar: Any) -> None:
    arr = np.ones(3, dtype=dtype)
    op = "logical_and" if dtype == "bool" else "multiply"
    t, s = tf.constant(arr), xs.asarray(arr)
    if dtype.startswith("uint") and scalar == -3:
        return
    try:
        ref = getattr(xs, op)(s, scalar)
    except TypeError:  # not defined by the standard (float scalar with an int array, ...)
        if dtype != "bool" and isinstance(scalar, float):
            assert xp.multiply(t, scalar).dtype == xp.float32  # documented: default float
        return
    assert_same(getattr(xp, op)(t, scalar), ref)
    assert_same(getattr(xp, op)(scalar, t), getattr(xs, op)(scalar, s))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ("float32", "float64", "int64"))
def test_python_operators_on_tf_tensor_keep_dtype(mode: str, dtype: str) -> None:
    """What the specs write (``x * 2.0``, ``1.0 - x``, ``x ** 2``, ``x == 0``) stays in x's dtype."""
    scalar = 2 if dtype == "int64" else 2.0

    def f(x: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return (
            x * scalar,
            1 - x if dtype == "int64" else 1.0 - x,
            x**2,
            x == 0,
            -x,
            x / scalar,
            scalar * x,
            x >= 1,
            abs(x),
            x // scalar,
            x % scalar,
        )

    arr = np.array([-1.5, 0.0, 3.0]).astype(dtype)
    outs = run(mode, f, tf.constant(arr))
    s = xs.asarray(arr)
    refs = (
        s * scalar,
        1 - s if dtype == "int64" else 1.0 - s,
        s**2,
        s == 0,
        -s,
        None,
        scalar * s,
        s >= 1,
        abs(s),
        s // scalar,
        s % scalar,
    )
    for out, ref in zip(outs, refs, strict=True):
        if ref is None:  # int / int: unspecified by the standard, float64 in TensorFlow
            assert out.dtype == (tf.float64 if dtype == "int64" else getattr(tf, dtype))
            continue
        assert_same(out, ref)


@pytest.mark.parametrize("scalar", (2, 2.5), ids=repr)
def test_python_scalar_keeps_float16(scalar: Any) -> None:
    t = tf.ones(3, tf.float16)
    assert xp.multiply(t, scalar).dtype == tf.float16
    assert xp.add(scalar, t).dtype == tf.float16
    assert xp.maximum(t, scalar).dtype == tf.float16


def test_operators_mixed_tensor_dtypes_raise_but_namespace_promotes() -> None:
    """Documented limitation: tf.Tensor operators don't promote; xp functions do."""
    x32, x64 = tf.ones(2, tf.float32), tf.ones(2, tf.float64)
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError)):
        _ = x32 * x64
    assert xp.multiply(x32, x64).dtype == tf.float64
    with pytest.raises((TypeError, ValueError)):
        _ = tf.ones(2, tf.int32) * 0.5
    assert xp.multiply(tf.ones(2, tf.int32), 0.5).dtype == tf.float32


# -- reductions ---------------------------------------------------------------------------------------

AXES = (None, 0, -1, (0, 2), 1)


def _cube(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(2)
    if dtype == "bool":
        return rng.integers(0, 2, (2, 3, 4)).astype(bool)
    if dtype.startswith(("int", "uint")):
        return rng.integers(0, 5, (2, 3, 4)).astype(dtype)
    return rng.normal(size=(2, 3, 4)).astype(dtype)


@pytest.mark.parametrize("keepdims", (False, True))
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", ["sum", "prod", "mean", "max", "min", "std", "var"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_reductions_float(name: str, dtype: str, axis: Any, keepdims: bool) -> None:
    (t,), (s,) = both([_cube(dtype)])
    assert_same(
        getattr(xp, name)(t, axis=axis, keepdims=keepdims),
        getattr(xs, name)(s, axis=axis, keepdims=keepdims),
        rtol=10 * tol(dtype),
    )


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("dtype", ("bool", "int8", "int32", "uint8", "float32"))
@pytest.mark.parametrize("name", ["sum", "prod", "all", "any", "max", "min"])
def test_reductions_dtypes(name: str, dtype: str, axis: Any) -> None:
    if dtype == "bool" and name in ("sum", "prod", "max", "min"):
        return  # array-api-strict rejects bool for these
    (t,), (s,) = both([_cube(dtype)])
    assert_same(getattr(xp, name)(t, axis=axis), getattr(xs, name)(s, axis=axis), rtol=1e-6)


@pytest.mark.parametrize("correction", (0, 1, 1.5))
def test_std_var_correction(correction: float) -> None:
    (t,), (s,) = both([_cube("float64")])
    assert_same(xp.var(t, axis=1, correction=correction), xs.var(s, axis=1, correction=correction))
    assert_same(xp.std(t, correction=correction), xs.std(s, correction=correction))


@pytest.mark.parametrize("mode", MODES)
def test_max_min_propagate_nan(mode: str) -> None:
    """XLA's own reduce_max skips NaN; the namespace propagates it in every mode."""
    a = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0], [np.nan, 0.0, -1.0]])
    (t,), (s,) = both([a])
    for name in ("max", "min", "sum", "mean"):
        assert_same(run(mode, lambda x, n=name: getattr(xp, n)(x, axis=1), t), getattr(xs, name)(s, axis=1))


@pytest.mark.parametrize("keepdims", (False, True))
@pytest.mark.parametrize("axis", (None, 0, 1, -1))
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name: str, axis: Any, keepdims: bool) -> None:
    a = np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 7.0]])  # ties: the first index wins
    (t,), (s,) = both([a])
    assert_same(
        getattr(xp, name)(t, axis=axis, keepdims=keepdims), getattr(xs, name)(s, axis=axis, keepdims=keepdims)
    )


@pytest.mark.parametrize("include_initial", (False, True))
@pytest.mark.parametrize("dtype", ("float64", "int32"))
@pytest.mark.parametrize("axis", (0, 1, -1))
def test_cumulative_sum(axis: int, dtype: str, include_initial: bool) -> None:
    (t,), (s,) = both([_cube(dtype)[0]])
    kw = {"axis": axis, "include_initial": include_initial}
    assert_same(xp.cumulative_sum(t, **kw), xs.cumulative_sum(s, **kw))
    assert_same(xp.cumulative_prod(t, **kw), xs.cumulative_prod(s, **kw))
