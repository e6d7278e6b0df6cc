"""Adaptive first-order optimizers: Adam (with AMSGrad and both eps placements), AdamW and LAMB.

The three share one set of moment and bias-correction helpers: AdamW is Adam's own ``init`` and
``update`` with decoupled weight decay, and LAMB scales Adam's direction by a per-tensor trust ratio.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._first_order import DECOUPLED, is_zero, lr_param, weight_decay_terms
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._ops import abs_sq, scaled_norm
from lossbridge.spec._params import Param

__all__ = [
    "ADAM",
    "ADAMW",
    "LAMB",
    "SPECS",
    "adam_direction",
    "adam_init",
    "adam_moments",
    "adam_update",
    "bias_correction",
    "corrected_first_moment",
    "first_moment",
    "lamb_update",
    "rounded_to",
]

_ADAM_REFS = (
    "Kingma, D. P. & Ba, J. (2015). Adam: A Method for Stochastic Optimization. ICLR. "
    "https://arxiv.org/abs/1412.6980",
    "Reddi, S. J., Kale, S. & Kumar, S. (2018). On the Convergence of Adam and Beyond (AMSGrad). "
    "ICLR. https://openreview.net/forum?id=ryQu7f-RZ",
)
_ADAMW_REF = (
    "Loshchilov, I. & Hutter, F. (2019). Decoupled Weight Decay Regularization. ICLR. "
    "https://arxiv.org/abs/1711.05101"
)
_LAMB_REF = (
    "You, Y. et al. (2020). Large Batch Optimization for Deep Learning: Training BERT in 76 "
    "minutes. ICLR. https://arxiv.org/abs/1904.00962"
)



def beta_param(name: str, default: float, doc: str) -> Param:
    """A decay rate in [0, 1) (the betas of the Adam family)."""
    return Param(name, default, doc, low=0.0, high=1.0, high_inclusive=False)


def eps_param(default: float, doc: str = "added to the denominator for numerical stability") -> Param:
    """The ``eps`` parameter: ``default`` and a one-line ``doc``, non-negative."""
    return Param("eps", default, doc, low=0.0)


_LR = lr_param(1e-3)
BETA_1 = beta_param("beta_1", 0.9, "decay of the first-moment (mean) estimate")
BETA_2 = beta_param("beta_2", 0.999, "decay of the second-moment estimate")
EPS = eps_param(1e-8)
EPS_ROOT = Param("eps_root", 0.0, "added to the second moment inside the square root (Optax)", low=0.0)
_WEIGHT_DECAY = Param("weight_decay", 0.0, "weight decay coefficient", low=0.0)
_EPS_PLACEMENT = Param(
    "eps_placement",
    "corrected",
    "'corrected': eps is added to sqrt of the bias-corrected second moment (PyTorch, Optax); "
    "'uncorrected': to sqrt of the raw one, the bias corrections folded into the step size "
    "(Keras, Caffe: 'epsilon hat')",
    kind="choice",
    choices=("corrected", "uncorrected"),
    static=True,
)
_BIAS_CORRECTION_DTYPE = Param(
    "bias_correction_dtype",
    None,
    "round beta_1 and beta_2 to this dtype inside the bias corrections 1 - beta^t only (Keras casts "
    "its Python-float betas through float32 there, but not in the moment updates); None: exact",
    kind="choice",
    choices=("float32",),
    nullable=True,
    static=True,
)
NESTEROV = Param(
    "nesterov",
    False,
    "Nesterov momentum in the bias-corrected first moment, beta_1 m_t / (1 - beta_1^(t+1)) + "
    "(1 - beta_1) g_t / (1 - beta_1^t) (Optax's nesterov=True; optax.nadam is adam with it)",
    kind="bool",
    static=True,
)
_BIAS_CORRECTION_MU = Param(
    "bias_correction_mu", True, "divide m_t by 1 - beta_1^t (optax.amsgrad's switch)", kind="bool", static=True
)
_BIAS_CORRECTION_NU = Param(
    "bias_correction_nu", True, "divide v_t by 1 - beta_2^t (optax.amsgrad's switch)", kind="bool", static=True
)
_AMSGRAD = Param(
    "amsgrad", False, "AMSGrad: divide by the running maximum of the second moment", kind="bool", static=True
)
_AMSGRAD_MAX = Param(
    "amsgrad_max",
    "raw",
    "what AMSGrad takes the running maximum of: 'raw' second moment v_t (PyTorch, Keras) or the "
    "bias-corrected v_t / (1 - beta_2^t) (optax.amsgrad)",
    kind="choice",
    choices=("raw", "corrected"),
    static=True,
)

_ADAM_PARAMS = (
    _LR,
    BETA_1,
    BETA_2,
    EPS,
    EPS_ROOT,
    _EPS_PLACEMENT,
    _AMSGRAD,
    _AMSGRAD_MAX,
    _WEIGHT_DECAY,
    DECOUPLED,
    _BIAS_CORRECTION_DTYPE,
    NESTEROV,
    _BIAS_CORRECTION_MU,
    _BIAS_CORRECTION_NU,
)


def adam_init(param: Any, /, *, xp: Any, amsgrad: bool = False, **hyper: Any) -> dict[str, Any]:
    """First and second moments, and the running maximum ``v_max`` when ``amsgrad``."""
    state = {"m": xp.zeros_like(param), "v": xp.zeros_like(param)}
    if amsgrad:
        state["v_max"] = xp.zeros_like(param)
    return state


def first_moment(grad: Any, m: Any, beta_1: Any) -> Any:
    r"""The exponential moving average of the gradient, :math:`m + (1-\beta_1)(g - m)`."""
    return m + (1.0 - beta_1) * (grad - m)


def adam_moments(grad: Any, state: dict[str, Any], beta_1: Any, beta_2: Any, *, xp: Any) -> tuple[Any, Any]:
    """Exponential moving averages of the gradient and of its squared modulus (slots ``m`` and ``v``).

    For complex gradients ``m`` is complex and ``v`` averages :math:`|g|^2` (Optax's
    ``update_moment_per_elem_norm``).
    """
    v = beta_2 * state["v"] + (1.0 - beta_2) * abs_sq(grad, xp=xp)
    return first_moment(grad, state["m"], beta_1), v


def rounded_to(value: Any, like: Any, *, dtype: str | None, xp: Any) -> Any:
    """``value`` as an array like ``like``, passed through ``dtype`` first when one is given (Keras's casts)."""
    if dtype is None:
        return value
    return xp.astype(xp.astype(value * xp.ones_like(like), getattr(xp, dtype)), like.dtype)


def bias_correction(step: Any, beta: Any, *, dtype: str | None = None, xp: Any) -> Any:
    r""":math:`1 - \beta^t`, ``beta`` optionally rounded to ``dtype`` first."""
    return 1.0 - rounded_to(beta, step, dtype=dtype, xp=xp) ** step


def corrected_first_moment(
    m: Any, grad: Any, step: Any, beta_1: Any, *, nesterov: bool, xp: Any, dtype: str | None = None
) -> Any:
    r"""The bias-corrected first moment :math:`m_t / (1-\beta_1^t)`, or its Nesterov form.

    .. math:: \hat m_t = \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1) g_t}{1-\beta_1^t}
    """
    bc1 = bias_correction(step, beta_1, dtype=dtype, xp=xp)
    if not nesterov:
        return m / bc1
    ahead = bias_correction(step + 1.0, beta_1, dtype=dtype, xp=xp)
    return beta_1 * (m / ahead) + (1.0 - beta_1) * (grad / bc1)


def _bias_corrections(step: Any, beta_1: Any, beta_2: Any, *, dtype: str | None, xp: Any) -> tuple[Any, Any]:
    r""":math:`1 - \beta_1^t` and :math:`1 - \beta_2^t`, the betas optionally rounded to ``dtype`` first."""
    return bias_correction(step, beta_1, dtype=dtype, xp=xp), bias_correction(step, beta_2, dtype=dtype, xp=xp)


def _second_moment(
    v: Any, state: dict[str, Any], bc2: Any, *, amsgrad: bool, amsgrad_max: str, corrected: bool, xp: Any
) -> tuple[Any, dict[str, Any]]:
    """The second moment to divide by (bias-corrected if ``corrected``) and the new ``v_max`` slot."""
    if not amsgrad:
        return (v / bc2 if corrected else v), {}
    if amsgrad_max == "corrected":
        v_max = xp.maximum(state["v_max"], v / bc2)
        return (v_max if corrected else v_max * bc2), {"v_max": v_max}
    v_max = xp.maximum(state["v_max"], v)
    return (v_max / bc2 if corrected else v_max), {"v_max": v_max}


def adam_direction(
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    beta_1: Any,
    beta_2: Any,
    eps: Any,
    eps_root: Any,
    eps_placement: str = "corrected",
    amsgrad: bool = False,
    amsgrad_max: str = "raw",
    bias_correction_dtype: str | None = None,
    nesterov: bool = False,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> tuple[Any, Any, dict[str, Any]]:
    r"""Adam's step without the learning rate: ``(direction, scale, new_state)``.

    The step is ``-lr * scale * direction``; ``scale`` is 1 for the corrected eps placement and
    :math:`\sqrt{1-\beta_2^t}/(1-\beta_1^t)` for the uncorrected one.
    """
    m, v = adam_moments(grad, state, beta_1, beta_2, xp=xp)
    bc1, bc2 = _bias_corrections(step, beta_1, beta_2, dtype=bias_correction_dtype, xp=xp)
    if not bias_correction_mu:
        bc1 = xp.ones_like(bc1)
    if not bias_correction_nu:
        bc2 = xp.ones_like(bc2)
    corrected = eps_placement == "corrected"
    v_eff, extra = _second_moment(
        v, state, bc2, amsgrad=amsgrad, amsgrad_max=amsgrad_max, corrected=corrected, xp=xp
    )
    new_state = {"m": m, "v": v, **extra}
    if nesterov:  # the Nesterov first moment (bias-corrected), as the plain one's m / bc1
        m_hat = corrected_first_moment(m, grad, step, beta_1, nesterov=True, xp=xp, dtype=bias_correction_dtype)
        m = m_hat * bc1
    else:
        m_hat = m / bc1
    # a literal 0 eps_root adds nothing (v >= 0 is never -0.0, so v + 0.0 is v): no pass for it
    root = xp.sqrt(v_eff if is_zero(eps_root) else v_eff + eps_root)
    if corrected:
        return m_hat / (root + eps), 1.0, new_state
    return m / (root + eps), xp.sqrt(bc2) / bc1, new_state


def adam_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    weight_decay: Any,
    decoupled_weight_decay: bool,
    **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One Adam step (see :data:`ADAM`).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
        \Delta\theta = -\eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t) + \epsilon_r} + \epsilon}

    Reference: Kingma & Ba (2015), https://arxiv.org/abs/1412.6980.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("adam", lr=0.1), [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([0.5, -2.0])])  # the first step is -lr * sign(g)
    >>> params[0].round(6).tolist()
    [0.9, -0.9]
    """
    g, decay = weight_decay_terms(
        param, grad, lr=lr, weight_decay=weight_decay, decoupled=decoupled_weight_decay
    )
    direction, scale, new_state = adam_direction(g, state, step=step, xp=xp, **hyper)
    return decay - lr * scale * direction, new_state


_ADAM_FORMULA = (
    r"m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\ v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\ "
    r"\theta_t = \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)+\epsilon_r}+\epsilon}"
    r"\ \text{(uncorrected: } \eta\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\frac{m_t}{\sqrt{v_t}+\hat\epsilon})"
)

#: Caffe's SolverParameter field names for Adam's hyperparameters (src/caffe/proto/caffe.proto).
_CAFFE_KWARGS = {"base_lr": "lr", "momentum": "beta_1", "momentum2": "beta_2", "delta": "eps"}

_KERAS_NOTE = (
    "learning_rate and weight_decay live in float32 (rounded); the betas are cast through float32 only "
    "in the bias corrections; epsilon and the moment decays are used as exact Python floats."
)

ADAM = OptimizerSpec(
    name="adam",
    elementwise=True,
    summary="Adam: bias-corrected moment estimates scale each coordinate's step (optionally AMSGrad).",
    init=adam_init,
    update=adam_update,
    slots=("m", "v", "v_max"),
    params=_ADAM_PARAMS,
    formula=_ADAM_FORMULA,
    references=_ADAM_REFS,
    usage=(
        "The default first choice for deep networks, transformers and most non-convex problems; "
        "little lr tuning. Its L2 weight decay interacts badly with the adaptive scaling: "
        "prefer adamw for regularization."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.Adam",
            state={"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
            notes="eps added to sqrt of the bias-corrected v; weight_decay is L2 added to the gradient "
            "(decoupled_weight_decay=True makes it AdamW); AMSGrad keeps the max of the raw v.",
            names={"Adam": {}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Adam",
            state={"m": "_momentums", "v": "_velocities", "v_max": "_velocity_hats"},
            params={
                "eps": 1e-7,
                "eps_placement": "uncorrected",
                "decoupled_weight_decay": True,
                "bias_correction_dtype": "float32",
            },
            notes="epsilon hat (1e-7) on the raw sqrt(v); weight_decay decoupled (theta -= lr*wd*theta "
            "before the step). " + _KERAS_NOTE,
            hyper_dtype="float32",
            rounded=("lr", "weight_decay"),
            names={"Adam": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.adam / optax.amsgrad",
            state={"m": "mu", "v": "nu"},
            params={"amsgrad_max": "corrected"},
            notes="Same placement as PyTorch plus eps_root inside the sqrt; optax.amsgrad keeps the max "
            "of the bias-corrected v (bias_correction_mu / bias_correction_nu switch the corrections); no "
            "weight decay (use adamw); nesterov=True is optax.nadam's first moment. Complex parameters: "
            "v averages |g|^2. mu_dtype (the JAX backend) stores m in that dtype.",
            names={"adam": {}, "amsgrad": {"amsgrad": True, "amsgrad_max": "corrected"}},
            slot_dtypes={"mu_dtype": "m"},
        ),
        "caffe": Convention(
            "caffe",
            "caffe AdamSolver",
            params={"eps_placement": "uncorrected", "beta_1": 0.0},
            notes="delta (1e-8) on the raw sqrt(v); beta_1 is the solver's `momentum`, whose proto "
            "default is 0 (the example solvers set 0.9); L2 weight decay added to the gradient "
            "(regularization_type L1 is not covered). SolverParameter names: base_lr, momentum, "
            "momentum2, delta.",
            names={"Adam": {}},
            kwargs=_CAFFE_KWARGS,
        ),
    },
)

# AdamW is Adam's own update with the decay decoupled: one formula, other defaults.
_ADAMW_PARAMS = tuple(
    Param("weight_decay", 1e-2, "decoupled weight decay: theta -= lr*weight_decay*theta", low=0.0)
    if p.name == "weight_decay"
    else p
    for p in _ADAM_PARAMS
    if p.name != "decoupled_weight_decay"
)

ADAMW = OptimizerSpec(
    name="adamw",
    elementwise=True,
    aliases=("adam_w",),
    summary="AdamW: Adam with weight decay decoupled from the adaptive gradient step.",
    init=adam_init,
    update=partial(adam_update, decoupled_weight_decay=True),
    slots=("m", "v", "v_max"),
    params=_ADAMW_PARAMS,
    formula=_ADAM_FORMULA + r",\ \theta_t \mathrel{-}= \eta\lambda\theta_{t-1}",
    references=(_ADAMW_REF, *_ADAM_REFS),
    usage=(
        "The standard optimizer for transformers and large vision models; weight decay acts as "
        "real regularization independent of the gradient scale. Tune lr and weight_decay together."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.AdamW",
            state={"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
            notes="theta *= 1 - lr*wd, then Adam; wd 1e-2.",
            names={"AdamW": {}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.AdamW",
            state={"m": "_momentums", "v": "_velocities", "v_max": "_velocity_hats"},
            params={
                "weight_decay": 0.004,
                "eps": 1e-7,
                "eps_placement": "uncorrected",
                "bias_correction_dtype": "float32",
            },
            notes="Adam (epsilon hat 1e-7) plus the base optimizer's decoupled decay; wd 0.004. "
            + _KERAS_NOTE,
            hyper_dtype="float32",
            rounded=("lr", "weight_decay"),
            names={"AdamW": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.adamw",
            state={"m": "mu", "v": "nu"},
            params={"weight_decay": 1e-4, "amsgrad_max": "corrected"},
            notes="scale_by_adam, add_decayed_weights, then -lr: the same decoupled form; wd 1e-4. "
            "nesterov=True is optax.nadamw's first moment; mask (the JAX backend) leaves the decay out where "
            "it is False; mu_dtype stores m in that dtype.",
            names={"adamw": {}},
            slot_dtypes={"mu_dtype": "m"},
            masks={"mask": {"weight_decay": 0.0}},
        ),
    },
)


def lamb_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    weight_decay: Any,
    decoupled_weight_decay: bool = False,
    **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One LAMB step (see :data:`LAMB`): Adam's direction plus decay, scaled per tensor.

    .. math::
        r_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_r} + \epsilon} + \lambda\theta,\quad
        \theta_t = \theta_{t-1} - \eta\,\frac{\|\theta_{t-1}\|}{\|r_t\|}\,r_t

    The ratio is 1 when either norm is 0. Reference: You et al. (2020),
    https://arxiv.org/abs/1904.00962.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("lamb", lr=0.1), [np.array([3.0, -4.0])]
    >>> opt.step(params, [np.array([0.5, 2.0])])  # ratio ||theta|| / ||sign(g)|| = 5 / sqrt(2)
    >>> params[0].round(4).tolist()
    [2.6464, -4.3536]
    """
    direction, _, new_state = adam_direction(grad, state, step=step, xp=xp, **hyper)
    decay: Any = 0.0
    if decoupled_weight_decay:  # Keras: the decayed parameter enters the trust ratio
        _, decay = weight_decay_terms(param, grad, lr=lr, weight_decay=weight_decay, decoupled=True)
        param = param if is_zero(decay) else param + decay  # a literal 0: no pass adding it
    elif not is_zero(weight_decay):
        direction = direction + weight_decay * param
    w_norm = scaled_norm(param, xp=xp)  # m * sqrt(sum((x / m)^2)): no float32 underflow of the squares
    r_norm = scaled_norm(direction, xp=xp)
    one = xp.ones_like(w_norm)
    safe = xp.where(r_norm > 0, r_norm, one)
    ratio = xp.where((w_norm > 0) & (r_norm > 0), w_norm / safe, one)
    if is_zero(decay):  # 0 - s d is (-s) d: one pass over the tensor, not two
        return -(lr * ratio) * direction, new_state
    return decay - lr * ratio * direction, new_state


LAMB = OptimizerSpec(
    name="lamb",
    summary="LAMB: Adam's direction (plus weight decay) rescaled per tensor by a trust ratio.",
    init=adam_init,
    update=lamb_update,
    slots=("m", "v"),
    params=(
        _LR,
        BETA_1,
        BETA_2,
        eps_param(1e-6),
        EPS_ROOT,
        Param("weight_decay", 0.0, "decay added to the direction before the trust ratio", low=0.0),
        Param(
            "decoupled_weight_decay",
            False,
            "decay theta -= lr*weight_decay*theta before the step, outside the trust ratio (Keras)",
            kind="bool",
            static=True,
        ),
        _BIAS_CORRECTION_DTYPE,
    ),
    formula=(
        r"r_t = \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)+\epsilon_r}+\epsilon}"
        r" + \lambda\theta_{t-1},\ "
        r"\theta_t = \theta_{t-1} - \eta\,\frac{\|\theta_{t-1}\|_2}{\|r_t\|_2} r_t\ "
        r"(\text{ratio } 1 \text{ if either norm is } 0)"
    ),
    references=(_LAMB_REF, _ADAM_REFS[0]),
    usage=(
        "Very large batch training (BERT, ResNet at batch 32k+) where Adam's per-layer step sizes "
        "diverge; the trust ratio keeps each layer's step proportional to its weight norm."
    ),
    conventions={
        "keras": Convention(
            "keras",
            "keras.optimizers.Lamb",
            state={"m": "_momentums", "v": "_velocities"},
            params={"eps": 1e-7, "bias_correction_dtype": "float32", "decoupled_weight_decay": True},
            notes="eps 1e-7; weight_decay is the base optimizer's decoupled decay, applied before the "
            "step so the decayed weights enter the trust ratio. " + _KERAS_NOTE,
            hyper_dtype="float32",
            rounded=("lr", "weight_decay"),
            names={"Lamb": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.lamb",
            state={"m": "mu", "v": "nu"},
            notes="scale_by_adam, add_decayed_weights, scale_by_trust_ratio, then -lr; eps 1e-6.",
            names={"lamb": {}},
            masks={"mask": {"weight_decay": 0.0}},
        ),
    },
)

SPECS = (ADAM, ADAMW, LAMB)
