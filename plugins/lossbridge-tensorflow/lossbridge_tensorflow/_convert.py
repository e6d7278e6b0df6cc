"""Turning what a Keras user passes (tensors, variables, NumPy arrays, lists) into ``tf.Tensor``."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from lossbridge.errors import InputError

__all__ = ["to_tensor"]

_OTHER_FRAMEWORKS = ("torch", "jax", "jaxlib", "array_api_strict")


def to_tensor(x: Any, name: str, *, float_dtype: Any = None) -> Any:
    """``x`` as a ``tf.Tensor``; floating values cast to ``float_dtype`` when it is given.

    NumPy arrays keep their dtype (float64 stays float64). Arrays of another framework raise an
    :class:`~lossbridge.InputError` naming ``name``.
    """
    module = type(x).__module__.split(".")[0]
    if module in _OTHER_FRAMEWORKS:
        raise InputError(
            f"{name}: expected a tf.Tensor, keras.Variable or NumPy array for the tensorflow backend, "
            f"got {type(x).__module__}.{type(x).__name__}; mixing frameworks in one call is not "
            "supported (convert it, or use that framework's backend)"
        )
    if hasattr(x, "value") and module == "keras":  # keras.Variable
        x = x.value
    if not isinstance(x, (tf.Tensor, tf.Variable)):
        x = tf.convert_to_tensor(np.asarray(x))
    elif isinstance(x, tf.Variable):
        x = tf.convert_to_tensor(x)
    if float_dtype is not None and x.dtype.is_floating and x.dtype != tf.as_dtype(float_dtype):
        x = tf.cast(x, float_dtype)
    return x
