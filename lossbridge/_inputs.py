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

from lossbridge.conventions import InputRules, NativeInputs
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
    time_major: tuple[int, ...] = ()
    expanded: tuple[int, ...] = ()

    def restore(self, xp: Any, k: int, grad: Any) -> Any:
        """The gradient of spec input ``k`` in the caller's layout (class axis back at 1, time-major
        native arguments back to ``(T, N, ...)``, an added trailing axis dropped)."""
        if k in self.moved:
            grad = xp.moveaxis(grad, -1, 1)
        if k in self.expanded:
            grad = xp.squeeze(grad, axis=-1)
        if k in self.time_major:
            grad = _swap_leading(xp, grad)
        return grad


def _cast(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype``: ``x`` itself when it has it (``astype`` copies by default; a copy of the
    logits costs their size in memory and a node in the autograd graph)."""
    return x if x.dtype == dtype else xp.astype(x, dtype)


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


def _expand_rank(xp: Any, spec: LossSpec, arrays: list[Any]) -> tuple[int, ...]:
    """Optax's ``dice_loss`` rule: of the prediction and the target, the one exactly one rank lower
    gets a trailing axis of size 1 (in place in ``arrays``); the expanded positions."""
    if spec.target is None:
        return ()
    pk = _prediction_index(spec)
    tk = next(j for j, i in enumerate(spec.inputs) if i.role == "target")
    pred, y = arrays[pk], arrays[tk]
    if pred is None or y is None:
        return ()
    if pred.ndim == y.ndim - 1:
        arrays[pk] = xp.expand_dims(pred, axis=-1)
        return (pk,)
    if y.ndim == pred.ndim - 1:
        arrays[tk] = xp.expand_dims(y, axis=-1)
        return (tk,)
    return ()


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
    reduction: str = "mean",
) -> tuple[tuple[Any, ...], Layout]:
    """Check ``inputs`` (spec order), apply the input rules, cast to the compute dtype.

    An empty batch is refused when it is to be reduced (a mean of nothing); unreduced
    (``reduction="none"``), it gives an empty result, as every framework does.
    """
    if len(inputs) != len(spec.inputs):
        names = ", ".join(i.name for i in spec.inputs)
        raise ParameterError(f"{spec.name}: expected {len(spec.inputs)} inputs ({names}), got {len(inputs)}")
    arrays = list(inputs)
    pk = _prediction_index(spec)
    pname = spec.inputs[pk].name
    time_major: tuple[int, ...] = ()
    unbatched = False
    if rules.native is not None:
        arrays, time_major, unbatched = _from_native(xp, spec, rules.native, arrays, params)
    if rules.cast_inputs and not xp.isdtype(arrays[pk].dtype, "real floating"):
        arrays[pk] = xp.astype(arrays[pk], getattr(xp, dtype or rules.compute_dtype or "float32"))
    check_floating(xp, arrays[pk], pname)
    expanded = _expand_rank(xp, spec, arrays) if rules.expand_rank else ()
    moved = _class_axis_last(xp, spec, arrays, params) if rules.class_axis == 1 else ()
    if rules.match_rank:
        _match_rank(xp, spec, arrays, params)
    pred = arrays[pk]
    least = spec.min_ndim - (1 if unbatched else 0)  # one unbatched sequence: (T, C), no batch axis
    check_min_ndim(pred, least, pname, "the last axis holds the classes" if spec.min_ndim > 1 else "")
    if reduction != "none":
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
            x = _cast(xp, x, getattr(xp, compute))
        if check_values and dom.check is not None and (dom.integer or rules.check_ranges):
            checked = x if ignore_index is None or not dom.integer else xp.where(x == ignore_index, xp.zeros_like(x), x)
            dom.check(xp, checked, decl.name, tuple(pred.shape))
        out.append(x)
    return tuple(out), Layout(moved, compute, result, time_major, expanded)


# -- a framework's own argument list (NativeInputs), mapped onto the spec's inputs ------------------------
def _swap_leading(xp: Any, x: Any) -> Any:
    """``x`` with its first two axes exchanged: time-major ``(T, N, ...)`` <-> batch-major ``(N, T, ...)``."""
    return xp.permute_dims(x, (1, 0, *range(2, x.ndim)))


def _suffix_paddings(xp: Any, lengths: Any, frames: int, dtype: Any) -> Any:
    """Right-padding indicators ``(N, T)``: 1 from each sequence's length on."""
    steps = xp.arange(frames, dtype=xp.int64)
    return xp.astype(xp.expand_dims(steps, axis=0) >= xp.expand_dims(lengths, axis=-1), dtype)


def _lengths(xp: Any, form: str, x: Any, native: NativeInputs, name: str) -> Any:
    """A length per sequence ``(N,)`` (int64) from a native lengths, paddings or labels argument."""
    if form == "lengths":
        if x.ndim != 1:
            raise InputError(f"{name}: expected one length per sequence (1-D), got shape {tuple(x.shape)}")
        if xp.isdtype(x.dtype, "real floating"):
            x = xp.round(x)
        return xp.astype(x, xp.int64)
    kept = (x == 0) if form == "paddings" else (x != native.pad_value)
    if x.ndim != 2:
        raise InputError(f"{name}: expected a (batch, steps) array, got shape {tuple(x.shape)}")
    return xp.sum(xp.astype(kept, xp.int64), axis=-1)


def _fit_labels(xp: Any, x: Any, frames: int, lengths: Any | None, name: str) -> Any:
    """Label sequences right-padded (with 0) or cut to ``frames`` columns; a 1-D ``x`` is the
    concatenation of every sequence (PyTorch), split by ``lengths``."""
    if x.ndim == 1:
        if lengths is None:
            raise InputError(f"{name}: 1-D (concatenated) labels need their lengths")
        offsets = xp.cumulative_sum(lengths) - lengths
        steps = xp.arange(frames, dtype=xp.int64)
        at = xp.expand_dims(offsets, axis=-1) + xp.expand_dims(steps, axis=0)  # (N, T)
        inside = xp.expand_dims(steps, axis=0) < xp.expand_dims(lengths, axis=-1)
        last = max(int(x.shape[0]) - 1, 0)
        if int(x.shape[0]) == 0:
            return xp.zeros(tuple(at.shape), dtype=x.dtype)
        picked = xp.reshape(xp.take(x, xp.reshape(xp.clip(at, 0, last), (-1,)), axis=0), tuple(at.shape))
        return xp.where(inside, picked, xp.zeros_like(picked))
    if x.ndim != 2:
        raise InputError(f"{name}: expected labels (batch, steps) or 1-D concatenated, got shape {tuple(x.shape)}")
    steps = int(x.shape[1])
    if steps >= frames:
        return x[:, :frames]
    return xp.concat([x, xp.zeros((x.shape[0], frames - steps), dtype=x.dtype)], axis=-1)


def _spec_form(xp: Any, spec: LossSpec, arrays: list[Any], params: Mapping[str, Any]) -> bool:
    """The spec's own inputs, unambiguously: every slot filled, integer class indices in the
    target's slot and floating arrays elsewhere, each of the shape its domain gives (CTC: labels and
    both paddings ``(N, T)`` against logits ``(N, T, C)``). No framework's native call has that form
    (PyTorch passes 1-D lengths, Keras two arrays, Optax floating paddings before integer labels)."""
    if any(x is None for x in arrays):
        return False
    pred = arrays[_prediction_index(spec)]
    for decl, x in zip(spec.inputs, arrays, strict=True):
        dom = domain(decl.domain_for(params))
        floating = bool(xp.isdtype(x.dtype, "real floating"))
        if dom.integer == floating:
            return False
        want = tuple(pred.shape) if dom.shape == "same" else tuple(pred.shape[:-1])
        if dom.shape in ("same", "batch") and tuple(x.shape) != want:
            return False
    return True


def _one_sequence(xp: Any, given: dict[str, Any], native: NativeInputs, pred_arg: str) -> dict[str, Any]:
    """PyTorch's unbatched CTC arguments as a batch of one: the label sequence ``(S,)`` as ``(1, S)``,
    each length (0-d, or one element) as ``(1,)``."""
    labels = {src[1] for src in native.sources.values() if src[0] == "labels"}
    out = dict(given)
    for arg, x in given.items():
        if arg == pred_arg:
            continue
        if arg in labels and x.ndim == 1:
            out[arg] = xp.expand_dims(x, axis=0)
        elif arg not in labels:
            if x.ndim > 1 or (x.ndim == 1 and int(x.shape[0]) != 1):
                raise InputError(
                    f"{arg}: an unbatched sequence has one length (0-d or one element), got shape {tuple(x.shape)}"
                )
            out[arg] = xp.reshape(x, (1,))
    return out


def _from_native(
    xp: Any, spec: LossSpec, native: NativeInputs, arrays: list[Any], params: Mapping[str, Any]
) -> tuple[list[Any], tuple[int, ...], bool]:
    """The spec's inputs from a framework's own arguments (``native.slots``/``native.sources``), the
    positions given time-major, and whether the call was one unbatched sequence.

    Every step is an Array API operation on the caller's arrays, so a backend's autodiff (or the
    spec's gradient behind it) reaches the native prediction through them. The spec's own form is
    taken as it is when it is unambiguous (:func:`_spec_form`). A time-major prediction with no
    batch axis (PyTorch's unbatched CTC: ``(T, C)`` log-probabilities, ``(S,)`` targets, 0-d
    lengths) is mapped as a batch of one and given back without the batch axis: the spec computes
    one value for it (the spec's inputs ``(T,)``, ``(T, C)``, ``(T,)``, ``(T,)``).
    """
    if _spec_form(xp, spec, arrays, params):
        return arrays, (), False
    given = {}
    for slot, (arg, x) in enumerate(zip(native.slots, arrays, strict=True)):
        if arg:
            if x is None:
                raise ParameterError(f"{spec.name}: the native argument {arg!r} is required")
            given[arg] = x
        elif x is not None:
            raise ParameterError(
                f"{spec.name}: this convention's call takes {native.arity} arrays "
                f"({', '.join(a for a in native.slots if a)}); got an array in place of {spec.inputs[slot].name!r}"
            )
    names = [i.name for i in spec.inputs]
    pk = _prediction_index(spec)
    form, arg = native.sources[names[pk]][:2]
    pred = given[arg]
    unbatched = form == "time_major" and pred.ndim == 2
    if unbatched:  # (T, C): one sequence, mapped as a batch of one
        pred = xp.expand_dims(pred, axis=0)
        given = _one_sequence(xp, given, native, arg)
    elif form == "time_major":
        if pred.ndim < 3:
            raise InputError(f"{arg}: expected (frames, batch, classes) or unbatched (frames, classes), "
                             f"got shape {tuple(pred.shape)}")
        pred = _swap_leading(xp, pred)
    frames = int(pred.shape[1]) if pred.ndim >= 2 else 0
    out: dict[str, Any] = {names[pk]: pred}
    too_long = None
    for name in names:
        if name == names[pk]:
            continue
        form, arg, *more = native.sources[name]
        x = given[arg]
        if form == "same":
            out[name] = x
        elif form == "labels":
            lengths = None
            if more and x.ndim == 1:
                lengths = _lengths(xp, "lengths", given[more[0]], native, more[0])
            out[name] = _fit_labels(xp, x, frames, lengths, arg)
        elif form == "none":
            out[name] = xp.zeros(tuple(pred.shape[:2]), dtype=pred.dtype)
        elif form in ("lengths", "paddings", "count"):
            lengths = _lengths(xp, form, x, native, arg)
            out[name] = _suffix_paddings(xp, lengths, frames, pred.dtype)
            if name != native.frames:
                over = lengths > frames
                too_long = over if too_long is None else too_long | over
        else:
            raise ParameterError(f"{spec.name}: unknown native input form {form!r}")
    if too_long is not None and native.frames:  # more labels than frames: no alignment at all
        pads = out[native.frames]
        out[native.frames] = xp.where(xp.expand_dims(too_long, axis=-1), xp.ones_like(pads), pads)
    if unbatched:
        return [xp.squeeze(out[n], axis=0) for n in names], (), True
    time_major = tuple(k for k, n in enumerate(names) if native.sources[n][0] == "time_major")
    return [out[n] for n in names], time_major, False


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
