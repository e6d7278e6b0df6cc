"""Metric-learning losses on embeddings: triplet margin, contrastive (Caffe) and Circle (Keras)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from lossbridge.conventions import KERAS_REDUCTION, Convention
from lossbridge.errors import ParameterError
from lossbridge.spec._domain import DOMAINS, Domain, register_domain
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._ops import hinge_part, hinge_part_slope, same_position
from lossbridge.spec._params import Param
from lossbridge.spec._similarity import KINK_GRADIENT, _vectors_last

__all__ = ["CIRCLE", "CONTRASTIVE", "SPECS", "TRIPLET_MARGIN", "circle", "contrastive", "triplet_margin"]

MARGIN = Param("margin", 1.0, "how much farther the negative must be than the positive", low=0.0)
NORM = Param(
    "p", 2.0, "degree of the p-norm distance (torch p, optax norm_degree); finite: the max-norm (torch's "
    "p=inf) is not implemented and is refused, not computed as the p-power form's 1", low=1.0,
    high=float("inf"), high_inclusive=False,
)
EPS = Param("eps", 1e-6, "small constant keeping the distance's gradient finite", low=0.0)
EPS_PLACEMENT = Param(
    "eps_placement", "root", "where eps goes: 'root' = (sum |a - b|^p + eps)^(1/p) (Optax), "
    "'difference' = ||a - b + eps||_p (PyTorch)", kind="choice", choices=("root", "difference"), static=True,
)
TRIPLET_AXIS = Param(
    "axis", -1, "the axis the embeddings lie along (Optax's axis); the values keep the other axes in order",
    kind="int", static=True,
)
SWAP = Param(
    "swap", False, "use min(d(a, n), d(p, n)) as the negative distance (distance swap, Balntas et al.)",
    kind="bool", static=True,
)


class _CallableParam(Param):
    """A parameter holding a user function (PyTorch's ``distance_function``), or None."""

    def validate(self, value: Any, *, owner: str) -> Any:
        if value is None or callable(value):
            return value
        raise ParameterError(f"{owner}: parameter {self.name!r} expects {self.describe()}, got {value!r}")

    def describe(self) -> str:
        return "a callable (x1, x2) -> one distance per row, or None"


DISTANCE_FUNCTION = _CallableParam(
    "distance_function", None, "a user distance d(x1, x2) -> one value per row, called on the backend's own "
    "arrays (PyTorch's TripletMarginWithDistanceLoss); None: the p-norm distance. Its gradient comes from "
    "the framework's autodiff through the callable, not from the spec's closed form",
    kind="array", nullable=True, static=True,
)


def _distance(x1: Any, x2: Any, *, xp: Any, p: Any, eps: Any, eps_placement: str) -> tuple[Any, Any]:
    """``(d, u)``: the p-norm distance over the last axis, and the difference it is taken of."""
    u = x1 - x2 + eps if eps_placement == "difference" else x1 - x2
    total = xp.sum(u * u if _is_two(p) else xp.abs(u) ** p, axis=-1)  # |u|^2 is u * u exactly
    if eps_placement == "root":
        total = total + eps
    return total ** (1.0 / p), u


def _distance_grad(d: Any, u: Any, *, xp: Any, p: Any) -> Any:
    """dd/du = sign(u) |u|^(p-1) / d^(p-1), taken as 0 where ``d`` is exactly 0."""
    positive = d > 0
    safe = xp.where(positive, d, xp.ones_like(d))
    scale = xp.where(positive, safe ** (1.0 - p), xp.zeros_like(d))
    if _is_two(p):  # sign(u) |u|^1 is u exactly
        return u * xp.expand_dims(scale, axis=-1)
    return xp.sign(u) * xp.abs(u) ** (p - 1.0) * xp.expand_dims(scale, axis=-1)


def _is_two(p: Any) -> bool:
    """A literal Python 2 (the Euclidean distance; a traced ``p`` takes the general form)."""
    return isinstance(p, (int, float)) and not isinstance(p, bool) and p == 2


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
    kink_gradient: Any = 0.0,
    axis: int = -1,
    distance_function: Any = None,
) -> Any:
    r"""Triplet margin loss per sample (embeddings on ``axis``, the last by default).

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
    if axis not in (-1, anchor.ndim - 1):  # a static shape decision: the embeddings' axis moved last
        anchor, positive, negative = (_vectors_last(x, axis, xp=xp) for x in (anchor, positive, negative))
    if distance_function is not None:  # a user callable on the backend's arrays (torch's distance_function)
        d_ap, d_an = distance_function(anchor, positive), distance_function(anchor, negative)
        if swap:
            d_an = xp.minimum(d_an, distance_function(positive, negative))
        gap = margin + d_ap - d_an
        return xp.where(gap >= 0, gap, xp.zeros_like(gap))  # autodiff passes the corner, as torch's clamp_min
    kw = {"p": p, "eps": eps, "eps_placement": eps_placement}
    dist = _distances(anchor, positive, negative, xp=xp, swap=swap, **kw)
    d_neg = xp.minimum(dist["an"][0], dist["pn"][0]) if swap else dist["an"][0]
    return hinge_part(margin + dist["ap"][0] - d_neg, xp=xp)


def _triplet_vjp(
    anchor: Any, positive: Any, negative: Any, cot: Any, /, *, xp: Any, margin: Any, swap: bool,
    kink_gradient: Any, axis: int, distance_function: Any = None, **kw: Any,
) -> tuple[Any, Any, Any]:
    if distance_function is not None:
        raise NotImplementedError(
            "triplet_margin: a distance_function callable has no closed-form gradient; the torch backend "
            "differentiates it with torch autograd through the callable"
        )
    if axis not in (-1, anchor.ndim - 1):  # embeddings on another axis: compute on it moved last, move back
        a, p_, n = (_vectors_last(x, axis, xp=xp) for x in (anchor, positive, negative))
        moved = _triplet_vjp(a, p_, n, cot, xp=xp, margin=margin, swap=swap, kink_gradient=kink_gradient, axis=-1, **kw)
        g_a, g_p, g_n = (xp.moveaxis(g, -1, axis) for g in moved)
        return g_a, g_p, g_n
    dist = _distances(anchor, positive, negative, xp=xp, swap=swap, **kw)
    d_ap, d_an = dist["ap"][0], dist["an"][0]
    use_an = xp.ones_like(d_an) if not swap else xp.astype(d_an <= dist["pn"][0], d_an.dtype)
    d_neg = d_an if not swap else xp.minimum(d_an, dist["pn"][0])
    active = hinge_part_slope(margin + d_ap - d_neg, kink_gradient, xp=xp) * cot
    g_ap = _distance_grad(*dist["ap"], xp=xp, p=kw["p"]) * xp.expand_dims(active, axis=-1)
    g_an = _distance_grad(*dist["an"], xp=xp, p=kw["p"]) * xp.expand_dims(active * use_an, axis=-1)
    grads: list[Any] = [g_ap - g_an, -g_ap, g_an]
    if swap:
        weight = xp.expand_dims(active * (1.0 - use_an), axis=-1)
        g_pn = _distance_grad(*dist["pn"], xp=xp, p=kw["p"]) * weight
        grads = [grads[0], grads[1] - g_pn, grads[2] + g_pn]
    return grads[0], grads[1], grads[2]


def _triplet_kinks(rng: np.random.Generator, inputs: dict[str, Any], params: Any) -> dict[str, Any]:
    """Zero distance (positive on the anchor) in some rows; with margin 0, negative on the positive."""
    out = {k: np.array(v, copy=True) for k, v in inputs.items()}
    out["positive"][0::3] = out["anchor"][0::3]
    if float(params.get("margin", 1.0)) == 0.0:
        out["negative"][1::3] = out["positive"][1::3]
    return out


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
    params=(MARGIN, NORM, EPS, EPS_PLACEMENT, SWAP, KINK_GRADIENT, TRIPLET_AXIS, DISTANCE_FUNCTION),
    kinks=_triplet_kinks,
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
        "even p only. PyTorch's TripletMarginWithDistanceLoss with its default distance "
        "(pairwise_distance: p=2, eps=1e-6 added to the difference) is this loss under convention "
        "'torch'. A custom distance_function callable (torch's TripletMarginWithDistanceLoss) is called "
        "on the backend's own arrays, so it is no Array API math and has no closed-form gradient: on the "
        "torch backend the values are differentiated by torch autograd through the callable (the corner "
        "passes the gradient, as torch's clamp_min); NumPy computes values only. "
        "At the hinge's corner the gradient share is kink_gradient: 0 here, 1 in PyTorch, 0.5 in Optax. "
        "axis (Optax's axis) names the embeddings' axis; the values keep the other axes in order "
        "(PyTorch and Keras have no such option: their embeddings lie on the last axis)."
    ),
    elementwise=False,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.TripletMarginLoss", {"eps_placement": "difference", "kink_gradient": 1.0},
            notes="||a - p + eps||_p with eps=1e-6; clamp_min passes the gradient at the corner; mean over the batch.",
            names={"TripletMarginLoss": {}, "TripletMarginWithDistanceLoss": {"p": 2.0, "eps": 1e-6}},
        ),
        "optax": Convention(
            "optax", "optax.losses.triplet_margin_loss", {"kink_gradient": 0.5},
            notes="(sum (a - p)^p + eps)^(1/p); no swap; jnp.maximum splits the corner; unreduced values.",
            names={"triplet_margin_loss": {}},
            kwargs={"norm_degree": "p"},
        ),
    },
)



# -- contrastive (Caffe ContrastiveLoss) -------------------------------------------------------------
def _binary_rows(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    return rng.integers(0, 2, size=shape[:-1]).astype(dtype)


def _check_binary_rows(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    DOMAINS["binary"].check(xp, x, name, pred_shape)  # type: ignore[misc]


if "binary_per_sample" not in DOMAINS:
    register_domain(
        Domain("binary_per_sample", "one label in {0, 1} per sample (pair)", _binary_rows, _check_binary_rows,
               shape="batch")
    )


def _contrastive_parts(a: Any, b: Any, *, xp: Any) -> tuple[Any, Any, Any]:
    diff = a - b
    sq = xp.sum(diff * diff, axis=-1)
    return diff, sq, xp.sqrt(sq)


def contrastive(
    a: Any, b: Any, y: Any, /, *, xp: Any, margin: Any = 1.0, legacy_version: bool = False, grad_eps: Any = 0.0
) -> Any:
    r"""Contrastive loss per pair (Hadsell, Chopra & LeCun), ``y = 1`` for a similar pair.

    .. math:: \ell = \tfrac12\big[y\, d^2 + (1 - y) \max(m - d, 0)^2\big],\quad d = \lVert a - b\rVert_2

    (``legacy_version``: :math:`\tfrac12[y\,d^2 + (1-y)\max(m - d^2, 0)]`, Caffe's first form).

    >>> import numpy as np
    >>> a, b = np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[0.3, 0.4], [0.3, 0.4]])
    >>> contrastive(a, b, np.array([1.0, 0.0]), xp=np).round(6).tolist()
    [0.125, 0.125]
    """
    _, sq, d = _contrastive_parts(a, b, xp=xp)
    if legacy_version:
        apart = hinge_part(margin - sq, xp=xp)
    else:
        gap = hinge_part(margin - d, xp=xp)
        apart = gap * gap
    return 0.5 * xp.where(y != 0, sq, apart)


def _contrastive_vjp(
    a: Any, b: Any, y: Any, cot: Any, /, *, xp: Any, margin: Any, legacy_version: bool, grad_eps: Any
) -> tuple[Any, Any]:
    diff, sq, d = _contrastive_parts(a, b, xp=xp)
    zero = xp.zeros_like(d)
    if legacy_version:
        scale = xp.where(margin - sq > 0, -xp.ones_like(d), zero)
    else:
        gap = margin - d
        denom = d + grad_eps
        safe = xp.where(denom > 0, denom, xp.ones_like(d))
        scale = xp.where((gap > 0) & (denom > 0), -gap / safe, zero)
    scale = xp.where(y != 0, xp.ones_like(d), scale) * cot
    g = xp.expand_dims(scale, axis=-1) * diff
    return g, -g


def _contrastive_kinks(rng: np.random.Generator, inputs: dict[str, Any], params: Any) -> dict[str, Any]:
    """Zero distance for some pairs of each label; the hinge's corner is C^1 except in the legacy form."""
    out = {k: np.array(v, copy=True) for k, v in inputs.items()}
    out["b"][0::3] = out["a"][0::3]
    return out


CONTRASTIVE = LossSpec(
    name="contrastive",
    aliases=("contrastive_loss", "siamese_contrastive"),
    summary="Contrastive loss on pairs: squared distance for similar pairs, squared hinge on margin - distance "
    "for dissimilar ones.",
    fn=contrastive,
    vjp=_contrastive_vjp,
    kinks=_contrastive_kinks,
    inputs=(
        Input("a", "input", "real", differentiable=True, doc="first embedding of each pair"),
        Input("b", "input", "real", differentiable=True, doc="second embedding of each pair"),
        Input("y", "target", "binary_per_sample", doc="1 for a similar pair, 0 for a dissimilar one"),
    ),
    params=(
        Param("margin", 1.0, "distance beyond which a dissimilar pair costs nothing", low=0.0),
        Param("legacy_version", False, "Caffe's first form: max(m - d^2, 0) instead of max(m - d, 0)^2",
              kind="bool", static=True),
        Param("grad_eps", 0.0, "the gradient divides by d + grad_eps (Caffe: 1e-4, so its gradient is "
              "not exactly that of its value); 0 = the exact gradient", low=0.0),
    ),
    tasks=frozenset({"metric_learning"}),
    formula=r"\ell = \tfrac12\left[y\,d^2 + (1-y)\max(m-d,0)^2\right],\ d = \lVert a-b\rVert_2",
    references=(
        "Hadsell, R., Chopra, S. & LeCun, Y. (2006). Dimensionality Reduction by Learning an Invariant "
        "Mapping. CVPR. https://doi.org/10.1109/CVPR.2006.100",
    ),
    usage=(
        "Siamese networks on labelled pairs (y = 1 similar, as in Caffe; Hadsell et al. use the "
        "opposite labels). The mean over pairs is Caffe's sum / 2N. At zero distance the gradient "
        "of a dissimilar pair is taken as 0 (its direction is undefined). Caffe's backward divides "
        "by d + 1e-4 (convention 'caffe' sets grad_eps=1e-4), so its gradient is slightly smaller "
        "than the exact one."
    ),
    elementwise=False,
    conventions={
        "caffe": Convention(
            "caffe", "caffe ContrastiveLossLayer", {"grad_eps": 1e-4},
            notes="sum over pairs / 2N; labels cast to int, nonzero = similar; backward uses d + 1e-4.",
            names={"ContrastiveLoss": {}},
        ),
    },
)


# -- Circle (Keras) ----------------------------------------------------------------------------------
def _masked_logsumexp(z: Any, mask: Any, *, xp: Any) -> tuple[Any, Any]:
    """``(lse, softmax)`` over the masked entries of each row; an empty row gives ``-inf`` and zeros."""
    low = xp.full_like(z, -float("inf"))
    top = xp.max(xp.where(mask, z, low), axis=-1, keepdims=True)
    top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
    e = xp.exp(xp.where(mask, z - top, low))
    total = xp.sum(e, axis=-1, keepdims=True)
    has = total > 0
    safe = xp.where(has, total, xp.ones_like(total))
    lse = xp.where(has, xp.log(safe) + top, xp.full_like(total, -float("inf")))
    return lse[..., 0], e / safe


def _reference(labels: Any, emb: Any, ref_labels: Any, ref_embeddings: Any, *, xp: Any) -> tuple[Any, Any]:
    """The reference set ``(labels, embeddings)``: the given arrays (parameters, in ``emb``'s namespace;
    labels in ``labels``' integer dtype, as Keras casts them), or the batch itself where ``None``."""
    if ref_labels is not None:
        if not hasattr(ref_labels, "__array_namespace__") and hasattr(ref_labels, "shape"):
            ref_labels = np.asarray(ref_labels)
        ref_labels = xp.astype(xp.asarray(ref_labels), labels.dtype)
    if ref_embeddings is not None:
        if not hasattr(ref_embeddings, "__array_namespace__") and hasattr(ref_embeddings, "shape"):
            ref_embeddings = np.asarray(ref_embeddings)
        ref_embeddings = xp.asarray(ref_embeddings, dtype=emb.dtype)
    return (labels if ref_labels is None else ref_labels), (emb if ref_embeddings is None else ref_embeddings)


def _positions(x: Any, *, xp: Any) -> Any:
    """1, 2, ... along the last axis of ``x`` (no Python size needed: a traced batch axis has none)."""
    return xp.cumulative_sum(xp.ones_like(x, dtype=xp.int32), axis=-1)


def _plus(z: Any, *, xp: Any) -> Any:
    """``max(z, 0)`` (NaN stays NaN) against a scalar 0: no zeros array (TensorFlow's graph mode runs
    each op as a pass; the Circle loss makes three of these N x N arrays forward and again backward)."""
    return xp.where(z < 0, 0.0, z)


def _plus_slope(z: Any, kink_gradient: Any, *, xp: Any) -> Any:
    """d max(z, 0) / dz: 1 above 0, 0 below, ``kink_gradient`` at 0 (``hinge_part_grad``'s values)."""
    above = xp.astype(z > 0, z.dtype)
    if isinstance(kink_gradient, (int, float)) and not isinstance(kink_gradient, bool) and kink_gradient == 0:
        return above
    return above + kink_gradient * xp.astype(z == 0, z.dtype)


def _circle_parts(labels: Any, emb: Any, *, xp: Any, gamma: Any, margin: Any, remove_diagonal: bool,
                  ref_labels: Any = None, ref_embeddings: Any = None) -> dict[str, Any]:
    keys, ref = _reference(labels, emb, ref_labels, ref_embeddings, xp=xp)
    raw = 1.0 - emb @ xp.matrix_transpose(ref)
    dist = _plus(raw, xp=xp)
    same = xp.expand_dims(labels, axis=-1) == xp.expand_dims(keys, axis=-2)
    if remove_diagonal and ref_labels is None:
        pos = same & ~same_position(labels, xp=xp)
    elif remove_diagonal:  # Keras's rectangular eye(N, M): query i and reference i
        pos = same & ~(xp.expand_dims(_positions(labels, xp=xp), axis=-1)
                       == xp.expand_dims(_positions(keys, xp=xp), axis=-2))
    else:
        pos = same
    neg = ~same
    pw_raw = (margin + dist) * xp.astype(pos, emb.dtype)
    nw_raw = (1.0 + margin - dist) * xp.astype(neg, emb.dtype)
    pw, nw = _plus(pw_raw, xp=xp), _plus(nw_raw, xp=xp)
    p_logit = -gamma * pw * (margin - dist)
    n_logit = gamma * nw * (1.0 - margin - dist)
    p_lse, p_soft = _masked_logsumexp(p_logit, pos, xp=xp)
    n_lse, n_soft = _masked_logsumexp(n_logit, neg, xp=xp)
    return {"raw": raw, "dist": dist, "pos": pos, "neg": neg, "pw_raw": pw_raw, "nw_raw": nw_raw, "pw": pw,
            "nw": nw, "total": p_lse + n_lse, "p_soft": p_soft, "n_soft": n_soft, "ref": ref}


def circle(
    labels: Any, embeddings: Any, /, *, xp: Any, gamma: Any = 80.0, margin: Any = 0.4, remove_diagonal: bool = True,
    kink_gradient: Any = 0.0, ref_labels: Any = None, ref_embeddings: Any = None,
) -> Any:
    r"""Circle loss per anchor on L2-normalized embeddings (Keras's pair-based form).

    .. math:: \ell_i = \operatorname{softplus}\Big(\operatorname{lse}_{j \in P_i} -\gamma\,[O_p + d_{ij}]_+
        (\Delta_p - d_{ij}) + \operatorname{lse}_{k \in N_i} \gamma\,[O_n - d_{ik}]_+ (\Delta_n - d_{ik})\Big)

    with :math:`d = \max(1 - \langle e_i, r_j\rangle, 0)`, :math:`O_p = \Delta_p = m`,
    :math:`O_n = 1 + m`, :math:`\Delta_n = 1 - m`, over the reference set :math:`r` (``ref_embeddings``
    with ``ref_labels``; the batch itself by default).

    >>> import numpy as np
    >>> e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> circle(np.array([0, 0, 1, 1]), e, xp=np).round(6).tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    p = _circle_parts(labels, embeddings, xp=xp, gamma=gamma, margin=margin, remove_diagonal=remove_diagonal,
                      ref_labels=ref_labels, ref_embeddings=ref_embeddings)
    return xp.logaddexp(xp.zeros_like(p["total"]), p["total"])


def _circle_vjp(labels: Any, emb: Any, cot: Any, /, *, xp: Any, gamma: Any, margin: Any, remove_diagonal: bool,
                kink_gradient: Any, ref_labels: Any = None, ref_embeddings: Any = None) -> tuple[Any]:
    p = _circle_parts(labels, emb, xp=xp, gamma=gamma, margin=margin, remove_diagonal=remove_diagonal,
                      ref_labels=ref_labels, ref_embeddings=ref_embeddings)
    dist, k = p["dist"], kink_gradient
    sig = xp.exp(-xp.logaddexp(xp.zeros_like(p["total"]), -p["total"]))
    d_pw = xp.astype(p["pos"], emb.dtype) * _plus_slope(p["pw_raw"], k, xp=xp)
    d_nw = -xp.astype(p["neg"], emb.dtype) * _plus_slope(p["nw_raw"], k, xp=xp)
    dp = -gamma * (d_pw * (margin - dist) - p["pw"])
    dn = gamma * (d_nw * (1.0 - margin - dist) - p["nw"])
    d_dist = xp.expand_dims(sig * cot, axis=-1) * (p["p_soft"] * dp + p["n_soft"] * dn)
    d_sim = -d_dist * _plus_slope(p["raw"], k, xp=xp)
    if ref_embeddings is not None:  # a separate reference set: a constant (only the queries are differentiated)
        return (d_sim @ p["ref"],)
    return ((d_sim + xp.matrix_transpose(d_sim)) @ emb,)


def _circle_kinks(rng: np.random.Generator, inputs: dict[str, Any], params: Any) -> dict[str, Any]:
    """Two same-label rows on one axis vector: cosine distance exactly 0 (the clamp's corner)."""
    out = {k: np.array(v, copy=True) for k, v in inputs.items()}
    emb, labels = out["embeddings"], out["labels"]
    if emb.shape[-2] >= 2:
        labels[..., 1] = labels[..., 0]
        emb[..., 0:2, :] = 0.0
        emb[..., 0:2, 0] = 1.0
    return out


CIRCLE = LossSpec(
    name="circle",
    aliases=("circle_loss",),
    summary="Circle loss: pair similarities re-weighted by how far each is from its optimum, on unit embeddings.",
    fn=circle,
    vjp=_circle_vjp,
    kinks=_circle_kinks,
    inputs=(
        Input("labels", "target", "group_label", doc="one integer class per sample"),
        Input("embeddings", "prediction", "real", differentiable=True, doc="L2-normalized embeddings, one row each"),
    ),
    params=(
        Param("gamma", 80.0, "scale of the similarity logits", low=0.0, low_inclusive=False),
        Param("margin", 0.4, "relaxation m: optima 1 + m / -m, decision margins 1 - m / m", low=0.0),
        Param("remove_diagonal", True, "leave each sample out of its own positives", kind="bool", static=True),
        KINK_GRADIENT,
        Param("ref_labels", None, "labels of a separate reference set (M,) (Keras ref_labels); None: the "
              "batch's labels", kind="array", nullable=True, static=True),
        Param("ref_embeddings", None, "L2-normalized embeddings of a separate reference set (M, D) (Keras "
              "ref_embeddings), a constant of the loss; None: the batch itself", kind="array", nullable=True,
              static=True),
    ),
    tasks=frozenset({"metric_learning"}),
    formula=r"\ell_i = \operatorname{softplus}\big(\operatorname{lse}_{j\in P_i} -\gamma[m+d_{ij}]_+(m-d_{ij}) + "
    r"\operatorname{lse}_{k\in N_i}\gamma[1+m-d_{ik}]_+(1-m-d_{ik})\big)",
    references=(
        "Sun, Y. et al. (2020). Circle Loss: A Unified Perspective of Pair Similarity Optimization. CVPR. "
        "https://arxiv.org/abs/2002.10857",
    ),
    usage=(
        "Deep metric learning with class labels; feed unit-norm embeddings (no normalization is done "
        "here, as in Keras). Couples samples: pass the whole batch. A row without positives or "
        "negatives gives 0. Keras masks rows whose loss is exactly 0 out of its mean's denominator "
        "(set_keras_mask): the keras convention declares it as reduction data (Reduction.mask_zero), "
        "so its mean divides by the number (or summed weights) of non-zero rows, and 0 when none is "
        "left; lossbridge's own mean counts them as 0 terms. Corners (distance exactly 0, zero weights) take "
        "kink_gradient of the active side: 1 under Keras (TensorFlow's maximum). A separate reference set "
        "(keras.losses.circle's ref_labels= / ref_embeddings=, e.g. a memory bank) is given as parameters: "
        "distances are then taken from each batch row to each reference row, remove_diagonal drops the pairs "
        "(i, i) of Keras's rectangular eye(N, M), and the reference embeddings are constants (the gradient is "
        "the batch's only; Keras also differentiates through ref_embeddings when they are a model's output)."
    ),
    elementwise=False,
    coupled=True,
    min_ndim=2,
    conventions={
        "keras": Convention(
            "keras", "keras.losses.Circle", {"kink_gradient": 1.0},
            reduction=replace(KERAS_REDUCTION, mask_zero=True),
            notes="per-sample softplus values; mean over the batch (rows of exactly 0 are masked out).",
            names={"Circle": {}, "circle": {}},
        ),
    },
)

SPECS = (TRIPLET_MARGIN, CONTRASTIVE, CIRCLE)
