"""Sparsemax losses: the Fenchel-Young losses of the Gini negentropy, binary and multiclass.

Sparsemax (Martins & Astudillo) is the Euclidean projection of the scores onto the probability
simplex; it gives exact zeros. Its loss is zero exactly when the projection equals the one-hot
target, and its gradient is ``sparsemax(z) - onehot(y)``. The projection is computed here without
sorting (a pairwise comparison over the class axis), so it runs on every Array API namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossbridge.conventions import Convention
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import one_hot

__all__ = [
    "MULTICLASS_SPARSEMAX",
    "SPARSEMAX_BINARY",
    "SPECS",
    "multiclass_sparsemax_loss",
    "sparsemax",
    "sparsemax_loss",
]

FY_REFERENCE = (
    "Blondel, M., Martins, A. F. T. & Niculae, V. (2020). Learning with Fenchel-Young Losses. JMLR "
    "21(35). https://jmlr.org/papers/v21/19-021.html"
)
SPARSEMAX_REFERENCE = (
    "Martins, A. F. T. & Astudillo, R. F. (2016). From Softmax to Sparsemax: A Sparse Model of "
    "Attention and Multi-Label Classification. ICML. https://arxiv.org/abs/1602.02068"
)


# -- binary -----------------------------------------------------------------------------------------
def _signed(y_true: Any, x: Any, xp: Any) -> tuple[Any, Any]:
    """``t = -x`` where the label is 1, ``x`` where it is 0, and ``dt/dx``."""
    sign = xp.where(y_true != 0, -xp.ones_like(x), xp.ones_like(x))
    return sign * x, sign


def sparsemax_loss(y_true: Any, y_pred: Any, /, *, xp: Any) -> Any:
    r"""Binary sparsemax loss per element: the "sparse plus" of the signed logit.

    .. math::
        \ell = \operatorname{sparseplus}(t), \quad t = (1 - 2y) x, \quad
        \operatorname{sparseplus}(t) = \begin{cases} 0 & t \le -1 \\ (t + 1)^2 / 4 & |t| < 1 \\
        t & t \ge 1 \end{cases}

    >>> import numpy as np
    >>> sparsemax_loss(np.array([1.0, 0.0, 1.0]), np.array([2.0, 0.0, -3.0]), xp=np).tolist()
    [0.0, 0.25, 3.0]
    """
    t, _ = _signed(y_true, y_pred, xp)
    zero = xp.zeros_like(t)
    return xp.where(t <= -1.0, zero, xp.where(t >= 1.0, t, (t + 1.0) ** 2 / 4.0))


def _sparsemax_loss_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any) -> tuple[Any]:
    t, sign = _signed(y_true, y_pred, xp)
    d = xp.clip((t + 1.0) / 2.0, min=0.0, max=1.0)
    return (sign * d * cot,)


def _binary_kinks(rng: np.random.Generator, inputs: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Put some logits where the piecewise definition switches (t = -1 and t = 1)."""
    out = dict(inputs)
    x = np.array(out["y_pred"], dtype=np.float64).reshape(-1)
    y = np.asarray(out["y_true"]).reshape(-1)
    sign = np.where(y != 0, -1.0, 1.0)
    if x.size >= 2:
        x[0], x[-1] = -1.0 * sign[0], 1.0 * sign[-1]
    out["y_pred"] = x.reshape(np.shape(inputs["y_pred"]))
    return out


SPARSEMAX_BINARY = LossSpec(
    name="sparsemax_loss",
    aliases=("binary_sparsemax_loss", "binary_sparsemax"),
    summary="Binary sparsemax loss: zero once the sparse sigmoid of the logit equals the label.",
    fn=sparsemax_loss,
    vjp=_sparsemax_loss_vjp,
    kinks=_binary_kinks,
    inputs=(
        Input("y_true", "target", "binary", doc="labels in {0, 1}"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="logits (scores)"),
    ),
    tasks=frozenset({"binary", "multilabel"}),
    formula=r"\ell = \operatorname{sparseplus}((1 - 2y)x)",
    references=(FY_REFERENCE,),
    usage=(
        "Binary classification with a sparse (exactly 0 or 1) probability model: margin-like, zero loss "
        "for |x| >= 1 on the right side, quadratic in between. Continuously differentiable: the "
        "gradient is clip((t + 1)/2, 0, 1) times (1 - 2y)."
    ),
    conventions={
        "optax": Convention(
            "optax", "optax.losses.sparsemax_loss", notes="logits; integer or float labels in {0, 1}; unreduced.",
            names={"sparsemax_loss": {}, "binary_sparsemax_loss": {}},
        ),
    },
)


# -- multiclass -------------------------------------------------------------------------------------
def sparsemax(z: Any, *, xp: Any) -> Any:
    r"""Euclidean projection of each row of ``z`` onto the probability simplex.

    .. math:: \operatorname{sparsemax}(z)_i = \max(z_i - \tau, 0), \quad \sum_i \operatorname{sparsemax}(z)_i = 1

    A class is in the support when :math:`1 + k_i z_i > \sum_{j: z_j \ge z_i} z_j` with
    :math:`k_i = |\{j: z_j \ge z_i\}|`; :math:`\tau` is the mean excess over the support.
    """
    zi, zj = xp.expand_dims(z, axis=-1), xp.expand_dims(z, axis=-2)
    ge = xp.astype(zj >= zi, z.dtype)
    k = xp.sum(ge, axis=-1)
    s = xp.sum(ge * zj, axis=-1)
    support = xp.astype(1.0 + k * z > s, z.dtype)
    tau = (xp.sum(support * z, axis=-1, keepdims=True) - 1.0) / xp.sum(support, axis=-1, keepdims=True)
    return xp.clip(z - tau, min=0.0)


def multiclass_sparsemax_loss(y_true: Any, y_pred: Any, /, *, xp: Any) -> Any:
    r"""Multiclass sparsemax loss per sample, integer labels.

    .. math::
        \ell = \langle p, z - z_y \rangle + \tfrac12 (1 - \lVert p \rVert^2), \quad p = \operatorname{sparsemax}(z)

    >>> import numpy as np
    >>> multiclass_sparsemax_loss(np.array([0, 1]), np.array([[3.0, 0.0], [0.0, 0.5]]), xp=np).tolist()
    [0.0, 0.0625]
    """
    p = sparsemax(y_pred, xp=xp)
    z_y = xp.sum(one_hot(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp) * y_pred, axis=-1, keepdims=True)
    return xp.sum(p * (y_pred - z_y), axis=-1) + 0.5 * (1.0 - xp.sum(p * p, axis=-1))


def _multiclass_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any) -> tuple[Any]:
    hot = one_hot(y_true, y_pred.shape[-1], y_pred.dtype, xp=xp)
    return ((sparsemax(y_pred, xp=xp) - hot) * xp.expand_dims(cot, axis=-1),)


MULTICLASS_SPARSEMAX = LossSpec(
    name="multiclass_sparsemax_loss",
    aliases=("sparsemax_cross_entropy", "multiclass_sparsemax"),
    summary="Multiclass sparsemax loss: the Fenchel-Young loss of sparsemax, with integer labels.",
    fn=multiclass_sparsemax_loss,
    vjp=_multiclass_vjp,
    inputs=(
        Input("y_true", "target", "class_index", doc="integer labels, y_pred's shape without its class axis"),
        Input("y_pred", "prediction", "logit", differentiable=True, doc="scores over the last axis"),
    ),
    tasks=frozenset({"multiclass"}),
    formula=r"\ell = \langle p, z - z_y \rangle + \tfrac12(1 - \lVert p\rVert^2),\ p = \operatorname{sparsemax}(z)",
    references=(SPARSEMAX_REFERENCE, FY_REFERENCE),
    usage=(
        "Multi-class classification whose predicted distribution should be sparse (attention, "
        "structured outputs). Zero once the true class's score leads the others by 1. Continuously "
        "differentiable: the gradient sparsemax(z) - onehot(y) is continuous, also at ties."
    ),
    elementwise=False,
    conventions={
        "optax": Convention(
            "optax", "optax.losses.multiclass_sparsemax_loss",
            notes="scores of shape (batch, classes) only (vmapped over the first axis); unreduced.",
            names={"multiclass_sparsemax_loss": {}},
        ),
    },
)

SPECS = (SPARSEMAX_BINARY, MULTICLASS_SPARSEMAX)
