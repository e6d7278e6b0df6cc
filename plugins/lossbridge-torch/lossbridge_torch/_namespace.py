"""The Array API namespace the torch backend hands to specs.

It is ``array_api_compat.torch`` with one function replaced. Findings under
``torch.compile(fullgraph=True)``:

* inferring the namespace per call with ``array_api_compat.array_namespace`` warns (Dynamo
  traces through ``functools.lru_cache``-wrapped helpers), so the backend never infers it: it
  always passes this namespace;
* ``array_api_compat.torch.clip`` calls ``math.isnan`` on its bounds, which breaks the graph when
  a bound is a symbolic float (``dynamic=True``, or a traced hyperparameter). Here ``clip`` with
  scalar bounds is ``torch.clamp`` directly (same result; NaN bounds propagate as NaN).
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

    ns = types.ModuleType("lossbridge_torch.xp", "array_api_compat.torch, compile-friendly (see _namespace)")
    public = {k: v for k, v in vars(compat).items() if not k.startswith("__")}
    ns.__dict__.update(public, __array_api_version__=compat.__array_api_version__)
    ns.clip = clip  # type: ignore[attr-defined]
    return ns


def namespace() -> Any:
    """The torch Array API namespace (imports torch on first use)."""
    global _NAMESPACE
    if _NAMESPACE is None:
        _NAMESPACE = _make()
    return _NAMESPACE
