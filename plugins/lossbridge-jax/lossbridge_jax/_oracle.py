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
Only the outputs of the spec's ``update`` that read the needs (Sophia's Hessian average ``h``; found by
a dependence walk over the traced update) are computed under that ``cond``; the others (the delta, the
momentum) are computed once outside it with zeros for the needs (the spec's contract for the steps that
do not use them), so no zeros are materialized and the delta stays fused with ``apply_updates``, as in
Optax's own ``lax.cond`` over the Hessian average only. Everything traces under ``jax.jit``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.extend.core import Var

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
        step_of: dict[Any, Any] = {}  # one step array per dtype: a lax.cond closes over each distinct array
        for g, s, p in zip(leaves, slot_leaves, param_leaves, strict=True):
            dtype = base._compute_dtype(g.dtype)
            gs.append(g.astype(dtype))
            ps.append(None if p is None else jnp.asarray(p).astype(dtype))
            sts.append({k: v.astype(jnp.promote_types(dtype, v.dtype)) if base._inexact(v.dtype) else v
                        for k, v in s.items()})
            real = base._real_dtype(dtype)
            steps.append(step_of.setdefault(real, count.astype(real)))
        shared: dict[str, Any] = {}
        if "value" in spec.needs:
            if value is None:
                raise InputError(f"value: {spec.name} needs the objective's value at the current parameters: "
                                 "update(grads, state, params, value=loss)")
            shared["value"] = value
        key = state.rng_key if random else None
        glob = {slot: getattr(state, name) for name, slot in global_fields}
        if random and spec.needs_at is not None and not spec.global_slots:  # Sophia: needs every k steps
            key, deltas, news = _update_at(bound, key, count, updates, params, obj_fn, hyper, treedef, ps, gs, sts,
                                           steps, shared)
            new_glob: dict[str, Any] = {}
        else:
            per_leaf: list[dict[str, Any]] = [{} for _ in leaves]
            if random:
                key, drawn = _draw(bound, key, count, updates, params, obj_fn, {**bound.hyper, **hyper})
                for name, tree in drawn.items():
                    for d, x, g in zip(per_leaf, treedef.flatten_up_to(tree), gs, strict=True):
                        d[name] = x.astype(g.dtype)
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


def _depends_on_needs(
    bound: BoundOptimizer, p: Any, g: Any, s: dict[str, Any], step: Any, hyper: dict[str, Any],
    shared: dict[str, Any], needs: list[str],
) -> tuple[bool, dict[str, bool]]:
    """Which outputs of the spec's ``update`` (the delta; each new slot) read the needs: a taint walk over
    the jaxpr of one leaf's update, traced on abstract values (conservative: an equation with a
    tainted input taints all its outputs, sub-jaxprs included)."""
    dynamic = {"p": p, "g": g, "s": s, "step": step, "hyper": hyper, "shared": shared}
    flat, tree = jax.tree.flatten(dynamic)
    avals = [jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in flat]
    need_avals = [jax.ShapeDtypeStruct(jnp.shape(g), jnp.result_type(g)) for _ in needs]

    def run(need_values: list[Any], flat_values: list[Any]) -> Any:
        d = jax.tree.unflatten(tree, flat_values)
        extra = dict(zip(needs, need_values, strict=True))
        delta, new = bound.update(d["p"], d["g"], d["s"], step=d["step"], xp=jnp, **d["hyper"], **d["shared"],
                                  **extra)
        return delta, new

    closed, out_shape = jax.make_jaxpr(run, return_shape=True)(need_avals, avals)
    jaxpr = closed.jaxpr
    tainted = set(jaxpr.invars[: len(needs)])
    for eqn in jaxpr.eqns:
        if any(isinstance(v, Var) and v in tainted for v in eqn.invars):
            tainted.update(eqn.outvars)
    outs = [isinstance(v, Var) and v in tainted for v in jaxpr.outvars]
    out_tree = jax.tree.structure(out_shape)
    delta_dep, slot_deps = jax.tree.unflatten(out_tree, outs)
    return bool(delta_dep), dict(slot_deps)


def _update_at(
    bound: BoundOptimizer, key: Any, count: Any, updates: Any, params: Any, obj_fn: Any, hyper: dict[str, Any],
    treedef: Any, ps: list[Any], gs: list[Any], sts: list[dict[str, Any]], steps: list[Any], shared: dict[str, Any],
) -> tuple[Any, list[Any], list[dict[str, Any]]]:
    """The per-leaf updates of a spec with random needs used only at ``needs_at`` steps (Sophia).

    The outputs that do not read the needs (Sophia's delta and momentum) are computed once, outside any
    branch, with zeros for the needs (a broadcast XLA fuses into the update: nothing materialized), so
    the delta stays fused with ``apply_updates``. Only the outputs that read the needs (Sophia's ``h``)
    are computed under ``lax.cond``: from the drawn needs at the steps ``needs_at`` selects (the only
    steps that draw and advance the key), from zeros at the others, as the spec's contract says. The
    values are the spec's ``update`` in every case (no formula here), as before.
    """
    needs = [n for n in _RANDOM if n in bound.spec.needs]
    _check_hessian_args(bound, needs, params, obj_fn)
    zeros = [{n: jnp.zeros(jnp.shape(g), g.dtype) for n in needs} for g in gs]
    deps = [_depends_on_needs(bound, p, g, s, step, hyper, shared, needs)
            for p, g, s, step in zip(ps, gs, sts, steps, strict=True)]
    deltas, news = [], []
    for p, g, s, step, z in zip(ps, gs, sts, steps, zeros, strict=True):
        delta, new = bound.update(p, g, s, step=step, xp=jnp, **hyper, **shared, **z)
        deltas.append(delta)
        news.append(new)

    def dependent(per_leaf: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]]]:
        out_d, out_s = [], []
        for p, g, s, step, extra, (d_dep, s_dep) in zip(ps, gs, sts, steps, per_leaf, deps, strict=True):
            delta, new = bound.update(p, g, s, step=step, xp=jnp, **hyper, **shared, **extra)
            out_d.append(jnp.asarray(delta) if d_dep else None)
            out_s.append({k: v for k, v in new.items() if s_dep.get(k, True)})
        return out_d, out_s

    def used(key: Any) -> tuple[Any, Any]:
        key, drawn = _draw_now(bound, key, updates, params, obj_fn, needs)
        columns = [treedef.flatten_up_to(drawn[n]) for n in needs]
        per_leaf = [{n: col[i].astype(g.dtype) for n, col in zip(needs, columns, strict=True)}
                    for i, g in enumerate(gs)]
        return key, dependent(per_leaf)

    def skip(key: Any) -> tuple[Any, Any]:
        return key, dependent(zeros)

    needs_at = bound.spec.needs_at
    assert needs_at is not None  # the caller's condition
    at = needs_at(count.astype(jnp.result_type(float)), xp=jnp, **{**bound.hyper, **hyper})
    key, (dep_deltas, dep_slots) = jax.lax.cond(at, used, skip, key)
    deltas = [d if dd is None else dd for d, dd in zip(deltas, dep_deltas, strict=True)]
    news = [{**new, **dep} for new, dep in zip(news, dep_slots, strict=True)]
    return key, deltas, news


def _draw_now(
    bound: BoundOptimizer, key: Any, updates: Any, params: Any, obj_fn: Any, needs: list[str]
) -> tuple[Any, dict[str, Any]]:
    """``(next key, {need: tree})``: every random need drawn now (one split per need, Optax's order)."""
    _check_hessian_args(bound, needs, params, obj_fn)
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


def _check_hessian_args(bound: BoundOptimizer, needs: list[str], params: Any, obj_fn: Any) -> None:
    spec = bound.spec
    if "hessian_diag" in needs:
        if params is None:
            raise InputError(f"params: {spec.name} needs the current parameters, got None")
        if obj_fn is None:
            raise InputError(f"obj_fn: {spec.name} estimates the Hessian diagonal from the objective: "
                             "update(grads, state, params, obj_fn=lambda p: loss(p, batch))")


def _draw(
    bound: BoundOptimizer, key: Any, count: Any, updates: Any, params: Any, obj_fn: Any, hyper: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """``(next key, {need: tree})`` for the random needs, under ``lax.cond`` when the spec has ``needs_at``."""
    spec = bound.spec
    needs = [n for n in _RANDOM if n in spec.needs]
    _check_hessian_args(bound, needs, params, obj_fn)
    targets = {"noise": updates, "hessian_diag": params}

    def draw(key: Any) -> tuple[Any, dict[str, Any]]:
        return _draw_now(bound, key, updates, params, obj_fn, needs)

    def skip(key: Any) -> tuple[Any, dict[str, Any]]:
        return key, {n: jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), jnp.asarray(x).dtype), targets[n])
                     for n in needs}

    if spec.needs_at is None:
        return draw(key)
    used = spec.needs_at(count.astype(jnp.result_type(float)), xp=jnp, **hyper)
    return jax.lax.cond(used, draw, skip, key)
