"""The Array API ``linalg`` extension over ``tf.linalg`` (``xp.linalg.vector_norm`` ...).

Covered: norms, diagonal/trace, outer/cross, det/slogdet, inv, solve, cholesky, eigvalsh, svdvals,
matrix_power, and the main-namespace products re-exported as the extension requires. Not covered
(AttributeError naming them): eig, eigh, qr, svd, pinv, matrix_rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import tensorflow as tf

from ._helpers import as_tensor, axis_tuple, promote
from ._manipulation import broadcast_arrays, moveaxis
from ._search_sort_linalg import matmul, matrix_transpose, tensordot, vecdot

__all__ = [
    "cholesky",
    "cross",
    "det",
    "diagonal",
    "eigvalsh",
    "inv",
    "matmul",
    "matrix_norm",
    "matrix_power",
    "matrix_transpose",
    "outer",
    "slogdet",
    "solve",
    "svdvals",
    "tensordot",
    "trace",
    "vecdot",
    "vector_norm",
]


def _float(x: Any, fn: str) -> tf.Tensor:
    t = as_tensor(x)
    if not (t.dtype.is_floating or t.dtype.is_complex):
        raise TypeError(f"linalg.{fn}: expected a floating-point array, got dtype {t.dtype.name}")
    return t


def vector_norm(
    x: Any, /, *, axis: int | Sequence[int] | None = None, keepdims: bool = False, ord: float = 2
) -> tf.Tensor:
    """The ``ord``-norm over ``axis`` (all axes by default): (sum |x|^ord)^(1/ord), inf/-inf/0 too."""
    t = tf.abs(_float(x, "vector_norm"))
    axes = list(axis_tuple(axis, t.shape.rank))
    if ord == math.inf:
        return tf.reduce_max(t, axis=axes, keepdims=keepdims)
    if ord == -math.inf:
        return tf.reduce_min(t, axis=axes, keepdims=keepdims)
    if ord == 0:
        return tf.reduce_sum(tf.cast(t != 0, t.dtype), axis=axes, keepdims=keepdims)
    if ord == 2:
        return tf.sqrt(tf.reduce_sum(t * t, axis=axes, keepdims=keepdims))
    if ord == 1:
        return tf.reduce_sum(t, axis=axes, keepdims=keepdims)
    return tf.reduce_sum(t**ord, axis=axes, keepdims=keepdims) ** (1.0 / ord)


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: float | str = "fro") -> tf.Tensor:
    """Norm of the matrices in the last two axes: 'fro', 'nuc', 1, -1, 2, -2, inf, -inf."""
    t = _float(x, "matrix_norm")
    if ord == "fro":
        out = tf.sqrt(tf.reduce_sum(tf.abs(t) ** 2, axis=[-2, -1]))
    elif ord in ("nuc", 2, -2):
        s = svdvals(t)
        reduce = {"nuc": tf.reduce_sum, 2: tf.reduce_max, -2: tf.reduce_min}[ord]
        out = reduce(s, -1)
    elif ord in (1, -1, math.inf, -math.inf):
        sums = tf.reduce_sum(tf.abs(t), axis=-2 if ord in (1, -1) else -1)
        out = tf.reduce_max(sums, -1) if ord in (1, math.inf) else tf.reduce_min(sums, -1)
    else:
        raise ValueError(f"linalg.matrix_norm: ord must be 'fro', 'nuc', +-1, +-2 or +-inf, got {ord!r}")
    return out[..., None, None] if keepdims else out


def diagonal(x: Any, /, *, offset: int = 0) -> tf.Tensor:
    """The ``offset``-th diagonal of the matrices in the last two axes."""
    return tf.linalg.diag_part(as_tensor(x), k=offset)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> tf.Tensor:
    """Sum of the ``offset``-th diagonal."""
    t = as_tensor(x)
    out = tf.reduce_sum(tf.linalg.diag_part(t, k=offset), axis=-1)
    return out if dtype is None else tf.cast(out, dtype)


def outer(x1: Any, x2: Any, /) -> tf.Tensor:
    """Outer product of two vectors."""
    a, b = promote(x1, x2)
    return a[:, None] * b[None, :]


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> tf.Tensor:
    """Cross product of 3-vectors along ``axis``."""
    a, b = broadcast_arrays(*promote(x1, x2))
    out = tf.linalg.cross(moveaxis(a, axis, -1), moveaxis(b, axis, -1))
    return moveaxis(out, -1, axis)


def det(x: Any, /) -> tf.Tensor:
    """Determinant of each matrix."""
    return tf.linalg.det(_float(x, "det"))


class SlogdetResult(NamedTuple):
    """Sign and log of the absolute determinant."""

    sign: tf.Tensor
    logabsdet: tf.Tensor


def slogdet(x: Any, /) -> SlogdetResult:
    """``(sign, log|det|)`` of each matrix."""
    sign, logabsdet = tf.linalg.slogdet(_float(x, "slogdet"))
    return SlogdetResult(sign, logabsdet)


def inv(x: Any, /) -> tf.Tensor:
    """Inverse of each matrix."""
    return tf.linalg.inv(_float(x, "inv"))


def solve(x1: Any, x2: Any, /) -> tf.Tensor:
    """Solution of ``x1 @ out = x2`` (a 1-D ``x2`` is a vector)."""
    a, b = promote(x1, x2)
    if b.shape.rank == 1:
        return tf.linalg.solve(a, b[:, None])[..., 0]
    return tf.linalg.solve(a, b)


def cholesky(x: Any, /, *, upper: bool = False) -> tf.Tensor:
    """Cholesky factor of each symmetric positive-definite matrix (lower, or upper)."""
    low = tf.linalg.cholesky(_float(x, "cholesky"))
    return tf.linalg.adjoint(low) if upper else low


def eigvalsh(x: Any, /) -> tf.Tensor:
    """Eigenvalues of each symmetric matrix, ascending."""
    return tf.linalg.eigvalsh(_float(x, "eigvalsh"))


def svdvals(x: Any, /) -> tf.Tensor:
    """Singular values of each matrix, descending."""
    return tf.linalg.svd(_float(x, "svdvals"), compute_uv=False)


def matrix_power(x: Any, n: int, /) -> tf.Tensor:
    """``x`` multiplied by itself ``n`` times (``n < 0`` uses the inverse, ``n == 0`` the identity)."""
    t = as_tensor(x)
    if n < 0:
        t, n = tf.linalg.inv(t), -n
    out = tf.eye(t.shape[-1], batch_shape=t.shape[:-2], dtype=t.dtype)
    base = t
    while n:
        if n & 1:
            out = tf.linalg.matmul(out, base)
        base, n = tf.linalg.matmul(base, base), n >> 1
    return out


def __getattr__(name: str) -> Any:
    """Name the missing function instead of a bare AttributeError."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"lossbridge_tensorflow.array_api.linalg has no function {name!r} (not implemented)")

