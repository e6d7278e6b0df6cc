"""The Array API namespace the torch backend hands to specs.

It is ``array_api_compat.torch`` with a few functions replaced. Findings under
``torch.compile(fullgraph=True)``:

* inferring the namespace per call with ``array_api_compat.array_namespace`` warns (Dynamo
  traces through ``functools.lru_cache``-wrapped helpers), so the backend never infers it: it
  always passes this namespace;
* ``array_api_compat.torch.clip`` calls ``math.isnan`` on its bounds, which breaks the graph when
  a bound is a symbolic float (``dynamic=True``, or a traced hyperparameter). Here ``clip`` with
  scalar bounds is ``torch.clamp`` directly (same result; NaN bounds propagate as NaN);
* ``asarray`` of a symbolic Python scalar (an element count from ``dynamic=True`` shapes: the
  reduction's mean denominator) is ``torch.full((), x)``: ``torch.asarray`` specializes it, which
  guarded every compiled loss on its batch size (one recompilation per batch size);
* ``take_along_axis`` is ``torch.gather`` when nothing is broadcast: ``torch.take_along_dim`` (which
  ``array_api_compat`` calls) specialized the batch size of sparse cross-entropy under ``dynamic=True``.

Findings in eager mode (torch.profiler, CPU, 1e6 float32 elements):

* ``array_api_compat.torch.sign`` propagates NaN with ``out[torch.isnan(x)] = nan`` (an ``isnan``
  pass plus a boolean-mask ``index_put``: 4.6-6.9 ms against 0.3 ms for ``torch.sign``). Here it is
  ``maximum(torch.sign(x), clamp(x, max=-1))``: the same values (``clamp(x, max=-1) <= -1 <= sign(x)``
  for every non-NaN ``x``, and ``maximum`` propagates NaN), in three plain passes (1.5 ms).
"""

from __future__ import annotations

import numbers
import types
from typing import Any

__all__ = ["namespace"]

_NAMESPACE: types.ModuleType | None = None


def _make() -> types.ModuleType:
    import array_api_compat.torch as compat
    import torch

    def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
        """``clip`` of the Array API standard; scalar bounds go straight to ``torch.clamp``."""
        kinds = (numbers.Real, torch.SymFloat, torch.SymInt)
        scalar = all(b is None or isinstance(b, kinds) for b in (min, max))
        if not scalar or (min is None and max is None):
            return compat.clip(x, min=min, max=max)
        return torch.clamp(x, min=min, max=max)

    is_compiling = torch.compiler.is_compiling

    def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None, **kwargs: Any) -> Any:
        """``asarray`` of the Array API standard; while compiling, a Python scalar (maybe symbolic: Dynamo
        shows a SymFloat as a float) is ``torch.full((), x)``, which keeps it symbolic (no shape guard)."""
        if (
            dtype is not None and copy is None and not kwargs and type(obj) in (int, float)
            and is_compiling()
        ):
            return torch.full((), obj, dtype=dtype, device=device)
        return compat.asarray(obj, dtype=dtype, device=device, copy=copy, **kwargs)

    def sign(x: Any, /) -> Any:
        """``sign`` of the Array API standard (NaN gives NaN) without a boolean-mask write."""
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            return compat.sign(x)
        return torch.maximum(torch.sign(x), torch.clamp(x, max=-1.0))

    def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
        """``take_along_axis`` of the Array API standard: ``torch.gather`` when nothing is broadcast
        (``torch.take_along_dim`` specializes every dimension under ``dynamic=True``)."""
        if (
            not isinstance(x, torch.Tensor) or not isinstance(indices, torch.Tensor) or x.ndim != indices.ndim
            or indices.dtype != torch.int64
        ):
            return compat.take_along_axis(x, indices, axis=axis)
        dim = axis % x.ndim if x.ndim else 0
        if any(x.shape[d] != indices.shape[d] for d in range(x.ndim) if d != dim):
            return compat.take_along_axis(x, indices, axis=axis)
        return torch.gather(x, dim, torch.where(indices < 0, indices + x.shape[dim], indices))

    ns = types.ModuleType("lossbridge_torch.xp", "array_api_compat.torch, compile-friendly (see _namespace)")
    public = {k: v for k, v in vars(compat).items() if not k.startswith("__")}
    ns.__dict__.update(public, __array_api_version__=compat.__array_api_version__)
    ns.clip = clip  # type: ignore[attr-defined]
    ns.asarray = asarray  # type: ignore[attr-defined]
    ns.sign = sign  # type: ignore[attr-defined]
    ns.take_along_axis = take_along_axis  # type: ignore[attr-defined]
    return ns


def namespace() -> Any:
    """The torch Array API namespace (imports torch on first use)."""
    global _NAMESPACE
    if _NAMESPACE is None:
        _NAMESPACE = _make()
    return _NAMESPACE
