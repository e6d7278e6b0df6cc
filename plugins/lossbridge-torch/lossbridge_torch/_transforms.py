"""Gradient transforms on torch: objects that rewrite ``p.grad``, and chains before any optimizer.

``lossbridge.get("clip_by_global_norm", backend="torch", convention="torch")`` returns a class (as
for optimizers); ``ClipByGlobalNorm(model.parameters(), max_norm=1.0)`` makes a
:class:`SpecTransform`, a ``torch.optim.Optimizer`` whose ``step()`` replaces every ``p.grad`` (in
place) by the transformed gradient and leaves the parameters alone. Run it before any optimizer's
``step()``, torch's or lossbridge's::

    clip = lossbridge.get("clip_grad_norm_", backend="torch", convention="torch", max_norm=1.0)
    opt = lossbridge.chain(clip, torch.optim.AdamW(model.parameters(), lr=1e-3))
    loss.backward(); opt.step(); opt.zero_grad()

:func:`lossbridge.chain` makes a :class:`TransformChain` (this module's): transform classes are built over the
optimizer's parameters; ``accumulate=k`` averages the gradients of k ``step()`` calls and runs the
transforms and the optimizer on every k-th (Optax's ``MultiSteps``, Keras's
``gradient_accumulation_steps``; call ``zero_grad()`` after every ``step()`` as usual). Param
groups, ``state_dict``/``load_state_dict`` and (with ``chain.optimizer``) LR schedulers work as for
the optimizer. A complex parameter's gradient is transformed as a complex tensor (norms of
:math:`|g|^2`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import torch

from lossbridge import InputError, ParameterError
from lossbridge.bound import BoundOptimizer, translate_kwargs
from lossbridge.spec import validate_params

from ._namespace import namespace

__all__ = ["SpecTransform", "TransformChain", "chain", "transform_class"]

#: accepted and ignored: torch's speed hints (clip_grad_norm_'s ``foreach``) and the implementation flags
#: lossbridge's torch optimizers take, so code that passes them to any lossbridge class keeps working
_HINTS = ("foreach", "fused", "compile", "capturable", "differentiable")


class SpecTransform(torch.optim.Optimizer):
    """Base of the transform classes lossbridge makes; see :func:`transform_class`.

    ``step()`` rewrites the gradients of the parameters it was built over; the parameters are not
    touched. The per-parameter state (an EMA's slot) and the global state (a global norm, under
    ``self.state["global"]``) are saved by ``state_dict()``.
    """

    bound: ClassVar[BoundOptimizer]
    GLOBAL_STATE_KEY: ClassVar[str] = "global"

    def __init__(self, params: Iterable[Any], **hyper: Any) -> None:
        for hint in _HINTS:
            hyper.pop(hint, None)
        spec_hyper = translate_kwargs(self.bound.spec, self._framework(), hyper)
        super().__init__(params, dict(self.bound.with_hyper(**spec_hyper).hyper))

    @classmethod
    def _framework(cls) -> str | None:
        return cls.bound.convention.framework if cls.bound.convention else None

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; the framework's keyword names are accepted, values are validated."""
        extra = {k: v for k, v in param_group.items() if k != "params" and k not in _HINTS}
        group = {"params": param_group["params"], **translate_kwargs(self.bound.spec, self._framework(), extra)}
        super().add_param_group(group)
        added = self.param_groups[-1]
        names = [p.name for p in self.bound.spec.params]
        added.update(validate_params(self.bound.spec.params, {k: added[k] for k in names}, owner=self.bound.spec.name))

    def _hyper(self, group: dict[str, Any]) -> dict[str, Any]:
        return {p.name: group[p.name] for p in self.bound.spec.params}

    def _collect(self, group: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        params, grads = [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise InputError(f"{self.bound.spec.name}: sparse gradients are not supported")
            state = self.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state.update(self.bound.with_hyper(**self._hyper(group)).init(p.detach(), xp=namespace()))
            params.append(p)
            grads.append(p.grad)
        return params, grads

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Replace every ``p.grad`` by the transformed gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            if self.bound.spec.global_slots:
                self._global_step()
            else:
                for group in self.param_groups:
                    self._group_step(group)
        return loss

    def _slots(self, p: torch.Tensor) -> dict[str, Any]:
        return {k: v for k, v in self.state[p].items() if k != "step"}

    def _steps(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        steps = []
        for p in params:
            self.state[p]["step"] += 1
            steps.append(self.state[p]["step"].to(_real_dtype(p)))
        return steps

    def _group_step(self, group: dict[str, Any]) -> None:
        params, grads = self._collect(group)
        xp = namespace()
        bound = self.bound.with_hyper(**self._hyper(group))
        for p, g, step in zip(params, grads, self._steps(params), strict=True):
            new_grad, new = bound.update(p.detach(), g, self._slots(p), step=step, xp=xp)
            g.copy_(new_grad)
            self.state[p].update(new)

    def _global_step(self) -> None:
        name = self.bound.spec.name
        params, grads, hypers = [], [], []
        for group in self.param_groups:
            ps, gs = self._collect(group)
            if ps:
                params += ps
                grads += gs
                hypers.append(self._hyper(group))
        if not params:
            return
        if any(h != hypers[0] for h in hypers[1:]):
            raise InputError(f"{name}: every param group must have the same hyperparameters (one global "
                             f"state for all parameters), got {hypers}")
        xp = namespace()
        bound = self.bound.with_hyper(**hypers[0])
        glob = self.state.get(self.GLOBAL_STATE_KEY)
        if not glob:
            dtype = min((_real_dtype(p) for p in params), key=lambda d: d.itemsize)
            glob = bound.init_global(dtype=dtype, xp=xp)
        steps = self._steps(params)
        slots = [self._slots(p) for p in params]
        outs, news, new_glob = bound.update_all([p.detach() for p in params], grads, slots, glob, steps=steps, xp=xp)
        for p, g, out, new in zip(params, grads, outs, news, strict=True):
            g.copy_(out)
            self.state[p].update(new)
        self.state[self.GLOBAL_STATE_KEY] = {k: v.to(glob[k].dtype) for k, v in new_glob.items()}

    @classmethod
    def __lossbridge_chain__(cls, parts: Sequence[Any], accumulate: int) -> TransformChain:
        return chain(*parts, accumulate=accumulate)


def _real_dtype(p: torch.Tensor) -> torch.dtype:
    dtype = p.real.dtype if p.is_complex() else p.dtype
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def transform_class(bound: BoundOptimizer) -> type[SpecTransform]:
    """A :class:`SpecTransform` subclass whose defaults are ``bound``'s hyperparameters."""
    name = "".join(part.capitalize() for part in bound.spec.name.split("_"))
    conv = bound.convention.framework if bound.convention else None
    doc = (
        f"{bound.spec.summary}\n\nlossbridge gradient transform {bound.spec.name!r} (convention {conv!r}): "
        f"step() rewrites p.grad. Defaults: {dict(bound.hyper)}.\n\n{bound.spec.formula}"
    )
    return type(name, (SpecTransform,), {"bound": bound, "__doc__": doc, "__module__": __name__})


class TransformChain:
    """Transforms, then an optimizer, on the same parameters; see :func:`lossbridge.chain`.

    ``transforms`` are :class:`SpecTransform` instances, ``optimizer`` any ``torch.optim.Optimizer``
    (or ``None``: the chain only rewrites gradients). ``accumulate=k``: see the module docstring.
    """

    def __init__(
        self, transforms: Sequence[SpecTransform], optimizer: torch.optim.Optimizer | None, *, accumulate: int = 1
    ) -> None:
        self.transforms = tuple(transforms)
        self.optimizer = optimizer
        self.accumulate = accumulate
        self._acc: dict[torch.Tensor, torch.Tensor] = {}
        self._mini_step = 0

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's param groups (the first transform's without an optimizer)."""
        owner = self.optimizer if self.optimizer is not None else self.transforms[0]
        return owner.param_groups

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Accumulate (``accumulate > 1``), transform the gradients, step the optimizer; ``closure()``'s value."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.accumulate > 1 and not self._accumulated():
            return loss
        for t in self.transforms:
            t.step()
        if self.optimizer is not None:
            self.optimizer.step()
        return loss

    @torch.no_grad()
    def _accumulated(self) -> bool:
        """Add the gradients to the running mean; on the k-th call put the mean in ``.grad`` (True)."""
        n = self._mini_step
        params = [p for p in self._params() if p.grad is not None]
        for p in params:
            acc = self._acc.get(p)
            if acc is None:
                acc = self._acc[p] = torch.zeros_like(p.grad)
            acc.add_((p.grad - acc) / (n + 1))
        if n + 1 < self.accumulate:
            self._mini_step = n + 1
            return False
        for p in params:
            p.grad.copy_(self._acc[p])
            self._acc[p].zero_()
        self._mini_step = 0
        return True

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients (the optimizer's ``zero_grad``)."""
        owner = self.optimizer if self.optimizer is not None else self.transforms[0]
        owner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The transforms', the optimizer's and the accumulator's state."""
        index = {p: k for k, p in enumerate(self._params())}
        return {
            "transforms": [t.state_dict() for t in self.transforms],
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "accumulate": {"mini_step": self._mini_step,
                           "acc": {index[p]: a.clone() for p, a in self._acc.items() if p in index}},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load what :meth:`state_dict` saved."""
        saved = state_dict.get("transforms", [])
        if len(saved) != len(self.transforms):
            raise InputError(f"chain: the state_dict has {len(saved)} transform(s), this chain {len(self.transforms)}")
        for t, s in zip(self.transforms, saved, strict=True):
            t.load_state_dict(s)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state_dict["optimizer"])
        acc = state_dict.get("accumulate", {})
        params = self._params()
        self._mini_step = int(acc.get("mini_step", 0))
        self._acc = {params[int(k)]: v.clone() for k, v in acc.get("acc", {}).items()}

    def __lossbridge_chain__(self, parts: Sequence[Any], accumulate: int) -> TransformChain:
        return chain(*parts, accumulate=accumulate)

    def __repr__(self) -> str:
        names = [t.bound.spec.name for t in self.transforms]
        opt = type(self.optimizer).__name__ if self.optimizer is not None else None
        return f"<lossbridge torch chain transforms={names} optimizer={opt} accumulate={self.accumulate}>"


def chain(*parts: Any, accumulate: int = 1) -> Any:
    """``lossbridge.chain`` on torch: transforms (classes or instances), then at most one optimizer, last.

    With an optimizer CLASS last (``lossbridge.get("adam", backend="torch")`` or ``torch.optim.Adam``)
    the result is a factory like an optimizer class: ``chained(params, **optimizer_kwargs)`` builds the
    optimizer and the transforms over ``params`` and returns the :class:`TransformChain`.
    """
    *head, last = parts
    if isinstance(last, type) and issubclass(last, torch.optim.Optimizer) and not issubclass(last, SpecTransform):
        return _chain_factory(tuple(head), last, accumulate)
    optimizer = None if _is_transform(last) else last
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ParameterError(f"chain: the last part must be a torch.optim.Optimizer instance or a transform, "
                             f"got {type(last).__name__}")
    transforms_in = list(head) if optimizer is not None else list(parts)
    params: list[Any] | None = None
    if optimizer is not None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
    transforms = []
    for k, t in enumerate(transforms_in):
        if isinstance(t, TransformChain):
            if t.optimizer is not None or t.accumulate > 1:
                raise ParameterError("chain: an inner chain may hold transforms only, without accumulate")
            transforms.extend(t.transforms)
        elif isinstance(t, type) and issubclass(t, SpecTransform):
            if params is None:
                raise ParameterError(f"chain: part {k} is a transform class; without an optimizer build it "
                                     "over the parameters first (Clip(model.parameters()))")
            transforms.append(t(params))
        elif isinstance(t, SpecTransform):
            transforms.append(t)
        else:
            raise ParameterError(f"chain: part {k} ({type(t).__name__}) is not a lossbridge torch transform "
                                 "(lossbridge.get(<transform>, backend='torch')); only the last part may be an "
                                 "optimizer")
    if not transforms and optimizer is None:
        raise ParameterError("chain: expected at least one transform or an optimizer")
    return TransformChain(transforms, optimizer, accumulate=accumulate)


def _chain_factory(head: tuple[Any, ...], optimizer_class: type, accumulate: int) -> Callable[..., TransformChain]:
    def chained(params: Iterable[Any], **kwargs: Any) -> TransformChain:
        optimizer = optimizer_class(list(params), **kwargs)
        return chain(*head, optimizer, accumulate=accumulate)

    names = [getattr(getattr(h, "bound", None), "spec", None) for h in head]
    chained.__name__ = "chain_" + "_".join([*(n.name for n in names if n is not None), optimizer_class.__name__])
    chained.__doc__ = f"Build {optimizer_class.__name__}(params, **kwargs) with the transforms before it."
    return chained


def _is_transform(part: Any) -> bool:
    return isinstance(part, (SpecTransform, TransformChain)) or (
        isinstance(part, type) and issubclass(part, SpecTransform)
    )
