"""Optimizers from Optax's catalog: optimistic gradient descent, optimistic Adam, Fromage and SM3.

None of them has a torch.optim or keras.optimizers counterpart (torch 2.13, Keras 3.15).
"""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._adaptive import adam_moments, bias_correction
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = [
    "FROMAGE",
    "OPTIMISTIC_ADAM",
    "OPTIMISTIC_GRADIENT_DESCENT",
    "SM3",
    "SPECS",
    "fromage_init",
    "fromage_update",
    "optimistic_adam_init",
    "optimistic_adam_update",
    "optimistic_gd_init",
    "optimistic_gd_update",
    "sm3_init",
    "sm3_update",
]

_OGD_REF = (
    "Mokhtari, A., Ozdaglar, A. & Pattathil, S. (2020). A Unified Analysis of Extra-gradient and Optimistic "
    "Gradient Methods for Saddle Point Problems: Proximal Point Approach. AISTATS. https://arxiv.org/abs/1901.08511"
)
_OADAM_REF = (
    "Daskalakis, C., Ilyas, A., Syrgkanis, V. & Zeng, H. (2018). Training GANs with Optimism. ICLR. "
    "https://arxiv.org/abs/1711.00141"
)
_FROMAGE_REF = (
    "Bernstein, J., Vahdat, A., Yue, Y. & Liu, M.-Y. (2020). On the distance between two neural networks and "
    "the stability of learning. NeurIPS. https://arxiv.org/abs/2002.03432"
)
_SM3_REF = (
    "Anil, R., Gupta, V., Koren, T. & Singer, Y. (2019). Memory-Efficient Adaptive Optimization. NeurIPS. "
    "https://arxiv.org/abs/1901.11150"
)


def _optimistic(direction: Any, prev: Any, *, step: Any, xp: Any, alpha: Any, beta: Any) -> Any:
    r""":math:`(\alpha+\beta) d_t - \beta d_{t-1}`, with :math:`d_0 = d_1` (the first step is :math:`\alpha d_1`)."""
    prev = xp.where(step == 1, direction, prev)
    return (alpha + beta) * direction - beta * prev


# -- optimistic gradient descent --------------------------------------------------------------------
def optimistic_gd_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The previous gradient ``prev``."""
    return {"prev": xp.zeros_like(param)}


def optimistic_gd_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    alpha: Any,
    beta: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One optimistic gradient descent step (see :data:`OPTIMISTIC_GRADIENT_DESCENT`).

    .. math::
        \theta_t = \theta_{t-1} - \eta\big((\alpha+\beta) g_t - \beta g_{t-1}\big),\quad g_0 := g_1

    Reference: Mokhtari, Ozdaglar & Pattathil (2020), https://arxiv.org/abs/1901.08511.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("optimistic_gradient_descent", lr=0.1), [np.array([1.0])]
    >>> for g in (1.0, 2.0):  # steps -0.1 * 1, then -0.1 * (2 * 2 - 1)
    ...     opt.step(params, [np.array([g])])
    >>> params[0].round(6).tolist()
    [0.6]
    """
    u = _optimistic(grad, state["prev"], step=step, xp=xp, alpha=alpha, beta=beta)
    return -lr * u, {"prev": grad}


OPTIMISTIC_GRADIENT_DESCENT = OptimizerSpec(
    name="optimistic_gradient_descent",
    elementwise=True,
    aliases=("ogd", "optimistic_gd", "ogda"),
    summary="Optimistic gradient descent: the gradient step plus a correction by the last gradient change.",
    init=optimistic_gd_init,
    update=optimistic_gd_update,
    slots=("prev",),
    params=(
        Param("lr", 1e-3, "learning rate", low=0.0),
        Param("alpha", 1.0, "coefficient of the current gradient (generalized OGD)"),
        Param("beta", 1.0, "coefficient of the gradient change g_t - g_{t-1} (negative momentum)"),
    ),
    formula=(
        r"\theta_t = \theta_{t-1} - \eta\big((\alpha+\beta) g_t - \beta g_{t-1}\big)"
        r"= \theta_{t-1} - \eta\big(\alpha g_t + \beta (g_t - g_{t-1})\big),\ g_0 := g_1"
    ),
    references=(_OGD_REF,),
    usage=(
        "Min-max problems (GANs, saddle points, games), where simultaneous gradient descent-ascent "
        "cycles or diverges and OGD converges in the last iterate. alpha = 1, beta = 0 is plain SGD. "
        "The first step has no previous gradient and uses g_0 = g_1, so it is -lr*alpha*g_1 (Optax)."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.optimistic_gradient_descent",
            notes="scale_by_optimistic_gradient(alpha, beta) then -learning_rate; alpha and beta default "
            "1.0 and may be schedules there (here: constants or set_hyper). At the first step the "
            "previous gradient is the current one (optax issue 1082).",
            names={"optimistic_gradient_descent": {}},
        ),
    },
)


# -- optimistic Adam --------------------------------------------------------------------------------
def optimistic_adam_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """Adam's moments ``m`` and ``v`` and the previous Adam direction ``prev``."""
    return {"m": xp.zeros_like(param), "v": xp.zeros_like(param), "prev": xp.zeros_like(param)}


def optimistic_adam_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    alpha: Any,
    beta: Any,
    optimism: Any = None,
    beta_1: Any,
    beta_2: Any,
    eps: Any,
    eps_root: Any,
    nesterov: bool,
) -> tuple[Any, dict[str, Any]]:
    r"""One optimistic Adam step (see :data:`OPTIMISTIC_ADAM`): optimistic descent on Adam's direction.

    .. math::
        r_t = \frac{\hat m_t}{\sqrt{\hat v_t + \bar\epsilon} + \epsilon},\quad
        \theta_t = \theta_{t-1} - \eta\alpha r_t - o\,(r_t - r_{t-1}),\quad o = \eta\beta,\ r_0 := r_1

    with Nesterov's :math:`\hat m_t = \beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`
    when ``nesterov``. Reference: Daskalakis et al. (2018), https://arxiv.org/abs/1711.00141.

    >>> import numpy as np, lossbridge
    >>> opt = lossbridge.get("optimistic_adam", lr=0.1, nesterov=False)
    >>> params = [np.array([1.0])]
    >>> opt.step(params, [np.array([2.0])])  # the first Adam direction is g/|g| = 1
    >>> params[0].round(6).tolist()
    [0.9]
    """
    m, v = adam_moments(grad, state, beta_1, beta_2, xp=xp)
    c1 = bias_correction(step, beta_1, xp=xp)
    if nesterov:
        m_hat = beta_1 * (m / bias_correction(step + 1.0, beta_1, xp=xp)) + (1.0 - beta_1) * (grad / c1)
    else:
        m_hat = m / c1
    v_hat = v / bias_correction(step, beta_2, xp=xp)
    r = m_hat / (xp.sqrt(v_hat + eps_root) + eps)
    o = lr * beta if optimism is None else optimism
    prev = xp.where(step == 1, r, state["prev"])
    delta = -((lr * alpha + o) * r - o * prev)
    return delta, {"m": m, "v": v, "prev": r}


OPTIMISTIC_ADAM = OptimizerSpec(
    name="optimistic_adam",
    elementwise=True,
    aliases=("oadam", "optimistic_adam_v2"),
    summary="Optimistic Adam: optimistic gradient descent applied to Adam's normalized direction.",
    init=optimistic_adam_init,
    update=optimistic_adam_update,
    slots=("m", "v", "prev"),
    params=(
        Param("lr", 1e-3, "learning rate", low=0.0),
        Param("alpha", 1.0, "coefficient of the current Adam direction"),
        Param("beta", 1.0, "coefficient of the direction change r_t - r_{t-1}, relative to lr (o = lr*beta)"),
        Param(
            "optimism",
            None,
            "absolute optimism o (the step is -(lr*alpha + o) r_t + o r_{t-1}); None: o = lr*beta "
            "(optax.optimistic_adam's `optimism`, which defaults to the learning rate)",
            nullable=True,
        ),
        Param("beta_1", 0.9, "decay of the first moment", low=0.0, high=1.0, high_inclusive=False),
        Param("beta_2", 0.999, "decay of the second moment", low=0.0, high=1.0, high_inclusive=False),
        Param("eps", 1e-8, "added to the root of the second moment", low=0.0),
        Param("eps_root", 0.0, "added to the second moment inside the root", low=0.0),
        Param(
            "nesterov",
            True,
            "Nesterov first moment beta_1 m_hat_{t+1} + (1-beta_1) g_t/(1-beta_1^t) (Optax's default)",
            kind="bool",
            static=True,
        ),
    ),
    formula=(
        r"r_t = \hat m_t / (\sqrt{\hat v_t + \bar\epsilon} + \epsilon),\ "
        r"\theta_t = \theta_{t-1} - \eta\alpha r_t - o (r_t - r_{t-1}),\ o = \eta\beta,\ r_0 := r_1"
    ),
    references=(_OADAM_REF, _OGD_REF),
    usage=(
        "GAN training and other min-max games where Adam cycles: the optimistic correction damps the "
        "rotation. Nesterov momentum is on by default (as in Optax); with nesterov=False the direction is "
        "plain Adam's. The first step uses r_0 = r_1, so it is Adam's step scaled by alpha."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.optimistic_adam_v2 / optax.optimistic_adam",
            notes="scale_by_adam(nesterov=True) then scale_by_optimistic_gradient(alpha, beta) then "
            "-learning_rate (v2). The deprecated optimistic_adam(learning_rate, optimism) uses "
            "alpha = learning_rate, beta = optimism (default: learning_rate) and no further scaling: "
            "here alpha = 1 with o = optimism. mu_dtype (the JAX backend) stores m in that dtype.",
            names={"optimistic_adam_v2": {}, "optimistic_adam": {}},
            slot_dtypes={"mu_dtype": "m"},
            deprecated={"optimistic_adam": "use `optimistic_adam_v2` instead"},
        ),
    },
)


# -- Fromage ----------------------------------------------------------------------------------------
def fromage_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """No state."""
    return {}


def _clipped_norm(x: Any, floor: Any, *, xp: Any) -> Any:
    norm = xp.sqrt(xp.sum(x * x))
    return xp.where(norm <= floor, floor * xp.ones_like(norm), norm)


def fromage_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    min_norm: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One Fromage step (see :data:`FROMAGE`): a relative step, then a shrink by :math:`\sqrt{1+\eta^2}`.

    .. math::
        \theta_t = \frac{1}{\sqrt{1+\eta^2}}\Big(\theta_{t-1}
        - \eta\,\frac{\max(\|\theta_{t-1}\|, \nu)}{\max(\|g_t\|, \nu)}\, g_t\Big)

    (ratio 1 if a clipped norm is 0). Reference: Bernstein et al. (2020), Algorithm 1,
    https://arxiv.org/abs/2002.03432.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("fromage", lr=0.75), [np.array([3.0, 4.0])]
    >>> opt.step(params, [np.array([0.0, 10.0])])  # (theta - 0.75 * 5/10 * g) / 1.25
    >>> params[0].round(6).tolist()
    [2.4, 0.2]
    """
    w_norm = _clipped_norm(param, min_norm, xp=xp)
    g_norm = _clipped_norm(grad, min_norm, xp=xp)
    ratio = xp.where((w_norm == 0) | (g_norm == 0), xp.ones_like(w_norm), w_norm / g_norm)
    mult = (1.0 + lr * lr) ** -0.5
    return -(lr * mult) * (ratio * grad) + (mult - 1.0) * param, state


FROMAGE = OptimizerSpec(
    name="fromage",
    aliases=("frobenius_matched_gradient_descent",),
    summary="Fromage: per-tensor steps relative to the weight norm, then a shrink keeping the norm bounded.",
    init=fromage_init,
    update=fromage_update,
    slots=(),
    params=(
        Param("lr", 1e-2, "relative step size (the paper's default 0.01 needs little tuning)", low=0.0),
        Param("min_norm", 1e-6, "floor of the weight and gradient norms in the ratio", low=0.0),
    ),
    formula=(
        r"\theta_t = \frac{1}{\sqrt{1+\eta^2}}\Big(\theta_{t-1} - \eta\,"
        r"\frac{\max(\|\theta_{t-1}\|_F, \nu)}{\max(\|g_t\|_F, \nu)}\, g_t\Big)"
    ),
    references=(_FROMAGE_REF,),
    usage=(
        "Training deep networks (transformers, GANs) with one learning rate across layers and little "
        "tuning: each tensor moves by lr relative to its own Frobenius norm. The norm is per tensor, "
        "so apply it to weight matrices; a tensor at zero (a fresh bias) is stuck at 0 up to the "
        "min_norm floor: exclude biases or initialize them non-zero."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.fromage",
            notes="scale_by_trust_ratio(min_norm) (safe norms floored at min_norm, ratio 1 at zero "
            "norms), scale by -learning_rate/sqrt(1+learning_rate^2), then add_decayed_weights("
            "1/sqrt(1+learning_rate^2) - 1).",
            names={"fromage": {}},
        ),
    },
)


# -- SM3 --------------------------------------------------------------------------------------------
def sm3_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The cover accumulators ``acc`` and the moving average ``ema`` of the scaled gradients.

    For a tensor of rank >= 2, ``acc`` holds one accumulator per index of every axis, concatenated
    (length ``sum(shape)``); below rank 2 ``acc`` is a full per-coordinate accumulator (Adagrad's).
    """
    shape = tuple(param.shape)
    if len(shape) < 2:
        mu = xp.zeros_like(param)
    else:
        mu = xp.zeros((sum(shape),), dtype=param.dtype)
    return {"acc": mu, "ema": xp.zeros_like(param)}


def sm3_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    momentum: Any,
    eps: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One SM3 step (see :data:`SM3`), with the cover of all rows, all columns, ... of a tensor.

    .. math::
        \nu_t(i) = g_t(i)^2 + \min_{r \ni i} \mu_{t-1}(r),\quad
        \mu_t(r) = \max_{j \in r} \nu_t(j),\quad
        n_t = \beta n_{t-1} + (1-\beta) \frac{g_t}{\sqrt{\nu_t + \epsilon}},\quad
        \theta_t = \theta_{t-1} - \eta n_t

    Reference: Anil et al. (2019), SM3-II, https://arxiv.org/abs/1901.11150.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("sm3", lr=1.0, momentum=0.0, eps=0.0), [np.array([[1.0, 1.0]])]
    >>> opt.step(params, [np.array([[3.0, -4.0]])])  # the first step is -lr * sign(g)
    >>> params[0].round(6).tolist()
    [[0.0, 2.0]]
    """
    shape = tuple(grad.shape)
    g2 = grad * grad
    if len(shape) < 2:
        accum = g2 + state["acc"]
        mu = accum
    else:
        pieces, start = [], 0
        for axis, size in enumerate(shape):
            expanded = tuple(size if k == axis else 1 for k in range(len(shape)))
            pieces.append(xp.reshape(state["acc"][start : start + size], expanded))
            start += size
        low = pieces[0]
        for piece in pieces[1:]:
            low = xp.minimum(low, piece)
        accum = g2 + low
        mu = xp.concat(
            [xp.max(accum, axis=tuple(k for k in range(len(shape)) if k != axis)) for axis in range(len(shape))]
        )
    inv = xp.where(accum > 0, 1.0 / xp.sqrt(accum + eps), xp.zeros_like(accum))
    nu = (1.0 - momentum) * (grad * inv) + momentum * state["ema"]
    return -lr * nu, {"acc": mu, "ema": nu}


SM3 = OptimizerSpec(
    name="sm3",
    aliases=("square_root_of_minima_of_sums_of_maxima",),
    summary="SM3: Adagrad-like steps from per-row / per-column (per-axis) accumulators, memory sum(shape).",
    init=sm3_init,
    update=sm3_update,
    slots=("acc", "ema"),
    params=(
        Param("lr", 1e-2, "learning rate", low=0.0),
        Param("momentum", 0.9, "decay of the moving average of the scaled gradients (0: none)", low=0.0, high=1.0),
        Param("eps", 1e-8, "added to the accumulator inside the root (0/0 is 0)", low=0.0),
    ),
    formula=(
        r"\nu_t(i) = g_t(i)^2 + \min_{r \ni i} \mu_{t-1}(r),\ \mu_t(r) = \max_{j \in r} \nu_t(j),\ "
        r"n_t = \beta n_{t-1} + (1-\beta)\, g_t / \sqrt{\nu_t + \epsilon},\ \theta_t = \theta_{t-1} - \eta n_t"
    ),
    references=(_SM3_REF,),
    usage=(
        "Very large embedding and transformer models where Adagrad's or Adam's per-coordinate "
        "accumulators do not fit in memory: a (m, n) matrix keeps m + n accumulators. Tensors of rank "
        "< 2 keep a full accumulator (this is then Adagrad with momentum). The accumulators only grow, "
        "so the steps decay like Adagrad's: use a larger lr than Adam's."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.sm3",
            notes="scale_by_sm3(b1=momentum, b2=1.0, eps=1e-8) then -learning_rate: the SM3-II "
            "accumulators with the cover of every axis's slices; rank < 2 keeps a full accumulator "
            "(optax fails on 0-d parameters; here they are treated like rank 1). eps is fixed there.",
            names={"sm3": {}},
        ),
    },
)


SPECS = (OPTIMISTIC_GRADIENT_DESCENT, OPTIMISTIC_ADAM, FROMAGE, SM3)
