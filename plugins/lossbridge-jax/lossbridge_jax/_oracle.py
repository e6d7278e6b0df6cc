"""Optax transformations for specs whose step needs more than the gradient (``OptimizerSpec.needs``).

The transformation is an ``optax.GradientTransformationExtraArgs`` whose ``update`` takes Optax's
extra arguments for these optimizers:

* ``value=`` (``"value"``, e.g. ``polyak_sgd``): the objective at the current parameters, as
  ``optax.polyak_sgd``'s update takes it;
* ``obj_fn=`` (``"hessian_diag"``, e.g. ``sophia``): the objective as a function of the parameter
  tree; the Hessian-diagonal estimate is Hutchinson's ``r * (H r)`` with ``H r`` a jvp of
  ``jax.grad(obj_fn)`` and ``r`` Rademacher (drawn in float32 and cast to the parameters' lowest
  dtype), as ``optax.contrib.hutchinson_estimator_diag_hessian`` computes it;
* ``"noise"`` (``noisy_sgd``): one standard-normal array per leaf, like the updates.

Randomness follows Optax's key handling exactly, so numbers equal Optax's for the same seed: the
state holds a key (``rng_key``) made from the spec's ``key`` with ``jax.random.key``; a step that
draws splits it into ``(next key, sample key)`` and draws every leaf from the sample key with
``optax.tree.random_like`` (one split per leaf). A spec's ``needs_at`` (Sophia's refresh every
``update_interval`` steps) puts the draw under ``jax.lax.cond``: the key advances only when used.
Everything traces under ``jax.jit``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lossbridge.bound import BoundOptimizer
from lossbridge.errors import InputError, ParameterError

from . import _optim as base

__all__ = ["oracle_transformation"]

_RANDOM = ("noise", "hessian_diag")
_KEY_FIELD = ("rng_key", "rng_key")


def _lowest(dtypes: list[Any]) -> Any:
    return min(dtypes, key=lambda d: jnp.dtype(d).itemsize, default=jnp.float32)


def oracle_transformation(bound: BoundOptimizer, opts: Any) -> base.LossbridgeTransformation:
    """The transformation running ``bound`` (a spec with ``needs``) over a parameter tree."""
    spec = bound.spec
    if opts.masks or opts.slot_dtypes:
        raise ParameterError(f"{spec.name}: Optax options (masks, slot dtypes) are not supported for an "
                             f"optimizer with needs {list(spec.needs)}")
    random = any(n in spec.needs for n in _RANDOM)
    global_fields = base._global_fields(bound) if spec.global_slots else ()
    fields = global_fields + ((_KEY_FIELD,) if random else ())

    def init(params: Any) -> Any:
        leaves, treedef = jax.tree.flatten(params)
        dicts = [base._init_leaf(bound, p, {}) for p in leaves]
        probe = dicts[0] if dicts else bound.init(jnp.zeros((1, 1), jnp.float32), xp=jnp)
        slots = tuple(probe)
        cls = base._state_class(base.state_field_names(slots, spec), slots, fields)
        glob: dict[str, Any] = {}
        if spec.global_slots:
            dtype = _lowest([base._compute_dtype(base._check_leaf(p, "params").dtype) for p in leaves])
            glob.update(bound.init_global(dtype=dtype, xp=jnp))
        if random:
            seed = bound.hyper["key"]  # None: 0 (Optax's default); an array when inject_hyperparams holds it
            glob["rng_key"] = jax.random.key(0 if seed is None else seed)
        return base._pack(jnp.zeros([], jnp.int32), treedef, dicts, cls, glob)

    def update(
        updates: Any, state: Any, params: Any | None = None, *, value: Any = None, obj_fn: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, Any]:
        del extra_args  # Optax's extra arguments for other transformations of a chain
        leaves, treedef = jax.tree.flatten(updates)
        leaves = [base._check_leaf(g, "grads") for g in leaves]
        slot_leaves = base._unpack(state, treedef)
        param_leaves = [None] * len(leaves) if params is None else treedef.flatten_up_to(params)
        count = optax.safe_int32_increment(state.count)
        hyper = base._scheduled(bound, state.count)
        gs, ps, sts, steps = [], [], [], []
        for g, s, p in zip(leaves, slot_leaves, param_leaves, strict=True):
            dtype = base._compute_dtype(g.dtype)
            gs.append(g.astype(dtype))
            ps.append(None if p is None else jnp.asarray(p).astype(dtype))
            sts.append({k: v.astype(jnp.promote_types(dtype, v.dtype)) if base._inexact(v.dtype) else v
                        for k, v in s.items()})
            steps.append(count.astype(base._real_dtype(dtype)))
        shared: dict[str, Any] = {}
        if "value" in spec.needs:
            if value is None:
                raise InputError(f"value: {spec.name} needs the objective's value at the current parameters: "
                                 "update(grads, state, params, value=loss)")
            shared["value"] = value
        key = state.rng_key if random else None
        per_leaf: list[dict[str, Any]] = [{} for _ in leaves]
        if random:
            key, drawn = _draw(bound, key, count, updates, params, obj_fn, {**bound.hyper, **hyper})
            for name, tree in drawn.items():
                for d, x, g in zip(per_leaf, treedef.flatten_up_to(tree), gs, strict=True):
                    d[name] = x.astype(g.dtype)
        glob = {slot: getattr(state, name) for name, slot in global_fields}
        if spec.global_slots:
            if params is None:
                raise InputError(f"params: {spec.name} needs the current parameters, got None; "
                                 "call update(grads, state, params, ...)")
            deltas, news, new_glob = bound.update_all(ps, gs, sts, glob, steps=steps, xp=jnp, **hyper, **shared)
            new_glob = {k: base._cast(v, glob[k].dtype) for k, v in new_glob.items()}
        else:
            deltas, news, new_glob = [], [], {}
            for p, g, s, step, extra in zip(ps, gs, sts, steps, per_leaf, strict=True):
                delta, new = bound.update(p, g, s, step=step, xp=jnp, **hyper, **shared, **extra)
                deltas.append(delta)
                news.append(new)
        new_slots = [{k: base._cast(v, old[k].dtype) for k, v in new.items()} for new, old in zip(news, slot_leaves)]
        if random:
            new_glob["rng_key"] = key
        new_updates = treedef.unflatten([jnp.asarray(d).astype(g.dtype) for d, g in zip(deltas, leaves)])
        return new_updates, base._pack(count, treedef, new_slots, type(state), new_glob)

    init.bound = bound  # type: ignore[attr-defined]
    init.options = opts  # type: ignore[attr-defined]
    return base.LossbridgeTransformation(init, update)


def _draw(
    bound: BoundOptimizer, key: Any, count: Any, updates: Any, params: Any, obj_fn: Any, hyper: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """``(next key, {need: tree})`` for the random needs, under ``lax.cond`` when the spec has ``needs_at``."""
    spec = bound.spec
    needs = [n for n in _RANDOM if n in spec.needs]
    if "hessian_diag" in needs:
        if params is None:
            raise InputError(f"params: {spec.name} needs the current parameters, got None")
        if obj_fn is None:
            raise InputError(f"obj_fn: {spec.name} estimates the Hessian diagonal from the objective: "
                             "update(grads, state, params, obj_fn=lambda p: loss(p, batch))")
    targets = {"noise": updates, "hessian_diag": params}

    def draw(key: Any) -> tuple[Any, dict[str, Any]]:
        out = {}
        for name in needs:
            key, sub = jax.random.split(key)
            if name == "noise":
                out[name] = optax.tree.random_like(sub, target_tree=updates, sampler=jax.random.normal)
            else:
                signs = optax.tree.random_like(sub, params, jax.random.rademacher, dtype=jnp.float32)
                signs = optax.tree.cast(signs, optax.tree.dtype(params, "lowest"))
                hvp = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
                out[name] = jax.tree.map(lambda h, r, p: (h * r).astype(jnp.asarray(p).dtype), hvp, signs, params)
        return key, out

    def skip(key: Any) -> tuple[Any, dict[str, Any]]:
        return key, {n: jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), jnp.asarray(x).dtype), targets[n])
                     for n in needs}

    if spec.needs_at is None:
        return draw(key)
    used = spec.needs_at(count.astype(jnp.result_type(float)), xp=jnp, **hyper)
    return jax.lax.cond(used, draw, skip, key)
