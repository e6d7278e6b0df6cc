"""lossbridge's PyTorch backend: losses as ``torch.nn.Module``, optimizers as ``torch.optim.Optimizer``.

Importing this package does not import torch; the backend imports it the first time it
materializes a loss or an optimizer.

Public names: :class:`TorchBackend` (the backend; ``TorchBackend().materialize_loss(loss.bound)`` is a
loss's generic spec path, without any override), and ``NATIVE_LOSSES`` / :class:`NativeLoss`: the data
table of the verified ``torch.nn.functional`` kernels under ``convention="torch"`` (which torch name
runs which kernel under which parameters), for tests and documentation. For the eager optimizer
engine's recorded programs (tests and benchmarks look at them without reaching into private modules;
they import torch when called): :func:`recorded_programs`, :func:`record_update`, :func:`eager_chunk_bytes`.
The optimizer-side classes, loaded with torch on first access: :class:`SpecTransform` and
:class:`TransformChain` (what a transform spec materializes as), :class:`TensorList` and :func:`foreach_namespace`
(the whole-group list namespace).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ._backend import TorchBackend
from ._native_loss import NATIVE_LOSSES, NativeLoss

__all__ = [
    "NATIVE_LOSSES", "NativeLoss", "SpecTransform", "TensorList", "TorchBackend", "TransformChain", "eager_chunk_bytes",
    "foreach_namespace", "record_update", "recorded_programs",
]

#: public names whose modules import torch: loaded on first access (``import lossbridge_torch`` stays torch-free)
_LAZY = {
    "SpecTransform": "._transforms",  # the class of every gradient-transform optimizer lossbridge builds
    "TransformChain": "._transforms",  # a transform chained into an optimizer (``chain(...)``)
    "TensorList": "._foreach",  # the list-of-tensors array of the whole-group (foreach) namespace
    "foreach_namespace": "._foreach",  # that namespace: each Array API op on a TensorList is one _foreach_ call
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def recorded_programs(optimizer: Any, kind: str = "flat") -> list[Any]:
    """The recorded update programs a lossbridge torch optimizer or transform holds, for inspection.

    ``kind``: ``"flat"`` (whole-group programs of an elementwise spec), ``"shape"`` (per-shape programs of
    the tensor-by-tensor path) or ``"transform"`` (a gradient transform's per-shape programs). An entry is
    ``None`` where the update could not be recorded and runs as it is; otherwise it has ``variants``
    (specializations, each with its generated ``source``) and ``selects`` (the ``where`` calls it
    specializes on). Programs are an implementation detail: their structure may change between versions.
    """
    state = vars(optimizer)
    if kind == "flat":
        found = [prog for entry in state.get("_flat_cache", {}).values() for group, _ in entry[0]
                 for prog in group.programs.values()]
    elif kind == "shape":
        found = list(state.get("_shape_programs", {}).values())
    elif kind == "transform":
        runner = state.get("_runner")
        found = [] if runner is None else list(runner.programs.values())
    else:
        raise ValueError(f"kind must be 'flat', 'shape' or 'transform', got {kind!r}")
    return [prog if prog is not False else None for prog in found]


def record_update(update: Any, param: Any, grad: Any, state: dict[str, Any], step: Any) -> tuple[Any, Any, Any]:
    """Run ``update(param, grad, state, step=step, xp=None)`` once while recording it, as the eager engine does:
    ``(delta, new_state, program)``, ``program`` None when the update cannot be replayed (it reads values)."""
    from ._flat import _record

    names = list(state)
    delta, values, program = _record(update, param, grad, dict(state), step, {}, None, names, [], [step])
    return delta, values, program if program is not False else None


@contextlib.contextmanager
def eager_chunk_bytes(size: int) -> Iterator[None]:
    """Within the block, the eager flat engine cuts a group into chunks of ``size`` bytes per array (default
    512 KB): small chunks make small tensors span several chunks and pack several tensors into one (tests)."""
    from . import _flat

    old = _flat._CHUNK_BYTES
    _flat._CHUNK_BYTES = size
    try:
        yield
    finally:
        _flat._CHUNK_BYTES = old
