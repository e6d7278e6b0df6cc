"""Similarity losses on embeddings: cosine similarity / distance, cosine embedding, NT-Xent.

Every cosine here is one helper, :func:`cosine`, whose only framework difference is where the small
constant guarding a zero vector goes: Keras floors each norm at ``eps`` (``x * min(rsqrt(|x|^2),
1/eps)``), Optax floors each squared norm (``sqrt(max(|x|^2, eps))``) and PyTorch's
``CosineEmbeddingLoss`` adds ``eps`` to each squared norm. ``keras.losses.CosineSimilarity`` is
``-cos`` and ``optax.losses.cosine_similarity`` is ``+cos``: one spec with a ``form`` parameter,
each framework's name resolving to its own sign.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossbridge.conventions import Convention, Reduction
from lossbridge.spec._domain import DOMAINS, Domain, register_domain
from lossbridge.spec._model import Input, LossSpec, Masking
from lossbridge.spec._ops import hinge_part_slope, same_position
from lossbridge.spec._params import Param

__all__ = [
    "COSINE_EMBEDDING",
    "COSINE_SIMILARITY",
    "KINK_GRADIENT",
    "NTXENT",
    "SPECS",
    "cosine",
    "cosine_embedding",
    "cosine_similarity",
    "ntxent",
]


# -- domains: one label per sample (shape of the embeddings without their last axis) ---------------
def _sign_rows(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    return (2 * rng.integers(0, 2, size=shape[:-1]) - 1).astype(dtype)


def _group_rows(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    n = int(np.prod(shape[:-1]))
    return rng.permutation(np.arange(n) // 2).astype(np.int64).reshape(shape[:-1])


def _check_sign_rows(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    DOMAINS["sign"].check(xp, x, name, pred_shape)  # type: ignore[misc]


if "sign_per_sample" not in DOMAINS:
    register_domain(
        Domain("sign_per_sample", "one label in {-1, 1} per sample (pair)", _sign_rows, _check_sign_rows, shape="batch")
    )
if "group_label" not in DOMAINS:
    register_domain(
        Domain(
            "group_label",
            "one integer group label per sample; equal labels mark positive pairs",
            _group_rows,
            shape="batch",
            integer=True,
        )
    )

# -- the one cosine ---------------------------------------------------------------------------------
EPS_FORM = Param(
    "eps_form", "clamp_norm", "where eps guards a zero vector: 'clamp_norm' = max(|x|, eps) (Keras), "
    "'clamp_squared' = sqrt(max(|x|^2, eps)) (Optax), 'add_squared' = sqrt(|x|^2 + eps) (PyTorch)",
    kind="choice", choices=("clamp_norm", "clamp_squared", "add_squared"), static=True,
)
AXIS = Param("axis", -1, "the feature axis (only the last one)", kind="choice", choices=(-1,), static=True)
VECTOR_AXIS = Param("axis", -1, "the axis the vectors lie along (Keras CosineSimilarity axis); the values "
                    "keep the other axes in order", kind="int", static=True)


def _norm(x: Any, *, xp: Any, eps: Any, eps_form: str) -> tuple[Any, Any]:
    """``(n, active)``: the guarded norm over the last axis (keepdims) and where it depends on ``x``."""
    sq = xp.sum(x * x, axis=-1, keepdims=True)
    if eps_form == "add_squared":
        return xp.sqrt(sq + eps), xp.ones_like(sq)
    if eps_form == "clamp_squared":
        return xp.sqrt(xp.maximum(sq, xp.zeros_like(sq) + eps)), xp.astype(sq >= eps, x.dtype)
    norm = xp.sqrt(sq)
    return xp.maximum(norm, xp.zeros_like(norm) + eps), xp.astype(norm >= eps, x.dtype)


def cosine(a: Any, b: Any, *, xp: Any, eps: Any, eps_form: str) -> Any:
    r"""Cosine of the angle between ``a`` and ``b`` over the last axis, with guarded norms.

    .. math:: \cos(a, b) = \frac{\sum_k a_k b_k}{n(a)\, n(b)}
    """
    na, _ = _norm(a, xp=xp, eps=eps, eps_form=eps_form)
    nb, _ = _norm(b, xp=xp, eps=eps, eps_form=eps_form)
    return xp.sum(a * b, axis=-1) / (na[..., 0] * nb[..., 0])


def _cosine_grads(a: Any, b: Any, *, xp: Any, eps: Any, eps_form: str) -> tuple[Any, Any, Any]:
    """``(cos, dcos/da, dcos/db)``; a floored norm is constant (gradient 0 through it)."""
    na, act_a = _norm(a, xp=xp, eps=eps, eps_form=eps_form)
    nb, act_b = _norm(b, xp=xp, eps=eps, eps_form=eps_form)
    cos = xp.sum(a * b, axis=-1, keepdims=True) / (na * nb)
    ga = b / (na * nb) - cos * act_a * a / (na * na)
    gb = a / (na * nb) - cos * act_b * b / (nb * nb)
    return cos[..., 0], ga, gb


# -- cosine similarity / distance ------------------------------------------------------------------
FORM = Param(
    "form", "negative", "'negative' = -cos (Keras CosineSimilarity), 'similarity' = +cos (Optax "
    "cosine_similarity), 'distance' = 1 - cos (Optax cosine_distance)",
    kind="choice", choices=("negative", "similarity", "distance"), static=True,
)
COS_EPS = Param("eps", 1e-7, "floor guarding the norm of a zero vector (see eps_form)", low=0.0)
_SIGN = {"negative": -1.0, "similarity": 1.0, "distance": -1.0}


def cosine_similarity(
    y_true: Any, y_pred: Any, /, *, xp: Any, form: str = "negative", eps: Any = 1e-7,
    eps_form: str = "clamp_norm", axis: int = -1,
) -> Any:
    r"""Cosine similarity as a loss, per sample over the vectors' axis (``axis``, the last by default).

    .. math:: \ell(y, \hat y) = -\cos(y, \hat y) \quad (\text{or } +\cos,\ 1 - \cos)

    >>> import numpy as np
    >>> cosine_similarity(np.array([[0.0, 1.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [2.0, 2.0]]), xp=np).round(6)
    array([-0., -1.])
    """
    y_true, y_pred = _vectors_last(y_true, axis, xp=xp), _vectors_last(y_pred, axis, xp=xp)
    cos = cosine(y_pred, y_true, xp=xp, eps=eps, eps_form=eps_form)
    return 1.0 - cos if form == "distance" else _SIGN[form] * cos


def _vectors_last(x: Any, axis: int, *, xp: Any) -> Any:
    """``x`` with its vector axis ``axis`` moved last (a static shape decision)."""
    return x if axis in (-1, x.ndim - 1) else xp.moveaxis(x, axis, -1)


def _cosine_similarity_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, form: str, axis: int = -1,
                           **kw: Any) -> tuple[Any]:
    ndim = y_pred.ndim
    _, g_pred, _ = _cosine_grads(_vectors_last(y_pred, axis, xp=xp), _vectors_last(y_true, axis, xp=xp), xp=xp, **kw)
    g = _SIGN[form] * xp.expand_dims(cot, axis=-1) * g_pred
    return (g if axis in (-1, ndim - 1) else xp.moveaxis(g, -1, axis),)


COSINE_SIMILARITY = LossSpec(
    name="cosine_similarity",
    # a masked coordinate (Optax's where=) is 0 in both vectors: it adds nothing to the dot product or the norms
    masking=Masking({"y_pred": "zero", "y_true": "zero"}),
    aliases=("cosine_loss", "negative_cosine_similarity"),
    summary="Cosine similarity between prediction and target vectors as a loss: -cos, +cos or 1 - cos.",
    fn=cosine_similarity,
    vjp=_cosine_similarity_vjp,
    inputs=(
        Input("y_true", "target", "real", doc="target vectors, features on the last axis"),
        Input("y_pred", "prediction", "real", differentiable=True, doc="predicted vectors"),
    ),
    params=(FORM, COS_EPS, EPS_FORM, VECTOR_AXIS),
    tasks=frozenset({"regression", "metric_learning"}),
    formula=r"\ell = -\frac{\langle y, \hat y\rangle}{\max(\lVert y\rVert, \epsilon)"
    r"\max(\lVert \hat y\rVert, \epsilon)}",
    references=(
        "Singhal, A. (2001). Modern Information Retrieval: A Brief Overview. IEEE Data Eng. Bull. 24(4). "
        "http://sites.computer.org/debull/A01DEC-CD.pdf",
    ),
    usage=(
        "Match the direction, not the length, of a predicted vector (embeddings, normalized "
        "regression targets). Keras's CosineSimilarity returns -cos (minimized at -1); Optax's "
        "cosine_similarity returns +cos (a similarity, not a loss) and cosine_distance 1 - cos: the "
        "name 'cosine_similarity' means each framework's own sign under its convention. A zero "
        "vector gives 0 (its norm is floored at eps); the gradient through a floored norm is 0. "
        "axis (Keras's CosineSimilarity(axis=...), Optax's axis) names the vectors' axis; the values "
        "keep the other axes, in order."
    ),
    elementwise=False,
    conventions={
        "keras": Convention(
            "keras", "keras.losses.CosineSimilarity", {"form": "negative", "eps": 1e-7, "eps_form": "clamp_norm"},
            notes="-cos with each norm floored at 1e-7 (l2-normalize); mean over the batch.",
            names={"CosineSimilarity": {}, "cosine_similarity": {}},
        ),
        "optax": Convention(
            "optax", "optax.losses.cosine_similarity", {"form": "similarity", "eps": 0.0, "eps_form": "clamp_squared"},
            notes="+cos (cosine_distance: 1 - cos); squared norms floored at epsilon=0; unreduced.",
            names={"cosine_similarity": {}, "cosine_distance": {"form": "distance"}},
            kwargs={"epsilon": "eps"},
        ),
    },
)


# -- cosine embedding (PyTorch) --------------------------------------------------------------------
#: PyTorch adds ``EPSILON = 1e-12`` held as a C++ float: float32(1e-12) = 9.999999960041972e-13.
TORCH_COSINE_EPS = float(np.float32(1e-12))
KINK_GRADIENT = Param(
    "kink_gradient", 0.0, "share of the active side's gradient at the hinge's corner (argument exactly "
    "0): 0 (lossbridge), 1 (PyTorch's clamp_min, TensorFlow's maximum), 0.5 (jnp.maximum)", low=0.0, high=1.0,
)


def _embedding_parts(x1: Any, x2: Any, y: Any, *, xp: Any, margin: Any, eps: Any, eps_form: str) -> tuple[Any, ...]:
    cos = cosine(x1, x2, xp=xp, eps=eps, eps_form=eps_form)
    return cos, y == 1, y == -1, cos - margin


def cosine_embedding(
    x1: Any, x2: Any, y: Any, /, *, xp: Any, margin: Any = 0.0, eps: Any = TORCH_COSINE_EPS,
    eps_form: str = "add_squared", kink_gradient: Any = 0.0,
) -> Any:
    r"""Cosine embedding loss per pair: pull similar pairs together, push dissimilar ones apart.

    .. math:: \ell = \begin{cases} 1 - \cos(x_1, x_2) & y = 1 \\ \max(0, \cos(x_1, x_2) - m) & y = -1 \end{cases}

    >>> import numpy as np
    >>> x1, x2 = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> cosine_embedding(x1, x2, np.array([1.0, -1.0]), xp=np, eps=0.0).round(6).tolist()
    [1.0, 0.707107]
    """
    cos, pos, neg, hinge = _embedding_parts(x1, x2, y, xp=xp, margin=margin, eps=eps, eps_form=eps_form)
    zero = xp.zeros_like(cos)
    return xp.where(pos, 1.0 - cos, zero) + xp.where(neg, xp.maximum(hinge, zero), zero)


def _cosine_embedding_vjp(
    x1: Any, x2: Any, y: Any, cot: Any, /, *, xp: Any, margin: Any, eps: Any, eps_form: str, kink_gradient: Any
) -> tuple[Any, Any]:
    _, pos, neg, hinge = _embedding_parts(x1, x2, y, xp=xp, margin=margin, eps=eps, eps_form=eps_form)
    _, g1, g2 = _cosine_grads(x1, x2, xp=xp, eps=eps, eps_form=eps_form)
    on = hinge_part_slope(hinge, kink_gradient, xp=xp)
    dcos = xp.where(pos, -xp.ones_like(hinge), xp.where(neg, on, xp.zeros_like(on))) * cot
    dcos = xp.expand_dims(dcos, axis=-1)
    return dcos * g1, dcos * g2


def _embedding_kinks(rng: np.random.Generator, inputs: dict[str, Any], params: Any) -> dict[str, Any]:
    """Dissimilar pairs moved so that cos(x1, x2) is exactly the margin (for margin 0: orthogonal)."""
    out = {k: np.array(v, copy=True) for k, v in inputs.items()}
    x1, x2 = out["x1"], out["x2"]
    if x1.shape[-1] >= 2 and float(params.get("margin", 0.0)) == 0.0:
        rows = np.arange(0, x1.shape[0], 2)
        x2[rows] = 0.0
        x1[rows, 1:] = 0.0
        x2[rows, 1] = 1.5
        out["y"][rows] = -1.0
    return out


COSINE_EMBEDDING = LossSpec(
    name="cosine_embedding",
    aliases=("cosine_embedding_loss",),
    summary="Cosine embedding loss on pairs: 1 - cos for similar pairs, max(0, cos - margin) for dissimilar.",
    fn=cosine_embedding,
    vjp=_cosine_embedding_vjp,
    kinks=_embedding_kinks,
    inputs=(
        Input("x1", "prediction", "real", differentiable=True, doc="first embedding of each pair"),
        Input("x2", "prediction", "real", differentiable=True, doc="second embedding of each pair"),
        Input("y", "target", "sign_per_sample", doc="1 for a similar pair, -1 for a dissimilar one"),
    ),
    params=(
        Param("margin", 0.0, "cosine above which a dissimilar pair is penalized", low=-1.0, high=1.0),
        Param("eps", TORCH_COSINE_EPS, "constant guarding a zero vector (see eps_form)", low=0.0),
        Param(
            "eps_form", "add_squared", "where eps goes (as cosine_similarity's eps_form)", kind="choice",
            choices=("clamp_norm", "clamp_squared", "add_squared"), static=True,
        ),
        KINK_GRADIENT,
    ),
    tasks=frozenset({"metric_learning"}),
    formula=r"\ell = [y = 1](1 - \cos(x_1, x_2)) + [y = -1]\max(0, \cos(x_1, x_2) - m)",
    references=(
        "Bromley, J. et al. (1993). Signature Verification using a Siamese Time Delay Neural Network. "
        "NeurIPS. https://papers.nips.cc/paper/769-signature-verification-using-a-siamese-time-delay-neural-network",
    ),
    usage=(
        "Siamese training on labelled pairs. Dissimilar pairs stop contributing once their cosine "
        "is below the margin (0 to 0.5 is typical). At cos = margin the gradient is 0 by default; "
        "PyTorch passes the active side's (convention 'torch' sets kink_gradient=1)."
    ),
    elementwise=False,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.CosineEmbeddingLoss", {"kink_gradient": 1.0},
            notes="squared norms + float32(1e-12); labels other than +-1 give 0; mean over pairs.",
            names={"CosineEmbeddingLoss": {}},
        ),
    },
)


# -- NT-Xent (Optax) -------------------------------------------------------------------------------
def _ntxent_parts(embeddings: Any, labels: Any, *, xp: Any, temperature: Any, eps: Any) -> dict[str, Any]:
    eps = float(xp.finfo(embeddings.dtype).eps) if eps is None else eps
    norm, active = _norm(embeddings, xp=xp, eps=eps, eps_form="clamp_squared")
    unit = embeddings / norm
    cos = unit @ xp.matrix_transpose(unit)
    same = xp.expand_dims(labels, axis=-1) == xp.expand_dims(labels, axis=-2)
    match, diff = same & ~same_position(labels, xp=xp), ~same
    x = cos / temperature
    low = xp.full_like(x, -float("inf"))
    shift = xp.max(xp.where(match | diff, x, low), axis=-1, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))
    e = xp.exp(x - shift)
    neg_sum = xp.sum(xp.where(diff, e, xp.zeros_like(e)), axis=-1, keepdims=True)
    denom = e + neg_sum
    pairs = xp.sum(xp.astype(match, x.dtype))
    anchors = xp.sum(xp.ones_like(labels, dtype=x.dtype))  # a count: the batch size may be unknown (None)
    return {"norm": norm, "active": active, "cos": cos, "match": match, "diff": diff, "x": x,
            "shift": shift, "e": e, "denom": denom, "scale": anchors / pairs}


def ntxent(labels: Any, embeddings: Any, /, *, xp: Any, temperature: Any = 0.07, eps: Any = None) -> Any:
    r"""NT-Xent per anchor, scaled so that the mean over anchors is the mean over positive pairs.

    .. math:: \ell = \frac{1}{|P|}\sum_{(i, j) \in P} -\log \frac{e^{s_{ij}/\tau}}{e^{s_{ij}/\tau} +
        \sum_{k: y_k \ne y_i} e^{s_{ik}/\tau}}

    >>> import numpy as np
    >>> e = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    >>> float(np.mean(ntxent(np.array([0, 0, 1, 1]), e, xp=np, temperature=0.1))) < 0.01
    True
    """
    p = _ntxent_parts(embeddings, labels, xp=xp, temperature=temperature, eps=eps)
    terms = xp.log(p["denom"]) - (p["x"] - p["shift"])
    per_anchor = xp.sum(xp.where(p["match"], terms, xp.zeros_like(terms)), axis=-1)
    return per_anchor * p["scale"]


def _ntxent_vjp(labels: Any, embeddings: Any, cot: Any, /, *, xp: Any, temperature: Any, eps: Any) -> tuple[Any]:
    p = _ntxent_parts(embeddings, labels, xp=xp, temperature=temperature, eps=eps)
    zero = xp.zeros_like(p["x"])
    w = xp.expand_dims(cot, axis=-1) * p["scale"]
    ratio = p["e"] / p["denom"]
    reciprocal = xp.sum(xp.where(p["match"], 1.0 / p["denom"], zero), axis=-1, keepdims=True)
    grad_x = xp.where(p["match"], ratio - 1.0, zero) + xp.where(p["diff"], p["e"] * reciprocal, zero)
    h = (w * grad_x + xp.matrix_transpose(w * grad_x)) / temperature
    unit = embeddings / p["norm"]
    along = xp.sum(h * p["cos"], axis=-1, keepdims=True)
    grad = (h @ unit) / p["norm"] - along * p["active"] * embeddings / (p["norm"] * p["norm"])
    return (grad,)


NTXENT = LossSpec(
    name="ntxent",
    aliases=("nt_xent", "normalized_temperature_cross_entropy", "simclr_loss"),
    summary="NT-Xent (SimCLR): each positive pair's cosine against the anchor's negatives, softmax at temperature.",
    fn=ntxent,
    vjp=_ntxent_vjp,
    inputs=(
        Input("labels", "target", "group_label", doc="one integer per sample; equal labels are positive pairs"),
        Input("embeddings", "prediction", "real", differentiable=True, doc="embeddings, one row per sample"),
    ),
    params=(
        Param("temperature", 0.07, "softmax temperature dividing each cosine", low=0.0, low_inclusive=False),
        Param("eps", None, "floor of each squared norm; None = the machine epsilon of the dtype (Optax)",
              low=0.0, nullable=True, static=True),
    ),
    tasks=frozenset({"metric_learning"}),
    formula=r"\ell = \frac{1}{|P|}\sum_{(i,j)\in P} -\log\frac{e^{s_{ij}/\tau}}"
    r"{e^{s_{ij}/\tau}+\sum_{k: y_k\ne y_i}e^{s_{ik}/\tau}}",
    references=(
        "Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020). A Simple Framework for Contrastive "
        "Learning of Visual Representations. ICML. https://arxiv.org/abs/2002.05709",
    ),
    usage=(
        "Self-supervised contrastive learning: two augmented views of each item share a label. Each "
        "positive pair is contrasted with the anchor's negatives only (other positives are not in "
        "the denominator). Values are per anchor, scaled by N / (number of positive pairs), so their "
        "mean is Optax's scalar; a batch without any positive pair is NaN, as in Optax. Couples "
        "samples: the whole batch must be passed at once."
    ),
    elementwise=False,
    coupled=True,
    min_ndim=2,
    conventions={
        "optax": Convention(
            "optax", "optax.losses.ntxent", reduction=Reduction("mean", feature_mean=False, normalize_by="weights"),
            notes="returns the scalar mean over positive pairs: the 'mean' of lossbridge's per-anchor values.",
            names={"ntxent": {}},
        ),
    },
)

SPECS = (COSINE_SIMILARITY, COSINE_EMBEDDING, NTXENT)
