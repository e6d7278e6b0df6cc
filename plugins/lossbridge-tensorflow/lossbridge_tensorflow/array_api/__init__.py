"""The Array API standard over ``tf.Tensor``: ``from lossbridge_tensorflow import array_api as xp``.

array-api-compat has no TensorFlow namespace, so this module supplies one: the standard's names,
signatures, type promotion and broadcasting, implemented with TensorFlow ops only, so every function
runs eagerly, inside ``tf.function`` and under XLA (``jit_compile=True``), and is differentiable by
``tf.GradientTape``. Inputs may be ``tf.Tensor``, ``tf.Variable``, Keras variables, NumPy arrays
or (where the standard allows) Python scalars; results are ``tf.Tensor``. Dtypes are TensorFlow's
own ``tf.DType`` objects (``xp.float32 is tf.float32``).

Defaults: floating ``float32`` (TensorFlow's and Keras's), integer and index ``int64``.
Version: the 2024.12 revision (``__array_api_version__``), minus what TensorFlow cannot do in a
compiled graph (see below).

Python operators on ``tf.Tensor``
---------------------------------
Specs use operators (``x * 2.0``, ``1.0 - x``, ``x ** 2``, ``x == 0``, ``-x``, ``x @ w``). On
``tf.Tensor`` these are TensorFlow's own methods, which this module does NOT patch (patching
``tf.Tensor`` would change every TensorFlow program in the process). What they do:

* tensor with Python scalar: the scalar is converted to the tensor's dtype, which is exactly the
  standard's weak-scalar rule for the cases it defines: ``float32 * 2.0`` stays float32,
  ``float64 ** 2`` stays float64, ``int64 + 1`` stays int64, ``x == 0`` is an element-wise bool
  tensor (TF2 equality). Verified by the tests, eagerly, in ``tf.function`` and under XLA.
* an integer tensor with a Python ``float`` (``i * 0.5``): TensorFlow raises TypeError. The
  standard leaves this mixed-kind case unspecified; use ``xp.multiply(i, 0.5)`` (float32 result)
  or cast with ``xp.astype`` first.
* two tensors of different dtypes (``x32 * x64``, ``int * float``): TensorFlow raises
  InvalidArgumentError instead of promoting. Use the namespace functions (``xp.multiply``,
  ``xp.add`` ... promote as the standard says) or ``xp.astype``. The specs follow that rule.
* ``int / int`` gives float64 in TensorFlow (the standard leaves it unspecified).
* NumPy scalars on the LEFT (``np.float64(0.9) * x``) let NumPy convert the tensor; keep
  hyperparameters Python floats or tensors of the parameter's dtype.

Array attributes are TensorFlow's: ``x.dtype``, ``x.ndim``, ``x.shape`` (a ``TensorShape``:
indexable, comparable with tuples; ``None`` for unknown sizes inside ``tf.function``), ``x[...]``
with basic slicing, ellipsis and ``None``. Not available on ``tf.Tensor``: ``x.T``/``x.mT`` (use
:func:`matrix_transpose`), ``x.size`` (use :func:`size`), integer-array and boolean-mask
indexing (use :func:`take`, :func:`take_along_axis`, :func:`where`), in-place ``__setitem__``.

Semantics worth knowing: ``maximum``/``minimum``/``clip``/``max``/``min`` propagate NaN in every
mode (XLA's native ones drop it); ``floor_divide`` is ``floor(x1 / x2)`` at infinities as the
standard says (NumPy differs); ``argsort`` is stable in both directions; the order of NaN in
``sort`` is TensorFlow's (unspecified); ``nonzero`` has a data-dependent shape, so it is not
XLA-compilable. The ``linalg`` extension is a submodule (``xp.linalg.vector_norm`` ...).
Functions of the standard this namespace lacks raise ``AttributeError`` naming the function.
"""

from __future__ import annotations

import math
from typing import Any

from lossbridge_tensorflow.array_api import linalg

from ._creation import (
    arange,
    asarray,
    astype,
    empty,
    empty_like,
    eye,
    from_dlpack,
    full,
    full_like,
    linspace,
    meshgrid,
    ones,
    ones_like,
    tril,
    triu,
    zeros,
    zeros_like,
)
from ._dtypes import (
    bfloat16,
    bool,
    can_cast,
    complex64,
    complex128,
    finfo,
    float16,
    float32,
    float64,
    iinfo,
    int8,
    int16,
    int32,
    int64,
    isdtype,
    result_type,
    uint8,
    uint16,
    uint32,
    uint64,
)
from ._elementwise import (
    abs,
    acos,
    acosh,
    add,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    bitwise_and,
    bitwise_invert,
    bitwise_left_shift,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    ceil,
    clip,
    conj,
    copysign,
    cos,
    cosh,
    divide,
    equal,
    exp,
    expm1,
    floor,
    floor_divide,
    greater,
    greater_equal,
    hypot,
    imag,
    isfinite,
    isinf,
    isnan,
    less,
    less_equal,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    maximum,
    minimum,
    multiply,
    negative,
    not_equal,
    positive,
    pow,
    real,
    reciprocal,
    remainder,
    round,
    sign,
    signbit,
    sin,
    sinh,
    sqrt,
    square,
    subtract,
    tan,
    tanh,
    trunc,
    where,
)
from ._helpers import size
from ._info import (
    Info,
    __array_namespace_info__,
)
from ._manipulation import (
    broadcast_arrays,
    broadcast_shapes,
    broadcast_to,
    concat,
    expand_dims,
    flip,
    moveaxis,
    permute_dims,
    repeat,
    reshape,
    roll,
    squeeze,
    stack,
    take,
    take_along_axis,
    tile,
    unstack,
)
from ._search_sort_linalg import (
    argmax,
    argmin,
    argsort,
    count_nonzero,
    matmul,
    matrix_transpose,
    nonzero,
    searchsorted,
    sort,
    tensordot,
    vecdot,
)
from ._statistical import (
    all,
    any,
    cumulative_prod,
    cumulative_sum,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)

__array_api_version__ = "2024.12"

#: The standard's constants.
e, inf, nan, pi, newaxis = math.e, math.inf, math.nan, math.pi, None

__all__ = [
    "Info",
    "__array_api_version__",
    "__array_namespace_info__",
    "abs",
    "acos",
    "acosh",
    "add",
    "all",
    "any",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "asarray",
    "asin",
    "asinh",
    "astype",
    "atan",
    "atan2",
    "atanh",
    "bfloat16",
    "bitwise_and",
    "bitwise_invert",
    "bitwise_left_shift",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_xor",
    "bool",
    "broadcast_arrays",
    "broadcast_shapes",
    "broadcast_to",
    "can_cast",
    "ceil",
    "clip",
    "complex64",
    "complex128",
    "concat",
    "conj",
    "copysign",
    "cos",
    "cosh",
    "count_nonzero",
    "cumulative_prod",
    "cumulative_sum",
    "divide",
    "e",
    "empty",
    "empty_like",
    "equal",
    "exp",
    "expand_dims",
    "expm1",
    "eye",
    "finfo",
    "flip",
    "float16",
    "float32",
    "float64",
    "floor",
    "floor_divide",
    "from_dlpack",
    "full",
    "full_like",
    "greater",
    "greater_equal",
    "hypot",
    "iinfo",
    "imag",
    "inf",
    "int8",
    "int16",
    "int32",
    "int64",
    "isdtype",
    "isfinite",
    "isinf",
    "isnan",
    "less",
    "less_equal",
    "linalg",
    "linspace",
    "log",
    "log1p",
    "log2",
    "log10",
    "logaddexp",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "matmul",
    "matrix_transpose",
    "max",
    "maximum",
    "mean",
    "meshgrid",
    "min",
    "minimum",
    "moveaxis",
    "multiply",
    "nan",
    "negative",
    "newaxis",
    "nonzero",
    "not_equal",
    "ones",
    "ones_like",
    "permute_dims",
    "pi",
    "positive",
    "pow",
    "prod",
    "real",
    "reciprocal",
    "remainder",
    "repeat",
    "reshape",
    "result_type",
    "roll",
    "round",
    "searchsorted",
    "sign",
    "signbit",
    "sin",
    "sinh",
    "size",
    "sort",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "subtract",
    "sum",
    "take",
    "take_along_axis",
    "tan",
    "tanh",
    "tensordot",
    "tile",
    "tril",
    "triu",
    "trunc",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "unstack",
    "var",
    "vecdot",
    "where",
    "zeros",
    "zeros_like",
]

#: Functions of the standard deliberately left out (beyond what ``__all__`` has).
_STANDARD_MISSING = frozenset(
    {
        "diff", "fft", "isin", "nextafter", "unique_all", "unique_counts", "unique_inverse",
        "unique_values", "eig", "eigh", "qr", "svd", "pinv", "matrix_rank",
    }
)


def __getattr__(name: str) -> Any:
    """Name the missing function instead of a bare AttributeError."""
    if name.startswith("__"):
        raise AttributeError(name)
    kind = "an Array API name" if name in _STANDARD_MISSING else "not an Array API name this namespace knows"
    raise AttributeError(
        f"lossbridge_tensorflow.array_api has no function {name!r} (not implemented; {kind}). "
        "Add it in lossbridge_tensorflow/array_api or write the spec with functions the namespace has."
    )
