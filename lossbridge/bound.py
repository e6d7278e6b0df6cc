"""A spec with its convention and parameters resolved: what every backend adapts.

:class:`BoundLoss` and :class:`BoundOptimizer` are framework-free. A backend converts its own
arrays, picks the Array API namespace ``xp`` and calls these; it never re-derives the math.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, overload

import numpy as np

from lossbridge._inputs import Layout, prepare_inputs, prepare_weight
from lossbridge.conventions import (
    FRAMEWORK_KWARGS,
    INPUT_RULES,
    LOSSBRIDGE_REDUCTION,
    Convention,
    InputRules,
    Reduction,
)
from lossbridge.errors import BackendError, ParameterError, SpecError
from lossbridge.reduction import cotangent, reduce_loss
from lossbridge.spec._domain import domain
from lossbridge.spec._model import LossSpec, Masking, OptimizerSpec, ScheduleSpec
from lossbridge.spec._params import validate_params
from lossbridge.validation import dtype_name

__all__ = ["BoundLoss", "BoundOptimizer", "BoundSchedule", "bind", "resolve_convention", "translate_kwargs"]

_SHARED = ("reduction", "class_weight", "ignore_index", "dtype")

def resolve_convention(spec: LossSpec | OptimizerSpec | ScheduleSpec, convention: str | None) -> Convention | None:
    """The spec's :class:`Convention` called ``convention`` (``None`` is lossbridge's own)."""
    if convention is None:
        return None
    key = convention.lower()
    if key not in spec.conventions:
        have = ", ".join(sorted(spec.conventions)) or "none"
        raise ParameterError(
            f"{spec.name}: unknown convention {convention!r}; this spec has: None (lossbridge's defaults), {have}"
        )
    return spec.conventions[key]


@dataclass(frozen=True)
class BoundLoss:
    """A loss spec with resolved parameters, reduction rule, weighting and input rules.

    :meth:`evaluate` is the one call path every backend uses: the convention's input rules
    (:mod:`lossbridge._inputs`), class weights and ignored labels, the spec's values (through the
    backend's custom-gradient wrapper, see ``wrap``), the shared reduction, the result dtype.
    ``alternatives`` are other bound specs the same framework name means for another target form
    (torch's ``CrossEntropyLoss`` with probability targets); the target's dtype chooses at call time.
    """

    spec: LossSpec
    params: Mapping[str, Any]
    reduction: str
    rule: Reduction
    class_weight: Any | None = None
    ignore_index: int | None = None
    convention: Convention | None = None
    dtype: str | None = None
    alternatives: tuple[BoundLoss, ...] = ()

    @property
    def rules(self) -> InputRules:
        """The convention's input rules (lossbridge's own without a convention)."""
        conv = self.convention
        return conv.inputs if conv is not None and conv.inputs is not None else INPUT_RULES[None]

    @property
    def result_rule(self) -> str:
        """Where the result dtype comes from: the loss's ``dtype`` or the prediction's."""
        return self.dtype or self.rules.compute_dtype or "prediction"

    # -- inputs ---------------------------------------------------------------------------------
    def prepare(
        self, xp: Any, inputs: tuple[Any, ...], *, check_values: bool = True
    ) -> tuple[tuple[Any, ...], Layout]:
        """Apply the input rules to ``inputs`` (spec order), check them, cast to the compute dtype."""
        return prepare_inputs(
            xp,
            self.spec,
            inputs,
            params=self.params,
            rules=self.rules,
            dtype=self.dtype,
            ignore_index=self.ignore_index,
            check_values=check_values,
            reduction=self.reduction,
        )

    def select(self, xp: Any, inputs: tuple[Any, ...]) -> BoundLoss:
        """This bound spec, or the alternative whose target form (integer or floating) fits."""
        if not self.alternatives:
            return self
        k = next((j for j, i in enumerate(self.spec.inputs) if i.role == "target"), 0)
        floating = bool(xp.isdtype(inputs[k].dtype, "real floating"))
        for candidate in (self, *self.alternatives):
            t = candidate.spec.target
            if t is not None and not callable(t.domain) and domain(t.domain).integer != floating:
                return candidate
        return self

    def _targets_and_weights(
        self, xp: Any, inputs: tuple[Any, ...]
    ) -> tuple[tuple[Any, ...], dict[str, Any | None]]:
        """Replace ignored labels by 0; the class weight of each term and the mask of kept terms."""
        if self.class_weight is None and self.ignore_index is None:
            return inputs, {"term_weight": None, "mask": None}
        k = next(k for k, i in enumerate(self.spec.inputs) if i.role == "target")
        target = inputs[k]
        dtype = next(x.dtype for x, i in zip(inputs, self.spec.inputs) if i.differentiable)
        weight = mask = None
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            target = xp.where(keep, target, xp.zeros_like(target))
            mask = xp.astype(keep, dtype)
        if self.class_weight is not None:
            table = xp.asarray(self.class_weight, dtype=dtype)
            weight = xp.reshape(xp.take(table, xp.reshape(target, (-1,)), axis=0), tuple(target.shape))
        return (*inputs[:k], target, *inputs[k + 1 :]), {"term_weight": weight, "mask": mask}

    # -- masks of valid elements (Optax's where=) and per-item weights -------------------------
    @property
    def masking(self) -> Masking | None:
        """How a mask of valid elements applies to the inputs (the spec's :class:`Masking`)."""
        return self.spec.masking

    @property
    def consumes_last_axis(self) -> bool:
        """Each value reads a whole last axis (classes, list items, vector coordinates), or the
        convention sums an elementwise spec over it (a spec ``axis`` parameter, a feature mean)."""
        return not self.spec.elementwise or self.rule.feature_mean or any(p.name == "axis" for p in self.spec.params)

    def mask_inputs(self, xp: Any, inputs: tuple[Any, ...], where: Any) -> tuple[tuple[Any, ...], Any]:
        """A mask of valid elements (Optax's ``where=``) applied to ``inputs`` (spec order, the last
        axis last): masked elements take the value that makes them count for nothing (the spec's
        :class:`~lossbridge.spec.Masking`). Returns the inputs and the mask of values to keep (give it
        to :meth:`evaluate` as ``keep``): a row with no valid element gives 0 and counts for nothing.
        """
        k_pred = next(k for k, i in enumerate(self.spec.inputs) if i.differentiable)
        pred = inputs[k_pred]
        masking = self.masking
        if where.ndim < pred.ndim and masking is not None and masking.rows:
            where = xp.expand_dims(where, axis=-1)  # a mask of rows
        where = xp.astype(where, xp.bool) if where.dtype != xp.bool else where
        where = xp.broadcast_to(where, tuple(pred.shape))
        if masking is None:
            if self.spec.elementwise and not self.consumes_last_axis:
                return inputs, where
            raise ParameterError(f"{self.spec.name}: where= (a mask inside a row) is not expressible by this spec")
        out = list(inputs)
        for k, (x, inp) in enumerate(zip(inputs, self.spec.inputs, strict=True)):
            rule = masking.fill.get(inp.name)
            if rule is None or x is None or tuple(x.shape) != tuple(pred.shape):
                continue
            if rule.startswith("log:"):
                rule = "lowest" if self.params.get(rule[4:]) else "zero"
            if rule == "zero":
                out[k] = xp.where(where, x, xp.zeros_like(x))
            else:  # "lowest": far below every kept value, finite so that 0 * it stays 0
                out[k] = xp.where(where, x, xp.full_like(x, float(xp.finfo(x.dtype).min) / 4))
        return tuple(out), xp.any(where, axis=-1)

    def weigh_items(self, xp: Any, inputs: tuple[Any, ...], weights: Any) -> tuple[tuple[Any, ...], bool]:
        """Per-item weights (the prediction's shape; Optax's ranking ``weights=``) multiplied into the
        input the spec's :class:`~lossbridge.spec.Masking` names; ``(inputs, False)`` when the spec
        has no per-item weights (then they are per-value sample weights)."""
        name = self.masking.item_weights if self.masking is not None else None
        if name is None:
            return inputs, False
        k = next(k for k, i in enumerate(self.spec.inputs) if i.name == name)
        out = list(inputs)
        out[k] = inputs[k] * xp.astype(weights, inputs[k].dtype)
        return tuple(out), True

    # -- values -----------------------------------------------------------------------------------
    def spec_params(self) -> dict[str, Any]:
        """The keyword arguments of the spec's ``fn`` and ``vjp``: its parameters, plus the class
        weights when the function takes them (torch weights label smoothing class by class)."""
        params = dict(self.params)
        if self.reduction == "mean" and self.rule.mean_params:  # the framework's mean implies them (torch CTC)
            params.update(self.rule.mean_params)
        if self.class_weight is not None and _takes(self.spec.fn, "class_weight"):
            params["class_weight"] = self.class_weight
        return params

    def values(self, xp: Any, *inputs: Any) -> Any:
        """The spec's unreduced values for already-prepared inputs."""
        assert self.spec.fn is not None  # validated at registration
        return self.spec.fn(*inputs, xp=xp, **self.spec_params())

    def reduction_terms(self, xp: Any, prepared: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``prepared`` (from :meth:`prepare`) with ignored labels replaced, and the keyword arguments of
        :func:`~lossbridge.reduction.reduce_loss` and :func:`~lossbridge.reduction.cotangent` for an
        unweighted call (class weights and the ignored-label mask included): what :meth:`evaluate`
        reduces with, for a backend that folds the reduction into its own gradient mechanism."""
        prepared, weights = self._targets_and_weights(xp, prepared)
        return prepared, self._reduce_kwargs(None, weights)

    def _reduce_kwargs(self, sample_weight: Any | None, weights: dict[str, Any | None]) -> dict[str, Any]:
        return {
            "reduction": self.reduction,
            "rule": self.rule,
            "elementwise": self.spec.elementwise,
            "sample_weight": sample_weight,
            **weights,
        }

    def _weight(self, xp: Any, sample_weight: Any | None, pred_ndim: int, values_ndim: int | None = None) -> Any | None:
        if sample_weight is None:
            return None
        weight = sample_weight if hasattr(sample_weight, "dtype") else xp.asarray(sample_weight)
        return prepare_weight(
            xp, self.spec, weight, pred_ndim, rules=self.rules, feature_mean=self.rule.feature_mean,
            values_ndim=values_ndim,
        )

    def _spread(self, xp: Any, values: Any, weight: Any | None) -> Any:
        """Keras broadcasts values with fewer axes than ``sample_weight`` (a scalar Dice) against it."""
        if weight is None or not self.rules.broadcast_weights or weight.ndim <= values.ndim:
            return values
        return values * xp.ones_like(weight, dtype=values.dtype)  # also when an axis is unknown (traced)

    def evaluate(
        self,
        xp: Any,
        *inputs: Any,
        sample_weight: Any | None = None,
        check_values: bool = True,
        wrap: Callable[[BoundLoss], Callable[..., Any]] | None = None,
        keep: Any | None = None,
    ) -> Any:
        """The reduced loss of ``inputs`` (spec order), in the convention's result dtype.

        ``keep`` (from :meth:`mask_inputs`) is a mask of the values to keep: the others are 0, count
        for nothing in a mean, and a mean of no kept value is 0 (Optax's ``where=``).

        ``wrap(bound)`` gives the function computing the spec's values on prepared inputs with the
        backend's own gradient mechanism around the spec's one gradient (a
        ``torch.autograd.Function``, ``tf.custom_gradient``, ``jax.custom_jvp``); without it the
        values are computed directly (NumPy, or autodiff of ``fn``).
        """
        bound = self.select(xp, inputs)
        prepared, layout = bound.prepare(xp, inputs, check_values=check_values)
        pred = prepared[next(k for k, i in enumerate(bound.spec.inputs) if i.differentiable)]
        prepared, weights = bound._targets_and_weights(xp, prepared)
        values = wrap(bound)(*prepared) if wrap is not None else bound.values(xp, *prepared)
        weight = bound._weight(xp, sample_weight, pred.ndim, values.ndim)
        values = bound._spread(xp, values, weight)
        if keep is not None:
            reduced = bound._reduce_kept(xp, values, keep, weight, weights)
        else:
            reduced = reduce_loss(values, xp=xp, **bound._reduce_kwargs(weight, weights))
        return reduced if layout.result_dtype == dtype_name(reduced) else xp.astype(
            reduced, getattr(xp, layout.result_dtype)
        )

    def _reduce_kept(self, xp: Any, values: Any, keep: Any, weight: Any | None, weights: dict[str, Any | None]) -> Any:
        """The shared reduction of ``values`` with only the ``keep`` values counted; a mean of none is 0."""
        if tuple(keep.shape) != tuple(values.shape):
            keep = xp.broadcast_to(keep, tuple(values.shape))
        values = xp.where(keep, values, xp.zeros_like(values))
        kept = xp.astype(keep, values.dtype)
        if weights["mask"] is not None:
            kept = kept * xp.astype(weights["mask"], values.dtype)
        kwargs = self._reduce_kwargs(weight, {**weights, "mask": kept})
        if kwargs["reduction"] != "mean":
            return reduce_loss(values, xp=xp, **kwargs)
        total = reduce_loss(values, xp=xp, **{**kwargs, "reduction": "sum"})
        by_weights = self.rule.normalize_by == "weights" and (weight is not None or weights["term_weight"] is not None)
        count = kwargs if by_weights else {**kwargs, "sample_weight": None, "term_weight": None}
        den = reduce_loss(xp.ones_like(values), xp=xp, **{**count, "reduction": "sum"})
        some = den > 0
        return xp.where(some, total / xp.where(some, den, xp.ones_like(den)), xp.zeros_like(total))

    def __call__(self, xp: Any, *inputs: Any, sample_weight: Any | None = None, check_values: bool = True) -> Any:
        """The reduced loss of ``inputs`` (in spec order), computed directly."""
        return self.evaluate(xp, *inputs, sample_weight=sample_weight, check_values=check_values)

    def value_and_grad(
        self, xp: Any, *inputs: Any, sample_weight: Any | None = None, check_values: bool = True
    ) -> tuple[Any, tuple[Any, ...]]:
        """The reduced loss and the spec's analytic gradient for each differentiable input.

        Gradients come back in the caller's layout (class axis where it was) and the inputs' dtypes.
        """
        bound = self.select(xp, inputs)
        if bound.spec.vjp is None:
            raise NotImplementedError(f"{bound.spec.name}: the spec declares no analytic gradient (vjp)")
        prepared, layout = bound.prepare(xp, inputs, check_values=check_values)
        pred = prepared[next(k for k, i in enumerate(bound.spec.inputs) if i.differentiable)]
        prepared, weights = bound._targets_and_weights(xp, prepared)
        own = bound.values(xp, *prepared)
        weight = bound._weight(xp, sample_weight, pred.ndim, own.ndim)
        values = bound._spread(xp, own, weight)
        kwargs = bound._reduce_kwargs(weight, weights)
        reduced = reduce_loss(values, xp=xp, **kwargs)
        cot = cotangent(values, xp=xp, **kwargs)
        if values.ndim > own.ndim:  # undo the spread: sum over the axes it added
            cot = xp.sum(cot, axis=tuple(range(values.ndim - own.ndim)))
        grads = list(bound.spec.vjp(*prepared, cot, xp=xp, **bound.spec_params()))
        positions = [k for k, i in enumerate(bound.spec.inputs) if i.differentiable]
        for n, k in enumerate(positions):
            g = layout.restore(xp, k, grads[n])  # class axis back at 1, time-major back to (T, N, ...)
            like = inputs[k]
            grads[n] = xp.astype(g, like.dtype) if xp.isdtype(like.dtype, "real floating") else g
        if layout.result_dtype != dtype_name(reduced):
            reduced = xp.astype(reduced, getattr(xp, layout.result_dtype))
        return reduced, tuple(grads)


@dataclass(frozen=True)
class BoundOptimizer:
    """An optimizer spec with resolved hyperparameters."""

    spec: OptimizerSpec
    hyper: Mapping[str, Any]
    convention: Convention | None = None

    @property
    def static(self) -> dict[str, Any]:
        """The structural hyperparameters (formula variants, slots)."""
        return {p.name: self.hyper[p.name] for p in self.spec.params if p.static}

    def with_hyper(self, **changes: Any) -> BoundOptimizer:
        """A copy with some hyperparameters replaced (validated)."""
        merged = {**self.hyper, **changes}
        hyper = validate_params(self.spec.params, merged, owner=self.spec.name)
        return BoundOptimizer(self.spec, hyper, self.convention)

    def _rounded(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        dtype = self.convention.hyper_dtype if self.convention else None
        if dtype is None:
            return dict(hyper)
        cast = np.dtype(dtype).type
        names = self.convention.rounded if self.convention else None
        return {
            k: float(cast(v))
            if isinstance(v, float) and not self.spec.param(k).static and (names is None or k in names)
            else v
            for k, v in hyper.items()
        }

    def init(self, param: Any, *, xp: Any) -> dict[str, Any]:
        """Fresh state slots for one parameter tensor."""
        assert self.spec.init is not None  # validated at registration
        state = self.spec.init(param, xp=xp, **self._rounded(self.hyper))
        undeclared = sorted(set(state) - set(self.spec.slots)) if self.spec.slots else []
        if undeclared:
            raise SpecError(f"{self.spec.name}: init returned undeclared state slot(s) {undeclared}; "
                            f"declared: {list(self.spec.slots)}")
        return state

    def update(
        self, param: Any, grad: Any, state: Mapping[str, Any], *, step: Any, xp: Any, **hyper: Any
    ) -> tuple[Any, dict[str, Any]]:
        """``(delta, new_state)`` for one tensor; ``hyper`` overrides (e.g. a scheduled ``lr``)."""
        if self.spec.global_slots and "glob" not in hyper:
            raise BackendError(
                f"{self.spec.name}: this backend does not support optimizers with global state "
                f"(OptimizerSpec.global_slots {list(self.spec.global_slots)}: a sum over all parameters); "
                "it must run BoundOptimizer.update_all over all tensors at once"
            )
        self._check_needs(hyper)
        values = self._rounded({**self.hyper, **hyper})
        assert self.spec.update is not None  # validated at registration
        return self.spec.update(param, grad, dict(state), step=step, xp=xp, **values)

    def _check_needs(self, given: Mapping[str, Any]) -> None:
        """Refuse a step without the spec's ``needs`` (a backend that does not supply them)."""
        missing = [n for n in getattr(self.spec, "needs", ()) if n not in given]
        if missing:
            raise BackendError(
                f"{self.spec.name}: its step needs {', '.join(missing)} besides the gradient (OptimizerSpec.needs) "
                "and this backend does not supply it; use the numpy, torch or jax backend"
            )

    def init_global(self, *, dtype: Any, xp: Any) -> dict[str, Any]:
        """Fresh global state (0-d arrays of ``dtype``) of a spec with ``global_slots``."""
        assert self.spec.init_global is not None
        glob = self.spec.init_global(dtype=dtype, xp=xp, **self._rounded(self.hyper))
        if set(glob) != set(self.spec.global_slots):
            raise SpecError(f"{self.spec.name}: init_global returned {sorted(glob)}; "
                            f"declared global_slots: {list(self.spec.global_slots)}")
        return dict(glob)

    def update_all(
        self,
        params: Sequence[Any],
        grads: Sequence[Any],
        states: Sequence[Mapping[str, Any]],
        glob: Mapping[str, Any],
        *,
        steps: Sequence[Any],
        xp: Any,
        **hyper: Any,
    ) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
        """One step of a spec with ``global_slots`` over ALL tensors (in this fixed order).

        Sums each entry of ``partials`` over the tensors (the only cross-tensor operation), runs
        ``combine`` for the new global state, then ``update`` per tensor with the old and new one.
        Returns ``(deltas, new_states, new_glob)``.
        """
        assert self.spec.partials is not None and self.spec.combine is not None and self.spec.update is not None
        if not params:
            return [], [], dict(glob)
        self._check_needs(hyper)
        values = self._rounded({**self.hyper, **hyper})
        glob = dict(glob)
        sums: dict[str, Any] = {}
        for p, g, s, step in zip(params, grads, states, steps, strict=True):
            for name, value in self.spec.partials(p, g, dict(s), glob, step=step, xp=xp, **values).items():
                sums[name] = value if name not in sums else sums[name] + value
        new_glob = dict(self.spec.combine(sums, glob, step=steps[0] if steps else None, xp=xp, **values))
        if set(new_glob) != set(self.spec.global_slots):
            raise SpecError(f"{self.spec.name}: combine returned {sorted(new_glob)}; "
                            f"declared global_slots: {list(self.spec.global_slots)}")
        deltas, new_states = [], []
        for p, g, s, step in zip(params, grads, states, steps, strict=True):
            delta, new = self.spec.update(p, g, dict(s), step=step, xp=xp, glob=glob, new_glob=new_glob, **values)
            deltas.append(delta)
            new_states.append(new)
        return deltas, new_states, new_glob


@dataclass(frozen=True)
class BoundSchedule:
    """A schedule spec with resolved parameters: ``bound(xp, step)`` is the value at ``step``."""

    spec: ScheduleSpec
    params: Mapping[str, Any]
    convention: Convention | None = None

    def __call__(self, xp: Any, step: Any) -> Any:
        """The scheduled value after ``step`` updates (an array of a floating dtype)."""
        assert self.spec.fn is not None  # validated at registration
        return self.spec.fn(step, xp=xp, **self.params)

    def with_params(self, **changes: Any) -> BoundSchedule:
        """A copy with some parameters replaced (validated)."""
        merged = validate_params(self.spec.params, {**self.params, **changes}, owner=self.spec.name)
        return BoundSchedule(self.spec, merged, self.convention)


@overload
def bind(spec: LossSpec, *, convention: str | None = None, params: Mapping[str, Any] | None = None) -> BoundLoss: ...
@overload
def bind(
    spec: OptimizerSpec, *, convention: str | None = None, params: Mapping[str, Any] | None = None
) -> BoundOptimizer: ...
@overload
def bind(
    spec: ScheduleSpec, *, convention: str | None = None, params: Mapping[str, Any] | None = None
) -> BoundSchedule: ...
@overload
def bind(
    spec: LossSpec | OptimizerSpec | ScheduleSpec,
    *,
    convention: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> BoundLoss | BoundOptimizer | BoundSchedule: ...


def bind(
    spec: LossSpec | OptimizerSpec | ScheduleSpec,
    *,
    convention: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> BoundLoss | BoundOptimizer | BoundSchedule:
    """Resolve spec defaults, then the convention's values, then the caller's ``params``."""
    conv = resolve_convention(spec, convention)
    given = {**(conv.params if conv else {}), **(params or {})}
    if isinstance(spec, ScheduleSpec):
        return BoundSchedule(spec, validate_params(spec.params, given, owner=spec.name), conv)
    if isinstance(spec, OptimizerSpec):
        return BoundOptimizer(spec, validate_params(spec.params, given, owner=spec.name), conv)
    if conv is not None and conv.framework == "keras" and "reduction" in (params or {}) and given["reduction"] is None:
        given["reduction"] = "none"  # Keras's reduction=None means no reduction
    resolved = validate_params(spec.all_params(), given, owner=spec.name)
    rule = conv.reduction if conv is not None and conv.reduction is not None else LOSSBRIDGE_REDUCTION
    shared = {k: resolved.pop(k) for k in _SHARED if k in resolved}
    reduction, rule = _reduction(shared.get("reduction"), rule)
    return BoundLoss(
        spec,
        resolved,
        reduction,
        rule,
        class_weight=shared.get("class_weight"),
        ignore_index=shared.get("ignore_index"),
        convention=conv,
        dtype=shared.get("dtype"),
    )


#: Reduction names of the frameworks that mean a lossbridge reduction with another normalization.
_REDUCTION_NAMES: Mapping[str, tuple[str, Literal["weights", "count"] | None]] = {
    "sum_over_batch_size": ("mean", "count"),  # Keras: divide by the number of terms
    "mean_with_sample_weight": ("mean", "weights"),  # Keras: divide by the summed weights
}


def _reduction(name: str | None, rule: Reduction) -> tuple[str, Reduction]:
    """The shared layer's reduction and rule for a reduction name (``None``: the rule's default)."""
    if name is None:
        return rule.default, rule
    if name in _REDUCTION_NAMES:
        base, normalize_by = _REDUCTION_NAMES[name]
        return base, replace(rule, normalize_by=normalize_by) if normalize_by else rule
    return name, rule


def _takes(fn: Any, name: str) -> bool:
    """Whether ``fn`` has a parameter called ``name``."""
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _names(ours: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The spec parameter names of a ``Convention.kwargs`` entry (a leading ``-`` marks a negation)."""
    return (ours.removeprefix("-"),) if isinstance(ours, str) else tuple(ours)


def _negated(value: Any) -> Any:
    """The value of a keyword whose ``Convention.kwargs`` entry is ``"-name"`` (Optax's adafactor
    ``decay_rate`` is ``-beta2_decay``): a number or array negated, a schedule wrapped, None kept."""
    if value is None or isinstance(value, bool):
        return value
    if callable(value) and not hasattr(value, "shape"):
        return lambda *args, **kw: -value(*args, **kw)
    return -value


def translate_kwargs(
    spec: LossSpec | OptimizerSpec | ScheduleSpec, convention: str | None, params: Mapping[str, Any]
) -> dict[str, Any]:
    """``params`` with a framework's keyword names mapped onto the spec's parameter names.

    Under a convention, that framework's names (:data:`~lossbridge.conventions.FRAMEWORK_KWARGS` and
    the convention's own ``kwargs``); under ``None``, the framework-wide names of torch, Keras and
    Optax (``betas``, ``learning_rate``, ``epsilon``). A spec parameter of the same name always wins;
    giving both names is an error.
    """
    have = {p.name for p in spec.all_params()}
    frameworks = [convention.lower()] if convention else ["torch", "keras", "optax"]
    table: dict[str, str | tuple[str, ...]] = {}
    for fw in frameworks:
        for native, ours in FRAMEWORK_KWARGS.get(fw, {}).items():
            if native not in have and set(_names(ours)) <= have:
                table.setdefault(native, ours)
    conv = spec.conventions.get(convention.lower()) if convention else None
    if conv is not None:  # the convention's own renames; over a spec's own name only as a swap
        for native, ours in conv.kwargs.items():
            swap = native in have and all(t in conv.kwargs for t in _names(ours))
            if set(_names(ours)) <= have and (native not in have or swap):
                table[native] = ours
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for native, value in params.items():
        ours = table.get(native, native)
        targets = _names(ours)
        if len(targets) > 1 and isinstance(value, Mapping) and len(targets) == 2:
            value = (tuple(value.keys()), tuple(value.values()))  # Optax's {boundary: scale}
        if len(targets) > 1:
            if not isinstance(value, (tuple, list)) or len(value) != len(targets):
                raise ParameterError(
                    f"{spec.name}: parameter {native!r} expects a pair ({', '.join(targets)}), got {value!r}"
                )
            values = tuple(value)
        else:
            values = (_negated(value),) if isinstance(ours, str) and ours.startswith("-") else (value,)
        for target, item in zip(targets, values, strict=True):
            if target in out:
                raise ParameterError(f"{spec.name}: give either {given_as[target]!r} or {native!r}, not both")
            out[target], given_as[target] = item, native
    return out
