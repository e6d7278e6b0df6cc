"""torch optimizers for specs whose step needs more than the gradient (``OptimizerSpec.needs``).

``step(closure)`` supplies the needs:

* ``"value"`` (``polyak_sgd``): the loss the closure returns (the closure computes the loss at the
  current parameters and calls ``backward()``, as for ``torch.optim.LBFGS``); ``step()`` without a
  closure is refused.
* ``"hessian_diag"`` (``sophia``): at the steps the spec's ``needs_at`` selects, Hutchinson's
  estimate ``r * (H r)``: the closure returns the loss WITHOUT calling ``backward()`` (or after
  ``loss.backward(create_graph=True)``, AdaHessian-style, leaving a differentiable ``p.grad``); the
  optimizer takes the gradient with ``torch.autograd.grad(loss, params, create_graph=True)``, draws
  a Rademacher vector ``r`` (one tensor per parameter, in param-group order) and gets ``H r`` as
  ``torch.autograd.grad(grads, params, grad_outputs=r)``. On the other steps it only takes the
  gradient. ``p.grad`` holds the (detached) gradient after the step.
* ``"noise"`` (``noisy_sgd``): ``torch.randn`` per parameter, in param-group order.

The random draws come from a CPU ``torch.Generator`` seeded with the spec's ``key``; its state is
kept in ``self.state["rng"]`` (saved and loaded by ``state_dict``). Optax's numbers come from
JAX's generator: the distribution is the same, the numbers are not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from lossbridge import InputError

from ._namespace import namespace
from ._optim import SpecOptimizer, _step_dtype

__all__ = ["OracleOptimizer"]


class OracleOptimizer(SpecOptimizer):
    """Base of the optimizer classes of specs with ``needs``: see the module docstring."""

    #: the key of the random generator's state in ``self.state`` (kept by ``state_dict``)
    RNG_STATE_KEY: ClassVar[str] = "rng"

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One update of every parameter that has a gradient; returns the closure's loss."""
        spec = self.bound.spec
        needs = spec.needs
        if closure is None and ("value" in needs or "hessian_diag" in needs):
            raise InputError(f"closure: {spec.name} needs the loss at the current parameters: "
                             "step(closure) with a closure that computes and returns it")
        for group in self.param_groups:
            if group["compile"] or group["differentiable"]:
                raise InputError(f"{spec.name}: compile=True and differentiable=True are not supported for an "
                                 f"optimizer with needs {list(needs)}")
        params = [p for group in self.param_groups for p in group["params"] if p.requires_grad]
        used = self._used(params)
        hessian: dict[Any, torch.Tensor] = {}
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
                if "hessian_diag" in needs:
                    hessian = self._hutchinson(loss, params, used)
        extra: dict[str, Any] = {}
        if "value" in needs:
            if not isinstance(loss, torch.Tensor) and not isinstance(loss, (int, float)):
                raise InputError(f"closure: {spec.name} needs the closure to return the loss, got {type(loss)}")
            extra["value"] = torch.as_tensor(loss).detach()
        with torch.no_grad():
            if spec.global_slots:
                if set(needs) - {"value"}:
                    raise InputError(f"{spec.name}: per-tensor needs with global state are not supported")
                self._global_step(**extra)
            else:
                for group in self.param_groups:
                    self._needs_step(group, used, hessian, extra)
        return loss

    # -- the needs ----------------------------------------------------------------------------------
    def _generator(self) -> torch.Generator:
        gen = torch.Generator(device="cpu")
        saved = self.state.get(self.RNG_STATE_KEY)
        if saved is None:
            gen.manual_seed(int(self.param_groups[0].get("key", self.bound.hyper["key"]) or 0))
        else:
            gen.set_state(saved)
        return gen

    def _used(self, params: list[torch.Tensor]) -> bool:
        """Whether this step uses the needs (the spec's ``needs_at`` at the next step number)."""
        at = self.bound.spec.needs_at
        if at is None:
            return True
        done = next((self.state[p]["step"] for p in params if self.state.get(p)), None)
        step = torch.as_tensor(1.0 if done is None else float(done) + 1.0, dtype=torch.float64)
        hyper = {**self.bound.hyper, **self._hyper(self.param_groups[0])}
        return bool(at(step, xp=namespace(), **hyper))

    def _hutchinson(self, loss: Any, params: list[torch.Tensor], used: bool) -> dict[Any, torch.Tensor]:
        """The gradient into ``p.grad`` and, when ``used``, ``r * (H r)`` per parameter."""
        name = self.bound.spec.name
        if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            raise InputError(f"closure: {name} needs the closure to return the loss with its graph (do not call "
                             "backward(), or call backward(create_graph=True))")
        if any(p.is_complex() for p in params):
            raise InputError(f"{name}: the Hessian estimate does not support complex parameters")
        if all(p.grad is not None and p.grad.requires_grad for p in params):
            grads = [p.grad for p in params]  # backward(create_graph=True) in the closure
        else:
            grads = list(torch.autograd.grad(loss, params, create_graph=used, allow_unused=True))
        out: dict[Any, torch.Tensor] = {}
        if used:
            gen = self._generator()
            signs = [(2 * torch.randint(0, 2, p.shape, generator=gen) - 1).to(p.dtype).to(p.device) for p in params]
            self.state[self.RNG_STATE_KEY] = gen.get_state()
            live = [(p, g, r) for p, g, r in zip(params, grads, signs, strict=True)
                    if g is not None and g.requires_grad]
            hvps = torch.autograd.grad([g for _, g, _ in live], [p for p, _, _ in live],
                                       grad_outputs=[r for _, _, r in live], allow_unused=True)
            for (p, _, r), hv in zip(live, hvps, strict=True):
                out[p] = r * (hv if hv is not None else torch.zeros_like(p))
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else g.detach()
        return out

    def _needs_step(self, group: dict[str, Any], used: bool, hessian: dict[Any, torch.Tensor],
                    shared: dict[str, Any]) -> None:
        """The per-tensor update of one group, with each tensor's needs (eager, tensor by tensor)."""
        keys, params, grads = self._collect(group)
        if not params:
            return
        if group["maximize"]:
            grads = [-g for g in grads]
        needs = self.bound.spec.needs
        bound = self.bound.with_hyper(**self._hyper(group))
        gen = self._generator() if "noise" in needs and used else None
        xp = namespace()
        for key, p, g in zip(keys, params, grads, strict=True):
            extra = dict(shared)
            if "noise" in needs:
                extra["noise"] = (torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
                                  if gen is not None else torch.zeros_like(p))
            if "hessian_diag" in needs:
                extra["hessian_diag"] = hessian.get(key, torch.zeros_like(p)).to(p.dtype)
            state = self.state[key]
            state["step"] += 1
            slots = self._slots(key)
            delta, new = bound.update(p, g, slots, step=state["step"].to(_step_dtype(p)), xp=xp, **extra)
            p.add_(delta)
            state.update(new)
        if gen is not None:
            self.state[self.RNG_STATE_KEY] = gen.get_state()
