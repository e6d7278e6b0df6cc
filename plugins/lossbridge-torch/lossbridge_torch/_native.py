"""Verified native fast paths: torch's fused optimizer kernels, where they compute the spec exactly.

Each kernel is registered through the override hook (``lossbridge_register_overrides``). It is a
fast path, not a second definition: ``accepts`` admits only hyperparameter values for which the
torch kernel evaluates the spec's formula (e.g. Adam with eps on the bias-corrected root, no
``eps_root``, AMSGrad on the raw second moment), every other group runs the spec's own update,
and the conformance kit checks the result against the spec like any other materialization.
The kernels are called through ``torch.optim``'s functional API with ``fused=True``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from lossbridge.bound import BoundOptimizer

__all__ = ["NATIVE_KERNELS", "AdagradKernel", "AdamKernel", "SgdKernel", "native_factory"]


def _plain(*values: Any) -> bool:
    """Python numbers (no traced / tensor hyperparameters)."""
    return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)


def _fusable(params: list[Any]) -> bool:
    import torch

    devices = {p.device for p in params}
    return len(devices) <= 1 and all(torch.is_floating_point(p) and not torch.is_complex(p) for p in params)


class AdamKernel:
    """``torch.optim.adam.adam(..., fused=True)`` for ``adam`` and ``adamw``."""

    def __init__(self, *, decoupled: bool | None) -> None:
        self.decoupled = decoupled  # None: read the spec's decoupled_weight_decay parameter

    def _decoupled(self, hyper: dict[str, Any]) -> bool:
        return bool(hyper["decoupled_weight_decay"]) if self.decoupled is None else self.decoupled

    def accepts(self, hyper: dict[str, Any], params: list[Any]) -> bool:
        """Only the corrected-eps form without eps_root or rounded bias corrections."""
        return (
            hyper["eps_placement"] == "corrected"
            and hyper["bias_correction_dtype"] is None
            and (not hyper["amsgrad"] or hyper["amsgrad_max"] == "raw")
            and _plain(hyper["beta_1"], hyper["beta_2"], hyper["eps"], hyper["weight_decay"])
            and _plain(hyper["eps_root"])
            and hyper["eps_root"] == 0
            and _fusable(params)
        )

    def run(self, opt: Any, params: list[Any], grads: list[Any], hyper: dict[str, Any]) -> None:
        """One fused Adam step; torch increments the step counters."""
        from torch.optim.adam import adam

        states = [opt.state[p] for p in params]
        adam(
            params,
            grads,
            [s["m"] for s in states],
            [s["v"] for s in states],
            [s["v_max"] for s in states] if hyper["amsgrad"] else [],
            [s["step"] for s in states],
            foreach=False,
            fused=True,
            decoupled_weight_decay=self._decoupled(hyper),
            amsgrad=hyper["amsgrad"],
            beta1=hyper["beta_1"],
            beta2=hyper["beta_2"],
            lr=hyper["lr"],
            weight_decay=hyper["weight_decay"],
            eps=hyper["eps"],
            maximize=False,
        )


class SgdKernel:
    """``torch.optim.sgd.sgd(..., fused=True)`` for ``sgd`` in PyTorch's momentum form."""

    def accepts(self, hyper: dict[str, Any], params: list[Any]) -> bool:
        """lr outside the buffer, L2 weight decay, Nesterov only without dampening."""
        return (
            not hyper["lr_in_momentum"]
            and not (hyper["decoupled_weight_decay"] and hyper["weight_decay"] != 0)
            and not (hyper["nesterov"] and hyper["dampening"] != 0)
            and _plain(hyper["momentum"], hyper["dampening"], hyper["weight_decay"])
            and _fusable(params)
        )

    def run(self, opt: Any, params: list[Any], grads: list[Any], hyper: dict[str, Any]) -> None:
        """One fused SGD step; the spec's first-step rule b_1 = g is torch's fresh buffer."""
        import torch
        from torch.optim.sgd import sgd

        states = [opt.state[p] for p in params]
        steps = [s["step"] for s in states]
        plain = hyper["momentum"] == 0  # no buffer: torch's single-tensor step (its fused CPU kernel is slower)
        if plain:  # no buffer, so no first-step rule to test (was one host sync per tensor)
            first = [False]
        else:  # one host read per group, not one `bool(t == 0)` per tensor
            same = len({(t.device, t.dtype) for t in steps}) == 1
            counts = torch.stack(steps).tolist() if same else [float(t) for t in steps]
            first = [c == 0 for c in counts]
        if any(first) and not all(first):  # mixed first/later steps: one flag per call
            for p, g in zip(params, grads, strict=True):
                self.run(opt, [p], [g], hyper)
            return
        buffers: list[Any] = [None] * len(params) if (plain or first[0]) else [s.get("momentum") for s in states]
        sgd(
            params,
            grads,
            buffers,
            foreach=False,
            fused=not plain,
            weight_decay=hyper["weight_decay"],
            momentum=hyper["momentum"],
            lr=hyper["lr"],
            dampening=hyper["dampening"],
            nesterov=hyper["nesterov"],
            maximize=False,
        )
        if not plain:
            for s, buf in zip(states, buffers, strict=True):
                s["momentum"] = buf
        torch._foreach_add_(steps, 1.0)


class AdagradKernel:
    """``torch.optim.adagrad.adagrad(..., fused=True)`` (``torch._fused_adagrad_``) for ``adagrad``.

    The kernel computes ``sum += g^2``, ``theta -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)``
    with L2 weight decay folded into ``g``: the spec's update in PyTorch's form. Where the sum is
    still 0 the spec's step is 0; the kernel's is ``0 / eps`` = 0 only for ``eps > 0``, so ``eps = 0``
    runs the spec.
    """

    def accepts(self, hyper: dict[str, Any], params: list[Any]) -> bool:
        """eps outside the root and positive, L2 (not decoupled) weight decay, an exact initial sum."""
        return (
            not hyper["eps_in_sqrt"]
            and not (hyper["decoupled_weight_decay"] and hyper["weight_decay"] != 0)
            and hyper["initial_accumulator_dtype"] is None
            and _plain(hyper["eps"], hyper["weight_decay"], hyper["lr_decay"])
            and hyper["eps"] > 0
            and _fusable(params)
        )

    def run(self, opt: Any, params: list[Any], grads: list[Any], hyper: dict[str, Any]) -> None:
        """One fused Adagrad step; torch increments the step counters."""
        from torch.optim.adagrad import adagrad

        states = [opt.state[p] for p in params]
        adagrad(
            params,
            grads,
            [s["sum"] for s in states],
            [s["step"] for s in states],
            foreach=False,
            fused=True,
            lr=hyper["lr"],
            weight_decay=hyper["weight_decay"],
            lr_decay=hyper["lr_decay"],
            eps=hyper["eps"],
            maximize=False,
        )


#: spec name -> the native kernel that can run it.
NATIVE_KERNELS: dict[str, Any] = {
    "adam": AdamKernel(decoupled=None),
    "adamw": AdamKernel(decoupled=True),
    "sgd": SgdKernel(),
    "adagrad": AdagradKernel(),
}


def native_factory(spec_name: str) -> Callable[[BoundOptimizer], Any]:
    """The override factory for ``spec_name``: the optimizer class with the native kernel, or None."""
    kernel = NATIVE_KERNELS[spec_name]

    def factory(bound: BoundOptimizer) -> Any:
        hyper = dict(bound.hyper)
        if not kernel.accepts(hyper, []):
            return None
        from ._optim import optimizer_class

        return optimizer_class(bound, native=kernel)

    factory.__name__ = f"fused_{spec_name}"
    return factory
