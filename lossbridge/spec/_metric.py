"""Metric-learning losses: the triplet margin loss on embeddings."""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import hinge_part
from lossbridge.spec._params import Param

__all__ = ["SPECS", "TRIPLET_MARGIN", "triplet_margin"]

MARGIN = Param("margin", 1.0, "how much farther the negative must be than the positive", low=0.0)
NORM = Param("p", 2.0, "degree of the p-norm distance (torch p, optax norm_degree)", low=1.0)
EPS = Param("eps", 1e-6, "small constant keeping the distance's gradient finite", low=0.0)
EPS_PLACEMENT = Param(
    "eps_placement", "root", "where eps goes: 'root' = (sum |a - b|^p + eps)^(1/p) (Optax), "
    "'difference' = ||a - b + eps||_p (PyTorch)", kind="choice", choices=("root", "difference"), static=True,
)
SWAP = Param(
    "swap", False, "use min(d(a, n), d(p, n)) as the negative distance (distance swap, Balntas et al.)",
    kind="bool", static=True,
)


def _distance(x1: Any, x2: Any, *, xp: Any, p: Any, eps: Any, eps_placement: str) -> tuple[Any, Any]:
    """``(d, u)``: the p-norm distance over the last axis, and the difference it is taken of."""
    u = x1 - x2 + eps if eps_placement == "difference" else x1 - x2
    total = xp.sum(xp.abs(u) ** p, axis=-1)
    if eps_placement == "root":
        total = total + eps
    return total ** (1.0 / p), u


def _distance_grad(d: Any, u: Any, *, xp: Any, p: Any) -> Any:
    """dd/du = sign(u) |u|^(p-1) / d^(p-1), taken as 0 where ``d`` is exactly 0."""
    positive = d > 0
    safe = xp.where(positive, d, xp.ones_like(d))
    scale = xp.where(positive, safe ** (1.0 - p), xp.zeros_like(d))
    return xp.sign(u) * xp.abs(u) ** (p - 1.0) * xp.expand_dims(scale, axis=-1)


def _distances(
    anchor: Any, positive: Any, negative: Any, *, xp: Any, swap: bool, **kw: Any
) -> dict[str, Any]:
    out = {"ap": _distance(anchor, positive, xp=xp, **kw), "an": _distance(anchor, negative, xp=xp, **kw)}
    if swap:
        out["pn"] = _distance(positive, negative, xp=xp, **kw)
    return out


def triplet_margin(
    anchor: Any,
    positive: Any,
    negative: Any,
    /,
    *,
    xp: Any,
    margin: Any = 1.0,
    p: Any = 2.0,
    eps: Any = 1e-6,
    eps_placement: str = "root",
    swap: bool = False,
) -> Any:
    r"""Triplet margin loss per sample (embeddings on the last axis).

    .. math::
        \ell(a, p, n) = \max\big(0,\ m + d(a, p) - d(a, n)\big), \quad
        d(x, z) = \Big(\sum_k |x_k - z_k|^{q} + \epsilon\Big)^{1/q}

    (with ``eps_placement="difference"``: :math:`d(x, z) = \lVert x - z + \epsilon\rVert_q`; with
    ``swap``: :math:`d(a, n)` is replaced by :math:`\min(d(a, n), d(p, n))`).

    >>> import numpy as np
    >>> a, pos, neg = np.array([[0.0, 0.0]]), np.array([[0.0, 0.5]]), np.array([[1.0, 0.0]])
    >>> np.round(triplet_margin(a, pos, neg, xp=np, eps=0.0), 6).tolist()
    [0.5]
    """
    kw = {"p": p, "eps": eps, "eps_placement": eps_placement}
    dist = _distances(anchor, positive, negative, xp=xp, swap=swap, **kw)
    d_neg = xp.minimum(dist["an"][0], dist["pn"][0]) if swap else dist["an"][0]
    return hinge_part(margin + dist["ap"][0] - d_neg, xp=xp)


def _triplet_vjp(
    anchor: Any, positive: Any, negative: Any, cot: Any, /, *, xp: Any, margin: Any, swap: bool, **kw: Any
) -> tuple[Any, Any, Any]:
    dist = _distances(anchor, positive, negative, xp=xp, swap=swap, **kw)
    d_ap, d_an = dist["ap"][0], dist["an"][0]
    use_an = xp.ones_like(d_an) if not swap else xp.astype(d_an <= dist["pn"][0], d_an.dtype)
    d_neg = d_an if not swap else xp.minimum(d_an, dist["pn"][0])
    active = xp.astype(margin + d_ap - d_neg > 0, cot.dtype) * cot
    g_ap = _distance_grad(*dist["ap"], xp=xp, p=kw["p"]) * xp.expand_dims(active, axis=-1)
    g_an = _distance_grad(*dist["an"], xp=xp, p=kw["p"]) * xp.expand_dims(active * use_an, axis=-1)
    grads = [g_ap - g_an, -g_ap, g_an]
    if swap:
        weight = xp.expand_dims(active * (1.0 - use_an), axis=-1)
        g_pn = _distance_grad(*dist["pn"], xp=xp, p=kw["p"]) * weight
        grads = [grads[0], grads[1] - g_pn, grads[2] + g_pn]
    return tuple(grads)


_EMBEDDING = "embeddings, one vector per sample on the last axis"

TRIPLET_MARGIN = LossSpec(
    name="triplet_margin",
    aliases=("triplet", "triplet_loss", "triplet_margin_loss"),
    summary="Triplet margin loss: pull the positive within margin of the anchor, push the negative beyond.",
    fn=triplet_margin,
    vjp=_triplet_vjp,
    inputs=(
        Input("anchor", "input", "real", differentiable=True, doc=_EMBEDDING),
        Input("positive", "input", "real", differentiable=True, doc="same-class " + _EMBEDDING),
        Input("negative", "input", "real", differentiable=True, doc="other-class " + _EMBEDDING),
    ),
    params=(MARGIN, NORM, EPS, EPS_PLACEMENT, SWAP),
    tasks=frozenset({"metric_learning"}),
    formula=r"\ell = \max(0,\ m + d(a, p) - d(a, n)),\ d(x, z) = (\sum_k |x_k - z_k|^q + \epsilon)^{1/q}",
    references=(
        "Schroff, F., Kalenichenko, D. & Philbin, J. (2015). FaceNet: A Unified Embedding for Face "
        "Recognition and Clustering. CVPR. https://arxiv.org/abs/1503.03832",
        "Balntas, V. et al. (2016). Learning local feature descriptors with triplets and shallow "
        "convolutional neural networks. BMVC. https://doi.org/10.5244/C.30.119",
    ),
    usage=(
        "Metric learning from (anchor, positive, negative) triplets; mining hard triplets matters "
        "more than the exact form. lossbridge puts eps inside the root (as Optax): the distance is "
        "symmetric and its gradient finite at zero distance. PyTorch adds eps to the difference "
        "(convention='torch'), which shifts every coordinate and is not symmetric in its inputs. "
        "Optax raises the raw difference to the power (no absolute value), so it equals this for "
        "even p only."
    ),
    elementwise=False,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.TripletMarginLoss", {"eps_placement": "difference"},
            notes="||a - p + eps||_p with eps=1e-6; mean over the batch.",
        ),
        "optax": Convention(
            "optax", "optax.losses.triplet_margin_loss",
            notes="(sum (a - p)^p + eps)^(1/p); no swap; unreduced values.",
        ),
    },
)

SPECS = (TRIPLET_MARGIN,)
