"""Overlap losses for segmentation: soft Dice and its asymmetric generalization, Tversky.

One formula covers Keras ``Dice`` and ``Tversky`` and Optax ``dice_loss``, ``binary_dice_loss`` and
``multiclass_generalized_dice_loss``: the Tversky index with a smoothing term added to both sides
and an ``eps`` added to the denominator only. Dice is Tversky with ``alpha = beta = 1/2``
(:math:`2I / (P + T) = I / (I + (P - I)/2 + (T - I)/2)`). The frameworks differ in data only: which
axes are summed (Keras: all of them, the batch included; Optax: the spatial ones, per class), the
smoothing constants, the activation applied to the predictions and how classes are weighted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossbridge.conventions import Convention, InputRules
from lossbridge.errors import InputError
from lossbridge.spec._domain import DOMAINS, Domain, register_domain
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import log_sigmoid, softmax
from lossbridge.spec._params import Param

__all__ = ["DICE", "SPECS", "dice"]

#: Optax's ``multiclass_generalized_dice_loss`` constant in ``1 / (f_c^2 + eps)``.
FREQUENCY_EPS = 1e-7


def _class_distribution(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    p = np.exp(rng.normal(size=shape))
    return (p / p.sum(axis=-1, keepdims=True)).astype(dtype)


def _check_class_distribution(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    """Rows summing to 1 over the class axis, within Optax's ``jnp.allclose(sum, 1, rtol=1e-5)``."""
    sums = xp.sum(x, axis=-1)
    if not bool(xp.all(xp.abs(sums - 1.0) <= 1e-8 + 1e-5)):
        raise InputError(
            f"{name}: predictions must be valid probability distributions that sum to 1 along the class "
            f"axis; found sums in [{float(xp.min(sums)):.6f}, {float(xp.max(sums)):.6f}]"
        )


if "class_distribution" not in DOMAINS:
    register_domain(Domain(
        "class_distribution", "probability rows over the last (class) axis, checked to sum to 1",
        _class_distribution, _check_class_distribution,
    ))

PARAMS = (
    Param("alpha", 0.5, "weight of the false positives sum p(1 - y) (Tversky alpha; Optax alpha)", low=0.0),
    Param("beta", 0.5, "weight of the false negatives sum (1 - p)y (Tversky beta; Optax beta)", low=0.0),
    Param("smooth", 1.0, "added to numerator and denominator (Optax smooth; Keras: 0)", low=0.0),
    Param("eps", 0.0, "added to the denominator only (Keras Tversky: 1e-7, Keras Dice: 5e-8)", low=0.0),
    Param(
        "axis", None, "the axes summed over, a tuple of ints; None: as default_axis says",
        kind="array", nullable=True, static=True,
    ),
    Param(
        "default_axis", "sample", "the axes summed when axis is None: 'sample' = all but the first "
        "(one value per sample), 'spatial' = all but the first and the last (per sample and class; "
        "Optax), 'all' = every axis, the batch included (Keras)",
        kind="choice", choices=("sample", "spatial", "all"), static=True,
    ),
    Param(
        "class_reduction", "mean", "how a kept last (class) axis is combined: 'mean', 'sum' or 'none' "
        "(Optax dice_loss's reduction)", kind="choice", choices=("mean", "sum", "none"), static=True,
    ),
    Param(
        "from_logits", False, "read y_pred as logits and apply the activation (Optax apply_softmax)",
        kind="bool", static=True,
    ),
    Param(
        "activation", "auto", "with from_logits: 'softmax' over the last axis, 'sigmoid' per element, "
        "or 'auto' = sigmoid when the last axis has size 1, else softmax (Optax)",
        kind="choice", choices=("auto", "softmax", "sigmoid"), static=True,
    ),
    Param(
        "class_weights", None, "one weight per class (last axis), multiplying each class's loss "
        "before the class reduction (Optax class_weights)", kind="array", nullable=True, static=True,
    ),
    Param(
        "frequency_weights", False, "weight class c by 1/(f_c^2 + 1e-7), f_c = sum of y over every "
        "axis but the last, normalized to sum to C (Optax multiclass_generalized_dice_loss)",
        kind="bool", static=True,
    ),
    Param(
        "rows_sum_to_one", False, "without from_logits, y_pred rows must sum to 1 over the class axis, "
        "checked on concrete inputs (Optax's apply_softmax=False check)", kind="bool", static=True,
    ),
    Param(
        "ignore_background", False, "drop class 0 (the first entry of the last axis) before the class "
        "reduction", kind="bool", static=True,
    ),
)


def _pred_domain(params: Mapping[str, Any]) -> str:
    if params.get("from_logits", False):
        return "logit"
    return "class_distribution" if params.get("rows_sum_to_one", False) else "probability"


def _sigmoid_link(params: Mapping[str, Any], size: int) -> bool:
    link = params["activation"]
    return link == "sigmoid" or (link == "auto" and size == 1)


def _probabilities(x: Any, *, xp: Any, **p: Any) -> Any:
    if not p["from_logits"]:
        return x
    if _sigmoid_link(p, x.shape[-1]):
        return xp.exp(log_sigmoid(x, xp=xp))
    return softmax(x, xp=xp)


def _probabilities_vjp(x: Any, g: Any, *, xp: Any, **p: Any) -> Any:
    """Pull the cotangent ``g`` of :func:`_probabilities` back to ``x``."""
    if not p["from_logits"]:
        return g
    if _sigmoid_link(p, x.shape[-1]):
        s = xp.exp(log_sigmoid(x, xp=xp))
        return g * s * (1.0 - s)
    s = softmax(x, xp=xp)
    return s * (g - xp.sum(g * s, axis=-1, keepdims=True))


def _axes(ndim: int, axis: Any, default_axis: str) -> tuple[int, ...]:
    if axis is not None:
        return tuple(sorted({int(a) % ndim for a in axis}))
    if default_axis == "all":
        return tuple(range(ndim))
    if default_axis == "spatial":
        return tuple(range(1, ndim - 1))
    return tuple(range(1, ndim))


def _class_scale(y: Any, *, xp: Any, **p: Any) -> Any | None:
    """The weight of each class (a row over the last axis), or None when classes are unweighted."""
    scale = None
    if p["class_weights"] is not None:
        scale = xp.asarray(p["class_weights"], dtype=y.dtype)
    if p["frequency_weights"]:
        freq = xp.sum(xp.reshape(y, (-1, y.shape[-1])), axis=0)
        w = 1.0 / (freq**2 + FREQUENCY_EPS)
        w = w / xp.sum(w) * float(y.shape[-1])
        scale = w if scale is None else scale * w
    return scale


def _finish(per_class: Any, y: Any, keeps_class: bool, *, xp: Any, **p: Any) -> Any:
    """Class weights, background dropping and the class reduction of the kept axes' values."""
    if not keeps_class:
        return per_class
    scale = _class_scale(y, xp=xp, **p)
    out = per_class if scale is None else per_class * scale
    if p["ignore_background"] and per_class.shape[-1] > 1:
        out = out[..., 1:]
    if p["class_reduction"] == "mean":
        return xp.mean(out, axis=-1)
    if p["class_reduction"] == "sum":
        return xp.sum(out, axis=-1)
    return out


def _sums(y: Any, q: Any, axes: tuple[int, ...], *, xp: Any) -> tuple[Any, Any, Any]:
    return xp.sum(y * q, axis=axes), xp.sum(q, axis=axes), xp.sum(y, axis=axes)


def _ratio(inter: Any, pred: Any, true: Any, **p: Any) -> tuple[Any, Any]:
    num = inter + p["smooth"]
    den = inter + p["alpha"] * (pred - inter) + p["beta"] * (true - inter) + p["smooth"] + p["eps"]
    return num, den


def dice(y_true: Any, y_pred: Any, /, *, xp: Any, **params: Any) -> Any:
    r"""Tversky / soft Dice loss over the summed axes (per sample by default).

    .. math::
        \ell = 1 - \frac{I + s}{I + \alpha (P - I) + \beta (T - I) + s + \epsilon}, \quad
        I = \sum y p,\ P = \sum p,\ T = \sum y

    With :math:`\alpha = \beta = 1/2` and :math:`s = \epsilon = 0` this is the Dice loss
    :math:`1 - 2I/(P + T)`.

    >>> import numpy as np
    >>> y, p = np.array([[1.0, 1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0, 1.0]])
    >>> np.round(dice(y, p, xp=np, **{**DEFAULTS, "smooth": 0.0}), 6).tolist()
    [0.5]
    """
    p = {**DEFAULTS, **params}
    q = _probabilities(y_pred, xp=xp, **p)
    axes = _axes(q.ndim, p["axis"], p["default_axis"])
    num, den = _ratio(*_sums(y_true, q, axes, xp=xp), **p)
    return _finish(1.0 - num / den, y_true, q.ndim - 1 not in axes, xp=xp, **p)


def _expand(x: Any, axes: tuple[int, ...], *, xp: Any) -> Any:
    for a in axes:
        x = xp.expand_dims(x, axis=a)
    return x


def _class_cotangent(cot: Any, y: Any, per_class_shape: tuple[int, ...], *, xp: Any, **p: Any) -> Any:
    """The cotangent of the per-class values, from that of :func:`_finish`'s output."""
    n = per_class_shape[-1]
    if p["class_reduction"] == "none":
        g = cot
    else:
        kept = n - 1 if p["ignore_background"] and n > 1 else n
        g = xp.expand_dims(cot, axis=-1) * xp.ones((kept,), dtype=cot.dtype)
        if p["class_reduction"] == "mean":
            g = g / float(kept)
    if p["ignore_background"] and n > 1:
        g = xp.concat([xp.zeros_like(g[..., :1]), g], axis=-1)
    scale = _class_scale(y, xp=xp, **p)
    return g if scale is None else g * scale


def _dice_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, **params: Any) -> tuple[Any]:
    p = {**DEFAULTS, **params}
    q = _probabilities(y_pred, xp=xp, **p)
    axes = _axes(q.ndim, p["axis"], p["default_axis"])
    num, den = _ratio(*_sums(y_true, q, axes, xp=xp), **p)
    if q.ndim - 1 not in axes:
        cot = _class_cotangent(cot, y_true, tuple(num.shape), xp=xp, **p)
    # quotient rule: d(1 - num/den)/dq = -(y den - num ((1 - a - b) y + a)) / den^2
    c_num = _expand(-cot / den, axes, xp=xp)
    c_den = _expand(cot * num / den**2, axes, xp=xp)
    d_den = (1.0 - p["alpha"] - p["beta"]) * y_true + p["alpha"]
    return (_probabilities_vjp(y_pred, c_num * y_true + c_den * d_den, xp=xp, **p),)


DEFAULTS = {par.name: par.default for par in PARAMS}

_KERAS_DICE = {"alpha": 0.5, "beta": 0.5, "eps": 5e-8}
_OPTAX_BINARY = {"default_axis": "sample", "activation": "sigmoid"}
_OPTAX_GENERALIZED = {"frequency_weights": True, "reduction": "mean"}

DICE = LossSpec(
    name="dice",
    aliases=("dice_loss", "soft_dice", "tversky", "tversky_loss", "sorensen_dice"),
    summary="Soft Dice / Tversky overlap loss between a predicted and a true segmentation mask.",
    fn=dice,
    vjp=_dice_vjp,
    inputs=(
        Input("y_true", "target", "soft_binary", doc="masks in [0, 1], one-hot over the class axis"),
        Input("y_pred", "prediction", _pred_domain, differentiable=True,
              doc="probabilities, or logits with from_logits=True"),
    ),
    params=PARAMS,
    tasks=frozenset({"segmentation", "binary", "multilabel"}),
    formula=r"\ell = 1 - \frac{I + s}{I + \alpha (P - I) + \beta (T - I) + s + \epsilon},"
    r"\ I = \sum y p,\ P = \sum p,\ T = \sum y",
    references=(
        "Milletari, F., Navab, N. & Ahmadi, S.-A. (2016). V-Net: Fully Convolutional Neural Networks "
        "for Volumetric Medical Image Segmentation. 3DV. https://arxiv.org/abs/1606.04797",
        "Salehi, S. S. M., Erdogmus, D. & Gholipour, A. (2017). Tversky loss function for image "
        "segmentation using 3D fully convolutional deep networks. MLMI. https://arxiv.org/abs/1706.05721",
        "Sudre, C. H. et al. (2017). Generalised Dice overlap as a deep learning loss function for highly "
        "unbalanced segmentations. DLMIA. https://arxiv.org/abs/1707.03237",
    ),
    usage=(
        "Segmentation with strong foreground/background imbalance: the loss is a ratio of sums, so "
        "small structures count as much as large ones. lossbridge's default is one Dice value per "
        "sample (every axis but the first summed) with smooth=1; default_axis='spatial' keeps the "
        "class axis (per-class Dice, then class_reduction) and 'all' sums over the batch too, which "
        "couples the samples (Keras's axis=None). alpha > beta penalizes false positives more "
        "(Tversky). Keras's Tversky names the two weights the other way round: its alpha multiplies "
        "sum (1 - p) y, lossbridge's beta (the convention maps the keywords). Optax's "
        "multiclass_generalized_dice_loss weights each class's Dice by its inverse squared frequency "
        "in the batch (frequency_weights=True), a weighted mean of per-class losses rather than "
        "Sudre's ratio of weighted sums. The gradient is the quotient rule; the loss is smooth "
        "wherever the denominator is positive (keep smooth or eps > 0 for empty masks)."
    ),
    elementwise=False,
    min_ndim=2,
    coupled=True,
    conventions={
        "keras": Convention(
            "keras", "keras.losses.Tversky",
            {"smooth": 0.0, "eps": 1e-7, "default_axis": "all", "class_reduction": "none"},
            notes="1 - I / (I + alpha*sum((1-p)y) + beta*sum(p(1-y)) + 1e-7): Keras's alpha weights the "
            "false negatives (lossbridge's beta). Dice is 1 - 2I / (P + T + 1e-7), i.e. eps 5e-8 here. "
            "axis=None sums over every axis, the batch included (one coupled value).",
            names={"Tversky": {}, "tversky": {}, "Dice": _KERAS_DICE, "dice": _KERAS_DICE},
            kwargs={"alpha": "beta", "beta": "alpha"},
        ),
        "optax": Convention(
            "optax", "optax.losses.dice_loss",
            {"smooth": 1.0, "default_axis": "spatial", "from_logits": True, "activation": "auto",
             "rows_sum_to_one": True},
            notes="softmax of logits (sigmoid for one channel), per-class Tversky over the spatial axes "
            "with smooth=1 on both sides, then mean over classes (its reduction=). binary_dice_loss "
            "sums every axis but the batch with a sigmoid; multiclass_generalized_dice_loss weights "
            "classes by inverse squared batch frequency and returns the mean.",
            names={
                "dice_loss": {},
                "binary_dice_loss": _OPTAX_BINARY,
                "multiclass_generalized_dice_loss": _OPTAX_GENERALIZED,
            },
            kwargs={"apply_softmax": "from_logits", "reduction": "class_reduction"},
            # Optax checks that probabilities (apply_softmax=False) sum to 1 over the classes
            # and gives whichever of predictions/targets is one rank lower a trailing size-1 axis
            inputs=InputRules(check_ranges=True, expand_rank=True),
        ),
    },
)

SPECS = (DICE,)
