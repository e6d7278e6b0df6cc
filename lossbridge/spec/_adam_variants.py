"""Adam's relatives: Adamax, NAdam, RAdam, AdaBelief, Yogi and Adan.

Adamax uses an infinity norm, NAdam Nesterov momentum, RAdam a rectified variance; AdaBelief and
Yogi change the second-moment estimate; Adan adds a moment of gradient differences.

Each reuses Adam's moment and bias-correction helpers from :mod:`lossbridge.spec._adaptive`; only
what is new in the variant is written here. Weight decay is PyTorch's L2 term or the decoupled
``theta -= lr * wd * theta``, as in Adam (:func:`weight_decay_terms`).
"""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._adaptive import (
    BETA_1,
    BETA_2,
    EPS,
    EPS_ROOT,
    NESTEROV,
    adam_direction,
    adam_init,
    adam_moments,
    beta_param,
    bias_correction,
    corrected_first_moment,
    eps_param,
    first_moment,
    rounded_to,
)
from lossbridge.spec._first_order import DECOUPLED, lr_param, weight_decay_terms
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._ops import abs_sq
from lossbridge.spec._params import Param

__all__ = [
    "ADABELIEF",
    "ADAMAX",
    "ADAN",
    "NADAM",
    "RADAM",
    "SPECS",
    "YOGI",
    "adabelief_update",
    "adamax_init",
    "adamax_update",
    "adan_init",
    "adan_update",
    "nadam_init",
    "nadam_update",
    "radam_update",
    "yogi_init",
    "yogi_update",
]

_KINGMA = (
    "Kingma, D. P. & Ba, J. (2015). Adam: A Method for Stochastic Optimization (section 7.1, AdaMax). "
    "ICLR. https://arxiv.org/abs/1412.6980"
)
_DOZAT = (
    "Dozat, T. (2016). Incorporating Nesterov Momentum into Adam. ICLR workshop. "
    "https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ"
)
_LIU = (
    "Liu, L. et al. (2020). On the Variance of the Adaptive Learning Rate and Beyond. ICLR. "
    "https://arxiv.org/abs/1908.03265"
)
_LOSHCHILOV = (
    "Loshchilov, I. & Hutter, F. (2019). Decoupled Weight Decay Regularization. ICLR. https://arxiv.org/abs/1711.05101"
)


_WEIGHT_DECAY = Param("weight_decay", 0.0, "weight decay coefficient (L2, or decoupled)", low=0.0)
_FLOAT32_ONLY = ("float32",)
_KERAS_ROUNDED = ("lr", "weight_decay")
_KERAS_NOTE = "learning_rate and weight_decay live in float32 (rounded); weight decay is decoupled."


def _optax_w(weight_decay: float = 1e-4) -> dict[str, Any]:
    """The preset of an Optax ``...w`` alias: decoupled decay, default 1e-4, multiplied by lr."""
    return {"weight_decay": weight_decay, "decoupled_weight_decay": True}


# -- Adamax -----------------------------------------------------------------------------------------
def adamax_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The first moment ``m`` and the exponentially weighted infinity norm ``u``."""
    return {"m": xp.zeros_like(param), "u": xp.zeros_like(param)}


def adamax_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    beta_1: Any,
    beta_2: Any,
    eps: Any,
    eps_placement: str,
    weight_decay: Any,
    decoupled_weight_decay: bool,
    bias_correction_dtype: str | None,
) -> tuple[Any, dict[str, Any]]:
    r"""One Adamax step (see :data:`ADAMAX`).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon),\quad
        \Delta\theta = -\frac{\eta}{1-\beta_1^t}\,\frac{m_t}{u_t}

    Reference: Kingma & Ba (2015), section 7.1, https://arxiv.org/abs/1412.6980.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("adamax", lr=0.1), [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([0.5, -2.0])])  # the first step is about -lr * sign(g)
    >>> params[0].round(6).tolist()
    [0.9, -0.9]
    """
    g, decay = weight_decay_terms(param, grad, lr=lr, weight_decay=weight_decay, decoupled=decoupled_weight_decay)
    m = first_moment(g, state["m"], beta_1)
    bc1 = bias_correction(step, beta_1, dtype=bias_correction_dtype, xp=xp)
    if eps_placement == "max":  # PyTorch, Optax: eps inside the running maximum
        u = xp.maximum(beta_2 * state["u"], xp.abs(g) + eps)
        denom = u
    else:  # Keras: eps added to the norm in the denominator
        u = xp.maximum(beta_2 * state["u"], xp.abs(g))
        denom = u + eps
    return decay - (lr / bc1) * (m / denom), {"m": m, "u": u}


ADAMAX = OptimizerSpec(
    name="adamax",
    elementwise=True,
    aliases=("ada_max",),
    summary="Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm.",
    init=adamax_init,
    update=adamax_update,
    slots=("m", "u"),
    params=(
        lr_param(2e-3),
        BETA_1,
        beta_param("beta_2", 0.999, "decay of the exponentially weighted infinity norm"),
        EPS,
        Param(
            "eps_placement",
            "max",
            "'max': u = max(beta_2 u, |g| + eps), divide by u (PyTorch, Optax); "
            "'denominator': u = max(beta_2 u, |g|), divide by u + eps (Keras)",
            kind="choice",
            choices=("max", "denominator"),
            static=True,
        ),
        _WEIGHT_DECAY,
        DECOUPLED,
        Param(
            "bias_correction_dtype",
            None,
            "round beta_1 to this dtype inside 1 - beta_1^t only (Keras casts its Python float through "
            "float32 there); None: exact",
            kind="choice",
            choices=_FLOAT32_ONLY,
            nullable=True,
            static=True,
        ),
    ),
    formula=(
        r"m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\ u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon),\ "
        r"\theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\frac{m_t}{u_t}"
        r"\ \text{(Keras: } u_t = \max(\beta_2 u_{t-1}, |g_t|),\ \frac{m_t}{u_t + \epsilon})"
    ),
    references=(_KINGMA,),
    usage=(
        "An Adam variant whose step is bounded by lr/(1 - beta_1^t) per coordinate and is less sensitive "
        "to rare huge gradients (embeddings, sparse features). eps sits inside the running max in "
        "PyTorch and Optax but is added to the norm in Keras: equal for large norms, not for tiny ones."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.Adamax",
            state={"m": "exp_avg", "u": "exp_inf"},
            notes="lr 2e-3; eps inside the running max; weight_decay is L2 added to the gradient.",
            names={"Adamax": {}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Adamax",
            state={"m": "_m", "u": "_u"},
            params={
                "lr": 1e-3,
                "eps": 1e-7,
                "eps_placement": "denominator",
                "decoupled_weight_decay": True,
                "bias_correction_dtype": "float32",
            },
            notes="lr 1e-3, epsilon 1e-7 added to the norm; beta_1 is cast through float32 in 1 - beta_1^t "
            "only. " + _KERAS_NOTE,
            hyper_dtype="float32",
            rounded=_KERAS_ROUNDED,
            names={"Adamax": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.adamax / optax.adamaxw",
            state={"m": "mu", "u": "nu"},
            notes="eps inside the running max as in PyTorch; adamaxw adds decoupled decay (1e-4) times lr.",
            names={"adamax": {}, "adamaxw": _optax_w()},
            masks={"mask": {"weight_decay": 0.0}},
        ),
    },
)


# -- NAdam ------------------------------------------------------------------------------------------
def nadam_init(param: Any, /, *, xp: Any, momentum_schedule: str = "dozat", **hyper: Any) -> dict[str, Any]:
    """Adam's moments, plus the running product of the momentum schedule for ``"dozat"``."""
    state = adam_init(param, xp=xp)
    if momentum_schedule == "dozat":
        state["mu_product"] = xp.ones((), dtype=param.dtype)
    return state


def _dozat_mu(step: Any, beta_1: Any, base: Any, momentum_decay: Any) -> Any:
    r""":math:`\mu_t = \beta_1 (1 - \tfrac12 b^{t\psi})`, Dozat's momentum schedule (b = 0.96)."""
    return beta_1 * (1.0 - 0.5 * base ** (step * momentum_decay))


def _nadam_factors(
    step: Any,
    state: dict[str, Any],
    *,
    xp: Any,
    beta_1: Any,
    momentum_decay: Any,
    momentum_schedule: str,
    factor_dtype: str | None,
    product_dtype: str | None,
) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    r"""``(mu_t, mu_{t+1}, 1 - prod_t, 1 - prod_{t+1}, new_state_entries)`` of the momentum schedule."""
    if momentum_schedule == "constant":  # mu_t = beta_1: prod_t = beta_1^t (Optax's nesterov Adam)
        return beta_1, beta_1, bias_correction(step, beta_1, xp=xp), bias_correction(step + 1.0, beta_1, xp=xp), {}
    # the running product takes exact factors (Keras) or is kept in product_dtype, factors included
    # (PyTorch's float32 tensor times a Python float); the per-step ones may pass through factor_dtype
    factor = rounded_to(_dozat_mu(step, beta_1, 0.96, momentum_decay), step, dtype=product_dtype, xp=xp)
    product = rounded_to(state["mu_product"] * factor, step, dtype=product_dtype, xp=xp)
    b1 = rounded_to(beta_1, step, dtype=factor_dtype, xp=xp)
    base = rounded_to(0.96, step, dtype=factor_dtype, xp=xp)
    mu, mu_next = (_dozat_mu(s, b1, base, momentum_decay) for s in (step, step + 1.0))
    return mu, mu_next, 1.0 - product, 1.0 - product * mu_next, {"mu_product": product}


def nadam_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    beta_1: Any,
    beta_2: Any,
    eps: Any,
    eps_root: Any,
    momentum_decay: Any,
    momentum_schedule: str,
    weight_decay: Any,
    decoupled_weight_decay: bool,
    factor_dtype: str | None,
    product_dtype: str | None,
    nesterov: bool = True,
) -> tuple[Any, dict[str, Any]]:
    r"""One NAdam step (see :data:`NADAM`).

    .. math::
        \hat m_t = \frac{\mu_{t+1} m_t}{1 - \prod_{i\le t+1}\mu_i} + \frac{(1-\mu_t) g_t}{1-\prod_{i\le t}\mu_i},
        \quad \Delta\theta = -\eta\,\frac{\hat m_t}{\sqrt{v_t/(1-\beta_2^t) + \epsilon_r} + \epsilon}

    Reference: Dozat (2016), https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("nadam", lr=0.1, momentum_schedule="constant"), [np.array([1.0])]
    >>> opt.step(params, [np.array([2.0])])  # t = 1: m_hat = g (1 + beta_1 / (1 + beta_1)), sqrt(v_hat) = |g|
    >>> params[0].round(6).tolist()
    [0.852632]
    """
    g, decay = weight_decay_terms(param, grad, lr=lr, weight_decay=weight_decay, decoupled=decoupled_weight_decay)
    b1, b2 = (rounded_to(b, step, dtype=factor_dtype, xp=xp) for b in (beta_1, beta_2))
    m, v = adam_moments(g, state, b1, b2, xp=xp)
    mu, mu_next, one_minus_prod, one_minus_next, extra = _nadam_factors(
        step,
        state,
        xp=xp,
        beta_1=beta_1,
        momentum_decay=momentum_decay,
        momentum_schedule=momentum_schedule,
        factor_dtype=factor_dtype,
        product_dtype=product_dtype,
    )
    m_hat = mu_next * m / one_minus_next + (1.0 - mu) * g / one_minus_prod if nesterov else m / one_minus_prod
    denom = xp.sqrt(v / bias_correction(step, b2, xp=xp) + eps_root) + eps
    return decay - lr * m_hat / denom, {"m": m, "v": v, **extra}


_DTYPE_DOC = "; None: exact float64 arithmetic"

NADAM = OptimizerSpec(
    name="nadam",
    elementwise=True,
    aliases=("nesterov_adam",),
    summary="NAdam: Adam with Nesterov momentum (the next step's momentum applied now).",
    init=nadam_init,
    update=nadam_update,
    slots=("m", "v", "mu_product"),
    params=(
        lr_param(2e-3),
        BETA_1,
        BETA_2,
        EPS,
        EPS_ROOT,
        Param(
            "momentum_schedule",
            "dozat",
            "'dozat': mu_t = beta_1 (1 - 0.5 * 0.96^(t * momentum_decay)) (PyTorch, Keras); "
            "'constant': mu_t = beta_1 (Optax's nadam, Adam with nesterov=True)",
            kind="choice",
            choices=("dozat", "constant"),
            static=True,
        ),
        Param(
            "nesterov",
            True,
            "False: the plain bias-corrected first moment m_t / (1 - prod mu_i), no look-ahead (Optax's "
            "nadam(nesterov=False), which is adam with momentum_schedule='constant')",
            kind="bool",
            static=True,
        ),
        Param(
            "momentum_decay",
            4e-3,
            "psi in Dozat's schedule 0.96^(t psi) (PyTorch 4e-3; Keras uses 0.96^t, i.e. 1)",
            low=0.0,
        ),
        _WEIGHT_DECAY,
        DECOUPLED,
        Param(
            "factor_dtype",
            None,
            "round beta_1, beta_2 and the schedule base 0.96 to this dtype everywhere except in the running "
            "product of mu (Keras Nadam casts its Python floats through float32 in update_step)" + _DTYPE_DOC,
            kind="choice",
            choices=_FLOAT32_ONLY,
            nullable=True,
            static=True,
        ),
        Param(
            "product_dtype",
            None,
            "keep the running product of mu, and each factor entering it, in this dtype (PyTorch keeps it "
            "in a tensor of the default dtype, float32)" + _DTYPE_DOC,
            kind="choice",
            choices=_FLOAT32_ONLY,
            nullable=True,
            static=True,
        ),
    ),
    formula=(
        r"\mu_t = \beta_1\big(1 - \tfrac12\,0.96^{t\psi}\big),\ "
        r"\hat m_t = \frac{\mu_{t+1} m_t}{1-\prod_{i=1}^{t+1}\mu_i} + \frac{(1-\mu_t) g_t}{1-\prod_{i=1}^{t}\mu_i},\ "
        r"\theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{v_t/(1-\beta_2^t)+\epsilon_r}+\epsilon}"
        r"\ (\text{constant schedule: } \mu_t = \beta_1)"
    ),
    references=(_DOZAT, _LOSHCHILOV),
    usage=(
        "A drop-in for Adam that often converges a little faster (language models, RNNs). Beware: PyTorch "
        "and Keras warm the momentum up with Dozat's schedule (Keras's decays 250x faster: 0.96^t), Optax "
        "uses plain beta_1; the first hundreds of steps differ accordingly. NAdamW is the decoupled-decay form."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.NAdam",
            state={"m": "exp_avg", "v": "exp_avg_sq", "mu_product": "mu_product"},
            params={"product_dtype": "float32"},
            notes="lr 2e-3, momentum_decay 4e-3; the product of mu is a float32 tensor under torch's default "
            "dtype; weight_decay L2 unless decoupled_weight_decay=True (NAdamW).",
            names={"NAdam": {}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Nadam",
            state={"m": "_momentums", "v": "_velocities", "mu_product": "_u_product"},
            params={
                "lr": 1e-3,
                "eps": 1e-7,
                "momentum_decay": 1.0,
                "decoupled_weight_decay": True,
                "factor_dtype": "float32",
            },
            notes="mu_t = beta_1 (1 - 0.5 * 0.96^t); epsilon 1e-7; betas and 0.96 cast through float32 in "
            "update_step, exact in the running product. " + _KERAS_NOTE,
            hyper_dtype="float32",
            rounded=_KERAS_ROUNDED,
            names={"Nadam": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.nadam / optax.nadamw",
            state={"m": "mu", "v": "nu"},
            params={"lr": 1e-3, "momentum_schedule": "constant"},
            notes="adam(nesterov=True): mu_t = beta_1, so the products are beta_1^t and beta_1^(t+1); "
            "nadamw adds decoupled decay (1e-4) times lr.",
            names={"nadam": {}, "nadamw": _optax_w()},
            slot_dtypes={"mu_dtype": "m"},
            masks={"mask": {"weight_decay": 0.0}},
        ),
    },
)


# -- RAdam ------------------------------------------------------------------------------------------
def _rectification(step: Any, beta_2: Any, *, xp: Any) -> tuple[Any, Any]:
    r"""``(rho_t, r_t)``: the SMA length and the variance rectification term (0 where undefined)."""
    rho_inf = 2.0 / (1.0 - beta_2) - 1.0
    beta_2_t = beta_2**step
    rho = rho_inf - 2.0 * step * beta_2_t / (1.0 - beta_2_t)
    ratio = (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
    return rho, xp.sqrt(xp.clip(ratio, min=0.0))


def radam_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    threshold: Any,
    threshold_inclusive: bool,
    weight_decay: Any,
    decoupled_weight_decay: bool,
    **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One RAdam step (see :data:`RADAM`).

    .. math::
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t},\quad
        \Delta\theta = -\eta\begin{cases} r_t\,\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon} & \rho_t > \tau\\
        \hat m_t & \text{otherwise}\end{cases}

    Reference: Liu et al. (2020), https://arxiv.org/abs/1908.03265.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("radam", lr=0.1), [np.array([1.0])]
    >>> opt.step(params, [np.array([2.0])])  # rho_1 = 1: an un-adapted momentum step -lr * m_hat
    >>> params[0].round(6).tolist()
    [0.8]
    """
    g, decay = weight_decay_terms(param, grad, lr=lr, weight_decay=weight_decay, decoupled=decoupled_weight_decay)
    direction, scale, new_state = adam_direction(g, state, step=step, xp=xp, **hyper)
    nesterov = hyper.get("nesterov", False)
    m_hat = corrected_first_moment(new_state["m"], g, step, hyper["beta_1"], nesterov=nesterov, xp=xp)
    rho, rect = _rectification(step, hyper["beta_2"], xp=xp)
    adaptive = rho >= threshold if threshold_inclusive else rho > threshold
    return decay - lr * xp.where(adaptive, rect * scale * direction, m_hat), new_state


RADAM = OptimizerSpec(
    name="radam",
    elementwise=True,
    aliases=("rectified_adam",),
    summary="RAdam: Adam whose adaptive step is switched on and rectified by the variance of its estimate.",
    init=adam_init,
    update=radam_update,
    slots=("m", "v"),
    params=(
        lr_param(1e-3),
        BETA_1,
        BETA_2,
        EPS,
        EPS_ROOT,
        Param(
            "eps_placement",
            "corrected",
            "'corrected': m_hat / (sqrt(v_hat) + eps) (Optax); 'uncorrected': "
            "sqrt(1 - beta_2^t) m_hat / (sqrt(v) + eps) (PyTorch)",
            kind="choice",
            choices=("corrected", "uncorrected"),
            static=True,
        ),
        Param("threshold", 5.0, "the adaptive step is used once rho_t exceeds this SMA length", low=4.0),
        Param(
            "threshold_inclusive",
            False,
            "rho_t >= threshold (Optax) instead of rho_t > threshold (PyTorch)",
            kind="bool",
            static=True,
        ),
        _WEIGHT_DECAY,
        DECOUPLED,
        NESTEROV,
    ),
    formula=(
        r"\rho_\infty = \frac{2}{1-\beta_2} - 1,\ \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t},\ "
        r"r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}},\ "
        r"\theta_t = \theta_{t-1} - \eta\,\big(\rho_t > \tau\ ?\ r_t\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}"
        r" : \hat m_t\big)"
    ),
    references=(_LIU, _LOSHCHILOV),
    usage=(
        "Adam without a warm-up schedule: the first steps (rho_t <= 5, about 5-6 steps with beta_2 = 0.999) "
        "are plain bias-corrected momentum, then the adaptive step is phased in. PyTorch adds eps to the raw "
        "sqrt(v), Optax to the corrected one."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.RAdam",
            state={"m": "exp_avg", "v": "exp_avg_sq"},
            params={"eps_placement": "uncorrected"},
            notes="threshold 5 (strict); eps on the uncorrected sqrt(v); weight_decay L2 unless "
            "decoupled_weight_decay=True.",
            names={"RAdam": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.radam",
            state={"m": "mu", "v": "nu"},
            params={"threshold_inclusive": True},
            notes="rho_t >= threshold (default 5); eps (and eps_root) on the corrected v; no weight decay.",
            names={"radam": {}},
        ),
    },
)


# -- AdaBelief and Yogi: Adam with another second-moment estimate ----------------------------------------
_ZHUANG = (
    "Zhuang, J. et al. (2020). AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients. "
    "NeurIPS. https://arxiv.org/abs/2010.07468"
)
_ZAHEER = (
    "Zaheer, M., Reddi, S., Sachan, D., Kale, S. & Kumar, S. (2018). Adaptive Methods for Nonconvex "
    "Optimization (Yogi). NeurIPS. https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization"
)


def _corrected_step(
    m: Any, v: Any, step: Any, *, xp: Any, beta_1: Any, beta_2: Any, eps: Any, eps_root: Any,
    grad: Any = None, nesterov: bool = False,
) -> Any:
    r"""Adam's bias-corrected direction :math:`\hat m / (\sqrt{\hat v + \epsilon_r} + \epsilon)` for given moments."""
    m_hat = corrected_first_moment(m, grad, step, beta_1, nesterov=nesterov, xp=xp)
    return m_hat / (xp.sqrt(v / bias_correction(step, beta_2, xp=xp) + eps_root) + eps)


def adabelief_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    beta_1: Any,
    beta_2: Any,
    eps: Any,
    eps_root: Any,
    nesterov: bool = False,
) -> tuple[Any, dict[str, Any]]:
    r"""One AdaBelief step (see :data:`ADABELIEF`).

    .. math::
        s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon_r,\quad
        \Delta\theta = -\eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{s_t/(1-\beta_2^t)} + \epsilon}

    Reference: Zhuang et al. (2020), https://arxiv.org/abs/2010.07468.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("adabelief", lr=0.1, eps=0.0, eps_root=0.0), [np.array([1.0])]
    >>> opt.step(params, [np.array([2.0])])  # s_1 = (1-b2) (b1 g)^2: the step is -lr / b1
    >>> params[0].round(6).tolist()
    [0.888889]
    """
    m = first_moment(grad, state["m"], beta_1)
    surprise = grad - m
    v = beta_2 * state["v"] + (1.0 - beta_2) * abs_sq(surprise, xp=xp) + eps_root
    direction = _corrected_step(
        m, v, step, xp=xp, beta_1=beta_1, beta_2=beta_2, eps=eps, eps_root=0.0, grad=grad, nesterov=nesterov
    )
    return -lr * direction, {"m": m, "v": v}


ADABELIEF = OptimizerSpec(
    name="adabelief",
    elementwise=True,
    aliases=("ada_belief",),
    summary="AdaBelief: Adam whose second moment tracks the gradient's deviation from its running mean.",
    init=adam_init,
    update=adabelief_update,
    slots=("m", "v"),
    params=(
        lr_param(1e-3),
        BETA_1,
        beta_param("beta_2", 0.999, "decay of the estimate of (g - m)^2"),
        eps_param(1e-16),
        Param("eps_root", 1e-16, "added to the belief s_t at every step (stored in the state)", low=0.0),
        NESTEROV,
    ),
    formula=(
        r"m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\ s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon_r,\ "
        r"\theta_t = \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{s_t/(1-\beta_2^t)}+\epsilon}"
    ),
    references=(_ZHUANG,),
    usage=(
        "Adam's speed with steps that shrink when the gradient is predictable and grow when it is not; "
        "reported to generalize like SGD on vision tasks and to stabilize GANs. eps defaults to 1e-16, "
        "not 1e-8: the belief can be tiny."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.adabelief",
            state={"m": "mu", "v": "nu"},
            notes="eps and eps_root 1e-16; eps_root is added to the stored s_t each step; nesterov as "
            "optax.adam's.",
            names={"adabelief": {}},
        ),
    },
)


def yogi_init(param: Any, /, *, xp: Any, initial_accumulator: Any = 1e-6, **hyper: Any) -> dict[str, Any]:
    """Both moments start at ``initial_accumulator`` (Optax: 1e-6), not 0."""
    start = xp.full_like(param, initial_accumulator)
    return {"m": start, "v": start}


def yogi_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    beta_1: Any,
    beta_2: Any,
    eps: Any,
    eps_root: Any,
    initial_accumulator: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One Yogi step (see :data:`YOGI`).

    .. math::
        v_t = v_{t-1} - (1-\beta_2)\,\operatorname{sign}(v_{t-1} - g_t^2)\,g_t^2,\quad
        \Delta\theta = -\eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t) + \epsilon_r} + \epsilon}

    Reference: Zaheer et al. (2018), NeurIPS.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("yogi", lr=0.1, eps=0.0, initial_accumulator=0.0), [np.array([1.0])]
    >>> opt.step(params, [np.array([2.0])])  # from zero moments, the first step is Adam's -lr * sign(g)
    >>> params[0].round(6).tolist()
    [0.9]
    """
    m = first_moment(grad, state["m"], beta_1)
    g2 = abs_sq(grad, xp=xp)
    v = state["v"] - (1.0 - beta_2) * xp.sign(state["v"] - g2) * g2
    direction = _corrected_step(m, v, step, xp=xp, beta_1=beta_1, beta_2=beta_2, eps=eps, eps_root=eps_root)
    return -lr * direction, {"m": m, "v": v}


YOGI = OptimizerSpec(
    name="yogi",
    elementwise=True,
    summary="Yogi: Adam whose second moment moves additively towards g^2, so it cannot shrink too fast.",
    init=yogi_init,
    update=yogi_update,
    slots=("m", "v"),
    params=(
        lr_param(1e-2),
        BETA_1,
        BETA_2,
        Param("eps", 1e-3, "added to the denominator (large by design)", low=0.0),
        EPS_ROOT,
        Param("initial_accumulator", 1e-6, "initial value of both moments", low=0.0),
    ),
    formula=(
        r"v_t = v_{t-1} - (1-\beta_2)\operatorname{sign}(v_{t-1}-g_t^2)\,g_t^2,\ "
        r"\theta_t = \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)+\epsilon_r}+\epsilon}"
    ),
    references=(_ZAHEER,),
    usage=(
        "For problems where Adam's effective step explodes after a run of small gradients (sparse "
        "features, recommendation, some NLP): v changes by at most (1-beta_2) g^2 per step. Note eps 1e-3 "
        "and moments starting at 1e-6, both bias-corrected as in Optax."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.yogi",
            state={"m": "mu", "v": "nu"},
            notes="lr required; eps 1e-3, eps_root 0, initial accumulator 1e-6 for m and v, both bias-corrected.",
            names={"yogi": {}},
        ),
    },
)


# -- Adan -------------------------------------------------------------------------------------------
def adan_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """Moments of the gradient ``m``, of its difference ``v``, of the squared term ``n``; the last gradient."""
    zeros = xp.zeros_like(param)
    return {"m": zeros, "v": zeros, "n": zeros, "prev_grad": zeros}


def adan_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    beta_1: Any,
    beta_2: Any,
    beta_3: Any,
    eps: Any,
    eps_root: Any,
    weight_decay: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One Adan step (see :data:`ADAN`).

    .. math::
        d_t = g_t - g_{t-1}\ (d_1 = 0),\quad
        u_t = \frac{\hat m_t + (1-\beta_2)\hat v_t}{\sqrt{\hat n_t + \epsilon_r} + \epsilon},\quad
        \Delta\theta = -\eta\,(u_t + \lambda\theta)

    Reference: Xie et al. (2022), https://arxiv.org/abs/2208.06677.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("adan", lr=0.1, eps=0.0, eps_root=0.0), [np.array([1.0])]
    >>> opt.step(params, [np.array([2.0])])  # d_1 = 0, so the first step is Adam's -lr * sign(g)
    >>> params[0].round(6).tolist()
    [0.9]
    """
    diff = xp.where(step == 1, xp.zeros_like(grad), grad - state["prev_grad"])
    m = first_moment(grad, state["m"], beta_1)
    v = first_moment(diff, state["v"], beta_2)
    mixed = grad + (1.0 - beta_2) * diff
    n = beta_3 * state["n"] + (1.0 - beta_3) * (mixed * mixed)
    bc1, bc2, bc3 = (bias_correction(step, b, xp=xp) for b in (beta_1, beta_2, beta_3))
    u = (m / bc1 + (1.0 - beta_2) * (v / bc2)) / (xp.sqrt(n / bc3 + eps_root) + eps)
    _, decay = weight_decay_terms(param, grad, lr=lr, weight_decay=weight_decay, decoupled=True)
    return decay - lr * u, {"m": m, "v": v, "n": n, "prev_grad": grad}


ADAN = OptimizerSpec(
    name="adan",
    elementwise=True,
    summary="Adan: adaptive Nesterov momentum from moments of the gradient and of its differences.",
    init=adan_init,
    update=adan_update,
    slots=("m", "v", "n", "prev_grad"),
    params=(
        lr_param(1e-3),
        beta_param("beta_1", 0.98, "decay of the gradient average (1 - the paper's beta_1)"),
        beta_param("beta_2", 0.92, "decay of the gradient-difference average (1 - the paper's beta_2)"),
        beta_param("beta_3", 0.99, "decay of the squared-term average (1 - the paper's beta_3)"),
        EPS,
        Param("eps_root", 1e-8, "added to the squared term inside the square root", low=0.0),
        Param("weight_decay", 0.0, "decoupled decay: theta -= lr*weight_decay*theta", low=0.0),
    ),
    formula=(
        r"d_t = g_t - g_{t-1},\ m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\ v_t = \beta_2 v_{t-1} + (1-\beta_2) d_t,\ "
        r"n_t = \beta_3 n_{t-1} + (1-\beta_3)(g_t + (1-\beta_2) d_t)^2,\ "
        r"\theta_t = \theta_{t-1} - \eta\big(\frac{\hat m_t + (1-\beta_2)\hat v_t}{\sqrt{\hat n_t+\epsilon_r}+\epsilon}"
        r" + \lambda\theta_{t-1}\big)"
    ),
    references=(
        "Xie, X., Zhou, P., Li, H., Lin, Z. & Yan, S. (2022). Adan: Adaptive Nesterov Momentum Algorithm "
        "for Faster Optimizing Deep Models. https://arxiv.org/abs/2208.06677",
    ),
    usage=(
        "Vision transformers, CNNs and LLM pre-training with large batches, often at a larger lr than Adam. "
        "Keeps four slots per parameter (twice Adam's memory). Weight decay here is Optax's "
        "lr-scaled decoupled form, not the paper's proximal division."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.adan",
            state={"m": "m", "v": "v", "n": "n", "prev_grad": "g"},
            notes="b1 0.98, b2 0.92, b3 0.99, eps 1e-8, eps_root 1e-8; add_decayed_weights before -lr.",
            names={"adan": {}},
            masks={"mask": {"weight_decay": 0.0}},
            kwargs={"b3": "beta_3"},
        ),
    },
)

SPECS = (ADAMAX, NADAM, RADAM, ADABELIEF, YOGI, ADAN)
