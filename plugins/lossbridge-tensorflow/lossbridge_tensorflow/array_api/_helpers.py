"""Argument handling shared by every function: array conversion, promotion, axis normalization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from . import _dtypes as d

__all__ = [
    "SCALARS", "as_tensor", "axis_tuple", "cast", "ensure_float", "in_xla_context", "promote", "require", "size",
]

SCALARS = (int, float, complex)

try:  # TensorFlow's own test (cond_v2, array_grad): is the graph being traced for XLA (jit_compile=True)?
    from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext as _graph_in_xla
except ImportError:  # pragma: no cover - a TensorFlow without it: assume XLA (keep every NaN guard)
    _graph_in_xla = None


def in_xla_context() -> bool:
    """Whether the ops being built will be compiled by XLA (traced under ``tf.function(jit_compile=True)``
    or inside one); False when executing eagerly or tracing a plain ``tf.function``.

    TensorFlow's CPU kernels propagate NaN through ``maximum``/``minimum`` (either operand) and
    ``reduce_max``/``reduce_min`` (checked in float16/32/64, every axis); XLA's max keeps only its first
    operand's NaN and its max reduction drops NaN. The namespace adds its NaN guards only here.
    Unknown (no TensorFlow helper): True, the guarded form.
    """
    if tf.executing_eagerly():
        return False
    if _graph_in_xla is None:
        return True
    return bool(_graph_in_xla(tf.compat.v1.get_default_graph()))


def as_tensor(x: Any, name: str = "x") -> tf.Tensor:
    """``x`` as a ``tf.Tensor`` (tensors pass through; Variables, Keras variables, NumPy convert)."""
    if isinstance(x, tf.Tensor):
        return x
    if isinstance(x, SCALARS):
        return tf.constant(x, dtype=d.scalar_dtype(x, against=None))
    try:
        return tf.convert_to_tensor(x)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name}: expected an array (tf.Tensor or convertible), got {type(x).__name__}"
        ) from err


def cast(x: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """``x`` in ``dtype`` (no op when it already is)."""
    return x if x.dtype == dtype else tf.cast(x, dtype)


def promote(*args: Any, names: Sequence[str] | None = None) -> list[tf.Tensor]:
    """Tensors of one common dtype from arrays and weak Python scalars (Array API promotion)."""
    names = names or [f"x{i + 1}" for i in range(len(args))]
    arrays = {i: as_tensor(a, n) for i, (a, n) in enumerate(zip(args, names, strict=True))
              if not isinstance(a, SCALARS)}
    if not arrays:
        dtype = d.result_type(*args)
    else:
        dtype = d.result_type(*(t.dtype for t in arrays.values()))
        for a in args:
            if isinstance(a, SCALARS):
                dtype = d.promote_pair(dtype, d.scalar_dtype(a, against=dtype))
    return [cast(arrays[i], dtype) if i in arrays else tf.constant(a, dtype=dtype)
            for i, a in enumerate(args)]


def ensure_float(x: tf.Tensor) -> tf.Tensor:
    """``x`` cast to the default floating dtype when it is an integer or bool array."""
    return cast(x, d.float_for(x.dtype))


def axis_tuple(axis: int | Sequence[int] | None, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes of an ``ndim``-dimensional array."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{name}: {a} is out of range for an array of {ndim} dimension(s)")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axes in {axis!r}")
    return tuple(sorted(out))


def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition``."""
    if not condition:
        raise ValueError(message)


def size(x: Any, /) -> int | None:
    """Number of elements of ``x`` (None when a dimension is unknown), as ``x.size`` in the standard."""
    n = 1
    for s in as_tensor(x).shape:
        if s is None:
            return None
        n *= s
    return n
