"""Portable optimizer state for torch: lossbridge's optimizers, and ``torch.optim``'s own as a source.

:func:`export_state` reads a lossbridge torch optimizer (its ``state[p]`` holds ``step`` and the
spec's slots) or a ``torch.optim`` optimizer (read through its convention's ``state`` table);
:func:`import_state` loads a :class:`~lossbridge.portable.PortableState` into a lossbridge torch
optimizer after every check has passed. A spec's global state (``global_slots``, Prodigy's ``d``) is
the optimizer's ``state["global"]`` (:attr:`SpecOptimizer.GLOBAL_STATE_KEY`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from lossbridge.errors import InputError
from lossbridge.portable import ANY, PortableState, check_compatible, from_bound, from_native

from ._namespace import namespace
from ._optim import SpecOptimizer, _step_dtype

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


def export_state(optimizer: Any, *, params: Any = None, step: int | None = None) -> PortableState | None:
    """The portable state of a lossbridge or ``torch.optim`` optimizer, ``None`` for anything else."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        return None
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
            glob={k: _numpy(v) for k, v in (glob or {}).items()},
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


def import_state(optimizer: Any, portable: PortableState, *, params: Any = None, convert: bool = False) -> Any:
    """Load ``portable`` into a lossbridge torch optimizer (everything checked first); ``NotImplemented`` else."""
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
    )
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
    return portable
