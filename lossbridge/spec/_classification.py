"""Cross-entropy losses: binary, categorical (probability targets) and sparse (integer targets).

All three read predictions as probabilities or, with ``from_logits=True``, as logits (the sparse
one also as log-probabilities, PyTorch's ``NLLLoss``), and differ between frameworks only in data:
where probabilities are clipped (Keras: ``[1e-7, 1 - 1e-7]``), where ``log`` is floored (PyTorch
``BCELoss``: ``-100``; Caffe: ``FLT_MIN`` or ``1e-20``), whether rows are renormalized, the label
smoothing form and per-class weights. Those are the parameters below; the formula is written once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lossbridge.conventions import Convention, Reduction
from lossbridge.errors import InputError
from lossbridge.spec._domain import DOMAINS, Domain, register_domain
from lossbridge.spec._model import Input, LossSpec, Masking
from lossbridge.spec._ops import (
    DEFAULT_LOG_FLOOR,
    floored_log,
    floored_log_grad,
    log_softmax,
    one_hot,
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


def _sample_log_simplex(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    z = 2.0 * rng.normal(size=shape)
    if edge and shape[-1] >= 2:
        z[..., 0] = -80.0
    shifted = z - z.max(axis=-1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))).astype(dtype)


def _check_log_probs(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    if not bool(xp.all(x <= 0)):
        raise InputError(f"{name}: expected log-probabilities (values <= 0), got a maximum of {float(xp.max(x)):g}")


if "log_probability" not in DOMAINS:
    register_domain(
        Domain("log_probability", "log-probability rows over the last axis (values <= 0)",
               _sample_log_simplex, _check_log_probs)
    )

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
POS_WEIGHT = Param(
    "pos_weight", None, "weight of the positive term, broadcast over the last axis (PyTorch "
    "BCEWithLogitsLoss pos_weight); None weights it 1", kind="array", nullable=True, static=True,
)
ELEMENT_WEIGHT = Param(
    "weight", None, "rescaling of each element's loss, broadcast against y_pred (PyTorch BCELoss "
    "weight); the mean still divides by the element count", kind="array", nullable=True, static=True,
)
SIGN_LABELS = Param(
    "sign_labels", False, "labels are in {-1, 1} (PyTorch SoftMarginLoss: log(1 + exp(-y x))) and are "
    "mapped to (y + 1) / 2", kind="bool", static=True,
)
BACKWARD = Param(
    "backward", "derivative", "the gradient on probabilities: 'derivative' of the value (0 where the log "
    "is floored), or 'torch': (p - y) / max(p (1 - p), 1e-12) as torch's BCELoss backward computes, which is "
    "not the derivative of its clamped log at p = 0 or 1", kind="choice", choices=("derivative", "torch"),
    static=True,
)
#: torch's BCELoss backward epsilon, a float32 constant (aten BinaryCrossEntropy EPSILON).
_TORCH_BCE_EPS = 9.999999960041972e-13
CLASS_WEIGHTS = Param(
    "weight", None, "one weight per class multiplying that class's target (PyTorch CrossEntropyLoss "
    "weight with probability targets); the mean still divides by the sample count",
    kind="array", nullable=True, static=True,
)
FROM_LOG_PROBS = Param(
    "from_log_probs", False, "read y_pred as log-probabilities (PyTorch NLLLoss); overrides from_logits",
    kind="bool", static=True,
)
WEIGHT_SMOOTHING = Param(
    "weight_smoothing", False, "with class_weight and label_smoothing, weight the smoothing term class by "
    "class as PyTorch does (needs the core to pass class_weight to the spec)", kind="bool", static=True,
)
_PRECISION = (FROM_LOGITS, CLIP_EPS, LOG_MIN)

_USAGE_PROBS = (
    " On probabilities, log 0 is floored at log_min (-100 by default, as PyTorch), so exact 0 and "
    "1 give finite values; Keras clips p instead (convention='keras'). Prefer from_logits=True "
    "with raw model outputs: it is exact for any logit and needs no clipping. At a clip edge "
    "(p == clip_eps) the gradient is the inside one-sided derivative; outside the clip and below "
    "a log floor it is 0 (what torch.clamp and tf.clip_by_value give)."
)


def _pred_domain(params: Mapping[str, Any]) -> str:
    return "logit" if params.get("from_logits", False) else "probability"


def _row_domain(params: Mapping[str, Any]) -> str:
    if params.get("from_log_probs", False):
        return "log_probability"
    return "logit" if params.get("from_logits", False) else "simplex"


def _label_domain(params: Mapping[str, Any]) -> str:
    return "sign" if params.get("sign_labels", False) else "soft_binary"


def _param_array(xp: Any, value: Any, like: Any) -> Any:
    """An array parameter (a list, a NumPy or a framework array) in ``like``'s namespace and dtype."""
    if value is None:
        return None
    if not hasattr(value, "__array_namespace__") and hasattr(value, "shape"):
        value = np.asarray(value)
    return xp.asarray(value, dtype=like.dtype)


# -- kinks (NumPy, for the conformance kit) -------------------------------------------------------
def probability_kinks(rng: np.random.Generator, inputs: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Move prediction entries onto clip edges (``clip_eps``, ``1 - clip_eps``) or exact 0 and 1."""
    out = dict(inputs)
    if params.get("from_logits", False) or params.get("from_log_probs", False):
        return out
    p = np.array(out["y_pred"], dtype=np.float64)
    eps = float(params.get("clip_eps", 0.0) or 0.0)
    flat = p.reshape(-1)
    if flat.size >= 2:
        flat[0], flat[-1] = eps, 1.0 - eps
    out["y_pred"] = flat.reshape(p.shape)
    return out


# -- binary -----------------------------------------------------------------------------------------
def _binary_logs(
    x: Any, *, xp: Any, from_logits: bool, clip_eps: Any, log_min: float | None
) -> tuple[Any, Any]:
    """``(log p, log(1 - p))`` from probabilities or logits, clipped and floored as configured."""
    if from_logits:
        log_p, log_q = _log_sigmoid_pair(x, xp=xp)
        if log_min is None:
            return log_p, log_q
        return xp.clip(log_p, min=log_min), xp.clip(log_q, min=log_min)
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    c = xp.clip(x, min=clip_eps, max=1.0 - clip_eps)
    if _clip_above_floor(clip_eps, floor):  # floored_log is log there: the same values, fewer operations
        return xp.log(c), xp.log(1.0 - c)
    return floored_log(c, floor, xp=xp), floored_log(1.0 - c, floor, xp=xp)


def _log_sigmoid_pair(x: Any, *, xp: Any) -> tuple[Any, Any]:
    r"""``(log σ(x), log σ(-x))`` sharing one softplus term :math:`s = \log(1 + e^{-|x|})`.

    ``log σ(±x) = min(±x, 0) - s``: :func:`log_sigmoid` on both signs with one ``exp`` and one
    ``log1p`` for the pair instead of two each. JAX's and the TensorFlow namespace's ``logaddexp(0, ∓x)``
    is ``max(0, ∓x) + log1p(exp(-|x|))``: the same roundings there; NumPy's and torch's own
    ``logaddexp`` kernels use other ``exp``/``log1p`` implementations (2-3 ulp apart). NaN propagates.
    """
    s = xp.log1p(xp.exp(-xp.abs(x)))
    return xp.clip(x, max=0.0) - s, xp.clip(-x, max=0.0) - s


def _clip_above_floor(clip_eps: Any, floor: float) -> bool:
    """Whether clipping to ``[clip_eps, 1 - clip_eps]`` keeps ``p`` and ``1 - p`` positive with ``log``
    above ``floor`` (a Python ``clip_eps`` of at least 1e-7, so ``1 - clip_eps < 1`` in float32; Keras's
    1e-7): then the floor never applies and ``floored_log`` is ``log``, value and derivative."""
    literal = isinstance(clip_eps, (int, float)) and not isinstance(clip_eps, bool)
    return literal and 1e-7 <= clip_eps < 0.5 and math.log(clip_eps) > floor


def _binary_logs_grad(
    x: Any, *, xp: Any, from_logits: bool, clip_eps: Any, log_min: float | None
) -> tuple[Any, Any]:
    """The derivatives of :func:`_binary_logs` with respect to ``x``."""
    zero = xp.zeros_like(x)
    if from_logits:
        log_p, log_q = _log_sigmoid_pair(x, xp=xp)
        d_p, d_q = xp.exp(log_q), -xp.exp(log_p)  # sigmoid(-x) and -sigmoid(x), as ops.sigmoid computes them
        if log_min is None:
            return d_p, d_q
        return xp.where(log_p > log_min, d_p, zero), xp.where(log_q > log_min, d_q, zero)
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    c = xp.clip(x, min=clip_eps, max=1.0 - clip_eps)
    inside = c == x  # x in [clip_eps, 1 - clip_eps] (NaN: False): one comparison, not three ops
    if _clip_above_floor(clip_eps, floor):  # floored_log_grad is 1/p there
        d_p, d_q = 1.0 / c, -(1.0 / (1.0 - c))
    else:
        d_p = floored_log_grad(c, floor, xp=xp)
        d_q = -floored_log_grad(1.0 - c, floor, xp=xp)
    return xp.where(inside, d_p, zero), xp.where(inside, d_q, zero)


def _binary_terms(y_true: Any, y_pred: Any, xp: Any, p: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """The smoothed target, the positive-term weight and the element weight of a BCE call."""
    y = (y_true + 1.0) / 2.0 if p.get("sign_labels", False) else y_true
    smoothing = p.get("label_smoothing", 0.0)
    y = y if _literal_zero(smoothing) else smooth_binary(y, smoothing)  # y (1 - 0) + 0 is y
    pos = _param_array(xp, p.get("pos_weight"), y_pred)
    weight = _param_array(xp, p.get("weight"), y_pred)
    return y, pos, weight


def _literal_zero(value: Any) -> bool:
    """A Python 0 (not an array, not a traced value): the term it scales is skipped, not computed as 0."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _weighted(pos: Any | None, y: Any) -> Any:
    """``pos * y``, or ``y`` without a positive weight (1 y is y)."""
    return y if pos is None else pos * y


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
    pos_weight: Any = None,
    weight: Any = None,
    sign_labels: bool = False,
    backward: str = "derivative",
) -> Any:
    r"""Binary cross-entropy (log loss) per element.

    .. math::
        \ell(y, p) = -w\big[\rho\,\tilde y \log p + (1 - \tilde y) \log(1 - p)\big], \quad
        \tilde y = y (1 - s) + s/2

    With ``from_logits`` :math:`\log p = \log\sigma(x) = -\operatorname{softplus}(-x)` and
    :math:`\log(1-p) = \log\sigma(-x)`, exact for any finite logit. ``pos_weight`` is
    :math:`\rho`, ``weight`` is :math:`w`; ``sign_labels`` reads :math:`y \in \{-1, 1\}`.
    ``backward`` chooses the gradient only (see :data:`BACKWARD`); the value does not depend on it.

    >>> import numpy as np
    >>> out = binary_crossentropy(np.array([1.0, 0.0]), np.array([0.8, 0.1]), xp=np)
    >>> np.round(out, 6).tolist()
    [0.223144, 0.105361]
    """
    params = {"label_smoothing": label_smoothing, "pos_weight": pos_weight, "weight": weight,
              "sign_labels": sign_labels}
    y, pos, w = _binary_terms(y_true, y_pred, xp, params)
    log_p, log_q = _binary_logs(y_pred, xp=xp, from_logits=from_logits, clip_eps=clip_eps, log_min=log_min)
    out = -(_weighted(pos, y) * log_p + (1.0 - y) * log_q)
    return out if w is None else w * out


def _bce_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, from_logits: bool = False, clip_eps: Any = 0.0,
    log_min: float | None = None, backward: str = "derivative", **params: Any,
) -> tuple[Any]:
    y, pos, w = _binary_terms(y_true, y_pred, xp, params)
    if backward == "torch" and not from_logits:  # torch's own BCELoss backward (convention data)
        inside = xp.clip(y_pred, min=clip_eps, max=1.0 - clip_eps) == y_pred  # a clip (not torch's) is flat
        spread = xp.clip(y_pred * (1.0 - y_pred), min=_TORCH_BCE_EPS)
        grad = xp.where(inside, (_weighted(pos, y) * (y_pred - 1.0) + (1.0 - y) * y_pred) / spread, 0.0) * cot
        return (grad if w is None else w * grad,)
    d_p, d_q = _binary_logs_grad(y_pred, xp=xp, from_logits=from_logits, clip_eps=clip_eps, log_min=log_min)
    grad = -(_weighted(pos, y) * d_p + (1.0 - y) * d_q) * cot
    return (grad if w is None else w * grad,)


BINARY_CROSSENTROPY = LossSpec(
    name="binary_crossentropy",
    aliases=("bce", "log_loss", "binary_cross_entropy", "sigmoid_binary_cross_entropy"),
    summary="Binary cross-entropy (log loss) of a Bernoulli prediction, from probabilities or logits.",
    fn=binary_crossentropy,
    vjp=_bce_vjp,
    kinks=probability_kinks,
    inputs=(
        Input("y_true", "target", _label_domain, doc="labels in {0, 1} or soft labels in [0, 1]"),
        Input("y_pred", "prediction", _pred_domain, differentiable=True,
              doc="probabilities of the positive class, or logits with from_logits=True"),
    ),
    params=(*_PRECISION, BINARY_SMOOTHING, POS_WEIGHT, ELEMENT_WEIGHT, SIGN_LABELS, BACKWARD),
    tasks=frozenset({"binary", "multilabel"}),
    formula=r"\ell = -w[\rho\,\tilde y \log p + (1 - \tilde y)\log(1 - p)],\ \tilde y = y(1 - s) + s/2",
    references=(
        "Cox, D. R. (1958). The Regression Analysis of Binary Sequences. JRSS B 20(2), 215-242.",
        "Goodfellow, Bengio & Courville (2016). Deep Learning, sec. 6.2.2.2. "
        "https://www.deeplearningbook.org/contents/mlp.html",
    ),
    usage="Binary and multi-label classification (one independent sigmoid per output). pos_weight > 1 "
    "raises recall on rare positives. SoftMarginLoss is this loss on logits with labels in {-1, 1}."
    + _USAGE_PROBS,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.BCELoss", {"backward": "torch"},
            notes="log floored at -100 on probabilities, and the gradient is torch's backward "
            "(p - y) / max(p(1 - p), 1e-12), +-1e12 at p exactly 0 or 1; from_logits=True is "
            "BCEWithLogitsLoss (no floor, pos_weight); SoftMarginLoss is the logits form with labels in "
            "{-1, 1}; torch has no label smoothing for BCE; mean over every element.",
            names={
                "BCELoss": {},
                "BCEWithLogitsLoss": {"from_logits": True},
                "SoftMarginLoss": {"from_logits": True, "sign_labels": True},
            },
        ),
        "keras": Convention(
            "keras", "keras.losses.BinaryCrossentropy", {"clip_eps": 1e-7},
            notes="probabilities clipped to [1e-7, 1 - 1e-7]; label smoothing towards 1/2; mean over "
            "the last axis, then over the batch.",
            names={"BinaryCrossentropy": {}, "binary_crossentropy": {}},
        ),
        "optax": Convention(
            "optax", "optax.losses.sigmoid_binary_cross_entropy", {"from_logits": True},
            notes="logits only; unreduced values.",
            names={"sigmoid_binary_cross_entropy": {}, "binary_logistic_loss": {}},
        ),
        "caffe": Convention(
            "caffe", "caffe SigmoidCrossEntropyLoss", {"from_logits": True},
            notes="logits; Caffe divides the sum by the batch size N (normalization BATCH_SIZE): "
            "reduction='mean' equals it for one output per sample, reduction='sum' is NONE.",
            names={"SigmoidCrossEntropyLoss": {}},
        ),
    },
)


# -- categorical ------------------------------------------------------------------------------------
def _class_log_probs(
    x: Any, *, xp: Any, from_logits: bool, clip_eps: Any, log_min: float | None, normalize: str,
    from_log_probs: bool = False,
) -> Any:
    """Log-probabilities over the last axis from logits, log-probabilities or probabilities."""
    if from_log_probs or from_logits:
        logp = x if from_log_probs else log_softmax(x, xp=xp)
        return logp if log_min is None else xp.clip(logp, min=log_min)
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    q = x / xp.sum(x, axis=-1, keepdims=True) if normalize == "before_clip" else x
    c = xp.clip(q, min=clip_eps, max=1.0 - clip_eps)
    logp = xp.log(c) if _clip_above_floor(clip_eps, floor) else floored_log(c, floor, xp=xp)
    if normalize == "after_clip":
        logp = logp - xp.log(xp.sum(c, axis=-1, keepdims=True))
    return logp


def _class_log_probs_vjp(
    x: Any, g: Any, *, xp: Any, from_logits: bool, clip_eps: Any, log_min: float | None, normalize: str,
    from_log_probs: bool = False,
) -> Any:
    """Pull the cotangent ``g`` of :func:`_class_log_probs` back to ``x``."""
    if from_log_probs or from_logits:  # the zeros below only where a select needs them (a pass each)
        if log_min is not None:
            logp = x if from_log_probs else log_softmax(x, xp=xp)
            g = xp.where(logp > log_min, g, xp.zeros_like(x))
        return g if from_log_probs else g - softmax(x, xp=xp) * xp.sum(g, axis=-1, keepdims=True)
    zero = xp.zeros_like(x)
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    total = xp.sum(x, axis=-1, keepdims=True)
    q = x / total if normalize == "before_clip" else x
    c = xp.clip(q, min=clip_eps, max=1.0 - clip_eps)
    g_c = g * (1.0 / c if _clip_above_floor(clip_eps, floor) else floored_log_grad(c, floor, xp=xp))
    if normalize == "after_clip":
        g_c = g_c - xp.sum(g, axis=-1, keepdims=True) / xp.sum(c, axis=-1, keepdims=True)
    g_q = xp.where(c == q, g_c, zero)  # q in [clip_eps, 1 - clip_eps] (NaN: False): one comparison
    if normalize == "before_clip":
        return (g_q - xp.sum(g_q * q, axis=-1, keepdims=True)) / total
    return g_q


def _target_ce(t: Any, y_pred: Any, *, xp: Any, **kw: Any) -> Any:
    """``-sum_c t_c log p_c`` with ``0 log 0 = 0`` (a ``-inf`` logit with a zero target adds nothing).

    Only a non-finite ``log p`` with a zero target is replaced by 0, so the derivative along the
    targets is ``-log p`` wherever it is finite, zero targets included (autodiff of this function
    gives the targets' gradient on every backend; Optax's and torch's soft-target cross-entropies
    are differentiable in the labels too).
    """
    logp = _class_log_probs(y_pred, xp=xp, **kw)
    return -xp.sum(t * xp.where((t != 0) | xp.isfinite(logp), logp, xp.zeros_like(logp)), axis=-1)


def _target_ce_vjp(t: Any, y_pred: Any, cot: Any, *, xp: Any, **kw: Any) -> Any:
    return _class_log_probs_vjp(y_pred, -t * xp.expand_dims(cot, axis=-1), xp=xp, **kw)


def _weighted_targets(y: Any, y_pred: Any, xp: Any, label_smoothing: Any, weight: Any) -> Any:
    t = smooth_categorical(y, label_smoothing)
    w = _param_array(xp, weight, y_pred)
    return t if w is None else t * w


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
    weight: Any = None,
) -> Any:
    r"""Categorical cross-entropy per sample, over the last (class) axis.

    .. math::
        \ell(y, p) = -\sum_c w_c \tilde y_c \log p_c, \quad \tilde y = (1 - s) y + s / C

    With ``from_logits`` :math:`\log p = x - \operatorname{logsumexp}(x)` (max subtracted); a
    class with target 0 contributes 0 even at a logit of :math:`-\infty` (:math:`0 \log 0 = 0`).

    >>> import numpy as np
    >>> y = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> out = categorical_crossentropy(y, np.array([[0.8, 0.2], [0.5, 0.5]]), xp=np)
    >>> np.round(out, 6).tolist()
    [0.223144, 0.693147]
    """
    kw = {"from_logits": from_logits, "clip_eps": clip_eps, "log_min": log_min, "normalize": normalize}
    return _target_ce(_weighted_targets(y_true, y_pred, xp, label_smoothing, weight), y_pred, xp=xp, **kw)


def _cce_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, label_smoothing: Any = 0.0, weight: Any = None, **kw: Any
) -> tuple[Any]:
    t = _weighted_targets(y_true, y_pred, xp, label_smoothing, weight)
    return (_target_ce_vjp(t, y_pred, cot, xp=xp, **kw),)


_KERAS_CE_NOTES = "mean over the batch (sum_over_batch_size); label smoothing (1 - s)y + s/C."

CATEGORICAL_CROSSENTROPY = LossSpec(
    name="categorical_crossentropy",
    aliases=("cce", "softmax_cross_entropy", "categorical_cross_entropy"),
    summary="Cross-entropy between target distributions and predicted class probabilities or logits.",
    fn=categorical_crossentropy,
    vjp=_cce_vjp,
    kinks=probability_kinks,
    inputs=(
        Input("y_true", "target", "simplex", doc="one-hot or soft target rows over the last axis"),
        Input("y_pred", "prediction", _row_domain, differentiable=True,
              doc="class probabilities (rows summing to 1), or logits with from_logits=True"),
    ),
    params=(*_PRECISION, NORMALIZE, CATEGORICAL_SMOOTHING, CLASS_WEIGHTS),
    tasks=frozenset({"multiclass", "segmentation"}),
    formula=r"\ell = -\sum_c w_c \tilde y_c \log p_c,\ \tilde y = (1 - s) y + s/C",
    references=(
        "Bridle, J. S. (1990). Probabilistic Interpretation of Feedforward Classification Network "
        "Outputs. Neurocomputing, NATO ASI Series F68, 227-236.",
        "Szegedy, C. et al. (2016). Rethinking the Inception Architecture for Computer Vision "
        "(label smoothing). CVPR. https://arxiv.org/abs/1512.00567",
    ),
    usage=(
        "Multi-class classification with one-hot or soft targets (use sparse_categorical_crossentropy "
        "for integer labels). Consumes the last axis: one value per sample; a (C,) input is one "
        "sample. It is also Optax's safe_softmax_cross_entropy: a zero target times a -inf logit "
        "counts 0." + _USAGE_PROBS
    ),
    elementwise=False,
    masking=Masking({"y_pred": "lowest", "y_true": "zero"}, rows=True),  # Optax's where=: a mask of rows
    conventions={
        "torch": Convention(
            "torch", "torch.nn.CrossEntropyLoss (probability targets)", {"from_logits": True},
            notes="logits with probability targets; weight multiplies each class's target and the "
            "mean divides by the batch size; mean over the batch.",
        ),
        "keras": Convention(
            "keras", "keras.losses.CategoricalCrossentropy", {"clip_eps": 1e-7, "normalize": "before_clip"},
            notes="probabilities renormalized per row, then clipped to [1e-7, 1 - 1e-7]; " + _KERAS_CE_NOTES,
            names={"CategoricalCrossentropy": {}, "categorical_crossentropy": {}},
        ),
        "optax": Convention(
            "optax", "optax.losses.softmax_cross_entropy", {"from_logits": True},
            notes="logits; unreduced values; safe_softmax_cross_entropy is the same function here "
            "(lossbridge always takes 0 log 0 = 0).",
            names={"softmax_cross_entropy": {}, "safe_softmax_cross_entropy": {}},
        ),
    },
)


# -- sparse -----------------------------------------------------------------------------------------
def _sparse_targets(
    y_true: Any, y_pred: Any, xp: Any, label_smoothing: Any, weight_smoothing: bool, class_weight: Any
) -> Any:
    """Smoothed one-hot rows; with ``weight_smoothing`` the smoothing mass of class c is scaled by
    ``w_c / w_y`` so that, once the shared layer multiplies the sample by ``w_y``, class c carries
    ``w_c`` (PyTorch). A sample whose own class weight is 0 keeps no smoothing term."""
    n = y_pred.shape[-1]
    hot = one_hot(y_true, n, y_pred.dtype, xp=xp)
    if not weight_smoothing or class_weight is None:
        return smooth_categorical(hot, label_smoothing)
    w = _param_array(xp, class_weight, y_pred)
    w_y = xp.sum(hot * w, axis=-1, keepdims=True)
    safe = xp.where(w_y > 0, w_y, xp.ones_like(w_y))
    ratio = xp.where(w_y > 0, w / safe, xp.zeros_like(hot))
    return hot * (1.0 - label_smoothing) + ratio * (label_smoothing / n)


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
    from_log_probs: bool = False,
    weight_smoothing: bool = False,
    class_weight: Any = None,
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
    if _gathered(label_smoothing, from_logits, from_log_probs):
        return -_label_log_prob(y_true, y_pred, xp=xp, from_logits=from_logits, log_min=log_min)
    if _gathered_probs(label_smoothing, from_logits, from_log_probs, clip_eps, log_min, normalize):
        return _label_prob_ce(y_true, y_pred, xp=xp, clip_eps=clip_eps, normalize=normalize)
    t = _sparse_targets(y_true, y_pred, xp, label_smoothing, weight_smoothing, class_weight)
    kw = {"from_logits": from_logits, "clip_eps": clip_eps, "log_min": log_min, "normalize": normalize,
          "from_log_probs": from_log_probs}
    return _target_ce(t, y_pred, xp=xp, **kw)


def _sparse_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, label_smoothing: Any = 0.0,
    weight_smoothing: bool = False, class_weight: Any = None, **kw: Any,
) -> tuple[Any]:
    if _gathered(label_smoothing, kw.get("from_logits", False), kw.get("from_log_probs", False)):
        return (_label_log_prob_vjp(y_true, y_pred, cot, xp=xp, from_logits=kw.get("from_logits", False),
                                    log_min=kw.get("log_min")),)
    if _gathered_probs(label_smoothing, kw.get("from_logits", False), kw.get("from_log_probs", False),
                       kw.get("clip_eps", 0.0), kw.get("log_min"), kw.get("normalize", "none")):
        return (_label_prob_ce_vjp(y_true, y_pred, cot, xp=xp, clip_eps=kw["clip_eps"], normalize=kw["normalize"]),)
    t = _sparse_targets(y_true, y_pred, xp, label_smoothing, weight_smoothing, class_weight)
    return (_target_ce_vjp(t, y_pred, cot, xp=xp, **kw),)


# Without label smoothing the smoothed one-hot targets are exactly the one-hot rows, and
# -sum_c [c = y] log p_c is -log p_y: the same terms, gathered instead of summed against a logits-sized
# one-hot array (the values and the gradient are those of the general path, rounding included).
def _gathered(label_smoothing: Any, from_logits: bool, from_log_probs: bool) -> bool:
    """Whether the one-hot-free form applies: no smoothing (a literal 0), logits or log-probabilities."""
    return _literal_zero(label_smoothing) and bool(from_logits or from_log_probs)


def _label_index(xp: Any, y: Any) -> Any:
    """``y`` with a trailing axis, in the namespace's indexing dtype (torch gathers with int64 only)."""
    info = getattr(xp, "__array_namespace_info__", None)
    want = info().default_dtypes()["indexing"] if info is not None else xp.int64
    return xp.expand_dims(y if y.dtype == want else xp.astype(y, want), axis=-1)


def _label_log_prob(y: Any, x: Any, *, xp: Any, from_logits: bool, log_min: float | None) -> Any:
    """``log p_y`` per sample (floored at ``log_min``), as :func:`_class_log_probs` gives it at the label."""
    idx = _label_index(xp, y)
    if from_logits:  # log_softmax at the label: (x_y - max) - log(sum(exp(x - max)))
        shifted = x - xp.max(x, axis=-1, keepdims=True)
        logp = xp.take_along_axis(shifted, idx, axis=-1) - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    else:
        logp = xp.take_along_axis(x, idx, axis=-1)
    logp = xp.squeeze(logp, axis=-1)
    return logp if log_min is None else xp.clip(logp, min=log_min)


def _label_log_prob_vjp(y: Any, x: Any, cot: Any, *, xp: Any, from_logits: bool, log_min: float | None) -> Any:
    """The gradient of ``-log p_y`` times ``cot``: ``cot (softmax(x) - [c = y])`` from logits, ``-cot [c = y]``
    from log-probabilities; 0 where ``log p_y`` is at or below ``log_min``."""
    g = xp.expand_dims(cot, axis=-1)
    if log_min is not None:
        g = xp.where(xp.expand_dims(_label_log_prob(y, x, xp=xp, from_logits=from_logits, log_min=None), axis=-1)
                     > log_min, g, xp.zeros_like(g))
    hot = xp.arange(x.shape[-1], dtype=y.dtype) == xp.expand_dims(y, axis=-1)  # booleans, not a float one-hot
    picked = xp.where(hot, g, xp.zeros_like(g))
    return softmax(x, xp=xp) * g - picked if from_logits else -picked


def _gathered_probs(
    label_smoothing: Any, from_logits: bool, from_log_probs: bool, clip_eps: Any, log_min: float | None, normalize: str
) -> bool:
    """Whether the one-hot-free form applies to probabilities: no smoothing (a literal 0), a clip that keeps
    ``log`` above the floor (Keras's 1e-7, so every ``log p_c`` is finite and no ``0 log 0`` mask acts),
    no renormalization before the clip."""
    floor = DEFAULT_LOG_FLOOR if log_min is None else log_min
    return (_literal_zero(label_smoothing) and not (from_logits or from_log_probs)
            and normalize in ("none", "after_clip") and _clip_above_floor(clip_eps, floor))


def _label_prob_ce(y: Any, x: Any, *, xp: Any, clip_eps: Any, normalize: str) -> Any:
    """``-log p_y`` from clipped probabilities (renormalized after the clip: ``- log c_y + log sum_c c``):
    the general path's value, whose other terms are ``0 * log c_c = 0``."""
    c = xp.clip(x, min=clip_eps, max=1.0 - clip_eps)
    logp = xp.squeeze(xp.take_along_axis(xp.log(c), _label_index(xp, y), axis=-1), axis=-1)
    if normalize == "after_clip":
        logp = logp - xp.log(xp.sum(c, axis=-1))
    return -logp


def _label_prob_ce_vjp(y: Any, x: Any, cot: Any, *, xp: Any, clip_eps: Any, normalize: str) -> Any:
    """The gradient of :func:`_label_prob_ce` times ``cot``: ``-cot / c_y`` at the label (plus
    ``cot / sum_c c_c`` on every class after the clip's renormalization), 0 outside the clip range."""
    c = xp.clip(x, min=clip_eps, max=1.0 - clip_eps)
    g = xp.expand_dims(cot, axis=-1)
    hot = xp.arange(x.shape[-1], dtype=y.dtype) == xp.expand_dims(y, axis=-1)  # booleans, not a float one-hot
    zero = xp.zeros_like(x)
    g_c = xp.where(hot, -g, zero) * (1.0 / c)
    if normalize == "after_clip":
        g_c = g_c + g / xp.sum(c, axis=-1, keepdims=True)
    return xp.where(c == x, g_c, zero)  # x in [clip_eps, 1 - clip_eps] (NaN: False)


#: Caffe's SoftmaxWithLoss takes log(max(p, FLT_MIN)).
_CAFFE_LOG_MIN = math.log(1.1754943508222875e-38)
#: Caffe's MultinomialLogisticLoss and InfogainLoss take log(max(p, kLOG_THRESHOLD = 1e-20)).
CAFFE_LOG_THRESHOLD = 1e-20

SPARSE_CATEGORICAL_CROSSENTROPY = LossSpec(
    name="sparse_categorical_crossentropy",
    aliases=("sparse_cce", "cross_entropy", "softmax_cross_entropy_with_integer_labels"),
    summary="Cross-entropy with integer class labels, from class probabilities, logits or log-probabilities.",
    fn=sparse_categorical_crossentropy,
    vjp=_sparse_vjp,
    kinks=probability_kinks,
    inputs=(
        Input("y_true", "target", "class_index", doc="integer labels, y_pred's shape without its class axis"),
        Input("y_pred", "prediction", _row_domain, differentiable=True,
              doc="class probabilities (rows summing to 1), logits with from_logits=True, or "
              "log-probabilities with from_log_probs=True"),
    ),
    params=(*_PRECISION, NORMALIZE, CATEGORICAL_SMOOTHING, FROM_LOG_PROBS, WEIGHT_SMOOTHING),
    tasks=frozenset({"multiclass", "segmentation", "sequence"}),
    formula=r"\ell = -\sum_c \tilde y_c \log p_c,\ \tilde y_c = (1 - s)[c = y] + s/C",
    references=CATEGORICAL_CROSSENTROPY.references,
    usage=(
        "Multi-class classification, segmentation and token prediction with integer labels. "
        "class_weight weights each sample by its label; ignore_index drops samples from both the "
        "sum and the mean's denominator (PyTorch semantics). With class_weight and label_smoothing "
        "together PyTorch also weights the smoothing term class by class (weight_smoothing=True, "
        "set by the torch convention); that needs the class weights inside the spec, which the "
        "core does not pass yet, so until then the whole sample is weighted by its label's weight. "
        "NLLLoss is from_log_probs=True; Caffe's MultinomialLogisticLoss is the probability form "
        "with log_min = log(1e-20)." + _USAGE_PROBS
    ),
    elementwise=False,
    masking=Masking({"y_pred": "lowest"}, rows=True),  # Optax's where=: a mask of rows
    weighting=frozenset({"class_weight", "ignore_index"}),
    conventions={
        "torch": Convention(
            "torch", "torch.nn.CrossEntropyLoss",
            {"from_logits": True, "ignore_index": -100, "weight_smoothing": True},
            notes="logits; ignore_index=-100; with class weights the mean divides by the summed "
            "weights of the kept samples; NLLLoss takes log-probabilities.",
            names={"CrossEntropyLoss": {}, "NLLLoss": {"from_log_probs": True, "from_logits": False}},
        ),
        "keras": Convention(
            "keras", "keras.losses.SparseCategoricalCrossentropy",
            {"clip_eps": 1e-7, "normalize": "after_clip"},
            notes="probabilities clipped to [1e-7, 1 - 1e-7], then renormalized (a log-softmax of "
            "their logs); mean over the batch.",
            names={"SparseCategoricalCrossentropy": {}, "sparse_categorical_crossentropy": {}},
            kwargs={"ignore_class": "ignore_index"},
        ),
        "optax": Convention(
            "optax", "optax.losses.softmax_cross_entropy_with_integer_labels", {"from_logits": True},
            notes="logits; unreduced values.",
            names={"softmax_cross_entropy_with_integer_labels": {}, "multiclass_logistic_loss": {}},
        ),
        "caffe": Convention(
            "caffe", "caffe SoftmaxWithLoss", {"from_logits": True, "log_min": _CAFFE_LOG_MIN},
            reduction=Reduction("mean", feature_mean=False, normalize_by="weights"),
            notes="log(max(p, FLT_MIN)); normalization VALID (reduction='mean'): divides by the "
            "non-ignored count; NONE is reduction='sum'; with no ignored label FULL and BATCH_SIZE "
            "equal VALID for (N, C) inputs. MultinomialLogisticLoss: probabilities, log(max(p, 1e-20)).",
            names={
                "SoftmaxWithLoss": {},
                "MultinomialLogisticLoss": {"from_logits": False, "log_min": math.log(CAFFE_LOG_THRESHOLD)},
            },
            kwargs={"ignore_label": "ignore_index"},
        ),
    },
)

SPECS = (BINARY_CROSSENTROPY, CATEGORICAL_CROSSENTROPY, SPARSE_CATEGORICAL_CROSSENTROPY)
