"""Element-wise functions with Array API promotion, broadcasting and special cases.

Every binary function accepts arrays and Python scalars (weak: ``add(x32, 2.0)`` is float32) and
promotes mixed array dtypes the standard's way (``add(x32, x64)`` is float64, where ``tf.add``
raises). Floating ``maximum``/``minimum``/``clip`` propagate NaN in both positions, also under
XLA (whose native max keeps the first operand's NaN only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from . import _dtypes as d
from ._helpers import SCALARS, as_tensor, cast, ensure_float, in_xla_context, promote

__all__ = [
    "abs",
    "acos",
    "acosh",
    "add",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "bitwise_and",
    "bitwise_invert",
    "bitwise_left_shift",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_xor",
    "ceil",
    "clip",
    "conj",
    "copysign",
    "cos",
    "cosh",
    "divide",
    "equal",
    "exp",
    "expm1",
    "floor",
    "floor_divide",
    "greater",
    "greater_equal",
    "hypot",
    "imag",
    "isfinite",
    "isinf",
    "isnan",
    "less",
    "less_equal",
    "log",
    "log1p",
    "log2",
    "log10",
    "logaddexp",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "multiply",
    "negative",
    "not_equal",
    "positive",
    "pow",
    "real",
    "reciprocal",
    "remainder",
    "round",
    "sign",
    "signbit",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "trunc",
    "where",
]

Fn = Callable[..., tf.Tensor]


def _unary(name: str, op: Fn, doc: str, *, floats: bool = False, int_identity: bool = False) -> Fn:
    def fn(x: Any, /) -> tf.Tensor:
        t = as_tensor(x)
        if int_identity and (d.is_int(t.dtype) or t.dtype == d.bool):
            return t
        return op(ensure_float(t) if floats else t)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def _binary(name: str, op: Fn, doc: str, *, floats: bool = False) -> Fn:
    def fn(x1: Any, x2: Any, /) -> tf.Tensor:
        a, b = promote(x1, x2)
        if floats:
            a, b = ensure_float(a), ensure_float(b)
        return op(a, b)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def _abs(t: tf.Tensor) -> tf.Tensor:
    return t if t.dtype.is_unsigned else tf.abs(t)


def _isnan(t: tf.Tensor) -> tf.Tensor:
    if t.dtype.is_complex:
        return tf.math.is_nan(tf.math.real(t)) | tf.math.is_nan(tf.math.imag(t))
    return tf.math.is_nan(t) if t.dtype.is_floating else tf.zeros_like(t, dtype=tf.bool)


def _isinf(t: tf.Tensor) -> tf.Tensor:
    if t.dtype.is_complex:
        return tf.math.is_inf(tf.math.real(t)) | tf.math.is_inf(tf.math.imag(t))
    return tf.math.is_inf(t) if t.dtype.is_floating else tf.zeros_like(t, dtype=tf.bool)


def _isfinite(t: tf.Tensor) -> tf.Tensor:
    if t.dtype.is_complex:
        return tf.math.is_finite(tf.math.real(t)) & tf.math.is_finite(tf.math.imag(t))
    return tf.math.is_finite(t) if t.dtype.is_floating else tf.ones_like(t, dtype=tf.bool)


def _signbit(t: tf.Tensor) -> tf.Tensor:
    if not t.dtype.is_floating:
        return t < 0
    int_type = {2: tf.int16, 4: tf.int32, 8: tf.int64}[t.dtype.size]
    return tf.bitcast(t, int_type) < 0


#: float dtype: (unsigned integer of its width, largest subnormal's bits, exponent of the smallest
#: subnormal, smallest normal number).
_SUBNORMALS = {
    tf.float32: (tf.uint32, 0x007FFFFF, -149, 2.0**-126),
    tf.float64: (tf.uint64, 0x000FFFFFFFFFFFFF, -1074, 2.0**-1022),
}


def _log(t: tf.Tensor) -> tf.Tensor:
    """``tf.math.log``, exact at positive subnormal inputs too.

    TensorFlow's CPU kernels treat subnormals as zero (float64: ``log(1e-310) = -inf``), and its
    float32 ``log`` returns ``-103.97`` (log 2^-150) for every one of them. A positive subnormal
    is ``m 2^e`` whose bits, read as an unsigned integer, are its integer mantissa ``m`` (between 1
    and the largest subnormal's bits: one unsigned compare of ``bits - 1`` finds them), so
    ``log m + e log 2`` is its logarithm, exact to the dtype's rounding. One ``log`` serves both
    cases (of ``m`` as a float, or of ``x``): 8 element-wise ops, the fewest found for graph mode,
    where each op is a pass over the array. The gradient stays TensorFlow's ``dy / x``.
    """
    info = _SUBNORMALS.get(t.dtype)
    if info is None or _lower_bound(t) >= _NORMAL_MARGIN * info[3]:
        return tf.math.log(t)  # no subnormal possible (the graph bounds the values away from them)
    uint_type, largest, low, _ = info

    @tf.custom_gradient
    def log_with_subnormals(x: tf.Tensor) -> Any:
        bits = tf.bitcast(x, uint_type)
        subnormal = tf.math.less(bits - tf.constant(1, uint_type), tf.constant(largest, uint_type))
        zero, shift = tf.constant(0.0, x.dtype), tf.constant(low * math.log(2.0), x.dtype)
        out = tf.math.log(tf.where(subnormal, tf.cast(bits, x.dtype), x)) + tf.where(subnormal, shift, zero)

        def grad(dy: tf.Tensor) -> tf.Tensor:
            return dy / x

        return out, grad

    return log_with_subnormals(t)


#: how far above the smallest normal a static lower bound must be for ``log`` to skip the subnormal
#: branch: room for the rounding of the few operations :func:`_bounds` looks through
_NORMAL_MARGIN = 2.0**24
_BOUND_DEPTH = 8
_UNKNOWN = (-math.inf, math.inf)


def _lower_bound(t: tf.Tensor) -> float:
    """A lower bound on the non-NaN values of ``t`` known from the graph alone (``-inf``: unknown).

    Only for a symbolic tensor (under ``tf.function``/XLA; eager tensors are not inspected, so eager
    calls pay nothing): it reads the constants, clips and arithmetic that made ``t``
    (:func:`_bounds`). A loss that clips probabilities to ``[eps, 1 - eps]`` before its ``log``
    (Keras's cross-entropies, KL divergence) thus gets ``tf.math.log`` itself, one op instead of the
    subnormal-exact form's eight, with the same values: no input of that ``log`` can be subnormal.
    """
    if tf.executing_eagerly() or not hasattr(t, "op"):
        return -math.inf
    return _bounds(t, _BOUND_DEPTH)[0]


def _bounds(t: tf.Tensor, depth: int) -> tuple[float, float]:
    """Static ``(low, high)`` bounds on the non-NaN values of a graph tensor, ``(-inf, inf)`` when unknown.

    Looks through at most ``depth`` ops of the kinds a clipped loss makes: small constants,
    :func:`clip`'s ``ClipByValue`` and selects, ``Maximum``/``Minimum``, ``Sum`` of non-negative
    terms, ``Identity``/``IdentityN``, ``AddV2``/``Sub``, and ``Mul``/``RealDiv`` of non-negative operands.
    """
    op = t.op
    kind = op.type
    if kind == "Const":
        value = tf.get_static_value(t)
        if value is None or getattr(value, "size", 1) > 64:
            return _UNKNOWN
        flat = [float(v) for v in tf.nest.flatten(value.tolist() if hasattr(value, "tolist") else value)]
        flat = [v for v in flat if not math.isnan(v)]
        return (min(flat), max(flat)) if flat else _UNKNOWN
    if depth == 0:
        return _UNKNOWN
    if kind in ("Identity", "IdentityN"):
        source = op.inputs[t.value_index] if kind == "IdentityN" else op.inputs[0]
        return _bounds(source, depth - 1)
    if kind == "SelectV2":
        return _select_bounds(op, depth)
    if kind == "ClipByValue" and len(op.inputs) == 3:  # clip(x, lo, hi): in [lo, hi], within x's bounds
        (a_lo, a_hi), (lo_lo, lo_hi), (hi_lo, hi_hi) = (_bounds(x, depth - 1) for x in op.inputs)
        return min(max(a_lo, lo_lo), hi_lo), max(min(a_hi, hi_hi), lo_hi)
    if kind == "Sum" and len(op.inputs) == 2:  # a non-empty sum of non-negative terms is at least their low bound
        lo, _ = _bounds(op.inputs[0], depth - 1)
        axes = tf.get_static_value(op.inputs[1])
        shape = op.inputs[0].shape
        if lo < 0 or axes is None or shape.rank is None:
            return _UNKNOWN
        sizes = [shape[int(a)] for a in (axes.reshape(-1) if hasattr(axes, "reshape") else [axes])]
        return (lo, math.inf) if all(n is not None and n > 0 for n in sizes) else _UNKNOWN
    if kind not in ("Maximum", "Minimum", "AddV2", "Sub", "Mul", "RealDiv") or len(op.inputs) != 2:
        return _UNKNOWN
    (a_lo, a_hi), (b_lo, b_hi) = (_bounds(x, depth - 1) for x in op.inputs)
    if kind == "Maximum":
        return max(a_lo, b_lo), max(a_hi, b_hi)
    if kind == "Minimum":
        return min(a_lo, b_lo), min(a_hi, b_hi)
    if kind == "AddV2":
        return _safe(a_lo + b_lo, -math.inf), _safe(a_hi + b_hi, math.inf)
    if kind == "Sub":
        return _safe(a_lo - b_hi, -math.inf), _safe(a_hi - b_lo, math.inf)
    if a_lo < 0 or b_lo < 0 or (kind == "RealDiv" and b_lo <= 0):
        return _UNKNOWN
    if kind == "Mul":
        return a_lo * b_lo, _safe(a_hi * b_hi, math.inf)
    return _safe(a_lo / b_hi, 0.0), _safe(a_hi / b_lo, math.inf)


def _select_bounds(op: Any, depth: int) -> tuple[float, float]:
    """Bounds of :func:`clip`'s selects: ``where(x < c, c, x)`` is at least ``c`` (and at most ``x``'s
    high bound, or ``c``), ``where(x > c, c, x)`` at most ``c``; any other select: the union."""
    cond, a, b = op.inputs
    (a_lo, a_hi), (b_lo, b_hi) = _bounds(a, depth - 1), _bounds(b, depth - 1)
    if cond.op.type in ("Less", "Greater") and len(cond.op.inputs) == 2:
        left, right = cond.op.inputs
        if left.name == b.name and right.name == a.name:  # where(x < c, c, x) or where(x > c, c, x)
            if cond.op.type == "Less":
                return max(a_lo, b_lo), max(a_hi, b_hi)
            return min(a_lo, b_lo), min(a_hi, b_hi)
    return min(a_lo, b_lo), max(a_hi, b_hi)


def _safe(value: float, fallback: float) -> float:
    """``value``, or ``fallback`` where the interval arithmetic met ``inf - inf`` or ``0 * inf``."""
    return fallback if math.isnan(value) else value


def _log_base(base: float) -> Fn:
    return lambda t: _log(t) / tf.constant(math.log(base), t.dtype)


def _sign(t: tf.Tensor) -> tf.Tensor:
    # tf.sign keeps NaN itself (eager, graph and XLA, float16/32/64, also fused: checked on 1e5-element
    # arrays in TensorFlow 2.21), so no IsNan + SelectV2 guard: two passes fewer in graph mode
    return tf.sign(t)


abs = _unary("abs", _abs, "Absolute value |x|.")
acos = _unary("acos", tf.math.acos, "Inverse cosine.", floats=True)
acosh = _unary("acosh", tf.math.acosh, "Inverse hyperbolic cosine.", floats=True)
asin = _unary("asin", tf.math.asin, "Inverse sine.", floats=True)
asinh = _unary("asinh", tf.math.asinh, "Inverse hyperbolic sine.", floats=True)
atan = _unary("atan", tf.math.atan, "Inverse tangent.", floats=True)
atanh = _unary("atanh", tf.math.atanh, "Inverse hyperbolic tangent.", floats=True)
bitwise_invert = _unary("bitwise_invert", lambda t: tf.logical_not(t) if t.dtype == tf.bool
                        else tf.bitwise.invert(t), "Bitwise NOT (logical NOT for bool).")
ceil = _unary("ceil", tf.math.ceil, "Smallest integer >= x (integers returned unchanged).", int_identity=True)
conj = _unary("conj", tf.math.conj, "Complex conjugate.")
cos = _unary("cos", tf.math.cos, "Cosine.", floats=True)
cosh = _unary("cosh", tf.math.cosh, "Hyperbolic cosine.", floats=True)
exp = _unary("exp", tf.math.exp, "e**x.", floats=True)
expm1 = _unary("expm1", tf.math.expm1, "e**x - 1, accurate near 0.", floats=True)
floor = _unary("floor", tf.math.floor, "Largest integer <= x (integers returned unchanged).",
               int_identity=True)
imag = _unary("imag", tf.math.imag, "Imaginary part.")
isfinite = _unary("isfinite", _isfinite, "Whether x is finite (not NaN, not infinite).")
isinf = _unary("isinf", _isinf, "Whether x is +inf or -inf.")
isnan = _unary("isnan", _isnan, "Whether x is NaN.")
log = _unary("log", _log, "Natural logarithm (log(0) = -inf, log(x<0) = nan; exact at subnormals).", floats=True)
log1p = _unary("log1p", tf.math.log1p, "log(1 + x), accurate near 0 (log1p(-1) = -inf).", floats=True)
log2 = _unary("log2", _log_base(2.0), "Base-2 logarithm.", floats=True)
log10 = _unary("log10", _log_base(10.0), "Base-10 logarithm.", floats=True)
logical_not = _unary("logical_not", lambda t: tf.logical_not(cast(t, tf.bool)), "Logical NOT.")
negative = _unary("negative", tf.negative, "-x.")
positive = _unary("positive", tf.identity, "+x (a copy of x).")
real = _unary("real", tf.math.real, "Real part.")
reciprocal = _unary("reciprocal", lambda t: 1 / t, "1 / x.", floats=True)
round = _unary("round", tf.math.round, "Round half to even (integers returned unchanged).",
               int_identity=True)
sign = _unary("sign", _sign, "-1, 0 or 1 by the sign of x (NaN stays NaN).")
signbit = _unary("signbit", _signbit, "Whether the sign bit is set (True for -0.0).")
sin = _unary("sin", tf.math.sin, "Sine.", floats=True)
sinh = _unary("sinh", tf.math.sinh, "Hyperbolic sine.", floats=True)
sqrt = _unary("sqrt", tf.math.sqrt, "Square root (sqrt(x<0) = nan).", floats=True)
square = _unary("square", tf.math.square, "x * x.")
tan = _unary("tan", tf.math.tan, "Tangent.", floats=True)
tanh = _unary("tanh", tf.math.tanh, "Hyperbolic tangent.", floats=True)
trunc = _unary("trunc", lambda t: tf.where(t < 0, tf.math.ceil(t), tf.math.floor(t)),
               "Round toward zero (integers returned unchanged).", int_identity=True)


def _nan_guard(op: Fn) -> Fn:
    """``op`` (``tf.maximum``/``tf.minimum``) propagating NaN from either operand.

    Only under XLA (:func:`in_xla_context`): TensorFlow's kernels propagate a NaN from either
    operand. There both operands are guarded: a lone ``tf.maximum(a, b)`` keeps ``a``'s NaN under
    XLA, but XLA treats max/min as commutative and may swap the operands of one call when it merges
    it with another (``maximum(x, y)`` next to ``maximum(y, x)`` lost the NaN of ``y``).
    """

    def guarded(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        out = op(a, b)
        if not a.dtype.is_floating or not in_xla_context():  # the kernels propagate either NaN
            return out
        return tf.where(tf.math.is_nan(a), a, tf.where(tf.math.is_nan(b), b, out))

    return guarded


def _logaddexp(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    # big + log1p(exp(small - big)): the gradient at a tie splits 1/2, 1/2 as it should, and
    # equal infinities (whose difference is NaN) give the infinity itself (delta 0: inf + log 2).
    # A NaN needs no guard of its own: it reaches delta (as small, or as big - anything), so the
    # result is NaN. Fewer ops matter: losses from logits call this twice forward, twice backward.
    first = a >= b
    big, small = tf.where(first, a, b), tf.where(first, b, a)
    same_inf = tf.math.is_inf(big) & tf.equal(big, small)
    delta = tf.where(same_inf, tf.zeros_like(big), small - big)
    return big + tf.math.log1p(tf.math.exp(delta))


def _hypot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    big, small = tf.maximum(tf.abs(a), tf.abs(b)), tf.minimum(tf.abs(a), tf.abs(b))
    safe = tf.where(big > 0, big, tf.ones_like(big))
    ratio = small / safe
    out = big * tf.sqrt(1 + ratio * ratio)
    out = tf.where(tf.math.is_nan(a) | tf.math.is_nan(b), a + b, out)
    return tf.where(tf.math.is_inf(a) | tf.math.is_inf(b), tf.constant(math.inf, out.dtype), out)


def _copysign(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.where(_signbit(b), -tf.abs(a), tf.abs(a))


_WIDER = {tf.uint8: tf.int16, tf.uint16: tf.int32, tf.uint32: tf.int64, tf.uint64: tf.int64}


def _widen_unsigned(op: Fn) -> Fn:
    """``op`` computed in a wider signed type for unsigned inputs (TensorFlow lacks the kernels)."""

    def widened(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        if a.dtype not in _WIDER:
            return op(a, b)
        wide = _WIDER[a.dtype]
        return tf.cast(op(tf.cast(a, wide), tf.cast(b, wide)), a.dtype)

    return widened


def _logical(op: Fn) -> Fn:
    return lambda a, b: op(cast(a, tf.bool), cast(b, tf.bool))


def _bitwise(bool_op: Fn, int_op: Fn) -> Fn:
    return lambda a, b: bool_op(a, b) if a.dtype == tf.bool else int_op(a, b)


add = _binary("add", tf.math.add, "x1 + x2.")
atan2 = _binary("atan2", tf.math.atan2, "Quadrant-aware arctangent of x1 / x2.", floats=True)
bitwise_and = _binary("bitwise_and", _bitwise(tf.logical_and, tf.bitwise.bitwise_and), "x1 & x2.")
bitwise_left_shift = _binary("bitwise_left_shift", tf.bitwise.left_shift, "x1 << x2.")
bitwise_or = _binary("bitwise_or", _bitwise(tf.logical_or, tf.bitwise.bitwise_or), "x1 | x2.")
bitwise_right_shift = _binary("bitwise_right_shift", tf.bitwise.right_shift, "x1 >> x2.")
bitwise_xor = _binary("bitwise_xor", _bitwise(tf.math.logical_xor, tf.bitwise.bitwise_xor), "x1 ^ x2.")
copysign = _binary("copysign", _copysign, "|x1| with the sign of x2.", floats=True)
divide = _binary("divide", tf.math.truediv, "True division x1 / x2 (integers divide as floats).", floats=True)
equal = _binary("equal", tf.math.equal, "x1 == x2.")
floor_divide = _binary("floor_divide", tf.math.floordiv, "floor(x1 / x2) (Python semantics).")
greater = _binary("greater", tf.math.greater, "x1 > x2.")
greater_equal = _binary("greater_equal", tf.math.greater_equal, "x1 >= x2.")
hypot = _binary("hypot", _hypot, "sqrt(x1**2 + x2**2) without overflow.", floats=True)
less = _binary("less", tf.math.less, "x1 < x2.")
less_equal = _binary("less_equal", tf.math.less_equal, "x1 <= x2.")
logaddexp = _binary("logaddexp", _logaddexp, "log(exp(x1) + exp(x2)), stable; inf-aware.", floats=True)
logical_and = _binary("logical_and", _logical(tf.logical_and), "Logical AND.")
logical_or = _binary("logical_or", _logical(tf.logical_or), "Logical OR.")
logical_xor = _binary("logical_xor", _logical(tf.math.logical_xor), "Logical XOR.")
maximum = _binary("maximum", _nan_guard(tf.math.maximum), "Element-wise maximum; NaN propagates.")
minimum = _binary("minimum", _nan_guard(tf.math.minimum), "Element-wise minimum; NaN propagates.")
multiply = _binary("multiply", tf.math.multiply, "x1 * x2.")
not_equal = _binary("not_equal", tf.math.not_equal, "x1 != x2.")
pow = _binary("pow", _widen_unsigned(tf.math.pow), "x1 ** x2.")
remainder = _binary("remainder", tf.math.floormod, "x1 mod x2 with the sign of x2 (Python semantics).")
subtract = _binary("subtract", tf.math.subtract, "x1 - x2.")


def clip(x: Any, /, min: Any = None, max: Any = None) -> tf.Tensor:
    """``x`` clamped to ``[min, max]``; the result keeps ``x``'s dtype, NaN in ``x`` propagates.

    Python-scalar bounds of a floating ``x``: one ``ClipByValue`` op (one pass in graph mode where
    ``tf.clip_by_value`` makes two, an XLA clamp), which keeps ``x``'s NaN on the CPU kernels and
    under XLA (checked in float32 and float64, fused and unfused) and passes the gradient at the
    edges and at NaN, as the compare-and-select does.
    Array bounds: a compare-and-select per bound, not ``tf.maximum``: XLA may swap the operands of
    a max/min (it treats them as commutative), and its max keeps only the first operand's NaN.
    """
    t = as_tensor(x)
    if t.dtype.is_floating and (min is not None or max is not None) and all(
        b is None or (isinstance(b, (int, float)) and not isinstance(b, bool)) for b in (min, max)
    ):
        lo = tf.constant(-math.inf if min is None else min, t.dtype)
        hi = tf.constant(math.inf if max is None else max, t.dtype)
        return tf.raw_ops.ClipByValue(t=t, clip_value_min=lo, clip_value_max=hi)
    out = t
    if min is not None:
        lo = _bound(min, t.dtype, "min")
        out = tf.where(out < lo, lo, out) if t.dtype.is_floating else tf.maximum(out, lo)
    if max is not None:
        hi = _bound(max, t.dtype, "max")
        out = tf.where(out > hi, hi, out) if t.dtype.is_floating else tf.minimum(out, hi)
    if min is not None or max is not None:
        out = _broadcast_like(out, [b for b in (min, max) if b is not None and not isinstance(b, SCALARS)])
    return out


def _bound(b: Any, dtype: tf.DType, name: str) -> tf.Tensor:
    if isinstance(b, SCALARS):
        return tf.constant(b, dtype=dtype)
    t = as_tensor(b, name)
    return cast(t, dtype)


def _broadcast_like(out: tf.Tensor, others: list[Any]) -> tf.Tensor:
    shape = out.shape
    for o in others:
        shape = tf.broadcast_static_shape(shape, as_tensor(o).shape)
    return out if shape == out.shape else tf.broadcast_to(out, shape)


def where(condition: Any, x1: Any, x2: Any, /) -> tf.Tensor:
    """``x1`` where ``condition`` is True, else ``x2``; all three broadcast; scalars are weak."""
    cond = as_tensor(condition, "condition")
    if cond.dtype != tf.bool:
        raise TypeError(f"where: condition must be a bool array, got dtype {cond.dtype.name}")
    a, b = promote(x1, x2, names=("x1", "x2"))
    a, b = _filled_as_scalar(a, (cond, b)), _filled_as_scalar(b, (cond, a))
    return tf.where(cond, a, b)


def _filled_as_scalar(t: tf.Tensor, others: tuple[tf.Tensor, ...]) -> tf.Tensor:
    """A graph tensor made by ``Fill`` (``zeros_like``, ``ones_like``, ``full_like``) as its 0-d fill
    value, when broadcasting with ``others`` gives the same result shape anyway.

    ``tf.where`` broadcasts a scalar, so the filled array is never materialized (in graph mode each
    op is a pass over memory: ``where(mask, x, zeros_like(x))`` reads two arrays instead of three,
    and the ``Fill`` is pruned). The values are the same. Eager tensors are left alone.
    """
    if tf.executing_eagerly() or not hasattr(t, "op") or t.op.type != "Fill" or not t.shape.is_fully_defined():
        return t
    shape = tf.TensorShape([])
    for other in others:
        shape = tf.broadcast_static_shape(shape, other.shape)
    if not shape.is_fully_defined() or tf.broadcast_static_shape(shape, t.shape) != shape:
        return t
    value = t.op.inputs[1]
    return value if value.dtype == t.dtype else t
