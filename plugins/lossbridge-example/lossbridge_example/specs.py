"""The two specs, each defined once over the Array API: the quantile loss and QHM."""

from __future__ import annotations

from typing import Any

from lossbridge.spec import Input, LossSpec, OptimizerSpec, Param


def quantile(y_true: Any, y_pred: Any, /, *, xp: Any, quantile: Any) -> Any:
    r"""Quantile (pinball) loss per element: the check function of quantile regression.

    .. math:: \rho_\tau(u) = \max(\tau u, (\tau - 1) u), \quad u = y - \hat y

    >>> import numpy as np
    >>> quantile(np.array([1.0, 1.0]), np.array([0.0, 3.0]), xp=np, quantile=0.75).tolist()
    [0.75, 0.5]
    """
    u = y_true - y_pred
    return xp.where(u >= 0, quantile * u, (quantile - 1.0) * u)


def _quantile_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, quantile: Any) -> tuple[Any]:
    u = y_true - y_pred
    zero = xp.zeros_like(u)
    # d/dy_pred: -tau above the prediction, 1 - tau below it, and 0 (inside the subdifferential) on it
    grad = xp.where(u > 0, zero - quantile, xp.where(u < 0, zero + (1.0 - quantile), zero))
    return (grad * cot,)


def _quantile_kinks(rng: Any, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    out = {k: v.copy() for k, v in inputs.items()}
    out["y_pred"].reshape(-1)[0] = out["y_true"].reshape(-1)[0]  # a zero residual
    return out


QUANTILE = LossSpec(
    name="quantile",
    aliases=("pinball", "pinball_loss", "quantile_loss"),
    summary="Quantile (pinball) loss: the regression loss whose minimizer is the tau-quantile.",
    fn=quantile,
    vjp=_quantile_vjp,
    kinks=_quantile_kinks,
    inputs=(
        Input("y_true", "target", "real", doc="observed values"),
        Input("y_pred", "prediction", "real", differentiable=True, doc="predicted tau-quantiles"),
    ),
    params=(
        Param("quantile", 0.5, "the quantile tau being estimated (0.5: half the absolute error)", low=0.0,
              high=1.0, low_inclusive=False, high_inclusive=False),
    ),
    tasks=frozenset({"regression", "probabilistic"}),
    formula=r"\ell(y, \hat y) = \max(\tau (y - \hat y), (\tau - 1)(y - \hat y))",
    references=(
        "Koenker, R. & Bassett, G. (1978). Regression Quantiles. Econometrica 46(1), 33-50. "
        "https://doi.org/10.2307/1913643",
    ),
    usage=(
        "Prediction intervals and quantile regression: under-prediction costs tau per unit, "
        "over-prediction 1 - tau. tau = 0.5 is half the absolute error. The gradient at a zero "
        "residual is 0. No framework's catalog has it: lossbridge's conventions do not apply."
    ),
)


def qhm_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """One momentum buffer (an exponential moving average of the gradients)."""
    return {"momentum": xp.zeros_like(param)}


def qhm_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    momentum: Any,
    nu: Any,
    weight_decay: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One quasi-hyperbolic momentum step: a nu-weighted average of the momentum and the plain gradient.

    .. math::
        g'_t = g_t + \lambda\theta_{t-1},\quad b_t = \beta b_{t-1} + (1-\beta) g'_t,\quad
        \theta_t = \theta_{t-1} - \eta\,((1-\nu) g'_t + \nu b_t)

    >>> import numpy as np
    >>> state = qhm_init(np.zeros(1), xp=np)
    >>> delta, state = qhm_update(np.zeros(1), np.array([2.0]), state, step=1, xp=np, lr=0.5,
    ...                           momentum=0.5, nu=0.5, weight_decay=0.0)
    >>> delta.tolist()  # -0.5 * (0.5 * 2 + 0.5 * 1)
    [-0.75]
    """
    g = grad + weight_decay * param
    buf = momentum * state["momentum"] + (1.0 - momentum) * g
    return -lr * ((1.0 - nu) * g + nu * buf), {"momentum": buf}


QHM = OptimizerSpec(
    name="qhm",
    aliases=("quasi_hyperbolic_momentum",),
    summary="Quasi-hyperbolic momentum: a weighted average of momentum SGD and plain SGD steps.",
    init=qhm_init,
    update=qhm_update,
    slots=("momentum",),
    params=(
        Param("lr", 1e-3, "learning rate", low=0.0),
        Param("momentum", 0.999, "decay beta of the gradient moving average", low=0.0, high=1.0,
              high_inclusive=False),
        Param("nu", 0.7, "weight of the momentum buffer in the step (0: plain SGD, 1: EMA momentum)",
              low=0.0, high=1.0),
        Param("weight_decay", 0.0, "L2 penalty added to the gradient", low=0.0),
    ),
    formula=(
        r"b_t = \beta b_{t-1} + (1-\beta) g_t,\ "
        r"\theta_t = \theta_{t-1} - \eta\,((1-\nu) g_t + \nu b_t)"
    ),
    references=(
        "Ma, J. & Yarats, D. (2019). Quasi-hyperbolic momentum and Adam for deep learning. ICLR. "
        "https://arxiv.org/abs/1810.06801",
    ),
    usage=(
        "A drop-in for momentum SGD that decouples the momentum's averaging horizon (beta) from its "
        "weight in the step (nu); the paper's default beta = 0.999, nu = 0.7 often beats Nesterov. "
        "nu = 1 is momentum SGD with a (1 - beta)-damped buffer, nu = 0 plain SGD. No framework's "
        "catalog has it: lossbridge's conventions do not apply."
    ),
)
