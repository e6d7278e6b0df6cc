"""The torch backend: materializes bound specs as ``torch.nn.Module`` losses and optimizer classes.

Nothing here imports torch at module level; each method imports it (or the modules that do) on
first use.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossbridge import Backend
from lossbridge.bound import BoundLoss, BoundOptimizer

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    """PyTorch: losses are ``nn.Module`` (prediction first), optimizers ``torch.optim.Optimizer`` classes."""

    name = "torch"
    aliases = ("pytorch",)
    requires = ("torch", "array_api_compat")
    distribution = "lossbridge-torch"
    loss_order = "prediction_first"
    loss_options = ("validate", "check_finite")

    def namespace(self) -> Any:
        from ._namespace import namespace

        return namespace()

    def materialize_loss(self, bound: BoundLoss, **options: Any) -> Any:
        from ._loss import TorchLoss

        return TorchLoss(bound, backend=self, **options)

    def materialize_optimizer(self, bound: BoundOptimizer, **options: Any) -> Any:
        from ._optim import optimizer_class

        return optimizer_class(bound)

    def materialize_schedule(self, bound: Any) -> Any:
        """A ``torch.optim.lr_scheduler.LRScheduler`` subclass; call it with an optimizer."""
        from ._schedule import scheduler_class

        return scheduler_class(bound)

    # -- portable optimizer state ------------------------------------------------------------------
    def export_optimizer_state(
        self, optimizer: Any, *, params: Any = None, step: int | None = None, **_: Any
    ) -> Any:
        """A lossbridge torch optimizer's or a ``torch.optim`` optimizer's state (portable)."""
        if "torch" not in sys.modules:  # not imported: the object cannot be a torch optimizer
            return None
        from ._state import export_state

        return export_state(optimizer, params=params, step=step)

    def import_optimizer_state(
        self, optimizer: Any, portable: Any, *, state: Any = None, params: Any = None, convert: bool = False
    ) -> Any:
        """Load a portable state into a lossbridge torch optimizer instance."""
        if "torch" not in sys.modules:
            return NotImplemented
        from ._state import import_state

        return import_state(optimizer, portable, params=params, convert=convert)

    # -- the conformance harness --------------------------------------------------------------------
    def loss_value_and_grad(
        self,
        loss: Any,
        inputs: Mapping[str, np.ndarray],
        *,
        sample_weight: np.ndarray | None,
        differentiable: Sequence[str],
        dtype: str,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Call the module as a torch user would and backpropagate the sum of its output."""
        import torch

        tdtype = getattr(torch, dtype)
        tensors: dict[str, torch.Tensor] = {}
        for decl in loss.spec.inputs:
            x = np.asarray(inputs[decl.name])
            floating = np.issubdtype(x.dtype, np.floating)
            t = torch.tensor(x, dtype=tdtype if floating else torch.int64)
            tensors[decl.name] = t.requires_grad_(decl.name in differentiable)
        args = [tensors[loss.spec.inputs[k].name] for k in self.argument_order(loss.spec)]
        weight = None if sample_weight is None else torch.tensor(sample_weight, dtype=tdtype)
        value = loss(*args, sample_weight=weight)
        value.sum().backward()
        grads = {n: _numpy(tensors[n].grad, like=tensors[n]) for n in differentiable}
        return _numpy(value.detach()), grads

    def optimizer_trajectory(
        self,
        optimizer: Any,
        params: Sequence[np.ndarray],
        grads: Sequence[Sequence[np.ndarray]],
        *,
        dtype: str,
    ) -> list[list[np.ndarray]]:
        """Make ``optimizer(params)`` on leaf tensors; set ``.grad`` and call ``step()`` each step."""
        import torch

        tdtype = getattr(torch, dtype)
        tensors = [torch.nn.Parameter(torch.tensor(np.asarray(p), dtype=tdtype)) for p in params]
        opt = optimizer(tensors)
        path = []
        for step_grads in grads:
            opt.zero_grad()
            for t, g in zip(tensors, step_grads, strict=True):
                t.grad = torch.tensor(np.asarray(g), dtype=tdtype)
            opt.step()
            path.append([_numpy(t.detach()) for t in tensors])
        return path

    # -- the seed example ---------------------------------------------------------------------------
    def train_digits(self, data: Any) -> Any:
        """Train Dense(64, relu) -> Dense(10) on the digits data with lossbridge's CE and Adam."""
        from ._digits import train_digits

        return train_digits(data, backend=self.name)


def _numpy(t: Any, like: Any = None) -> np.ndarray:
    """A float64 NumPy copy (never a view: the optimizer keeps updating the tensor in place)."""
    import torch

    if t is None:  # an input the loss does not depend on has a zero gradient
        return np.zeros(tuple(like.shape), dtype=np.float64)
    return t.detach().to("cpu", torch.float64).numpy().copy()
