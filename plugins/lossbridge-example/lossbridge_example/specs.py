"""The two specs, each defined once over the Array API."""

from __future__ import annotations

from typing import Any

from lossbridge import Convention
from lossbridge.spec import Input, LossSpec, OptimizerSpec, Param


def poisson(y_true: Any, y_pred: Any, /, *, xp: Any, log_input: bool, eps: Any) -> Any:
    r"""Poisson negative log-likelihood without the constant :math:`\log y!`.

    .. math:: \ell = \hat y - y \log(\hat y + \epsilon) \quad\text{or, on log-rates } x,\quad e^{x} - y x

    >>> import numpy as np
    >>> float(poisson(np.array(2.0), np.array(1.0), xp=np, log_input=False, eps=0.0))
    1.0
    """
    if log_input:
        return xp.exp(y_pred) - y_true * y_pred
    return y_pred - y_true * xp.log(y_pred + eps)


def _poisson_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, log_input: bool, eps: Any) -> tuple[Any]:
    if log_input:
        return ((xp.exp(y_pred) - y_true) * cot,)
    return ((1.0 - y_true / (y_pred + eps)) * cot,)


POISSON = LossSpec(
    name="poisson",
    aliases=("poisson_nll",),
    summary="Poisson negative log-likelihood, for count targets.",
    fn=poisson,
    vjp=_poisson_vjp,
    inputs=(
        Input("y_true", "target", "positive", doc="observed counts (non-negative)"),
        Input(
            "y_pred",
            "prediction",
            lambda params: "real" if params["log_input"] else "positive",
            differentiable=True,
            doc="predicted rate, or its log when log_input",
        ),
    ),
    params=(
        Param("log_input", False, "predictions are log-rates (exp is applied)", kind="bool", static=True),
        Param("eps", 0.0, "added to the rate inside the log", low=0.0),
    ),
    tasks=frozenset({"regression", "probabilistic"}),
    formula=r"\ell(y, \hat y) = \hat y - y \log(\hat y + \epsilon)",
    references=("Nelder, J. A. & Wedderburn, R. W. M. (1972). Generalized Linear Models. JRSS A 135(3).",),
    usage="Count regression (events per interval). Predict log-rates (log_input=True) for stability.",
    conventions={
        "torch": Convention(
            "torch",
            "torch.nn.PoissonNLLLoss",
            params={"log_input": True, "eps": 1e-8},
            notes="log_input=True by default; eps 1e-8 is used only with log_input=False.",
        ),
        "keras": Convention(
            "keras",
            "keras.losses.Poisson",
            params={"log_input": False, "eps": 1e-7},
            notes="y_pred - y_true * log(y_pred + 1e-7), mean over the last axis.",
        ),
    },
)


def lion_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """One momentum buffer."""
    return {"m": xp.zeros_like(param)}


def lion_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    beta1: Any,
    beta2: Any,
    weight_decay: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One Lion step: the sign of an interpolated momentum, plus decoupled weight decay."""
    m = state["m"]
    direction = xp.sign(beta1 * m + (1.0 - beta1) * grad)
    delta = -lr * (direction + weight_decay * param)
    return delta, {"m": beta2 * m + (1.0 - beta2) * grad}


LION = OptimizerSpec(
    name="lion",
    aliases=("evolved_sign_momentum",),
    summary="Lion: sign of an interpolated momentum; memory-light, needs a smaller lr than Adam.",
    init=lion_init,
    update=lion_update,
    slots=("m",),
    params=(
        Param("lr", 1e-4, "learning rate (typically 3-10x smaller than Adam's)", low=0.0),
        Param("beta1", 0.9, "interpolation of momentum and gradient for the sign", low=0.0, high=1.0),
        Param("beta2", 0.99, "momentum decay", low=0.0, high=1.0),
        Param("weight_decay", 0.0, "decoupled weight decay, scaled by lr", low=0.0),
    ),
    formula=(
        r"c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\ "
        r"\theta_t = \theta_{t-1} - \eta(\operatorname{sign}(c_t) + \lambda\theta_{t-1}),\ "
        r"m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t"
    ),
    references=("Chen, X. et al. (2023). Symbolic Discovery of Optimization Algorithms. NeurIPS. arXiv:2302.06675.",),
    usage="Large-batch training of transformers and vision models; use lr ~ Adam's / 3-10 and larger wd.",
    conventions={
        "optax": Convention(
            "optax", "optax.lion", params={"weight_decay": 1e-3}, notes="weight_decay defaults to 1e-3."
        ),
    },
)
