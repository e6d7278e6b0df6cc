"""The NumPy reference backend: a plugin like any other, registered through the same hook.

Losses are callables in scikit-learn order ``(y_true, y_pred)`` with ``.grad`` and
``.value_and_grad`` from the spec's analytic gradient. Optimizers offer Optax-style functional
``init``/``update`` and an in-place ``step(params, grads)`` over lists, tuples or dicts of arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from lossbridge.backends.base import Backend
from lossbridge.bound import BoundLoss, BoundOptimizer, BoundSchedule
from lossbridge.errors import InputError
from lossbridge.hookspecs import hookimpl

__all__ = ["NumpyBackend", "NumpyLoss", "NumpyOptimizer", "NumpyOptimizerState", "NumpySchedule"]


class _LazyNamespace:
    """``array_api_compat.numpy``, imported on first use: it pulls in ``numpy.testing``, ``numpy.ma`` and
    ``numpy.f2py`` (about 60 ms, a third of ``import lossbridge``). Each name is fetched once, then
    cached on the instance, so later lookups cost what a module's do."""

    def __getattr__(self, name: str) -> Any:
        import array_api_compat.numpy as namespace

        value = getattr(namespace, name)
        setattr(self, name, value)
        return value


#: the NumPy backend's Array API namespace (``array_api_compat.numpy``, loaded lazily)
xp: Any = _LazyNamespace()


def _array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "toarray") and not isinstance(x, np.ndarray):  # scipy.sparse: np.asarray makes an object array
        kind = f"{type(x).__module__}.{type(x).__name__}"
        raise InputError(f"{name}: expected a dense NumPy array, got the sparse {kind}; densify it with .toarray()")
    NumpyBackend().check_native(x, name, (np.ndarray, np.generic))
    return np.asarray(x)


def _check_finite(x: Any, name: str) -> None:
    """The opt-in ``check_finite``: refuse NaN and infinity, naming the argument and the first bad index."""
    if x is None or not np.issubdtype(np.asarray(x).dtype, np.floating):
        return
    bad = ~np.isfinite(x)
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{name}: expected finite values (check_finite=True), got {float(np.asarray(x)[index])} at index {index} "
            f"({int(bad.sum())} non-finite of {bad.size})"
        )


class NumpyLoss:
    """A loss over NumPy arrays, called as ``loss(y_true, y_pred, sample_weight=None)``."""

    def __init__(self, bound: BoundLoss, *, validate: bool = True, check_finite: bool = False) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.validate = validate
        self.check_finite = check_finite
        self.__doc__ = bound.spec.summary

    def _inputs(self, inputs: tuple[Any, ...]) -> tuple[np.ndarray | None, ...]:
        names = [i.name for i in self.spec.inputs]
        native = self.bound.rules.native
        if native is not None and len(inputs) == native.arity < len(names):  # Keras's CTC(y_true, y_pred)
            inputs = (*inputs, *[None] * (len(names) - len(inputs)))  # the rest is derived by the core
        if len(inputs) != len(names):
            raise TypeError(f"{self.spec.name}: expected {len(names)} arrays ({', '.join(names)}), got {len(inputs)}")
        arrays = tuple(None if x is None else _array(x, n) for x, n in zip(inputs, names))
        if self.check_finite:
            for x, n in zip(arrays, names):
                _check_finite(x, n)
        return arrays

    def _weight(self, sample_weight: Any) -> Any:
        weight = None if sample_weight is None else _array(sample_weight, "sample_weight")
        if self.check_finite:
            _check_finite(weight, "sample_weight")
        return weight

    def __call__(self, *inputs: Any, sample_weight: Any | None = None) -> Any:
        weight = self._weight(sample_weight)
        return self.bound(xp, *self._inputs(inputs), sample_weight=weight, check_values=self.validate)

    def value_and_grad(self, *inputs: Any, sample_weight: Any | None = None) -> tuple[Any, Any]:
        """The loss and its gradient (one array, or a tuple for several differentiable inputs)."""
        weight = self._weight(sample_weight)
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
    glob: dict[str, np.ndarray] | None = None  # the spec's global_slots (shared by all leaves), if any
    rng: Mapping[str, Any] | None = None  # the bit generator's state, for specs with random needs (noise, hessian)


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


def _leaf_name(tree: Any, index: int) -> str:
    """``params[...]`` path of the ``index``-th leaf in :func:`_flatten`'s order."""
    paths: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key in node:
                walk(node[key], f"{path}[{key!r}]")
        elif isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")
        else:
            paths.append(path)

    walk(tree, "params")
    return paths[index] if index < len(paths) else f"params (leaf {index})"


class NumpyOptimizer:
    """An optimizer over NumPy arrays: functional ``init``/``update`` and in-place ``step``."""

    def __init__(
        self, bound: BoundOptimizer, *, check_finite: bool = False, lr_mult: Any = None, decay_mult: Any = None
    ) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.check_finite = check_finite
        self.mults = _caffe_mults(bound, lr_mult, decay_mult)
        self._state: NumpyOptimizerState | None = None
        self._slot_shapes: dict[tuple[tuple[int, ...], str], dict[str, tuple[int, ...]]] = {}

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
        arrays = [_float(p, "params") for p in leaves]
        slots = [self.bound.init(p, xp=xp) for p in arrays]
        rng = None
        if set(self.spec.needs) & {"noise", "hessian_diag"}:  # numpy.random.default_rng(key), kept as a value
            rng = np.random.default_rng(self.bound.hyper["key"] or 0).bit_generator.state
        if not self.spec.global_slots:
            return NumpyOptimizerState(0, slots, None, rng)
        # the global state in the parameters' lowest floating dtype, as Optax keeps it
        dtype = min((a.dtype for a in arrays), key=lambda d: d.itemsize, default=np.dtype(np.float64))
        return NumpyOptimizerState(0, slots, self.bound.init_global(dtype=dtype, xp=xp), rng)

    def update(
        self, grads: Any, state: NumpyOptimizerState, params: Any, *, value: Any = None, hvp: Any = None
    ) -> tuple[Any, NumpyOptimizerState]:
        """Updates (to add to ``params``) with the tree structure of ``grads``, and the new state.

        A spec with ``needs`` (:class:`~lossbridge.spec.OptimizerSpec`) takes them here: ``value=`` the
        loss at ``params`` (``polyak_sgd``), ``hvp=`` a function of a tree like ``params`` returning the
        Hessian-vector product (``sophia``: a Rademacher vector from the state's generator); ``noise``
        is drawn from ``numpy.random.default_rng(key)`` (kept in the state).
        """
        g_leaves, rebuild = _flatten(grads)
        p_leaves, _ = _flatten(params)
        if len(g_leaves) != len(p_leaves):
            raise InputError(f"grads: expected {len(p_leaves)} arrays like params, got {len(g_leaves)}")
        count = state.count + 1
        # a schedule as a hyperparameter (e.g. lr=lossbridge.get("cosine_decay", ...)) at the updates taken so far
        scheduled = {
            k: v(state.count) for k, v in self.bound.hyper.items() if callable(v) and not self.spec.param(k).static
        }
        if len(state.slots) != len(p_leaves):
            raise InputError(
                f"params: expected {len(state.slots)} arrays (the state was made for that many), got {len(p_leaves)}"
            )
        checked = self._checked_leaves(p_leaves, g_leaves, state.slots, params, grads)
        if self.spec.needs:
            return self._update_needs(checked, rebuild, state, count, scheduled, value, hvp, params)
        if self.spec.global_slots:
            return self._update_global(checked, rebuild, state, count, scheduled)
        deltas, slots = [], []
        overrides = self._leaf_overrides(len(checked), scheduled)
        for (p, g, s), over in zip(checked, overrides, strict=True):
            step = np.asarray(count, dtype=np.finfo(p.dtype).dtype)
            delta, new = self.bound.update(p, g, s, step=step, xp=xp, **over)
            deltas.append(np.asarray(delta, dtype=p.dtype))
            slots.append(new)
        return rebuild(deltas), NumpyOptimizerState(count, slots)

    def _leaf_overrides(self, n: int, scheduled: dict[str, Any]) -> list[dict[str, Any]]:
        """Per leaf, the hyperparameters of this step: Caffe's ``lr_mult`` / ``decay_mult`` applied."""
        if not self.mults:
            return [scheduled] * n
        out = [dict(scheduled) for _ in range(n)]
        for key, target in (("lr_mult", "lr"), ("decay_mult", "weight_decay")):
            if key not in self.mults:
                continue
            mults, _ = _flatten(self.mults[key])
            if len(mults) != n:
                raise InputError(f"{key}: expected one multiplier per parameter array ({n}), got {len(mults)}")
            base = scheduled.get(target, self.bound.hyper[target])
            for over, m in zip(out, mults, strict=True):
                over[target] = base * float(m)
        return out

    def _checked_leaves(
        self, p_leaves: list, g_leaves: list, slots: list, params: Any, grads: Any
    ) -> list[tuple[np.ndarray, np.ndarray, Any]]:
        """``(param, grad, slots)`` per leaf, after the dtype, shape, state-shape and finiteness checks."""
        out = []
        for k, (p, g, s) in enumerate(zip(p_leaves, g_leaves, slots)):
            p, g = _float(p, "params"), _float(g, "grads")
            if g.shape != p.shape:
                raise InputError(f"grads: expected shape {p.shape} like its parameter, got {g.shape}")
            self._check_state_shapes(params, k, p, s)
            if self.check_finite:
                _check_finite(g, _leaf_name(grads, k).replace("params", "grads", 1))
            out.append((p, g, s))
        return out

    def _update_global(
        self, checked: list, rebuild: Any, state: NumpyOptimizerState, count: int, scheduled: dict[str, Any]
    ) -> tuple[Any, NumpyOptimizerState]:
        """One step of a spec with global state: partial sums over all leaves, then per-leaf updates."""
        if state.glob is None:
            raise InputError(f"state: {self.spec.name} needs its global state; make the state with init")
        ps, gs = [p for p, _, _ in checked], [g for _, g, _ in checked]
        steps = [np.asarray(count, dtype=np.finfo(p.dtype).dtype) for p in ps]
        deltas, slots, glob = self.bound.update_all(ps, gs, state.slots, state.glob, steps=steps, xp=xp, **scheduled)
        dtype = {k: np.asarray(v).dtype for k, v in state.glob.items()}
        glob = {k: np.asarray(v, dtype=dtype[k]) for k, v in glob.items()}
        deltas = [np.asarray(d, dtype=p.dtype) for d, p in zip(deltas, ps)]
        return rebuild(deltas), NumpyOptimizerState(count, slots, glob, state.rng)

    def _update_needs(
        self, checked: list, rebuild: Any, state: NumpyOptimizerState, count: int, scheduled: dict[str, Any],
        value: Any, hvp: Any, params: Any,
    ) -> tuple[Any, NumpyOptimizerState]:
        """One step of a spec with ``needs``: the value, Hessian estimate or noise, then the update."""
        name, needs = self.spec.name, self.spec.needs
        hyper = {**self.bound.hyper, **scheduled}
        at = self.spec.needs_at
        used = at is None or bool(at(np.asarray(count, dtype=np.float64), xp=xp, **hyper))
        ps = [p for p, _, _ in checked]
        rng = np.random.default_rng()  # its state is replaced by the saved one (random needs) below
        if state.rng is not None:
            rng.bit_generator.state = state.rng
        shared: dict[str, Any] = {}
        per_leaf: list[dict[str, Any]] = [{} for _ in ps]
        if "value" in needs:
            if value is None:
                raise InputError(f"value: {name} needs the loss value at the current parameters: "
                                 "update(grads, state, params, value=loss) or step(params, grads, value=loss)")
            shared["value"] = np.asarray(value, dtype=np.float64)
        if "hessian_diag" in needs:
            if used and hvp is None:
                raise InputError(f"hvp: {name} needs a Hessian-vector product function at this step: "
                                 "update(grads, state, params, hvp=fn), fn(tree like params) -> H @ tree")
            if used:
                signs = [(2.0 * rng.integers(0, 2, size=p.shape) - 1.0).astype(p.dtype) for p in ps]
                _, rebuild_p = _flatten(params)
                products, _ = _flatten(hvp(rebuild_p(signs)))
                for d, r, hr in zip(per_leaf, signs, products, strict=True):
                    d["hessian_diag"] = r * np.asarray(hr, dtype=r.dtype)
            else:
                for d, p in zip(per_leaf, ps):
                    d["hessian_diag"] = np.zeros_like(p)
        if "noise" in needs:
            for d, p in zip(per_leaf, ps):
                # drawn in float64 and rounded: every parameter dtype sees the same stream
                d["noise"] = rng.standard_normal(p.shape).astype(p.dtype) if used else np.zeros_like(p)
        new_rng = rng.bit_generator.state if state.rng is not None else None
        if self.spec.global_slots:
            partial = state._replace(rng=new_rng)
            return self._update_global(checked, rebuild, partial, count, {**scheduled, **shared})
        deltas, slots = [], []
        for (p, g, s), extra in zip(checked, per_leaf, strict=True):
            step = np.asarray(count, dtype=np.finfo(p.dtype).dtype)
            delta, new = self.bound.update(p, g, s, step=step, xp=xp, **scheduled, **shared, **extra)
            deltas.append(np.asarray(delta, dtype=p.dtype))
            slots.append(new)
        return rebuild(deltas), NumpyOptimizerState(count, slots, state.glob, new_rng)

    def _check_state_shapes(self, params: Any, k: int, p: np.ndarray, slots: Mapping[str, Any]) -> None:
        """Refuse a parameter whose shape changed since its state was made (NumPy would broadcast or
        fail with a raw message); the slot shapes of each parameter shape are computed once."""
        key = (p.shape, p.dtype.str)
        expected = self._slot_shapes.get(key)
        if expected is None:
            expected = {n: np.shape(v) for n, v in self.bound.init(p, xp=xp).items()}
            self._slot_shapes[key] = expected
        found = {n: np.shape(v) for n, v in slots.items()}
        if found == expected:
            return
        made_for = next((shape for (shape, _), slot in self._slot_shapes.items() if slot == found), None)
        expected_text = f"shape {made_for}" if made_for is not None else f"the shape its state slots {found} fit"
        raise InputError(
            f"{_leaf_name(params, k)}: expected {expected_text} (its optimizer state was made for it), got shape "
            f"{p.shape}; a parameter whose shape changes needs a fresh state (init, or a new optimizer)"
        )

    def step(self, params: Any, grads: Any, *, value: Any = None, hvp: Any = None) -> None:
        """Update ``params`` in place (a list, tuple or dict of arrays) with ``grads`` (``value``/``hvp``:
        see :meth:`update`)."""
        if self._state is None:
            self._state = self.init(params)
        extra = {k: v for k, v in (("value", value), ("hvp", hvp)) if v is not None}
        updates, self._state = self.update(grads, self._state, params, **extra)
        for p, u in zip(_flatten(params)[0], _flatten(updates)[0]):
            p += u

    def __repr__(self) -> str:
        conv = self.bound.convention.framework if self.bound.convention else None
        return f"<lossbridge numpy optimizer {self.spec.name!r} convention={conv!r} {dict(self.bound.hyper)}>"


def _caffe_mults(bound: BoundOptimizer, lr_mult: Any, decay_mult: Any) -> dict[str, Any]:
    """Caffe's per-blob multipliers (``ParamSpec.lr_mult`` / ``decay_mult``; ``sgd_solver.cpp``:
    ``local_rate = rate * lr_mult``, ``local_decay = weight_decay * decay_mult``): a tree like the
    parameters, one number per array. Accepted under ``convention="caffe"`` only."""
    mults = {k: v for k, v in (("lr_mult", lr_mult), ("decay_mult", decay_mult)) if v is not None}
    if not mults:
        return {}
    name = bound.spec.name
    if bound.convention is None or bound.convention.framework != "caffe":
        raise InputError(f"{name}: lr_mult / decay_mult are Caffe's per-blob multipliers; "
                         "they are accepted under convention='caffe' only")
    if bound.spec.global_slots or bound.spec.needs:
        raise InputError(f"{name}: lr_mult / decay_mult are not supported for an optimizer with global "
                         "state or needs")
    if "decay_mult" in mults and "weight_decay" not in bound.hyper:
        raise InputError(f"{name}: decay_mult given, but the spec has no weight_decay")
    for key, tree in mults.items():
        for m in _flatten(tree)[0]:
            if not float(m) >= 0.0:
                raise InputError(f"{key}: expected non-negative multipliers, got {m!r}")
    return mults


def _export_state(optimizer: Any, state: Any, params: Any) -> Any:
    from lossbridge.portable import from_bound

    state = state if state is not None else optimizer._state
    if state is None:
        raise InputError("optimizer: this NumPy optimizer has taken no step yet; pass state= (from init/update)")
    if params is None:
        raise InputError("params: the NumPy backend needs the parameters to save their shapes and dtypes")
    leaves, _ = _flatten(params)
    if len(leaves) != len(state.slots):
        raise InputError(f"params: expected {len(state.slots)} arrays like the state, got {len(leaves)}")
    arrays = [np.asarray(p) for p in leaves]
    return from_bound(
        optimizer.bound,
        step=int(state.count),
        slots=state.slots,
        shapes=[a.shape for a in arrays],
        dtypes=[a.dtype.name for a in arrays],
        backend="numpy",
        glob=state.glob,  # the spec's global_slots (None without)
        rng=_stream(state.rng),  # the bit generator's state (a spec with random needs), tagged with its kind
    )


def _stream(rng: Mapping[str, Any] | None) -> Any:
    """NumPy's bit-generator state as a portable random stream (``numpy.random.PCG64``), ``None`` without."""
    from lossbridge.portable import RandomState

    return None if rng is None else RandomState(f"numpy.random.{rng['bit_generator']}", dict(rng))


def _closure_parts(optimizer: Any, params: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """A closure-step optimizer's parameter arrays and their flat vector (its state's shape)."""
    if params is None:
        raise InputError("params: the NumPy backend needs the parameters to save or load their state")
    leaves = [np.asarray(p) for p in _flatten(params)[0]]
    return leaves, optimizer._flat(params, "params")


def _export_closure_state(optimizer: Any, state: Any, params: Any) -> Any:
    """The state of a closure-step optimizer (L-BFGS): its slots over the flat parameter vector."""
    from lossbridge.portable import from_bound

    state = state if state is not None else optimizer.state
    if state is None:
        raise InputError("optimizer: this NumPy optimizer has taken no step yet; pass state= (from step)")
    leaves, _ = _closure_parts(optimizer, params)
    return from_bound(
        optimizer.bound, step=int(np.asarray(state["n_iter"])), slots=[{} for _ in leaves],
        shapes=[a.shape for a in leaves], dtypes=[a.dtype.name for a in leaves], backend="numpy", flat=state,
    )


def _import_closure_state(optimizer: Any, portable: Any, params: Any, convert: bool) -> dict[str, np.ndarray]:
    from lossbridge.portable import check_compatible, resume_flat

    leaves, x = _closure_parts(optimizer, params)
    template = optimizer.bound.init(x, xp=np)
    conv = optimizer.bound.convention.framework if optimizer.bound.convention is not None else None
    check_compatible(
        portable, spec=optimizer.spec.name, convention=conv, hyper=optimizer.bound.hyper,
        shapes=[a.shape for a in leaves], names=[None] * len(leaves), slots=[{} for _ in leaves],
        convert=convert, backend="numpy", flat=template,
    )
    flat = resume_flat(portable.flat, template)  # the file's rows oldest first: head 0
    optimizer.state = {k: np.array(flat[k], dtype=np.asarray(t).dtype) for k, t in template.items()}
    return optimizer.state


def _import_state(optimizer: Any, portable: Any, params: Any, convert: bool) -> NumpyOptimizerState:
    from lossbridge.portable import check_compatible

    if params is None:
        raise InputError("params: the NumPy backend needs the parameters to load a state for")
    leaves, _ = _flatten(params)
    template = optimizer.init(params)
    conv = optimizer.bound.convention.framework if optimizer.bound.convention is not None else None
    kind = None if template.rng is None else _stream(template.rng).kind
    check_compatible(
        portable,
        spec=optimizer.spec.name,
        convention=conv,
        hyper=optimizer.bound.hyper,
        shapes=[np.shape(p) for p in leaves],
        names=[None] * len(leaves),
        slots=template.slots,
        convert=convert,
        backend="numpy",
        glob=template.glob,
        rng=kind,
    )
    slots = [
        {k: np.asarray(v, dtype=np.asarray(t[k]).dtype) for k, v in saved.items()}
        for saved, t in zip(portable.slots, template.slots, strict=True)
    ]
    glob = None
    if template.glob is not None:  # in the template's dtype (the parameters' lowest), as init keeps it
        glob = {k: np.asarray(v, dtype=np.asarray(template.glob[k]).dtype) for k, v in portable.glob.items()}
    # a spec with random needs continues the saved stream (NumPy's own generator), or (convert=True,
    # another backend's stream) restarts it from its key
    rng = template.rng
    if rng is not None:
        from lossbridge.portable import stream

        saved = stream(portable, kind, optimizer.bound.hyper.get("key"))
        if saved is not None:
            probe = np.random.default_rng()
            try:  # a malformed state is refused before anything is loaded
                probe.bit_generator.state = saved
            except (TypeError, ValueError, KeyError) as exc:
                raise InputError(f"load_state: cannot load this state (nothing was loaded): its {kind} stream state "
                                 f"is malformed ({exc})") from exc
            rng = probe.bit_generator.state
    optimizer._state = NumpyOptimizerState(int(portable.step), slots, glob, rng)
    return optimizer._state


def _float(x: Any, name: str) -> np.ndarray:
    arr = _array(x, name)
    if not np.issubdtype(arr.dtype, np.inexact):  # real or complex (Optax's complex math)
        raise InputError(f"{name}: expected floating-point arrays, got dtype {arr.dtype}")
    return arr


class NumpyBackend(Backend):
    """The reference backend: plain NumPy, analytic gradients."""

    name = "numpy"
    aliases = ("np",)
    requires = ("numpy",)
    distribution = "lossbridge"
    loss_order = "spec"
    #: ``check_finite=True`` refuses NaN and infinity in inputs / gradients (off by default: no cost).
    loss_options = ("validate", "check_finite")
    optimizer_options = ("check_finite", "lr_mult", "decay_mult")

    def namespace(self) -> Any:
        return xp

    def materialize_loss(self, bound: BoundLoss, **options: Any) -> NumpyLoss:
        return NumpyLoss(bound, **options)

    def materialize_optimizer(self, bound: BoundOptimizer, **options: Any) -> NumpyOptimizer:
        if bound.spec.role == "transform":  # a gradient transform: update returns transformed gradients
            from lossbridge.chain import NumpyTransform

            return NumpyTransform(bound, **options)
        if bound.spec.closure_step is not None:  # L-BFGS: step(params, closure) over all parameters as one vector
            from lossbridge.backends._numpy_closure import NumpyClosureOptimizer

            return NumpyClosureOptimizer(bound, **options)  # type: ignore[return-value]
        return NumpyOptimizer(bound, **options)

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

    def export_optimizer_state(self, optimizer: Any, *, state: Any = None, params: Any = None, **_: Any) -> Any:
        """A :class:`NumpyOptimizer`'s state (its own, or ``state=``) for :func:`lossbridge.save_state`;
        a closure-step optimizer's (L-BFGS) over the flat parameter vector."""
        from lossbridge.backends._numpy_closure import NumpyClosureOptimizer

        if isinstance(optimizer, NumpyClosureOptimizer):
            return _export_closure_state(optimizer, state, params)
        if not isinstance(optimizer, NumpyOptimizer):
            return None
        return _export_state(optimizer, state, params)

    def import_optimizer_state(
        self, optimizer: Any, portable: Any, *, state: Any = None, params: Any = None, convert: bool = False
    ) -> Any:
        """Load into a :class:`NumpyOptimizer`: sets its own state and returns it (``update``'s form); a
        closure-step optimizer's (L-BFGS) state dict."""
        from lossbridge.backends._numpy_closure import NumpyClosureOptimizer

        if isinstance(optimizer, NumpyClosureOptimizer):
            return _import_closure_state(optimizer, portable, params, convert)
        if not isinstance(optimizer, NumpyOptimizer):
            return NotImplemented
        return _import_state(optimizer, portable, params, convert)

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
