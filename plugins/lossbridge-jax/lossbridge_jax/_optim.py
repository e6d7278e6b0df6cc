"""Optimizers as ``optax.GradientTransformation``s built from one :class:`BoundOptimizer`.

The transformation works over any pytree of parameters. Its state is a :class:`LossbridgeState`,
a NamedTuple like Optax's own states: an int32 step ``count`` (saturating, like Optax's) and one
field per state slot of the spec, each a tree with the parameters' structure. Slots that are
Optax's under another name carry Optax's name (:data:`OPTAX_SLOT_NAMES`: Adam's ``m``/``v`` are
``mu``/``nu``, SGD's momentum buffer ``trace``), so ``optax.tree_utils.tree_get(state, "mu")`` and
``state.mu`` work as with ``optax.adam``. ``state.slots`` is the same data as a tree with the
parameters' structure whose leaves are the spec's per-parameter state dicts (spec names).

Hyperparameters
---------------
* A callable hyperparameter (an Optax schedule as ``lr``) is evaluated at the number of updates
  taken so far, as ``optax.scale_by_schedule`` does.
* ``tx.factory`` is a function of the optimizer's numeric hyperparameters (keyword-only, defaulting
  to the current values) that returns a new transformation, so ``optax.inject_hyperparams`` can hold
  them in its state and change them without recompiling::

      tx = lossbridge.get("adam", backend="jax", lr=1e-3)
      tx = optax.inject_hyperparams(tx.factory)(lr=1e-3)
      state = tx.init(params)
      state.hyperparams["lr"] = 1e-4      # takes effect at the next update, same compiled step

Dtypes and sharding: updates have each gradient's dtype, every state leaf keeps its dtype across
steps (so a jitted step never retraces), float16/bfloat16 leaves are computed in float32, and a
state slot shaped like its parameter is placed on the parameter's sharding at ``init`` when the
parameter is committed to a device or sharding (an uncommitted parameter gets uncommitted slots, so
a jitted step does not recompile on its second call).
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

from ._backend import JaxBackend
from ._loss import to_jax

__all__ = ["OPTAX_SLOT_NAMES", "LossbridgeState", "LossbridgeTransformation", "make_transformation"]

_LOW_PRECISION = (jnp.float16, jnp.bfloat16)
_BACKEND = JaxBackend()


#: spec slot name -> Optax's name for the same quantity (spec-independent: the spec's slot names are
#: shared across families, ``m``/``v`` are always the first / second moment).
OPTAX_SLOT_NAMES: dict[str, str] = {"m": "mu", "v": "nu", "v_max": "nu_max", "momentum": "trace"}
_SPEC_SLOT_NAMES = {v: k for k, v in OPTAX_SLOT_NAMES.items()}


class LossbridgeState:
    """Base of the optimizer states: NamedTuples ``(count, <slot>...)`` made per set of slots.

    ``count`` is the number of steps taken (int32); each other field is a tree with the parameters'
    structure holding one state slot (Optax's name where Optax has one, see
    :data:`OPTAX_SLOT_NAMES`). ``slots`` gives the per-parameter dicts under the spec's names.
    """

    __slots__ = ()
    _fields: tuple[str, ...]

    @property
    def slots(self) -> Any:
        """A tree with the parameters' structure whose leaves are ``{spec slot name: value}`` dicts."""
        names = self._fields[1:]
        if not names:
            return None
        first = getattr(self, names[0])
        leaves, treedef = jax.tree.flatten(first)
        columns = [treedef.flatten_up_to(getattr(self, n)) for n in names]
        dicts = [{_SPEC_SLOT_NAMES.get(n, n): col[i] for n, col in zip(names, columns, strict=True)}
                 for i in range(len(leaves))]
        return treedef.unflatten(dicts)


_STATE_CLASSES: dict[tuple[str, ...], type] = {}


def _state_class(names: tuple[str, ...]) -> type:
    """The NamedTuple state class with fields ``count`` and ``names`` (one class per set of names)."""
    cls = _STATE_CLASSES.get(names)
    if cls is None:
        # the NamedTuple itself (no subclass: Optax rebuilds states through their pytree class)
        cls = NamedTuple("LossbridgeState", [("count", jax.Array), *[(n, Any) for n in names]])
        cls.slots = LossbridgeState.slots  # type: ignore[attr-defined]
        cls.__module__ = __name__
        _STATE_CLASSES[names] = cls
    return cls


def _pack(count: Any, treedef: Any, dicts: list[dict[str, Any]], names: tuple[str, ...] | None = None) -> Any:
    """The state NamedTuple from the per-leaf slot dicts (spec names)."""
    if names is None:
        spec_names = list(dicts[0]) if dicts else []
        names = tuple(OPTAX_SLOT_NAMES.get(n, n) for n in spec_names)
    fields = {n: treedef.unflatten([d[_SPEC_SLOT_NAMES.get(n, n)] for d in dicts]) for n in names}
    # (a tree without array leaves gives each field the parameters' structure with no leaves)
    return _state_class(names)(count, **fields)


def _unpack(state: Any, treedef: Any) -> list[dict[str, Any]]:
    """The per-leaf slot dicts (spec names) of a state, in the order of ``treedef``'s leaves."""
    names = state._fields[1:]
    columns = [treedef.flatten_up_to(getattr(state, n)) for n in names]
    return [{_SPEC_SLOT_NAMES.get(n, n): col[i] for n, col in zip(names, columns, strict=True)}
            for i in range(treedef.num_leaves)]


class LossbridgeTransformation(optax.GradientTransformationExtraArgs):
    """An ``optax.GradientTransformationExtraArgs`` that also exposes its lossbridge spec.

    ``bound`` is the resolved :class:`~lossbridge.bound.BoundOptimizer`, ``spec`` its spec and
    ``factory`` the hyperparameter factory for ``optax.inject_hyperparams``.
    """

    __slots__ = ()

    @property
    def bound(self) -> BoundOptimizer:
        """The spec with its resolved hyperparameters."""
        return self.init.bound  # type: ignore[attr-defined]

    @property
    def spec(self) -> Any:
        """The :class:`~lossbridge.spec.OptimizerSpec`."""
        return self.bound.spec

    @property
    def factory(self) -> Callable[..., LossbridgeTransformation]:
        """``factory(**hyper)``: a transformation with some numeric hyperparameters replaced."""
        return _factory(self.bound)


def _compute_dtype(dtype: Any) -> Any:
    return jnp.float32 if dtype in _LOW_PRECISION else dtype


def _check_leaf(x: Any, name: str) -> Any:
    x = to_jax(_BACKEND, x, name)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise InputError(f"{name}: expected floating-point arrays, got a leaf of dtype {x.dtype}")
    return x


def _on_sharding(slot: Any, param: Any) -> Any:
    """Put a concrete slot shaped like its parameter on the parameter's sharding, if it is committed.

    An uncommitted parameter (made without ``device_put``/a sharding) keeps uncommitted slots: a
    committed slot next to uncommitted params makes a jitted step recompile on its second call.
    """
    if isinstance(param, jax.core.Tracer) or isinstance(slot, jax.core.Tracer):
        return slot
    if getattr(slot, "shape", None) != param.shape or not getattr(param, "committed", False):
        return slot
    return jax.device_put(slot, param.sharding)


def _init_leaf(bound: BoundOptimizer, param: Any) -> dict[str, Any]:
    p = _check_leaf(param, "params")
    work = p.astype(_compute_dtype(p.dtype))
    slots = bound.init(work, xp=jnp)
    return {k: _on_sharding(jnp.asarray(v, dtype=_slot_dtype(v, p)), p) for k, v in slots.items()}


def _slot_dtype(value: Any, param: Any) -> Any:
    """Slots are stored in the parameter's dtype (floating slots) or their own (integer flags)."""
    dtype = jnp.asarray(value).dtype
    return param.dtype if jnp.issubdtype(dtype, jnp.floating) else dtype


def _scheduled(bound: BoundOptimizer, count: Any) -> dict[str, Any]:
    """Callable hyperparameters (schedules) evaluated at the number of updates taken so far."""
    return {k: v(count) for k, v in bound.hyper.items() if callable(v) and not bound.spec.param(k).static}


def _update_leaf(
    bound: BoundOptimizer,
    grad: Any,
    slots: dict[str, Any],
    param: Any,
    step_count: Any,
    hyper: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    dtype = _compute_dtype(grad.dtype)
    g = grad.astype(dtype)
    p = None if param is None else jnp.asarray(param).astype(dtype)
    state = {k: s.astype(dtype) if jnp.issubdtype(s.dtype, jnp.floating) else s for k, s in slots.items()}
    step = step_count.astype(dtype)
    try:
        delta, new = bound.update(p, g, state, step=step, xp=jnp, **hyper)
    except (TypeError, AttributeError) as exc:
        if param is not None:
            raise
        raise InputError(
            f"params: {bound.spec.name} with these hyperparameters needs the current parameters, "
            "got None; call update(grads, state, params)"
        ) from exc
    new_state = {k: jnp.asarray(v).astype(slots[k].dtype) for k, v in new.items()}
    return jnp.asarray(delta).astype(grad.dtype), new_state


def make_transformation(bound: BoundOptimizer, backend: Any = None) -> LossbridgeTransformation:
    """The Optax transformation running ``bound`` on every leaf of a parameter tree."""

    def init(params: Any) -> LossbridgeState:
        leaves, treedef = jax.tree.flatten(params)
        dicts = [_init_leaf(bound, p) for p in leaves]
        # the field names are the spec's slots for these hyperparameters, also for a tree without
        # arrays (Optax's map_params initializes on placeholders): read them off a probe tensor
        probe = dicts[0] if dicts else bound.init(jnp.zeros((1, 1), jnp.float32), xp=jnp)
        names = tuple(OPTAX_SLOT_NAMES.get(n, n) for n in probe)
        return _pack(jnp.zeros([], jnp.int32), treedef, dicts, names)

    def update(
        updates: Any, state: LossbridgeState, params: Any | None = None, **extra_args: Any
    ) -> tuple[Any, LossbridgeState]:
        del extra_args
        leaves, treedef = jax.tree.flatten(updates)
        leaves = [_check_leaf(g, "grads") for g in leaves]
        slot_leaves = _unpack(state, treedef)
        param_leaves = [None] * len(leaves) if params is None else treedef.flatten_up_to(params)
        count = optax.safe_int32_increment(state.count)
        hyper = _scheduled(bound, state.count)
        pairs = [
            _update_leaf(bound, g, s, p, count, hyper)
            for g, s, p in zip(leaves, slot_leaves, param_leaves, strict=True)
        ]
        new_updates = treedef.unflatten([d for d, _ in pairs])
        return new_updates, _pack(count, treedef, [s for _, s in pairs], state._fields[1:])

    init.bound = bound  # type: ignore[attr-defined]
    return LossbridgeTransformation(init, update)


def _factory(bound: BoundOptimizer) -> Callable[..., LossbridgeTransformation]:
    """A factory whose signature lists the numeric hyperparameters, for ``inject_hyperparams``."""
    names = [p.name for p in bound.spec.params if not p.static]

    def factory(**hyper: Any) -> LossbridgeTransformation:
        arrays = {k: v for k, v in hyper.items() if isinstance(v, jax.Array)}
        python = {k: v for k, v in hyper.items() if k not in arrays}
        rebound = bound.with_hyper(**python) if python else bound
        if arrays:
            unknown = sorted(set(arrays) - set(names))
            if unknown:
                rebound.with_hyper(**dict.fromkeys(unknown, 0.0))  # raises, listing the valid names
            rebound = BoundOptimizer(rebound.spec, {**rebound.hyper, **arrays}, rebound.convention)
        return make_transformation(rebound)

    factory.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=bound.hyper[n]) for n in names]
    )
    factory.__name__ = factory.__qualname__ = bound.spec.name
    factory.__doc__ = f"lossbridge {bound.spec.name}: a transformation with these hyperparameters."
    return factory
