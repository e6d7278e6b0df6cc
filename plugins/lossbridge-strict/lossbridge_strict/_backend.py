"""Spec functions run unchanged on array-api-strict, through the same bound specs as NumPy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossbridge.backends import Backend
from lossbridge.bound import BoundLoss, BoundOptimizer
from lossbridge.errors import BackendError


class StrictLoss:
    """A loss on array-api-strict arrays: ``loss(*inputs, sample_weight=None)``."""

    def __init__(self, bound: BoundLoss) -> None:
        import array_api_strict

        self.bound, self.spec, self.xp = bound, bound.spec, array_api_strict

    def __call__(self, *inputs: Any, sample_weight: Any | None = None) -> Any:
        return self.bound(self.xp, *inputs, sample_weight=sample_weight)

    def value_and_grad(self, *inputs: Any, sample_weight: Any | None = None) -> tuple[Any, tuple[Any, ...]]:
        """The value and the analytic gradients, all computed on array-api-strict."""
        return self.bound.value_and_grad(self.xp, *inputs, sample_weight=sample_weight)


class StrictOptimizer:
    """An optimizer on array-api-strict arrays: per-tensor ``step(params, grads)`` over a list."""

    def __init__(self, bound: BoundOptimizer) -> None:
        import array_api_strict

        self.bound, self.spec, self.xp = bound, bound.spec, array_api_strict
        self.count = 0
        self.slots: list[dict[str, Any]] | None = None
        self.glob: dict[str, Any] | None = None

    def step(self, params: list[Any], grads: Sequence[Any]) -> None:
        """Replace each entry of ``params`` by its updated array."""
        if self.slots is None:
            self.slots = [self.bound.init(p, xp=self.xp) for p in params]
            if self.spec.global_slots:  # state shared by all tensors, in their lowest dtype (as Optax)
                dtype = min((p.dtype for p in params), key=lambda d: self.xp.finfo(d).bits)
                self.glob = self.bound.init_global(dtype=dtype, xp=self.xp)
        self.count += 1
        if self.glob is not None:
            steps = [self.xp.asarray(float(self.count), dtype=p.dtype) for p in params]
            deltas, self.slots, self.glob = self.bound.update_all(
                params, grads, self.slots, self.glob, steps=steps, xp=self.xp
            )
            params[:] = [p + d for p, d in zip(params, deltas)]
            return
        for k, (p, g) in enumerate(zip(params, grads)):
            step = self.xp.asarray(float(self.count), dtype=p.dtype)
            delta, self.slots[k] = self.bound.update(p, g, self.slots[k], step=step, xp=self.xp)
            params[k] = p + delta


class StrictBackend(Backend):
    """array-api-strict: a backend whose only purpose is to prove spec purity."""

    name = "strict"
    aliases = ("array_api_strict",)
    requires = ("array_api_strict",)
    distribution = "lossbridge-strict"
    loss_order = "spec"

    def namespace(self) -> Any:
        import array_api_strict

        return array_api_strict

    def materialize_loss(self, bound: BoundLoss, **options: Any) -> StrictLoss:
        return StrictLoss(bound)

    def materialize_optimizer(self, bound: BoundOptimizer, **options: Any) -> StrictOptimizer:
        if getattr(bound.spec, "role", "optimizer") == "transform":
            raise BackendError(
                f"{bound.spec.name}: the strict backend has no gradient-transform object (a transform rewrites "
                "gradients, it is not an optimizer step); use the numpy backend's lossbridge.chain"
            )
        closure, needs = getattr(bound.spec, "closure_step", None) is not None, getattr(bound.spec, "needs", ())
        if closure or needs:
            what = "closure_step" if closure else f"needs {needs}"
            raise BackendError(
                f"{bound.spec.name}: the strict backend's optimizer steps with step(params, grads) only, and this "
                f"spec's step needs more ({what}: the objective, its value, a Hessian estimate or noise); its "
                "purity is checked on array-api-strict in the spec tests. Use the numpy, torch or jax backend"
            )
        return StrictOptimizer(bound)

    def _to(self, x: np.ndarray, dtype: str) -> Any:
        xp = self.namespace()
        if np.issubdtype(x.dtype, np.floating):
            return xp.asarray(x.astype(dtype))
        return xp.asarray(x)

    def loss_value_and_grad(
        self,
        loss: Any,
        inputs: Mapping[str, np.ndarray],
        *,
        sample_weight: np.ndarray | None,
        differentiable: Sequence[str],
        dtype: str,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        arrays = [self._to(inputs[i.name], dtype) for i in loss.spec.inputs]
        weight = None if sample_weight is None else self._to(sample_weight, dtype)
        value, grads = loss.value_and_grad(*arrays, sample_weight=weight)
        names = [i.name for i in loss.spec.differentiable_inputs]
        return _np(value), {n: _np(g) for n, g in zip(names, grads) if n in differentiable}

    def optimizer_trajectory(
        self, optimizer: Any, params: Sequence[np.ndarray], grads: Sequence[Sequence[np.ndarray]], *, dtype: str
    ) -> list[list[np.ndarray]]:
        current = [self._to(p, dtype) for p in params]
        out = []
        for step_grads in grads:
            optimizer.step(current, [self._to(g, dtype) for g in step_grads])
            out.append([_np(p) for p in current])
        return out

    # -- portable optimizer state (lossbridge.save_state / load_state) ------------------------------
    def export_optimizer_state(self, optimizer: Any, *, params: Any = None, **_: Any) -> Any:
        """A :class:`StrictOptimizer`'s state (its slots and global state) for ``lossbridge.save_state``."""
        if not isinstance(optimizer, StrictOptimizer):
            return None
        from lossbridge.errors import InputError
        from lossbridge.portable import from_bound

        if optimizer.slots is None:
            raise InputError("optimizer: this array-api-strict optimizer has taken no step yet; nothing to save")
        if params is None or len(params) != len(optimizer.slots):
            raise InputError(f"params: expected the {len(optimizer.slots)} parameter arrays the optimizer steps")
        return from_bound(
            optimizer.bound,
            step=optimizer.count,
            slots=[{k: _native(v) for k, v in one.items()} for one in optimizer.slots],
            shapes=[tuple(p.shape) for p in params],
            dtypes=[_native(p).dtype.name for p in params],
            backend="strict",
            glob={k: _native(v) for k, v in (optimizer.glob or {}).items()},
        )

    def import_optimizer_state(
        self, optimizer: Any, portable: Any, *, params: Any = None, convert: bool = False, **_: Any
    ) -> Any:
        """Load a portable state into a :class:`StrictOptimizer` over ``params`` (all checks first)."""
        if not isinstance(optimizer, StrictOptimizer):
            return NotImplemented
        from lossbridge.errors import InputError
        from lossbridge.portable import check_compatible

        if params is None:
            raise InputError("params: the array-api-strict backend needs the parameters to load a state for")
        xp = self.namespace()
        templates = [optimizer.bound.init(p, xp=xp) for p in params]
        glob = None
        if optimizer.spec.global_slots and params:
            dtype = min((p.dtype for p in params), key=lambda d: xp.finfo(d).bits)
            glob = optimizer.bound.init_global(dtype=dtype, xp=xp)
        conv = optimizer.bound.convention.framework if optimizer.bound.convention is not None else None
        check_compatible(
            portable,
            spec=optimizer.spec.name,
            convention=conv,
            hyper=optimizer.bound.hyper,
            shapes=[tuple(p.shape) for p in params],
            names=[None] * len(params),
            slots=templates,
            convert=convert,
            backend="strict",
            glob=glob,
        )
        optimizer.slots = [
            {k: xp.asarray(np.asarray(v), dtype=t[k].dtype) for k, v in saved.items()}
            for saved, t in zip(portable.slots, templates, strict=True)
        ]
        optimizer.glob = None if glob is None else {
            k: xp.asarray(np.asarray(v), dtype=glob[k].dtype) for k, v in portable.glob.items()
        }
        optimizer.count = int(portable.step)
        return portable


def _np(x: Any) -> np.ndarray:
    return np.asarray(np.from_dlpack(x), dtype=np.float64)


def _native(x: Any) -> np.ndarray:
    """An array-api-strict array as NumPy in its own dtype (a copy)."""
    return np.array(np.from_dlpack(x))
