"""Regression losses: squared error, absolute error, Huber."""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._model import Input, LossSpec

__all__ = ["MSE", "SPECS", "mse"]

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

SPECS = (MSE,)
