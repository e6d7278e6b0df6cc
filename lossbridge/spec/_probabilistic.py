"""Probabilistic losses: negative log-likelihoods (Poisson, Gaussian) and the Kullback-Leibler divergence.

Each is one formula whose input forms are parameters: the Poisson rate or its log (``log_input``),
Stirling's term (``full``); the Gaussian variance clamp; KL on probabilities or log-probabilities for
either argument, Keras's clipping, the generalized (unnormalized) form, and the axis it sums over
(``None``: one term per element, as PyTorch's ``KLDivLoss``; ``-1``: one value per row, as Keras and
Optax).
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
from lossbridge.spec._params import Param

__all__ = [
    "GAUSSIAN_NLL",
    "KL_DIVERGENCE",
    "POISSON",
    "SPECS",
    "gaussian_nll",
    "kl_divergence",
    "poisson",
]

_LOG_2PI = math.log(2.0 * math.pi)


# -- domains ----------------------------------------------------------------------------------------
def _counts(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    y = rng.poisson(2.5, size=shape).astype(np.float64)
    if y.size >= 3:
        y.flat[0], y.flat[1], y.flat[2] = 0.0, 1.0, 7.0  # Stirling's term is masked for y <= 1
    return y.astype(dtype)


def _check_counts(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    if not bool(xp.all(x >= 0)):
        raise InputError(f"{name}: expected non-negative counts, got a minimum of {float(xp.min(x)):g}")


def _log_simplex(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, edge: bool) -> np.ndarray:
    z = rng.normal(size=shape)
    if edge and shape[-1] >= 2:
        z[..., 0] = -60.0  # a probability of about e^-60
    z = z - z.max(axis=-1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(dtype)


def _check_log_probabilities(xp: Any, x: Any, name: str, pred_shape: tuple[int, ...]) -> None:
    if not bool(xp.all(x <= 0)):
        raise InputError(f"{name}: expected log-probabilities (<= 0), got a maximum of {float(xp.max(x)):g}")


for _d in (
    Domain("count", "non-negative counts (whole numbers as floats)", _counts, _check_counts),
    Domain(
        "broadcast_positive",
        "strictly positive reals shaped like the prediction, with a last axis of size 1, or without it",
        DOMAINS["positive"].sample,
        DOMAINS["positive"].check,
        shape="broadcast",
    ),
    Domain("log_simplex", "log-probability rows over the last axis (logsumexp 0)", _log_simplex,
           _check_log_probabilities),
):
    if _d.name not in DOMAINS:
        register_domain(_d)


def _copy(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in inputs.items()}


# -- Poisson ----------------------------------------------------------------------------------------
def _stirling(y: Any, *, xp: Any) -> Any:
    r""":math:`y \log y - y + \tfrac12 \log(2\pi y)` for :math:`y > 1`, else 0 (PyTorch's ``full`` term)."""
    big = y > 1
    safe = xp.where(big, y, xp.ones_like(y))
    term = safe * xp.log(safe) - safe + 0.5 * xp.log(2.0 * math.pi * safe)
    return xp.where(big, term, xp.zeros_like(y))


def poisson(
    y_true: Any, y_pred: Any, /, *, xp: Any, log_input: bool = False, full: bool = False, eps: Any = 0.0
) -> Any:
    r"""Poisson negative log-likelihood per element, up to :math:`\log y!`.

    .. math::
        \ell(y, \lambda) = \lambda - y \log(\lambda + \epsilon)
        \quad\text{or, on log-rates } x:\quad e^{x} - y x

    plus, with ``full``, Stirling's approximation of :math:`\log y!` for :math:`y > 1`.

    >>> import numpy as np
    >>> float(poisson(np.array(2.0), np.array(1.0), xp=np))
    1.0
    >>> float(poisson(np.array(2.0), np.array(0.0), xp=np, log_input=True))
    1.0
    """
    if log_input:
        value = xp.exp(y_pred) - y_true * y_pred
    else:
        value = y_pred - y_true * xp.log(y_pred + eps)
    return value + _stirling(y_true, xp=xp) if full else value


def _poisson_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, log_input: bool = False, full: bool = False, eps: Any = 0.0
) -> tuple[Any]:
    if log_input:
        return ((xp.exp(y_pred) - y_true) * cot,)
    return ((1.0 - y_true / (y_pred + eps)) * cot,)


def _poisson_kinks(rng: np.random.Generator, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    out = _copy(inputs)  # smooth in y_pred; the edges of Stirling's mask (y = 0, 1) are on the target
    y = out["y_true"].reshape(-1)
    y[: min(2, y.size)] = [0.0, 1.0][: min(2, y.size)]
    return out


POISSON = LossSpec(
    name="poisson",
    aliases=("poisson_nll",),
    summary="Poisson negative log-likelihood of counts, from predicted rates or log-rates.",
    fn=poisson,
    vjp=_poisson_vjp,
    kinks=_poisson_kinks,
    inputs=(
        Input("y_true", "target", "count", doc="observed counts (non-negative)"),
        Input("y_pred", "prediction", lambda params: "real" if params["log_input"] else "positive",
              differentiable=True, doc="predicted rate, or its log when log_input"),
    ),
    params=(
        Param("log_input", False, "predictions are log-rates: exp(x) - y x", kind="bool", static=True),
        Param("full", False, "add Stirling's approximation of log(y!) for y > 1 (PyTorch's full)",
              kind="bool", static=True),
        Param("eps", 0.0, "added to the rate inside the log (ignored with log_input)", low=0.0),
    ),
    tasks=frozenset({"regression", "probabilistic"}),
    formula=(
        r"\ell(y, \lambda) = \lambda - y \log(\lambda + \epsilon)\ \text{or}\ e^x - y x,"
        r"\ [+\, y\log y - y + \tfrac12\log(2\pi y) \text{ if full and } y > 1]"
    ),
    references=(
        "Nelder, J. A. & Wedderburn, R. W. M. (1972). Generalized Linear Models. JRSS A 135(3), 370-384. "
        "https://doi.org/10.2307/2344614",
    ),
    usage=(
        "Count regression (events per interval). Predicting log-rates (log_input=True) is stable and "
        "needs no eps; on rates, a zero rate with a positive count is infinite unless eps > 0 "
        "(PyTorch 1e-8, Keras 1e-7). full adds a term that depends on the target only: it changes the "
        "value, not the gradient."
    ),
    conventions={
        "torch": Convention(
            "torch", "torch.nn.PoissonNLLLoss", {"log_input": True, "eps": 1e-8},
            notes="log_input=True by default; eps 1e-8 is used only with log_input=False; full adds "
            "Stirling's term for targets > 1; mean over every element.",
            names={"PoissonNLLLoss": {}},
        ),
        "keras": Convention(
            "keras", "keras.losses.Poisson", {"log_input": False, "eps": 1e-7},
            notes="y_pred - y_true log(y_pred + 1e-7); mean over the last axis, then over the batch.",
            names={"Poisson": {}, "poisson": {}},
        ),
    },
)


# -- Gaussian ---------------------------------------------------------------------------------------
def _var_like(var: Any, pred: Any, *, xp: Any) -> Any:
    """``var`` shaped to broadcast against the prediction: one fewer axis gains a trailing 1."""
    return xp.expand_dims(var, axis=-1) if var.ndim == pred.ndim - 1 else var


def _unbroadcast(grad: Any, var: Any, *, xp: Any) -> Any:
    """Sum ``grad`` (the prediction's shape) back to the shape of ``var``."""
    if tuple(grad.shape) == tuple(var.shape):
        return grad
    short = var.ndim == grad.ndim - 1
    shape = (*tuple(var.shape), 1) if short else tuple(var.shape)
    axes = tuple(k for k, (g, v) in enumerate(zip(grad.shape, shape)) if v == 1 and g != 1)
    summed = xp.sum(grad, axis=axes, keepdims=True) if axes else grad
    return xp.reshape(summed, tuple(var.shape))


def gaussian_nll(
    y_true: Any, y_pred: Any, var: Any, /, *, xp: Any, full: bool = False, eps: Any = 1e-6,
    straight_through: bool = False,
) -> Any:
    r"""Gaussian negative log-likelihood per element, with a predicted variance.

    .. math::
        \ell(y, \mu, \sigma^2) = \tfrac12\Big(\log v + \frac{(\mu - y)^2}{v}\Big)
        \ [+\, \tfrac12 \log 2\pi], \quad v = \max(\sigma^2, \epsilon)

    ``var`` has the prediction's shape, or one axis fewer (one variance per sample), or a size-1
    axis in place of one of the prediction's.

    >>> import numpy as np
    >>> bool(gaussian_nll(np.array(1.0), np.array(3.0), np.array(4.0), xp=np) == 0.5 * (np.log(4.0) + 1.0))
    True
    """
    v = xp.clip(_var_like(var, y_pred, xp=xp), min=eps)
    e = y_pred - y_true
    value = 0.5 * (xp.log(v) + e * e / v)
    return value + 0.5 * _LOG_2PI if full else value


def _gaussian_nll_vjp(
    y_true: Any, y_pred: Any, var: Any, cot: Any, /, *, xp: Any, full: bool = False, eps: Any = 1e-6,
    straight_through: bool = False,
) -> tuple[Any, Any]:
    raw = _var_like(var, y_pred, xp=xp)
    v = xp.clip(raw, min=eps)
    e = y_pred - y_true
    d_var = 0.5 * (1.0 / v - (e * e) / (v * v)) * cot
    if not straight_through:
        d_var = xp.where(raw >= eps, d_var, xp.zeros_like(d_var))
    return (e / v * cot, _unbroadcast(d_var, var, xp=xp))


def _gaussian_kinks(rng: np.random.Generator, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    out = _copy(inputs)
    var = out["var"].reshape(-1)
    var[0] = params["eps"]  # exactly on the clamp: the gradient passes
    if var.size > 1:
        var[1] = params["eps"] / 4.0  # below it: 0, or passed through with straight_through
    return out


GAUSSIAN_NLL = LossSpec(
    name="gaussian_nll",
    aliases=("gaussian_negative_log_likelihood", "heteroscedastic_gaussian_nll"),
    summary="Gaussian negative log-likelihood of targets under a predicted mean and variance.",
    fn=gaussian_nll,
    vjp=_gaussian_nll_vjp,
    kinks=_gaussian_kinks,
    inputs=(
        Input("y_true", "target", "real", doc="observed values"),
        Input("y_pred", "prediction", "real", differentiable=True, doc="predicted means"),
        Input("var", "input", "broadcast_positive", differentiable=True,
              doc="predicted variances (non-negative): the means' shape, one axis fewer, or a size-1 axis"),
    ),
    params=(
        Param("full", False, "add the constant log(2 pi)/2", kind="bool", static=True),
        Param("eps", 1e-6, "variances are clamped to at least eps", low=0.0, low_inclusive=False),
        Param("straight_through", False, "below eps the variance's gradient is taken at the clamped value as "
              "if the clamp were not there (PyTorch clamps under no_grad); else it is 0", kind="bool",
              static=True),
    ),
    tasks=frozenset({"regression", "probabilistic"}),
    formula=r"\ell = \tfrac12(\log v + (\mu - y)^2 / v)\ [+\tfrac12\log 2\pi],\ v = \max(\sigma^2, \epsilon)",
    references=(
        "Nix, D. A. & Weigend, A. S. (1994). Estimating the mean and variance of the target probability "
        "distribution. ICNN'94. https://doi.org/10.1109/ICNN.1994.374138",
    ),
    usage=(
        "Regression that also predicts its uncertainty (heteroscedastic), or with one variance per "
        "sample (homoscedastic: var with one axis fewer, or a size-1 axis). Predict the variance "
        "through a softplus or exp. The variance is clamped at eps; at eps exactly the gradient "
        "passes, below it it is 0 unless straight_through (PyTorch)."
    ),
    conventions={
        "torch": Convention(
            "torch", "torch.nn.GaussianNLLLoss", {"eps": 1e-6, "straight_through": True},
            notes="var clamped at eps=1e-6 under no_grad, so its gradient passes the clamp; mean over "
            "every element of the broadcast loss.",
            names={"GaussianNLLLoss": {}},
        ),
    },
)


# -- Kullback-Leibler -------------------------------------------------------------------------------
def _xlogx(p: Any, *, xp: Any) -> Any:
    """``p log p`` with ``0 log 0 = 0``."""
    positive = p > 0
    return xp.where(positive, p * xp.log(xp.where(positive, p, xp.ones_like(p))), xp.zeros_like(p))


def _target(y_true: Any, *, xp: Any, log_target: bool, clip_eps: float | None) -> tuple[Any, Any]:
    """``(p, p log p)`` from the target in either form."""
    if log_target:
        p = xp.exp(y_true)
        return p, p * y_true
    p = y_true if clip_eps is None else xp.clip(y_true, min=clip_eps, max=1.0)
    return p, _xlogx(p, xp=xp)


def _prediction(y_pred: Any, *, xp: Any, log_input: bool, clip_eps: float | None) -> Any:
    """The prediction as a probability (or measure), clipped as configured."""
    if log_input:
        return xp.exp(y_pred)
    return y_pred if clip_eps is None else xp.clip(y_pred, min=clip_eps, max=1.0)


def _both_clipped(log_input: bool, log_target: bool, clip_eps: float | None) -> bool:
    """Both arguments are probabilities clipped to ``[clip_eps, 1]`` (Keras's form)."""
    return clip_eps is not None and not log_input and not log_target


def kl_divergence(
    y_true: Any, y_pred: Any, /, *, xp: Any, log_input: bool = False, log_target: bool = False,
    clip_eps: float | None = None, generalized: bool = False, axis: int | None = -1,
) -> Any:
    r"""Kullback-Leibler divergence :math:`D(p \,\|\, q)` of the prediction from the target.

    .. math::
        \ell(p, q) = \sum_c p_c (\log p_c - \log q_c) \ [+\, q_c - p_c \text{ if generalized}]

    summed over ``axis`` (``None``: one term per element), with :math:`0 \log 0 = 0`.

    >>> import numpy as np
    >>> p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    >>> bool(np.isclose(kl_divergence(p, q, xp=np), 0.5 * np.log(2) + 0.5 * np.log(2 / 3)))
    True
    """
    if _both_clipped(log_input, log_target, clip_eps):
        # Keras's form: p and q clipped to [clip_eps, 1], so p > 0 (no 0 log 0 case) and p / q lies
        # in [clip_eps, 1 / clip_eps]: p log(p / q), one log and no masks
        p = xp.clip(y_true, min=clip_eps, max=1.0)
        q = xp.clip(y_pred, min=clip_eps, max=1.0)
        term = p * xp.log(p / q)
        if generalized:
            term = term + q - p
        return term if axis is None else xp.sum(term, axis=axis)
    p, plogp = _target(y_true, xp=xp, log_target=log_target, clip_eps=clip_eps)
    if log_input:
        term = plogp - p * y_pred
    else:
        q = _prediction(y_pred, xp=xp, log_input=False, clip_eps=clip_eps)
        term = plogp - xp.where(p > 0, p * xp.log(q), xp.zeros_like(p))
    if generalized:
        term = term + _prediction(y_pred, xp=xp, log_input=log_input, clip_eps=clip_eps) - p
    return term if axis is None else xp.sum(term, axis=axis)


def _kl_vjp(
    y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, log_input: bool = False, log_target: bool = False,
    clip_eps: float | None = None, generalized: bool = False, axis: int | None = -1,
) -> tuple[Any]:
    g_cot = cot if axis is None else xp.expand_dims(cot, axis=axis)
    if _both_clipped(log_input, log_target, clip_eps):
        p = xp.clip(y_true, min=clip_eps, max=1.0)
        q = xp.clip(y_pred, min=clip_eps, max=1.0)
        grad = -p / q  # p > 0: no 0 log 0 mask
        if generalized:
            grad = grad + 1.0
        inside = q == y_pred  # y_pred in [clip_eps, 1], the clip edges pass the gradient (NaN: False)
        return (xp.where(inside, grad, xp.zeros_like(grad)) * g_cot,)
    p = xp.exp(y_true) if log_target else y_true if clip_eps is None else xp.clip(y_true, min=clip_eps, max=1.0)
    if log_input:
        grad = xp.exp(y_pred) - p if generalized else -p
        return (grad * g_cot,)
    q = _prediction(y_pred, xp=xp, log_input=False, clip_eps=clip_eps)
    safe = xp.where(p > 0, q, xp.ones_like(q))
    grad = xp.where(p > 0, -p / safe, xp.zeros_like(q))
    if generalized:
        grad = grad + 1.0
    if clip_eps is not None:
        grad = xp.where(q == y_pred, grad, xp.zeros_like(grad))  # y_pred in [clip_eps, 1] (NaN: False)
    return (grad * g_cot,)


def _kl_kinks(rng: np.random.Generator, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> dict:
    out = _copy(inputs)
    if not params["log_target"]:
        out["y_true"].reshape(-1)[0] = 0.0  # 0 log 0 = 0: the term and its gradient vanish
    f = out["y_pred"].reshape(-1)
    if params["clip_eps"] is not None and not params["log_input"] and f.size > 2:
        f[1], f[2] = params["clip_eps"], 1.0  # both clip edges: the gradient passes
    return out


def _kl_domain(flag: str) -> Any:
    """Log-probabilities with ``flag``; else probabilities, or non-negative measures when generalized."""

    def pick(params: Mapping[str, Any]) -> str:
        if params[flag]:
            return "log_simplex"
        return "positive" if params.get("generalized") else "simplex"

    return pick


_KERAS_EPS = 1e-7
_TORCH_NAMES: dict[str, dict[str, Any]] = {"KLDivLoss": {}}
_OPTAX_NAMES = {
    "kl_divergence": {},
    "kl_divergence_with_log_targets": {"log_target": True},
    "generalized_kl_divergence": {"generalized": True},
    "convex_kl_divergence": {"generalized": True},
}

KL_DIVERGENCE = LossSpec(
    name="kl_divergence",
    # a masked log-probability is far below every other one (probability 0): the term t (log t - log p)
    # with t = 0 (and the generalized exp(log p) - t) is 0, its gradient too
    masking=Masking({"y_pred": "log:log_input", "y_true": "log:log_target"}),
    aliases=("kl_div", "kld", "relative_entropy"),
    summary="Kullback-Leibler divergence of predicted from target distributions, on probabilities or logs.",
    fn=kl_divergence,
    vjp=_kl_vjp,
    kinks=_kl_kinks,
    inputs=(
        Input("y_true", "target", _kl_domain("log_target"),
              doc="target distribution p: probabilities, or log-probabilities with log_target"),
        Input("y_pred", "prediction", _kl_domain("log_input"), differentiable=True,
              doc="predicted distribution q: probabilities, or log-probabilities with log_input"),
    ),
    params=(
        Param("log_input", False, "y_pred holds log-probabilities (PyTorch, Optax)", kind="bool", static=True),
        Param("log_target", False, "y_true holds log-probabilities", kind="bool", static=True),
        Param("clip_eps", None, "clip probabilities to [clip_eps, 1] (Keras: 1e-7); None clips nothing",
              low=0.0, high=1.0, low_inclusive=False, high_inclusive=False, nullable=True, static=True),
        Param("generalized", False, "add q - p per term: the divergence of unnormalized measures "
              "(Optax generalized/convex_kl_divergence)", kind="bool", static=True),
        Param("axis", -1, "axis the terms are summed over; None: one term per element (PyTorch KLDivLoss)",
              kind="int", nullable=True, static=True),
    ),
    tasks=frozenset({"probabilistic", "multiclass"}),
    formula=r"\ell(p, q) = \sum_c p_c(\log p_c - \log q_c)\ [+\, q_c - p_c]",
    references=(
        "Kullback, S. & Leibler, R. A. (1951). On Information and Sufficiency. Annals of Mathematical "
        "Statistics 22(1), 79-86. https://doi.org/10.1214/aoms/1177729694",
        "Hinton, G., Vinyals, O. & Dean, J. (2015). Distilling the Knowledge in a Neural Network. "
        "https://arxiv.org/abs/1503.02531",
    ),
    usage=(
        "Distillation and matching distributions: the divergence of q (prediction) from p (target). "
        "Pass log-probabilities (log_input=True, from a log_softmax) for stability. With axis=None each "
        "element is a term: PyTorch's reduction='mean' then divides by the number of elements, "
        "'batchmean' by the batch size (the divergence per sample). A zero target probability "
        "contributes 0 (0 log 0 = 0), and its gradient is 0. With clip_eps (Keras) both arguments are "
        "clipped to [clip_eps, 1]; at the clip edges the gradient passes, beyond them it is 0."
    ),
    elementwise=True,
    conventions={
        "torch": Convention(
            "torch", "torch.nn.KLDivLoss", {"log_input": True, "axis": None},
            notes="input is log q; target p, or log p with log_target=True; one term per element: "
            "'mean' divides by every element, use reduction='batchmean'.",
            names=_TORCH_NAMES,
        ),
        "keras": Convention(
            "keras", "keras.losses.KLDivergence", {"clip_eps": _KERAS_EPS, "axis": -1},
            reduction=Reduction("mean", feature_mean=False, normalize_by="count"),
            notes="probabilities, both clipped to [1e-7, 1]; summed over the last axis, then the "
            "mean over the batch.",
            names={"KLDivergence": {}, "kl_divergence": {}, "kld": {}},
        ),
        "optax": Convention(
            "optax", "optax.losses.kl_divergence", {"log_input": True, "axis": -1},
            notes="kl_divergence(log_predictions, targets): summed over axis=-1, unreduced; "
            "the generalized form (generalized_kl_divergence, and convex_kl_divergence, deprecated in "
            "optax 0.2.8) adds exp(log q) - p.",
            names=_OPTAX_NAMES,
            deprecated={"convex_kl_divergence": "use generalized_kl_divergence instead"},
        ),
    },
)

SPECS = (POISSON, GAUSSIAN_NLL, KL_DIVERGENCE)
