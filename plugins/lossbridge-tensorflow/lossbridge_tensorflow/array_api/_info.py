"""``__array_namespace_info__``: capabilities, default dtypes and the dtypes of this namespace."""

from __future__ import annotations

from typing import Any

from . import _dtypes as d

__all__ = ["Info", "__array_namespace_info__"]

_GROUPS: dict[str, tuple[str, ...]] = {
    "bool": ("bool",),
    "signed integer": ("int8", "int16", "int32", "int64"),
    "unsigned integer": ("uint8", "uint16", "uint32", "uint64"),
    "real floating": ("float16", "float32", "float64"),
    "complex floating": ("complex64", "complex128"),
}
_GROUPS["integral"] = _GROUPS["signed integer"] + _GROUPS["unsigned integer"]
_GROUPS["numeric"] = _GROUPS["integral"] + _GROUPS["real floating"] + _GROUPS["complex floating"]


class Info:
    """What the TensorFlow namespace supports (the Array API inspection object)."""

    def capabilities(self) -> dict[str, Any]:
        """Boolean indexing and data-dependent shapes are not supported (XLA needs static shapes)."""
        return {"boolean indexing": False, "data-dependent shapes": False, "max dimensions": 254}

    def default_device(self) -> str:
        """TensorFlow places tensors itself; the namespace reports the CPU."""
        return "cpu"

    def devices(self) -> list[str]:
        """The devices (informational: device arguments are accepted and ignored)."""
        return ["cpu"]

    def default_dtypes(self, *, device: Any = None) -> dict[str, Any]:
        """float32 (TensorFlow/Keras default), complex64, int64 for integers and indices."""
        return {
            "real floating": d.DEFAULT_FLOAT,
            "complex floating": d.complex64,
            "integral": d.DEFAULT_INT,
            "indexing": d.DEFAULT_INT,
        }

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict[str, Any]:
        """The dtypes of ``kind`` (all when None) by name."""
        names = _GROUPS["numeric"] + ("bool",) if kind is None else self._names(kind)
        return {n: getattr(d, n) for n in names}

    def _names(self, kind: Any) -> tuple[str, ...]:
        if isinstance(kind, tuple):
            return tuple(n for k in kind for n in self._names(k))
        if isinstance(kind, str):
            return _GROUPS[kind]
        return (d.as_dtype(kind).name,)


def __array_namespace_info__() -> Info:
    """The namespace inspection object."""
    return Info()
