"""Ranking losses: the pairwise margin ranking loss and the listwise softmax ranking loss."""

from __future__ import annotations

from typing import Any

import numpy as np

from lossbridge.conventions import Convention, Reduction
from lossbridge.errors import InputError
from lossbridge.spec._domain import DOMAINS, Domain, register_domain
from lossbridge.spec._model import Input, LossSpec, Masking
from lossbridge.spec._ops import hinge_part, hinge_part_slope, log_softmax, softmax
from lossbridge.spec._params import Param
from lossbridge.spec._similarity import KINK_GRADIENT

__all__ = ["MARGIN_RANKING", "RANKING_SOFTMAX", "SPECS", "margin_ranking", "ranking_softmax"]


# -- margin ranking (PyTorch) ----------------------------------------------------------------------
def margin_ranking(x1: Any, x2: Any, y: Any, /, *, xp: Any, margin: Any = 0.0, kink_gradient: Any = 0.0) -> Any:
    r"""Pairwise margin ranking loss per element: ``y = 1`` when ``x1`` should rank above ``x2``.

    .. math:: \ell(x_1, x_2, y) = \max\big(0,\ -y (x_1 - x_2) + m\big)

    >>> import numpy as np
    >>> margin_ranking(np.array([1.0, 0.2]), np.array([0.5, 0.7]), np.array([1.0, 1.0]), xp=np, margin=0.1).tolist()
    [0.0, 0.6]
    """
    return hinge_part(margin - y * (x1 - x2), xp=xp)


def _margin_ranking_vjp(
    x1: Any, x2: Any, y: Any, cot: Any, /, *, xp: Any, margin: Any, kink_gradient: Any
) -> tuple[Any, Any]:
    g = -y * hinge_part_slope(margin - y * (x1 - x2), kink_gradient, xp=xp) * cot
    return g, -g


def _margin_ranking_kinks(rng: np.random.Generator, inputs: dict[str, Any], params: Any) -> dict[str, Any]:
    """Every other element moved exactly onto the corner ``y (x1 - x2) = margin`` (when representable)."""
    out = {k: np.array(v, copy=True) for k, v in inputs.items()}
    x1, x2, y = out["x1"].reshape(-1), out["x2"].reshape(-1), out["y"].reshape(-1)
    margin = float(params.get("margin", 0.0))
    for k in range(0, x1.size, 2):
        grid = np.round(x2[k] * 8.0) / 8.0
        moved = grid + y[k] * margin
        if margin - y[k] * (moved - grid) == 0.0:
            x1[k], x2[k] = moved, grid
    return out


MARGIN_RANKING = LossSpec(
    name="margin_ranking",
    aliases=("margin_ranking_loss", "pairwise_hinge"),
    summary="Pairwise margin ranking loss max(0, -y (x1 - x2) + margin) with y in {-1, 1}.",
    fn=margin_ranking,
    vjp=_margin_ranking_vjp,
    kinks=_margin_ranking_kinks,
    inputs=(
        Input("x1", "prediction", "real", differentiable=True, doc="scores of the first item of each pair"),
        Input("x2", "prediction", "real", differentiable=True, doc="scores of the second item of each pair"),
        Input("y", "target", "sign", doc="1 if x1 should rank higher, -1 if x2 should"),
    ),
    params=(Param("margin", 0.0, "how far the preferred score must lead"), KINK_GRADIENT),
    tasks=frozenset({"ranking"}),
    formula=r"\ell = \max(0,\ -y (x_1 - x_2) + m)",
    references=(
        "Herbrich, R., Graepel, T. & Obermayer, K. (1999). Support Vector Learning for Ordinal "
        "Regression. ICANN. https://doi.org/10.1049/cp:19991091",
    ),
    usage=(
        "Learning to rank from preference pairs (RankSVM's loss on scores). With margin 0 a correctly "
        "ordered pair costs nothing however close; a positive margin asks for a gap. At the corner "
        "the gradient share is kink_gradient: 0 here, 1 in PyTorch (clamp_min passes it)."
    ),
    conventions={
        "torch": Convention(
            "torch", "torch.nn.MarginRankingLoss", {"kink_gradient": 1.0},
            notes="margin 0; clamp_min passes the gradient at the corner; mean over every element.",
            names={"MarginRankingLoss": {}},
        ),
    },
)


# -- softmax ranking (Optax) -----------------------------------------------------------------------
def _relevance(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    y = rng.integers(0, 3, size=shape).astype(dtype)
    if y.size:
        y.reshape(-1, shape[-1] if shape else 1)[:, 0] = 1.0  # every list has a relevant item
    return y


def _check_relevance(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    if not bool(xp.all(x >= 0)):
        raise InputError(f"{name}: expected non-negative relevance labels, got a minimum of {float(xp.min(x)):g}")


if "relevance" not in DOMAINS:
    register_domain(Domain("relevance", "non-negative relevance grades per item", _relevance, _check_relevance))


def ranking_softmax(labels: Any, logits: Any, /, *, xp: Any, axis: int = -1) -> Any:
    r"""Listwise softmax ranking loss per list (last axis): cross-entropy with unnormalized relevances.

    .. math:: \ell(s, y) = -\sum_i y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}

    >>> import numpy as np
    >>> round(float(ranking_softmax(np.array([1.0, 0.0, 0.0]), np.array([2.0, 1.0, 3.0]), xp=np)), 3)
    1.408
    """
    return -xp.sum(labels * log_softmax(logits, xp=xp), axis=-1)


def _ranking_softmax_vjp(labels: Any, logits: Any, cot: Any, /, *, xp: Any, axis: int) -> tuple[Any]:
    total = xp.sum(labels, axis=-1, keepdims=True)
    return (xp.expand_dims(cot, axis=-1) * (softmax(logits, xp=xp) * total - labels),)


RANKING_SOFTMAX = LossSpec(
    name="ranking_softmax",
    aliases=("listnet", "softmax_ranking", "ranking_softmax_loss"),
    summary="Listwise softmax ranking loss: -sum_i y_i log softmax(s)_i over each list of items.",
    fn=ranking_softmax,
    vjp=_ranking_softmax_vjp,
    inputs=(
        Input("labels", "target", "relevance", doc="relevance grade of each item (not normalized)"),
        Input("logits", "prediction", "logit", differentiable=True, doc="one score per item; lists on the last axis"),
    ),
    params=(Param("axis", -1, "the list axis (only the last axis)", kind="choice", choices=(-1,), static=True),),
    tasks=frozenset({"ranking"}),
    formula=r"\ell(s, y) = -\sum_i y_i \log\operatorname{softmax}(s)_i",
    references=(
        "Cao, Z. et al. (2007). Learning to Rank: From Pairwise Approach to Listwise Approach. ICML. "
        "https://doi.org/10.1145/1273496.1273513",
        "Bruch, S. et al. (2019). An Analysis of the Softmax Cross Entropy Loss for Learning-to-Rank "
        "with Binary Relevance. ICTIR. https://doi.org/10.1145/3341981.3344221",
    ),
    usage=(
        "Listwise learning to rank: each list's scores against its items' relevance grades; the "
        "grades are not normalized, so a list with more relevant items weighs more (for probability "
        "targets it is categorical cross-entropy). A mask of valid items (Optax's where=) gives masked "
        "items label 0 and a score far below the others (finite, so gradients stay finite); a list with "
        "no valid item is 0 and does not count in the mean. Per-item weights (Optax's weights=) multiply "
        "the labels. The default 'mean' is Optax's reduce_fn=jnp.mean (over the lists)."
    ),
    elementwise=False,
    # Optax's where= (valid items) and weights= (per-item weights, multiplying the relevances)
    masking=Masking({"logits": "lowest", "labels": "zero"}, item_weights="labels"),
    conventions={
        "optax": Convention(
            "optax", "optax.losses.ranking_softmax_loss",
            reduction=Reduction("mean", feature_mean=False, normalize_by="weights"),
            notes="reduce_fn=jnp.mean by default: the mean over lists.",
            names={"ranking_softmax_loss": {}},
        ),
    },
)

SPECS = (MARGIN_RANKING, RANKING_SOFTMAX)
