"""First-order optimizers without adaptive scaling: SGD with momentum, Nesterov, dampening."""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = [
    "SGD",
    "SPECS",
    "is_zero",
    "lr_param",
    "momentum_step",
    "round_through",
    "sgd_init",
    "sgd_update",
    "weight_decay_terms",
]



def lr_param(default: float, doc: str = "learning rate") -> Param:
    """The ``lr`` parameter every optimizer has: ``default`` and a one-line ``doc``, non-negative."""
    return Param("lr", default, doc, low=0.0)


LR = lr_param(0.01)
WEIGHT_DECAY = Param("weight_decay", 0.0, "L2 penalty coefficient", low=0.0)
DECOUPLED = Param(
    "decoupled_weight_decay",
    False,
    "shrink the parameter by lr*weight_decay before the step (Keras) instead of adding "
    "weight_decay*param to the gradient (L2, PyTorch)",
    kind="bool",
    static=True,
)


def is_zero(value: Any) -> bool:
    """True only for a plain Python number equal to 0 (a traced hyperparameter is never "zero")."""
    return isinstance(value, (int, float)) and value == 0


def round_through(x: Any, dtype: str | None, *, xp: Any) -> Any:
    """``x`` rounded to ``dtype`` and back (a framework that stores a scalar in float32), or as is."""
    return x if dtype is None else xp.astype(xp.astype(x, getattr(xp, dtype)), x.dtype)


def weight_decay_terms(param: Any, grad: Any, *, lr: Any, weight_decay: Any, decoupled: bool) -> tuple[Any, Any]:
    """The gradient to use and the decoupled decay increment, for the two weight-decay styles."""
    if is_zero(weight_decay):
        return grad, 0.0
    if decoupled:
        return grad, -lr * weight_decay * param
    return grad + weight_decay * param, 0.0


def sgd_init(param: Any, /, *, xp: Any, momentum: Any = 0.0, **hyper: Any) -> dict[str, Any]:
    """One momentum buffer per parameter, none when momentum is a literal 0 (as torch, Keras and Optax
    keep none: the state is no larger than theirs)."""
    if momentum is not None and is_zero(momentum):
        return {}
    return {"momentum": xp.zeros_like(param)}


def sgd_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    momentum: Any,
    dampening: Any,
    nesterov: bool,
    weight_decay: Any,
    decoupled_weight_decay: bool,
    lr_in_momentum: bool,
) -> tuple[Any, dict[str, Any]]:
    r"""One SGD step; see :data:`SGD` for the formula and its two momentum styles.

    .. math:: b_t = \mu b_{t-1} + (1-\tau) g_t\ (b_1 = g_1),\quad \theta_t = \theta_{t-1} - \eta b_t

    Reference: Polyak (1964); Sutskever et al. (2013), ICML.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("sgd", lr=0.1, momentum=0.9), [np.array([1.0])]
    >>> for _ in range(2):
    ...     opt.step(params, [np.array([1.0])])  # b = 1 then 1.9
    >>> params[0].round(6).tolist()
    [0.71]
    """
    g, decay = weight_decay_terms(param, grad, lr=lr, weight_decay=weight_decay, decoupled=decoupled_weight_decay)
    if is_zero(momentum) or "momentum" not in state:  # no buffer: built with momentum 0 (sgd_init)
        return decay - lr * g, state
    delta, buf = momentum_step(
        g,
        state["momentum"],
        step=step,
        xp=xp,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        lr_in_momentum=lr_in_momentum,
    )
    return decay + delta, {"momentum": buf}


def momentum_step(
    direction: Any,
    buf: Any,
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    momentum: Any,
    dampening: Any = 0.0,
    nesterov: bool = False,
    lr_in_momentum: bool = False,
) -> tuple[Any, Any]:
    r"""Heavy-ball or Nesterov momentum over a ``direction``: ``(delta, new_buffer)``.

    ``lr_in_momentum`` (Keras, Caffe, Optax's ``trace`` after the lr scaling): the buffer holds
    lr-scaled steps, :math:`v_t = \mu v_{t-1} - \eta(1-\tau) d_t`, and the step is :math:`v_t`
    (Nesterov: :math:`\mu v_t - \eta d_t`, which equals Caffe's :math:`(1+\mu) v_t - \mu v_{t-1}`).
    Otherwise (PyTorch): :math:`b_t = \mu b_{t-1} + (1-\tau) d_t` with :math:`b_1 = d_1`, and the step
    is :math:`-\eta b_t` (Nesterov: :math:`-\eta (d_t + \mu b_t)`). SGD and RMSprop share it.
    """
    if lr_in_momentum:
        new = momentum * buf - lr * (1.0 - dampening) * direction
        return (momentum * new - lr * direction if nesterov else new), new
    new = xp.where(step == 1, direction, momentum * buf + (1.0 - dampening) * direction)
    return -lr * (direction + momentum * new if nesterov else new), new


SGD = OptimizerSpec(
    name="sgd",
    elementwise=True,
    aliases=("gradient_descent", "momentum"),
    summary="Stochastic gradient descent with optional (Nesterov) momentum and weight decay.",
    init=sgd_init,
    update=sgd_update,
    slots=("momentum",),
    params=(
        LR,
        Param("momentum", 0.0, "momentum factor (0 disables the buffer)", low=0.0, high=1.0),
        Param("dampening", 0.0, "dampening of the gradient entering the buffer", low=0.0, high=1.0),
        Param("nesterov", False, "Nesterov momentum", kind="bool", static=True),
        WEIGHT_DECAY,
        DECOUPLED,
        Param(
            "lr_in_momentum",
            False,
            "the buffer accumulates lr-scaled steps (Keras, Caffe) instead of gradients "
            "(PyTorch, Optax); equal for a constant lr, different once lr changes",
            kind="bool",
            static=True,
        ),
    ),
    formula=(
        r"b_t = \mu b_{t-1} + (1-\tau) g_t \ (b_1 = g_t),\quad "
        r"\theta_t = \theta_{t-1} - \eta\,(\text{nesterov} ? g_t + \mu b_t : b_t)"
    ),
    references=(
        "Robbins, H. & Monro, S. (1951). A Stochastic Approximation Method. Ann. Math. Statist.",
        "Polyak, B. T. (1964). Some methods of speeding up the convergence of iteration methods.",
        "Sutskever, Martens, Dahl & Hinton (2013). On the importance of initialization and "
        "momentum in deep learning. ICML.",
    ),
    usage=(
        "Full-batch gradient descent when the batch is the data set, mini-batch SGD otherwise. "
        "With momentum 0.9 and a decaying lr it is still the strongest choice for many vision "
        "models; needs more lr tuning than Adam."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.SGD",
            state={"momentum": "momentum_buffer"},
            params={"lr": 1e-3},
            notes="lr outside the buffer, b_1 = g, weight decay added to the gradient; lr 1e-3.",
            names={"SGD": {}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.SGD",
            state={"momentum": "momentums"},
            params={"lr": 0.01, "lr_in_momentum": True, "decoupled_weight_decay": True},
            notes="v = momentum*v - lr*g, theta += v; decoupled weight decay; lr 0.01; float32 hyperparameters.",
            hyper_dtype="float32",
            names={"SGD": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.sgd",
            state={"momentum": "trace"},
            notes="trace b = g + momentum*b, update -lr*b (PyTorch's form without dampening).",
            names={"sgd": {}},
            slot_dtypes={"accumulator_dtype": "momentum"},
        ),
        "caffe": Convention(
            "caffe",
            "caffe SGDSolver / NesterovSolver",
            params={"lr_in_momentum": True},
            notes="SGD: h = momentum*h + lr*g, theta -= h. Nesterov: theta -= (1+momentum)*h' - momentum*h, "
            "the same as the lr-in-buffer Nesterov step momentum*v' - lr*g with v = -h. Weight decay "
            "(regularization_type L2) is added to the gradient first. base_lr has no proto default.",
            names={"SGD": {}, "Nesterov": {"nesterov": True}},
            kwargs={"base_lr": "lr"},
        ),
    },
)

SPECS = (SGD,)
