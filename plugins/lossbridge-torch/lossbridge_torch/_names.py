"""torch's keyword names accepted as aliases of a spec's parameter names (data, not math)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossbridge import ParameterError
from lossbridge.spec import LossSpec, OptimizerSpec

__all__ = ["translate_params"]

#: torch keyword -> the spec parameter it stands for (when the spec has no parameter of that name).
_RENAMES = {"weight": "class_weight"}
#: torch keyword holding a pair -> the two spec parameters it splits into.
_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {"betas": (("beta_1", "beta_2"), ("beta1", "beta2"))}


def _pop_pair(spec_name: str, out: dict[str, Any], key: str, names: tuple[str, str]) -> None:
    value = out.pop(key)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ParameterError(
            f"{spec_name}: parameter {key!r} expects a pair ({names[0]}, {names[1]}), got {value!r}"
        )
    for name, item in zip(names, value, strict=True):
        if name in out:
            raise ParameterError(f"{spec_name}: give either {key!r} or {name!r}, not both")
        out[name] = item


def translate_params(spec: LossSpec | OptimizerSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with torch's names (``weight``, ``betas``) mapped onto the spec's own names."""
    have = {p.name for p in spec.all_params()}
    out = dict(params)
    for torch_name, spec_name in _RENAMES.items():
        if torch_name in out and torch_name not in have and spec_name in have:
            if spec_name in out:
                raise ParameterError(f"{spec.name}: give either {torch_name!r} or {spec_name!r}, not both")
            out[spec_name] = out.pop(torch_name)
    for torch_name, candidates in _PAIRS.items():
        for pair in candidates:
            if torch_name in out and torch_name not in have and set(pair) <= have:
                _pop_pair(spec.name, out, torch_name, pair)
    return out
