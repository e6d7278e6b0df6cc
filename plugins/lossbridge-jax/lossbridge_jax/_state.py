"""Portable optimizer state for JAX: lossbridge's transformations, and Optax's own states as a source.

An Optax transformation does not expose its hyperparameters, so saving a native Optax state takes
the spec name and hyperparameters from the caller (``spec="adam", convention="optax",
hyper={"learning_rate": 1e-3}``); its slots are read with ``optax.tree_utils.tree_get`` through the
convention's ``state`` table (``{"m": "mu", "v": "nu"}``). A spec's global state (``global_slots``,
Prodigy's ``d``) is a 0-d field of the state (lossbridge's and Optax's alike: ``estim_lr``).

A closure-step transformation's state (L-BFGS, :class:`~lossbridge_jax._lbfgs.LbfgsState`) is the
portable ``flat`` state: its ``memory`` plus ``value`` and ``grad`` (flattened in leaf order). A spec
with random needs (``sophia``, ``noisy_sgd``) keeps a typed PRNG key (``rng_key``, Optax's key
handling); its ``key_data`` is the portable stream, of kind ``"jax.random.<impl>"``
(``threefry2x32`` by default), so a JAX save/load continues bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lossbridge.errors import InputError
from lossbridge.portable import PortableState, RandomState, check_compatible, from_bound, from_native, stream

from ._lbfgs import LbfgsState, LbfgsTransformation
from ._optim import LossbridgeTransformation, _pack

#: the field of a random-needs state holding its PRNG key (lossbridge_jax._oracle)
_KEY_FIELD = "rng_key"

__all__ = ["export_state", "import_state"]


def _leaves(params: Any) -> tuple[list[Any], Any, list[str]]:
    if params is None:
        raise InputError("params: the JAX backend needs the parameter pytree to save or load optimizer state")
    with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    names = [jax.tree_util.keystr(path) or None for path, _ in with_path]
    return [leaf for _, leaf in with_path], treedef, names


def _glob(state: Any) -> dict[str, Any]:
    """The global state (spec slot -> 0-d array) of a lossbridge transformation's state, else ``{}``
    (the random stream's key, also a global field, is not a spec slot: :func:`_key`)."""
    return {slot: getattr(state, name) for name, slot in getattr(type(state), "_global_fields", ())
            if name != _KEY_FIELD}


def _key(state: Any) -> Any:
    """The PRNG key of a random-needs state, ``None`` for any other."""
    fields = dict(getattr(type(state), "_global_fields", ()))
    return getattr(state, _KEY_FIELD) if _KEY_FIELD in fields else None


def _kind(key: Any) -> str:
    return f"jax.random.{jax.random.key_impl(key)}"


def _stream(state: Any) -> RandomState | None:
    key = _key(state)
    return None if key is None else RandomState(_kind(key), np.asarray(jax.device_get(jax.random.key_data(key))))


def _flat(tree: Any, dtype: Any) -> np.ndarray:
    leaves = [np.asarray(jax.device_get(leaf)).reshape(-1) for leaf in jax.tree.leaves(tree)]
    return np.concatenate(leaves).astype(dtype) if leaves else np.zeros(0, dtype)


def _export_closure(optimizer: Any, state: Any, params: Any) -> PortableState:
    """An L-BFGS state: ``memory``, ``value`` and ``grad`` over the flat parameter vector."""
    if not isinstance(state, LbfgsState):
        raise InputError(f"state: expected the LbfgsState of this transformation, got {type(state).__name__}")
    leaves, _, names = _leaves(params)
    dtype = _numpy(state.value).dtype
    flat = {k: _numpy(v) for k, v in state.memory.items()}
    flat.update(value=_numpy(state.value), grad=_flat(state.grad, dtype))
    return from_bound(
        optimizer.bound, step=int(flat["n_iter"]), slots=[{} for _ in leaves],
        shapes=[tuple(np.shape(p)) for p in leaves], dtypes=[jnp.asarray(p).dtype.name for p in leaves],
        names=names, backend="jax", flat=flat,
    )


def _import_closure(optimizer: Any, portable: PortableState, params: Any, convert: bool) -> LbfgsState:
    leaves, _, names = _leaves(params)
    template = optimizer.init(params)
    like = {**template.memory, "value": template.value}
    flat_like = {**{k: np.zeros(np.shape(v)) for k, v in like.items()}, "grad": _flat(template.grad, np.float64)}
    conv = optimizer.bound.convention.framework if optimizer.bound.convention is not None else None
    check_compatible(
        portable, spec=optimizer.bound.spec.name, convention=conv, hyper=optimizer.bound.hyper,
        shapes=[tuple(np.shape(p)) for p in leaves], names=names, slots=[{} for _ in leaves], convert=convert,
        backend="jax", flat=flat_like,
    )
    from lossbridge.portable import resume_flat

    flat = resume_flat(portable.flat, template.memory)  # the file's rows oldest first: head 0
    memory = {k: jnp.asarray(np.asarray(flat[k]), dtype=v.dtype).reshape(v.shape) for k, v in template.memory.items()}
    grad_leaves, treedef = jax.tree.flatten(template.grad)
    parts, k = [], 0
    for leaf in grad_leaves:
        n = int(np.size(leaf))
        parts.append(jnp.asarray(portable.flat["grad"][k : k + n], dtype=leaf.dtype).reshape(leaf.shape))
        k += n
    value = jnp.asarray(np.asarray(portable.flat["value"]), dtype=template.value.dtype).reshape(())
    return LbfgsState(value=value, grad=treedef.unflatten(parts), memory=memory)


def _numpy(x: Any) -> np.ndarray:
    x = np.asarray(jax.device_get(x))
    return x.astype(np.float32) if x.dtype.name == "bfloat16" else x


def export_state(
    optimizer: Any,
    *,
    state: Any,
    params: Any,
    spec: str | None = None,
    convention: str | None = None,
    hyper: Mapping[str, Any] | None = None,
    step: int | None = None,
) -> PortableState | None:
    """The portable state of a lossbridge transformation's state, or of a native Optax state."""
    import optax

    if isinstance(optimizer, LbfgsTransformation):
        if state is None:
            raise InputError("state: the JAX backend saves the Optax state given as state= (a transformation "
                             "holds none)")
        return _export_closure(optimizer, state, params)
    ours = isinstance(optimizer, LossbridgeTransformation)
    native = spec is not None and (optimizer is None or isinstance(optimizer, optax.GradientTransformation))
    if not ours and not native:
        return None
    if state is None:
        raise InputError("state: the JAX backend saves the Optax state given as state= (a transformation holds none)")
    leaves, treedef, names = _leaves(params)
    shapes = [tuple(np.shape(p)) for p in leaves]
    dtypes = [jnp.asarray(p).dtype.name for p in leaves]
    if ours:
        # a spec without slots (Fromage) has no per-leaf dicts: state.slots is None
        per_leaf = treedef.flatten_up_to(state.slots) if state.slots is not None else [{} for _ in leaves]
        slots = [{k: _numpy(v) for k, v in one.items()} for one in per_leaf]
        return from_bound(
            optimizer.bound,
            step=int(state.count),
            slots=slots,
            shapes=shapes,
            dtypes=dtypes,
            names=names,
            backend="jax",
            glob={k: _numpy(v) for k, v in _glob(state).items()},
            rng=_stream(state),
        )
    from optax import tree_utils

    import lossbridge

    framework = (convention or "optax").lower()
    found = lossbridge.spec(spec, convention=framework)
    if found.closure_step is not None and framework == "optax":  # optax.lbfgs: its own reader
        leaves_flat = _native_optax_lbfgs(state, treedef, shapes)
        if step is not None and int(step) != int(leaves_flat["n_iter"]):
            raise InputError(f"step: the Optax state has count {int(leaves_flat['n_iter'])}, step={step} was given")
        return from_native(framework, spec, native_hyper=dict(hyper or {}), step=int(leaves_flat["n_iter"]),
                           slots=[{} for _ in leaves], shapes=shapes, dtypes=dtypes, names=names, backend="jax",
                           flat=leaves_flat)
    conv = found.conventions.get(framework)
    table = dict(getattr(conv, "state", {}) or {})
    columns, shared = {}, {}
    for ours, entry in table.items():
        native_name = entry if isinstance(entry, str) else entry[0]
        try:
            tree = tree_utils.tree_get(state, native_name)
        except (KeyError, ValueError):
            continue
        if tree is None:
            continue
        if ours in found.global_slots:  # one 0-d value shared by all parameters (Prodigy's estim_lr)
            shared[native_name] = _numpy(tree)
        elif found.elementwise and getattr(tree, "ndim", None) == 0:  # one 0-d field for all (schedule-free b1)
            columns[native_name] = [tree] * treedef.num_leaves
        else:
            columns[native_name] = treedef.flatten_up_to(tree)
    counts = tree_utils.tree_get_all_with_path(state, "count")
    if counts:
        counted = int(counts[0][1])
        if step is not None and int(step) != counted:
            raise InputError(f"step: the Optax state has count {counted}, step={step} was given")
    elif step is None:
        raise InputError(
            f"step: this Optax state ({spec}) keeps no step count; pass step=<the number of updates taken>"
        )
    else:
        counted = int(step)
    slots = [{n: _numpy(col[i]) for n, col in columns.items()} for i in range(len(leaves))]
    return from_native(
        framework,
        spec,
        native_hyper=dict(hyper or {}),
        step=counted,
        slots=slots,
        shapes=shapes,
        dtypes=dtypes,
        names=names,
        backend="jax",
        glob=shared,
    )


def _native_optax_lbfgs(state: Any, treedef: Any, shapes: list[tuple[int, ...]]) -> dict[str, np.ndarray]:
    """``optax.lbfgs``'s state as the lbfgs spec's slots over the flat vector (leaves in order).

    ``ScaleByLBFGSState``: ``count`` is ``n_iter``, ``params``/``updates`` (the point and gradient of the
    last update) are ``prev_x``/``prev_grad``, the cyclic memories ``diff_params_memory``,
    ``diff_updates_memory``, ``weights_memory`` (update ``c`` writes row ``(c - 1) % m``) are the spec's
    ring buffer ``s_mem``, ``y_mem``, ``rho`` as they are, its ``head`` (the oldest row) ``(count - 1) % m``
    (the portable state rolls them oldest first); the zoom line search's
    ``learning_rate``, ``value``, ``grad`` are ``stepsize``, ``value``, ``grad`` (its ``info`` is a report).
    The spec's ``h_diag``, ``d``, ``t``, ``prev_value``, ``func_evals``, which Optax does not keep and the
    optax convention never reads, get their initial values.
    """
    from optax import tree_utils

    def get(name: str) -> Any:
        found = tree_utils.tree_get_all_with_path(state, name)
        if len(found) != 1:
            raise InputError(f"state: expected one {name!r} in the optax.lbfgs state, found {len(found)}; nothing "
                             "was saved")
        return found[0][1]

    def vector(tree: Any) -> np.ndarray:
        parts = [_numpy(x).reshape(-1) for x in treedef.flatten_up_to(tree)]
        return np.concatenate(parts) if parts else np.zeros(0)

    count = int(_numpy(get("count")))
    weights = _numpy(get("weights_memory"))
    m = weights.shape[0]
    memories = {}
    for ours, theirs in (("s_mem", "diff_params_memory"), ("y_mem", "diff_updates_memory")):
        rows = [_numpy(x).reshape(m, -1) for x in treedef.flatten_up_to(get(theirs))]
        memories[ours] = np.concatenate(rows, axis=1) if rows else np.zeros((m, 0))
    prev_x = vector(get("params"))
    dtype = prev_x.dtype
    n = sum(int(np.prod(s)) for s in shapes)
    zero = np.zeros((), dtype)
    linesearch = tree_utils.tree_get_all_with_path(state, "learning_rate")
    return {
        **{k: v.astype(dtype) for k, v in memories.items()}, "rho": weights.astype(dtype),
        "head": np.asarray((count - 1) % m),  # optax's memory_idx: the oldest row
        "h_diag": np.ones((), dtype), "d": np.zeros(n, dtype), "t": zero, "prev_x": prev_x,
        "prev_grad": vector(get("updates")).astype(dtype), "prev_value": zero, "n_iter": np.asarray(count, dtype),
        "func_evals": zero,
        "value": np.asarray(_numpy(get("value")), dtype) if linesearch else np.asarray(np.inf, dtype),
        "grad": vector(get("grad")).astype(dtype) if linesearch else np.zeros(n, dtype),
        "stepsize": np.asarray(_numpy(linesearch[0][1]), dtype) if linesearch else np.ones((), dtype),
    }


def import_state(
    optimizer: Any, portable: PortableState, *, state: Any = None, params: Any = None, convert: bool = False
) -> Any:
    """A new state of lossbridge transformation ``optimizer`` for ``params``, holding ``portable``."""
    if isinstance(optimizer, LbfgsTransformation):
        return _import_closure(optimizer, portable, params, convert)
    if not isinstance(optimizer, LossbridgeTransformation):
        return NotImplemented
    leaves, treedef, names = _leaves(params)
    template = optimizer.init(params) if state is None else state
    slots = treedef.flatten_up_to(template.slots) if template.slots is not None else [{} for _ in leaves]
    conv = optimizer.bound.convention.framework if optimizer.bound.convention is not None else None
    check_compatible(
        portable,
        spec=optimizer.bound.spec.name,
        convention=conv,
        hyper=optimizer.bound.hyper,
        shapes=[tuple(np.shape(p)) for p in leaves],
        names=names,
        slots=slots,
        convert=convert,
        backend="jax",
        glob=_glob(template),
        rng=None if _key(template) is None else _kind(_key(template)),
    )
    key = _key(template)
    if key is not None:  # the saved stream continues, or (convert=True, another generator's) restarts from key
        saved = stream(portable, _kind(key), optimizer.bound.hyper.get("key"))
        if saved is not None:
            data = np.asarray(saved)
            expected = tuple(np.shape(jax.random.key_data(key)))
            if data.shape != expected or data.dtype != np.uint32:
                raise InputError(f"load_state: cannot load this state (nothing was loaded): its {_kind(key)} key "
                                 f"data has shape {data.shape} and dtype {data.dtype}, expected {expected} uint32")
            key = jax.random.wrap_key_data(jnp.asarray(data), impl=str(jax.random.key_impl(key)))
    loaded = []
    for saved, like in zip(portable.slots, slots, strict=True):
        one = {}
        for k, value in saved.items():
            target = like[k]
            array = jnp.asarray(np.asarray(value), dtype=target.dtype).reshape(target.shape)
            sharding = getattr(target, "sharding", None)
            one[k] = jax.device_put(array, sharding) if getattr(target, "committed", False) else array
        loaded.append(one)
    count = jnp.asarray(portable.step, dtype=template.count.dtype)
    # the template's own class where it is one of lossbridge's (also the one holding global fields)
    cls = type(template) if hasattr(type(template), "_spec_slots") else template._fields[1:]
    if not portable.glob and key is None:
        return _pack(count, treedef, loaded, cls)
    like = _glob(template)  # the template's dtype: the parameters' lowest, as init keeps it
    glob = {k: jnp.asarray(np.asarray(v), dtype=like[k].dtype).reshape(()) for k, v in portable.glob.items()}
    if key is not None:
        glob[_KEY_FIELD] = key
    return _pack(count, treedef, loaded, cls, glob)
