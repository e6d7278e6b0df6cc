"""The one place where input checks and their messages live; every backend calls these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lossbridge.errors import InputError

__all__ = [
    "check_floating",
    "check_integer",
    "check_min_ndim",
    "check_nonempty",
    "check_shape",
    "dtype_name",
]


def dtype_name(x: Any) -> str:
    """A short dtype name for messages (``float32``, ``int64``) across array libraries."""
    dtype = getattr(x, "dtype", type(x))
    name = getattr(dtype, "name", None) or str(dtype)
    return name.replace("<dtype: '", "").replace("'>", "").rsplit(".", 1)[-1]


def _is_floating(xp: Any, x: Any) -> bool:
    return bool(xp.isdtype(x.dtype, "real floating"))


def check_floating(xp: Any, x: Any, name: str) -> None:
    """``x`` must have a real floating dtype."""
    if not _is_floating(xp, x):
        raise InputError(f"{name}: expected a floating-point array, got dtype {dtype_name(x)}")


def check_integer(xp: Any, x: Any, name: str) -> None:
    """``x`` must have an integer dtype (class indices)."""
    if not xp.isdtype(x.dtype, "integral"):
        raise InputError(f"{name}: expected integer class indices, got dtype {dtype_name(x)}")


def check_shape(x: Any, expected: Sequence[int], name: str, *, relation: str = "") -> None:
    """``x.shape`` must equal ``expected``."""
    if tuple(x.shape) != tuple(expected):
        suffix = f" ({relation})" if relation else ""
        raise InputError(f"{name}: expected shape {tuple(expected)}{suffix}, got {tuple(x.shape)}")


def check_min_ndim(x: Any, ndim: int, name: str, what: str) -> None:
    """``x`` needs at least ``ndim`` axes."""
    if x.ndim < ndim:
        raise InputError(f"{name}: expected at least {ndim} dimension(s) ({what}), got shape {tuple(x.shape)}")


def check_nonempty(x: Any, name: str) -> None:
    """An empty batch has no mean; refuse it instead of returning NaN."""
    if any(n is not None and int(n) == 0 for n in x.shape):  # None: unknown while tracing
        raise InputError(f"{name}: expected a non-empty batch, got shape {tuple(x.shape)}")
