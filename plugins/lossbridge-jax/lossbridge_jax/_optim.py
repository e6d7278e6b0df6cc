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

Options (Optax's own keywords, given to :func:`lossbridge.get` with the hyperparameters)
-----------------------------------------------------------------------------------
Which state slot or hyperparameter each option governs is data of the spec's Optax convention
(:attr:`~lossbridge.conventions.Convention.slot_dtypes`, :attr:`~lossbridge.conventions.Convention.masks`):

* a slot dtype (``mu_dtype``, ``accumulator_dtype``): that slot is stored in the dtype, at ``init``
  and after every update, as Optax casts it (the update itself is computed in the promoted dtype);
* a mask (``mask``, ``weight_decay_mask``, ``trust_ratio_mask``): a bool, a tree of bools with
  the parameters' structure (or a prefix of it) or a callable returning one (called with the
  parameters at ``init`` and with the updates at ``update``, as ``optax.masked`` does); the
  tensors whose entry is False run the same spec with the convention's values for them
  (``weight_decay=0``).

Complex parameters are updated as Optax updates them: the spec's math applied to complex values
(first moments complex, second moments of :math:`|g|^2`), the step counter real.

Dtypes and sharding: updates have each gradient's dtype, every state leaf keeps its dtype across
steps (so a jitted step never retraces), float16/bfloat16 leaves are computed in float32, and a
state slot shaped like its parameter is placed on the parameter's sharding at ``init`` when the
parameter is committed to a device or sharding (an uncommitted parameter gets uncommitted slots, so
a jitted step does not recompile on its second call).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossbridge.bound import BoundOptimizer
from lossbridge.errors import InputError, ParameterError

from ._backend import JaxBackend
from ._loss import check_finite_array, to_jax

__all__ = [
    "OPTAX_OPTIONS",
    "OPTAX_SLOT_NAMES",
    "LossbridgeState",
    "LossbridgeTransformation",
    "make_transformation",
]

_LOW_PRECISION = (jnp.float16, jnp.bfloat16)
_BACKEND = JaxBackend()


#: spec slot name -> Optax's name for the same quantity (spec-independent: the spec's slot names are
#: shared across families, ``m``/``v`` are always the first / second moment).
OPTAX_SLOT_NAMES: dict[str, str] = {"m": "mu", "v": "nu", "v_max": "nu_max", "momentum": "trace"}

#: Optax's keyword options the adapter takes (what each one governs is convention data, see above).
OPTAX_OPTIONS: tuple[str, ...] = JaxBackend.optimizer_options


def state_field_names(slots: tuple[str, ...], spec: Any = None) -> tuple[str, ...]:
    """The state fields for a spec's slots: Optax's name where it has one, collision-free.

    The spec's Optax convention's ``state`` names come first, then :data:`OPTAX_SLOT_NAMES`; a
    slot keeps its own name when the Optax name is another slot's own name or already taken (a
    spec whose slots are ``mu`` and ``m`` keeps both), and ``count`` is the step counter's field.
    """
    table = dict(OPTAX_SLOT_NAMES)
    convention = getattr(spec, "conventions", {}).get("optax") if spec is not None else None
    table.update(getattr(convention, "state", {}) or {})
    taken = set(slots) | {"count"}
    fields: list[str] = []
    for slot in slots:
        name = table.get(slot, slot)
        if name != slot and (name in taken or name in fields):
            name = slot
        fields.append(name if name != "count" else "count_slot")
    return tuple(fields)


class LossbridgeState:
    """Base of the optimizer states: NamedTuples ``(count, <slot>...)`` made per set of slots.

    ``count`` is the number of steps taken (int32); each other field is a tree with the parameters'
    structure holding one state slot (Optax's name where Optax has one, see
    :data:`OPTAX_SLOT_NAMES`), or one 0-d array where Optax keeps the slot once (see
    :func:`shared_fields`: schedule-free's ``b1``). ``slots`` gives the per-parameter dicts under the
    spec's names.
    """

    __slots__ = ()
    _fields: tuple[str, ...]

    _spec_slots: tuple[str, ...]

    @property
    def slots(self) -> Any:
        """A tree with the parameters' structure whose leaves are ``{spec slot name: value}`` dicts."""
        names = self._fields[1 : 1 + len(self._spec_slots)]
        trees = [n for n in names if n not in getattr(self, "_shared", ())]
        if not names or not trees:
            return None
        treedef = jax.tree.structure(getattr(self, trees[0]))
        return treedef.unflatten(_unpack(self, treedef))


_STATE_CLASSES: dict[tuple[tuple[str, ...], tuple[str, ...]], type] = {}


def _state_class(
    names: tuple[str, ...],
    spec_slots: tuple[str, ...],
    global_fields: tuple[tuple[str, str], ...] = (),
    shared: tuple[str, ...] = (),
) -> type:
    """The NamedTuple state class with fields ``count`` and ``names`` holding the slots ``spec_slots``.

    ``global_fields`` (``(field, spec global slot)`` pairs) are 0-d fields after the slots, for a
    spec with ``global_slots`` (shared by all leaves). ``shared`` names slot fields held as ONE 0-d
    value instead of a tree (see :func:`shared_fields`).
    """
    key = (names, spec_slots) if not global_fields else (names, spec_slots, global_fields)
    if shared:
        key = (names, spec_slots, global_fields, shared)
    cls = _STATE_CLASSES.get(key)  # type: ignore[arg-type]
    if cls is None:
        # the NamedTuple itself (no subclass: Optax rebuilds states through their pytree class)
        extra = [(f, jax.Array) for f, _ in global_fields]
        cls = NamedTuple("LossbridgeState", [("count", jax.Array), *[(n, Any) for n in names], *extra])
        cls.slots = LossbridgeState.slots  # type: ignore[attr-defined]
        cls._spec_slots = spec_slots  # type: ignore[attr-defined]
        cls._global_fields = global_fields  # type: ignore[attr-defined]
        cls._shared = frozenset(shared)  # type: ignore[attr-defined]
        cls.__module__ = __name__
        _STATE_CLASSES[key] = cls  # type: ignore[index]
    return cls


def _pack(
    count: Any, treedef: Any, dicts: list[dict[str, Any]], cls: type | tuple[str, ...], glob: Any = None
) -> Any:
    """The state NamedTuple of class ``cls`` from the per-leaf slot dicts (spec names).

    ``cls`` may also be the state's field names (``state._fields[1:]`` of a state of this module):
    the class made for those fields whose slots the dicts hold.
    """
    if isinstance(cls, tuple):
        cls = _class_for_fields(cls, set(dicts[0]) if dicts else None)
    names = cls._fields[1 : 1 + len(cls._spec_slots)]  # type: ignore[attr-defined]
    shared = getattr(cls, "_shared", ())
    fields = {n: _one([d[s] for d in dicts]) if n in shared else treedef.unflatten([d[s] for d in dicts])
              for n, s in zip(names, cls._spec_slots, strict=True)}  # type: ignore[attr-defined]
    # (a tree without array leaves gives each field the parameters' structure with no leaves)
    for name, slot in getattr(cls, "_global_fields", ()):
        fields[name] = glob[slot]  # type: ignore[index]
    return cls(count, **fields)


def _class_for_fields(names: tuple[str, ...], slots: set[str] | None) -> type:
    """The state class with these field names (holding ``slots`` when given)."""
    for key, cls in list(_STATE_CLASSES.items()):
        fields, spec_slots = key[0], key[1]  # global-state classes' keys carry a third part
        if fields == names and (slots is None or set(spec_slots) == slots):
            return cls
    inverse = {v: k for k, v in OPTAX_SLOT_NAMES.items()}
    return _state_class(names, tuple(inverse.get(n, n) if slots is None or n not in slots else n for n in names))


def _one(values: list[Any]) -> Any:
    """The one value of a shared 0-d slot from its per-leaf copies: the lowest dtype's (as Optax keeps
    its scalars in the parameters' lowest dtype); ``None`` for a tree without leaves."""
    if not values:
        return None
    return min(values, key=lambda v: jnp.dtype(jnp.asarray(v).dtype).itemsize)


def shared_fields(spec: Any, names: tuple[str, ...], slots: tuple[str, ...], probe: Mapping[str, Any]) -> tuple:
    """The slot fields held as ONE 0-d value shared by all leaves, as Optax holds them.

    A 0-d slot of an ``elementwise`` spec is the same value for every tensor at one step (the flag's
    contract); when the spec's Optax convention names it in ``state`` (Optax keeps that quantity in
    its state: schedule-free's ``b1``, ``max_lr``, ``weight_sum``), the field is that one 0-d array,
    so Optax's own functions reading it (``optax.contrib.schedule_free_eval_params``) work on our state.
    ``state.slots`` still gives it in every leaf's dict.
    """
    convention = getattr(spec, "conventions", {}).get("optax")
    table = getattr(convention, "state", {}) or {}
    if not getattr(spec, "elementwise", False) or not table:
        return ()
    return tuple(n for n, s in zip(names, slots, strict=True)
                 if s in table and jnp.ndim(probe[s]) == 0)


def _unpack(state: Any, treedef: Any) -> list[dict[str, Any]]:
    """The per-leaf slot dicts (spec names) of a state, in the order of ``treedef``'s leaves."""
    names = state._fields[1 : 1 + len(state._spec_slots)]
    shared = getattr(state, "_shared", ())
    columns = [[getattr(state, n)] * treedef.num_leaves if n in shared else treedef.flatten_up_to(getattr(state, n))
               for n in names]
    return [{s: col[i] for s, col in zip(state._spec_slots, columns, strict=True)}
            for i in range(treedef.num_leaves)]


@dataclass(frozen=True)
class _Options:
    """The Optax options resolved against the convention: slot dtypes and per-tensor masks."""

    slot_dtypes: Mapping[str, Any] = field(default_factory=dict)
    masks: tuple[tuple[Any, Mapping[str, Any]], ...] = ()
    #: lossbridge's opt-in check: refuse NaN and infinity in the gradients (concrete arrays only)
    check_finite: bool = False


def resolve_options(bound: BoundOptimizer, options: Mapping[str, Any]) -> _Options:
    """Optax's keyword options for ``bound``, read through its convention (Optax's when it has none)."""
    convention = bound.convention
    if convention is None or convention.framework != "optax":
        convention = bound.spec.conventions.get("optax", convention)
    slot_dtypes = dict(getattr(convention, "slot_dtypes", {}) or {})
    masks = dict(getattr(convention, "masks", {}) or {})
    dtypes: dict[str, Any] = {}
    chosen: list[tuple[Any, Mapping[str, Any]]] = []
    options = dict(options)
    check_finite = bool(options.pop("check_finite", False))
    for key, value in options.items():
        if key not in slot_dtypes and key not in masks:
            known = sorted(set(slot_dtypes) | set(masks))
            raise ParameterError(f"{bound.spec.name}: option {key!r} is not one of this optimizer's Optax "
                                 f"options (accepted: {', '.join(known) if known else 'none'})")
        if value is None:
            continue
        if key in slot_dtypes:
            dtypes[slot_dtypes[key]] = jax.dtypes.canonicalize_dtype(value)
        else:
            chosen.append((value, masks[key]))
    return _Options(dtypes, tuple(chosen), check_finite)


def check_finite_tree(tree: Any, name: str) -> None:
    """``check_finite=True``: an :class:`InputError` naming the leaf (``grads['w']``) and the first
    non-finite index. Eager only: under ``jax.jit`` the leaves are tracers with no values, and the
    check is skipped (use ``jax.config.update("jax_debug_nans", True)`` or ``jax.experimental.checkify``)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        check_finite_array(leaf, name + jax.tree_util.keystr(path))


def _mask_flags(mask: Any, tree: Any, treedef: Any) -> list[bool]:
    """One bool per leaf of ``tree`` from an Optax mask (bool, tree of bools or a prefix, or callable)."""
    if callable(mask):
        mask = mask(tree)
    if isinstance(mask, bool):
        return [mask] * treedef.num_leaves
    expanded = jax.tree.map(lambda m, sub: [bool(m)] * len(jax.tree.leaves(sub)), mask, tree)
    flags = jax.tree.leaves(expanded)
    if len(flags) != treedef.num_leaves:
        raise InputError(f"mask: expected a tree of bools matching the parameters, got {mask!r}")
    return flags


def _leaf_bounds(bound: BoundOptimizer, options: _Options, tree: Any, treedef: Any) -> list[tuple[Any, dict]]:
    """``(bound, overrides)`` per leaf: the spec with the masks' values where a mask is False."""
    overrides: list[dict[str, Any]] = [{} for _ in range(treedef.num_leaves)]
    for mask, values in options.masks:
        for i, keep in enumerate(_mask_flags(mask, tree, treedef)):
            if not keep:
                overrides[i].update(values)
    cache: dict[tuple, Any] = {}
    out = []
    for over in overrides:
        key = tuple(sorted(over.items()))
        if key not in cache:
            cache[key] = bound if not over else BoundOptimizer(bound.spec, {**bound.hyper, **over}, bound.convention)
        out.append((cache[key], over))
    return out


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
        return _factory(self.bound, self.init.options)  # type: ignore[attr-defined]

    def __lossbridge_chain__(self, parts: Any, accumulate: int) -> Any:
        """:func:`lossbridge.chain` on JAX: ``optax.chain`` (and ``optax.MultiSteps``), see ``_transforms``."""
        from ._transforms import chain

        return chain(*parts, accumulate=accumulate)


def _compute_dtype(dtype: Any) -> Any:
    return jnp.float32 if dtype in _LOW_PRECISION else dtype


def _check_leaf(x: Any, name: str) -> Any:
    x = to_jax(_BACKEND, x, name)
    if not _inexact(x.dtype):
        raise InputError(f"{name}: expected floating-point or complex arrays, got a leaf of dtype {x.dtype}")
    return x


def _inexact(dtype: Any) -> bool:
    """Real floating or complex: the dtypes Optax updates (complex as Optax does, see the module doc)."""
    return bool(jnp.issubdtype(dtype, jnp.inexact))


def _real_dtype(dtype: Any) -> Any:
    """The real dtype of a floating or complex dtype (the step counter's dtype for complex leaves)."""
    return jnp.finfo(dtype).dtype


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


def _init_leaf(bound: BoundOptimizer, param: Any, slot_dtypes: Mapping[str, Any]) -> dict[str, Any]:
    p = _check_leaf(param, "params")
    work = p.astype(_compute_dtype(p.dtype))
    slots = bound.init(work, xp=jnp)
    return {k: _on_sharding(_cast(v, slot_dtypes.get(k) or _slot_dtype(v, p)), p) for k, v in slots.items()}


def _cast(value: Any, dtype: Any) -> Any:
    """``value`` in ``dtype``; a complex value stored in a real slot keeps its real part (as Optax's casts)."""
    value = jnp.asarray(value)
    if jnp.iscomplexobj(value) and not jnp.issubdtype(dtype, jnp.complexfloating):
        value = jnp.real(value)
    return value.astype(dtype)


def _slot_dtype(value: Any, param: Any) -> Any:
    """Slots are stored in the parameter's dtype (floating slots) or their own (integer flags)."""
    dtype = jnp.asarray(value).dtype
    return param.dtype if _inexact(dtype) else dtype


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
    state = {k: s.astype(jnp.promote_types(dtype, s.dtype)) if _inexact(s.dtype) else s for k, s in slots.items()}
    step = step_count.astype(_real_dtype(dtype))
    try:
        delta, new = bound.update(p, g, state, step=step, xp=jnp, **hyper)
    except (TypeError, AttributeError) as exc:
        if param is not None:
            raise
        raise InputError(
            f"params: {bound.spec.name} with these hyperparameters needs the current parameters, "
            "got None; call update(grads, state, params)"
        ) from exc
    new_state = {k: _cast(v, slots[k].dtype) for k, v in new.items()}
    return jnp.asarray(delta).astype(grad.dtype), new_state


def make_transformation(
    bound: BoundOptimizer, backend: Any = None, *, options: _Options | None = None
) -> LossbridgeTransformation:
    """The Optax transformation running ``bound`` on every leaf of a parameter tree."""
    opts = options or _Options()
    if getattr(bound.spec, "closure_step", None) is not None:  # L-BFGS: one vector, value_fn, lax loops
        from ._lbfgs import closure_transformation

        return closure_transformation(bound)  # type: ignore[return-value]
    if getattr(bound.spec, "needs", ()):  # value / Hessian estimate / noise: see lossbridge_jax._oracle
        from ._oracle import oracle_transformation

        return oracle_transformation(bound, opts)
    if bound.spec.global_slots:
        return _global_transformation(bound, opts)

    def init(params: Any) -> LossbridgeState:
        leaves, treedef = jax.tree.flatten(params)
        per_leaf = _leaf_bounds(bound, opts, params, treedef)
        dicts = [_init_leaf(b, p, opts.slot_dtypes) for (b, _), p in zip(per_leaf, leaves, strict=True)]
        # the field names are the spec's slots for these hyperparameters, also for a tree without
        # arrays (Optax's map_params initializes on placeholders): read them off a probe tensor
        probe = dicts[0] if dicts else bound.init(jnp.zeros((1, 1), jnp.float32), xp=jnp)
        slots = tuple(probe)
        names = state_field_names(slots, bound.spec)
        cls = _state_class(names, slots, shared=shared_fields(bound.spec, names, slots, probe))
        return _pack(jnp.zeros([], jnp.int32), treedef, dicts, cls)

    def update(
        updates: Any, state: LossbridgeState, params: Any | None = None, **extra_args: Any
    ) -> tuple[Any, LossbridgeState]:
        del extra_args
        leaves, treedef = jax.tree.flatten(updates)
        leaves = [_check_leaf(g, "grads") for g in leaves]
        if opts.check_finite:
            check_finite_tree(updates, "grads")
        slot_leaves = _unpack(state, treedef)
        param_leaves = [None] * len(leaves) if params is None else treedef.flatten_up_to(params)
        count = optax.safe_int32_increment(state.count)
        hyper = _scheduled(bound, state.count)
        per_leaf = _leaf_bounds(bound, opts, updates, treedef)
        pairs = [
            _update_leaf(b, g, s, p, count, {k: v for k, v in hyper.items() if k not in over})
            for (b, over), g, s, p in zip(per_leaf, leaves, slot_leaves, param_leaves, strict=True)
        ]
        new_updates = treedef.unflatten([d for d, _ in pairs])
        return new_updates, _pack(count, treedef, [s for _, s in pairs], type(state))

    init.bound = bound  # type: ignore[attr-defined]
    init.options = opts  # type: ignore[attr-defined]
    return LossbridgeTransformation(init, update)


def _global_fields(bound: BoundOptimizer) -> tuple[tuple[str, str], ...]:
    """``(state field, spec global slot)`` pairs: the Optax convention's name where it has one."""
    convention = bound.spec.conventions.get("optax")
    table = dict(getattr(convention, "state", {}) or {})
    return tuple((table.get(g, g), g) for g in bound.spec.global_slots)


def _global_transformation(bound: BoundOptimizer, opts: _Options) -> LossbridgeTransformation:
    """The transformation of a spec with ``global_slots``: its 0-d global state is part of the state
    NamedTuple (e.g. Prodigy's ``estim_lr``), and each update sums the spec's ``partials`` over all
    leaves (in ``jax.tree.flatten`` order) before the per-leaf updates, all traceable under ``jit``."""
    if opts.masks or opts.slot_dtypes:
        raise ParameterError(f"{bound.spec.name}: Optax options (masks, slot dtypes) are not supported with "
                             "global_slots")
    global_fields = _global_fields(bound)

    def init(params: Any) -> LossbridgeState:
        leaves, treedef = jax.tree.flatten(params)
        dicts = [_init_leaf(bound, p, {}) for p in leaves]
        probe = dicts[0] if dicts else bound.init(jnp.zeros((1, 1), jnp.float32), xp=jnp)
        slots = tuple(probe)
        cls = _state_class(state_field_names(slots, bound.spec), slots, global_fields)
        # the global state in the parameters' lowest dtype, as Optax's contrib optimizers keep it
        dtypes = [_compute_dtype(_check_leaf(p, "params").dtype) for p in leaves]
        dtype = min(dtypes, key=lambda d: jnp.dtype(d).itemsize, default=jnp.float32)
        glob = bound.init_global(dtype=dtype, xp=jnp)
        return _pack(jnp.zeros([], jnp.int32), treedef, dicts, cls, glob)

    def update(
        updates: Any, state: LossbridgeState, params: Any | None = None, **extra_args: Any
    ) -> tuple[Any, LossbridgeState]:
        del extra_args
        transform = bound.spec.role == "transform"  # a gradient transform (global norm) may run without params
        if params is None and not transform:
            raise InputError(f"params: {bound.spec.name} needs the current parameters, got None; "
                             "call update(grads, state, params)")
        leaves, treedef = jax.tree.flatten(updates)
        leaves = [_check_leaf(g, "grads") for g in leaves]
        if opts.check_finite:
            check_finite_tree(updates, "grads")
        slot_leaves = _unpack(state, treedef)
        param_leaves = [None] * len(leaves) if params is None else treedef.flatten_up_to(params)
        count = optax.safe_int32_increment(state.count)
        hyper = _scheduled(bound, state.count)
        gs, ps, sts, steps = [], [], [], []
        for g, s, p in zip(leaves, slot_leaves, param_leaves, strict=True):
            dtype = _compute_dtype(g.dtype)
            gs.append(g.astype(dtype))
            ps.append(None if p is None else jnp.asarray(p).astype(dtype))
            sts.append({k: v.astype(jnp.promote_types(dtype, v.dtype)) if _inexact(v.dtype) else v
                        for k, v in s.items()})
            steps.append(count.astype(_real_dtype(dtype)))
        glob = {slot: getattr(state, name) for name, slot in global_fields}
        deltas, news, new_glob = bound.update_all(ps, gs, sts, glob, steps=steps, xp=jnp, **hyper)
        new_slots = [{k: _cast(v, old[k].dtype) for k, v in new.items()} for new, old in zip(news, slot_leaves)]
        new_glob = {k: _cast(v, glob[k].dtype) for k, v in new_glob.items()}
        new_updates = treedef.unflatten([jnp.asarray(d).astype(g.dtype) for d, g in zip(deltas, leaves)])
        return new_updates, _pack(count, treedef, new_slots, type(state), new_glob)

    init.bound = bound  # type: ignore[attr-defined]
    init.options = opts  # type: ignore[attr-defined]
    return LossbridgeTransformation(init, update)


def _factory(bound: BoundOptimizer, options: _Options) -> Callable[..., LossbridgeTransformation]:
    """A factory whose signature lists the numeric hyperparameters, for ``inject_hyperparams``."""
    names = [p.name for p in bound.spec.params if not p.static]

    def factory(**hyper: Any) -> LossbridgeTransformation:
        arrays = {k: v for k, v in hyper.items() if isinstance(v, jax.Array)}
        python = {k: v for k, v in hyper.items() if k not in arrays}
        rebound = bound.with_hyper(**python) if python else bound
        if "key" in arrays and getattr(bound.spec, "needs", ()):  # a random need's seed, injected (Optax's key=)
            rebound = BoundOptimizer(rebound.spec, {**rebound.hyper, "key": arrays.pop("key")}, rebound.convention)
        if arrays:
            unknown = sorted(set(arrays) - set(names))
            if unknown:
                rebound.with_hyper(**dict.fromkeys(unknown, 0.0))  # raises, listing the valid names
            rebound = BoundOptimizer(rebound.spec, {**rebound.hyper, **arrays}, rebound.convention)
        return make_transformation(rebound, options=options)

    factory.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=bound.hyper[n]) for n in names]
    )
    factory.__name__ = factory.__qualname__ = bound.spec.name
    factory.__doc__ = f"lossbridge {bound.spec.name}: a transformation with these hyperparameters."
    return factory
