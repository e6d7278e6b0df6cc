"""Cross-entropy variants one framework names on its own: PyTorch's MultiLabelSoftMarginLoss (the
class-averaged sigmoid cross-entropy) and Caffe's InfogainLoss (cross-entropy against a row of a
gain matrix H chosen by the label)."""

from __future__ import annotations

import math
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._classification import (
    CAFFE_LOG_THRESHOLD,
    _binary_logs,
    _binary_logs_grad,
    _param_array,
    probability_kinks,
)
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import floored_log, floored_log_grad, one_hot
from lossbridge.spec._params import Param

__all__ = ["INFOGAIN", "MULTILABEL_SOFT_MARGIN", "SPECS", "infogain_loss", "multilabel_soft_margin"]

_LOGITS: dict[str, Any] = {"from_logits": True, "clip_eps": 0.0, "log_min": None}


# -- multi-label soft margin ------------------------------------------------------------------------
def multilabel_soft_margin(y_true: Any, y_pred: Any, /, *, xp: Any, weight: Any = None) -> Any:
    r"""Class-averaged sigmoid cross-entropy per sample (PyTorch ``MultiLabelSoftMarginLoss``).

    .. math:: \ell = -\frac{1}{C} \sum_c w_c \big[y_c \log\sigma(x_c) + (1 - y_c)\log\sigma(-x_c)\big]

    >>> import numpy as np
    >>> out = multilabel_soft_margin(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]), xp=np)
    >>> np.round(out, 6).tolist()
    [0.693147]
    """
    log_p, log_q = _binary_logs(y_pred, xp=xp, **_LOGITS)
    terms = -(y_true * log_p + (1.0 - y_true) * log_q)
    w = _param_array(xp, weight, y_pred)
    return xp.mean(terms if w is None else w * terms, axis=-1)


def _multilabel_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, weight: Any = None) -> tuple[Any]:
    d_p, d_q = _binary_logs_grad(y_pred, xp=xp, **_LOGITS)
    grad = -(y_true * d_p + (1.0 - y_true) * d_q) * xp.expand_dims(cot / y_pred.shape[-1], axis=-1)
    w = _param_array(xp, weight, y_pred)
    return (grad if w is None else w * grad,)


MULTILABEL_SOFT_MARGIN = LossSpec(
    name="multilabel_soft_margin",
    aliases=("multilabel_soft_margin_loss", "multi_label_soft_margin"),
    summary="Sigmoid cross-entropy averaged over the classes of each sample, with per-class weights.",
    fn=multilabel_soft_margin,
    vjp=_multilabel_vjp,
    inputs=(
        Input("y_true", "target", "binary", doc="multi-hot labels in {0, 1}, the shape of y_pred"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="logits, one per class"),
    ),
    params=(Param("weight", None, "one weight per class (PyTorch's weight); None weights every class 1",
                  kind="array", nullable=True, static=True),),
    tasks=frozenset({"multilabel"}),
    formula=r"\ell = -\tfrac{1}{C}\sum_c w_c[y_c\log\sigma(x_c) + (1 - y_c)\log\sigma(-x_c)]",
    references=(
        "PyTorch documentation, torch.nn.MultiLabelSoftMarginLoss. "
        "https://pytorch.org/docs/stable/generated/torch.nn.MultiLabelSoftMarginLoss.html",
        "Cox, D. R. (1958). The Regression Analysis of Binary Sequences. JRSS B 20(2), 215-242.",
    ),
    usage="Multi-label classification from logits with one value per sample: binary_crossentropy "
    "from logits averaged over the last axis (so 'sum' adds per-sample means, unlike "
    "BCEWithLogitsLoss). Smooth everywhere.",
    elementwise=False,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.MultiLabelSoftMarginLoss",
            notes="logits; weight per class; mean over the batch of the per-sample class means.",
            names={"MultiLabelSoftMarginLoss": {}},
        ),
    },
)


# -- infogain ---------------------------------------------------------------------------------------
def _gain_rows(y_true: Any, y_pred: Any, xp: Any, infogain: Any) -> Any:
    hot = one_hot(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp)
    h = _param_array(xp, infogain, y_pred)
    return hot if h is None else xp.matmul(hot, h)


def infogain_loss(
    y_true: Any, y_pred: Any, /, *, xp: Any, infogain: Any = None, threshold: float = CAFFE_LOG_THRESHOLD
) -> Any:
    r"""Infogain loss per sample: cross-entropy against the row :math:`H_{y}` of a gain matrix.

    .. math:: \ell = -\sum_j H_{y j} \log \max(p_j, t)

    With :math:`H = I` it is the multinomial logistic loss :math:`-\log \max(p_y, t)`.

    >>> import numpy as np
    >>> h = np.array([[1.0, 0.5], [0.0, 1.0]])
    >>> out = infogain_loss(np.array([0]), np.array([[0.5, 0.5]]), xp=np, infogain=h)
    >>> np.round(out, 6).tolist()
    [1.039721]
    """
    rows = _gain_rows(y_true, y_pred, xp, infogain)
    return -xp.sum(rows * floored_log(y_pred, math.log(threshold), xp=xp), axis=-1)


def _infogain_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, infogain: Any = None, threshold: float = CAFFE_LOG_THRESHOLD
) -> tuple[Any]:
    rows = _gain_rows(y_true, y_pred, xp, infogain)
    d_log = floored_log_grad(y_pred, math.log(threshold), xp=xp)
    return (-rows * d_log * xp.expand_dims(cot, axis=-1),)


INFOGAIN = LossSpec(
    name="infogain_loss",
    aliases=("infogain",),
    summary="Cross-entropy of class probabilities against the gain-matrix row H[y] of the label.",
    fn=infogain_loss,
    vjp=_infogain_vjp,
    kinks=probability_kinks,
    inputs=(
        Input("y_true", "target", "class_index", doc="integer labels, y_pred's shape without its class axis"),
        Input("y_pred", "prediction", "simplex", differentiable=True, doc="class probabilities over the last axis"),
    ),
    params=(
        Param("infogain", None, "the C x C gain matrix H (row y weighs the log-probabilities for label "
              "y); None is the identity", kind="array", nullable=True, static=True),
        Param("threshold", CAFFE_LOG_THRESHOLD, "probabilities below it are raised to it before the log "
              "(Caffe's kLOG_THRESHOLD)", low=0.0, high=1.0, low_inclusive=False, static=True),
    ),
    tasks=frozenset({"multiclass"}),
    formula=r"\ell = -\sum_j H_{yj}\log\max(p_j, t)",
    references=(
        "Jia, Y. et al. (2014). Caffe: Convolutional Architecture for Fast Feature Embedding. ACM MM. "
        "https://arxiv.org/abs/1408.5093 (InfogainLossLayer)",
    ),
    usage="Cost-sensitive multi-class training: H encodes how much each predicted class is worth "
    "under each true class. Takes probabilities (a Softmax layer first). Below the threshold the "
    "gradient is 0 here; Caffe's backward uses -H/t there instead.",
    elementwise=False,
    conventions={
        "caffe": Convention(
            "caffe", "caffe InfogainLoss",
            notes="probabilities clamped at kLOG_THRESHOLD = 1e-20; the sum divided by the batch size "
            "(reduction='mean'); H given as the infogain parameter (Caffe reads it from a file or a "
            "third bottom).",
            names={"InfogainLoss": {}},
        ),
    },
)

SPECS = (MULTILABEL_SOFT_MARGIN, INFOGAIN)
