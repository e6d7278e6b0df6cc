"""Margin losses: the SVM hinge, its square, and the Crammer–Singer multiclass hinge.

"Hinge" names three different losses across frameworks. These are the SVM ones: ``hinge`` and
``squared_hinge`` on one score per output with labels in {-1, 1} (or {0, 1}, mapped 0 -> -1), and
``multiclass_hinge`` (Crammer–Singer) on one score per class. PyTorch's ``HingeEmbeddingLoss``
takes distances, not scores, and ``MultiMarginLoss`` is the Weston–Watkins sum over classes: both
are different losses, not conventions of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import hinge_part, one_hot
from lossbridge.spec._params import Param

__all__ = [
    "HINGE",
    "MULTICLASS_HINGE",
    "SPECS",
    "SQUARED_HINGE",
    "hinge",
    "multiclass_hinge",
    "squared_hinge",
]

_BINARY_INPUTS = (
    Input("y_true", "target", "binary_or_sign", doc="labels in {-1, 1}, or {0, 1} (0 counts as -1)"),
    Input("y_pred", "prediction", "logit", differentiable=True, doc="real-valued decision scores"),
)
_TORCH_NOTE = (
    " PyTorch has no SVM hinge: HingeEmbeddingLoss is a distance-based loss, a different function."
)
_LABEL_NOTE = (
    " Labels 0 map to -1 element by element; Keras maps {0, 1} only when every label is 0 or 1, "
    "so mixed {-1, 0, 1} labels (invalid for both) give different numbers."
)


def _signed(y_true: Any, *, xp: Any) -> Any:
    """Labels in {-1, 1}: 0 becomes -1, without branching on values."""
    return xp.where(y_true == 0, -xp.ones_like(y_true), y_true)


def _hinge_margin(y_true: Any, y_pred: Any, *, xp: Any) -> tuple[Any, Any]:
    y = _signed(y_true, xp=xp)
    return y, 1.0 - y * y_pred


def hinge(y_true: Any, y_pred: Any, /, *, xp: Any) -> Any:
    r"""SVM hinge loss per element.

    .. math:: \ell(y, f) = \max(0, 1 - y f), \quad y \in \{-1, 1\}

    >>> import numpy as np
    >>> hinge(np.array([1.0, 0.0, -1.0]), np.array([0.3, 2.0, -3.0]), xp=np).tolist()
    [0.7, 3.0, 0.0]
    """
    return hinge_part(_hinge_margin(y_true, y_pred, xp=xp)[1], xp=xp)


def _hinge_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any) -> tuple[Any]:
    y, margin = _hinge_margin(y_true, y_pred, xp=xp)
    return (xp.where(margin > 0, -y, xp.zeros_like(y)) * cot,)


_SVM_REFS = (
    "Cortes, C. & Vapnik, V. (1995). Support-Vector Networks. Machine Learning 20, 273-297. "
    "https://doi.org/10.1007/BF00994018",
)

HINGE = LossSpec(
    name="hinge",
    aliases=("hinge_loss", "svm_hinge"),
    summary="SVM hinge loss max(0, 1 - y f) on decision scores with labels in {-1, 1} or {0, 1}.",
    fn=hinge,
    vjp=_hinge_vjp,
    inputs=_BINARY_INPUTS,
    tasks=frozenset({"binary", "multilabel"}),
    formula=r"\ell(y, f) = \max(0, 1 - y f)",
    references=_SVM_REFS,
    usage=(
        "Maximum-margin binary classification on raw scores (not probabilities). Not differentiable "
        "at y f = 1 (the gradient there is taken as 0); squared_hinge is smooth." + _TORCH_NOTE + _LABEL_NOTE
    ),
    conventions={
        "keras": Convention(
            "keras", "keras.losses.Hinge", notes="mean over the last axis, then over the batch."
        ),
        "optax": Convention(
            "optax", "optax.losses.hinge_loss",
            notes="labels must be in {-1, 1} (optax does not map 0); unreduced values.",
        ),
    },
)


def squared_hinge(y_true: Any, y_pred: Any, /, *, xp: Any) -> Any:
    r"""Squared SVM hinge loss per element.

    .. math:: \ell(y, f) = \max(0, 1 - y f)^2

    >>> import numpy as np
    >>> squared_hinge(np.array([1.0, 0.0]), np.array([0.5, 2.0]), xp=np).tolist()
    [0.25, 9.0]
    """
    part = hinge_part(_hinge_margin(y_true, y_pred, xp=xp)[1], xp=xp)
    return part * part


def _squared_hinge_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any) -> tuple[Any]:
    y, margin = _hinge_margin(y_true, y_pred, xp=xp)
    return (-2.0 * y * hinge_part(margin, xp=xp) * cot,)


SQUARED_HINGE = LossSpec(
    name="squared_hinge",
    aliases=("l2_svm",),
    summary="Squared SVM hinge loss max(0, 1 - y f)^2 (L2-SVM), smooth at the margin.",
    fn=squared_hinge,
    vjp=_squared_hinge_vjp,
    inputs=_BINARY_INPUTS,
    tasks=frozenset({"binary", "multilabel"}),
    formula=r"\ell(y, f) = \max(0, 1 - y f)^2",
    references=(
        *_SVM_REFS,
        "Lee, C.-P. & Lin, C.-J. (2013). A Study on L2-Loss (Squared Hinge-Loss) Multiclass SVM. "
        "Neural Computation 25(5), 1302-1323. https://doi.org/10.1162/NECO_a_00434",
    ),
    usage=(
        "Like hinge with a continuous gradient; punishes large violations quadratically, so it is "
        "more sensitive to outliers." + _TORCH_NOTE + _LABEL_NOTE
    ),
    conventions={
        "keras": Convention(
            "keras", "keras.losses.SquaredHinge", notes="mean over the last axis, then over the batch."
        ),
    },
)

# -- multiclass -------------------------------------------------------------------------------------
TARGET_FORMAT = Param(
    "target_format", "class_index", "y_true as integer labels ('class_index') or one-hot rows ('one_hot')",
    kind="choice", choices=("class_index", "one_hot"), static=True,
)
RIVAL = Param(
    "rival", "max_other", "the competing score: 'max_other' = max over the other classes "
    "(Crammer-Singer); 'masked_zero' = max_j (1 - y_j) f_j, the true class counting as 0 (Keras "
    "CategoricalHinge)", kind="choice", choices=("max_other", "masked_zero"), static=True,
)


def _mc_target_domain(params: Mapping[str, Any]) -> str:
    return str(params.get("target_format", "class_index"))


def _mc_parts(y_true: Any, y_pred: Any, *, xp: Any, target_format: str, rival: str) -> tuple[Any, Any, Any]:
    """``(one-hot targets, per-class rival candidates, true-class score)``."""
    hot = one_hot(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp) if target_format == "class_index" else y_true
    if rival == "masked_zero":
        candidates = (1.0 - hot) * y_pred
    else:
        lowest = xp.full_like(y_pred, -float("inf"))
        candidates = xp.where(hot > 0, lowest, y_pred)
    return hot, candidates, xp.sum(hot * y_pred, axis=-1)


def multiclass_hinge(
    y_true: Any, y_pred: Any, /, *, xp: Any, target_format: str = "class_index", rival: str = "max_other"
) -> Any:
    r"""Crammer–Singer multiclass hinge per sample, over the last (class) axis.

    .. math:: \ell(y, f) = \max\big(0,\ 1 + \max_{j \ne y} f_j - f_y\big)

    >>> import numpy as np
    >>> multiclass_hinge(np.array([0, 2]), np.array([[2.0, 0.5, 0.0], [0.2, 0.9, 0.4]]), xp=np).tolist()
    [0.0, 1.5]
    """
    _, candidates, true_score = _mc_parts(y_true, y_pred, xp=xp, target_format=target_format, rival=rival)
    return hinge_part(1.0 + xp.max(candidates, axis=-1) - true_score, xp=xp)


def _multiclass_hinge_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, **kw: Any) -> tuple[Any]:
    hot, candidates, true_score = _mc_parts(y_true, y_pred, xp=xp, **kw)
    top = xp.max(candidates, axis=-1)
    active = xp.astype((1.0 + top - true_score) > 0, y_pred.dtype) * cot
    top = xp.expand_dims(top, axis=-1)
    winners = xp.astype(candidates == top, y_pred.dtype)  # ties share the gradient equally
    d_top = winners / xp.sum(winners, axis=-1, keepdims=True)
    if kw["rival"] == "masked_zero":
        d_top = d_top * (1.0 - hot)
    return ((d_top - hot) * xp.expand_dims(active, axis=-1),)


MULTICLASS_HINGE = LossSpec(
    name="multiclass_hinge",
    aliases=("crammer_singer", "multiclass_hinge_loss", "categorical_hinge"),
    summary="Crammer–Singer multiclass hinge: the true score must beat every other score by 1.",
    fn=multiclass_hinge,
    vjp=_multiclass_hinge_vjp,
    inputs=(
        Input("y_true", "target", _mc_target_domain, doc="integer labels, or one-hot rows with "
              "target_format='one_hot'"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="one real score per class"),
    ),
    params=(TARGET_FORMAT, RIVAL),
    tasks=frozenset({"multiclass"}),
    formula=r"\ell(y, f) = \max(0,\ 1 + \max_{j \ne y} f_j - f_y)",
    references=(
        "Crammer, K. & Singer, Y. (2001). On the Algorithmic Implementation of Multiclass "
        "Kernel-based Vector Machines. JMLR 2, 265-292. https://www.jmlr.org/papers/v2/crammer01a.html",
    ),
    usage=(
        "Multiclass max-margin classification on raw scores; scikit-learn's hinge_loss with more "
        "than two classes. Keras CategoricalHinge (convention='keras') takes one-hot targets and "
        "lets the true class's slot count as a score of 0 in the max, so it differs from "
        "Crammer–Singer when every other score is negative. PyTorch's MultiMarginLoss is the "
        "Weston–Watkins loss (a sum over classes divided by C), a different function."
    ),
    elementwise=False,
    conventions={
        "keras": Convention(
            "keras", "keras.losses.CategoricalHinge", {"target_format": "one_hot", "rival": "masked_zero"},
            notes="one-hot targets; max over (1 - y) * f; mean over the batch.",
        ),
        "optax": Convention("optax", "optax.losses.multiclass_hinge_loss", notes="unreduced values."),
    },
)

SPECS = (HINGE, SQUARED_HINGE, MULTICLASS_HINGE)
