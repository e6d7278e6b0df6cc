"""Losses as :class:`keras.losses.Loss` subclasses, computed by the one spec over ``tf.Tensor``.

Importing this module imports TensorFlow and Keras; the backend imports it lazily.

Keras's reduction names map onto the shared reduction layer (:mod:`lossbridge.reduction`):

=========================  ==============================================================
Keras ``reduction``        lossbridge
=========================  ==============================================================
``"sum_over_batch_size"``  ``"mean"``, dividing by the number of terms
``"mean"``                 the same (Keras 3 divides by the number of terms)
``"mean_with_sample_weight"``  ``"mean"``, dividing by the sum of the weights
``"sum"``                  ``"sum"``
``"none"`` / ``None``      ``"none"``
=========================  ==============================================================

Under ``convention="keras"`` two Keras behaviours are reproduced as data, not formulas:
targets one rank off the prediction are squeezed/expanded like Keras's
``squeeze_or_expand_to_same_rank``, and the cross-entropies whose Keras TensorFlow
implementation reads the logits behind a softmax/sigmoid output (``_keras_logits``, or the
input of a ``Softmax``/``Sigmoid`` graph op; see ``keras/src/backend/tensorflow/nn.py``
``_get_logits``) do the same, by evaluating the spec with ``from_logits=True`` on those logits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import lossbridge
from lossbridge._bound import BoundLoss, bind
from lossbridge._errors import ParameterError
from lossbridge.spec._domain import domain
from lossbridge_tensorflow import array_api as xp
from lossbridge_tensorflow._convert import to_tensor

__all__ = ["KERAS_LOGITS_NATIVES", "KERAS_REDUCTIONS", "KerasLoss"]

#: Keras reduction names and the (lossbridge reduction, weighted-mean normalization) they mean.
KERAS_REDUCTIONS: Mapping[str | None, tuple[str, str | None]] = {
    "sum_over_batch_size": ("mean", "count"),
    "mean": ("mean", "count"),
    "mean_with_sample_weight": ("mean", "weights"),
    "sum": ("sum", None),
    "none": ("none", None),
    None: ("none", None),
}

#: Keras losses whose TensorFlow implementation uses the logits behind a probability output,
#: with the graph op that produces that output (keras/src/backend/tensorflow/nn.py).
KERAS_LOGITS_NATIVES: Mapping[str, str] = {
    "keras.losses.BinaryCrossentropy": "Sigmoid",
    "keras.losses.CategoricalCrossentropy": "Softmax",
    "keras.losses.SparseCategoricalCrossentropy": "Softmax",
}

_UNSET: Any = object()


def _with_keras_reduction(bound: BoundLoss, reduction: str | None) -> BoundLoss:
    """``bound`` with the reduction a Keras reduction name means."""
    if reduction not in KERAS_REDUCTIONS:
        valid = ", ".join(repr(k) for k in KERAS_REDUCTIONS)
        raise ParameterError(
            f"{bound.spec.name}: parameter 'reduction' expects one of {valid}, got {reduction!r}"
        )
    name, normalize_by = KERAS_REDUCTIONS[reduction]
    rule = bound.rule if normalize_by is None else dataclasses.replace(bound.rule, normalize_by=normalize_by)
    return dataclasses.replace(bound, reduction=name, rule=rule)


def _keras_reduction_name(bound: BoundLoss) -> str:
    """The Keras name of ``bound``'s reduction."""
    if bound.reduction != "mean":
        return bound.reduction
    return "sum_over_batch_size" if bound.rule.normalize_by == "count" else "mean_with_sample_weight"


def _attached_logits(y_pred: Any, op_type: str) -> Any | None:
    """The logits Keras's TensorFlow backend would use for ``y_pred``, if any."""
    logits = getattr(y_pred, "_keras_logits", None)
    if logits is not None:
        return logits
    if isinstance(y_pred, tf.Tensor) and not tf.executing_eagerly() and hasattr(y_pred, "op"):
        op = y_pred.op
        if op.type == op_type and len(op.inputs) == 1:
            return op.inputs[0]
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray) or hasattr(value, "numpy"):
        return np.asarray(value).tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


@keras.saving.register_keras_serializable(package="lossbridge")
class KerasLoss(keras.losses.Loss):
    """A lossbridge spec as a Keras loss: ``loss(y_true, y_pred, sample_weight=None)``.

    Parameters
    ----------
    spec:
        A spec name (``"mse"``) or an already bound spec.
    convention:
        ``None`` (lossbridge's defaults) or a framework, e.g. ``"keras"``.
    reduction:
        A Keras reduction name (see the module docstring) or lossbridge's ``"mean"``/``"sum"``/
        ``"none"``; unset takes the convention's default.
    name, dtype:
        As for every Keras loss. With ``dtype`` unset, inputs keep their floating dtype (float64
        in, float64 out); float16/bfloat16 are computed in float32.
    **params:
        The spec's parameters.
    """

    def __init__(
        self,
        spec: str | BoundLoss,
        convention: str | None = None,
        *,
        reduction: Any = _UNSET,
        name: str | None = None,
        dtype: Any = None,
        **params: Any,
    ) -> None:
        bound = (
            spec
            if isinstance(spec, BoundLoss)
            else bind(lossbridge.spec(spec), convention=convention, params=params)
        )
        if not isinstance(bound, BoundLoss):
            raise ParameterError(f"{bound.spec.name} is an optimizer, not a loss; use KerasOptimizer")
        if reduction is not _UNSET:
            bound = _with_keras_reduction(bound, reduction)
        super().__init__(name=name or bound.spec.name, reduction=_keras_reduction_name(bound), dtype=dtype)
        self.bound = bound
        self.spec = bound.spec
        self._explicit_dtype = dtype
        self._truth_first = self._keras_order()
        self._logits_op = self._logits_variant()

    # -- construction helpers ---------------------------------------------------------------------
    def _keras_order(self) -> list[int]:
        """Spec input indices in Keras argument order: targets first, then the rest."""
        inputs = self.spec.inputs
        return [k for k, i in enumerate(inputs) if i.role == "target"] + [
            k for k, i in enumerate(inputs) if i.role != "target"
        ]

    def _is_keras(self) -> bool:
        conv = self.bound.convention
        return conv is not None and conv.framework == "keras"

    def _logits_variant(self) -> str | None:
        """The graph op whose input Keras would use as logits for this loss, if it does that."""
        conv = self.bound.convention
        op = KERAS_LOGITS_NATIVES.get(conv.native) if conv is not None and self._is_keras() else None
        return None if op is None or self.bound.params.get("from_logits", True) else op

    # -- calling ------------------------------------------------------------------------------------
    def _split(self, args: tuple[Any, ...], sample_weight: Any) -> tuple[list[Any], Any]:
        n = len(self.spec.inputs)
        if len(args) == n + 1 and sample_weight is None:  # Keras passes sample_weight positionally
            args, sample_weight = args[:n], args[n]
        if len(args) != n:
            names = ", ".join(self.spec.inputs[k].name for k in self._truth_first)
            raise TypeError(f"{self.spec.name}: expected {n} arrays ({names}), got {len(args)}")
        ordered: list[Any] = [None] * n
        for position, k in enumerate(self._truth_first):
            ordered[k] = args[position]
        return ordered, sample_weight

    def _convert(self, inputs: list[Any], sample_weight: Any) -> tuple[list[Any], Any]:
        """Tensors; floats in ``dtype`` if given, else at least in the loss's Keras dtype (``floatx``).

        Keras converts both inputs to the loss dtype; lossbridge never narrows (float64 inputs stay
        float64 under a float32 ``floatx``) but widens like Keras (a float32 output under a float64
        ``floatx`` is computed in float64).
        """
        tensors = []
        for x, decl in zip(inputs, self.spec.inputs, strict=True):
            integer = domain(decl.domain_for(self.bound.params)).integer
            explicit = None if integer or self._explicit_dtype is None else self.dtype
            t = to_tensor(x, decl.name, float_dtype=explicit)
            if not integer and self._explicit_dtype is None and t.dtype.is_floating:
                wide = tf.as_dtype(self.dtype)
                t = tf.cast(t, wide) if wide.is_floating and wide.size > t.dtype.size else t
            tensors.append(t)
        weight = None if sample_weight is None else to_tensor(sample_weight, "sample_weight")
        return tensors, weight

    def _match_ranks(self, tensors: list[Any]) -> list[Any]:
        """Keras's squeeze_or_expand_to_same_rank for the target (keras convention only)."""
        target = self.spec.target
        pred_k = next(k for k, i in enumerate(self.spec.inputs) if i.differentiable)
        if target is None or not self._is_keras():
            return tensors
        k = self.spec.inputs.index(target)
        pred, y = tensors[pred_k], tensors[k]
        same = domain(target.domain_for(self.bound.params)).shape == "same"
        want = len(pred.shape) - (0 if same else 1)
        if len(y.shape) == want + 1 and y.shape[-1] == 1:
            tensors[k] = tf.squeeze(y, axis=-1)
        elif same and len(y.shape) == want - 1 and pred.shape[-1] == 1:
            tensors[k] = tf.expand_dims(y, axis=-1)
        return tensors

    def _evaluate(self, bound: BoundLoss, args: tuple[Any, ...], sample_weight: Any) -> Any:
        inputs, sample_weight = self._split(args, sample_weight)
        pred_k = next(k for k, i in enumerate(self.spec.inputs) if i.differentiable)
        if self._logits_op is not None:
            logits = _attached_logits(inputs[pred_k], self._logits_op)
            if logits is not None:
                inputs[pred_k] = logits
                bound = dataclasses.replace(bound, params={**bound.params, "from_logits": True})
        tensors, weight = self._convert(inputs, sample_weight)
        tensors = self._match_ranks(tensors)
        return bound(xp, *tensors, sample_weight=weight, check_values=tf.executing_eagerly())

    @tf.autograph.experimental.do_not_convert  # spec code has no tensor-dependent Python control flow
    def __call__(self, *args: Any, sample_weight: Any = None) -> Any:
        """The reduced loss, arguments in Keras order (``y_true, y_pred``)."""
        with tf.name_scope(self.name):
            return self._evaluate(self.bound, args, sample_weight)

    @tf.autograph.experimental.do_not_convert
    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Unreduced values (one per sample under Keras's convention), as ``keras.losses.Loss.call``."""
        return self._evaluate(dataclasses.replace(self.bound, reduction="none"), (y_true, y_pred), None)

    # -- serialization ------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Spec name, convention, parameters, and Keras's name/reduction/dtype."""
        params = {k: _jsonable(v) for k, v in self.bound.params.items()}
        if self.bound.class_weight is not None:
            params["class_weight"] = _jsonable(self.bound.class_weight)
        if self.bound.ignore_index is not None:
            params["ignore_index"] = self.bound.ignore_index
        conv = self.bound.convention
        return {
            "name": self.name,
            "reduction": self.reduction,
            "dtype": self._explicit_dtype,
            "spec": self.spec.name,
            "convention": conv.framework if conv is not None else None,
            "params": params,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """Rebuild through :func:`lossbridge.get`, then reapply Keras's options."""
        config = dict(config)
        loss = lossbridge.get(
            config.pop("spec"),
            backend="tensorflow",
            convention=config.pop("convention", None),
            **config.pop("params", {}),
        )
        if not isinstance(loss, KerasLoss):  # a plugin override materialized something else
            return loss
        return cls(loss.bound, **config)

    def __repr__(self) -> str:
        conv = self.bound.convention.framework if self.bound.convention else None
        return f"<lossbridge keras loss {self.spec.name!r} convention={conv!r} reduction={self.reduction!r}>"
