"""A spec with its convention and parameters resolved: what every backend adapts.

:class:`BoundLoss` and :class:`BoundOptimizer` are framework-free. A backend converts its own
arrays, picks the Array API namespace ``xp`` and calls these; it never re-derives the math.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from lossbridge._errors import ParameterError
from lossbridge._validation import (
    check_floating,
    check_integer,
    check_min_ndim,
    check_nonempty,
    check_shape,
    dtype_name,
)
from lossbridge.conventions import LOSSBRIDGE_REDUCTION, Convention, Reduction
from lossbridge.reduction import cotangent, reduce_loss
from lossbridge.spec._domain import domain
from lossbridge.spec._model import LossSpec, OptimizerSpec
from lossbridge.spec._params import validate_params

__all__ = ["BoundLoss", "BoundOptimizer", "bind", "resolve_convention"]

_LOW_PRECISION = ("float16", "bfloat16")
_SHARED = ("reduction", "class_weight", "ignore_index")


def resolve_convention(spec: LossSpec | OptimizerSpec, convention: str | None) -> Convention | None:
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
    """A loss spec with resolved parameters, reduction rule and weighting."""

    spec: LossSpec
    params: Mapping[str, Any]
    reduction: str
    rule: Reduction
    class_weight: Any | None = None
    ignore_index: int | None = None
    convention: Convention | None = None

    # -- inputs ---------------------------------------------------------------------------------
    def prepare(self, xp: Any, inputs: tuple[Any, ...], *, check_values: bool = True) -> tuple[Any, ...]:
        """Check ``inputs`` (in spec order) and cast them to the dtype the spec computes in."""
        spec = self.spec
        if len(inputs) != len(spec.inputs):
            names = ", ".join(i.name for i in spec.inputs)
            raise ParameterError(f"{spec.name}: expected {len(spec.inputs)} inputs ({names}), got {len(inputs)}")
        pred_index = next(k for k, i in enumerate(spec.inputs) if i.differentiable)
        pred = inputs[pred_index]
        pname = spec.inputs[pred_index].name
        check_floating(xp, pred, pname)
        check_min_ndim(pred, spec.min_ndim, pname, "the last axis holds the classes" if spec.min_ndim > 1 else "")
        check_nonempty(pred, pname)
        dtype = xp.float32 if dtype_name(pred) in _LOW_PRECISION else pred.dtype
        out = []
        for decl, x in zip(spec.inputs, inputs):
            dom = domain(decl.domain_for(self.params))
            expected = tuple(pred.shape) if dom.shape == "same" else tuple(pred.shape[:-1])
            check_shape(
                x,
                expected,
                decl.name,
                relation=f"the shape of {pname}" if dom.shape == "same" else f"{pname}'s shape without its class axis",
            )
            if dom.integer:
                check_integer(xp, x, decl.name)
            elif decl.differentiable:
                check_floating(xp, x, decl.name)
            if check_values and dom.check is not None:
                ignore = self.ignore_index
                checked = x if ignore is None or not dom.integer else xp.where(x == ignore, xp.zeros_like(x), x)
                dom.check(xp, checked, decl.name, tuple(pred.shape))
            out.append(x if dom.integer else xp.astype(x, dtype))
        return tuple(out)

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

    # -- values -----------------------------------------------------------------------------------
    def values(self, xp: Any, *inputs: Any) -> Any:
        """The spec's unreduced values for already-prepared inputs."""
        assert self.spec.fn is not None  # validated at registration
        return self.spec.fn(*inputs, xp=xp, **self.params)

    def _reduce_kwargs(self, sample_weight: Any | None, weights: dict[str, Any | None]) -> dict[str, Any]:
        return {
            "reduction": self.reduction,
            "rule": self.rule,
            "elementwise": self.spec.elementwise,
            "sample_weight": sample_weight,
            **weights,
        }

    def __call__(self, xp: Any, *inputs: Any, sample_weight: Any | None = None, check_values: bool = True) -> Any:
        """The reduced loss of ``inputs`` (in spec order)."""
        prepared = self.prepare(xp, inputs, check_values=check_values)
        prepared, weights = self._targets_and_weights(xp, prepared)
        values = self.values(xp, *prepared)
        return reduce_loss(values, xp=xp, **self._reduce_kwargs(sample_weight, weights))

    def value_and_grad(
        self, xp: Any, *inputs: Any, sample_weight: Any | None = None, check_values: bool = True
    ) -> tuple[Any, tuple[Any, ...]]:
        """The reduced loss and its analytic gradient for each differentiable input."""
        if self.spec.vjp is None:
            raise NotImplementedError(f"{self.spec.name}: the spec declares no analytic gradient (vjp)")
        prepared = self.prepare(xp, inputs, check_values=check_values)
        prepared, weights = self._targets_and_weights(xp, prepared)
        values = self.values(xp, *prepared)
        kwargs = self._reduce_kwargs(sample_weight, weights)
        reduced = reduce_loss(values, xp=xp, **kwargs)
        cot = cotangent(values, xp=xp, **kwargs)
        grads = self.spec.vjp(*prepared, cot, xp=xp, **self.params)
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
        return self.spec.init(param, xp=xp, **self.hyper)

    def update(
        self, param: Any, grad: Any, state: Mapping[str, Any], *, step: Any, xp: Any, **hyper: Any
    ) -> tuple[Any, dict[str, Any]]:
        """``(delta, new_state)`` for one tensor; ``hyper`` overrides (e.g. a scheduled ``lr``)."""
        values = self._rounded({**self.hyper, **hyper})
        assert self.spec.update is not None  # validated at registration
        return self.spec.update(param, grad, dict(state), step=step, xp=xp, **values)


@overload
def bind(spec: LossSpec, *, convention: str | None = None, params: Mapping[str, Any] | None = None) -> BoundLoss: ...
@overload
def bind(
    spec: OptimizerSpec, *, convention: str | None = None, params: Mapping[str, Any] | None = None
) -> BoundOptimizer: ...
@overload
def bind(
    spec: LossSpec | OptimizerSpec, *, convention: str | None = None, params: Mapping[str, Any] | None = None
) -> BoundLoss | BoundOptimizer: ...


def bind(
    spec: LossSpec | OptimizerSpec, *, convention: str | None = None, params: Mapping[str, Any] | None = None
) -> BoundLoss | BoundOptimizer:
    """Resolve spec defaults, then the convention's values, then the caller's ``params``."""
    conv = resolve_convention(spec, convention)
    given = {**(conv.params if conv else {}), **(params or {})}
    if isinstance(spec, OptimizerSpec):
        return BoundOptimizer(spec, validate_params(spec.params, given, owner=spec.name), conv)
    resolved = validate_params(spec.all_params(), given, owner=spec.name)
    rule = conv.reduction if conv is not None and conv.reduction is not None else LOSSBRIDGE_REDUCTION
    shared = {k: resolved.pop(k) for k in _SHARED if k in resolved}
    reduction = shared.get("reduction") or rule.default
    return BoundLoss(
        spec,
        resolved,
        reduction,
        rule,
        class_weight=shared.get("class_weight"),
        ignore_index=shared.get("ignore_index"),
        convention=conv,
    )
