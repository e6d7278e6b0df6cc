"""Searching (argmax, argmin, nonzero, searchsorted, count_nonzero), sorting and linear algebra."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from . import _dtypes as d
from ._helpers import as_tensor, axis_tuple, cast, promote

__all__ = [
    "argmax",
    "argmin",
    "argsort",
    "count_nonzero",
    "matmul",
    "matrix_transpose",
    "nonzero",
    "searchsorted",
    "sort",
    "tensordot",
    "vecdot",
]


def _arg_extremum(op: Any, x: Any, axis: int | None, keepdims: bool) -> tf.Tensor:
    t = as_tensor(x)
    if t.dtype == d.bool:
        t = tf.cast(t, d.int8)
    if t.dtype.is_floating:  # the first NaN wins, as in NumPy
        nan = tf.math.is_nan(t)
        fill = float("inf") if op is tf.math.argmax else float("-inf")
        t = tf.where(nan, tf.constant(fill, t.dtype), t)
    rank = t.shape.rank
    flat = tf.reshape(t, [-1]) if axis is None else t
    ax = 0 if axis is None else axis_tuple(axis, rank)[0]
    out = op(flat, axis=ax, output_type=d.DEFAULT_INT)
    if t.dtype.is_floating:
        nan_flat = tf.reshape(nan, [-1]) if axis is None else nan
        first_nan = tf.math.argmax(tf.cast(nan_flat, d.int8), axis=ax, output_type=d.DEFAULT_INT)
        out = tf.where(tf.reduce_any(nan_flat, axis=ax), first_nan, out)
    if keepdims:
        out = tf.reshape(out, [1] * rank) if axis is None else tf.expand_dims(out, ax)
    return out


def argmax(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> tf.Tensor:
    """Index of the first maximum along ``axis`` (of the flattened array when None), int64."""
    return _arg_extremum(tf.math.argmax, x, axis, keepdims)


def argmin(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> tf.Tensor:
    """Index of the first minimum along ``axis`` (of the flattened array when None), int64."""
    return _arg_extremum(tf.math.argmin, x, axis, keepdims)


def nonzero(x: Any, /) -> tuple[tf.Tensor, ...]:
    """Indices of the non-zero elements, one int64 array per axis (data-dependent shape: not XLA)."""
    t = as_tensor(x)
    if t.shape.rank == 0:
        raise ValueError("nonzero: x must have at least one dimension, got a 0-D array")
    coords = tf.where(tf.cast(t, d.bool))
    return tuple(coords[:, i] for i in range(t.shape.rank))


def count_nonzero(x: Any, /, *, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> tf.Tensor:
    """Number of non-zero elements along ``axis``, in the default integer dtype."""
    t = as_tensor(x)
    nz = tf.cast(tf.cast(t, d.bool), d.DEFAULT_INT)
    return tf.reduce_sum(nz, axis=list(axis_tuple(axis, t.shape.rank)), keepdims=keepdims)


def searchsorted(x1: Any, x2: Any, /, *, side: str = "left", sorter: Any = None) -> tf.Tensor:
    """Insertion indices of ``x2`` into the sorted 1-D ``x1`` (``side`` 'left' or 'right')."""
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    a, v = promote(x1, x2)
    if sorter is not None:
        a = tf.gather(a, as_tensor(sorter, "sorter"))
    flat = tf.reshape(v, [1, -1])
    out = tf.searchsorted(a[None, :], flat, side=side, out_type=d.DEFAULT_INT)
    return tf.reshape(out, tf.shape(v))


def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> tf.Tensor:
    """Indices that sort ``x`` along ``axis`` (stable: ties keep their order), int64."""
    t = as_tensor(x)
    if t.dtype == d.bool:
        t = tf.cast(t, d.int8)
    direction = "DESCENDING" if descending else "ASCENDING"  # TF keeps ties in order both ways
    return cast(tf.argsort(t, axis=axis, direction=direction, stable=True), d.DEFAULT_INT)


def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> tf.Tensor:
    """``x`` sorted along ``axis`` (values only, so stability is unobservable)."""
    t = as_tensor(x)
    work = tf.cast(t, d.int8) if t.dtype == d.bool else t
    out = tf.sort(work, axis=axis, direction="DESCENDING" if descending else "ASCENDING")
    return cast(out, t.dtype)


def matmul(x1: Any, x2: Any, /) -> tf.Tensor:
    """Matrix product with broadcasting batch axes; 1-D operands are promoted and squeezed back."""
    a, b = promote(x1, x2)
    if a.shape.rank == 0 or b.shape.rank == 0:
        raise ValueError("matmul: 0-D operands are not allowed (use multiply)")
    squeeze: list[int] = []
    if a.shape.rank == 1:
        a, squeeze = a[None, :], [*squeeze, -2]
    if b.shape.rank == 1:
        b, squeeze = b[:, None], [*squeeze, -1]
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: contracted axes differ: {tuple(a.shape)} @ {tuple(b.shape)}")
    out = tf.linalg.matmul(a, b)
    return tf.squeeze(out, axis=squeeze) if squeeze else out


def matrix_transpose(x: Any, /) -> tf.Tensor:
    """``x`` with its last two axes swapped."""
    t = as_tensor(x)
    if t.shape.rank < 2:
        raise ValueError(f"matrix_transpose: x must have at least 2 dimensions, got {t.shape.rank}")
    return tf.linalg.matrix_transpose(t)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> tf.Tensor:
    """Dot product of vectors along ``axis`` (the first argument is conjugated), broadcasting."""
    a, b = promote(x1, x2)
    if a.shape[axis] != b.shape[axis]:
        raise ValueError(f"vecdot: axis {axis} sizes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    return tf.reduce_sum(tf.math.conj(a) * b if a.dtype.is_complex else a * b, axis=axis)


def tensordot(x1: Any, x2: Any, /, *, axes: int | tuple[Sequence[int], Sequence[int]] = 2) -> tf.Tensor:
    """Sum of products over ``axes`` (the last ``axes`` of x1 with the first of x2, or explicit lists)."""
    a, b = promote(x1, x2)
    if not isinstance(axes, int):
        axes = (list(axes[0]), list(axes[1]))
    return tf.tensordot(a, b, axes=axes)
