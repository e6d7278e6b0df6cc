"""Margin losses: the SVM hinge, its square, the Crammer–Singer multiclass hinge, Caffe's one-vs-all hinge.

"Hinge" names several different losses across frameworks. These are the SVM ones: ``hinge`` and
``squared_hinge`` on one score per output with labels in {-1, 1} (or {0, 1}, mapped 0 -> -1),
``multiclass_hinge`` (Crammer–Singer) on one score per class, and ``one_vs_all_hinge`` (Caffe's
``HingeLoss``: one binary hinge per class, summed over the classes). A ``margin`` of 0 turns
``hinge`` and ``multiclass_hinge`` into the perceptron losses. PyTorch's ``HingeEmbeddingLoss``,
``MultiMarginLoss`` (Weston–Watkins) and ``MultiLabelMarginLoss`` are different functions; they live
in :mod:`lossbridge.spec._margin_multi`.

The gradient of ``max(0, z)`` at ``z = 0`` is a choice, and frameworks choose differently:
``margin_gradient`` is the share of the gradient taken there (0 in lossbridge and PyTorch's
``z > 0`` kernels, 1/2 for ``jnp.maximum``, 1 for ``tf.maximum``, which gives a tie to its first
argument, and for ``torch.clamp_min``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossbridge.conventions import Convention
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import hinge_part, one_hot
from lossbridge.spec._params import Param

__all__ = [
    "HINGE",
    "MARGIN_GRADIENT",
    "MULTICLASS_HINGE",
    "ONE_VS_ALL_HINGE",
    "SPECS",
    "SQUARED_HINGE",
    "hinge",
    "hinge_slope",
    "multiclass_hinge",
    "one_vs_all_hinge",
    "squared_hinge",
]

MARGIN = Param("margin", 1.0, "the score margin demanded; 0 gives the perceptron loss", low=0.0)
MARGIN_GRADIENT = Param(
    "margin_gradient", 0.0, "share of the gradient taken where the hinge's argument is exactly 0: 0 (lossbridge, "
    "PyTorch's z > 0 kernels), 0.5 (an equal split among the tied arguments of the max, as jnp.maximum and "
    "jnp.max do) or 1 (tf.maximum, torch.clamp_min)", kind="choice", choices=(0.0, 0.5, 1.0), static=True,
)
_KINK_DOC = (
    " At a margin of exactly 0 the gradient is a declared choice, margin_gradient (the share of the "
    "one-sided gradient taken there): 0 by default; the keras convention sets 1 (tf.maximum gives a tie to "
    "its first argument), the optax convention 0.5 (jnp.maximum splits it)."
)


def hinge_slope(z: Any, share: float, *, xp: Any) -> Any:
    """d max(0, z) / dz: 1 where ``z > 0``, ``share`` where ``z == 0``, 0 below."""
    above = xp.astype(z > 0, z.dtype)
    return above if share == 0 else above + share * xp.astype(z == 0, z.dtype)


def _rows(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1


# -- binary ------------------------------------------------------------------------------------------
_BINARY_INPUTS = (
    Input("y_true", "target", "binary_or_sign", doc="labels in {-1, 1}, or {0, 1} (0 counts as -1)"),
    Input("y_pred", "prediction", "logit", differentiable=True, doc="real-valued decision scores"),
)
_TORCH_NOTE = " PyTorch has no SVM hinge: HingeEmbeddingLoss is a distance-based loss (hinge_embedding)."
_LABEL_NOTE = (
    " Labels 0 map to -1 element by element; Keras maps {0, 1} only when every label is 0 or 1, "
    "so mixed {-1, 0, 1} labels (invalid for both) give different numbers."
)


def _signed(y_true: Any, *, xp: Any) -> Any:
    """Labels in {-1, 1}: 0 becomes -1, without branching on values."""
    return xp.where(y_true == 0, xp.full_like(y_true, -1), y_true)


def _hinge_margin(y_true: Any, y_pred: Any, margin: Any, *, xp: Any) -> tuple[Any, Any]:
    y = _signed(y_true, xp=xp)
    return y, margin - y * y_pred


def hinge(y_true: Any, y_pred: Any, /, *, xp: Any, margin: Any = 1.0, margin_gradient: float = 0.0) -> Any:
    r"""SVM hinge loss per element (the perceptron loss with ``margin=0``).

    .. math:: \ell(y, f) = \max(0, m - y f), \quad y \in \{-1, 1\}

    >>> import numpy as np
    >>> hinge(np.array([1.0, 0.0, -1.0]), np.array([0.3, 2.0, -3.0]), xp=np).tolist()
    [0.7, 3.0, 0.0]
    """
    return _positive_part(_hinge_margin(y_true, y_pred, margin, xp=xp)[1], xp=xp)


def _positive_part(z: Any, *, xp: Any) -> Any:
    """``max(z, 0)`` (NaN stays NaN) as a select against a scalar 0: no zeros array is made (TensorFlow's
    graph mode runs each op as a pass over memory), and XLA's CPU backend fuses it with the loss's
    reduction, where ``maximum`` with a broadcast 0 had it materialize the zeros."""
    return xp.where(z < 0, 0.0, z)


def _hinge_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, margin: Any = 1.0, margin_gradient: float = 0.0
) -> tuple[Any]:
    y, z = _hinge_margin(y_true, y_pred, margin, xp=xp)
    return (-y * hinge_slope(z, margin_gradient, xp=xp) * cot,)


def _hinge_kinks(rng: np.random.Generator, inputs: dict[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    """Half of the scores (at least the first) put exactly on y f = margin."""
    y = np.where(inputs["y_true"] == 0, -1.0, inputs["y_true"])
    f = np.array(inputs["y_pred"], dtype=np.float64, copy=True)
    pick = rng.random(f.shape) < 0.5
    pick.flat[0] = True
    f[pick] = (float(params["margin"]) * y)[pick]
    return {**inputs, "y_pred": f}


_SVM_REFS = (
    "Cortes, C. & Vapnik, V. (1995). Support-Vector Networks. Machine Learning 20, 273-297. "
    "https://doi.org/10.1007/BF00994018",
)
_PERCEPTRON_REF = (
    "Rosenblatt, F. (1958). The perceptron: a probabilistic model for information storage and "
    "organization in the brain. Psychological Review 65(6), 386-408. https://doi.org/10.1037/h0042519"
)

HINGE = LossSpec(
    name="hinge",
    aliases=("hinge_loss", "svm_hinge"),
    summary="SVM hinge loss max(0, m - y f) on decision scores with labels in {-1, 1} or {0, 1}.",
    fn=hinge,
    vjp=_hinge_vjp,
    kinks=_hinge_kinks,
    inputs=_BINARY_INPUTS,
    params=(MARGIN, MARGIN_GRADIENT),
    tasks=frozenset({"binary", "multilabel"}),
    formula=r"\ell(y, f) = \max(0, m - y f)",
    references=(*_SVM_REFS, _PERCEPTRON_REF),
    usage=(
        "Maximum-margin binary classification on raw scores (not probabilities); margin=0 is the "
        "perceptron loss (Optax's perceptron_loss), which stops pushing once the sign is right. "
        "squared_hinge is smooth." + _KINK_DOC + _TORCH_NOTE + _LABEL_NOTE
    ),
    conventions={
        "keras": Convention(
            "keras", "keras.losses.Hinge", {"margin_gradient": 1.0},
            notes="mean over the last axis, then over the batch; tf.maximum gives the gradient -y at the margin.",
            names={"Hinge": {}, "hinge": {}},
        ),
        "optax": Convention(
            "optax", "optax.losses.hinge_loss", {"margin_gradient": 0.5},
            notes="labels must be in {-1, 1} (optax does not map 0); unreduced values; jnp.maximum gives "
            "-y/2 at the margin. perceptron_loss is margin=0.",
            names={"hinge_loss": {}, "perceptron_loss": {"margin": 0.0}},
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
    part = hinge_part(_hinge_margin(y_true, y_pred, 1.0, xp=xp)[1], xp=xp)
    return part * part


def _squared_hinge_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any) -> tuple[Any]:
    y, margin = _hinge_margin(y_true, y_pred, 1.0, xp=xp)
    return (-2.0 * y * hinge_part(margin, xp=xp) * cot,)


SQUARED_HINGE = LossSpec(
    name="squared_hinge",
    aliases=("l2_svm",),
    summary="Squared SVM hinge loss max(0, 1 - y f)^2 (L2-SVM), smooth at the margin.",
    fn=squared_hinge,
    vjp=_squared_hinge_vjp,
    kinks=lambda rng, inputs, params: _hinge_kinks(rng, inputs, {"margin": 1.0}),
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
        "more sensitive to outliers. Its gradient at the margin is 0 in every framework (2 max(0, z) "
        "vanishes there whatever share a max gives), so it needs no margin_gradient." + _TORCH_NOTE + _LABEL_NOTE
    ),
    conventions={
        "keras": Convention(
            "keras", "keras.losses.SquaredHinge", notes="mean over the last axis, then over the batch.",
            names={"SquaredHinge": {}, "squared_hinge": {}},
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
    y_true: Any,
    y_pred: Any,
    /,
    *,
    xp: Any,
    target_format: str = "class_index",
    rival: str = "max_other",
    margin: Any = 1.0,
    margin_gradient: float = 0.0,
) -> Any:
    r"""Crammer–Singer multiclass hinge per sample, over the last (class) axis.

    .. math:: \ell(y, f) = \max\big(0,\ m + \max_{j \ne y} f_j - f_y\big)

    >>> import numpy as np
    >>> multiclass_hinge(np.array([0, 2]), np.array([[2.0, 0.5, 0.0], [0.2, 0.9, 0.4]]), xp=np).tolist()
    [0.0, 1.5]
    """
    _, candidates, true_score = _mc_parts(y_true, y_pred, xp=xp, target_format=target_format, rival=rival)
    return _positive_part(margin + xp.max(candidates, axis=-1) - true_score, xp=xp)


def _multiclass_hinge_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, margin: Any = 1.0, margin_gradient: float = 0.0, **kw: Any
) -> tuple[Any]:
    hot, candidates, true_score = _mc_parts(y_true, y_pred, xp=xp, **kw)
    top = xp.max(candidates, axis=-1)
    z = margin + top - true_score
    winners = xp.astype(candidates == xp.expand_dims(top, axis=-1), y_pred.dtype)  # tied rivals share equally
    count = xp.sum(winners, axis=-1)
    slope = hinge_slope(z, 0.0 if margin_gradient == 0.5 else margin_gradient, xp=xp)
    if margin_gradient == 0.5:  # the true score is one more tied argument of the max: m / (m + 1)
        slope = slope + xp.astype(z == 0, z.dtype) * count / (count + 1.0)
    d_top = winners / xp.expand_dims(count, axis=-1)
    if kw["rival"] == "masked_zero":
        d_top = d_top * (1.0 - hot)
    return ((d_top - hot) * xp.expand_dims(slope * cot, axis=-1),)


def _mc_kinks(rng: np.random.Generator, inputs: dict[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    """Rows on the margin, rows with tied rivals, both at once, and (masked_zero) a rival tied with the 0."""
    f = np.array(inputs["y_pred"], dtype=np.float64, copy=True)
    n_classes = f.shape[-1]
    y = inputs["y_true"]
    labels = np.argmax(y, axis=-1) if params.get("target_format") == "one_hot" else y
    rows, labels = f.reshape(-1, n_classes), np.asarray(labels).reshape(-1)
    m = float(params["margin"])
    for k in range(min(len(rows), 4)):
        t = int(labels[k])
        r1, r2 = (t + 1) % n_classes, (t + 2) % n_classes
        rows[k] = -3.0 - 0.5 * np.arange(n_classes)  # every other rival strictly below
        if k == 3:  # one rival at 0: ties with Keras's masked true slot
            rows[k, r1], rows[k, t] = 0.0, 0.5
            continue
        rows[k, r1] = 0.5
        if k >= 1 and n_classes > 2:
            rows[k, r2] = 0.5
        rows[k, t] = 0.25 if k == 1 else 0.5 + m
    return {**inputs, "y_pred": rows.reshape(f.shape)}


MULTICLASS_HINGE = LossSpec(
    name="multiclass_hinge",
    aliases=("crammer_singer", "multiclass_hinge_loss"),
    summary="Crammer–Singer multiclass hinge: the true score must beat every other score by a margin.",
    fn=multiclass_hinge,
    vjp=_multiclass_hinge_vjp,
    kinks=_mc_kinks,
    inputs=(
        Input("y_true", "target", _mc_target_domain, doc="integer labels, or one-hot rows with "
              "target_format='one_hot'"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="one real score per class"),
    ),
    params=(TARGET_FORMAT, RIVAL, MARGIN, MARGIN_GRADIENT),
    tasks=frozenset({"multiclass"}),
    formula=r"\ell(y, f) = \max(0,\ m + \max_{j \ne y} f_j - f_y)",
    references=(
        "Crammer, K. & Singer, Y. (2001). On the Algorithmic Implementation of Multiclass "
        "Kernel-based Vector Machines. JMLR 2, 265-292. https://www.jmlr.org/papers/v2/crammer01a.html",
        "Collins, M. (2002). Discriminative Training Methods for Hidden Markov Models: Theory and "
        "Experiments with Perceptron Algorithms. EMNLP. https://aclanthology.org/W02-1001/",
    ),
    usage=(
        "Multiclass max-margin classification on raw scores; scikit-learn's hinge_loss with more "
        "than two classes; margin=0 is the multiclass perceptron loss. Keras CategoricalHinge "
        "(convention='keras') takes one-hot targets and lets the true class's slot count as a score "
        "of 0 in the max, so it differs from Crammer–Singer when every other score is negative. "
        "Tied rival scores share the gradient equally. At a margin of exactly 0 the share is "
        "margin_gradient: 0 by default, 1 under keras (tf.maximum); 0.5 (optax) means the equal split "
        "of jnp.max over f + m (1 - onehot), in which the true score is one more tied argument, so "
        "with m tied rivals the hinge takes m/(m+1) of the gradient. PyTorch's MultiMarginLoss is the "
        "Weston–Watkins loss (multi_margin), a different function."
    ),
    elementwise=False,
    conventions={
        "keras": Convention(
            "keras", "keras.losses.CategoricalHinge",
            {"target_format": "one_hot", "rival": "masked_zero", "margin_gradient": 1.0},
            notes="one-hot targets; max over (1 - y) * f; mean over the batch; tf.maximum at the margin.",
            names={"CategoricalHinge": {}, "categorical_hinge": {}},
        ),
        "optax": Convention(
            "optax", "optax.losses.multiclass_hinge_loss", {"margin_gradient": 0.5},
            notes="unreduced values; jnp.max splits a tie with the true score equally. "
            "multiclass_perceptron_loss is margin=0.",
            names={"multiclass_hinge_loss": {}, "multiclass_perceptron_loss": {"margin": 0.0}},
        ),
    },
)

# -- one-vs-all (Caffe) -----------------------------------------------------------------------------
NORM = Param(
    "norm", "L1", "'L1': sum of the per-class hinges; 'L2': sum of their squares (L2-SVM)",
    kind="choice", choices=("L1", "L2"), static=True,
)


def _ova_margin(y_true: Any, y_pred: Any, *, xp: Any) -> tuple[Any, Any]:
    signs = 2.0 * one_hot(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp) - 1.0
    return signs, 1.0 - signs * y_pred


def one_vs_all_hinge(y_true: Any, y_pred: Any, /, *, xp: Any, norm: str = "L1") -> Any:
    r"""One-vs-all hinge per sample: a binary hinge for every class, summed over the class axis.

    .. math::
        \ell(y, f) = \sum_j \max(0, 1 - s_j f_j)^q, \quad s_j = 1 \text{ if } j = y \text{ else } -1,
        \quad q = 1 \text{ (L1) or } 2 \text{ (L2)}

    >>> import numpy as np
    >>> one_vs_all_hinge(np.array([1]), np.array([[0.5, 0.25, -2.0]]), xp=np).tolist()
    [2.25]
    """
    part = hinge_part(_ova_margin(y_true, y_pred, xp=xp)[1], xp=xp)
    return xp.sum(part if norm == "L1" else part * part, axis=-1)


def _ova_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, norm: str = "L1") -> tuple[Any]:
    signs, z = _ova_margin(y_true, y_pred, xp=xp)
    slope = hinge_slope(z, 0.0, xp=xp) if norm == "L1" else 2.0 * hinge_part(z, xp=xp)
    return (-signs * slope * xp.expand_dims(cot, axis=-1),)


def _ova_kinks(rng: np.random.Generator, inputs: dict[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    """Half of the scores (at least the first) put exactly on s_j f_j = 1."""
    f = np.array(inputs["y_pred"], dtype=np.float64, copy=True)
    signs = 2.0 * (np.arange(f.shape[-1]) == np.asarray(inputs["y_true"])[..., None]) - 1.0
    pick = rng.random(f.shape) < 0.5
    pick.flat[0] = True
    f[pick] = signs[pick]
    return {**inputs, "y_pred": f}


ONE_VS_ALL_HINGE = LossSpec(
    name="one_vs_all_hinge",
    aliases=("ova_hinge", "one_vs_rest_hinge"),
    summary="One-vs-all multiclass hinge: a binary hinge per class (+1 for the label, -1 elsewhere), summed.",
    fn=one_vs_all_hinge,
    vjp=_ova_vjp,
    kinks=_ova_kinks,
    inputs=(
        Input("y_true", "target", "class_index", doc="integer class labels"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="one real score per class"),
    ),
    params=(NORM,),
    tasks=frozenset({"multiclass"}),
    formula=r"\ell(y, f) = \sum_j \max(0, 1 - s_j f_j)^q,\ s_j = 2[j = y] - 1",
    references=(
        *_SVM_REFS,
        "Rifkin, R. & Klautau, A. (2004). In Defense of One-Vs-All Classification. JMLR 5, 101-141. "
        "https://www.jmlr.org/papers/v5/rifkin04a.html",
        "Jia, Y. et al. (2014). Caffe: Convolutional Architecture for Fast Feature Embedding. "
        "https://arxiv.org/abs/1408.5093 (HingeLossLayer)",
    ),
    usage=(
        "Multiclass classification as C independent binary SVMs sharing features: every class score is "
        "pushed above 1 for its label and below -1 otherwise. It is hinge (or squared_hinge for norm='L2') "
        "on one-vs-all {-1, 1} targets summed over the class axis, so the loss grows with C. The "
        "gradient at a margin of exactly 0 is 0 (Caffe's sign(0) = 0). Caffe's HingeLoss (convention="
        "'caffe') divides by the batch size N. Not Crammer–Singer (multiclass_hinge)."
    ),
    elementwise=False,
    conventions={
        "caffe": Convention(
            "caffe", "caffe HingeLossLayer",
            notes="norm L1 (default) or L2; the sum over every class of every sample divided by N.",
            names={"HingeLoss": {}},
        ),
    },
)

SPECS = (HINGE, SQUARED_HINGE, MULTICLASS_HINGE, ONE_VS_ALL_HINGE)
