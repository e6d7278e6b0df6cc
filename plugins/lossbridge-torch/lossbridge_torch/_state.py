"""Portable optimizer state for torch: lossbridge's optimizers, and ``torch.optim``'s own as a source.

:func:`export_state` reads a lossbridge torch optimizer (its ``state[p]`` holds ``step`` and the
spec's slots) or a ``torch.optim`` optimizer (read through its convention's ``state`` table);
:func:`import_state` loads a :class:`~lossbridge.portable.PortableState` into a lossbridge torch
optimizer after every check has passed. A spec's global state (``global_slots``, Prodigy's ``d``) is
the optimizer's ``state["global"]`` (:attr:`SpecOptimizer.GLOBAL_STATE_KEY`).

A closure-step optimizer (L-BFGS, :class:`~lossbridge_torch._lbfgs.ClosureOptimizer`) keeps the spec's
slots over the flat parameter vector under its first parameter: they are the portable ``flat``
state. ``torch.optim.LBFGS``'s own state is read too (:func:`_native_lbfgs`): its growing lists
``old_stps``/``old_dirs``/``ro`` (oldest first) are the newest rows of the spec's fixed memory
``s_mem``/``y_mem``/``rho`` (older rows empty: zero, with ``rho = 0``, which the two-loop recursion
skips exactly), and ``d``, ``t``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``n_iter``,
``func_evals`` are ``d``, ``t``, ``h_diag``, ``prev_grad``, ``prev_value``, ``n_iter``, ``func_evals``;
``al`` is scratch (rewritten before it is read). The spec's ``prev_x``, ``value``, ``grad`` and
``stepsize``, which torch does not keep and its convention never reads (Optax's cyclic memory,
``value_and_grad_from_state`` and zoom line search do), get their initial values (``value = inf``:
unknown, so an Optax loop re-evaluates the objective).

A spec with random needs (``sophia``, ``noisy_sgd``) draws from a CPU ``torch.Generator``
(:class:`~lossbridge_torch._oracle.OracleOptimizer`); its ``get_state()`` bytes are the portable
stream (kind ``"torch.Generator"``), so a torch save/load continues bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from lossbridge.errors import InputError
from lossbridge.portable import ANY, PortableState, RandomState, check_compatible, from_bound, from_native, stream

from ._lbfgs import ClosureOptimizer
from ._namespace import namespace
from ._optim import SpecOptimizer, _step_dtype

#: the kind of generator lossbridge's torch optimizers draw from (a portable stream's tag)
GENERATOR = "torch.Generator"

__all__ = ["export_state", "import_state"]


#: torch.optim's options that are not spec parameters: speed hints never change the numbers;
#: ``maximize`` does unless False (lossbridge's torch optimizers have it, the spec does not).
_TORCH_NEUTRAL = {
    "foreach": ANY, "fused": ANY, "capturable": ANY, "differentiable": ANY, "initial_lr": ANY,
    "maximize": False,
}
#: per class: torch's AdamW is Adam with decoupled_weight_decay=True, which the adamw spec always is
_CLASS_NEUTRAL = {"AdamW": {"decoupled_weight_decay": True}}


def _params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _names(optimizer: torch.optim.Optimizer, params: Any) -> list[str | None]:
    """Parameter names from ``params`` (``model.named_parameters()`` or a name -> tensor mapping)."""
    ours = _params(optimizer)
    if params is None:
        return [None] * len(ours)
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    if not all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in pairs):
        raise InputError("params: expected model.named_parameters() or a {name: tensor} mapping for torch")
    by_id = {id(t): n for n, t in pairs}
    return [by_id.get(id(p)) for p in ours]


def _one_group_hyper(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    first = groups[0]
    for k, group in enumerate(groups[1:], start=1):
        differ = sorted(n for n in first if n in group and _plain(first[n]) != _plain(group[n]))
        if differ:
            raise InputError(
                f"optimizer: param group {k} differs from group 0 in {differ}; a portable state holds one set of "
                "hyperparameters (save one optimizer per group)"
            )
    return first


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value


def _numpy(t: Any) -> np.ndarray:
    t = t.detach().cpu() if isinstance(t, torch.Tensor) else t
    if isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16:
        t = t.float()
    return np.asarray(t)


def _steps(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], given: int | None) -> int:
    """The steps taken: the state's ``step`` counters, or ``given`` where torch keeps none (SGD)."""
    steps = set()
    for i, p in enumerate(params):
        state = optimizer.state.get(p)
        if not state:
            raise InputError(f"optimizer: parameter {i} (shape {tuple(p.shape)}) has no state yet (no step taken)")
        if "step" in state:
            steps.add(int(_plain(state["step"])))
    if not steps:
        if given is None:
            raise InputError(
                f"step: {type(optimizer).__name__} does not count its steps; pass step=<the number of steps taken> "
                "to save_state"
            )
        return int(given)
    if len(steps) != 1:
        raise InputError(f"optimizer: parameters have taken different numbers of steps {sorted(steps)}")
    counted = steps.pop()
    if given is not None and int(given) != counted:
        raise InputError(f"step: the optimizer has taken {counted} steps, step={given} was given")
    return counted


def _random(optimizer: Any) -> bool:
    """Whether ``optimizer`` is lossbridge's optimizer of a spec drawing random numbers."""
    spec = getattr(getattr(optimizer, "bound", None), "spec", None)
    return isinstance(optimizer, SpecOptimizer) and bool(set(getattr(spec, "needs", ())) & {"noise", "hessian_diag"})


def _stream(optimizer: Any) -> RandomState | None:
    """The generator's state of a lossbridge optimizer with random needs (seeded from ``key`` if not yet drawn)."""
    if not _random(optimizer):
        return None
    return RandomState(GENERATOR, optimizer._generator().get_state().numpy().copy())


def _flat_views(optimizer: ClosureOptimizer) -> torch.Tensor:
    return torch.cat([v.detach().reshape(-1) for v in optimizer._views()])


def _closure_bound(optimizer: ClosureOptimizer) -> Any:
    group = optimizer.param_groups[0]
    return optimizer.bound.with_hyper(**{p.name: group[p.name] for p in optimizer.bound.spec.params})


def _export_closure(optimizer: Any, params: Any) -> PortableState:
    """A closure-step optimizer's state: the spec's slots over the flat vector (lossbridge's or torch's LBFGS)."""
    tensors = _params(optimizer)
    shapes = [tuple(p.shape) for p in tensors]
    dtypes = [str(p.dtype).removeprefix("torch.") for p in tensors]
    names = _names(optimizer, params)
    state = optimizer.state.get(tensors[0]) if tensors else None
    if not state:
        raise InputError(f"optimizer: {type(optimizer).__name__} has no state yet (no step taken)")
    if isinstance(optimizer, ClosureOptimizer):
        flat = {k: _numpy(v) for k, v in state.items()}
        return from_bound(_closure_bound(optimizer), step=int(flat["n_iter"]), slots=[{} for _ in tensors],
                          shapes=shapes, dtypes=dtypes, names=names, backend="torch", flat=flat)
    group = dict(_one_group_hyper(optimizer))
    flat = _native_lbfgs(optimizer, state, group)
    if group.get("max_eval") == group["max_iter"] * 5 // 4:  # torch's constructor fills in the spec's default (None)
        group["max_eval"] = None
    return from_native(
        "torch", type(optimizer).__name__, native_hyper={k: _plain(v) for k, v in group.items()},
        neutral=_TORCH_NEUTRAL, step=int(flat["n_iter"]), slots=[{} for _ in tensors], shapes=shapes,
        dtypes=dtypes, names=names, backend="torch", flat=flat,
    )


def _native_lbfgs(optimizer: torch.optim.Optimizer, state: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    """``torch.optim.LBFGS``'s state as the lbfgs spec's slots (see the module docstring)."""
    if any(p.is_complex() for p in _params(optimizer)):
        raise InputError("optimizer: torch.optim.LBFGS over complex parameters is not readable yet; nothing was saved")
    flat_params = torch.cat([p.detach().reshape(-1) for p in _params(optimizer)])
    x = flat_params.numpy()
    n, m, dtype = x.shape[0], int(group["history_size"]), x.dtype
    unknown = sorted(set(state) - {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                   "prev_flat_grad", "prev_loss", "al"})
    if unknown:
        raise InputError(f"optimizer: torch.optim.LBFGS holds state {unknown} lbfgs does not read; nothing was saved")

    def number(v: Any) -> np.ndarray:
        return np.asarray(_plain(v), dtype=dtype)

    def vector(v: Any) -> np.ndarray:
        return _numpy(v).astype(dtype).reshape(n)

    out = {
        "s_mem": np.zeros((m, n), dtype), "y_mem": np.zeros((m, n), dtype), "rho": np.zeros((m,), dtype),
        "h_diag": np.ones((), dtype), "d": np.zeros(n, dtype), "t": np.zeros((), dtype), "prev_x": np.zeros(n, dtype),
        "prev_grad": np.zeros(n, dtype), "prev_value": np.zeros((), dtype), "n_iter": number(state.get("n_iter", 0)),
        "func_evals": number(state.get("func_evals", 0)), "value": np.asarray(np.inf, dtype),
        "grad": np.zeros(n, dtype), "stepsize": np.ones((), dtype),
    }
    dirs, stps, ro = state.get("old_dirs") or [], state.get("old_stps") or [], state.get("ro") or []
    if not len(dirs) == len(stps) == len(ro) <= m:
        raise InputError(f"optimizer: torch.optim.LBFGS holds {len(stps)} steps, {len(dirs)} gradient changes and "
                         f"{len(ro)} weights for history_size={m}; nothing was saved")
    for k, (s, y, r) in enumerate(zip(stps, dirs, ro, strict=True)):  # oldest first: the newest rows
        row = m - len(stps) + k
        out["s_mem"][row], out["y_mem"][row], out["rho"][row] = vector(s), vector(y), number(r)
    for ours, theirs, read in (("d", "d", vector), ("t", "t", number), ("h_diag", "H_diag", number),
                               ("prev_grad", "prev_flat_grad", vector), ("prev_value", "prev_loss", number)):
        if state.get(theirs) is not None:
            out[ours] = read(state[theirs])
    return out


def export_state(optimizer: Any, *, params: Any = None, step: int | None = None) -> PortableState | None:
    """The portable state of a lossbridge or ``torch.optim`` optimizer, ``None`` for anything else."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        return None
    if isinstance(optimizer, (ClosureOptimizer, torch.optim.LBFGS)):
        if step is not None:
            raise InputError("step: L-BFGS counts its iterations (n_iter); step= is not taken")
        return _export_closure(optimizer, params)
    tensors = _params(optimizer)
    step = _steps(optimizer, tensors, step)
    slots = [{k: _numpy(v) for k, v in optimizer.state[p].items() if k != "step" and v is not None} for p in tensors]
    shapes = [tuple(p.shape) for p in tensors]
    dtypes = [str(p.dtype).removeprefix("torch.") for p in tensors]
    names = _names(optimizer, params)
    if isinstance(optimizer, SpecOptimizer):
        hyper = optimizer._hyper(_one_group_hyper(optimizer))
        bound = optimizer.bound.with_hyper(**hyper)
        glob = optimizer.state.get(SpecOptimizer.GLOBAL_STATE_KEY) if bound.spec.global_slots else None
        return from_bound(
            bound, step=step, slots=slots, shapes=shapes, dtypes=dtypes, names=names, backend="torch",
            glob={k: _numpy(v) for k, v in (glob or {}).items()}, rng=_stream(optimizer),
        )
    return from_native(
        "torch",
        type(optimizer).__name__,
        native_hyper={k: _plain(v) for k, v in _one_group_hyper(optimizer).items()},
        neutral={**_TORCH_NEUTRAL, **_CLASS_NEUTRAL.get(type(optimizer).__name__, {})},
        step=step,
        slots=slots,
        shapes=shapes,
        dtypes=dtypes,
        names=names,
        backend="torch",
    )


def _import_closure(optimizer: ClosureOptimizer, portable: PortableState, params: Any, convert: bool) -> Any:
    tensors = _params(optimizer)
    bound = _closure_bound(optimizer)
    template = bound.init(_flat_views(optimizer), xp=namespace())
    conv = bound.convention.framework if bound.convention is not None else None
    check_compatible(
        portable, spec=bound.spec.name, convention=conv, hyper=bound.hyper, shapes=[tuple(p.shape) for p in tensors],
        names=_names(optimizer, params), slots=[{} for _ in tensors], convert=convert, backend="torch", flat=template,
    )
    for p in tensors[1:]:
        optimizer.state.pop(p, None)
    from lossbridge.portable import resume_flat

    flat = resume_flat(portable.flat, template)  # the file's rows oldest first: head 0
    optimizer.state[tensors[0]] = {
        k: torch.as_tensor(np.array(flat[k]), dtype=like.dtype, device=like.device).reshape(like.shape)
        for k, like in template.items()
    }
    return portable


def _checked_stream(optimizer: Any, portable: PortableState, convert: bool) -> tuple[str | None, Any]:
    """``(kind, tensor)``: the generator kind of a random-needs optimizer and the saved stream it continues
    (``None``: restart from ``key``); a malformed saved state is refused here, before anything is loaded."""
    if not _random(optimizer):
        return None, None
    saved = stream(portable, GENERATOR, optimizer.param_groups[0].get("key", optimizer.bound.hyper.get("key")))
    if saved is None:
        return GENERATOR, None
    tensor = torch.as_tensor(np.array(saved, dtype=np.uint8))
    try:
        torch.Generator(device="cpu").set_state(tensor)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"load_state: cannot load this state (nothing was loaded): its {GENERATOR} state is "
                         f"malformed ({exc})") from exc
    return GENERATOR, tensor


def import_state(optimizer: Any, portable: PortableState, *, params: Any = None, convert: bool = False) -> Any:
    """Load ``portable`` into a lossbridge torch optimizer (everything checked first); ``NotImplemented`` else."""
    if isinstance(optimizer, ClosureOptimizer):
        return _import_closure(optimizer, portable, params, convert)
    if not isinstance(optimizer, SpecOptimizer):
        if isinstance(optimizer, torch.optim.Optimizer):
            raise InputError(
                f"optimizer: {type(optimizer).__name__} is torch's own optimizer; load_state loads into lossbridge "
                f"optimizers (lossbridge.get({portable.spec!r}, backend='torch', convention=...))"
            )
        return NotImplemented
    tensors = _params(optimizer)
    hyper = optimizer._hyper(_one_group_hyper(optimizer))
    bound = optimizer.bound.with_hyper(**hyper)
    xp = namespace()
    templates, works = [], []
    for p in tensors:
        work = torch.view_as_real(p.detach()) if p.is_complex() else p.detach()
        templates.append(bound.init(work, xp=xp))
        works.append(work)
    glob_template = None
    if bound.spec.global_slots and works:  # as the first step makes it: in the parameters' lowest dtype
        dtype = min((_step_dtype(w) for w in works), key=lambda d: d.itemsize)
        glob_template = bound.init_global(dtype=dtype, xp=xp)
    conv = bound.convention.framework if bound.convention is not None else None
    check_compatible(
        portable,
        spec=bound.spec.name,
        convention=conv,
        hyper=bound.hyper,
        shapes=[tuple(p.shape) for p in tensors],
        names=_names(optimizer, params),
        slots=templates,
        convert=convert,
        backend="torch",
        glob=glob_template,
        rng=GENERATOR if _random(optimizer) else None,
    )
    kind, generator_state = _checked_stream(optimizer, portable, convert)
    for p, template, saved in zip(tensors, templates, portable.slots, strict=True):
        state: dict[str, Any] = {"step": torch.tensor(float(portable.step), dtype=torch.float32)}
        for k, value in saved.items():
            like = template[k]
            state[k] = torch.as_tensor(np.array(value), dtype=like.dtype, device=like.device).reshape(like.shape)
        optimizer.state[p] = state
    if glob_template is not None:
        optimizer.state[SpecOptimizer.GLOBAL_STATE_KEY] = {
            k: torch.as_tensor(np.array(v), dtype=glob_template[k].dtype, device=glob_template[k].device).reshape(())
            for k, v in portable.glob.items()
        }
    if kind is not None:  # the saved stream continues, or (convert=True, another generator's) restarts from key
        key = getattr(optimizer, "RNG_STATE_KEY", "rng")
        if generator_state is None:
            optimizer.state.pop(key, None)
        else:
            optimizer.state[key] = generator_state
    return portable
