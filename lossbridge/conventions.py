"""Conventions: the parameter values and formula variants that reproduce one framework.

A convention is data over the one definition in :mod:`lossbridge.spec`, never a second copy of a
formula. Each spec carries a mapping ``{framework: Convention}``; ``convention=None`` means
lossbridge's own cited defaults (the spec's parameter defaults and :data:`LOSSBRIDGE_REDUCTION`).

Framework-wide loss behaviour (default reduction, whether elementwise losses are first averaged
over the last axis, how a weighted mean is normalized) is a :class:`Reduction`; the presets below
hold what CONVENTIONS.md records for each framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "CAFFE_REDUCTION",
    "FRAMEWORKS",
    "KERAS_REDUCTION",
    "LOSSBRIDGE_REDUCTION",
    "OPTAX_REDUCTION",
    "TORCH_REDUCTION",
    "Convention",
    "Reduction",
]

#: Framework names a convention may carry (third-party plugins may add others).
FRAMEWORKS = ("torch", "keras", "optax", "caffe")


@dataclass(frozen=True)
class Reduction:
    """How per-element loss values become the number a framework reports.

    Attributes
    ----------
    default:
        The reduction used when the caller names none.
    feature_mean:
        Elementwise losses are first averaged over the last axis, giving one value per sample
        (Keras: ``mean(..., axis=-1)``); otherwise every element is its own term (PyTorch).
    normalize_by:
        ``"weights"``: a weighted mean divides by the sum of the weights (PyTorch's
        ``CrossEntropyLoss(weight=...)``, scikit-learn's ``sample_weight``); ``"count"``: it divides by
        the number of terms (Keras's ``sum_over_batch_size``).
    """

    default: Literal["mean", "sum", "none"] = "mean"
    feature_mean: bool = False
    normalize_by: Literal["weights", "count"] = "weights"


LOSSBRIDGE_REDUCTION = Reduction("mean", feature_mean=False, normalize_by="weights")
TORCH_REDUCTION = Reduction("mean", feature_mean=False, normalize_by="weights")
KERAS_REDUCTION = Reduction("mean", feature_mean=True, normalize_by="count")
OPTAX_REDUCTION = Reduction("none", feature_mean=False, normalize_by="weights")
CAFFE_REDUCTION = Reduction("mean", feature_mean=False, normalize_by="count")

_PRESETS = {
    "torch": TORCH_REDUCTION,
    "keras": KERAS_REDUCTION,
    "optax": OPTAX_REDUCTION,
    "caffe": CAFFE_REDUCTION,
}


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Convention:
    """One framework's behaviour for one spec.

    Attributes
    ----------
    framework:
        ``"torch"``, ``"keras"``, ``"optax"``, ``"caffe"`` or a plugin's own name.
    native:
        The framework object this reproduces, e.g. ``"torch.optim.Adam"``.
    params:
        Parameter values under this convention; they replace the spec's defaults, and a caller's
        own keyword arguments replace them in turn.
    notes:
        How this framework differs from lossbridge's default, in a sentence or two.
    reduction:
        For losses: the framework's :class:`Reduction`; ``None`` takes the framework preset.
    hyper_dtype:
        For optimizers: the dtype the framework keeps scalar hyperparameters in, whatever the
        parameters' dtype (Keras: ``"float32"``). Adapters round hyperparameters through it.
    rounded:
        For optimizers: the hyperparameters the framework actually keeps in ``hyper_dtype``
        (Keras: ``learning_rate`` is a float32 variable, but ``epsilon`` is added as an exact Python
        float); ``None`` rounds every non-static float hyperparameter.
    """

    framework: str
    native: str
    params: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""
    reduction: Reduction | None = None
    hyper_dtype: str | None = None
    rounded: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _frozen(self.params))
        if self.rounded is not None:
            object.__setattr__(self, "rounded", tuple(self.rounded))
        if self.reduction is None:
            preset = _PRESETS.get(self.framework, LOSSBRIDGE_REDUCTION)
            object.__setattr__(self, "reduction", preset)
