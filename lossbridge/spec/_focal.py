"""Re-weighted cross-entropies: focal (binary and categorical), Poly-1 and generalized (GCE).

Each one reshapes the cross-entropy of :mod:`lossbridge.spec._classification` by a factor of the
predicted probability: the focal term :math:`(1 - p_t)^\\gamma` (Lin et al.), the Poly-1 term
:math:`\\epsilon (1 - p_t)` (Leng et al.), or the Box-Cox transform :math:`(1 - p_y^q)/q` (Zhang &
Sabuncu). The probability handling (clipping, floors, renormalization) is the shared one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._classification import (
    _PRECISION,
    BINARY_SMOOTHING,
    CATEGORICAL_SMOOTHING,
    NORMALIZE,
    _binary_logs,
    _binary_logs_grad,
    _clip_above_floor,
    _label_index,
    _literal_zero,
    probability_kinks,
)
from lossbridge.spec._model import Input, LossSpec, Masking
from lossbridge.spec._ops import (
    DEFAULT_LOG_FLOOR,
    floored_log,
    floored_log_grad,
    log_softmax,
    sigmoid,
    smooth_binary,
    smooth_categorical,
    softmax,
)
from lossbridge.spec._params import Param

__all__ = [
    "BINARY_FOCAL_CROSSENTROPY",
    "CATEGORICAL_FOCAL_CROSSENTROPY",
    "GENERALIZED_CROSS_ENTROPY",
    "POLY_CROSS_ENTROPY",
    "SPECS",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "generalized_cross_entropy",
    "poly_cross_entropy",
]

GAMMA = Param("gamma", 2.0, "focusing exponent of the modulating factor (1 - p_t)^gamma; 0 is plain CE", low=0.0)
BINARY_ALPHA = Param(
    "alpha", 0.25, "weight of the positive class (1 - alpha for the negative) when apply_class_balancing; "
    "None: no balancing (Optax's default)", low=0.0, high=1.0, nullable=True,
)
BALANCING = Param(
    "apply_class_balancing", False, "multiply by alpha y + (1 - alpha)(1 - y) (Keras); Optax applies it "
    "whenever alpha is not None", kind="bool", static=True,
)
CATEGORICAL_ALPHA = Param("alpha", 0.25, "constant factor of every class term (Keras)", low=0.0)
FOCAL_REFERENCE = (
    "Lin, T.-Y., Goyal, P., Girshick, R., He, K. & Dollar, P. (2017). Focal Loss for Dense Object "
    "Detection. ICCV. https://arxiv.org/abs/1708.02002"
)


def _pred_domain(params: Mapping[str, Any]) -> str:
    return "logit" if params.get("from_logits", False) else "probability"


def _row_domain(params: Mapping[str, Any]) -> str:
    return "logit" if params.get("from_logits", False) else "simplex"


def _literal_power(b: Any, e: Any) -> Any:
    """``b ** e`` with a Python exponent of 1 or 2 as ``b`` / ``b * b`` (the same values; a
    multiplication where the backend's ``pow`` is an exp of a log)."""
    if isinstance(e, (int, float)) and not isinstance(e, bool):
        if e == 1:
            return b
        if e == 2:
            return b * b
    return b**e


def power_and_grad(b: Any, gamma: Any, *, xp: Any, positive_base: bool = False) -> tuple[Any, Any]:
    """``b ** gamma`` and its derivative for ``b >= 0``; at ``b == 0`` the derivative is the limit
    from above: 0 for gamma > 1 or gamma == 0, 1 for gamma == 1, +inf for 0 < gamma < 1.

    ``positive_base``: the caller knows ``b > 0`` (a clipped probability), so no ``b == 0`` case is
    computed. A Python ``gamma >= 1`` needs no ``b == 0`` case either: ``gamma * b ** (gamma - 1)`` at
    ``b = 0`` is already that limit (``0 ** e`` is 0 for ``e > 0`` and 1 for ``e = 0``); another
    Python ``gamma`` picks the limit without array comparisons."""
    literal = isinstance(gamma, (int, float)) and not isinstance(gamma, bool)
    if positive_base or (literal and gamma >= 1):
        return _literal_power(b, gamma), gamma * _literal_power(b, gamma - 1.0)
    positive = b > 0
    safe = xp.where(positive, b, xp.ones_like(b))
    if literal:
        limit = 0.0 if gamma > 1 or gamma == 0 else 1.0 if gamma == 1 else float("inf")
        return b**gamma, xp.where(positive, gamma * safe ** (gamma - 1.0), xp.full_like(b, limit))
    g = xp.zeros_like(b) + gamma
    zero, one, inf = xp.zeros_like(b), xp.ones_like(b), xp.full_like(b, float("inf"))
    at_zero = xp.where((g > 1) | (g == 0), zero, xp.where(g == 1, one, inf))
    return b**gamma, xp.where(positive, g * safe ** (g - 1.0), at_zero)


# -- binary focal -----------------------------------------------------------------------------------
def _binary_focal_parts(y_true: Any, x: Any, xp: Any, p: Mapping[str, Any]) -> dict[str, Any]:
    """The pieces shared by the value and the gradient of the binary focal loss."""
    smoothing = p["label_smoothing"]
    y = y_true if _literal_zero(smoothing) else smooth_binary(y_true, smoothing)  # y (1 - 0) + 0 is y
    kw = {"from_logits": p["from_logits"], "clip_eps": p["clip_eps"], "log_min": p["log_min"]}
    log_p, log_q = _binary_logs(x, xp=xp, **kw)
    prob = sigmoid(x, xp=xp) if p["from_logits"] else x
    q = sigmoid(-x, xp=xp) if p["from_logits"] else 1.0 - x
    base = y * q + (1.0 - y) * prob  # 1 - p_t
    alpha = p["alpha"]
    balance = None
    if p["apply_class_balancing"] and alpha is not None:
        balance = alpha * y + (1.0 - alpha) * (1.0 - y)
    return {"y": y, "bce": -(y * log_p + (1.0 - y) * log_q), "base": base, "prob": prob, "q": q,
            "balance": balance, "kw": kw}


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    /,
    *,
    xp: Any,
    from_logits: bool = False,
    clip_eps: Any = 0.0,
    log_min: float | None = None,
    label_smoothing: Any = 0.0,
    gamma: Any = 2.0,
    alpha: Any = 0.25,
    apply_class_balancing: bool = False,
) -> Any:
    r"""Binary focal cross-entropy per element.

    .. math::
        \ell = a_y\,(1 - p_t)^\gamma\,\mathrm{BCE}(\tilde y, p), \quad
        1 - p_t = \tilde y (1 - p) + (1 - \tilde y) p, \quad a_y = \alpha \tilde y + (1 - \alpha)(1 - \tilde y)

    (:math:`a_y = 1` without class balancing). With ``from_logits`` :math:`p = \sigma(x)` and the
    BCE is the exact logit form; clipping (Keras) applies to the BCE only, as Keras does.

    >>> import numpy as np
    >>> out = binary_focal_crossentropy(np.array([1.0, 0.0]), np.array([0.8, 0.1]), xp=np)
    >>> np.round(out, 6).tolist()
    [0.008926, 0.001054]
    """
    params = {"from_logits": from_logits, "clip_eps": clip_eps, "log_min": log_min, "label_smoothing": label_smoothing,
              "alpha": alpha, "apply_class_balancing": apply_class_balancing}
    parts = _binary_focal_parts(y_true, y_pred, xp, params)
    out = _literal_power(parts["base"], gamma) * parts["bce"]
    return out if parts["balance"] is None else parts["balance"] * out


def _binary_focal_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, gamma: Any = 2.0, **params: Any) -> tuple[Any]:
    parts = _binary_focal_parts(y_true, y_pred, xp, params)
    y = parts["y"]
    d_p, d_q = _binary_logs_grad(y_pred, xp=xp, **parts["kw"])
    d_bce = -(y * d_p + (1.0 - y) * d_q)
    factor, d_factor = power_and_grad(parts["base"], gamma, xp=xp)
    d_base = d_factor * (1.0 - 2.0 * y)  # d(1 - p_t)/dp = 1 - 2y
    if params["from_logits"]:
        d_base = d_base * (parts["prob"] * parts["q"])  # dp/dx = p (1 - p)
    grad = (d_base * parts["bce"] + factor * d_bce) * cot
    return (grad if parts["balance"] is None else parts["balance"] * grad,)


BINARY_FOCAL_CROSSENTROPY = LossSpec(
    name="binary_focal_crossentropy",
    aliases=("binary_focal", "sigmoid_focal", "focal_bce"),
    summary="Binary cross-entropy down-weighting easy examples by (1 - p_t)^gamma (focal loss).",
    fn=binary_focal_crossentropy,
    vjp=_binary_focal_vjp,
    kinks=probability_kinks,
    inputs=(
        Input("y_true", "target", "soft_binary", doc="labels in {0, 1} or soft labels in [0, 1]"),
        Input("y_pred", "prediction", _pred_domain, differentiable=True,
              doc="probabilities of the positive class, or logits with from_logits=True"),
    ),
    params=(*_PRECISION, BINARY_SMOOTHING, GAMMA, BINARY_ALPHA, BALANCING),
    tasks=frozenset({"binary", "multilabel", "segmentation"}),
    formula=r"\ell = a_y (1 - p_t)^\gamma \,\mathrm{BCE}(\tilde y, p),\ 1 - p_t = \tilde y(1 - p) + (1 - \tilde y)p",
    references=(FOCAL_REFERENCE,),
    usage=(
        "Dense detection and heavily imbalanced binary or multi-label problems: gamma > 0 shrinks the "
        "loss of well-classified examples. Keras balances classes only with apply_class_balancing=True "
        "(alpha 0.25 for positives); Optax whenever alpha is given. gamma < 1 has an infinite "
        "gradient where p_t = 1 exactly; clip edges behave as in binary_crossentropy."
    ),
    conventions={
        "keras": Convention(
            "keras", "keras.losses.BinaryFocalCrossentropy", {"clip_eps": 1e-7},
            notes="the BCE on probabilities is clipped to [1e-7, 1 - 1e-7], the focal factor uses the "
            "unclipped p; from logits the BCE is exact (TensorFlow backend); mean over the last axis.",
            names={"BinaryFocalCrossentropy": {}, "binary_focal_crossentropy": {}},
        ),
        "optax": Convention(
            "optax", "optax.losses.sigmoid_focal_loss",
            {"from_logits": True, "apply_class_balancing": True, "alpha": None},
            notes="logits; alpha=None (no balancing) unless given; unreduced values.",
            names={"sigmoid_focal_loss": {}},
        ),
    },
)


# -- categorical focal ------------------------------------------------------------------------------
def _focal_probs(x: Any, xp: Any, p: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    """``(o, log o, inside, q)``: clipped class probabilities, their logs, the unclipped mask and
    the pre-clip values (renormalized probabilities, or the softmax of logits)."""
    eps = p["clip_eps"]
    floor = DEFAULT_LOG_FLOOR if p["log_min"] is None else p["log_min"]
    if p["from_logits"]:
        log_raw = log_softmax(x, xp=xp)
        q = xp.exp(log_raw)
    else:
        q = x / xp.sum(x, axis=-1, keepdims=True) if p["normalize"] == "before_clip" else x
    o = xp.clip(q, min=eps, max=1.0 - eps)
    inside = o == q  # q in [eps, 1 - eps] (NaN: False): one comparison, not three ops
    # a clip above the floor (Keras's 1e-7) keeps o positive with log o above the floor: floored_log is log
    log_o = xp.log(o) if _clip_above_floor(eps, floor) else floored_log(o, floor, xp=xp)
    if p["from_logits"]:
        exact = log_raw if p["log_min"] is None else xp.clip(log_raw, min=p["log_min"])
        log_o = xp.where(inside, exact, log_o)
    return o, log_o, inside, q


def _smoothed(y_true: Any, label_smoothing: Any) -> Any:
    """The smoothed target rows; a Python 0 smooths nothing (``y (1 - 0) + 0 / C`` is ``y``)."""
    return y_true if _literal_zero(label_smoothing) else smooth_categorical(y_true, label_smoothing)


def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    /,
    *,
    xp: Any,
    from_logits: bool = False,
    clip_eps: Any = 0.0,
    log_min: float | None = None,
    normalize: str = "none",
    label_smoothing: Any = 0.0,
    gamma: Any = 2.0,
    alpha: Any = 0.25,
) -> Any:
    r"""Categorical focal cross-entropy per sample, over the last (class) axis.

    .. math::
        \ell = -\sum_c \alpha\,(1 - p_c)^\gamma\,\tilde y_c \log p_c, \quad \tilde y = (1 - s)y + s/C

    With ``clip_eps`` both factors use the clipped :math:`p` (Keras).

    >>> import numpy as np
    >>> out = categorical_focal_crossentropy(np.array([[1.0, 0.0]]), np.array([[0.8, 0.2]]), xp=np)
    >>> np.round(out, 6).tolist()
    [0.002231]
    """
    p = {"from_logits": from_logits, "clip_eps": clip_eps, "log_min": log_min, "normalize": normalize}
    o, log_o, _, _ = _focal_probs(y_pred, xp, p)
    t = _smoothed(y_true, label_smoothing)
    return -alpha * xp.sum(_literal_power(1.0 - o, gamma) * t * log_o, axis=-1)


def _categorical_focal_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, label_smoothing: Any = 0.0, gamma: Any = 2.0,
    alpha: Any = 0.25, **p: Any,
) -> tuple[Any]:
    o, log_o, inside, q = _focal_probs(y_pred, xp, p)
    t = _smoothed(y_true, label_smoothing) * (alpha * xp.expand_dims(cot, axis=-1))
    floor = DEFAULT_LOG_FLOOR if p["log_min"] is None else p["log_min"]
    clipped = _clip_above_floor(p["clip_eps"], floor)  # o in [eps, 1 - eps]: 1 - o > 0, floored_log is log
    factor, d_factor = power_and_grad(1.0 - o, gamma, xp=xp, positive_base=clipped)
    zero = xp.zeros_like(o)
    g_o = xp.where(inside, d_factor * t * log_o, zero)  # through (1 - o)^gamma
    g_log = xp.where(inside, -factor * t, zero)  # through log o
    if p["from_logits"]:
        if p["log_min"] is not None:
            g_log = xp.where(log_o > p["log_min"], g_log, zero)
        g_x = g_log - q * xp.sum(g_log, axis=-1, keepdims=True)
        return (g_x + q * (g_o - xp.sum(g_o * q, axis=-1, keepdims=True)),)
    g_q = g_o + g_log * (1.0 / o if clipped else floored_log_grad(o, floor, xp=xp))
    if p["normalize"] == "before_clip":
        total = xp.sum(y_pred, axis=-1, keepdims=True)
        return ((g_q - xp.sum(g_q * q, axis=-1, keepdims=True)) / total,)
    return (g_q,)


CATEGORICAL_FOCAL_CROSSENTROPY = LossSpec(
    name="categorical_focal_crossentropy",
    aliases=("categorical_focal", "focal_cce", "softmax_focal"),
    summary="Categorical cross-entropy with each class term scaled by alpha (1 - p_c)^gamma (focal loss).",
    fn=categorical_focal_crossentropy,
    vjp=_categorical_focal_vjp,
    kinks=probability_kinks,
    inputs=(
        Input("y_true", "target", "simplex", doc="one-hot or soft target rows over the last axis"),
        Input("y_pred", "prediction", _row_domain, differentiable=True,
              doc="class probabilities (rows summing to 1), or logits with from_logits=True"),
    ),
    params=(*_PRECISION, NORMALIZE, CATEGORICAL_SMOOTHING, GAMMA, CATEGORICAL_ALPHA),
    tasks=frozenset({"multiclass", "segmentation"}),
    formula=r"\ell = -\sum_c \alpha (1 - p_c)^\gamma \tilde y_c \log p_c",
    references=(FOCAL_REFERENCE,),
    usage=(
        "Multi-class problems with many easy examples (dense prediction). With one-hot targets only "
        "the true class's term counts. From logits lossbridge uses the exact log-softmax inside the "
        "clip range; Keras exponentiates first, the same to rounding. At a clip edge the gradient "
        "is the inside one-sided derivative, outside it is 0."
    ),
    elementwise=False,
    conventions={
        "keras": Convention(
            "keras", "keras.losses.CategoricalFocalCrossentropy", {"clip_eps": 1e-7, "normalize": "before_clip"},
            notes="probabilities renormalized per row then clipped to [1e-7, 1 - 1e-7] (softmax first "
            "from logits, clipped too); both factors use the clipped p; mean over the batch.",
            names={"CategoricalFocalCrossentropy": {}, "categorical_focal_crossentropy": {}},
        ),
    },
)


# -- Poly-1 -----------------------------------------------------------------------------------------
def poly_cross_entropy(y_true: Any, y_pred: Any, /, *, xp: Any, epsilon: Any = 2.0) -> Any:
    r"""Poly-1 cross-entropy per sample from logits: cross-entropy plus a linear term in :math:`1 - p_t`.

    .. math:: \ell = -\sum_c y_c \log p_c + \epsilon \sum_c y_c (1 - p_c), \quad p = \mathrm{softmax}(x)

    >>> import numpy as np
    >>> out = poly_cross_entropy(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]), xp=np)
    >>> np.round(out, 6).tolist()
    [1.693147]
    """
    logp = log_softmax(y_pred, xp=xp)
    ce = -xp.sum(y_true * xp.where(y_true != 0, logp, xp.zeros_like(logp)), axis=-1)
    return ce + epsilon * xp.sum(y_true * (1.0 - xp.exp(logp)), axis=-1)


def _poly_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, epsilon: Any = 2.0) -> tuple[Any]:
    p = softmax(y_pred, xp=xp)
    total = xp.sum(y_true, axis=-1, keepdims=True)
    ce = p * total - y_true
    poly = -epsilon * p * (y_true - xp.sum(y_true * p, axis=-1, keepdims=True))
    return ((ce + poly) * xp.expand_dims(cot, axis=-1),)


POLY_CROSS_ENTROPY = LossSpec(
    name="poly_cross_entropy",
    aliases=("poly1_cross_entropy", "poly_loss"),
    summary="Poly-1 loss: softmax cross-entropy plus epsilon times (1 - p_t).",
    fn=poly_cross_entropy,
    vjp=_poly_vjp,
    inputs=(
        Input("y_true", "target", "simplex", doc="one-hot or soft target rows over the last axis"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="logits over the last axis"),
    ),
    params=(Param("epsilon", 2.0, "coefficient of the first polynomial term (1 - p_t); 0 is plain CE", low=-1.0),),
    tasks=frozenset({"multiclass"}),
    formula=r"\ell = -\sum_c y_c \log p_c + \epsilon \sum_c y_c (1 - p_c)",
    references=(
        "Leng, Z. et al. (2022). PolyLoss: A Polynomial Expansion Perspective of Classification Loss "
        "Functions. ICLR. https://arxiv.org/abs/2204.12511",
    ),
    usage="Drop-in for softmax cross-entropy; epsilon > 0 emphasizes the leading gradient term (the "
    "paper's best image-classification setting is epsilon = 2, Optax's default). Smooth everywhere.",
    elementwise=False,
    masking=Masking({"y_pred": "lowest", "y_true": "zero"}),
    conventions={
        "optax": Convention(
            "optax", "optax.losses.poly_loss_cross_entropy", notes="logits; epsilon 2.0; unreduced values.",
            names={"poly_loss_cross_entropy": {}},
        ),
    },
)


# -- generalized cross-entropy ----------------------------------------------------------------------
def generalized_cross_entropy(y_true: Any, y_pred: Any, /, *, xp: Any, q: Any = 0.5) -> Any:
    r"""Generalized cross-entropy (GCE) per sample, integer labels, probabilities.

    .. math:: \ell = \frac{1 - p_y^{\,q}}{q}

    It tends to :math:`-\log p_y` as :math:`q \to 0` and is the MAE :math:`1 - p_y` at :math:`q = 1`.

    >>> import numpy as np
    >>> out = generalized_cross_entropy(np.array([0]), np.array([[0.25, 0.75]]), xp=np)
    >>> np.round(out, 6).tolist()
    [1.0]
    """
    return (1.0 - _label_prob(y_true, y_pred, xp=xp) ** q) / q


def _label_prob(y: Any, p: Any, *, xp: Any) -> Any:
    """``p_y`` per sample, gathered at the label: the sum of the one-hot row times ``p`` (its other
    terms are exact zeros) without the class-sized one-hot array."""
    return xp.squeeze(xp.take_along_axis(p, _label_index(xp, y), axis=-1), axis=-1)


def _gce_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, q: Any = 0.5) -> tuple[Any]:
    _, d_pow = power_and_grad(_label_prob(y_true, y_pred, xp=xp), q, xp=xp)
    # only the label's entry has a gradient; where p_y = 0 (d_pow infinite) the others stay 0, not 0 * inf
    scaled = xp.expand_dims(d_pow * cot / q, axis=-1)
    hot = xp.arange(y_pred.shape[-1], dtype=y_true.dtype) == xp.expand_dims(y_true, axis=-1)  # booleans
    return (xp.where(hot, -scaled, xp.zeros_like(y_pred)),)


GENERALIZED_CROSS_ENTROPY = LossSpec(
    name="generalized_cross_entropy",
    aliases=("gce", "categorical_generalized_cross_entropy"),
    summary="Generalized cross-entropy (1 - p_y^q)/q, robust to noisy labels.",
    fn=generalized_cross_entropy,
    vjp=_gce_vjp,
    inputs=(
        Input("y_true", "target", "class_index", doc="integer labels, y_pred's shape without its class axis"),
        Input("y_pred", "prediction", "simplex", differentiable=True, doc="class probabilities over the last axis"),
    ),
    params=(Param("q", 0.5, "Box-Cox exponent: near 0 is cross-entropy, 1 is MAE", low=0.0, high=1.0,
                  low_inclusive=False),),
    tasks=frozenset({"multiclass"}),
    formula=r"\ell = (1 - p_y^{\,q}) / q",
    references=(
        "Zhang, Z. & Sabuncu, M. R. (2018). Generalized Cross Entropy Loss for Training Deep Neural "
        "Networks with Noisy Labels. NeurIPS. https://arxiv.org/abs/1805.07836",
    ),
    usage="Training with noisy labels: bounded, unlike cross-entropy. Takes probabilities (apply "
    "softmax first). The gradient at p_y = 0 is -inf for q < 1.",
    elementwise=False,
    conventions={
        "keras": Convention(
            "keras", "keras.losses.CategoricalGeneralizedCrossEntropy",
            notes="integer labels (floats holding whole numbers are cast); q in (0, 1); mean over the batch.",
            names={"CategoricalGeneralizedCrossEntropy": {}, "categorical_generalized_cross_entropy": {}},
        ),
    },
)

SPECS = (BINARY_FOCAL_CROSSENTROPY, CATEGORICAL_FOCAL_CROSSENTROPY, POLY_CROSS_ENTROPY, GENERALIZED_CROSS_ENTROPY)
