"""Hyperparameter declarations: default, validation and a one-line doc, written once per parameter."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lossbridge.errors import ParameterError

__all__ = [
    "CLASS_WEIGHT_PARAM",
    "DTYPE_PARAM",
    "IGNORE_INDEX_PARAM",
    "REDUCTION_PARAM",
    "Param",
    "validate_params",
]

Kind = Literal["float", "int", "bool", "choice", "array"]


@dataclass(frozen=True)
class Param:
    """One hyperparameter of a spec.

    ``static`` parameters select a formula variant or the state slots (``nesterov``,
    ``from_logits``); a spec may branch on them in Python. All others are numbers that may be
    traced arrays at run time (a scheduled learning rate), so a spec must never branch on them.
    """

    name: str
    default: Any
    doc: str
    kind: Kind = "float"
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    static: bool = False

    def describe(self) -> str:
        """The valid values in words, e.g. ``float in [0, 1)`` or ``one of 'mean', 'sum'``."""
        if self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind in ("float", "int"):
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            left = "[" if self.low is not None and self.low_inclusive else "("
            right = "]" if self.high is not None and self.high_inclusive else ")"
            text = f"{self.kind} in {left}{lo}, {hi}{right}"
        elif self.kind == "array":
            text = "a 1-D array of non-negative floats"
        else:
            text = "bool"
        return text + (" or None" if self.nullable else "")

    def validate(self, value: Any, *, owner: str) -> Any:
        """Return ``value`` checked (and normalized) or raise :class:`ParameterError`."""
        if value is None:
            if self.nullable:
                return None
            raise self._error(value, owner)
        check = getattr(self, f"_check_{self.kind}")
        return check(value, owner)

    def _error(self, value: Any, owner: str) -> ParameterError:
        return ParameterError(f"{owner}: parameter {self.name!r} expects {self.describe()}, got {value!r}")

    def _check_bool(self, value: Any, owner: str) -> bool:
        if isinstance(value, bool):
            return value
        raise self._error(value, owner)

    def _check_choice(self, value: Any, owner: str) -> Any:
        if isinstance(value, str) and value in self.choices:
            return value
        name = getattr(value, "name", None)  # a dtype object (np.float32, torch.float32, tf.float32)
        if isinstance(name, str) and name in self.choices:
            return name
        if not isinstance(value, str) and value in self.choices:
            return value
        raise self._error(value, owner)

    def _check_int(self, value: Any, owner: str) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self._error(value, owner)
        self._check_range(float(value), value, owner)
        return int(value)

    def _check_float(self, value: Any, owner: str) -> Any:
        if isinstance(value, bool):
            raise self._error(value, owner)
        if not isinstance(value, numbers.Real):
            # traced or array-valued hyperparameters (schedules, tensors) pass unchecked
            if hasattr(value, "shape") or callable(value):
                return value
            raise self._error(value, owner)
        if math.isnan(float(value)):
            raise self._error(value, owner)
        self._check_range(float(value), value, owner)
        return float(value)

    def _check_array(self, value: Any, owner: str) -> Any:
        if hasattr(value, "shape") or isinstance(value, (list, tuple)):
            return value
        raise self._error(value, owner)

    def _check_range(self, number: float, value: Any, owner: str) -> None:
        if self.low is not None and (number < self.low or (number == self.low and not self.low_inclusive)):
            raise self._error(value, owner)
        if self.high is not None and (number > self.high or (number == self.high and not self.high_inclusive)):
            raise self._error(value, owner)


def validate_params(params: tuple[Param, ...], given: Mapping[str, Any], *, owner: str) -> dict[str, Any]:
    """Defaults overlaid with ``given``, every value validated; unknown names are an error."""
    by_name = {p.name: p for p in params}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        valid = ", ".join(f"{p.name} ({p.describe()})" for p in params) or "none"
        raise ParameterError(f"{owner}: unknown parameter(s) {', '.join(map(repr, unknown))}; valid: {valid}")
    return {name: p.validate(given.get(name, p.default), owner=owner) for name, p in by_name.items()}


#: Parameters every loss has, handled by the shared reduction layer rather than the spec function.
REDUCTION_PARAM = Param(
    "reduction",
    None,
    "how values are combined: 'mean', 'sum', 'none', 'batchmean' (the sum over the batch size, "
    "torch KLDivLoss), or Keras's 'sum_over_batch_size' / 'mean_with_sample_weight'; None takes the "
    "convention's default (under convention='keras', an explicit None means no reduction, as in Keras)",
    kind="choice",
    choices=("mean", "sum", "none", "batchmean", "sum_over_batch_size", "mean_with_sample_weight"),
    nullable=True,
    static=True,
)
DTYPE_PARAM = Param(
    "dtype",
    None,
    "the dtype the loss is computed and returned in (Keras's loss dtype); None: the convention's "
    "(float32 under Keras), else the prediction's (float16/bfloat16 computed in float32)",
    kind="choice",
    choices=("float16", "bfloat16", "float32", "float64"),
    nullable=True,
    static=True,
)
CLASS_WEIGHT_PARAM = Param(
    "class_weight",
    None,
    "one weight per class, applied to each sample by its label (torch's ``weight``)",
    kind="array",
    nullable=True,
    static=True,
)
IGNORE_INDEX_PARAM = Param(
    "ignore_index",
    None,
    "a label whose samples count for nothing, in the sum or in the mean's denominator",
    kind="int",
    nullable=True,
    static=True,
)
