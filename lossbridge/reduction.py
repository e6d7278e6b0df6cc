"""The one reduction and weighting layer every backend calls.

Spec functions return unreduced values; this module turns them into what the caller asked for:
``reduction`` in ``{"mean", "sum", "none"}``, ``sample_weight``, per-term weights (class weights
looked up by label, with ignored labels weighted 0). It is written over the Array API, so the
same code runs on NumPy, torch, TensorFlow and JAX arrays, and the gradient side (``cotangent``)
is derived from the same weights, so the value and its gradient cannot drift apart.

``sample_weight`` must have the shape of the leading axes of the per-term values (``(batch,)``
for ``(batch, d)`` values, or a scalar); it is then broadcast over the remaining axes. Any other
shape is an :class:`~lossbridge.InputError`, never a silent broadcast.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lossbridge.conventions import Reduction
from lossbridge.errors import InputError

__all__ = ["REDUCTIONS", "cotangent", "reduce_loss", "term_values"]

REDUCTIONS = ("mean", "sum", "none", "batchmean")


def term_values(values: Any, *, xp: Any, rule: Reduction, elementwise: bool) -> Any:
    """The values that are weighted and summed: per element, or per sample (Keras's last-axis mean)."""
    if elementwise and rule.feature_mean and values.ndim >= 1:
        return xp.mean(values, axis=-1)
    return values


def _expand(xp: Any, weight: Any, shape: tuple[int, ...], name: str) -> Any:
    if tuple(weight.shape) != tuple(shape[: weight.ndim]):
        raise InputError(f"{name}: expected shape {tuple(shape)} or a leading part of it, got {tuple(weight.shape)}")
    if weight.ndim == len(shape):
        return weight
    return xp.reshape(weight, _static(weight.shape) + (1,) * (len(shape) - weight.ndim))


def _cast(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype``, without the copy ``astype`` makes when it already has it."""
    return x if x.dtype == dtype else xp.astype(x, dtype)


def _static(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """A shape for ``reshape``: an axis unknown while tracing (``None``) becomes ``-1``."""
    return tuple(-1 if n is None else int(n) for n in shape)


def _broadcast(xp: Any, weight: Any, like: Any) -> Any:
    """``weight`` broadcast to ``like``'s shape, also when a traced axis is unknown (``None``)."""
    if tuple(weight.shape) == tuple(like.shape):
        return weight
    if any(n is None for n in like.shape):
        return weight * xp.ones_like(like)
    return xp.broadcast_to(weight, tuple(like.shape))


def _weights(
    xp: Any, terms: Any, sample_weight: Any | None, term_weight: Any | None, mask: Any | None = None
) -> Any | None:
    weight = None
    if sample_weight is not None:
        sw = (
            xp.astype(xp.asarray(sample_weight), terms.dtype)
            if not hasattr(sample_weight, "dtype")
            else _cast(xp, sample_weight, terms.dtype)
        )
        weight = _expand(xp, sw, tuple(terms.shape), "sample_weight")
    if term_weight is not None:
        tw = _cast(xp, term_weight, terms.dtype)
        weight = tw if weight is None else weight * tw
    if mask is not None:
        kept = _cast(xp, mask, terms.dtype)
        weight = kept if weight is None else weight * kept
    if weight is not None:
        weight = _broadcast(xp, weight, terms)
    return weight


def _denominator(xp: Any, terms: Any, weight: Any | None, rule: Reduction, mask: Any | None = None) -> Any:
    if rule.mask_zero:  # Keras divides with divide_no_nan: nothing left gives 0
        den = _denominator(xp, terms, weight, replace(rule, mask_zero=False), mask)
        return xp.where(den == 0, xp.ones_like(den), den)
    if weight is not None and rule.normalize_by == "weights":
        return xp.sum(weight)
    if mask is not None:  # "count" of the terms that are not ignored (Keras's ignore_class)
        return xp.sum(_broadcast(xp, _cast(xp, mask, terms.dtype), terms))
    if any(n is None for n in terms.shape):  # traced with an unknown axis: count at run time
        return xp.sum(xp.ones_like(terms))
    count = 1
    for n in terms.shape:
        count *= int(n)
    return xp.asarray(float(count), dtype=terms.dtype)


def reduce_loss(
    values: Any,
    *,
    xp: Any,
    reduction: str,
    rule: Reduction,
    elementwise: bool,
    sample_weight: Any | None = None,
    term_weight: Any | None = None,
    mask: Any | None = None,
) -> Any:
    """Weight and reduce unreduced loss ``values`` as ``reduction`` and ``rule`` say."""
    terms = term_values(values, xp=xp, rule=rule, elementwise=elementwise)
    mask = _zero_mask(xp, terms, rule, mask)
    weight = _weights(xp, terms, sample_weight, term_weight, mask)
    weighted = terms if weight is None else terms * weight
    if reduction == "none":
        return weighted
    total = xp.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "batchmean":
        return total / _batch(xp, terms)
    return total / _denominator(xp, terms, weight, rule, mask)


def _zero_mask(xp: Any, terms: Any, rule: Reduction, mask: Any | None) -> Any | None:
    """Keras's ``set_keras_mask(loss, loss > 0)`` (``rule.mask_zero``): terms equal to 0 are left out."""
    if not rule.mask_zero:
        return mask
    nonzero = terms != 0
    return nonzero if mask is None else (mask != 0) & nonzero


def _batch(xp: Any, terms: Any) -> Any:
    """The batch size (the leading axis), the denominator of ``"batchmean"``; 1 for a scalar."""
    n = terms.shape[0] if terms.ndim else 1
    if n is None:
        return xp.sum(xp.ones_like(terms)) / xp.sum(xp.ones_like(terms[0]))
    return xp.asarray(float(n), dtype=terms.dtype)


def cotangent(
    values: Any,
    *,
    xp: Any,
    reduction: str,
    rule: Reduction,
    elementwise: bool,
    sample_weight: Any | None = None,
    term_weight: Any | None = None,
    mask: Any | None = None,
) -> Any:
    """d(reduced)/d(values), an array of ``values``'s shape.

    For ``reduction="none"`` it is the gradient of the sum of the weighted terms.
    """
    terms = term_values(values, xp=xp, rule=rule, elementwise=elementwise)
    mask = _zero_mask(xp, terms, rule, mask)
    weight = _weights(xp, terms, sample_weight, term_weight, mask)
    coeff = xp.ones_like(terms) if weight is None else weight
    if reduction == "mean":
        coeff = coeff / _denominator(xp, terms, weight, rule, mask)
    elif reduction == "batchmean":
        coeff = coeff / _batch(xp, terms)
    if tuple(terms.shape) != tuple(values.shape):  # undo the last-axis mean
        n = values.shape[-1]
        coeff = xp.broadcast_to(xp.reshape(coeff, (*tuple(coeff.shape), 1)), tuple(values.shape))
        coeff = coeff / float(n)
    return coeff
