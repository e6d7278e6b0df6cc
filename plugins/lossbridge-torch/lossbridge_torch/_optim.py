"""Optimizers as ``torch.optim.Optimizer`` subclasses running the spec's ``update``.

One class per bound spec: ``lossbridge.get("adam", backend="torch")`` returns it, and
``Adam(model.parameters(), lr=...)`` makes an optimizer whose defaults are the bound
hyperparameters. Each step runs, per param group, one of three engines:

* a verified native kernel (:mod:`lossbridge_torch._native`), when the override registered one
  and the group's hyperparameters are ones it computes exactly (``fused=False`` turns it off);
* the spec's update of one tensor compiled with ``torch.compile`` (``compile=True``; dynamic
  shapes, so one graph per parameter rank serves every tensor), falling back to eager if
  compilation fails;
* the spec's update, eagerly, tensor by tensor.

This module imports torch at the top; the backend imports it lazily.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor

from lossbridge import InputError
from lossbridge._bound import BoundOptimizer
from lossbridge.spec._params import validate_params
from lossbridge_torch._names import translate_params
from lossbridge_torch._namespace import namespace

__all__ = ["SpecOptimizer", "optimizer_class"]

_log = logging.getLogger(__name__)
_OPTIONS = ("fused", "compile")
_LOW_PRECISION = (torch.float16, torch.bfloat16)

Slots = dict[str, torch.Tensor]


class SpecOptimizer(torch.optim.Optimizer):
    """Base of the optimizer classes lossbridge makes; see :func:`optimizer_class`.

    Extra options next to the hyperparameters: ``fused`` (``None``/``True``: use a verified native
    kernel where one matches, ``False``: never) and ``compile`` (run the spec's update through
    ``torch.compile``). Both may differ per param group.
    """

    bound: ClassVar[BoundOptimizer]
    native: ClassVar[Any] = None
    _compiled: ClassVar[Callable[..., None] | None] = None

    def __init__(self, params: Iterable[Any], **hyper: Any) -> None:
        options = {"fused": hyper.pop("fused", None), "compile": bool(hyper.pop("compile", False))}
        spec_hyper = translate_params(self.bound.spec, hyper)
        defaults = {**self.bound.with_hyper(**spec_hyper).hyper, **options}
        super().__init__(params, defaults)

    # -- param groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; torch's names (``betas``) are accepted, values are validated."""
        extra = {k: v for k, v in param_group.items() if k != "params" and k not in _OPTIONS}
        group = {"params": param_group["params"], **translate_params(self.bound.spec, extra)}
        group.update({k: param_group[k] for k in _OPTIONS if k in param_group})
        super().add_param_group(group)
        added = self.param_groups[-1]
        names = [p.name for p in self.bound.spec.params]
        given = {k: added[k] for k in names}
        checked = validate_params(self.bound.spec.params, given, owner=self.bound.spec.name)
        added.update(checked)
        for p in added["params"]:
            if not torch.is_floating_point(p):
                raise InputError(
                    f"{self.bound.spec.name}: params: expected floating-point tensors, got dtype {p.dtype}"
                )

    def _hyper(self, group: dict[str, Any]) -> dict[str, Any]:
        return {p.name: group[p.name] for p in self.bound.spec.params}

    # -- stepping -----------------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _collect(self, group: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        params, grads = [], []
        xp = namespace()
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise InputError(
                    f"{self.bound.spec.name}: a parameter of shape {tuple(p.shape)} has a sparse gradient "
                    f"(layout {p.grad.layout}); lossbridge optimizers need dense gradients (use "
                    "sparse=False in nn.Embedding, or torch.optim.SparseAdam)"
                )
            state = self.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state.update(self.bound.with_hyper(**self._hyper(group)).init(p.detach(), xp=xp))
            params.append(p)
            grads.append(p.grad)
        return params, grads

    def _slots(self, p: torch.Tensor) -> Slots:
        return {k: v for k, v in self.state[p].items() if k != "step"}

    def _step_group(self, group: dict[str, Any]) -> None:
        params, grads = self._collect(group)
        if not params:
            return
        hyper = self._hyper(group)
        native = self.native
        if native is not None and group["fused"] is not False and native.accepts(hyper, params):
            native.run(self, params, grads, hyper)
        elif group["compile"]:
            self._compiled_step(params, grads, hyper)
        else:
            self._eager_step(params, grads, hyper)

    def _eager_step(self, params: list[Tensor], grads: list[Tensor], hyper: dict[str, Any]) -> None:
        xp = namespace()
        for p, g in zip(params, grads, strict=True):
            state = self.state[p]
            state["step"] += 1
            step = state["step"].to(_step_dtype(p))
            delta, new = self.bound.update(p, g, self._slots(p), step=step, xp=xp, **hyper)
            p.add_(delta)
            state.update(new)

    def _compiled_step(self, params: list[Tensor], grads: list[Tensor], hyper: dict[str, Any]) -> None:
        cls = type(self)
        if cls._compiled is None:  # one compiled update per optimizer class, shared by its instances
            cls._compiled = torch.compile(_fresh_tensor_update(self.bound), dynamic=True)
        traced: dict[torch.dtype, dict[str, Any]] = {}
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            state = self.state[p]
            state["step"] += 1
            if p.dtype not in traced:
                traced[p.dtype] = _as_tensors(self.bound, hyper, p.dtype)
            try:
                cls._compiled(p, g, self._slots(p), state["step"], traced[p.dtype])
            except Exception as exc:  # compilation failed: the eager loop computes the same update
                _log.warning("lossbridge: torch.compile of %s failed (%s); eager", self.bound.spec.name, exc)
                state["step"] -= 1
                self._eager_step(params[k:], grads[k:], hyper)
                return


def _step_dtype(p: torch.Tensor) -> torch.dtype:
    """The dtype of the step count handed to the spec: the parameter's, float32 for low precision."""
    return torch.float32 if p.dtype in _LOW_PRECISION else p.dtype


def _as_tensors(bound: BoundOptimizer, hyper: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """Non-static float hyperparameters as 0-d tensors, so a changed lr does not recompile.

    Exact zeros stay Python floats: specs skip work for a literal 0 (``is_zero``).
    """
    out = {}
    for name, value in hyper.items():
        param = bound.spec.param(name)
        if not param.static and isinstance(value, float) and value != 0.0:
            value = torch.tensor(value, dtype=dtype)
        out[name] = value
    return out


def _tensor_update(
    p: Tensor, g: Tensor, state: Slots, step: Tensor, hyper: dict[str, Any], bound: Any = None
) -> None:
    """The spec's update of one tensor, written back in place (what ``torch.compile`` fuses)."""
    delta, new = bound.update(p, g, state, step=step.to(_step_dtype(p)), xp=namespace(), **hyper)
    p.add_(delta)
    for key, value in new.items():
        state[key].copy_(value)


def _fresh_tensor_update(bound: BoundOptimizer) -> Callable[..., None]:
    """:func:`_tensor_update` with ``bound`` as its default, as a plain function with its own code object.

    Dynamo caches compiled graphs and counts recompilations per code object; a fresh one per
    optimizer class keeps one optimizer's graphs (one per parameter rank and dtype, shapes are
    dynamic) from counting toward another's limit. (A ``functools.partial`` would be compiled
    through Dynamo's shared wrapper, whose limit every compiled partial shares.)
    """
    code = _tensor_update.__code__.replace(co_name=f"_tensor_update_{bound.spec.name}")
    return types.FunctionType(code, _tensor_update.__globals__, code.co_name, (bound,))


def optimizer_class(bound: BoundOptimizer, native: Any = None) -> type[SpecOptimizer]:
    """A ``torch.optim.Optimizer`` subclass whose defaults are ``bound``'s hyperparameters."""
    name = "".join(part.capitalize() for part in bound.spec.name.split("_"))
    conv = bound.convention.framework if bound.convention else None
    doc = (
        f"{bound.spec.summary}\n\nlossbridge spec {bound.spec.name!r} (convention {conv!r}) as a "
        f"torch.optim.Optimizer. Defaults: {dict(bound.hyper)}.\n\n{bound.spec.formula}"
    )
    attrs = {"bound": bound, "native": native, "__doc__": doc, "__module__": __name__}
    return type(name, (SpecOptimizer,), attrs)

