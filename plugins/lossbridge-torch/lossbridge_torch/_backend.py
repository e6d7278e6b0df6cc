"""The torch backend: materializes bound specs as ``torch.nn.Module`` losses and optimizer classes.

Nothing here imports torch at module level; each method imports it (or the modules that do) on
first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossbridge import Backend
from lossbridge._bound import BoundLoss, BoundOptimizer
from lossbridge.spec import LossSpec, OptimizerSpec

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    """PyTorch: losses are ``nn.Module`` (prediction first), optimizers ``torch.optim.Optimizer`` classes."""

    name = "torch"
    aliases = ("pytorch",)
    requires = ("torch", "array_api_compat")
    distribution = "lossbridge-torch"
    loss_order = "prediction_first"

    def namespace(self) -> Any:
        from lossbridge_torch._namespace import namespace

        return namespace()

    def translate_params(self, spec: LossSpec | OptimizerSpec, params: Mapping[str, Any]) -> dict[str, Any]:
        """torch's keyword names (``weight``, ``betas``) as aliases of the spec's parameters."""
        from lossbridge_torch._names import translate_params

        return translate_params(spec, params)

    def materialize_loss(self, bound: BoundLoss) -> Any:
        from lossbridge_torch._loss import TorchLoss

        return TorchLoss(bound)

    def materialize_optimizer(self, bound: BoundOptimizer) -> Any:
        from lossbridge_torch._optim import optimizer_class

        return optimizer_class(bound)

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

        from lossbridge_torch._loss import torch_argument_order

        tdtype = getattr(torch, dtype)
        tensors: dict[str, torch.Tensor] = {}
        moved = [k for k in range(len(loss.spec.inputs)) if _torch_layout(loss, k, inputs)]
        for k, decl in enumerate(loss.spec.inputs):
            x = np.asarray(inputs[decl.name])
            x = np.moveaxis(x, -1, 1) if k in moved else x  # the data as a torch user holds it
            floating = np.issubdtype(x.dtype, np.floating)
            t = torch.tensor(x, dtype=tdtype if floating else torch.int64)
            tensors[decl.name] = t.requires_grad_(decl.name in differentiable)
        args = [tensors[loss.spec.inputs[k].name] for k in torch_argument_order(loss.bound)]
        weight = None if sample_weight is None else torch.tensor(sample_weight, dtype=tdtype)
        value = loss(*args, sample_weight=weight)
        value.sum().backward()
        grads = {n: _numpy(tensors[n].grad, like=tensors[n]) for n in differentiable}
        for k in moved:
            name = loss.spec.inputs[k].name
            if name in grads:
                grads[name] = np.moveaxis(grads[name], 1, -1)
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
        from lossbridge_torch._digits import train_digits

        return train_digits(data, backend=self.name)


def _torch_layout(loss: Any, k: int, inputs: Mapping[str, np.ndarray]) -> bool:
    """Input ``k`` goes in torch's class-axis-first layout (torch convention, more than 2 dims)."""
    name = loss.spec.inputs[k].name
    return loss.class_axis == 1 and np.ndim(inputs[name]) > 2 and loss.has_class_axis(k)


def _numpy(t: Any, like: Any = None) -> np.ndarray:
    """A float64 NumPy copy (never a view: the optimizer keeps updating the tensor in place)."""
    import torch

    if t is None:  # an input the loss does not depend on has a zero gradient
        return np.zeros(tuple(like.shape), dtype=np.float64)
    return t.detach().to("cpu", torch.float64).numpy().copy()
