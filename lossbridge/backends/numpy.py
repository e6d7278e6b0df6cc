"""The NumPy reference backend: a plugin like any other, registered through the same hook.

Losses are callables in scikit-learn order ``(y_true, y_pred)`` with ``.grad`` and
``.value_and_grad`` from the spec's analytic gradient. Optimizers offer Optax-style functional
``init``/``update`` and an in-place ``step(params, grads)`` over lists, tuples or dicts of arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import array_api_compat.numpy as xp
import numpy as np

from lossbridge.backends.base import Backend
from lossbridge.bound import BoundLoss, BoundOptimizer, BoundSchedule
from lossbridge.errors import InputError
from lossbridge.hookspecs import hookimpl

__all__ = ["NumpyBackend", "NumpyLoss", "NumpyOptimizer", "NumpyOptimizerState", "NumpySchedule"]


def _array(x: Any, name: str) -> np.ndarray:
    NumpyBackend().check_native(x, name, (np.ndarray, np.generic))
    return np.asarray(x)


class NumpyLoss:
    """A loss over NumPy arrays, called as ``loss(y_true, y_pred, sample_weight=None)``."""

    def __init__(self, bound: BoundLoss, *, validate: bool = True) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.validate = validate
        self.__doc__ = bound.spec.summary

    def _inputs(self, inputs: tuple[Any, ...]) -> tuple[np.ndarray, ...]:
        names = [i.name for i in self.spec.inputs]
        if len(inputs) != len(names):
            raise TypeError(f"{self.spec.name}: expected {len(names)} arrays ({', '.join(names)}), got {len(inputs)}")
        return tuple(_array(x, n) for x, n in zip(inputs, names))

    def __call__(self, *inputs: Any, sample_weight: Any | None = None) -> Any:
        weight = None if sample_weight is None else _array(sample_weight, "sample_weight")
        return self.bound(xp, *self._inputs(inputs), sample_weight=weight, check_values=self.validate)

    def value_and_grad(self, *inputs: Any, sample_weight: Any | None = None) -> tuple[Any, Any]:
        """The loss and its gradient (one array, or a tuple for several differentiable inputs)."""
        weight = None if sample_weight is None else _array(sample_weight, "sample_weight")
        value, grads = self.bound.value_and_grad(
            xp, *self._inputs(inputs), sample_weight=weight, check_values=self.validate
        )
        return value, grads[0] if len(grads) == 1 else grads

    def grad(self, *inputs: Any, sample_weight: Any | None = None) -> Any:
        """The gradient of the loss with respect to the prediction(s)."""
        return self.value_and_grad(*inputs, sample_weight=sample_weight)[1]

    def __repr__(self) -> str:
        conv = self.bound.convention.framework if self.bound.convention else None
        return f"<lossbridge numpy loss {self.spec.name!r} convention={conv!r} reduction={self.bound.reduction!r}>"


class NumpySchedule:
    """A schedule as a callable: ``schedule(step) -> float`` for the number of updates taken."""

    def __init__(self, bound: BoundSchedule) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.__doc__ = bound.spec.summary

    def __call__(self, step: Any) -> Any:
        value = self.bound(xp, np.asarray(step, dtype=np.float64))
        return float(value) if np.ndim(value) == 0 else np.asarray(value)

    def __repr__(self) -> str:
        return f"<lossbridge numpy schedule {self.spec.name!r} {dict(self.bound.params)}>"


class NumpyOptimizerState(NamedTuple):
    """The functional optimizer state: the number of steps taken and each leaf's slots."""

    count: int  # type: ignore[assignment]  # shadows tuple.count, as in optax states
    slots: list[dict[str, np.ndarray]]


def _flatten(tree: Any) -> tuple[list[Any], Any]:
    """Leaves in a fixed order, and a function that rebuilds the same structure."""
    if isinstance(tree, Mapping):
        keys = list(tree)
        parts = [_flatten(tree[k]) for k in keys]
        leaves = [leaf for p in parts for leaf in p[0]]

        def rebuild_map(items: list[Any]) -> Any:
            out, i = {}, 0
            for k, (sub, rebuild) in zip(keys, parts):
                out[k] = rebuild(items[i : i + len(sub)])
                i += len(sub)
            return out if type(tree) is dict else type(tree)(out)  # type: ignore[call-arg]

        return leaves, rebuild_map
    if isinstance(tree, (list, tuple)):
        parts = [_flatten(t) for t in tree]
        leaves = [leaf for p in parts for leaf in p[0]]

        def rebuild_seq(items: list[Any]) -> Any:
            out, i = [], 0
            for sub, rebuild in parts:
                out.append(rebuild(items[i : i + len(sub)]))
                i += len(sub)
            return type(tree)(out)

        return leaves, rebuild_seq
    return [tree], lambda items: items[0]


class NumpyOptimizer:
    """An optimizer over NumPy arrays: functional ``init``/``update`` and in-place ``step``."""

    def __init__(self, bound: BoundOptimizer) -> None:
        self.bound = bound
        self.spec = bound.spec
        self._state: NumpyOptimizerState | None = None

    @property
    def hyper(self) -> dict[str, Any]:
        """The current hyperparameters."""
        return dict(self.bound.hyper)

    def set_hyper(self, **changes: Any) -> None:
        """Change hyperparameters between steps (validated), e.g. ``set_hyper(lr=1e-4)``."""
        self.bound = self.bound.with_hyper(**changes)

    def init(self, params: Any) -> NumpyOptimizerState:
        """Fresh state for a tree (list, tuple or dict) of parameter arrays."""
        leaves, _ = _flatten(params)
        return NumpyOptimizerState(0, [self.bound.init(_float(p, "params"), xp=xp) for p in leaves])

    def update(self, grads: Any, state: NumpyOptimizerState, params: Any) -> tuple[Any, NumpyOptimizerState]:
        """Updates (to add to ``params``) with the tree structure of ``grads``, and the new state."""
        g_leaves, rebuild = _flatten(grads)
        p_leaves, _ = _flatten(params)
        if len(g_leaves) != len(p_leaves):
            raise InputError(f"grads: expected {len(p_leaves)} arrays like params, got {len(g_leaves)}")
        count = state.count + 1
        # a schedule as a hyperparameter (e.g. lr=lossbridge.get("cosine_decay", ...)) at the updates taken so far
        scheduled = {
            k: v(state.count) for k, v in self.bound.hyper.items() if callable(v) and not self.spec.param(k).static
        }
        deltas, slots = [], []
        for p, g, s in zip(p_leaves, g_leaves, state.slots):
            p, g = _float(p, "params"), _float(g, "grads")
            if g.shape != p.shape:
                raise InputError(f"grads: expected shape {p.shape} like its parameter, got {g.shape}")
            delta, new = self.bound.update(p, g, s, step=np.asarray(count, dtype=p.dtype), xp=xp, **scheduled)
            deltas.append(np.asarray(delta, dtype=p.dtype))
            slots.append(new)
        return rebuild(deltas), NumpyOptimizerState(count, slots)

    def step(self, params: Any, grads: Any) -> None:
        """Update ``params`` in place (a list, tuple or dict of arrays) with ``grads``."""
        if self._state is None:
            self._state = self.init(params)
        updates, self._state = self.update(grads, self._state, params)
        for p, u in zip(_flatten(params)[0], _flatten(updates)[0]):
            p += u

    def __repr__(self) -> str:
        conv = self.bound.convention.framework if self.bound.convention else None
        return f"<lossbridge numpy optimizer {self.spec.name!r} convention={conv!r} {dict(self.bound.hyper)}>"


def _float(x: Any, name: str) -> np.ndarray:
    arr = _array(x, name)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{name}: expected floating-point arrays, got dtype {arr.dtype}")
    return arr


class NumpyBackend(Backend):
    """The reference backend: plain NumPy, analytic gradients."""

    name = "numpy"
    aliases = ("np",)
    requires = ("numpy",)
    distribution = "lossbridge"
    loss_order = "spec"

    def namespace(self) -> Any:
        return xp

    def materialize_loss(self, bound: BoundLoss, **options: Any) -> NumpyLoss:
        return NumpyLoss(bound, **options)

    def materialize_optimizer(self, bound: BoundOptimizer, **options: Any) -> NumpyOptimizer:
        return NumpyOptimizer(bound)

    def materialize_schedule(self, bound: BoundSchedule) -> NumpySchedule:
        return NumpySchedule(bound)

    def loss_value_and_grad(
        self,
        loss: Any,
        inputs: Mapping[str, np.ndarray],
        *,
        sample_weight: np.ndarray | None,
        differentiable: Sequence[str],
        dtype: str,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        arrays = [_cast(inputs[i.name], dtype) for i in loss.spec.inputs]
        weight = None if sample_weight is None else _cast(sample_weight, dtype)
        value, grads = loss.bound.value_and_grad(xp, *arrays, sample_weight=weight)
        names = [i.name for i in loss.spec.differentiable_inputs]
        return np.asarray(value, dtype=np.float64), {
            n: np.asarray(g, dtype=np.float64) for n, g in zip(names, grads) if n in differentiable
        }

    def optimizer_trajectory(
        self, optimizer: Any, params: Sequence[np.ndarray], grads: Sequence[Sequence[np.ndarray]], *, dtype: str
    ) -> list[list[np.ndarray]]:
        current = [np.array(p, dtype=dtype) for p in params]
        out = []
        for step_grads in grads:
            optimizer.step(current, [np.asarray(g, dtype=dtype) for g in step_grads])
            out.append([p.astype(np.float64) for p in current])
        return out

    def train_digits(self, data: Any) -> Any:
        """The seed example on NumPy: analytic loss gradient, hand-written backprop."""
        from lossbridge.demo import train_digits_numpy

        return train_digits_numpy(data)


def _cast(x: np.ndarray, dtype: str) -> np.ndarray:
    return x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x


@hookimpl
def lossbridge_register_backends(register: Any) -> None:
    """lossbridge's own NumPy backend, through the same hook as every plugin's."""
    register(NumpyBackend())
