"""lossbridge's TensorFlow/Keras backend.

Losses become :class:`keras.losses.Loss` subclasses and optimizers
:class:`keras.optimizers.Optimizer` subclasses, both computed by the one spec in
:mod:`lossbridge.spec` through an Array API namespace for ``tf.Tensor``
(:mod:`lossbridge_tensorflow.array_api`). Importing this package does not import TensorFlow;
``KerasLoss`` and ``KerasOptimizer`` are loaded (with Keras) the first time they are asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KerasLoss", "KerasOptimizer", "TensorflowBackend"]

from ._backend import TensorflowBackend

_LAZY = {"KerasLoss": "lossbridge_tensorflow._losses", "KerasOptimizer": "lossbridge_tensorflow._optimizers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "array_api":
        import importlib

        return importlib.import_module("lossbridge_tensorflow.array_api")
    raise AttributeError(f"module 'lossbridge_tensorflow' has no attribute {name!r}")
