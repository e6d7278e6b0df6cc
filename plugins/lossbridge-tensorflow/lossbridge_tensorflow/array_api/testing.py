"""Helpers for testing the namespace against array-api-strict (used by the plugin's tests).

Kept in the package (private) so that several test modules share them under pytest's
``--import-mode=importlib``; importing this module imports TensorFlow, NumPy and array-api-strict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["assert_same", "both", "name_of", "run", "tol"]


def run(mode: str, fn: Callable[..., Any], *arrays: Any) -> Any:
    """``fn(*arrays)`` eagerly, traced by ``tf.function``, or compiled by XLA."""
    if mode == "eager":
        return fn(*arrays)
    return tf.function(fn, jit_compile=mode == "xla", autograph=False)(*arrays)


def name_of(dtype: Any) -> str:
    """A dtype's name for either library (``float32``)."""
    return dtype.name if isinstance(dtype, tf.DType) else str(dtype).split(".")[-1]


def tol(dtype: str, mode: str = "eager") -> float:
    """Relative tolerance: float64 to 1e-12; float32 to 1e-6 (XLA's own transcendentals: 2e-6)."""
    if dtype == "float64":
        return 1e-12
    return 2e-6 if mode == "xla" else 1e-6


def assert_same(ours: Any, ref: Any, *, rtol: float = 1e-12, atol: float = 0.0) -> None:
    """Same dtype, shape and values (NaN where NaN) as the array-api-strict result."""
    assert name_of(ours.dtype) == name_of(ref.dtype), f"dtype {ours.dtype} != {ref.dtype}"
    a, b = np.asarray(ours), np.asarray(ref)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    if a.dtype.kind in "biu":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def both(np_arrays: list[np.ndarray]) -> tuple[list[tf.Tensor], list[Any]]:
    """The same NumPy arrays as tf.Tensors and as array-api-strict arrays."""
    import array_api_strict as xs

    return [tf.constant(a) for a in np_arrays], [xs.asarray(a) for a in np_arrays]
