"""Portable optimizer state: save an optimizer's state in one framework, resume it in another.

>>> import numpy as np, lossbridge, tempfile, os
>>> opt = lossbridge.get("adam", lr=0.1)                       # NumPy backend
>>> params = [np.ones(3)]
>>> opt.step(params, [np.full(3, 0.5)])
>>> path = os.path.join(tempfile.mkdtemp(), "adam.safetensors")
>>> lossbridge.save_state(path, opt, params=params).step
1
>>> again = lossbridge.get("adam", lr=0.1)
>>> lossbridge.load_state(path, again, params=params).count    # NumPy: the optimizer's new state
1

The file is safetensors: one tensor per parameter and state slot (``"<i>/<slot>"``; complex slots
as ``"<i>/<slot>.real"`` and ``".imag"``), one 0-d tensor per global slot (``"global/<slot>"``: the
state an optimizer such as Prodigy shares between all parameters, :attr:`OptimizerSpec.global_slots`)
and JSON metadata under the key ``"lossbridge"``: the format version, spec name, convention,
hyperparameters, step count, per-parameter names, shapes and dtypes, and the global slots' dtypes
(``"global"``, present only when the optimizer has global state, so a file without it, as every
file written before global state was portable, reads as before: the format version is still 1).

Two optional sections extend the format (version 1 still: a file without them reads as before):

* ``"flat/<slot>"``: the state of an optimizer that works on all parameters as ONE vector
  (:attr:`OptimizerSpec.closure_step`: L-BFGS), arrays of any shape (``s_mem`` is
  ``(history_size, n)``, ``n`` the parameters' total size, each flattened in order), described by
  the metadata key ``"flat"`` (slot -> dtype); the per-parameter entries then hold no slots. L-BFGS
  keeps its memory as a ring buffer (:data:`RING_SLOTS`, the oldest row at :data:`RING_HEAD`); the
  file keeps those rows oldest first and no ``head`` (rolled on write, ``head = 0`` on read), so every
  file reads as before and any backend continues it.
* ``"rng"``: the random stream of a spec with random needs (``sophia``'s Rademacher vectors,
  ``noisy_sgd``'s noise), tagged with its generator's kind (``"numpy.random.PCG64"``,
  ``"torch.Generator"``, ``"jax.random.threefry2x32"``): metadata ``{"kind": ..., "state": ...}``
  where the state is JSON (NumPy's bit-generator state, integers as decimal strings) or
  ``"tensor"``, stored as the tensor ``"rng/state"`` (torch's ``Generator.get_state()`` bytes, a
  JAX key's ``key_data``). The same kind resumes bit for bit; another kind is refused (naming
  both) unless ``convert=True``, which keeps the deterministic state and restarts the stream from
  the loading optimizer's own ``key``.

Each backend reads and writes its own optimizers through two methods of the backend contract,
:meth:`~lossbridge.backends.base.Backend.export_optimizer_state` and
:meth:`~lossbridge.backends.base.Backend.import_optimizer_state`; this module holds what is
common: the file, the neutral :class:`PortableState`, and the checks, which all run before anything
is loaded, so a refused state is never half-loaded.

A framework's own optimizer (``torch.optim.Adam``, ``keras.optimizers.Adam``, an ``optax.adam``
state) is read through its convention's :attr:`~lossbridge.conventions.Convention.state` table
(spec slot -> the framework's slot name): data, verified per spec against the framework.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lossbridge.errors import InputError, LossbridgeError

__all__ = [
    "FORMAT_VERSION", "RING_HEAD", "RING_SLOTS", "PortableState", "RandomState", "load_state", "read_state",
    "resume_flat", "save_state", "write_state",
]

FORMAT_VERSION = 1
_FORMAT = "lossbridge.optimizer_state"

#: A closure-step state's ring-buffer memory (L-BFGS's pairs): the 0-d flat slot ``RING_HEAD`` is the
#: physical row of the oldest entry of the flat slots ``RING_SLOTS`` (row ``(head + i) % rows`` is the
#: ``i``-th oldest). A :class:`PortableState` and its file hold those rows oldest first and no ``head``.
RING_HEAD = "head"
RING_SLOTS = ("s_mem", "y_mem", "rho")


def _oldest_first(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``flat`` with its ring-buffer rows rolled oldest first (new arrays) and no ``head``; as given without one."""
    if RING_HEAD not in flat:
        return dict(flat)
    head = int(np.asarray(flat[RING_HEAD]))
    return {k: np.roll(np.asarray(v), -head, axis=0) if k in RING_SLOTS else v
            for k, v in flat.items() if k != RING_HEAD}


def resume_flat(saved: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """The flat state (NumPy arrays) to load into an optimizer whose fresh flat state is ``template``, one
    entry per slot of the template: the saved slots, their memory oldest first, and ``head = 0`` (an int64
    0-d array; the loader casts it to its own dtype): the rows as saved."""
    rows = _oldest_first(saved)
    return {k: np.zeros((), dtype=np.int64) if k == RING_HEAD else rows[k] for k in template}


@dataclass
class RandomState:
    """A random stream's state, tagged with its generator's kind (each backend has its own generator).

    ``kind`` names the generator (``"numpy.random.PCG64"``, ``"torch.Generator"``,
    ``"jax.random.threefry2x32"``); ``state`` is a JSON-able dict (NumPy's bit-generator state) or
    a NumPy array (torch's ``Generator.get_state()`` bytes, a JAX key's ``key_data``). Only an
    optimizer drawing from the same kind of generator can continue the stream.
    """

    kind: str
    state: Any

    def is_tensor(self) -> bool:
        return isinstance(self.state, np.ndarray)


@dataclass
class PortableState:
    """An optimizer's state, independent of any framework.

    ``slots[i]`` holds parameter ``i``'s state under the spec's slot names, as NumPy arrays shaped
    as the spec's ``init`` makes them; ``names[i]`` is the parameter's name where the framework has
    one (a torch ``named_parameters`` key, a Keras variable path, a pytree key path), else ``None``.
    ``backend`` is the backend that saved it: names are compared only when the loading backend is
    the same one (each framework names parameters its own way). ``glob`` is the state shared by all
    parameters (the spec's ``global_slots``, 0-d arrays), empty for a spec without it. ``flat`` is
    the state of a closure-step spec (L-BFGS) over all parameters as one vector (then every
    ``slots[i]`` is empty), ``rng`` the random stream of a spec with random needs.
    """

    spec: str
    convention: str | None
    hyper: dict[str, Any]
    step: int
    shapes: list[tuple[int, ...]]
    dtypes: list[str]
    slots: list[dict[str, np.ndarray]]
    names: list[str | None] = field(default_factory=list)
    backend: str | None = None
    glob: dict[str, np.ndarray] = field(default_factory=dict)
    flat: dict[str, np.ndarray] = field(default_factory=dict)
    rng: RandomState | None = None

    def __post_init__(self) -> None:
        if not self.names:
            self.names = [None] * len(self.shapes)
        counts = {len(self.shapes), len(self.dtypes), len(self.slots), len(self.names)}
        if len(counts) != 1:
            raise InputError(
                f"PortableState: shapes, dtypes, slots and names must have one entry per parameter, got "
                f"{len(self.shapes)}, {len(self.dtypes)}, {len(self.slots)}, {len(self.names)}"
            )

    def describe(self) -> str:
        conv = self.convention or "lossbridge"
        return f"{self.spec!r} (convention {conv!r}) at step {self.step} over {len(self.shapes)} parameter(s)"


# -- hyperparameters as JSON ------------------------------------------------------------------------
def portable_hyper(hyper: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-storable hyperparameters: numbers, bools, strings, None and tuples of them.

    A callable (a schedule as ``lr``) or an array is not portable: it is stored as ``None`` with
    its kind, and not compared at load time.
    """
    out: dict[str, Any] = {}
    for k, v in hyper.items():
        if isinstance(v, (bool, str)) or v is None:
            out[k] = v
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = float(v) if isinstance(v, (float, np.floating)) else int(v)
        elif isinstance(v, (tuple, list)) and all(isinstance(x, (int, float, bool, str)) for x in v):
            out[k] = list(v)
        else:
            out[k] = {"unportable": type(v).__name__}
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return True  # a schedule or another unportable value on either side is not compared
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return bool(a == b)


# -- the file ------------------------------------------------------------------------------------------
def _safetensors() -> Any:
    try:
        from safetensors import numpy as st
    except ImportError as exc:  # pragma: no cover - safetensors is a dependency
        raise LossbridgeError("saving optimizer state needs the safetensors package: pip install safetensors") from exc
    return st


def write_state(path: str | Path, portable: PortableState) -> None:
    """Write ``portable`` to ``path`` (safetensors with JSON metadata)."""
    tensors: dict[str, np.ndarray] = {}
    slot_dtypes: list[dict[str, str]] = []
    for i, slots in enumerate(portable.slots):
        slot_dtypes.append(_put_section(tensors, str(i), slots))
    global_dtypes = _put_section(tensors, "global", portable.glob)
    flat_dtypes = _put_section(tensors, "flat", portable.flat)
    meta = {
        "format": _FORMAT,
        "version": FORMAT_VERSION,
        "spec": portable.spec,
        "convention": portable.convention,
        "hyper": portable.hyper,
        "step": int(portable.step),
        "backend": portable.backend,
        "parameters": [
            {"name": n, "shape": list(s), "dtype": d, "slots": k}
            for n, s, d, k in zip(portable.names, portable.shapes, portable.dtypes, slot_dtypes, strict=True)
        ],
    }
    if global_dtypes:  # only then: a state without global slots is written exactly as before
        meta["global"] = global_dtypes
    if flat_dtypes:  # the same: only a closure-step spec (L-BFGS) has a flat state
        meta["flat"] = flat_dtypes
    if portable.rng is not None:  # only a spec with random needs has a stream
        if portable.rng.is_tensor():
            tensors["rng/state"] = np.array(portable.rng.state, order="C")
            meta["rng"] = {"kind": portable.rng.kind, "state": "tensor"}
        else:
            meta["rng"] = {"kind": portable.rng.kind, "state": _ints_as_text(portable.rng.state)}
    # write beside the target, then rename: an interrupted save leaves the previous file intact
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _safetensors().save_file(tensors, str(temporary), metadata={"lossbridge": json.dumps(meta)})
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


def _put_section(tensors: dict[str, np.ndarray], prefix: str, section: Mapping[str, Any]) -> dict[str, str]:
    """Store ``section``'s arrays as ``"<prefix>/<name>"`` tensors (complex as pairs); their dtypes.
    ``np.array(order="C")``, not ``ascontiguousarray``: that turns a 0-d slot into shape (1,)."""
    dtypes = {}
    for name, value in section.items():
        value = np.asarray(value)
        dtypes[name] = value.dtype.name
        if np.iscomplexobj(value):
            tensors[f"{prefix}/{name}.real"] = np.array(value.real, order="C")
            tensors[f"{prefix}/{name}.imag"] = np.array(value.imag, order="C")
        else:
            tensors[f"{prefix}/{name}"] = np.array(value, order="C")
    return dtypes


def _ints_as_text(value: Any) -> Any:
    """JSON with every integer as a decimal string (NumPy's 128-bit PCG64 state survives any JSON reader)."""
    if isinstance(value, Mapping):
        return {str(k): _ints_as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_ints_as_text(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, np.ndarray):
        return [_ints_as_text(v) for v in value.tolist()]
    return value


def _text_as_ints(value: Any) -> Any:
    """The inverse of :func:`_ints_as_text`: decimal strings back to integers."""
    if isinstance(value, dict):
        return {k: _text_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_as_ints(v) for v in value]
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value


def read_state(path: str | Path) -> PortableState:
    """Read a state written by :func:`write_state` (or :func:`save_state`).

    A truncated, edited or foreign file is an :class:`InputError` saying what is wrong with it;
    nothing is unpickled (safetensors and JSON only).
    """
    try:
        return _read(path)
    except InputError:
        raise
    except Exception as exc:  # safetensors' own errors, bad JSON, missing keys or tensors
        raise InputError(f"{path}: not a readable lossbridge optimizer state ({type(exc).__name__}: {exc})") from exc


def _read(path: str | Path) -> PortableState:
    from safetensors import safe_open

    _safetensors()
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    with safe_open(str(path), framework="numpy") as f:
        raw = (f.metadata() or {}).get("lossbridge")
        if raw is None:
            raise InputError(f"{path}: not a lossbridge optimizer state (no 'lossbridge' metadata)")
        meta = json.loads(raw)
        if meta.get("format") != _FORMAT:
            raise InputError(f"{path}: expected format {_FORMAT!r}, got {meta.get('format')!r}")
        if meta.get("version") != FORMAT_VERSION:
            raise InputError(
                f"{path}: written by format version {meta.get('version')!r}; this lossbridge reads version "
                f"{FORMAT_VERSION}"
            )
        def tensor(prefix: str, name: str, dtype: str) -> np.ndarray:
            if np.dtype(dtype).kind == "c":
                real, imag = f.get_tensor(f"{prefix}/{name}.real"), f.get_tensor(f"{prefix}/{name}.imag")
                return (real + 1j * imag).astype(dtype)
            return f.get_tensor(f"{prefix}/{name}")

        slots = [{name: tensor(str(i), name, dtype) for name, dtype in entry["slots"].items()}
                 for i, entry in enumerate(meta["parameters"])]
        global_dtypes = meta.get("global") or {}  # absent: no global state (and every file before it)
        glob = {name: tensor("global", name, dtype) for name, dtype in global_dtypes.items()}
        flat_dtypes = meta.get("flat") or {}  # absent: no flat (closure-step) state
        flat = {name: tensor("flat", name, dtype) for name, dtype in flat_dtypes.items()}
        described = [(str(i), e["slots"]) for i, e in enumerate(meta["parameters"])] + [
            ("global", global_dtypes), ("flat", flat_dtypes)]
        expected = {f"{prefix}/{n}{part}" for prefix, kinds in described for n, d in kinds.items()
                    for part in ((".real", ".imag") if np.dtype(d).kind == "c" else ("",))}
        rng = None
        if meta.get("rng") is not None:  # absent: no random stream (and every file before streams were saved)
            entry = meta["rng"]
            if entry["state"] == "tensor":
                rng = RandomState(str(entry["kind"]), f.get_tensor("rng/state"))
                expected.add("rng/state")
            else:
                rng = RandomState(str(entry["kind"]), _text_as_ints(entry["state"]))
        extra = sorted(set(f.keys()) - expected)
        if extra:
            raise InputError(f"{path}: tensors {extra[:5]} are not described by its metadata (an edited file?)")
    params = meta["parameters"]
    return PortableState(
        spec=meta["spec"],
        convention=meta["convention"],
        hyper=meta["hyper"],
        step=int(meta["step"]),
        shapes=[tuple(p["shape"]) for p in params],
        dtypes=[p["dtype"] for p in params],
        slots=slots,
        names=[p["name"] for p in params],
        backend=meta.get("backend"),
        glob=glob,
        flat=flat,
        rng=rng,
    )


# -- the checks (all before anything is loaded) ----------------------------------------------------------
def check_compatible(
    saved: PortableState,
    *,
    spec: str,
    convention: str | None,
    hyper: Mapping[str, Any],
    shapes: Sequence[tuple[int, ...]],
    names: Sequence[str | None],
    slots: Sequence[Mapping[str, Any]],
    convert: bool,
    backend: str | None = None,
    glob: Mapping[str, Any] | None = None,
    flat: Mapping[str, Any] | None = None,
    rng: str | None = None,
) -> None:
    """Raise :class:`InputError` naming both sides unless ``saved`` fits the target optimizer.

    ``slots`` are the target's freshly initialized slots (their names and shapes are what the
    saved ones must match), ``glob`` its fresh global state (a spec with ``global_slots``; ``None``
    or empty for one without), ``flat`` its fresh state over all parameters as one vector (a
    closure-step spec, L-BFGS), ``rng`` the kind of its random generator (a spec with random
    needs; :class:`RandomState`). With ``convert=True`` a different spec, convention or
    hyperparameters are accepted, and so is another generator's stream (not loaded: the
    optimizer's own stream, from its ``key``, is kept); the numbers then change (documented).
    Parameter count, shapes and slots (per parameter, global or flat) never are.
    """
    where = "load_state: cannot load this state (nothing was loaded)"
    if not convert:
        if saved.spec != spec:
            raise InputError(
                f"{where}: it was saved by spec {saved.spec!r}, the optimizer is {spec!r} (pass convert=True to "
                "load the matching slots anyway; the trajectory then differs)"
            )
        if (saved.convention or None) != (convention or None):
            raise InputError(
                f"{where}: it was saved under convention {saved.convention!r}, the optimizer uses {convention!r} "
                "(pass convert=True to load it anyway; the trajectory then differs)"
            )
        target = portable_hyper(hyper)
        differ = sorted(k for k in saved.hyper if k in target and not _same(saved.hyper[k], target[k]))
        if differ:
            both = ", ".join(f"{k}: saved {saved.hyper[k]!r}, optimizer {target[k]!r}" for k in differ)
            raise InputError(
                f"{where}: hyperparameters differ ({both}); build the optimizer with the saved values, or pass "
                "convert=True to keep the optimizer's"
            )
    if len(saved.shapes) != len(shapes):
        raise InputError(
            f"{where}: it holds {len(saved.shapes)} parameter(s), the optimizer has {len(shapes)}"
        )
    for i, (s_shape, t_shape) in enumerate(zip(saved.shapes, shapes, strict=True)):
        label = _label(i, saved.names[i], names[i] if i < len(names) else None)
        if tuple(s_shape) != tuple(t_shape):
            raise InputError(f"{where}: parameter {label} was saved with shape {tuple(s_shape)}, is {tuple(t_shape)}")
        s_name, t_name = saved.names[i], names[i] if i < len(names) else None
        same_backend = backend is not None and saved.backend == backend
        if same_backend and s_name is not None and t_name is not None and s_name != t_name and not convert:
            raise InputError(f"{where}: parameter {i} was saved as {s_name!r}, the optimizer's is {t_name!r}")
        have, want = set(saved.slots[i]), set(slots[i])
        if have != want:
            raise InputError(
                f"{where}: parameter {label} has saved slots {sorted(have)}, the optimizer expects {sorted(want)}"
            )
        for k, v in saved.slots[i].items():
            t = tuple(np.shape(slots[i][k]))
            if tuple(np.shape(v)) != t:
                raise InputError(
                    f"{where}: slot {k!r} of parameter {label} was saved with shape {tuple(np.shape(v))}, expected {t}"
                )
    target_glob = dict(glob or {})
    have, want = set(saved.glob), set(target_glob)
    if have != want:
        raise InputError(
            f"{where}: it holds the global state (shared by all parameters) {sorted(have)}, the optimizer "
            f"{spec!r} keeps {sorted(want)}"
        )
    for k, v in saved.glob.items():
        t = tuple(np.shape(target_glob[k]))
        if tuple(np.shape(v)) != t:
            raise InputError(f"{where}: global slot {k!r} was saved with shape {tuple(np.shape(v))}, expected {t}")
    target_flat = dict(flat or {})
    have, want = set(saved.flat) - {RING_HEAD}, set(target_flat) - {RING_HEAD}  # files keep no ring head
    if have != want:
        raise InputError(
            f"{where}: it holds the state over all parameters as one vector {sorted(have)}, the optimizer "
            f"{spec!r} keeps {sorted(want)}"
        )
    n = sum(math.prod(s) for s in shapes)
    for k, v in saved.flat.items():
        t = tuple(np.shape(target_flat[k]))
        if tuple(np.shape(v)) != t:
            raise InputError(
                f"{where}: slot {k!r} of the state over all parameters ({n} numbers as one vector) was saved with "
                f"shape {tuple(np.shape(v))}, expected {t}"
            )
    check_stream(saved, rng, convert=convert, where=where)


def check_stream(saved: PortableState, kind: str | None, *, convert: bool, where: str) -> None:
    """Refuse a random stream the target cannot continue (another generator, or none saved) unless ``convert``."""
    if kind is None or convert:
        return  # no random needs (a saved stream belongs to another spec: convert), or restarting is accepted
    if saved.rng is None:
        raise InputError(
            f"{where}: the optimizer draws from a {kind} stream, the file holds none; pass convert=True to "
            "restart the stream from the optimizer's key (the numbers then differ from the saved run's)"
        )
    if saved.rng.kind != kind:
        raise InputError(
            f"{where}: its random stream is a {saved.rng.kind} state, the optimizer draws from a {kind}: each "
            "backend has its own generator, so the stream cannot continue here; pass convert=True to load the "
            "deterministic state and restart the stream from the optimizer's key (the numbers then differ)"
        )


def stream(saved: PortableState, kind: str | None, key: Any = None) -> Any:
    """The saved stream's state when the target (drawing from ``kind``, seeded with ``key``) continues it,
    else ``None``: none saved, another generator's, or (``convert=True`` with another ``key``) the
    target's own seed: the target keeps its own stream, restarted from its key."""
    if kind is None or saved.rng is None or saved.rng.kind != kind:
        return None
    saved_key = saved.hyper.get("key", key)
    if not isinstance(saved_key, dict) and (saved_key or 0) != (key or 0):  # None is seed 0
        return None
    return saved.rng.state


def _label(i: int, saved: str | None, target: str | None) -> str:
    name = target or saved
    return f"{i} ({name!r})" if name else str(i)


# -- the API ---------------------------------------------------------------------------------------------
def _backends() -> list[Any]:
    from lossbridge.registry import default_registry

    return list(default_registry().backends().values())


def export_state(
    optimizer: Any,
    *,
    state: Any = None,
    params: Any = None,
    spec: str | None = None,
    convention: str | None = None,
    hyper: Mapping[str, Any] | None = None,
    step: int | None = None,
) -> PortableState:
    """The :class:`PortableState` of ``optimizer`` (see :func:`save_state` for the arguments)."""
    for backend in _backends():
        found = backend.export_optimizer_state(
            optimizer, state=state, params=params, spec=spec, convention=convention, hyper=hyper, step=step
        )
        if found is not None:
            return found
    raise InputError(
        f"optimizer: expected a lossbridge optimizer of an installed backend, or a torch.optim / keras / "
        f"optax optimizer lossbridge has a convention for, got {type(optimizer).__module__}."
        f"{type(optimizer).__qualname__}"
    )


def save_state(
    path: str | Path,
    optimizer: Any,
    *,
    state: Any = None,
    params: Any = None,
    spec: str | None = None,
    convention: str | None = None,
    hyper: Mapping[str, Any] | None = None,
    step: int | None = None,
) -> PortableState:
    """Save ``optimizer``'s state to ``path`` so any backend's lossbridge optimizer can resume it.

    Parameters
    ----------
    optimizer:
        torch and Keras: the optimizer instance (lossbridge's, or ``torch.optim.Adam``/``SGD``/...,
        ``keras.optimizers.Adam``/...). JAX: the transformation (lossbridge's), with the Optax state
        as ``state=``; for a native Optax state pass ``optimizer=None`` (or the native
        transformation) with ``spec=``, ``convention="optax"`` and ``hyper=``, since an Optax
        transformation does not expose its hyperparameters. NumPy: lossbridge's optimizer (its
        own state, or ``state=``); array-api-strict: lossbridge's optimizer. State shared by all
        parameters (``OptimizerSpec.global_slots``, Prodigy's ``d``) is saved with the rest.
    params:
        The parameters, where the backend needs them to order or name the state (JAX: the pytree;
        Keras: optional, the variables).
    step:
        The number of steps taken, only for a framework optimizer that does not count them
        (``torch.optim.SGD``); it is an error to leave it out there, and to give it elsewhere.
    Returns the :class:`PortableState` written.
    """
    portable = export_state(
        optimizer, state=state, params=params, spec=spec, convention=convention, hyper=hyper, step=step
    )
    write_state(path, portable)
    return portable


def load_state(
    path: str | Path,
    optimizer: Any,
    *,
    state: Any = None,
    params: Any = None,
    convert: bool = False,
) -> Any:
    """Load a state saved by :func:`save_state` (from any framework) into ``optimizer``.

    torch and Keras: loads into the instance (a Keras optimizer not yet built is built over
    ``params``) and returns the :class:`PortableState`. JAX: returns a new Optax state for
    ``params``. NumPy: sets the optimizer's own state (used by ``step``) and returns it (the
    functional ``update``'s state).

    The spec, convention, hyperparameters, parameter count, shapes, names and slots are checked
    first; a mismatch is an :class:`~lossbridge.errors.InputError` naming both sides and nothing is
    loaded. ``convert=True`` accepts a different spec, convention or hyperparameters (changing the
    numbers: the trajectory is no longer the saved run's).
    """
    portable = read_state(path)
    for backend in _backends():
        done = backend.import_optimizer_state(optimizer, portable, state=state, params=params, convert=convert)
        if done is not NotImplemented:
            return done
    raise InputError(
        f"optimizer: expected a lossbridge optimizer of an installed backend, got "
        f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"
    )


# -- helpers the backends share -------------------------------------------------------------------------
def from_bound(
    bound: Any,
    *,
    step: int,
    slots: Sequence[Mapping[str, Any]],
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[str],
    names: Sequence[str | None] | None = None,
    backend: str | None = None,
    glob: Mapping[str, Any] | None = None,
    flat: Mapping[str, Any] | None = None,
    rng: RandomState | None = None,
) -> PortableState:
    """The :class:`PortableState` of a lossbridge optimizer: its bound spec, per-parameter slots and
    (a spec with ``global_slots``) its global state ``glob``, which must hold exactly those slots;
    (a closure-step spec) its ``flat`` state over all parameters as one vector, which must hold the
    spec's ``slots``; (a spec with random needs) its random stream ``rng``."""
    spec = bound.spec
    if getattr(spec, "closure_step", None) is not None:
        flat = _oldest_first(flat or {})  # a ring buffer's rows oldest first (copies): the file's layout
        if not flat:
            raise InputError(f"save_state: {spec.name!r} has no state yet (no step taken)")
        if set(flat) != set(spec.slots) - {RING_HEAD}:
            raise InputError(
                f"save_state: {spec.name!r} keeps the state {list(spec.slots)} over all parameters as one vector, "
                f"the optimizer holds {sorted(flat)}"
            )
    elif flat:
        raise InputError(f"save_state: {spec.name!r} keeps no state over all parameters as one vector")
    if rng is None and set(getattr(spec, "needs", ())) & {"noise", "hessian_diag"}:
        raise InputError(f"save_state: {spec.name!r} draws random numbers; its stream is missing")
    declared = tuple(getattr(bound.spec, "global_slots", ()) or ())
    glob = dict(glob or {})
    if set(glob) != set(declared):
        raise InputError(
            f"save_state: {bound.spec.name!r} keeps the global state {list(declared)} (shared by all "
            f"parameters), the optimizer holds {sorted(glob)}"
            + ("; take a step first" if declared and not glob else "")
        )
    conv = bound.convention.framework if bound.convention is not None else None
    return PortableState(
        spec=bound.spec.name,
        convention=conv,
        hyper=portable_hyper(bound.hyper),
        step=int(step),
        shapes=[tuple(int(n) for n in s) for s in shapes],
        dtypes=[str(d) for d in dtypes],
        slots=[{k: np.asarray(v) for k, v in one.items()} for one in slots],
        names=list(names) if names is not None else [],
        backend=backend,
        glob={k: np.asarray(v) for k, v in glob.items()},
        flat={k: np.asarray(v) for k, v in (flat or {}).items()},
        rng=rng,
    )


def _fresh_slots(bound: Any, shape: Sequence[int], dtype: str) -> dict[str, Any] | None:
    """The slots lossbridge's optimizer makes for a parameter of this shape (NumPy), ``None`` if unknown."""
    try:
        return dict(bound.init(np.zeros(tuple(shape), dtype=np.dtype(dtype)), xp=np))
    except Exception:  # a dtype NumPy lacks (bfloat16) or an init needing more: no check
        return None


class _Any:
    def __repr__(self) -> str:
        return "ANY"


#: In a ``neutral`` table of :func:`from_native`: an option whose value never changes the numbers.
ANY: Any = _Any()


def from_native(
    framework: str,
    name: str,
    *,
    native_hyper: Mapping[str, Any],
    step: int,
    slots: Sequence[Mapping[str, Any]],
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[str],
    names: Sequence[str | None] | None = None,
    backend: str | None = None,
    neutral: Mapping[str, Any] | None = None,
    glob: Mapping[str, Any] | None = None,
    flat: Mapping[str, Any] | None = None,
) -> PortableState:
    """The :class:`PortableState` of a framework's own optimizer, read through its convention.

    ``name`` is the framework's name of the optimizer (``"Adam"``), ``native_hyper`` its keyword
    arguments as the framework names them (``betas``, ``learning_rate``), ``slots`` its per-parameter
    state under the framework's slot names. ``neutral`` lists the framework's options that are not
    spec parameters with the value at which they leave the numbers alone (:data:`ANY`: never
    changes them, e.g. torch's ``foreach``); any other value, or an unknown keyword, is refused:
    resuming without it would silently change the trajectory (torch's ``maximize=True``, Keras's
    ``clipnorm``).
    The spec's slots are read through :attr:`Convention.state`; a native slot the table does not
    cover is an error (its meaning is not verified). ``glob`` is the native state shared by all
    parameters (Optax's ``estim_lr`` of Prodigy), under the framework's names, read through the same
    table (a spec's ``global_slots`` entries). ``flat`` is the state of a closure-step spec (L-BFGS)
    already in the spec's slot names: the framework's layout (``torch.optim.LBFGS``'s growing lists)
    is translated by the adapter's own reader, verified against the framework.
    """
    from lossbridge.bound import bind, translate_kwargs
    from lossbridge.registry import default_registry

    resolution = default_registry().resolve(name, framework)
    found = resolution.spec
    conv = found.conventions.get(framework)
    table = dict(getattr(conv, "state", {}) or {})
    if conv is None or (not table and not flat):
        raise InputError(
            f"optimizer: the state of {framework}'s {name} is not readable yet: spec {found.name!r} has no verified "
            f"table of {framework}'s state slots (Convention.state)"
        )
    known = {p.name for p in found.all_params()}
    neutral = dict(neutral or {})
    given: dict[str, Any] = {}
    for k, v in native_hyper.items():
        if k in neutral:
            if neutral[k] is not ANY and v != neutral[k]:
                raise InputError(
                    f"optimizer: {framework}'s {name} has {k}={v!r}, which lossbridge's {found.name!r} does not "
                    f"reproduce (only {k}={neutral[k]!r}); nothing was saved"
                )
            continue
        ours = translate_kwargs(found, framework, {k: v})
        unknown = sorted(set(ours) - known)
        if unknown:
            raise InputError(
                f"optimizer: {framework}'s {name} has option {k}={v!r}, not a parameter of {found.name!r}; "
                "nothing was saved"
            )
        given.update(ours)
    preset = dict(resolution.preset)
    bound = bind(found, convention=framework, params={**preset, **given})
    # a table entry is the native name, or (native name, scale) when native = scale * spec (a sign)
    inverse = {(n if isinstance(n, str) else n[0]): (ours, 1.0 if isinstance(n, str) else float(n[1]))
               for ours, n in table.items()}
    spec_slots = []
    for i, one in enumerate(slots):
        unknown = sorted(set(one) - set(inverse))
        if unknown:
            raise InputError(
                f"optimizer: {framework}'s {name} holds state {unknown} for parameter {i} that spec {found.name!r} "
                f"does not read (known: {sorted(inverse)}); nothing was saved"
            )
        spec_slots.append({inverse[k][0]: np.asarray(v) / inverse[k][1] if inverse[k][1] != 1.0 else v
                           for k, v in one.items()})
        wanted = None if flat else _fresh_slots(bound, shapes[i], dtypes[i])  # a flat state: no per-tensor slots
        missing = sorted(set(wanted or ()) - set(spec_slots[-1]))
        if missing:
            native_names = [table[k] if isinstance(table[k], str) else table[k][0] for k in missing if k in table]
            raise InputError(
                f"optimizer: {framework}'s {name} holds no state for slot(s) {missing} of spec {found.name!r} "
                f"(read from {native_names or 'nothing'}) for parameter {i}, which lossbridge's optimizer with these "
                "hyperparameters keeps; this native variant is not readable; nothing was saved"
            )
    shared = dict(glob or {})
    unknown = sorted(k for k in shared if k not in inverse or inverse[k][0] not in found.global_slots)
    if unknown:
        raise InputError(
            f"optimizer: {framework}'s {name} holds global state {unknown} that spec {found.name!r} does not "
            f"read (its global slots: {list(found.global_slots)}); nothing was saved"
        )
    spec_glob = {inverse[k][0]: np.asarray(v) / inverse[k][1] if inverse[k][1] != 1.0 else np.asarray(v)
                 for k, v in shared.items()}
    return from_bound(bound, step=step, slots=spec_slots, shapes=shapes, dtypes=dtypes, names=names,
                      backend=backend, glob=spec_glob, flat=flat)

