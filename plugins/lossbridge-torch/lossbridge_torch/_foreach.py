"""A list-of-tensors Array API namespace: one spec ``update`` call runs over a whole param group.

The optimizer hands the spec's ``update`` :class:`TensorList` values (the group's params, grads and
state slots, one tensor per parameter) and this namespace instead of single tensors. Each operation
then runs over the whole list at once, mostly as one ``torch._foreach_*`` call: one Python call per
operation of the formula instead of one per operation and parameter. No formula is re-written: every
element of a result is what the same operation gives on that element alone (a ``_foreach_*`` kernel
computes exactly the per-tensor op), so the group path equals the per-tensor path.

Semantics: a :class:`TensorList` stands for "the same expression, once per parameter".

* Scalars (Python numbers) and plain tensors (0-d: the step count, values computed from it, a
  tensor hyperparameter) broadcast to every element; a list of 0-d tensors (a per-tensor reduction
  such as ``xp.sum(x)``, or a 0-d state slot) pairs element by element and broadcasts within.
* Operations without a foreach kernel (comparisons, ``where`` with a per-tensor condition,
  reductions, ``astype``...) loop over the elements inside that one operation only.
* ``shape`` and ``ndim`` exist only when every element agrees; otherwise :class:`NonUniform` is
  raised and the optimizer runs the group split by shape (a spec branching on shapes, such as
  factored Adafactor, sees one shape at a time).

Temporaries: an operation whose operand is a list this module just made and that nothing else
references (Python's reference count says so) writes into it in place (``_foreach_add_``...) instead
of allocating, as NumPy elides temporaries. The values are the same; only allocation is saved. Lists
wrapping the caller's tensors (params, grads, state) are never written.

Speed on a CPU (``benchmarks/bench_torch.py``): a ``_foreach_*`` kernel there is a C++ loop of the
per-tensor op, so a list update saves the Python work per operation and tensor, and wins for small
tensors (2-4x the per-tensor loop at 1000 tensors of 100 elements); for large tensors the per-tensor
loop is faster (its temporaries stay in cache from one operation to the next, while a list operation
streams the whole list), which is why the optimizer lists only small tensors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ._namespace import namespace

__all__ = ["NonUniform", "TensorList", "foreach_namespace"]

_Scalar = (int, float, bool)
#: ``sys.getrefcount`` of an operand nothing but the interpreter's evaluation holds, inside an
#: operator method (``__add__``: the caller's value stack, the parameter, getrefcount's argument) and
#: inside a namespace function (``xp.sqrt``: CPython moves the argument into the callee's frame).
#: Both are measured at import below; on another interpreter buffers are never reused.
_TEMP_REFS = 3
_CALL_TEMP_REFS = 2


class NonUniform(TypeError):
    """A spec asked for a property (``shape``, ``ndim``) that differs between the group's tensors."""


class TensorList:
    """One value per parameter of a group: the array type of :func:`foreach_namespace`.

    ``owned`` marks a list this module made (the result of an operation), which may be written in
    place once nothing else references it; a list whose tensors other lists view is not owned.
    """

    __slots__ = ("_shapes", "owned", "ts")

    def __init__(self, ts: list[Tensor], owned: bool = False, shapes: tuple[Any, ...] | None = None) -> None:
        self.ts = ts
        self.owned = owned
        self._shapes = shapes

    def __len__(self) -> int:
        return len(self.ts)

    def __repr__(self) -> str:
        return f"TensorList({len(self.ts)} tensors, dtype={self.dtype})"

    def __array_namespace__(self, *, api_version: str | None = None) -> Any:
        return foreach_namespace()

    def __bool__(self) -> bool:
        raise TypeError("a TensorList has one value per parameter: it has no single truth value")

    # -- properties every element shares ------------------------------------------------------------
    @property
    def shapes(self) -> tuple[Any, ...]:
        """The shape of every element (computed once)."""
        if self._shapes is None:
            self._shapes = tuple(t.shape for t in self.ts)
        return self._shapes

    @property
    def dtype(self) -> torch.dtype:
        return self.ts[0].dtype

    @property
    def device(self) -> torch.device:
        return self.ts[0].device

    @property
    def shape(self) -> tuple[int, ...]:
        first, *rest = self.shapes
        if any(s != first for s in rest):
            raise NonUniform("shape differs between the tensors of the group")
        return tuple(first)

    @property
    def ndim(self) -> int:
        first = self.ts[0].ndim
        if any(t.ndim != first for t in self.ts):
            raise NonUniform("ndim differs between the tensors of the group")
        return first

    @property
    def size(self) -> int:
        return _prod(self.shape)

    @property
    def T(self) -> TensorList:
        return _views(lambda t: t.T, self)

    @property
    def mT(self) -> TensorList:
        return _views(lambda t: t.mT, self)

    def __getitem__(self, key: Any) -> TensorList:
        return _views(lambda t: t[key], self)

    # -- arithmetic ---------------------------------------------------------------------------------
    def __add__(self, other: Any) -> Any:
        return _binary("add", self, other, sys.getrefcount(self) <= _TEMP_REFS)

    def __radd__(self, other: Any) -> Any:
        return _binary("add", self, other, sys.getrefcount(self) <= _TEMP_REFS)

    def __sub__(self, other: Any) -> Any:
        return _binary("sub", self, other, sys.getrefcount(self) <= _TEMP_REFS)

    def __rsub__(self, other: Any) -> Any:
        # other - x == (-x) + other exactly (IEEE subtraction is addition of the negation)
        neg = _unary("neg", self, sys.getrefcount(self) <= _TEMP_REFS)
        return _binary("add", neg, other, True)

    def __mul__(self, other: Any) -> Any:
        return _binary("mul", self, other, sys.getrefcount(self) <= _TEMP_REFS)

    def __rmul__(self, other: Any) -> Any:
        return _binary("mul", self, other, sys.getrefcount(self) <= _TEMP_REFS)

    def __truediv__(self, other: Any) -> Any:
        return _binary("div", self, other, sys.getrefcount(self) <= _TEMP_REFS)

    def __rtruediv__(self, other: Any) -> Any:
        return _zip(lambda a, b: b / a, self, other)

    def __pow__(self, other: Any) -> Any:
        return _binary("pow", self, other, sys.getrefcount(self) <= _TEMP_REFS)

    def __rpow__(self, other: Any) -> Any:
        if isinstance(other, _Scalar):
            return TensorList(torch._foreach_pow(other, self.ts), owned=True)
        return _zip(lambda a, b: b**a, self, other)

    def __neg__(self) -> TensorList:
        return _unary("neg", self, sys.getrefcount(self) <= _TEMP_REFS)

    def __pos__(self) -> TensorList:
        return self

    def __abs__(self) -> TensorList:
        return _unary("abs", self, sys.getrefcount(self) <= _TEMP_REFS)

    # -- comparisons and logic: element by element ---------------------------------------------------
    def __gt__(self, other: Any) -> TensorList:
        return _zip(lambda a, b: a > b, self, other)

    def __ge__(self, other: Any) -> TensorList:
        return _zip(lambda a, b: a >= b, self, other)

    def __lt__(self, other: Any) -> TensorList:
        return _zip(lambda a, b: a < b, self, other)

    def __le__(self, other: Any) -> TensorList:
        return _zip(lambda a, b: a <= b, self, other)

    def __eq__(self, other: Any) -> TensorList:  # type: ignore[override]
        return _zip(lambda a, b: a == b, self, other)

    def __ne__(self, other: Any) -> TensorList:  # type: ignore[override]
        return _zip(lambda a, b: a != b, self, other)

    def __and__(self, other: Any) -> TensorList:
        return _zip(lambda a, b: a & b, self, other)

    def __rand__(self, other: Any) -> TensorList:
        return _zip(lambda a, b: b & a, self, other)

    def __or__(self, other: Any) -> TensorList:
        return _zip(lambda a, b: a | b, self, other)

    def __ror__(self, other: Any) -> TensorList:
        return _zip(lambda a, b: b | a, self, other)

    def __invert__(self) -> TensorList:
        return _zip(lambda a, _: ~a, self, None)

    __hash__ = None  # type: ignore[assignment]


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


def _views(fn: Callable[[Tensor], Tensor], x: TensorList) -> TensorList:
    """Views of ``x``'s tensors; neither they nor ``x`` may be written in place any more."""
    x.owned = False
    return TensorList([fn(t) for t in x.ts])


def _element(value: Any, k: int) -> Any:
    return value.ts[k] if isinstance(value, TensorList) else value


def _zip(fn: Callable[[Any, Any], Any], a: Any, b: Any) -> TensorList:
    """``fn`` element by element (no foreach kernel); non-list operands broadcast."""
    n = len(a) if isinstance(a, TensorList) else len(b)
    return TensorList([fn(_element(a, k), _element(b, k)) for k in range(n)], owned=True)


def _operand(other: Any) -> Any:
    """What a ``_foreach_*`` binary kernel takes for ``other``, or None when none applies."""
    if isinstance(other, TensorList):
        return other.ts
    if isinstance(other, _Scalar):
        return other
    if isinstance(other, Tensor) and other.ndim == 0:
        return other
    return None


def _keeps(x: TensorList, other: Any) -> bool:
    """Whether ``x op other`` has ``x``'s dtype and shapes for every element (so it may be written into ``x``)."""
    if isinstance(other, (int, float)) and not isinstance(other, bool):
        return x.dtype.is_floating_point or isinstance(other, int)
    if isinstance(other, Tensor):
        return other.dtype == x.dtype and other.ndim == 0
    if isinstance(other, TensorList):
        if other.dtype != x.dtype or len(other) != len(x):
            return False
        return other.shapes == x.shapes or all(t.ndim == 0 for t in other.ts)
    return False


def _binary(op: str, x: TensorList, other: Any, temp: bool) -> Any:
    """``x op other`` (``other op x`` for the commutative ``add``/``mul`` too) over the list."""
    arg = _operand(other)
    if arg is None or (op == "pow" and isinstance(other, Tensor)):
        return _zip(getattr(torch, op), x, other)
    keeps = _keeps(x, other)
    if keeps and temp and x.owned:
        getattr(torch, f"_foreach_{op}_")(x.ts, arg)
        return x
    if (
        op in ("add", "mul")
        and isinstance(other, TensorList)
        and other.owned
        and sys.getrefcount(other) <= _TEMP_REFS + 1
        and _keeps(other, x)
    ):
        getattr(torch, f"_foreach_{op}_")(other.ts, x.ts)
        return other
    return TensorList(getattr(torch, f"_foreach_{op}")(x.ts, arg), owned=True, shapes=x.shapes if keeps else None)


def _unary(op: str, x: TensorList, temp: bool) -> TensorList:
    if not (temp and x.owned):
        return TensorList(getattr(torch, f"_foreach_{op}")(x.ts), owned=True, shapes=x.shapes)
    getattr(torch, f"_foreach_{op}_")(x.ts)
    return x


def _check_temp_refs() -> tuple[int, ...]:
    """Reference counts of a temporary and of a named operand, in an operator and in a call."""
    seen: list[int] = []

    class Probe:
        def __add__(self, other: Any) -> Any:
            seen.append(sys.getrefcount(self))
            return self

        def call(self, x: Any) -> None:
            seen.append(sys.getrefcount(x))

    Probe() + 1
    named = Probe()
    named + 1
    Probe().call(Probe())
    Probe().call(named)
    return tuple(seen)


if _check_temp_refs() != (_TEMP_REFS, _TEMP_REFS + 1, _CALL_TEMP_REFS, _CALL_TEMP_REFS + 1):
    _TEMP_REFS = _CALL_TEMP_REFS = -1  # another interpreter: never write in place


# -- the namespace ----------------------------------------------------------------------------------
_UNARY = ("sqrt", "abs", "exp", "log", "log1p", "expm1", "sign", "neg", "reciprocal", "sigmoid", "tanh",
          "floor", "ceil", "trunc", "round", "sin", "cos", "negative")
_BINARY = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "pow": "pow"}


class _Namespace:
    """Array API functions over :class:`TensorList`; anything else goes to the torch namespace."""

    def __init__(self) -> None:
        self._base = namespace()
        self._wrapped: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._base, name)
        if not callable(value) or isinstance(value, type) or isinstance(value, torch.dtype):
            return value
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._wrapped[name] = _per_element(value)
        return wrapped

    # elementwise with a foreach kernel
    def sqrt(self, x: Any, /) -> Any:
        if isinstance(x, TensorList):
            return _unary("sqrt", x, sys.getrefcount(x) <= _CALL_TEMP_REFS)
        return self._base.sqrt(x)

    def abs(self, x: Any, /) -> Any:
        if isinstance(x, TensorList):
            return _unary("abs", x, sys.getrefcount(x) <= _CALL_TEMP_REFS)
        return self._base.abs(x)

    def exp(self, x: Any, /) -> Any:
        if isinstance(x, TensorList):
            return _unary("exp", x, sys.getrefcount(x) <= _CALL_TEMP_REFS)
        return self._base.exp(x)

    def log(self, x: Any, /) -> Any:
        if isinstance(x, TensorList):
            return _unary("log", x, sys.getrefcount(x) <= _CALL_TEMP_REFS)
        return self._base.log(x)

    def sign(self, x: Any, /) -> Any:
        if isinstance(x, TensorList) and x.dtype.is_floating_point:
            return _unary("sign", x, sys.getrefcount(x) <= _CALL_TEMP_REFS)
        return self.__getattr__("sign")(x)

    def maximum(self, x1: Any, x2: Any, /) -> Any:
        return self._extreme("maximum", x1, x2)

    def minimum(self, x1: Any, x2: Any, /) -> Any:
        return self._extreme("minimum", x1, x2)

    def _extreme(self, op: str, x1: Any, x2: Any) -> Any:
        if isinstance(x1, TensorList) and isinstance(x2, TensorList) and _keeps(x1, x2):
            return TensorList(getattr(torch, f"_foreach_{op}")(x1.ts, x2.ts), owned=True, shapes=x1.shapes)
        return self.__getattr__(op)(x1, x2)

    def clip(self, x: Any, /, min: Any = None, max: Any = None) -> Any:
        scalar = all(b is None or isinstance(b, (int, float)) for b in (min, max))
        if not isinstance(x, TensorList) or not scalar or not x.dtype.is_floating_point:
            return self.__getattr__("clip")(x, min=min, max=max)
        out = _fresh_copy(x)
        if min is not None:
            torch._foreach_clamp_min_(out.ts, min)
        if max is not None:
            torch._foreach_clamp_max_(out.ts, max)
        return out

    def where(self, condition: Any, x1: Any, x2: Any, /) -> Any:
        # a single condition (a 0-d CPU tensor such as ``step == 1``) picks one whole list; the
        # result is a fresh copy when the chosen list holds the caller's tensors, as torch.where's is
        if (
            isinstance(condition, Tensor)
            and condition.ndim == 0
            and condition.device.type == "cpu"
            and isinstance(x1, TensorList)
            and isinstance(x2, TensorList)
            and x1.dtype == x2.dtype
            and all(a.shape == b.shape for a, b in zip(x1.ts, x2.ts, strict=True))
        ):
            chosen = x1 if bool(condition) else x2
            return chosen if chosen.owned else _fresh_copy(chosen)
        return self.__getattr__("where")(condition, x1, x2)

    def astype(self, x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
        if isinstance(x, TensorList) and x.dtype == dtype and device is None:
            return x if not copy or x.owned else _fresh_copy(x)
        return self.__getattr__("astype")(x, dtype, copy=copy, device=device)

    def add(self, x1: Any, x2: Any, /) -> Any:
        return x1 + x2

    def subtract(self, x1: Any, x2: Any, /) -> Any:
        return x1 - x2

    def multiply(self, x1: Any, x2: Any, /) -> Any:
        return x1 * x2

    def divide(self, x1: Any, x2: Any, /) -> Any:
        return x1 / x2

    def negative(self, x: Any, /) -> Any:
        return -x

    def square(self, x: Any, /) -> Any:
        return x * x if isinstance(x, TensorList) else self._base.square(x)


def _fresh_copy(x: TensorList) -> TensorList:
    """A copy of ``x`` this module owns."""
    return TensorList([t.clone() for t in x.ts], owned=True, shapes=x.shapes)


def _lists_in(value: Any) -> list[TensorList]:
    """The :class:`TensorList` values in an argument (itself, or inside a list or tuple such as ``concat``'s)."""
    if isinstance(value, TensorList):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, TensorList)]
    return []


def _nth(value: Any, k: int) -> Any:
    """Element ``k`` of an argument: of a list, or of each list inside a list or tuple."""
    if isinstance(value, TensorList):
        return value.ts[k]
    if isinstance(value, (list, tuple)) and any(isinstance(v, TensorList) for v in value):
        return type(value)(_element(v, k) for v in value)
    return value


def _fresh(outs: Sequence[Any], inputs: list[TensorList]) -> bool:
    """Whether results own their memory (no view, no input passed through): only then may they be written."""
    given = {id(t) for tl in inputs for t in tl.ts}
    return all(isinstance(o, Tensor) and not o._is_view() and id(o) not in given for o in outs)


def _per_element(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` applied element by element when any argument is (or holds) a :class:`TensorList`."""

    def run(*args: Any, **kwargs: Any) -> Any:
        lists = [tl for a in (*args, *kwargs.values()) for tl in _lists_in(a)]
        if not lists:
            return fn(*args, **kwargs)
        for a in lists:  # the results may view these tensors
            a.owned = False
        n = len(lists[0])
        outs = [fn(*(_nth(a, k) for a in args), **{key: _nth(v, k) for key, v in kwargs.items()}) for k in range(n)]
        if isinstance(outs[0], tuple):
            return tuple(TensorList(list(col), owned=_fresh(col, lists)) for col in zip(*outs, strict=True))
        if not isinstance(outs[0], Tensor):
            raise NonUniform(f"{getattr(fn, '__name__', fn)} gave a {type(outs[0]).__name__} per tensor")
        return TensorList(outs, owned=_fresh(outs, lists))

    run.__name__ = getattr(fn, "__name__", "op")
    return run


_NS: _Namespace | None = None


def foreach_namespace() -> Any:
    """The list-of-tensors namespace (one instance)."""
    global _NS
    if _NS is None:
        _NS = _Namespace()
    return _NS
