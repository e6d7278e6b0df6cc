"""Creation functions: asarray, astype, zeros/ones/full/empty (and their ``_like``), arange, eye ..."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from . import _dtypes as d
from ._helpers import SCALARS, as_tensor, cast

__all__ = [
    "arange",
    "asarray",
    "astype",
    "empty",
    "empty_like",
    "eye",
    "from_dlpack",
    "full",
    "full_like",
    "linspace",
    "meshgrid",
    "ones",
    "ones_like",
    "tril",
    "triu",
    "zeros",
    "zeros_like",
]

Shape = int | Sequence[int]


def _shape(shape: Shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


def _dtype_or(dtype: Any, default: tf.DType) -> tf.DType:
    return default if dtype is None else d.as_dtype(dtype)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> tf.Tensor:
    """``obj`` as a ``tf.Tensor``: tensors, variables, NumPy arrays, nested sequences, scalars.

    Python scalars and sequences of them default to ``float32`` (floats), ``int64`` (ints) and
    ``bool``. ``copy`` is accepted for compatibility: tensors are immutable, so a copy is never
    observable (``copy=False`` is honoured whenever no conversion is needed).
    """
    if isinstance(obj, tf.Tensor):
        t = obj
    elif isinstance(obj, SCALARS) or _is_python_sequence(obj):
        dt = _dtype_or(dtype, _infer_python_dtype(obj))
        t = tf.convert_to_tensor(_leaves_as(obj, dt)) if _has_tensor(obj) else tf.constant(obj, dtype=dt)
    else:
        t = as_tensor(obj, "obj")
    if dtype is not None:
        target = d.as_dtype(dtype)
        if copy is False and t.dtype != target:
            raise ValueError(
                f"asarray: copy=False but converting {t.dtype.name} to {target.name} needs a copy"
            )
        t = cast(t, target)
    return t


def _is_python_sequence(obj: Any) -> bool:
    return isinstance(obj, (list, tuple))


def _has_tensor(obj: Any) -> bool:
    if isinstance(obj, (list, tuple)):
        return any(_has_tensor(o) for o in obj)
    return isinstance(obj, tf.Tensor)


def _leaves_as(obj: Any, dtype: tf.DType) -> Any:
    """A nested sequence with every leaf a tensor of ``dtype`` (TensorFlow then packs it)."""
    if isinstance(obj, (list, tuple)):
        return [_leaves_as(o, dtype) for o in obj]
    return cast(obj, dtype) if isinstance(obj, tf.Tensor) else tf.constant(obj, dtype=dtype)


def _infer_python_dtype(obj: Any) -> tf.DType:
    kinds = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, tf.Tensor):
            kinds.add(item.dtype)
        else:
            kinds.add(type(item))
    if complex in kinds:
        return d.complex64
    if float in kinds:
        return d.DEFAULT_FLOAT
    if int in kinds:
        return d.DEFAULT_INT
    if kinds == {d.builtins_bool}:
        return d.bool
    tensor_dtypes = [k for k in kinds if isinstance(k, tf.DType)]
    return d.result_type(*tensor_dtypes) if tensor_dtypes else d.DEFAULT_FLOAT


def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> tf.Tensor:
    """``x`` cast to ``dtype`` (``tf.cast``: floats to ints truncate toward zero)."""
    t = as_tensor(x)
    target = d.as_dtype(dtype)
    if t.dtype == target:  # tensors are immutable: a copy could not be told apart
        return t
    if t.dtype.is_complex and not target.is_complex:
        raise TypeError(f"astype: casting complex {t.dtype.name} to {target.name} is not defined")
    return tf.cast(t, target)


def zeros(shape: Shape, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """An array of zeros (default dtype float32)."""
    return tf.zeros(_shape(shape), dtype=_dtype_or(dtype, d.DEFAULT_FLOAT))


def ones(shape: Shape, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """An array of ones (default dtype float32)."""
    return tf.ones(_shape(shape), dtype=_dtype_or(dtype, d.DEFAULT_FLOAT))


def empty(shape: Shape, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """An array of the given shape; its contents are zeros (TensorFlow has no uninitialized arrays)."""
    return zeros(shape, dtype=dtype)


def full(shape: Shape, fill_value: bool | int | float | complex, *, dtype: Any = None,
         device: Any = None) -> tf.Tensor:
    """An array filled with ``fill_value`` (dtype inferred from the Python scalar if not given)."""
    dt = _dtype_or(dtype, d.scalar_dtype(fill_value, against=None))
    return tf.fill(_shape(shape), tf.constant(fill_value, dtype=dt))


def _like(x: Any, dtype: Any) -> tuple[tf.Tensor, tf.DType]:
    t = as_tensor(x)
    return t, _dtype_or(dtype, t.dtype)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Zeros with the shape (and by default the dtype) of ``x``."""
    t, dt = _like(x, dtype)
    return tf.zeros_like(t, dtype=dt)


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Ones with the shape (and by default the dtype) of ``x``."""
    t, dt = _like(x, dtype)
    return tf.ones_like(t, dtype=dt)


def empty_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Like :func:`zeros_like` (TensorFlow has no uninitialized arrays)."""
    return zeros_like(x, dtype=dtype)


def full_like(x: Any, /, fill_value: bool | int | float | complex, *, dtype: Any = None,
              device: Any = None) -> tf.Tensor:
    """``fill_value`` with the shape (and by default the dtype) of ``x``."""
    t, dt = _like(x, dtype)
    return tf.fill(tf.shape(t), tf.constant(fill_value, dtype=dt))


def arange(start: int | float, /, stop: int | float | None = None, step: int | float = 1, *,
           dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Evenly spaced values in ``[start, stop)``; length ``ceil((stop - start) / step)``."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be 0")
    floats = any(isinstance(v, float) for v in (start, stop, step))
    dt = _dtype_or(dtype, d.DEFAULT_FLOAT if floats else d.DEFAULT_INT)
    n = max(0, math.ceil((stop - start) / step))
    if d.is_int(dt):
        return tf.range(int(start), int(start) + n * int(step), int(step), dtype=dt)[:n]
    idx = tf.range(n, dtype=d.float64)
    return tf.cast(start + idx * step, dt)


def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None,
        device: Any = None) -> tf.Tensor:
    """Ones on the ``k``-th diagonal, zeros elsewhere."""
    n_cols = n_rows if n_cols is None else n_cols
    rows = tf.range(n_rows)[:, None]
    cols = tf.range(n_cols)[None, :]
    return tf.cast(tf.equal(cols - rows, k), _dtype_or(dtype, d.DEFAULT_FLOAT))


def linspace(start: int | float, stop: int | float, /, num: int, *, dtype: Any = None,
             device: Any = None, endpoint: bool = True) -> tf.Tensor:
    """``num`` evenly spaced samples from ``start`` to ``stop`` (inclusive when ``endpoint``)."""
    dt = _dtype_or(dtype, d.DEFAULT_FLOAT)
    div = (num - 1) if endpoint else num
    step = (stop - start) / div if div > 0 else 0.0
    vals = start + tf.range(num, dtype=d.float64) * step
    if endpoint and num > 1:
        vals = tf.concat([vals[:-1], tf.constant([float(stop)], d.float64)], axis=0)
    return tf.cast(vals, dt)


def meshgrid(*arrays: Any, indexing: str = "xy") -> list[tf.Tensor]:
    """Coordinate matrices from 1-D coordinate vectors (``indexing`` 'xy' or 'ij')."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    return list(tf.meshgrid(*(as_tensor(a) for a in arrays), indexing=indexing))


def _tri_mask(x: tf.Tensor, k: int, lower: bool) -> tf.Tensor:
    n, m = x.shape[-2], x.shape[-1]
    rows = tf.range(n)[:, None]
    cols = tf.range(m)[None, :]
    return (cols - rows <= k) if lower else (cols - rows >= k)


def tril(x: Any, /, *, k: int = 0) -> tf.Tensor:
    """The lower triangle (on and below the ``k``-th diagonal) of the last two axes."""
    t = as_tensor(x)
    return tf.where(_tri_mask(t, k, True), t, tf.zeros_like(t))


def triu(x: Any, /, *, k: int = 0) -> tf.Tensor:
    """The upper triangle (on and above the ``k``-th diagonal) of the last two axes."""
    t = as_tensor(x)
    return tf.where(_tri_mask(t, k, False), t, tf.zeros_like(t))


def from_dlpack(x: Any, /, *, device: Any = None, copy: bool | None = None) -> tf.Tensor:
    """A tensor from an object supporting DLPack (``__dlpack__``)."""
    return tf.experimental.dlpack.from_dlpack(x.__dlpack__())
