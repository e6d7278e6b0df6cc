"""Losses as ``torch.nn.Module``: the spec function, differentiated by torch autograd.

This module imports torch at the top; the backend imports it lazily.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from lossbridge import InputError, ParameterError
from lossbridge._bound import BoundLoss
from lossbridge.reduction import REDUCTIONS
from lossbridge_torch._namespace import namespace

__all__ = ["TorchLoss", "torch_argument_order"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_CLASS_DOMAINS = ("class_index", "one_hot", "simplex")


def torch_argument_order(bound: BoundLoss) -> tuple[int, ...]:
    """Spec input index of each positional argument: prediction first, then target (2 inputs)."""
    roles = [i.role for i in bound.spec.inputs]
    if sorted(roles) == ["prediction", "target"]:
        return (roles.index("prediction"), roles.index("target"))
    return tuple(range(len(roles)))


def _class_axis_first(bound: BoundLoss) -> bool:
    """torch's ``(N, C, d1, ...)`` layout applies: a class-axis loss under the torch convention."""
    conv = bound.convention
    if conv is None or conv.framework != "torch" or bound.spec.elementwise:
        return False
    domains = [i.domain_for(bound.params) for i in bound.spec.inputs]
    return any(d in _CLASS_DOMAINS for d in domains)


class TorchLoss(torch.nn.Module):
    """A lossbridge loss as a ``torch.nn.Module``; call it as ``loss(input, target)``.

    Three-input losses take the spec's order. ``sample_weight`` (optional keyword) weights each
    sample; ``weight`` (class weights) is a buffer, so ``.to(device)`` moves it.
    """

    def __init__(self, bound: BoundLoss) -> None:
        super().__init__()
        weight = bound.class_weight
        if weight is not None and not isinstance(weight, torch.Tensor):
            weight = torch.as_tensor(weight, dtype=torch.get_default_dtype())
        self.register_buffer("weight", weight)
        self._bound = dataclasses.replace(bound, class_weight=weight)
        self._order = torch_argument_order(bound)
        self._channels_first = _class_axis_first(bound)
        #: Where the class axis of inputs with more than two dimensions is: 1 (torch's
        #: ``(N, C, d1, ...)``, under the torch convention) or -1 (the spec's layout).
        self.class_axis = 1 if self._channels_first else -1
        self.__doc__ = bound.spec.summary

    # -- torch-style attributes ---------------------------------------------------------------------
    @property
    def bound(self) -> BoundLoss:
        """The resolved spec this module computes."""
        return self._bound

    @property
    def spec(self) -> Any:
        """The spec declaration (formula, parameters, references)."""
        return self._bound.spec

    @property
    def reduction(self) -> str:
        """``"mean"``, ``"sum"`` or ``"none"``; assignable like torch's ``loss.reduction``."""
        return self._bound.reduction

    @reduction.setter
    def reduction(self, value: str) -> None:
        if value not in REDUCTIONS:
            raise ParameterError(
                f"{self.spec.name}: parameter 'reduction' expects one of {REDUCTIONS}, got {value!r}"
            )
        self._bound = dataclasses.replace(self._bound, reduction=value)

    @property
    def ignore_index(self) -> int | None:
        """The ignored label, or None."""
        return self._bound.ignore_index

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> TorchLoss:
        super()._apply(fn, *args, **kwargs)
        self._bound = dataclasses.replace(self._bound, class_weight=self.weight)
        return self

    # -- the computation ----------------------------------------------------------------------------
    def _spec_inputs(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        spec = self.spec
        if len(args) != len(spec.inputs):
            names = ", ".join(spec.inputs[k].name for k in self._order)
            raise TypeError(f"{spec.name}: expected {len(spec.inputs)} tensors ({names}), got {len(args)}")
        ordered: list[Any] = [None] * len(args)
        for position, (k, x) in enumerate(zip(self._order, args, strict=True)):
            ordered[k] = _tensor(x, spec.inputs[k].name, position)
        if self._channels_first:
            ordered = [self._move_class_axis(k, x) for k, x in enumerate(ordered)]
        return tuple(ordered)

    def has_class_axis(self, k: int) -> bool:
        """Whether spec input ``k`` carries the class axis (the prediction, probability targets)."""
        decl = self.spec.inputs[k]
        return decl.differentiable or decl.domain_for(self._bound.params) in ("one_hot", "simplex")

    def _move_class_axis(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return torch.movedim(x, 1, -1) if x.ndim > 2 and self.has_class_axis(k) else x

    def forward(self, *args: Any, sample_weight: Any | None = None) -> torch.Tensor:
        """The reduced loss (prediction first, then target; three inputs in the spec's order)."""
        inputs = self._spec_inputs(args)
        if sample_weight is not None:
            sample_weight = _tensor(sample_weight, "sample_weight", None)
        pred = inputs[self._order[0]]
        check = not torch.compiler.is_compiling()
        value = self._bound(namespace(), *inputs, sample_weight=sample_weight, check_values=check)
        if pred.dtype in _LOW_PRECISION:
            value = value.to(pred.dtype)
        return value

    def extra_repr(self) -> str:
        conv = self._bound.convention.framework if self._bound.convention else None
        return f"spec={self.spec.name!r}, convention={conv!r}, reduction={self.reduction!r}"


def _tensor(x: Any, name: str, position: int | None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    where = f" (argument {position + 1})" if position is not None else ""
    kind = f"{type(x).__module__}.{type(x).__name__}"
    raise InputError(
        f"{name}{where}: expected a torch.Tensor for the torch backend, got {kind}; inputs of two "
        "frameworks cannot be mixed in one call (convert with torch.as_tensor)"
    )
