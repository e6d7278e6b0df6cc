"""Cross-entropy losses: binary, categorical (probability targets) and sparse (integer targets).

All three read predictions as probabilities or, with ``from_logits=True``, as logits, and differ
between frameworks only in data: where probabilities are clipped (Keras: ``[1e-7, 1 - 1e-7]``),
where ``log`` is floored (PyTorch ``BCELoss``: ``-100``), whether rows are renormalized, and the
label smoothing form. Those are the parameters below; the formula is written once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lossbridge.conventions import Convention, Reduction
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import (
    DEFAULT_LOG_FLOOR,
    floored_log,
    floored_log_grad,
    log_sigmoid,
    log_softmax,
    one_hot,
    sigmoid,
    smooth_binary,
    smooth_categorical,
    softmax,
)
from lossbridge.spec._params import Param

__all__ = [
    "BINARY_CROSSENTROPY",
    "CATEGORICAL_CROSSENTROPY",
    "SPARSE_CATEGORICAL_CROSSENTROPY",
    "SPECS",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
]

FROM_LOGITS = Param(
    "from_logits", False, "read y_pred as logits (log-odds / scores) instead of probabilities",
    kind="bool", static=True,
)
CLIP_EPS = Param(
    "clip_eps", 0.0, "probabilities are clipped to [clip_eps, 1 - clip_eps] before the log (Keras: "
    "1e-7); 0 clips nothing; ignored with from_logits", low=0.0, high=0.5, high_inclusive=False,
)
LOG_MIN = Param(
    "log_min", None, "floor of every log-probability, log p -> max(log p, log_min); None: -100 on "
    "probabilities (PyTorch BCELoss), no floor on logits", high=0.0, nullable=True, static=True,
)
NORMALIZE = Param(
    "normalize", "none", "divide probability rows by their sum: 'before_clip' (Keras categorical), "
    "'after_clip' (Keras sparse) or 'none'; ignored with from_logits",
    kind="choice", choices=("none", "before_clip", "after_clip"), static=True,
)
BINARY_SMOOTHING = Param(
    "label_smoothing", 0.0, "move targets towards 1/2: y(1 - s) + s/2 (Keras)", low=0.0, high=1.0
)
CATEGORICAL_SMOOTHING = Param(
    "label_smoothing", 0.0, "mix targets with the uniform distribution: (1 - s)y + s/C", low=0.0, high=1.0
)
_PRECISION = (FROM_LOGITS, CLIP_EPS, LOG_MIN)

_USAGE_PROBS = (
    " On probabilities, log 0 is floored at log_min (-100 by default, as PyTorch), so exact 0 and "
    "1 give finite values; Keras clips p instead (convention='keras'). Prefer from_logits=True "
    "with raw model outputs: it is exact for any logit and needs no clipping."
)


def _pred_domain(params: Mapping[str, Any]) -> str:
    return "logit" if params.get("from_logits", False) else "probability"


def _row_domain(params: Mapping[str, Any]) -> str:
    return "logit" if params.get("from_logits", False) else "simplex"


# -- binary -----------------------------------------------------------------------------------------
def _binary_logs(
    x: Any, *, xp: Any, from_logits: bool, clip_eps: Any, log_min: float | None
) -> tuple[Any, Any]:
    """``(log p, log(1 - p))`` from probabilities or logits, clipped and floored as configured."""
    if from_logits:
        log_p, log_q = log_sigmoid(x, xp=xp), log_sigmoid(-x, xp=xp)
        if log_min is None:
            return log_p, log_q
        return xp.clip(log_p, min=log_min), xp.clip(log_q, min=log_min)
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    c = xp.clip(x, min=clip_eps, max=1.0 - clip_eps)
    return floored_log(c, floor, xp=xp), floored_log(1.0 - c, floor, xp=xp)


def _binary_logs_grad(
    x: Any, *, xp: Any, from_logits: bool, clip_eps: Any, log_min: float | None
) -> tuple[Any, Any]:
    """The derivatives of :func:`_binary_logs` with respect to ``x``."""
    zero = xp.zeros_like(x)
    if from_logits:
        d_p, d_q = sigmoid(-x, xp=xp), -sigmoid(x, xp=xp)
        if log_min is None:
            return d_p, d_q
        log_p, log_q = log_sigmoid(x, xp=xp), log_sigmoid(-x, xp=xp)
        return xp.where(log_p > log_min, d_p, zero), xp.where(log_q > log_min, d_q, zero)
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    c = xp.clip(x, min=clip_eps, max=1.0 - clip_eps)
    inside = (x >= clip_eps) & (x <= 1.0 - clip_eps)
    d_p = floored_log_grad(c, floor, xp=xp)
    d_q = -floored_log_grad(1.0 - c, floor, xp=xp)
    return xp.where(inside, d_p, zero), xp.where(inside, d_q, zero)


def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    /,
    *,
    xp: Any,
    from_logits: bool = False,
    label_smoothing: Any = 0.0,
    clip_eps: Any = 0.0,
    log_min: float | None = None,
) -> Any:
    r"""Binary cross-entropy (log loss) per element.

    .. math::
        \ell(y, p) = -\big[\tilde y \log p + (1 - \tilde y) \log(1 - p)\big], \quad
        \tilde y = y (1 - s) + s/2

    With ``from_logits`` :math:`\log p = \log\sigma(x) = -\operatorname{softplus}(-x)` and
    :math:`\log(1-p) = \log\sigma(-x)`, exact for any finite logit.

    >>> import numpy as np
    >>> out = binary_crossentropy(np.array([1.0, 0.0]), np.array([0.8, 0.1]), xp=np)
    >>> np.round(out, 6).tolist()
    [0.223144, 0.105361]
    """
    kw = {"from_logits": from_logits, "clip_eps": clip_eps, "log_min": log_min}
    log_p, log_q = _binary_logs(y_pred, xp=xp, **kw)
    y = smooth_binary(y_true, label_smoothing)
    return -(y * log_p + (1.0 - y) * log_q)


def _bce_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, label_smoothing: Any = 0.0, **kw: Any
) -> tuple[Any]:
    d_p, d_q = _binary_logs_grad(y_pred, xp=xp, **kw)
    y = smooth_binary(y_true, label_smoothing)
    return (-(y * d_p + (1.0 - y) * d_q) * cot,)


BINARY_CROSSENTROPY = LossSpec(
    name="binary_crossentropy",
    aliases=("bce", "log_loss", "binary_cross_entropy", "sigmoid_binary_cross_entropy"),
    summary="Binary cross-entropy (log loss) of a Bernoulli prediction, from probabilities or logits.",
    fn=binary_crossentropy,
    vjp=_bce_vjp,
    inputs=(
        Input("y_true", "target", "soft_binary", doc="labels in {0, 1} or soft labels in [0, 1]"),
        Input("y_pred", "prediction", _pred_domain, differentiable=True,
              doc="probabilities of the positive class, or logits with from_logits=True"),
    ),
    params=(*_PRECISION, BINARY_SMOOTHING),
    tasks=frozenset({"binary", "multilabel"}),
    formula=r"\ell = -[\tilde y \log p + (1 - \tilde y)\log(1 - p)],\ \tilde y = y(1 - s) + s/2",
    references=(
        "Cox, D. R. (1958). The Regression Analysis of Binary Sequences. JRSS B 20(2), 215-242.",
        "Goodfellow, Bengio & Courville (2016). Deep Learning, sec. 6.2.2.2. "
        "https://www.deeplearningbook.org/contents/mlp.html",
    ),
    usage="Binary and multi-label classification (one independent sigmoid per output)." + _USAGE_PROBS,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.BCELoss",
            notes="log floored at -100 on probabilities; from_logits=True is BCEWithLogitsLoss (no "
            "floor); torch has no label smoothing for BCE; mean over every element.",
        ),
        "keras": Convention(
            "keras", "keras.losses.BinaryCrossentropy", {"clip_eps": 1e-7},
            notes="probabilities clipped to [1e-7, 1 - 1e-7]; label smoothing towards 1/2; mean over "
            "the last axis, then over the batch.",
        ),
        "optax": Convention(
            "optax", "optax.losses.sigmoid_binary_cross_entropy", {"from_logits": True},
            notes="logits only; unreduced values.",
        ),
    },
)


# -- categorical ------------------------------------------------------------------------------------
def _class_log_probs(
    x: Any, *, xp: Any, from_logits: bool, clip_eps: Any, log_min: float | None, normalize: str
) -> Any:
    """Log-probabilities over the last axis from logits or (renormalized, clipped) probabilities."""
    if from_logits:
        logp = log_softmax(x, xp=xp)
        return logp if log_min is None else xp.clip(logp, min=log_min)
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    q = x / xp.sum(x, axis=-1, keepdims=True) if normalize == "before_clip" else x
    c = xp.clip(q, min=clip_eps, max=1.0 - clip_eps)
    logp = floored_log(c, floor, xp=xp)
    if normalize == "after_clip":
        logp = logp - xp.log(xp.sum(c, axis=-1, keepdims=True))
    return logp


def _class_log_probs_vjp(
    x: Any, g: Any, *, xp: Any, from_logits: bool, clip_eps: Any, log_min: float | None, normalize: str
) -> Any:
    """Pull the cotangent ``g`` of :func:`_class_log_probs` back to ``x``."""
    zero = xp.zeros_like(x)
    if from_logits:
        if log_min is not None:
            g = xp.where(log_softmax(x, xp=xp) > log_min, g, zero)
        return g - softmax(x, xp=xp) * xp.sum(g, axis=-1, keepdims=True)
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    total = xp.sum(x, axis=-1, keepdims=True)
    q = x / total if normalize == "before_clip" else x
    c = xp.clip(q, min=clip_eps, max=1.0 - clip_eps)
    g_c = g * floored_log_grad(c, floor, xp=xp)
    if normalize == "after_clip":
        g_c = g_c - xp.sum(g, axis=-1, keepdims=True) / xp.sum(c, axis=-1, keepdims=True)
    g_q = xp.where((q >= clip_eps) & (q <= 1.0 - clip_eps), g_c, zero)
    if normalize == "before_clip":
        return (g_q - xp.sum(g_q * q, axis=-1, keepdims=True)) / total
    return g_q


def categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    /,
    *,
    xp: Any,
    from_logits: bool = False,
    label_smoothing: Any = 0.0,
    clip_eps: Any = 0.0,
    log_min: float | None = None,
    normalize: str = "none",
) -> Any:
    r"""Categorical cross-entropy per sample, over the last (class) axis.

    .. math::
        \ell(y, p) = -\sum_c \tilde y_c \log p_c, \quad \tilde y = (1 - s) y + s / C

    With ``from_logits`` :math:`\log p = x - \operatorname{logsumexp}(x)` (max subtracted).

    >>> import numpy as np
    >>> y = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> out = categorical_crossentropy(y, np.array([[0.8, 0.2], [0.5, 0.5]]), xp=np)
    >>> np.round(out, 6).tolist()
    [0.223144, 0.693147]
    """
    kw = {"from_logits": from_logits, "clip_eps": clip_eps, "log_min": log_min, "normalize": normalize}
    logp = _class_log_probs(y_pred, xp=xp, **kw)
    return -xp.sum(smooth_categorical(y_true, label_smoothing) * logp, axis=-1)


def _cce_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, label_smoothing: Any = 0.0, **kw: Any
) -> tuple[Any]:
    g = -smooth_categorical(y_true, label_smoothing) * xp.expand_dims(cot, axis=-1)
    return (_class_log_probs_vjp(y_pred, g, xp=xp, **kw),)


_KERAS_CE_NOTES = "mean over the batch (sum_over_batch_size); label smoothing (1 - s)y + s/C."

CATEGORICAL_CROSSENTROPY = LossSpec(
    name="categorical_crossentropy",
    aliases=("cce", "softmax_cross_entropy", "categorical_cross_entropy"),
    summary="Cross-entropy between target distributions and predicted class probabilities or logits.",
    fn=categorical_crossentropy,
    vjp=_cce_vjp,
    inputs=(
        Input("y_true", "target", "simplex", doc="one-hot or soft target rows over the last axis"),
        Input("y_pred", "prediction", _row_domain, differentiable=True,
              doc="class probabilities (rows summing to 1), or logits with from_logits=True"),
    ),
    params=(*_PRECISION, NORMALIZE, CATEGORICAL_SMOOTHING),
    tasks=frozenset({"multiclass", "segmentation"}),
    formula=r"\ell = -\sum_c \tilde y_c \log p_c,\ \tilde y = (1 - s) y + s/C",
    references=(
        "Bridle, J. S. (1990). Probabilistic Interpretation of Feedforward Classification Network "
        "Outputs. Neurocomputing, NATO ASI Series F68, 227-236.",
        "Szegedy, C. et al. (2016). Rethinking the Inception Architecture for Computer Vision "
        "(label smoothing). CVPR. https://arxiv.org/abs/1512.00567",
    ),
    usage=(
        "Multi-class classification with one-hot or soft targets (use sparse_categorical_crossentropy "
        "for integer labels). Consumes the last axis: one value per sample; a (C,) input is one "
        "sample." + _USAGE_PROBS
    ),
    elementwise=False,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.CrossEntropyLoss (probability targets)", {"from_logits": True},
            notes="logits with probability targets; mean over the batch.",
        ),
        "keras": Convention(
            "keras", "keras.losses.CategoricalCrossentropy", {"clip_eps": 1e-7, "normalize": "before_clip"},
            notes="probabilities renormalized per row, then clipped to [1e-7, 1 - 1e-7]; " + _KERAS_CE_NOTES,
        ),
        "optax": Convention(
            "optax", "optax.losses.softmax_cross_entropy", {"from_logits": True},
            notes="logits; unreduced values.",
        ),
    },
)


# -- sparse -----------------------------------------------------------------------------------------
def sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    /,
    *,
    xp: Any,
    from_logits: bool = False,
    label_smoothing: Any = 0.0,
    clip_eps: Any = 0.0,
    log_min: float | None = None,
    normalize: str = "none",
) -> Any:
    r"""Cross-entropy per sample with integer class labels.

    .. math::
        \ell(y, p) = -\sum_c \tilde y_c \log p_c, \quad
        \tilde y_c = (1 - s)[c = y] + s / C

    which is :math:`-\log p_y` without smoothing. Class weights and ``ignore_index`` are applied
    by the shared weighting layer, not here.

    >>> import numpy as np
    >>> out = sparse_categorical_crossentropy(np.array([0, 1]), np.array([[0.8, 0.2], [0.5, 0.5]]), xp=np)
    >>> np.round(out, 6).tolist()
    [0.223144, 0.693147]
    """
    targets = one_hot(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp)
    return categorical_crossentropy(
        targets, y_pred, xp=xp, from_logits=from_logits, label_smoothing=label_smoothing,
        clip_eps=clip_eps, log_min=log_min, normalize=normalize,
    )


def _sparse_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, **kw: Any) -> tuple[Any]:
    return _cce_vjp(one_hot(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp), y_pred, cot, xp=xp, **kw)


#: Caffe's SoftmaxWithLoss takes log(max(p, FLT_MIN)).
_CAFFE_LOG_MIN = math.log(1.1754943508222875e-38)

SPARSE_CATEGORICAL_CROSSENTROPY = LossSpec(
    name="sparse_categorical_crossentropy",
    aliases=("sparse_cce", "cross_entropy", "softmax_cross_entropy_with_integer_labels"),
    summary="Cross-entropy with integer class labels, from class probabilities or logits.",
    fn=sparse_categorical_crossentropy,
    vjp=_sparse_vjp,
    inputs=(
        Input("y_true", "target", "class_index", doc="integer labels, y_pred's shape without its class axis"),
        Input("y_pred", "prediction", _row_domain, differentiable=True,
              doc="class probabilities (rows summing to 1), or logits with from_logits=True"),
    ),
    params=(*_PRECISION, NORMALIZE, CATEGORICAL_SMOOTHING),
    tasks=frozenset({"multiclass", "segmentation", "sequence"}),
    formula=r"\ell = -\sum_c \tilde y_c \log p_c,\ \tilde y_c = (1 - s)[c = y] + s/C",
    references=CATEGORICAL_CROSSENTROPY.references,
    usage=(
        "Multi-class classification, segmentation and token prediction with integer labels. "
        "class_weight weights each sample by its label; ignore_index drops samples from both the "
        "sum and the mean's denominator (PyTorch semantics). With class_weight and label_smoothing "
        "together PyTorch also weights the smoothing term class by class; lossbridge weights the "
        "whole sample by its label's weight." + _USAGE_PROBS
    ),
    elementwise=False,
    weighting=frozenset({"class_weight", "ignore_index"}),
    conventions={
        "torch": Convention(
            "torch", "torch.nn.CrossEntropyLoss", {"from_logits": True, "ignore_index": -100},
            notes="logits; ignore_index=-100; with class weights the mean divides by the summed "
            "weights of the kept samples.",
        ),
        "keras": Convention(
            "keras", "keras.losses.SparseCategoricalCrossentropy",
            {"clip_eps": 1e-7, "normalize": "after_clip"},
            notes="probabilities clipped to [1e-7, 1 - 1e-7], then renormalized (a log-softmax of "
            "their logs); mean over the batch.",
        ),
        "optax": Convention(
            "optax", "optax.losses.softmax_cross_entropy_with_integer_labels", {"from_logits": True},
            notes="logits; unreduced values.",
        ),
        "caffe": Convention(
            "caffe", "caffe SoftmaxWithLoss", {"from_logits": True, "log_min": _CAFFE_LOG_MIN},
            reduction=Reduction("mean", feature_mean=False, normalize_by="weights"),
            notes="log(max(p, FLT_MIN)); normalization VALID: divides by the non-ignored count.",
        ),
    },
)

SPECS = (BINARY_CROSSENTROPY, CATEGORICAL_CROSSENTROPY, SPARSE_CATEGORICAL_CROSSENTROPY)
