"""Closure-step optimizers (``OptimizerSpec.closure_step``: L-BFGS) as ``optax.GradientTransformationExtraArgs``.

``tx = lossbridge.get("lbfgs", backend="jax", convention="optax")`` is used exactly as ``optax.lbfgs``
in Optax's documented loop::

    state = tx.init(params)
    value_and_grad = optax.value_and_grad_from_state(f)
    for _ in range(n):
        value, grad = value_and_grad(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        params = optax.apply_updates(params, updates)

The parameter tree is one vector (its leaves flattened in ``jax.tree.flatten`` order); the spec's
loops are ``jax.lax.while_loop``, so ``update`` traces under ``jax.jit``. Extra keyword arguments
that ``value_fn`` accepts are passed to it, as Optax's line search does. The state is a
:class:`LbfgsState`: ``value`` and ``grad`` (the objective at the current parameters, ``grad``
with the parameters' structure; ``value`` is ``inf`` until known) for
``optax.value_and_grad_from_state``, and ``memory``, the spec's other slots over the flat vector
(its pairs a ring buffer with the write position ``head``, as Optax's ``memory_idx``: a stored pair is
one ``.at[head].set(row)``, a dynamic-update-slice done in place inside the compiled step).
Without a line search (``linesearch=None``) no ``value_fn`` is needed (as in Optax).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossbridge.bound import BoundOptimizer
from lossbridge.errors import InputError

__all__ = ["LbfgsState", "LbfgsTransformation", "closure_transformation"]


class LbfgsState(NamedTuple):
    """State of a closure-step optimizer: the objective at the current point and the spec's memory."""

    value: jax.Array
    grad: Any
    memory: dict[str, jax.Array]


class LbfgsTransformation(optax.GradientTransformationExtraArgs):
    """An ``optax.GradientTransformationExtraArgs`` that also exposes its lossbridge spec (``bound``, ``spec``)."""

    __slots__ = ()

    @property
    def bound(self) -> BoundOptimizer:
        """The spec with its resolved hyperparameters."""
        return self.init.bound  # type: ignore[attr-defined]

    @property
    def spec(self) -> Any:
        """The :class:`~lossbridge.spec.OptimizerSpec`."""
        return self.bound.spec


def _needs_objective(hyper: dict[str, Any]) -> bool:
    return hyper.get("line_search") is not None or hyper.get("max_iter", 1) > 1


def _set_row(mem: jax.Array, i: jax.Array, row: jax.Array) -> jax.Array:
    """The spec's ``set_row`` hook: row ``i`` replaced (a dynamic-update-slice; in place under ``jax.jit``)."""
    return mem.at[i].set(row)


def _get_row(mem: jax.Array, i: jax.Array) -> jax.Array:
    """The spec's ``get_row`` hook: row ``i`` (a dynamic-slice, as Optax's ``x[idx]``)."""
    return mem[i]


def _fn_kwargs(value_fn: Callable[..., Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The extra arguments ``value_fn`` accepts (Optax's rule); any other is an error."""
    names = list(inspect.signature(value_fn).parameters)
    unknown = sorted(k for k in extra if k not in names)
    if unknown:
        raise TypeError(f"Unexpected keyword arguments passed to update: {unknown}; they are not accepted by value_fn")
    return dict(extra)


def closure_transformation(bound: BoundOptimizer) -> LbfgsTransformation:
    """The Optax transformation running ``bound``'s closure step over the whole parameter tree."""
    spec = bound.spec
    step = spec.closure_step
    assert step is not None

    def flat(tree: Any) -> jax.Array:
        leaves = jax.tree.leaves(tree)
        for leaf in leaves:
            dtype = jnp.asarray(leaf).dtype
            if not jnp.issubdtype(dtype, jnp.floating):
                raise InputError(f"{spec.name}: expected real floating-point leaves, got dtype {dtype}")
        return jnp.concatenate([jnp.ravel(leaf) for leaf in leaves]) if leaves else jnp.zeros((0,))

    def unflat(x: jax.Array, like: Any) -> Any:
        leaves, treedef = jax.tree.flatten(like)
        parts, k = [], 0
        for leaf in leaves:
            n = leaf.size
            parts.append(jnp.reshape(x[k : k + n], leaf.shape).astype(leaf.dtype))
            k += n
        return treedef.unflatten(parts)

    def init(params: Any) -> LbfgsState:
        x = flat(params)
        memory = bound.init(x, xp=jnp)
        value, grad = memory.pop("value"), memory.pop("grad")
        return LbfgsState(value=value, grad=unflat(grad, params), memory=memory)

    def update(
        updates: Any, state: LbfgsState, params: Any | None = None, *, value: Any = None, grad: Any = None,
        value_fn: Callable[..., Any] | None = None, **extra_args: Any,
    ) -> tuple[Any, LbfgsState]:
        if params is None:
            raise InputError(f"params: {spec.name} needs the current parameters, got None; "
                             "call update(grads, state, params, value=..., grad=..., value_fn=...)")
        hyper = dict(bound.hyper)
        n_iter = state.memory["n_iter"]
        hyper.update({k: v(n_iter) for k, v in hyper.items() if callable(v) and not spec.param(k).static})
        x = flat(params)
        g = flat(updates).astype(x.dtype)
        if _needs_objective(hyper):
            if value_fn is None or value is None:
                raise InputError(f"{spec.name} with a line search needs value=, grad= and value_fn= "
                                 "(see optax.value_and_grad_from_state)")
            kwargs = _fn_kwargs(value_fn, extra_args)
            value_and_grad_tree = jax.value_and_grad(value_fn)

            def value_and_grad(trial: jax.Array) -> tuple[jax.Array, jax.Array]:
                v, gr = value_and_grad_tree(unflat(trial, params), **kwargs)
                return jnp.asarray(v, dtype=x.dtype), flat(gr).astype(x.dtype)
        else:
            def value_and_grad(trial: jax.Array) -> tuple[jax.Array, jax.Array]:
                # traced inside a loop that never runs without a line search (one iteration, no re-evaluation)
                return jnp.asarray(jnp.nan, dtype=x.dtype), jnp.zeros_like(trial)

        v0 = jnp.asarray(jnp.inf if value is None else value, dtype=x.dtype)
        slope_grad = None if grad is None else flat(grad).astype(x.dtype)
        memory = {**state.memory, "value": state.value, "grad": flat(state.grad).astype(x.dtype)}
        _, delta, new = step(x, g, memory, value=v0, value_and_grad=value_and_grad, loop=jax.lax.while_loop,
                             set_row=_set_row, get_row=_get_row, xp=jnp, slope_grad=slope_grad, **hyper)
        new = dict(new)
        new_value, new_grad = new.pop("value"), new.pop("grad")
        new = {k: jnp.asarray(v).astype(state.memory[k].dtype) for k, v in new.items()}
        new_state = LbfgsState(value=jnp.asarray(new_value).astype(state.value.dtype),
                               grad=unflat(new_grad, params), memory=new)
        return unflat(delta, updates), new_state

    init.bound = bound  # type: ignore[attr-defined]
    return LbfgsTransformation(init, update)
