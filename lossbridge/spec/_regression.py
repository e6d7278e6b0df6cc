"""Regression losses: squared error, absolute error, Huber."""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._model import Input, LossSpec
from lossbridge.spec._params import Param

__all__ = ["HUBER", "MAE", "MSE", "SPECS", "huber", "mae", "mse"]

_REG_INPUTS = (
    Input("y_true", "target", "real", doc="regression targets"),
    Input("y_pred", "prediction", "real", differentiable=True, doc="predictions, same shape"),
)


def mse(y_true: Any, y_pred: Any, /, *, xp: Any) -> Any:
    r"""Squared error per element.

    .. math:: \ell(y, \hat y) = (\hat y - y)^2

    >>> import numpy as np
    >>> mse(np.array([0.0, 1.0]), np.array([0.5, 1.0]), xp=np).tolist()
    [0.25, 0.0]
    """
    diff = y_pred - y_true
    return diff * diff


def _mse_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any) -> tuple[Any]:
    return (2.0 * (y_pred - y_true) * cot,)


MSE = LossSpec(
    name="mse",
    aliases=("mean_squared_error", "squared_error", "l2"),
    summary="Mean squared error: the average of squared residuals.",
    fn=mse,
    vjp=_mse_vjp,
    inputs=_REG_INPUTS,
    tasks=frozenset({"regression"}),
    formula=r"\ell(y, \hat y) = (\hat y - y)^2",
    references=(
        "Gauss, C. F. (1809). Theoria motus corporum coelestium (least squares).",
        "Hastie, Tibshirani & Friedman (2009). The Elements of Statistical Learning, 2nd ed., sec. 2.4.",
    ),
    usage=(
        "Regression with roughly Gaussian noise; the MLE under Gaussian errors. Sensitive to "
        "outliers (consider huber or mae). Its optimum is the conditional mean."
    ),
    conventions={
        "torch": Convention("torch", "torch.nn.MSELoss", notes="Mean over every element."),
        "keras": Convention(
            "keras",
            "keras.losses.MeanSquaredError",
            notes="Mean over the last axis per sample, then over the batch (sum_over_batch_size).",
        ),
        "optax": Convention(
            "optax",
            "optax.losses.squared_error",
            notes="Unreduced per-element values; optax.losses.l2_loss is half of this.",
        ),
    },
)


def mae(y_true: Any, y_pred: Any, /, *, xp: Any) -> Any:
    r"""Absolute error per element.

    .. math:: \ell(y, \hat y) = |\hat y - y|

    >>> import numpy as np
    >>> mae(np.array([0.0, 1.0]), np.array([0.5, -1.0]), xp=np).tolist()
    [0.5, 2.0]
    """
    return xp.abs(y_pred - y_true)


def _mae_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any) -> tuple[Any]:
    # the subgradient 0 at a zero residual, as torch.sign / jnp.sign give
    return (xp.sign(y_pred - y_true) * cot,)


MAE = LossSpec(
    name="mae",
    aliases=("mean_absolute_error", "absolute_error", "l1"),
    summary="Mean absolute error: the average of absolute residuals.",
    fn=mae,
    vjp=_mae_vjp,
    inputs=_REG_INPUTS,
    tasks=frozenset({"regression"}),
    formula=r"\ell(y, \hat y) = |\hat y - y|",
    references=(
        "Laplace, P.-S. (1774). Mémoire sur la probabilité des causes par les événements (least "
        "absolute deviations).",
        "Hastie, Tibshirani & Friedman (2009). The Elements of Statistical Learning, 2nd ed., sec. 10.6.",
    ),
    usage=(
        "Regression robust to outliers; the MLE under Laplace errors, its optimum is the "
        "conditional median. The gradient has constant magnitude, so it does not shrink near the "
        "optimum (lower the learning rate or use huber). The gradient at a zero residual is 0."
    ),
    conventions={
        "torch": Convention("torch", "torch.nn.L1Loss", notes="Mean over every element."),
        "keras": Convention(
            "keras",
            "keras.losses.MeanAbsoluteError",
            notes="Mean over the last axis per sample, then over the batch (sum_over_batch_size).",
        ),
    },
)

DELTA = Param(
    "delta",
    1.0,
    "residual size where the loss turns from quadratic to linear",
    low=0.0,
    low_inclusive=False,
)


def huber(y_true: Any, y_pred: Any, /, *, xp: Any, delta: Any = 1.0) -> Any:
    r"""Huber loss per element: quadratic for small residuals, linear beyond ``delta``.

    .. math::
        \ell(y, \hat y) = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
        \delta (|e| - \tfrac12 \delta) & |e| > \delta \end{cases}, \quad e = \hat y - y

    Computed branch-free as :math:`\tfrac12 q^2 + \delta (|e| - q)` with :math:`q = \min(|e|, \delta)`.

    >>> import numpy as np
    >>> huber(np.array([0.0, 0.0]), np.array([0.5, 3.0]), xp=np, delta=1.0).tolist()
    [0.125, 2.5]
    """
    abs_err = xp.abs(y_pred - y_true)
    quad = xp.clip(abs_err, max=delta)
    return 0.5 * quad * quad + delta * (abs_err - quad)


def _huber_vjp(y_true: Any, y_pred: Any, cot: Any, /, *, xp: Any, delta: Any = 1.0) -> tuple[Any]:
    return (xp.clip(y_pred - y_true, min=-delta, max=delta) * cot,)


HUBER = LossSpec(
    name="huber",
    aliases=("huber_loss",),
    summary="Huber loss: squared error near zero, absolute error (scaled by delta) far from it.",
    fn=huber,
    vjp=_huber_vjp,
    inputs=_REG_INPUTS,
    params=(DELTA,),
    tasks=frozenset({"regression"}),
    formula=(
        r"\ell = \tfrac12 e^2 \text{ if } |e| \le \delta \text{ else } \delta(|e| - \tfrac12\delta),"
        r"\ e = \hat y - y"
    ),
    references=(
        "Huber, P. J. (1964). Robust Estimation of a Location Parameter. Annals of Mathematical "
        "Statistics 35(1), 73-101. https://doi.org/10.1214/aoms/1177703732",
    ),
    usage=(
        "Regression with outliers: behaves like mse/2 for residuals below delta and like "
        "delta*mae beyond, so its gradient is the residual clipped to [-delta, delta]. Choose "
        "delta on the scale of the noise. PyTorch's SmoothL1Loss(beta) equals huber(delta=beta) "
        "divided by beta; it is not the same number unless beta = 1."
    ),
    conventions={
        "torch": Convention("torch", "torch.nn.HuberLoss", notes="delta=1; mean over every element."),
        "keras": Convention(
            "keras",
            "keras.losses.Huber",
            notes="delta=1; mean over the last axis per sample, then over the batch.",
        ),
        "optax": Convention("optax", "optax.losses.huber_loss", notes="delta=1; unreduced values."),
    },
)

SPECS = (MSE, MAE, HUBER)
