"""The tf.Tensor Array API namespace vs array-api-strict: shapes, linalg, sorting, creation, grads, errors.

Every comparison runs the same NumPy inputs through ``lossbridge_tensorflow.array_api`` (eagerly,
in ``tf.function`` and, for a representative subset, under XLA) and through array-api-strict, and
compares values, dtypes and shapes.
Gradients by ``tf.GradientTape`` are checked against analytic derivatives written here and
against central finite differences of the array-api-strict run, in float64.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import array_api_strict as xs
import numpy as np
import pytest
import tensorflow as tf
from lossbridge_tensorflow import array_api as xp
from lossbridge_tensorflow.array_api.testing import assert_same, both, run, tol

MODES = ("eager", "function", "xla")
FLOATS = ("float32", "float64")


@pytest.fixture(autouse=True)
def _quiet_numpy() -> Any:
    """The NumPy-backed reference warns on log(-1), 0/0 ...: those are the cases under test."""
    with np.errstate(all="ignore"):
        yield


# -- manipulation and indexing ------------------------------------------------------------------------

M = np.arange(24.0).reshape(2, 3, 4)
MANIPULATION: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("reshape", lambda ns, x: ns.reshape(x, (4, -1))),
    ("broadcast_to", lambda ns, x: ns.broadcast_to(x[0, :, :1], (5, 3, 4))),
    ("expand_dims", lambda ns, x: ns.expand_dims(x, axis=-1)),
    ("expand_dims0", lambda ns, x: ns.expand_dims(x, axis=1)),
    ("squeeze", lambda ns, x: ns.squeeze(x[:, :1, :], axis=1)),
    ("permute_dims", lambda ns, x: ns.permute_dims(x, (2, 0, 1))),
    ("concat", lambda ns, x: ns.concat([x, x[:, :1, ...]], axis=1)),
    ("concat_none", lambda ns, x: ns.concat([x, x[0, ...]], axis=None)),
    ("stack", lambda ns, x: ns.stack([x, x], axis=-1)),
    ("flip", lambda ns, x: ns.flip(x)),
    ("flip_axis", lambda ns, x: ns.flip(x, axis=(0, 2))),
    ("moveaxis", lambda ns, x: ns.moveaxis(x, 0, -1)),
    ("moveaxis_many", lambda ns, x: ns.moveaxis(x, (0, 1), (2, 0))),
    ("take", lambda ns, x: ns.take(x, ns.asarray([2, 0, 1, 0]), axis=1)),
    ("take_negative", lambda ns, x: ns.take(x, ns.asarray([-1, 0]), axis=-1)),
    ("take_along_axis", lambda ns, x: ns.take_along_axis(x, ns.argsort(x * -1.0, axis=-1), axis=-1)),
    ("take_along_axis_bcast", lambda ns, x: ns.take_along_axis(x, ns.asarray([[[1], [0], [3]]]), axis=2)),
    ("tile", lambda ns, x: ns.tile(x, (2, 1, 3))),
    ("tile_short", lambda ns, x: ns.tile(x, (2,))),
    ("repeat", lambda ns, x: ns.repeat(x, 2, axis=1)),
    ("repeat_none", lambda ns, x: ns.repeat(x[0, 0, ...], 3)),
    ("roll", lambda ns, x: ns.roll(x, 2, axis=-1)),
    ("roll_none", lambda ns, x: ns.roll(x, -3)),
    ("matrix_transpose", lambda ns, x: ns.matrix_transpose(x)),
    ("matmul", lambda ns, x: ns.matmul(x, ns.permute_dims(x, (0, 2, 1)))),
    ("matmul_vec", lambda ns, x: ns.matmul(x, x[0, 0, ...])),
    ("matmul_vec_left", lambda ns, x: ns.matmul(x[0, :, 0], x)),
    ("matmul_bcast", lambda ns, x: ns.matmul(x, ns.ones((1, 4, 2), dtype=ns.float64))),
    ("vecdot", lambda ns, x: ns.vecdot(x, x[0, ...])),
    ("vecdot_axis", lambda ns, x: ns.vecdot(x, x, axis=-3)),
    ("tensordot", lambda ns, x: ns.tensordot(x, ns.permute_dims(x, (2, 1, 0)), axes=1)),
    ("tensordot_axes", lambda ns, x: ns.tensordot(x, x, axes=((1, 2), (1, 2)))),
    ("sort", lambda ns, x: ns.sort(ns.flip(x, axis=1), axis=1)),
    ("sort_desc", lambda ns, x: ns.sort(x, axis=-1, descending=True)),
    ("argsort_ties", lambda ns, x: ns.argsort(ns.floor(x / 3.0), axis=-1)),
    ("argsort_ties_desc", lambda ns, x: ns.argsort(ns.floor(x / 3.0), axis=0, descending=True)),
    ("searchsorted", lambda ns, x: ns.searchsorted(ns.reshape(x, (-1,)), x[0, ...] + 0.5)),
    ("searchsorted_right", lambda ns, x: ns.searchsorted(ns.reshape(x, (-1,)), x[1, ...], side="right")),
    ("count_nonzero", lambda ns, x: ns.count_nonzero(ns.remainder(x, 3.0), axis=1)),
    ("unstack", lambda ns, x: ns.unstack(x, axis=1)[2]),
    ("tril", lambda ns, x: ns.tril(x, k=1)),
    ("triu", lambda ns, x: ns.triu(x, k=-1)),
    ("nonzero", lambda ns, x: ns.stack(ns.nonzero(ns.remainder(x, 5.0) == 0.0))),
]


@pytest.mark.parametrize(("name", "fn"), MANIPULATION, ids=[m[0] for m in MANIPULATION])
def test_manipulation_and_linalg(name: str, fn: Callable[[Any, Any], Any]) -> None:
    (t,), (s,) = both([M])
    assert_same(fn(xp, t), fn(xs, s))


XLA_MANIPULATION = (
    "take",
    "take_along_axis",
    "matmul",
    "tensordot",
    "sort",
    "argsort_ties_desc",
    "concat",
    "moveaxis_many",
    "roll",
    "vecdot",
    "repeat",
)


@pytest.mark.parametrize("name", XLA_MANIPULATION)
def test_manipulation_xla(name: str) -> None:
    fn = dict(MANIPULATION)[name]
    (t,), (s,) = both([M])
    assert_same(run("xla", lambda x: fn(xp, x), t), fn(xs, s))


def test_broadcast_arrays_keep_dtypes() -> None:
    a, b = np.ones((3, 1), dtype="float32"), np.arange(4, dtype="int64")
    ours, ref = (
        xp.broadcast_arrays(tf.constant(a), tf.constant(b)),
        xs.broadcast_arrays(xs.asarray(a), xs.asarray(b)),
    )
    for o, r in zip(ours, ref, strict=True):
        assert_same(o, r)


# -- creation -----------------------------------------------------------------------------------------

CREATION: list[tuple[str, Callable[[Any], Any]]] = [
    ("zeros", lambda ns: ns.zeros((2, 3), dtype=ns.float64)),
    ("ones", lambda ns: ns.ones(4, dtype=ns.int32)),
    ("full", lambda ns: ns.full((2, 2), 3.5, dtype=ns.float64)),
    ("full_int", lambda ns: ns.full((2,), 7)),
    ("full_bool", lambda ns: ns.full((2,), True)),
    ("zeros_like", lambda ns: ns.zeros_like(ns.ones((2, 3), dtype=ns.float32))),
    ("ones_like", lambda ns: ns.ones_like(ns.zeros((2,), dtype=ns.float32), dtype=ns.int64)),
    ("full_like", lambda ns: ns.full_like(ns.zeros((3,), dtype=ns.float64), -2.0)),
    ("empty_shape", lambda ns: ns.empty((2, 0, 3), dtype=ns.float32)),
    ("arange", lambda ns: ns.arange(5)),
    ("arange_step", lambda ns: ns.arange(2, 11, 3)),
    ("arange_neg", lambda ns: ns.arange(5, -3, -2)),
    ("arange_float", lambda ns: ns.arange(0.0, 1.0, 0.25, dtype=ns.float64)),
    ("arange_empty", lambda ns: ns.arange(3, 1)),
    ("eye", lambda ns: ns.eye(3, dtype=ns.float64)),
    ("eye_k", lambda ns: ns.eye(3, 5, k=2, dtype=ns.int32)),
    ("linspace", lambda ns: ns.linspace(0.0, 1.0, 5, dtype=ns.float64)),
    ("linspace_open", lambda ns: ns.linspace(-1.0, 1.0, 4, endpoint=False, dtype=ns.float64)),
    ("asarray_nested", lambda ns: ns.asarray([[1, 2], [3, 4]], dtype=ns.int16)),
    ("asarray_bool", lambda ns: ns.asarray([True, False])),
    ("asarray_cast", lambda ns: ns.asarray(ns.asarray([1.5, -2.5], dtype=ns.float64), dtype=ns.float32)),
    ("astype_trunc", lambda ns: ns.astype(ns.asarray([1.7, -1.7], dtype=ns.float64), ns.int32)),
    ("astype_bool", lambda ns: ns.astype(ns.asarray([0.0, 2.0], dtype=ns.float64), ns.bool)),
]


@pytest.mark.parametrize(("name", "fn"), CREATION, ids=[c[0] for c in CREATION])
def test_creation(name: str, fn: Callable[[Any], Any]) -> None:
    assert_same(fn(xp), fn(xs))


def test_default_dtypes_are_documented() -> None:
    """Python floats default to float32 (TensorFlow/Keras), ints and indices to int64."""
    assert xp.asarray(1.5).dtype == tf.float32
    assert xp.asarray([1, 2]).dtype == tf.int64
    assert xp.zeros(2).dtype == tf.float32
    assert xp.arange(3).dtype == tf.int64
    assert xp.argmax(tf.ones(3)).dtype == tf.int64
    info = xp.__array_namespace_info__()
    assert info.default_dtypes()["real floating"] == tf.float32
    assert set(info.dtypes(kind="real floating")) == {"float16", "float32", "float64"}


@pytest.mark.parametrize("mode", MODES)
def test_asarray_packs_sequences_of_tensors(mode: str) -> None:
    def f(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return xp.asarray([[a, 1.0], [b, a]], dtype=xp.float64)

    out = run(mode, f, tf.constant(2.0, tf.float32), tf.constant(3.0, tf.float64))
    assert_same(out, xs.asarray([[2.0, 1.0], [3.0, 2.0]], dtype=xs.float64))


def test_asarray_accepts_variables_and_numpy() -> None:
    import keras

    v, kv = tf.Variable([1.0, 2.0], dtype=tf.float64), keras.Variable(np.array([3.0, 4.0]), dtype="float64")
    for obj in (v, kv, np.array([1.0, 2.0])):
        out = xp.asarray(obj)
        assert isinstance(out, tf.Tensor) and out.dtype == tf.float64
    assert_same(xp.multiply(v, kv), xs.asarray(np.array([3.0, 8.0])))
    assert xp.zeros_like(kv).dtype == tf.float64
    assert xp.where(xp.greater(v, 1.5), v, 0.0).dtype == tf.float64


# -- data types ---------------------------------------------------------------------------------------

KINDS = (
    "bool",
    "signed integer",
    "unsigned integer",
    "integral",
    "real floating",
    "complex floating",
    "numeric",
)
DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "complex64",
    "complex128",
)


@pytest.mark.parametrize("kind", (*KINDS, ("bool", "real floating"), "float32"), ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_isdtype(dtype: str, kind: Any) -> None:
    ours_kind = getattr(xp, kind) if kind == "float32" else kind
    ref_kind = getattr(xs, kind) if kind == "float32" else kind
    assert xp.isdtype(getattr(xp, dtype), ours_kind) == xs.isdtype(getattr(xs, dtype), ref_kind)


@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_finfo(dtype: str) -> None:
    ours, ref = xp.finfo(getattr(xp, dtype)), xs.finfo(getattr(xs, dtype))
    for field in ("bits", "eps", "max", "min", "smallest_normal"):
        assert getattr(ours, field) == getattr(ref, field)
    assert xp.finfo(tf.ones(2, getattr(tf, dtype))).bits == ref.bits


@pytest.mark.parametrize("dtype", ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"))
def test_iinfo(dtype: str) -> None:
    ours, ref = xp.iinfo(getattr(xp, dtype)), xs.iinfo(getattr(xs, dtype))
    assert (ours.bits, ours.min, ours.max) == (ref.bits, ref.min, ref.max)


@pytest.mark.parametrize(
    ("a", "b"), list(itertools.product(("bool", "int8", "uint8", "int64", "float32", "float64"), repeat=2))
)
def test_can_cast(a: str, b: str) -> None:
    assert xp.can_cast(getattr(xp, a), getattr(xp, b)) == xs.can_cast(getattr(xs, a), getattr(xs, b))


# -- tf.function / XLA: a composite as the specs write it ------------------------------------------------


def _composite(ns: Any, y: Any, p: Any) -> Any:
    """A cross-entropy-like chain of the functions the specs use, with Python-scalar operators."""
    z = p - ns.max(p, axis=-1, keepdims=True)
    logz = ns.log(ns.sum(ns.exp(z), axis=-1, keepdims=True))
    label = ns.astype(ns.argmax(y, axis=-1), ns.int64)
    picked = ns.take_along_axis(z - logz, ns.expand_dims(label, axis=-1), axis=-1)
    soft = ns.logaddexp(0.0, -p) * 0.5 + ns.clip(p, -1.0, 1.0) ** 2
    mask = ns.where(y == 0.0, ns.zeros_like(p), ns.ones_like(p))
    return -ns.squeeze(picked, axis=-1) + ns.mean(soft * mask, axis=-1) + ns.std(p, axis=-1, correction=1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_composite_in_every_mode(mode: str, dtype: str) -> None:
    rng = np.random.default_rng(3)
    y = np.eye(5)[rng.integers(0, 5, 8)].astype(dtype)
    p = rng.normal(size=(8, 5)).astype(dtype) * 3
    (ty, tp), (sy, sp) = both([y, p])
    assert_same(
        run(mode, lambda a, b: _composite(xp, a, b), ty, tp),
        _composite(xs, sy, sp),
        rtol=10 * tol(dtype, mode),
    )


def test_unknown_shapes_inside_tf_function() -> None:
    """Traced with a dynamic batch axis: reductions, take and where still work."""
    sig = [tf.TensorSpec([None, 3], tf.float64)]

    @tf.function(input_signature=sig, autograph=False)
    def f(x: tf.Tensor) -> tf.Tensor:
        return xp.mean(xp.where(x > 0.0, x, 0.0), axis=0) + xp.sum(xp.take(x, xp.asarray([0, 2]), axis=1))

    x = np.arange(12.0).reshape(4, 3) - 5
    ref = xs.mean(xs.where(xs.asarray(x) > 0.0, xs.asarray(x), 0.0), axis=0) + xs.sum(
        xs.asarray(x[:, [0, 2]])
    )
    assert_same(f(tf.constant(x)), ref)


# -- gradients (GradientTape) ---------------------------------------------------------------------------

GRADS: list[tuple[str, Callable[[tf.Tensor], tf.Tensor], Callable[[np.ndarray], np.ndarray]]] = [
    ("exp", xp.exp, np.exp),
    ("log", lambda x: xp.log(xp.abs(x) + 0.5), lambda x: np.sign(x) / (np.abs(x) + 0.5)),
    ("log1p", lambda x: xp.log1p(xp.abs(x)), lambda x: np.sign(x) / (1 + np.abs(x))),
    ("expm1", xp.expm1, np.exp),
    ("sqrt", lambda x: xp.sqrt(x * x + 1.0), lambda x: x / np.sqrt(x * x + 1)),
    ("tanh", xp.tanh, lambda x: 1 - np.tanh(x) ** 2),
    ("square", xp.square, lambda x: 2 * x),
    ("pow", lambda x: xp.pow(x, 3.0), lambda x: 3 * x**2),
    ("softplus", lambda x: xp.logaddexp(0.0, x), lambda x: 1 / (1 + np.exp(-x))),
    ("logaddexp_tie", lambda x: xp.logaddexp(x, x), lambda x: np.ones_like(x)),
    ("maximum", lambda x: xp.maximum(x, 0.1), lambda x: (x > 0.1).astype(float)),
    ("minimum", lambda x: xp.minimum(x, 0.1), lambda x: (x < 0.1).astype(float)),
    ("clip", lambda x: xp.clip(x, -0.5, 0.5), lambda x: (np.abs(x) < 0.5).astype(float)),
    ("where", lambda x: xp.where(x > 0.0, x * 3.0, -x), lambda x: np.where(x > 0, 3.0, -1.0)),
    ("abs", xp.abs, np.sign),
    ("sin", xp.sin, np.cos),
    ("divide", lambda x: xp.divide(1.0, x * x + 1.0), lambda x: -2 * x / (x * x + 1) ** 2),
]
REDUCTION_GRADS: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("sum", lambda ns, x: ns.sum(x * x, axis=1)),
    ("mean", lambda ns, x: ns.mean(ns.exp(x), axis=0)),
    ("max", lambda ns, x: ns.max(x, axis=-1)),
    ("std", lambda ns, x: ns.std(x, axis=1, correction=1)),
    ("var", lambda ns, x: ns.var(x)),
    ("prod", lambda ns, x: ns.prod(x, axis=0)),
    ("matmul", lambda ns, x: ns.matmul(x, ns.matrix_transpose(x))),
    ("take", lambda ns, x: ns.take(x, ns.asarray([2, 2, 0]), axis=1) ** 2),
    (
        "take_along_axis",
        lambda ns, x: ns.take_along_axis(x, ns.argsort(x, axis=1), axis=1) * ns.arange(4.0, dtype=x.dtype),
    ),
    ("cumulative_sum", lambda ns, x: ns.cumulative_sum(x, axis=1) ** 2),
    ("logsumexp", lambda ns, x: ns.log(ns.sum(ns.exp(x - ns.max(x, axis=1, keepdims=True)), axis=1))),
    ("vecdot", lambda ns, x: ns.vecdot(x, ns.flip(x, axis=1))),
    ("broadcast_to", lambda ns, x: ns.broadcast_to(ns.expand_dims(x, axis=0), (2, 3, 4)) ** 2),
]


def _grad(fn: Callable[[tf.Tensor], tf.Tensor], x: np.ndarray, *, jit: bool = False) -> np.ndarray:
    def g(t: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(t)
            out = tf.reduce_sum(fn(t))
        return tape.gradient(out, t)

    return np.asarray(tf.function(g, jit_compile=True)(tf.constant(x)) if jit else g(tf.constant(x)))


def _finite_diff(fn: Callable[[np.ndarray], Any], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        out[i] = (np.sum(np.asarray(fn(up))) - np.sum(np.asarray(fn(down)))) / (2 * h)
    return out


XLA_GRADS = ("softplus", "logaddexp_tie", "maximum", "clip", "where", "sqrt")


@pytest.mark.parametrize(
    ("name", "fn", "deriv", "jit"),
    [pytest.param(*g, False, id=f"{g[0]}-eager") for g in GRADS]
    + [pytest.param(*g, True, id=f"{g[0]}-xla") for g in GRADS if g[0] in XLA_GRADS],
)
def test_elementwise_gradients(name: str, fn: Any, deriv: Any, jit: bool) -> None:
    x = np.array([-1.3, -0.7, -0.2, 0.3, 0.9, 1.7])
    np.testing.assert_allclose(_grad(fn, x, jit=jit), deriv(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("name", "fn"), REDUCTION_GRADS, ids=[g[0] for g in REDUCTION_GRADS])
def test_reduction_gradients_vs_finite_differences(name: str, fn: Callable[[Any, Any], Any]) -> None:
    x = np.random.default_rng(4).normal(size=(3, 4))
    expected = _finite_diff(lambda a: fn(xs, xs.asarray(a)), x)
    np.testing.assert_allclose(_grad(lambda t: fn(xp, t), x), expected, rtol=1e-6, atol=1e-8)


# -- errors and the public surface ----------------------------------------------------------------------


def test_missing_function_names_itself() -> None:
    with pytest.raises(
        AttributeError, match=r"array_api has no function 'unique_values' \(not implemented; an Array API"
    ):
        _ = xp.unique_values
    with pytest.raises(AttributeError, match="has no function 'frobnicate'"):
        _ = xp.frobnicate


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: xp.where(tf.ones(2), 1.0, 0.0),
            TypeError,
            "where: condition must be a bool array, got dtype float32",
        ),
        (lambda: xp.squeeze(tf.ones((2, 3)), axis=1), ValueError, "squeeze: axis 1 has size 3, expected 1"),
        (lambda: xp.sum(tf.ones((2, 3)), axis=2), ValueError, "axis: 2 is out of range for an array of 2"),
        (
            lambda: xp.mean(tf.ones(2, tf.int32)),
            TypeError,
            "mean: expected a floating-point array, got dtype int32",
        ),
        (
            lambda: xp.take(tf.ones(3), tf.ones(2)),
            TypeError,
            "indices: expected an integer array, got dtype float32",
        ),
        (lambda: xp.broadcast_to(tf.ones(3), (2, 4)), ValueError, "broadcast: shapes"),
        (lambda: xp.matmul(tf.ones((2, 3)), tf.ones((2, 3))), ValueError, r"matmul: contracted axes differ"),
        (lambda: xp.isdtype(tf.float32, "floating"), ValueError, "isdtype: kind must be one of"),
        (lambda: xp.asarray([1.0], dtype="float128x"), TypeError, "dtype: expected an Array API dtype"),
        (lambda: xp.add(tf.ones(2), object()), TypeError, "x2: expected an array"),
        (lambda: xp.finfo(xp.int32), TypeError, "finfo: expected a floating dtype"),
    ],
)
def test_errors_name_the_argument(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_public_names() -> None:
    """``__all__`` lists exactly what the namespace defines, and covers the core the specs rely on."""
    import lossbridge_tensorflow.array_api as mod

    for name in mod.__all__:
        assert hasattr(mod, name), name
    core = {
        "abs", "add", "all", "any", "arange", "argmax", "argmin", "asarray", "astype", "broadcast_arrays",
        "broadcast_to", "clip", "concat", "cumulative_sum", "divide", "equal", "exp", "expand_dims", "eye",
        "finfo", "flip", "full", "iinfo", "isdtype", "isfinite", "isinf", "isnan", "linspace", "log", "log1p",
        "logaddexp", "matmul", "matrix_transpose", "max", "maximum", "mean", "min", "minimum", "moveaxis",
        "ones", "ones_like", "permute_dims", "prod", "reshape", "result_type", "sort", "argsort", "sqrt",
        "squeeze", "stack", "std", "sum", "take", "take_along_axis", "tensordot", "tile", "var", "vecdot",
        "where", "zeros", "zeros_like", "float32", "float64", "int64", "bool",
    }  # fmt: skip
    assert core <= set(mod.__all__)
    assert mod.__array_api_version__ == "2024.12"


# -- linalg extension ---------------------------------------------------------------------------------

SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
LINALG: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("vector_norm", lambda ns, x: ns.linalg.vector_norm(x, axis=-1)),
    ("vector_norm_all", lambda ns, x: ns.linalg.vector_norm(x, keepdims=True)),
    ("vector_norm_1", lambda ns, x: ns.linalg.vector_norm(x, axis=(0, 1), ord=1)),
    ("vector_norm_inf", lambda ns, x: ns.linalg.vector_norm(x, axis=0, ord=float("inf"))),
    ("vector_norm_3", lambda ns, x: ns.linalg.vector_norm(x, axis=1, ord=3)),
    ("matrix_norm_fro", lambda ns, x: ns.linalg.matrix_norm(x)),
    ("matrix_norm_nuc", lambda ns, x: ns.linalg.matrix_norm(x, ord="nuc")),
    ("matrix_norm_2", lambda ns, x: ns.linalg.matrix_norm(x, ord=2, keepdims=True)),
    ("matrix_norm_1", lambda ns, x: ns.linalg.matrix_norm(x, ord=1)),
    ("matrix_norm_inf", lambda ns, x: ns.linalg.matrix_norm(x, ord=float("-inf"))),
    ("diagonal", lambda ns, x: ns.linalg.diagonal(x, offset=1)),
    ("trace", lambda ns, x: ns.linalg.trace(x)),
    ("outer", lambda ns, x: ns.linalg.outer(x[0, :], x[:, 1])),
    ("cross", lambda ns, x: ns.linalg.cross(x, ns.flip(x, axis=0), axis=-2)),
    ("det", lambda ns, x: ns.linalg.det(x)),
    ("slogdet", lambda ns, x: ns.linalg.slogdet(x)[1]),
    ("inv", lambda ns, x: ns.linalg.inv(x)),
    ("solve", lambda ns, x: ns.linalg.solve(x, x[:, 0])),
    ("cholesky", lambda ns, x: ns.linalg.cholesky(x)),
    ("cholesky_upper", lambda ns, x: ns.linalg.cholesky(x, upper=True)),
    ("eigvalsh", lambda ns, x: ns.linalg.eigvalsh(x)),
    ("svdvals", lambda ns, x: ns.linalg.svdvals(x)),
    ("matrix_power", lambda ns, x: ns.linalg.matrix_power(x, 3)),
    ("matrix_power_neg", lambda ns, x: ns.linalg.matrix_power(x, -2)),
    ("matmul", lambda ns, x: ns.linalg.matmul(x, x)),
]


@pytest.mark.parametrize(("name", "fn"), LINALG, ids=[c[0] for c in LINALG])
def test_linalg_extension(name: str, fn: Callable[[Any, Any], Any]) -> None:
    (t,), (s,) = both([SPD])
    assert_same(fn(xp, t), fn(xs, s), rtol=1e-12, atol=1e-14)


def test_linalg_missing_function_names_itself() -> None:
    with pytest.raises(AttributeError, match="linalg has no function 'qr'"):
        _ = xp.linalg.qr
