"""The shared input path of every loss: a framework's accepted input forms, applied as data.

:func:`prepare_inputs` turns what a caller passed (in spec order) into the arrays the spec
computes on, following the convention's :class:`~lossbridge.conventions.InputRules`: class axis
moved last, target rank matched, integral float labels cast, integer predictions cast, every
floating input in the compute dtype. It is written over the Array API and called by every
backend through :meth:`lossbridge.bound.BoundLoss.evaluate`, so a rule behaves identically
everywhere. Value checks run only when ``check_values`` is true (concrete, eager arrays).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lossbridge.conventions import InputRules
from lossbridge.errors import InputError, ParameterError
from lossbridge.spec._domain import domain
from lossbridge.spec._model import LossSpec
from lossbridge.validation import (
    check_floating,
    check_integer,
    check_min_ndim,
    check_nonempty,
    check_shape,
    dtype_name,
)

__all__ = ["Layout", "native_layout", "prepare_inputs", "prepare_weight"]

LOW_PRECISION = ("float16", "bfloat16")


@dataclass(frozen=True)
class Layout:
    """How the caller's arrays were changed, so gradients can be given back in their layout.

    ``moved`` lists the spec input positions whose class axis was moved from 1 to the end;
    ``result_dtype`` is the dtype the reduced loss is returned in (a name).
    """

    moved: tuple[int, ...]
    compute_dtype: str
    result_dtype: str


def _prediction_index(spec: LossSpec) -> int:
    return next(k for k, i in enumerate(spec.inputs) if i.differentiable)


def _has_class_axis(spec: LossSpec, k: int, params: Mapping[str, Any]) -> bool:
    decl = spec.inputs[k]
    dom = domain(decl.domain_for(params))
    return not spec.elementwise and dom.shape == "same" and (decl.differentiable or not dom.integer)


def _class_axis_last(xp: Any, spec: LossSpec, arrays: list[Any], params: Mapping[str, Any]) -> tuple[int, ...]:
    """PyTorch's ``(N, C, d1, ...)`` inputs with the class axis moved to the end (in place in ``arrays``)."""
    pred = arrays[_prediction_index(spec)]
    if spec.elementwise or pred.ndim <= 2:
        return ()
    moved = tuple(k for k in range(len(arrays)) if _has_class_axis(spec, k, params) and arrays[k].ndim > 2)
    for k in moved:
        arrays[k] = xp.moveaxis(arrays[k], 1, -1)
    return moved


def _match_rank(xp: Any, spec: LossSpec, arrays: list[Any], params: Mapping[str, Any]) -> None:
    """Keras's ``squeeze_or_expand_to_same_rank`` for the target (in place in ``arrays``)."""
    target = spec.target
    if target is None:
        return
    k = next(j for j, i in enumerate(spec.inputs) if i.role == "target")
    pred, y = arrays[_prediction_index(spec)], arrays[k]
    same = domain(target.domain_for(params)).shape == "same"
    want = pred.ndim - (0 if same else 1)
    if y.ndim == want + 1 and y.shape[-1] == 1:
        arrays[k] = xp.squeeze(y, axis=-1)
    elif same and y.ndim == want - 1 and pred.shape[-1] == 1:
        arrays[k] = xp.expand_dims(y, axis=-1)


def _cast_labels(xp: Any, x: Any, name: str, check_values: bool) -> Any:
    """Floating class indices holding whole numbers, as integers; fractional ones are an error."""
    if not xp.isdtype(x.dtype, "real floating"):
        return x
    if check_values and not bool(xp.all(x == xp.round(x))):
        bad = x[x != xp.round(x)]
        raise InputError(
            f"{name}: expected class indices (integers, or floats holding whole numbers), got a "
            f"fractional value {float(bad[0]) if bad.shape[0] else float('nan'):g}"
        )
    return xp.astype(x, xp.int64)


def _check_input_shape(x: Any, kind: str, pred_shape: tuple[int, ...], name: str, pname: str) -> None:
    """``x``'s shape against the prediction's, as its domain's shape kind says."""
    if kind == "broadcast":
        allowed = [pred_shape, (*pred_shape[:-1], 1), pred_shape[:-1]]
        if tuple(x.shape) not in allowed:
            shown = " or ".join(str(s) for s in allowed)
            raise InputError(
                f"{name}: expected shape {shown} (broadcasting against {pname}), got {tuple(x.shape)}"
            )
        return
    expected = pred_shape if kind == "same" else pred_shape[:-1]
    relation = (
        f"{name} and {pname} must have the same shape; nothing is broadcast"
        if kind == "same"
        else f"{pname}'s shape without its class axis"
    )
    check_shape(x, expected, name, relation=relation)


def _dtypes(xp: Any, pred: Any, rules: InputRules, dtype: str | None) -> tuple[str, str]:
    """``(compute dtype, result dtype)`` names: the loss's dtype if set, else the prediction's."""
    fixed = dtype or rules.compute_dtype
    if fixed is not None:
        return fixed, fixed
    name = dtype_name(pred)
    if not xp.isdtype(pred.dtype, "real floating"):
        return "float32", "float32"  # integer predictions under a rule that casts them
    return ("float32" if name in LOW_PRECISION else name), name


def prepare_inputs(
    xp: Any,
    spec: LossSpec,
    inputs: tuple[Any, ...],
    *,
    params: Mapping[str, Any],
    rules: InputRules,
    dtype: str | None,
    ignore_index: int | None,
    check_values: bool,
) -> tuple[tuple[Any, ...], Layout]:
    """Check ``inputs`` (spec order), apply the input rules, cast to the compute dtype."""
    if len(inputs) != len(spec.inputs):
        names = ", ".join(i.name for i in spec.inputs)
        raise ParameterError(f"{spec.name}: expected {len(spec.inputs)} inputs ({names}), got {len(inputs)}")
    arrays = list(inputs)
    pk = _prediction_index(spec)
    pname = spec.inputs[pk].name
    if rules.cast_inputs and not xp.isdtype(arrays[pk].dtype, "real floating"):
        arrays[pk] = xp.astype(arrays[pk], getattr(xp, dtype or rules.compute_dtype or "float32"))
    check_floating(xp, arrays[pk], pname)
    moved = _class_axis_last(xp, spec, arrays, params) if rules.class_axis == 1 else ()
    if rules.match_rank:
        _match_rank(xp, spec, arrays, params)
    pred = arrays[pk]
    check_min_ndim(pred, spec.min_ndim, pname, "the last axis holds the classes" if spec.min_ndim > 1 else "")
    check_nonempty(pred, pname)
    compute, result = _dtypes(xp, pred, rules, dtype)
    out = []
    for decl, x in zip(spec.inputs, arrays, strict=True):
        dom = domain(decl.domain_for(params))
        _check_input_shape(x, dom.shape, tuple(pred.shape), decl.name, pname)
        if dom.integer:
            x = _cast_labels(xp, x, decl.name, check_values) if rules.cast_labels else x
            check_integer(xp, x, decl.name)
        else:
            if rules.cast_inputs and not xp.isdtype(x.dtype, "real floating"):
                x = xp.astype(x, getattr(xp, compute))
            check_floating(xp, x, decl.name)
            x = xp.astype(x, getattr(xp, compute))
        if check_values and dom.check is not None and (dom.integer or rules.check_ranges):
            checked = x if ignore_index is None or not dom.integer else xp.where(x == ignore_index, xp.zeros_like(x), x)
            dom.check(xp, checked, decl.name, tuple(pred.shape))
        out.append(x)
    return tuple(out), Layout(moved, compute, result)


def prepare_weight(xp: Any, spec: LossSpec, weight: Any | None, pred_ndim: int, *, rules: InputRules,
                   feature_mean: bool, values_ndim: int | None = None) -> Any | None:
    """``sample_weight`` with trailing axes of size 1 beyond the per-term values squeezed (Keras).

    ``values_ndim`` is the rank of the spec's unreduced values when known (an elementwise spec that
    sums over an axis, as Keras's KLDivergence, gives one value per sample); else it is inferred.
    """
    if weight is None or not rules.broadcast_weights:
        return weight
    if values_ndim is not None:
        terms_ndim = values_ndim - (1 if (feature_mean and spec.elementwise and values_ndim >= 1) else 0)
    else:
        terms_ndim = pred_ndim - (1 if (feature_mean or not spec.elementwise) else 0)
    while weight.ndim > max(terms_ndim, 0) and weight.ndim >= 1 and weight.shape[-1] == 1:
        weight = xp.squeeze(weight, axis=-1)
    return weight


def native_layout(
    spec: LossSpec, params: Mapping[str, Any], rules: InputRules, inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """NumPy ``inputs`` in the spec's layout, rearranged as the convention's users hold them.

    The inverse of the class-axis rule: PyTorch users hold ``(N, C, d1, ...)``. The conformance kit
    feeds every backend (and the reference) the same native-layout data.
    """
    import numpy as np

    out = dict(inputs)
    pred = spec.inputs[_prediction_index(spec)].name
    if rules.class_axis != 1 or spec.elementwise or np.ndim(inputs[pred]) <= 2:
        return out
    for k, decl in enumerate(spec.inputs):
        if _has_class_axis(spec, k, params) and np.ndim(inputs[decl.name]) > 2:
            out[decl.name] = np.moveaxis(inputs[decl.name], -1, 1)
    return out
