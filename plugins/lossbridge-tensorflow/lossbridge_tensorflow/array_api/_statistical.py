"""Reductions with ``axis``/``keepdims``: sum, prod, mean, max, min, std, var, all, any, cumulatives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from . import _dtypes as d
from ._helpers import as_tensor, axis_tuple, cast, in_xla_context

__all__ = [
    "all", "any", "cumulative_prod", "cumulative_sum", "max", "mean", "min", "prod", "std", "sum", "var",
]

Axis = int | Sequence[int] | None


def _axes(t: tf.Tensor, axis: Axis) -> list[int]:
    return list(axis_tuple(axis, t.shape.rank))


def _accumulator_dtype(t: tf.Tensor, dtype: Any) -> tf.DType:
    """The Array API default: bool and narrow integers accumulate in the default integer dtype."""
    if dtype is not None:
        return d.as_dtype(dtype)
    if t.dtype == d.bool or d.isdtype(t.dtype, "signed integer"):
        return d.DEFAULT_INT
    if d.isdtype(t.dtype, "unsigned integer"):
        return d.uint64
    return t.dtype


def sum(x: Any, /, *, axis: Axis = None, dtype: Any = None, keepdims: bool = False) -> tf.Tensor:
    """Sum over ``axis`` (all axes by default); integers accumulate in the default integer dtype."""
    t = as_tensor(x)
    return tf.reduce_sum(cast(t, _accumulator_dtype(t, dtype)), axis=_axes(t, axis), keepdims=keepdims)


def prod(x: Any, /, *, axis: Axis = None, dtype: Any = None, keepdims: bool = False) -> tf.Tensor:
    """Product over ``axis`` (all axes by default)."""
    t = as_tensor(x)
    return tf.reduce_prod(cast(t, _accumulator_dtype(t, dtype)), axis=_axes(t, axis), keepdims=keepdims)


def _require_float(t: tf.Tensor, fn: str) -> None:
    if not (t.dtype.is_floating or t.dtype.is_complex):
        raise TypeError(f"{fn}: expected a floating-point array, got dtype {t.dtype.name}")


def mean(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> tf.Tensor:
    """Arithmetic mean over ``axis`` (floating arrays; mean of nothing is NaN)."""
    t = as_tensor(x)
    _require_float(t, "mean")
    axes = _axes(t, axis)
    return tf.reduce_sum(t, axis=axes, keepdims=keepdims) / _count(t, axes)


def _count(t: tf.Tensor, axes: list[int]) -> tf.Tensor:
    shape = tf.shape(t)
    n = tf.reduce_prod(tf.gather(shape, axes)) if axes else tf.constant(1)
    return tf.cast(n, t.dtype)


def var(x: Any, /, *, axis: Axis = None, correction: int | float = 0.0, keepdims: bool = False) -> tf.Tensor:
    """Variance over ``axis`` with ``correction`` degrees of freedom removed (``ddof``)."""
    t = as_tensor(x)
    _require_float(t, "var")
    axes = _axes(t, axis)
    centered = t - tf.reduce_sum(t, axis=axes, keepdims=True) / _count(t, axes)
    squares = tf.math.real(centered * tf.math.conj(centered)) if t.dtype.is_complex else centered * centered
    dof = tf.maximum(_count(squares, axes) - correction, 0)
    return tf.reduce_sum(squares, axis=axes, keepdims=keepdims) / dof


def std(x: Any, /, *, axis: Axis = None, correction: int | float = 0.0, keepdims: bool = False) -> tf.Tensor:
    """Standard deviation: ``sqrt(var(x, axis=axis, correction=correction))``."""
    return tf.sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def _extremum(op: Any, name: str, x: Any, axis: Axis, keepdims: bool) -> tf.Tensor:
    t = as_tensor(x)
    axes = _axes(t, axis)
    if t.dtype == d.bool:
        red = tf.reduce_any if op is tf.reduce_max else tf.reduce_all
        return red(t, axis=axes, keepdims=keepdims)
    out = op(t, axis=axes, keepdims=keepdims)
    if t.dtype.is_floating and in_xla_context():  # NaN propagates (the kernels do; XLA's max reduction drops it)
        has_nan = tf.reduce_any(tf.math.is_nan(t), axis=axes, keepdims=keepdims)
        out = tf.where(has_nan, tf.constant(float("nan"), t.dtype), out)
    return out


def max(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> tf.Tensor:
    """Maximum over ``axis``; NaN propagates."""
    return _extremum(tf.reduce_max, "max", x, axis, keepdims)


def min(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> tf.Tensor:
    """Minimum over ``axis``; NaN propagates."""
    return _extremum(tf.reduce_min, "min", x, axis, keepdims)


def all(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> tf.Tensor:
    """Whether every element along ``axis`` is truthy (non-zero)."""
    t = as_tensor(x)
    return tf.reduce_all(cast(t, d.bool), axis=_axes(t, axis), keepdims=keepdims)


def any(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> tf.Tensor:
    """Whether any element along ``axis`` is truthy (non-zero)."""
    t = as_tensor(x)
    return tf.reduce_any(cast(t, d.bool), axis=_axes(t, axis), keepdims=keepdims)


def _cumulative(op: Any, x: Any, axis: int | None, dtype: Any, include_initial: bool, one: int) -> tf.Tensor:
    t = as_tensor(x)
    if axis is None:
        if t.shape.rank != 1:
            raise ValueError(f"axis: required for arrays of {t.shape.rank} dimensions (got None)")
        axis = 0
    (ax,) = axis_tuple(axis, t.shape.rank)
    t = cast(t, _accumulator_dtype(t, dtype))
    out = op(t, axis=ax)
    if include_initial:
        first = tf.fill(tf.tensor_scatter_nd_update(tf.shape(t), [[ax]], [1]), tf.constant(one, t.dtype))
        out = tf.concat([first, out], axis=ax)
    return out


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                   include_initial: bool = False) -> tf.Tensor:
    """Running sum along ``axis`` (optional leading 0 with ``include_initial``)."""
    return _cumulative(tf.math.cumsum, x, axis, dtype, include_initial, 0)


def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                    include_initial: bool = False) -> tf.Tensor:
    """Running product along ``axis`` (optional leading 1 with ``include_initial``)."""
    return _cumulative(tf.math.cumprod, x, axis, dtype, include_initial, 1)
