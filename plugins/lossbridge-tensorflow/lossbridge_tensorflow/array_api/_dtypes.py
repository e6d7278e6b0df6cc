"""Data types of the namespace: TensorFlow's own ``tf.DType`` objects, with Array API promotion.

The dtype objects ARE ``tf.float32``, ``tf.int64`` ... so ``x.dtype == xp.float32`` holds for any
``tf.Tensor``. Promotion follows the Array API type-promotion lattice; two extensions the
standard leaves open are decided here and documented:

* mixed integer/floating arrays promote to the floating dtype (as in PyTorch and JAX);
* ``bfloat16`` (extension) combines with ``float16`` to ``float32``, and with wider floats to them.

Python scalars are *weak*: they take the dtype of the array they meet (``float32 * 2.0`` stays
``float32``); a Python ``float`` meeting an integer array gives the default floating dtype.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = [
    "DEFAULT_FLOAT",
    "DEFAULT_INT",
    "as_dtype",
    "bfloat16",
    "bool",
    "can_cast",
    "complex64",
    "complex128",
    "finfo",
    "finfo_object",
    "float16",
    "float32",
    "float64",
    "iinfo",
    "iinfo_object",
    "int8",
    "int16",
    "int32",
    "int64",
    "isdtype",
    "promote_pair",
    "result_type",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
]

bool = tf.bool
int8, int16, int32, int64 = tf.int8, tf.int16, tf.int32, tf.int64
uint8, uint16, uint32, uint64 = tf.uint8, tf.uint16, tf.uint32, tf.uint64
float16, bfloat16, float32, float64 = tf.float16, tf.bfloat16, tf.float32, tf.float64
complex64, complex128 = tf.complex64, tf.complex128

#: The default floating dtype (TensorFlow's and Keras's: float32) and integer/index dtype (int64).
DEFAULT_FLOAT = tf.float32
DEFAULT_INT = tf.int64

builtins_bool = builtins.bool

_SIGNED = (int8, int16, int32, int64)
_UNSIGNED = (uint8, uint16, uint32, uint64)
_REAL_FLOAT = (float16, bfloat16, float32, float64)
_COMPLEX = (complex64, complex128)
_ALL = (bool, *_SIGNED, *_UNSIGNED, *_REAL_FLOAT, *_COMPLEX)

_KINDS: dict[str, tuple[tf.DType, ...]] = {
    "bool": (bool,),
    "signed integer": _SIGNED,
    "unsigned integer": _UNSIGNED,
    "integral": _SIGNED + _UNSIGNED,
    "real floating": _REAL_FLOAT,
    "complex floating": _COMPLEX,
    "numeric": _SIGNED + _UNSIGNED + _REAL_FLOAT + _COMPLEX,
}


def _bits(dt: tf.DType) -> int:
    return dt.size * 8


def as_dtype(dtype: Any) -> tf.DType:
    """``dtype`` as a ``tf.DType`` (accepts ``tf.DType``, NumPy dtypes and their names)."""
    try:
        dt = tf.dtypes.as_dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype: expected an Array API dtype such as float32, got {dtype!r}") from err
    if dt not in _ALL:
        raise TypeError(f"dtype: {dt.name} is not an Array API dtype of this namespace")
    return dt


def isdtype(dtype: Any, kind: Any) -> builtins.bool:
    """Whether ``dtype`` is of ``kind`` (a dtype, a kind name, or a tuple of either)."""
    dt = as_dtype(dtype)
    if isinstance(kind, tuple):
        return any(isdtype(dt, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ValueError(f"isdtype: kind must be one of {sorted(_KINDS)}, got {kind!r}")
        return dt in _KINDS[kind]
    return dt == as_dtype(kind)


def _promote_ints(a: tf.DType, b: tf.DType) -> tf.DType:
    if (a in _SIGNED) == (b in _SIGNED):
        return a if _bits(a) >= _bits(b) else b
    s, u = (a, b) if a in _SIGNED else (b, a)
    if _bits(s) > _bits(u):
        return s
    if _bits(u) == 64:
        raise TypeError(f"result_type: {a.name} and {b.name} have no common integer dtype")
    return {8: int16, 16: int32, 32: int64}[_bits(u)]


def _promote_floats(a: tf.DType, b: tf.DType) -> tf.DType:
    if a == b:
        return a
    if {a, b} == {float16, bfloat16}:
        return float32
    return a if a.size > b.size else b


def _promote_complex(a: tf.DType, b: tf.DType) -> tf.DType:
    widest = max(_real_bits(a), _real_bits(b))
    return complex128 if widest > 32 else complex64


def _real_bits(dt: tf.DType) -> int:
    return _bits(dt) // 2 if dt in _COMPLEX else max(_bits(dt), 32)


def promote_pair(a: tf.DType, b: tf.DType) -> tf.DType:
    """The Array API promotion of two dtypes (with this module's documented extensions)."""
    if a == b:
        return a
    if a == bool or b == bool:
        raise TypeError(f"result_type: cannot promote {a.name} with {b.name} (bool mixes only with bool)")
    if a in _COMPLEX or b in _COMPLEX:
        return _promote_complex(a, b)
    a_float, b_float = a in _REAL_FLOAT, b in _REAL_FLOAT
    if a_float and b_float:
        return _promote_floats(a, b)
    if a_float or b_float:
        return a if a_float else b
    return _promote_ints(a, b)


def scalar_dtype(value: Any, *, against: tf.DType | None) -> tf.DType:
    """The dtype a Python scalar takes next to an array of dtype ``against`` (weak scalar rule)."""
    if isinstance(value, builtins_bool):
        if against is None or against == bool:
            return bool
        return against
    if isinstance(value, int):
        return DEFAULT_INT if against is None or against == bool else against
    if isinstance(value, float):
        if against is not None and (against in _REAL_FLOAT or against in _COMPLEX):
            return against
        return DEFAULT_FLOAT
    if isinstance(value, complex):
        if against in _COMPLEX:
            return against
        if against in (float64,):
            return complex128
        return complex64
    raise TypeError(f"expected an array or a Python scalar, got {type(value).__name__}")


def result_type(*arrays_and_dtypes: Any) -> tf.DType:
    """The dtype of the result of an operation on these arrays, dtypes and Python scalars."""
    dtypes = [d for d in (_dtype_of(a) for a in arrays_and_dtypes) if d is not None]
    scalars = [a for a in arrays_and_dtypes if isinstance(a, (int, float, complex))]
    if not dtypes and not scalars:
        raise ValueError("result_type: at least one array or dtype is required")
    out: tf.DType | None = None
    for dt in dtypes:
        out = dt if out is None else promote_pair(out, dt)
    for s in scalars:
        out = scalar_dtype(s, against=out) if out is None else promote_pair(out, scalar_dtype(s, against=out))
    assert out is not None
    return out


def _dtype_of(obj: Any) -> tf.DType | None:
    if isinstance(obj, (int, float, complex)):
        return None
    if isinstance(obj, tf.DType):
        return as_dtype(obj)
    dt = getattr(obj, "dtype", None)
    if dt is None:
        raise TypeError(f"result_type: expected arrays, dtypes or Python scalars, got {type(obj).__name__}")
    return as_dtype(dt)


def can_cast(from_: Any, to: Any, /) -> builtins.bool:
    """Whether ``from_`` promotes to ``to`` without changing kind or losing range (Array API rule)."""
    src = _dtype_of(from_)
    dst = as_dtype(to)
    assert src is not None
    if is_int(src) != is_int(dst) or ((src in _COMPLEX) and dst not in _COMPLEX):
        return src == dst  # across kinds only the standard's identity is castable
    try:
        return promote_pair(src, dst) == dst
    except TypeError:
        return False


@dataclass(frozen=True)
class finfo_object:
    """Machine limits of a floating dtype."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: tf.DType


@dataclass(frozen=True)
class iinfo_object:
    """Machine limits of an integer dtype."""

    bits: int
    max: int
    min: int
    dtype: tf.DType


def finfo(type: Any, /) -> finfo_object:
    """Machine limits of a floating dtype (or of an array's dtype)."""
    dt = _dtype_of(type)
    if dt not in _REAL_FLOAT + _COMPLEX:
        raise TypeError(f"finfo: expected a floating dtype, got {dt}")
    if dt in _COMPLEX:
        dt_real = float32 if dt == complex64 else float64
        info, dt = _np_finfo(dt_real), dt
    else:
        info = _np_finfo(dt)
    return finfo_object(int(info.bits), float(info.eps), float(info.max), float(info.min),
                        float(info.smallest_normal), dt)


def _np_finfo(dt: tf.DType) -> Any:
    if dt == bfloat16:
        import ml_dtypes

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(dt.as_numpy_dtype)


def iinfo(type: Any, /) -> iinfo_object:
    """Machine limits of an integer dtype (or of an array's dtype)."""
    dt = _dtype_of(type)
    if dt not in _SIGNED + _UNSIGNED:
        raise TypeError(f"iinfo: expected an integer dtype, got {dt}")
    info = np.iinfo(dt.as_numpy_dtype)
    return iinfo_object(int(info.bits), int(info.max), int(info.min), dt)


def float_for(dt: tf.DType) -> tf.DType:
    """``dt`` if floating, else the default floating dtype (for functions defined on floats)."""
    return dt if dt in _REAL_FLOAT or dt in _COMPLEX else DEFAULT_FLOAT


def is_float(dt: tf.DType) -> builtins.bool:
    """Whether ``dt`` is a real floating dtype."""
    return dt in _REAL_FLOAT


def is_int(dt: tf.DType) -> builtins.bool:
    """Whether ``dt`` is a (signed or unsigned) integer dtype."""
    return dt in _SIGNED or dt in _UNSIGNED

