"""Closure-step optimizers (``OptimizerSpec.closure_step``: L-BFGS) on NumPy arrays.

``opt = lossbridge.get("lbfgs", backend="numpy", convention="torch")`` is a
:class:`NumpyClosureOptimizer`; ``opt.step(params, closure)`` updates ``params`` (a list, tuple or
dict of float arrays) in place, where ``closure(params) -> (value, grads)`` evaluates the objective
and its gradient (``grads`` with the structure of ``params``) at the parameters it is given. It
returns the value at the parameters it started from (as ``torch.optim.LBFGS.step(closure)``
returns ``closure()``). The spec's loops run on the host (``while``), NumPy's floating-point
warnings are silenced inside a step (a line search's rejected interpolations divide by zero and are
discarded by ``where``). The memory (the spec's ring buffer ``s_mem``/``y_mem``/``rho``) is written one
row in place (:func:`set_row`): the optimizer owns those arrays (a state it did not make, loaded or
assigned to ``opt.state``, is copied once before its first write), so nothing outside sees them change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossbridge.bound import BoundOptimizer
from lossbridge.errors import InputError

__all__ = ["NumpyClosureOptimizer", "get_row", "host_loop", "set_row"]

#: the state slots the spec writes through ``set_row`` (its ring-buffer memory)
_RING = ("s_mem", "y_mem", "rho")


def host_loop(cond: Callable[[Any], Any], body: Callable[[Any], Any], carry: Any) -> Any:
    """The spec's ``loop`` on an eager backend: ``while bool(cond(carry)): carry = body(carry)``."""
    while bool(cond(carry)):
        carry = body(carry)
    return carry


def set_row(mem: np.ndarray, i: Any, row: Any) -> np.ndarray:
    """The spec's ``set_row`` hook on NumPy: row ``i`` of ``mem`` written in place (an owned array)."""
    mem[int(i)] = row
    return mem


def get_row(mem: np.ndarray, i: Any) -> np.ndarray:
    """The spec's ``get_row`` hook on NumPy: row ``i`` of ``mem`` as a view (no copy)."""
    return mem[int(i)]


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, Mapping):
        return [leaf for k in tree for leaf in _leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for t in tree for leaf in _leaves(t)]
    return [tree]


def _rebuild(tree: Any, items: list[Any]) -> Any:
    """``tree``'s structure with ``items`` (consumed in leaf order) as its leaves."""
    if isinstance(tree, Mapping):
        return {k: _rebuild(tree[k], items) for k in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_rebuild(t, items) for t in tree)
    return items.pop(0)


class NumpyClosureOptimizer:
    """A closure-step optimizer (L-BFGS) over NumPy arrays: ``step(params, closure)``, in place."""

    def __init__(self, bound: BoundOptimizer, *, check_finite: bool = False) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.check_finite = check_finite
        self.state: dict[str, np.ndarray] | None = None
        self._owned: dict[str, np.ndarray] = {}  # the memory arrays this optimizer made (written in place)

    @property
    def hyper(self) -> dict[str, Any]:
        """The current hyperparameters."""
        return dict(self.bound.hyper)

    def set_hyper(self, **changes: Any) -> None:
        """Change hyperparameters between steps (validated)."""
        self.bound = self.bound.with_hyper(**changes)

    def _flat(self, tree: Any, name: str, shapes: list[tuple[int, ...]] | None = None) -> np.ndarray:
        leaves = [np.asarray(x) for x in _leaves(tree)]
        for x in leaves:
            if not np.issubdtype(x.dtype, np.floating):
                raise InputError(f"{self.spec.name}: {name}: expected real floating-point arrays, got dtype {x.dtype}")
        if shapes is not None and [x.shape for x in leaves] != shapes:
            raise InputError(f"{self.spec.name}: {name}: expected arrays of shapes {shapes}, "
                             f"got {[x.shape for x in leaves]}")
        if self.check_finite and not all(np.all(np.isfinite(x)) for x in leaves):
            raise InputError(f"{self.spec.name}: {name}: contains NaN or infinity")
        dtype = np.result_type(*leaves) if leaves else np.float64
        return np.concatenate([x.reshape(-1).astype(dtype) for x in leaves]) if leaves else np.zeros(0, dtype)

    def step(self, params: Any, closure: Callable[[Any], tuple[Any, Any]]) -> float:
        """One step: ``closure(params) -> (value, grads)`` is called at the start and at trial points."""
        leaves = _leaves(params)
        shapes = [np.shape(p) for p in leaves]
        sizes = [int(np.prod(s)) for s in shapes]
        x0 = self._flat(params, "params")
        dtype = x0.dtype

        def unflatten(x: np.ndarray) -> Any:
            parts, k = [], 0
            for shape, size, leaf in zip(shapes, sizes, leaves):
                parts.append(np.asarray(x[k : k + size], dtype=np.asarray(leaf).dtype).reshape(shape))
                k += size
            return _rebuild(params, parts)

        def value_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            value, grads = closure(unflatten(x))
            return np.asarray(value, dtype=dtype), self._flat(grads, "grads", shapes)

        value, grad = value_and_grad(x0)
        if self.state is None:
            self.state = self.bound.init(x0, xp=np)
            self._owned = {slot: self.state[slot] for slot in _RING if slot in self.state}
        state = dict(self.state)
        for slot in _RING:  # a state this optimizer did not make (loaded, assigned) is copied before a write
            if slot in state and state[slot] is not self._owned.get(slot):
                state[slot] = np.array(state[slot], copy=True)
        self._owned = {slot: state[slot] for slot in _RING if slot in state}
        hyper = self.bound._rounded(self.bound.hyper)
        # a schedule as a hyperparameter (lr=lossbridge.get("cosine_decay", ...)) at the iterations taken so
        # far (the state's n_iter: the update count under Optax's one iteration per update), as on JAX
        count = self.state["n_iter"]
        hyper = {k: v(count) if callable(v) and not self.spec.param(k).static else v for k, v in hyper.items()}
        step = self.spec.closure_step
        assert step is not None
        with np.errstate(all="ignore"):
            new_x, _, self.state = step(x0, grad, state, value=value, value_and_grad=value_and_grad,
                                        loop=host_loop, set_row=set_row, get_row=get_row,
                                        xp=np, **hyper)
        k = 0
        for p, size in zip(leaves, sizes):
            p[...] = np.asarray(new_x[k : k + size]).reshape(np.shape(p))
            k += size
        return float(value)

    def __repr__(self) -> str:
        conv = self.bound.convention.framework if self.bound.convention else None
        return f"<lossbridge numpy closure optimizer {self.spec.name!r} convention={conv!r} {dict(self.bound.hyper)}>"
