"""PyTorch's other margin losses: Weston–Watkins multiclass, multi-label ranking, and the embedding hinge.

``multi_margin`` (``MultiMarginLoss``) sums a hinge over every wrong class, where the Crammer–Singer
``multiclass_hinge`` takes only the largest; ``multilabel_margin`` (``MultiLabelMarginLoss``) sums
a hinge over every (listed, unlisted) pair of classes; ``hinge_embedding``
(``HingeEmbeddingLoss``) takes distances, not scores. The gradient at a hinge of exactly 0 is
``margin_gradient`` (see :mod:`lossbridge.spec._margin`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossbridge.conventions import Convention, Reduction
from lossbridge.errors import InputError
from lossbridge.spec._domain import DOMAINS, Domain, register_domain
from lossbridge.spec._margin import MARGIN_GRADIENT, hinge_slope
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import hinge_part, one_hot
from lossbridge.spec._params import Param

__all__ = [
    "HINGE_EMBEDDING",
    "MULTILABEL_MARGIN",
    "MULTI_MARGIN",
    "SPECS",
    "hinge_embedding",
    "multi_margin",
    "multilabel_margin",
]

# -- the padded label-list domain --------------------------------------------------------------------
PADDED = "padded_class_indices"


def _sample_padded(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    """Per row: distinct labels in random order, then -1, then leftovers that must be ignored."""
    n_classes = shape[-1]
    rows = np.full((int(np.prod(shape[:-1], dtype=np.int64)), n_classes), -1, dtype=np.int64)
    for row in rows:
        k = int(rng.integers(1, n_classes))  # at least one listed and one unlisted class
        row[:k] = rng.permutation(n_classes)[:k]
        row[k + 1 :] = rng.integers(-1, n_classes, size=n_classes - k - 1)
    return rows.reshape(shape)


def _check_padded(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    n_classes = pred_shape[-1]
    if not bool(xp.all((x >= -1) & (x < n_classes))):
        raise InputError(
            f"{name}: expected class indices in [0, {n_classes - 1}] padded with -1 for {n_classes} classes, "
            f"got values in [{int(xp.min(x))}, {int(xp.max(x))}]"
        )


if PADDED not in DOMAINS:
    register_domain(
        Domain(
            PADDED,
            "per sample, integer class indices padded with -1 (the list ends at the first -1); "
            "the prediction's shape",
            _sample_padded,
            _check_padded,
            integer=True,
        )
    )

MARGIN = Param("margin", 1.0, "the score (or distance) margin demanded")
AVERAGE_CLASSES = Param(
    "average_classes", False, "divide the sum over classes by the number of classes C (PyTorch)",
    kind="bool", static=True,
)
_TORCH_REFS_URL = "https://pytorch.org/docs/stable/generated/torch.nn.{}.html"


# -- Weston–Watkins ----------------------------------------------------------------------------------
POWER = Param("p", 1, "1: the hinge; 2: its square", kind="choice", choices=(1, 2), static=True)


def _ww_parts(y_true: Any, y_pred: Any, margin: Any, *, xp: Any) -> tuple[Any, Any]:
    """``(one-hot labels, z)`` with ``z_j = m - f_y + f_j``."""
    hot = one_hot(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp)
    true_score = xp.sum(hot * y_pred, axis=-1, keepdims=True)
    return hot, margin - true_score + y_pred


def multi_margin(
    y_true: Any,
    y_pred: Any,
    /,
    *,
    xp: Any,
    p: int = 1,
    margin: Any = 1.0,
    average_classes: bool = False,
    margin_gradient: float = 0.0,
) -> Any:
    r"""Weston–Watkins multiclass hinge per sample: a hinge for every wrong class, summed.

    .. math:: \ell(y, f) = \frac{1}{Z} \sum_{j \ne y} \max(0,\ m - f_y + f_j)^p, \quad
        Z = C \text{ if average\_classes else } 1

    >>> import numpy as np
    >>> multi_margin(np.array([3]), np.array([[0.1, 0.2, 0.4, 0.8]]), xp=np, average_classes=True).round(12).tolist()
    [0.325]
    """
    hot, z = _ww_parts(y_true, y_pred, margin, xp=xp)
    part = hinge_part(z, xp=xp) * (1.0 - hot)
    total = xp.sum(part if p == 1 else part * part, axis=-1)
    return total / y_pred.shape[-1] if average_classes else total


def _multi_margin_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, p: int = 1, margin: Any = 1.0,
    average_classes: bool = False, margin_gradient: float = 0.0,
) -> tuple[Any]:
    hot, z = _ww_parts(y_true, y_pred, margin, xp=xp)
    slope = hinge_slope(z, margin_gradient, xp=xp) if p == 1 else 2.0 * hinge_part(z, xp=xp)
    d_z = slope * (1.0 - hot)  # dz_j/df_j = 1 for j != y, dz_j/df_y = -1
    grad = d_z - hot * xp.sum(d_z, axis=-1, keepdims=True)
    scale = cot / y_pred.shape[-1] if average_classes else cot
    return (grad * xp.expand_dims(scale, axis=-1),)


def _ww_kinks(rng: np.random.Generator, inputs: dict[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    """In the first rows one wrong class sits exactly on the margin: f_j = f_y - m."""
    f = np.array(inputs["y_pred"], dtype=np.float64, copy=True)
    n_classes = f.shape[-1]
    rows, labels = f.reshape(-1, n_classes), np.asarray(inputs["y_true"]).reshape(-1)
    m = float(params["margin"])
    for k in range(min(len(rows), 3)):
        t = int(labels[k])
        rows[k, t], rows[k, (t + 1 + k % max(n_classes - 1, 1)) % n_classes] = 0.5, 0.5 - m
    return {**inputs, "y_pred": rows.reshape(f.shape)}


MULTI_MARGIN = LossSpec(
    name="multi_margin",
    aliases=("weston_watkins", "weston_watkins_hinge"),
    summary="Weston–Watkins multiclass hinge: a hinge against every wrong class, summed (PyTorch MultiMarginLoss).",
    fn=multi_margin,
    vjp=_multi_margin_vjp,
    kinks=_ww_kinks,
    inputs=(
        Input("y_true", "target", "class_index", doc="integer class labels"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="one real score per class"),
    ),
    params=(POWER, MARGIN, AVERAGE_CLASSES, MARGIN_GRADIENT),
    tasks=frozenset({"multiclass"}),
    weighting=frozenset({"class_weight"}),
    formula=r"\ell(y, f) = \tfrac{1}{Z} \sum_{j \ne y} \max(0,\ m - f_y + f_j)^p",
    references=(
        "Weston, J. & Watkins, C. (1999). Support Vector Machines for Multi-Class Pattern Recognition. "
        "ESANN, 219-224. https://www.esann.org/sites/default/files/proceedings/legacy/es1999-461.pdf",
        _TORCH_REFS_URL.format("MultiMarginLoss"),
    ),
    usage=(
        "Multiclass max-margin classification on raw scores; every violating class adds to the loss "
        "(Crammer–Singer multiclass_hinge counts only the worst one). p=2 squares each hinge. "
        "lossbridge sums over the classes, as Weston & Watkins; PyTorch (convention='torch') divides "
        "by C, weights a sample by class_weight[y] (its `weight`) and its mean divides by N, not by "
        "the weights' sum. The gradient at a hinge of exactly 0 is margin_gradient (0, as PyTorch's "
        "z > 0 kernel)."
    ),
    elementwise=False,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.MultiMarginLoss", {"average_classes": True},
            notes="sum over the wrong classes divided by C; weight[y] per sample; mean over N.",
            reduction=Reduction("mean", feature_mean=False, normalize_by="count"),
            names={"MultiMarginLoss": {}},
        ),
    },
)


# -- multi-label ranking -----------------------------------------------------------------------------
def _listed(y_true: Any, n_classes: int, dtype: Any, *, xp: Any) -> Any:
    """How many times each class is listed before the first -1 (shape of the prediction)."""
    padding = xp.astype(y_true < 0, dtype)
    before_end = xp.astype(xp.cumulative_sum(padding, axis=-1) == 0, dtype)
    hot = one_hot(y_true, n_classes, dtype, xp=xp)  # -1 matches no class
    return xp.sum(hot * xp.expand_dims(before_end, axis=-1), axis=-2)


def _pairs(y_true: Any, y_pred: Any, margin: Any, *, xp: Any) -> tuple[Any, Any]:
    """``(w, z)``: pair weights ``w[j, i]`` (j listed, i not) and ``z[j, i] = m - f_j + f_i``."""
    counts = _listed(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp)
    unlisted = xp.astype(counts == 0, y_pred.dtype)
    w = xp.expand_dims(counts, axis=-1) * xp.expand_dims(unlisted, axis=-2)
    z = margin - xp.expand_dims(y_pred, axis=-1) + xp.expand_dims(y_pred, axis=-2)
    return w, z


def multilabel_margin(
    y_true: Any,
    y_pred: Any,
    /,
    *,
    xp: Any,
    margin: Any = 1.0,
    average_classes: bool = False,
    margin_gradient: float = 0.0,
) -> Any:
    r"""Multi-label ranking hinge per sample: every listed class must beat every unlisted one by ``m``.

    .. math:: \ell(Y, f) = \frac{1}{Z} \sum_{j \in Y} \sum_{i \notin Y} \max(0,\ m - f_j + f_i)

    ``Y`` is the list of labels in ``y_true`` before its first -1.

    >>> import numpy as np
    >>> multilabel_margin(np.array([[3, 0, -1, 1]]), np.array([[0.1, 0.2, 0.4, 0.8]]), xp=np,
    ...                   average_classes=True).round(12).tolist()
    [0.85]
    """
    w, z = _pairs(y_true, y_pred, margin, xp=xp)
    total = xp.sum(xp.sum(w * hinge_part(z, xp=xp), axis=-1), axis=-1)
    return total / y_pred.shape[-1] if average_classes else total


def _multilabel_margin_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, margin: Any = 1.0, average_classes: bool = False,
    margin_gradient: float = 0.0,
) -> tuple[Any]:
    w, z = _pairs(y_true, y_pred, margin, xp=xp)
    g = w * hinge_slope(z, margin_gradient, xp=xp)  # d/dz[j, i]; dz/df_j = -1, dz/df_i = 1
    grad = xp.sum(g, axis=-2) - xp.sum(g, axis=-1)
    scale = cot / y_pred.shape[-1] if average_classes else cot
    return (grad * xp.expand_dims(scale, axis=-1),)


def _ml_kinks(rng: np.random.Generator, inputs: dict[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    """In the first rows, an unlisted class sits exactly on the margin below a listed one."""
    f = np.array(inputs["y_pred"], dtype=np.float64, copy=True)
    n_classes = f.shape[-1]
    rows, targets = f.reshape(-1, n_classes), np.asarray(inputs["y_true"]).reshape(-1, n_classes)
    m = float(params["margin"])
    for k in range(min(len(rows), 3)):
        listed = targets[k][: int(np.argmax(targets[k] < 0))] if (targets[k] < 0).any() else targets[k]
        unlisted = np.setdiff1d(np.arange(n_classes), listed)
        if len(listed) and len(unlisted):
            rows[k, listed[0]], rows[k, unlisted[0]] = 0.5, 0.5 - m
    return {**inputs, "y_pred": rows.reshape(f.shape)}


MULTILABEL_MARGIN = LossSpec(
    name="multilabel_margin",
    aliases=("multilabel_hinge", "multilabel_ranking_hinge"),
    summary="Multi-label ranking hinge: each listed class must outscore each unlisted class by a margin.",
    fn=multilabel_margin,
    vjp=_multilabel_margin_vjp,
    kinks=_ml_kinks,
    inputs=(
        Input("y_true", "target", PADDED, doc="per sample, the listed class indices, padded with -1"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="one real score per class"),
    ),
    params=(MARGIN, AVERAGE_CLASSES, MARGIN_GRADIENT),
    tasks=frozenset({"multilabel", "ranking"}),
    formula=r"\ell(Y, f) = \tfrac{1}{Z} \sum_{j \in Y} \sum_{i \notin Y} \max(0,\ m - f_j + f_i)",
    references=(
        "Elisseeff, A. & Weston, J. (2001). A kernel method for multi-labelled classification. "
        "Advances in Neural Information Processing Systems 14, 681-687.",
        _TORCH_REFS_URL.format("MultiLabelMarginLoss"),
    ),
    usage=(
        "Multi-label classification as ranking: every label of a sample should score above every "
        "non-label by the margin. Targets are label lists, not multi-hot rows: y_true has the "
        "prediction's shape, holds the labels first and -1 after them; everything after the first -1 "
        "is ignored, and a label listed twice counts twice (as in PyTorch). Cost grows as C^2 per "
        "sample. lossbridge sums the pairs; PyTorch (convention='torch') divides by C. The gradient at "
        "a hinge of exactly 0 is margin_gradient (0, as PyTorch's z > 0 kernel)."
    ),
    elementwise=False,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.MultiLabelMarginLoss", {"average_classes": True},
            notes="the pair sum divided by C; margin fixed at 1; mean over N.",
            names={"MultiLabelMarginLoss": {}},
        ),
    },
)


# -- embedding hinge ---------------------------------------------------------------------------------
def hinge_embedding(
    y_true: Any, y_pred: Any, /, *, xp: Any, margin: Any = 1.0, margin_gradient: float = 0.0
) -> Any:
    r"""Hinge embedding loss per element, on distances.

    .. math:: \ell(y, d) = \begin{cases} d & y = 1 \\ \max(0, m - d) & y = -1 \end{cases}

    >>> import numpy as np
    >>> hinge_embedding(np.array([1.0, -1.0, -1.0]), np.array([0.3, 0.25, 2.0]), xp=np).tolist()
    [0.3, 0.75, 0.0]
    """
    return xp.where(y_true == 1, y_pred, hinge_part(margin - y_pred, xp=xp))


def _hinge_embedding_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, margin: Any = 1.0, margin_gradient: float = 0.0
) -> tuple[Any]:
    push = -hinge_slope(margin - y_pred, margin_gradient, xp=xp)
    return (xp.where(y_true == 1, xp.ones_like(y_pred), push) * cot,)


def _he_kinks(rng: np.random.Generator, inputs: dict[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    """Half of the dissimilar pairs (and the first element, made one) exactly at distance m."""
    y = np.array(inputs["y_true"], dtype=np.float64, copy=True)
    d = np.array(inputs["y_pred"], dtype=np.float64, copy=True)
    y.flat[0] = -1.0
    pick = (rng.random(d.shape) < 0.5) & (y == -1)
    pick.flat[0] = True
    d[pick] = float(params["margin"])
    return {**inputs, "y_true": y, "y_pred": d}


HINGE_EMBEDDING = LossSpec(
    name="hinge_embedding",
    aliases=("embedding_hinge",),
    summary="Hinge embedding loss: the distance for similar pairs, max(0, m - d) for dissimilar ones.",
    fn=hinge_embedding,
    vjp=_hinge_embedding_vjp,
    kinks=_he_kinks,
    inputs=(
        Input("y_true", "target", "sign", doc="1 for a similar pair, -1 for a dissimilar one"),
        Input("y_pred", "prediction", "real", differentiable=True, doc="distances (e.g. an L1 pairwise distance)"),
    ),
    params=(MARGIN, MARGIN_GRADIENT),
    tasks=frozenset({"metric_learning", "binary"}),
    formula=r"\ell(y, d) = d \text{ if } y = 1 \text{ else } \max(0, m - d)",
    references=(
        "Hadsell, R., Chopra, S. & LeCun, Y. (2006). Dimensionality Reduction by Learning an Invariant "
        "Mapping. CVPR. https://doi.org/10.1109/CVPR.2006.100",
        _TORCH_REFS_URL.format("HingeEmbeddingLoss"),
    ),
    usage=(
        "Learning embeddings or similarity from pairs whose distance is already computed: similar pairs "
        "are pulled together linearly, dissimilar ones pushed beyond the margin. The input is a "
        "distance, not a classifier score, so this is not the SVM hinge. Labels must be exactly 1 or -1. "
        "The gradient at d = m for a dissimilar pair is margin_gradient: 0 by default; PyTorch "
        "(convention='torch') clamps with clamp_min, whose gradient there is the whole -1."
    ),
    conventions={
        "torch": Convention(
            "torch", "torch.nn.HingeEmbeddingLoss", {"margin_gradient": 1.0},
            notes="mean over every element; clamp_min passes the gradient -1 at d = margin.",
            names={"HingeEmbeddingLoss": {}},
        ),
    },
)

SPECS = (MULTI_MARGIN, MULTILABEL_MARGIN, HINGE_EMBEDDING)
