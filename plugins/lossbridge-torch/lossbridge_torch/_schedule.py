"""Schedules as ``torch.optim.lr_scheduler.LRScheduler`` subclasses.

``lossbridge.get("cosine_decay", backend="torch", convention="torch", decay_steps=100)`` returns a
class; ``Sched(optimizer, **overrides)`` makes the scheduler. Call ``scheduler.step()`` after each
``optimizer.step()``: ``last_epoch`` is then the number of updates taken, the spec's ``step``.
A spec parameter ``lr`` of ``None`` (the torch conventions) is each group's initial lr
(``base_lrs``), so the schedule multiplies it as torch's own schedulers do. Specs with a
``cycle_momentum`` parameter set drive ``momentum`` (or ``betas[0]``) too. Keyword arguments take
torch's names (``T_max``, ``milestones``...) through the convention's data. ``SequentialLR`` and
``ChainedScheduler`` (the ``join_schedules`` / ``chained_schedules`` specs) take lossbridge schedulers or
torch's own closed-form schedulers (``_READ_BACK``): a torch scheduler is read back into its spec from
its attributes (its constructor arguments), and the composition is computed in closed form from those
specs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

import lossbridge
from lossbridge.bound import BoundSchedule, translate_kwargs
from lossbridge.errors import ParameterError

__all__ = ["ChainedLRScheduler", "LossbridgeLRScheduler", "SequentialLRScheduler", "scheduler_class"]


#: torch schedulers that keep every constructor argument as an attribute of the same name.
_READ_BACK = (
    "ConstantLR", "LinearLR", "StepLR", "MultiStepLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
)


def native_params(bound: BoundSchedule, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` under torch's keyword names (``T_max``, ``milestones``...) as the spec's, children as schedules."""
    conv = bound.convention.framework if bound.convention else None
    out = translate_kwargs(bound.spec, conv, params)
    if "schedules" in out:
        out["schedules"] = [_as_schedule(child) for child in out["schedules"]]
    return out


def _as_schedule(child: Any) -> Any:
    """A child of SequentialLR / ChainedScheduler: a lossbridge scheduler as is, a torch one read back."""
    if isinstance(child, LossbridgeLRScheduler) or not isinstance(child, LRScheduler):
        return child
    name = type(child).__name__
    if name not in _READ_BACK:
        raise ParameterError(
            f"{name} cannot be read back into a lossbridge schedule (only {', '.join(_READ_BACK)}); pass "
            f"lossbridge's own scheduler instead, e.g. lossbridge.get({name!r}, backend='torch', convention='torch')"
        )
    spec = lossbridge.spec(name, convention="torch")
    conv = spec.conventions["torch"]
    wanted = (set(conv.kwargs) | {p.name for p in spec.params}) - {"lr"}
    given = {k: getattr(child, k) for k in sorted(wanted) if hasattr(child, k)}
    if isinstance(given.get("milestones"), Counter):
        given["milestones"] = sorted(given["milestones"].elements())
    return lossbridge.get(name, backend="numpy", convention="torch", **given)


class LossbridgeLRScheduler(LRScheduler):
    """A lossbridge schedule driving a torch optimizer's learning rate (and momentum, if the spec cycles it)."""

    bound: BoundSchedule

    def __init__(self, optimizer: torch.optim.Optimizer, last_epoch: int = -1, **overrides: Any) -> None:
        if overrides:
            self.bound = self.bound.with_params(**native_params(self.bound, overrides))
        self._momentum_key = self._check_momentum(optimizer)
        super().__init__(optimizer, last_epoch)

    def _cycles_momentum(self) -> bool:
        return bool(self.bound.params.get("cycle_momentum", False))

    def _check_momentum(self, optimizer: torch.optim.Optimizer) -> str | None:
        if not self._cycles_momentum():
            return None
        if "betas" in optimizer.defaults:
            return "betas"
        if "momentum" in optimizer.defaults:
            return "momentum"
        if "beta_1" in optimizer.defaults:
            return "beta_1"
        raise ParameterError(
            f"{self.bound.spec.name}: cycle_momentum=True needs an optimizer with 'momentum' or 'betas' "
            f"({type(optimizer).__name__} has neither); pass cycle_momentum=False"
        )

    def _value(self, bound: BoundSchedule) -> float:
        step = torch.tensor(float(self.last_epoch), dtype=torch.float64)
        return float(bound(_xp(), step))

    def _filled(self, base: float) -> BoundSchedule:
        """The schedule with ``lr=None`` (torch's rule) filled with a group's initial lr, cached per value."""
        if self.bound.params.get("lr", 0.0) is not None:
            return self.bound
        cache = self.__dict__.get("_filled_cache")
        if cache is None or cache[0] is not self.bound:
            cache = self.__dict__["_filled_cache"] = (self.bound, {})
        if base not in cache[1]:
            cache[1][base] = self.bound.with_params(lr=base)
        return cache[1][base]

    def get_lr(self) -> list[float]:
        bound = self.bound
        lrs = []
        for base in self.base_lrs:
            lrs.append(self._value(self._filled(float(base))))
        if self._momentum_key is not None:
            momentum = self._value(bound.with_params(quantity="momentum"))
            for group in self.optimizer.param_groups:
                if self._momentum_key == "betas":
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group[self._momentum_key] = momentum
        return lrs

    _get_closed_form_lr = get_lr

    def state_dict(self) -> dict[str, Any]:
        """torch's scheduler state plus the schedule's parameters (plain values)."""
        state = {k: v for k, v in super().state_dict().items() if k not in ("bound", "_filled_cache")}
        state["schedule_params"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.bound.params.items()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        params = state.pop("schedule_params", None)
        super().load_state_dict(state)
        if params is not None:
            self.bound = self.bound.with_params(**params)


def _xp() -> Any:
    from ._namespace import namespace

    return namespace()


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) + "LR"


class ChainedLRScheduler(LossbridgeLRScheduler):
    """torch's ``ChainedScheduler(schedulers, optimizer=None)`` signature: the optimizer is the children's."""

    def __init__(self, schedulers: Any = None, optimizer: Any = None, last_epoch: int = -1, **overrides: Any) -> None:
        if schedulers is not None:
            overrides["schedulers"] = schedulers
        children = overrides.get("schedulers") or overrides.get("schedules") or ()
        if optimizer is None:
            optimizer = next((c.optimizer for c in children if hasattr(c, "optimizer")), None)
        if optimizer is None:
            raise ParameterError(f"{self.bound.spec.name}: give optimizer= (no child scheduler has one)")
        super().__init__(optimizer, last_epoch, **overrides)


class SequentialLRScheduler(LossbridgeLRScheduler):
    """torch's ``SequentialLR(optimizer, schedulers, milestones, last_epoch=-1)`` signature."""

    def __init__(
        self, optimizer: Any, schedulers: Any = None, milestones: Any = None, last_epoch: int = -1, **overrides: Any
    ) -> None:
        given = {"schedulers": schedulers, "milestones": milestones}
        overrides.update({k: v for k, v in given.items() if v is not None})
        super().__init__(optimizer, last_epoch, **overrides)


_SIGNATURES = {"chained_schedules": ChainedLRScheduler, "join_schedules": SequentialLRScheduler}


def scheduler_class(bound: BoundSchedule) -> type[LossbridgeLRScheduler]:
    """A :class:`LossbridgeLRScheduler` subclass bound to ``bound``; instantiate it with an optimizer.

    ``join_schedules`` and ``chained_schedules`` take torch's ``SequentialLR`` / ``ChainedScheduler`` arguments.
    """
    name = _class_name(bound.spec.name)
    doc = f"{bound.spec.summary}\n\n{bound.spec.usage}\n\nFormula: {bound.spec.formula}"
    base = _SIGNATURES.get(bound.spec.name, LossbridgeLRScheduler)
    return type(name, (base,), {"bound": bound, "__doc__": doc, "__module__": __name__})


