"""Portable optimizer state for JAX: lossbridge's transformations, and Optax's own states as a source.

An Optax transformation does not expose its hyperparameters, so saving a native Optax state takes
the spec name and hyperparameters from the caller (``spec="adam", convention="optax",
hyper={"learning_rate": 1e-3}``); its slots are read with ``optax.tree_utils.tree_get`` through the
convention's ``state`` table (``{"m": "mu", "v": "nu"}``). A spec's global state (``global_slots``,
Prodigy's ``d``) is a 0-d field of the state (lossbridge's and Optax's alike: ``estim_lr``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lossbridge.errors import InputError
from lossbridge.portable import PortableState, check_compatible, from_bound, from_native

from ._optim import LossbridgeTransformation, _pack

__all__ = ["export_state", "import_state"]


def _leaves(params: Any) -> tuple[list[Any], Any, list[str]]:
    if params is None:
        raise InputError("params: the JAX backend needs the parameter pytree to save or load optimizer state")
    with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    names = [jax.tree_util.keystr(path) or None for path, _ in with_path]
    return [leaf for _, leaf in with_path], treedef, names


def _glob(state: Any) -> dict[str, Any]:
    """The global state (spec slot -> 0-d array) of a lossbridge transformation's state, else ``{}``."""
    return {slot: getattr(state, name) for name, slot in getattr(type(state), "_global_fields", ())}


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
        )
    from optax import tree_utils

    import lossbridge

    framework = (convention or "optax").lower()
    found = lossbridge.spec(spec, convention=framework)
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


def import_state(
    optimizer: Any, portable: PortableState, *, state: Any = None, params: Any = None, convert: bool = False
) -> Any:
    """A new state of lossbridge transformation ``optimizer`` for ``params``, holding ``portable``."""
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
    )
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
    if not portable.glob:
        return _pack(count, treedef, loaded, cls)
    like = _glob(template)  # the template's dtype: the parameters' lowest, as init keeps it
    glob = {k: jnp.asarray(np.asarray(v), dtype=like[k].dtype).reshape(()) for k, v in portable.glob.items()}
    return _pack(count, treedef, loaded, cls, glob)
