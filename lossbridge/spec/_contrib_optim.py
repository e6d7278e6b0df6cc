"""Recent adaptive optimizers from ``optax.contrib``: ADOPT, AdEMAMix (and its simplified form), MADGRAD.

None of them is in ``torch.optim`` (2.13) or ``keras.optimizers`` (3.15); the ``optax`` convention
reproduces ``optax.contrib`` and lossbridge's own defaults are the papers' (equal to Optax's).

Prodigy and D-Adaptation AdamW (``optax.contrib.prodigy``, ``dadapt_adamw``) are not here: their
step size is estimated from sums over EVERY parameter tensor (an inner product with the distance
travelled and an L1 norm of a gradient sum), which the per-tensor ``update`` cannot express.
"""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._adaptive import BETA_1, BETA_2, EPS_ROOT, beta_param, bias_correction, eps_param, first_moment
from lossbridge.spec._first_order import is_zero, lr_param, round_through
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = [
    "ADEMAMIX",
    "ADOPT",
    "MADGRAD",
    "SIMPLIFIED_ADEMAMIX",
    "SPECS",
    "ademamix_update",
    "adopt_update",
    "madgrad_update",
    "simplified_ademamix_update",
]

_ADOPT_REF = (
    "Taniguchi, S., Harada, K., Minegishi, G., Oshima, Y., Jeong, S. C., Nagahara, G., Iiyama, T., "
    "Suzuki, M., Iwasawa, Y. & Matsuo, Y. (2024). ADOPT: Modified Adam Can Converge with Any beta_2 "
    "with the Optimal Rate. NeurIPS. https://arxiv.org/abs/2411.02853"
)
_ADEMAMIX_REF = (
    "Pagliardini, M., Ablin, P. & Grangier, D. (2025). The AdEMAMix Optimizer: Better, Faster, Older. "
    "ICLR. https://arxiv.org/abs/2409.03137"
)
_SIMPLIFIED_REF = (
    "Morwani, D., Vyas, N., Zhang, H. & Kakade, S. (2025). Connections between Schedule-Free "
    "Optimizers, AdEMAMix, and Accelerated SGD Variants. https://arxiv.org/abs/2502.02431"
)
_MADGRAD_REF = (
    "Defazio, A. & Jelassi, S. (2022). A Momentumized, Adaptive, Dual Averaged Gradient Method. JMLR 23. "
    "https://arxiv.org/abs/2101.11075"
)

_WEIGHT_DECAY = Param("weight_decay", 0.0, "decoupled weight decay, multiplied by lr: theta -= lr*wd*theta", low=0.0)
_SCHEDULABLE = (
    " A float, or a schedule (a lossbridge schedule or any callable of the number of updates taken "
    "so far, as Optax calls it) on the NumPy and JAX backends."
)


def _moments_init(*names: str) -> Any:
    def init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
        return {name: xp.zeros_like(param) for name in names}

    init.__doc__ = f"Zero slots {', '.join(names)}."
    return init


def _decayed(direction: Any, param: Any, *, lr: Any, weight_decay: Any) -> Any:
    r"""The increment :math:`-\eta(d + \lambda\theta)` (Optax's ``add_decayed_weights`` then ``-lr``)."""
    if not is_zero(weight_decay):
        direction = direction + weight_decay * param
    return -lr * direction


# -- ADOPT ------------------------------------------------------------------------------------------
def adopt_update(
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
    nesterov: bool,
    use_clipping: bool,
    clip_exponent: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One ADOPT step (see :data:`ADOPT`): normalize by the PREVIOUS second moment, then average.

    .. math::
        u_t = \operatorname{clip}_{(t-1)^{p}}\!\Big(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)}\Big),\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) u_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad \theta_t = \theta_{t-1} - \eta m_t

    The first step only initializes :math:`v_1 = g_1^2` and leaves :math:`\theta` and :math:`m`
    unchanged. Nesterov steps by :math:`\beta_1 m_t + (1-\beta_1) u_t`. Reference: Taniguchi et al.
    (2024), with the clipped normalization, https://arxiv.org/abs/2411.02853.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("adopt", lr=0.1), [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([0.5, -2.0])])  # the first step only records g^2
    >>> params[0].tolist()
    [1.0, -1.0]
    >>> opt.step(params, [np.array([0.5, -2.0])])  # u = g / |g| = sign(g), clipped to 1; m = 0.1 u
    >>> params[0].round(6).tolist()
    [0.99, -0.99]
    """
    later = xp.astype(step > 1, step.dtype)  # 0 at the first step, 1 after: no branch on the value
    b1 = 1.0 - (1.0 - beta_1) * later  # 1 at the first step: m is kept (at 0)
    b2 = beta_2 * later  # 0 at the first step: v_1 = g^2
    v_prev = state["v"]
    u = grad / xp.maximum(xp.sqrt(v_prev), xp.zeros_like(v_prev) + eps)
    if use_clipping:
        bound = (step - 1.0) ** clip_exponent
        u = xp.minimum(xp.maximum(u, -bound), bound)
    m = b1 * state["m"] + (1.0 - b1) * u
    v = b2 * v_prev + (1.0 - b2) * (grad * grad)
    direction = b1 * m + (1.0 - b1) * u if nesterov else m
    return -lr * direction, {"m": m, "v": v}


ADOPT = OptimizerSpec(
    name="adopt",
    elementwise=True,
    summary="ADOPT: Adam with the gradient normalized by the previous second moment before the momentum.",
    init=_moments_init("m", "v"),
    update=adopt_update,
    slots=("m", "v"),
    params=(
        lr_param(1e-3),
        BETA_1,
        beta_param("beta_2", 0.9999, "decay of the second-moment estimate"),
        eps_param(1e-6, "lower bound of sqrt(v) in the normalization (max, not a sum)"),
        Param("nesterov", False, "Nesterov momentum: step by beta_1*m_t + (1-beta_1)*u_t", kind="bool", static=True),
        Param(
            "use_clipping",
            True,
            "clip the normalized gradient to [-(t-1)^p, (t-1)^p] (the paper's stabilized ADOPT)",
            kind="bool",
            static=True,
        ),
        Param(
            "clip_exponent",
            0.25,
            "p in the clipping bound (t-1)^p (Optax's default clip_value_fn is x**0.25)",
            low=0.0,
        ),
    ),
    formula=(
        r"u_t = \operatorname{clip}_{(t-1)^{p}}\big(g_t / \max(\sqrt{v_{t-1}}, \epsilon)\big),\ "
        r"m_t = \beta_1 m_{t-1} + (1-\beta_1) u_t,\ v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\ "
        r"\theta_t = \theta_{t-1} - \eta m_t\ (t = 1:\ v_1 = g_1^2,\ m_1 = 0)"
    ),
    references=(_ADOPT_REF,),
    usage=(
        "A drop-in for Adam that converges for any beta_2 (Adam can diverge when beta_2 is too small for "
        "the problem); the default beta_2 is 0.9999. The first step only records g^2 and moves nothing. "
        "Keep the clipping on when training from scratch: without it the early normalized gradients "
        "can be huge where v_{t-1} is tiny."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.contrib.adopt",
            state={"m": "mu", "v": "nu"},
            notes="The same algorithm and defaults. Optax's clip_value_fn (a function of the 0-based "
            "update count) is expressed as the power (t-1)^clip_exponent; another function cannot be "
            "given. mu_dtype is not supported (the moments have the parameter's dtype).",
            names={"adopt": {}},
        ),
    },
)


# -- AdEMAMix ---------------------------------------------------------------------------------------
def ademamix_update(
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
    alpha: Any,
    eps: Any,
    eps_root: Any,
    weight_decay: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One AdEMAMix step (see :data:`ADEMAMIX`): Adam plus a slow, uncorrected EMA of the gradient.

    .. math::
        m_1 \leftarrow \beta_1 m_1 + (1-\beta_1) g,\ m_2 \leftarrow \beta_3 m_2 + (1-\beta_3) g,\
        v \leftarrow \beta_2 v + (1-\beta_2) g^2,\
        \Delta\theta = -\eta\Big(\frac{m_1/(1-\beta_1^t) + \alpha m_2}{\sqrt{v/(1-\beta_2^t) + \epsilon_r}
        + \epsilon} + \lambda\theta\Big)

    Reference: Pagliardini et al. (2025), Algorithm 1, https://arxiv.org/abs/2409.03137.

    >>> import numpy as np, lossbridge
    >>> opt = lossbridge.get("ademamix", lr=0.1, alpha=5.0, beta_3=0.9)
    >>> params = [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([0.5, -2.0])])  # (sign(g) + 5 * 0.1 g) / |g|
    >>> params[0].round(6).tolist()
    [0.85, -0.85]
    """
    m1 = first_moment(grad, state["m1"], beta_1)
    m2 = first_moment(grad, state["m2"], beta_3)
    v = beta_2 * state["v"] + (1.0 - beta_2) * (grad * grad)
    m1_hat = m1 / bias_correction(step, beta_1, xp=xp)
    v_hat = v / bias_correction(step, beta_2, xp=xp)
    direction = (m1_hat + alpha * m2) / (xp.sqrt(v_hat + eps_root) + eps)
    return _decayed(direction, param, lr=lr, weight_decay=weight_decay), {"m1": m1, "m2": m2, "v": v}


ADEMAMIX = OptimizerSpec(
    name="ademamix",
    elementwise=True,
    aliases=("ad_ema_mix",),
    summary="AdEMAMix: AdamW whose numerator adds alpha times a slow EMA of the gradient to the fast one.",
    init=_moments_init("m1", "m2", "v"),
    update=ademamix_update,
    slots=("m1", "m2", "v"),
    params=(
        lr_param(1e-3),
        BETA_1,
        BETA_2,
        beta_param("beta_3", 0.9999, "decay of the slow EMA m2." + _SCHEDULABLE),
        Param("alpha", 5.0, "weight of the slow EMA in the numerator." + _SCHEDULABLE, low=0.0),
        eps_param(1e-8),
        EPS_ROOT,
        _WEIGHT_DECAY,
    ),
    formula=(
        r"m_1 \leftarrow \beta_1 m_1 + (1-\beta_1) g_t,\ m_2 \leftarrow \beta_3 m_2 + (1-\beta_3) g_t,\ "
        r"v \leftarrow \beta_2 v + (1-\beta_2) g_t^2,\ "
        r"\theta_t = \theta_{t-1} - \eta\Big(\frac{m_1/(1-\beta_1^t) + \alpha m_2}"
        r"{\sqrt{v/(1-\beta_2^t)+\epsilon_r}+\epsilon} + \lambda\theta_{t-1}\Big)"
    ),
    references=(_ADEMAMIX_REF,),
    usage=(
        "Long training runs (LLM pre-training, many thousands of steps) where very old gradients still "
        "help; the slow EMA (beta_3 ~ 0.9999) remembers them. The paper warms alpha and beta_3 up with "
        "schedules (pass schedules as alpha= and beta_3=: None of these are required, a float is a "
        "constant); without warm-up a large alpha can destabilize the first steps. For short runs a "
        "smaller beta_3 (0.999) does better."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.contrib.ademamix",
            state={"m1": "m1", "m2": "m2", "v": "nu"},
            notes="The same algorithm and defaults (alpha 5.0; optax.contrib.scale_by_ademamix alone "
            "defaults to 6.0); b3 and alpha may be Optax schedules of the update count, as here. "
            "weight_decay is added to the direction before the -lr scaling (decoupled, times lr). The "
            "weight-decay mask is not supported.",
            names={"ademamix": {}},
            kwargs={"b3": "beta_3"},
        ),
    },
)


def simplified_ademamix_update(
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
    alpha: Any,
    eps: Any,
    eps_root: Any,
    weight_decay: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One simplified AdEMAMix step (see :data:`SIMPLIFIED_ADEMAMIX`): one undamped momentum sum.

    .. math::
        m \leftarrow \beta_1 m + g,\ v \leftarrow \beta_2 v + (1-\beta_2) g^2,\
        \Delta\theta = -\eta\Big(\frac{m + \alpha g}{\sqrt{v/(1-\beta_2^t) + \epsilon_r} + \epsilon}
        + \lambda\theta\Big)

    Reference: Morwani et al. (2025), https://arxiv.org/abs/2502.02431.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("simplified_ademamix", lr=0.1), [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([0.5, -2.0])])  # m = g, so the first step is -lr * sign(g)
    >>> params[0].round(6).tolist()
    [0.9, -0.9]
    """
    m = beta_1 * state["m"] + grad
    g2 = grad * grad
    v = g2 + beta_2 * (state["v"] - g2)
    v_hat = v / bias_correction(step, beta_2, xp=xp)
    direction = (m + alpha * grad) / (xp.sqrt(v_hat + eps_root) + eps)
    return _decayed(direction, param, lr=lr, weight_decay=weight_decay), {"m": m, "v": v}


SIMPLIFIED_ADEMAMIX = OptimizerSpec(
    name="simplified_ademamix",
    elementwise=True,
    summary="Simplified AdEMAMix: one undamped momentum sum plus alpha times the current gradient, over Adam's v.",
    init=_moments_init("m", "v"),
    update=simplified_ademamix_update,
    slots=("m", "v"),
    params=(
        lr_param(1e-3),
        beta_param("beta_1", 0.99, "decay of the (undamped) momentum sum m = beta_1*m + g"),
        beta_param("beta_2", 0.95, "decay of the second-moment estimate"),
        Param("alpha", 0.0, "weight of the current gradient in the numerator." + _SCHEDULABLE, low=0.0),
        eps_param(1e-8),
        EPS_ROOT,
        _WEIGHT_DECAY,
    ),
    formula=(
        r"m \leftarrow \beta_1 m + g_t,\ v \leftarrow \beta_2 v + (1-\beta_2) g_t^2,\ "
        r"\theta_t = \theta_{t-1} - \eta\Big(\frac{m + \alpha g_t}{\sqrt{v/(1-\beta_2^t)+\epsilon_r}+\epsilon}"
        r" + \lambda\theta_{t-1}\Big)"
    ),
    references=(_SIMPLIFIED_REF, _ADEMAMIX_REF),
    usage=(
        "AdEMAMix's benefit with one momentum buffer and no alpha warm-up. The momentum is a sum, not "
        "an average (m grows to about g/(1-beta_1)), so lr must be about (1-beta_1) times an Adam lr; "
        "alpha=0 is Adam with that rescaling. It is a different formula from ademamix, not a preset."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.contrib.simplified_ademamix",
            state={"m": "m", "v": "n"},
            notes="The same algorithm and defaults (b1 0.99, b2 0.95, alpha 0); alpha may be an Optax "
            "schedule. The weight-decay mask is not supported.",
            names={"simplified_ademamix": {}},
        ),
    },
)


# -- MADGRAD ----------------------------------------------------------------------------------------
def madgrad_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The starting point ``x0`` (a copy) and the weighted sums ``s`` and ``grad_sum_sq`` of gradients and squares."""
    zeros = xp.zeros_like(param)
    return {"x0": param + zeros, "s": zeros, "grad_sum_sq": xp.zeros_like(param)}


def _step_weight(step: Any, lr_eps: Any, dtype: str | None, *, xp: Any) -> Any:
    r"""MADGRAD's :math:`\lambda_t = (\eta+\epsilon)\sqrt{t}`, rounded as ``dtype`` says (see ``step_weight_dtype``)."""
    root = xp.sqrt(step)
    if dtype is None:
        return lr_eps * root
    root = round_through(root, "float32", xp=xp)
    if dtype == "sqrt_float32":
        return lr_eps * root
    return round_through(round_through(lr_eps * xp.ones_like(step), "float32", xp=xp) * root, "float32", xp=xp)


def madgrad_update(
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
    weight_decay: Any,
    step_weight_dtype: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    r"""One MADGRAD step (see :data:`MADGRAD`): dual averaging from ``x0`` with a cube-root scaling.

    .. math::
        \lambda_t = (\eta + \epsilon)\sqrt{t},\ s_t = s_{t-1} + \lambda_t g_t,\
        \nu_t = \nu_{t-1} + \lambda_t g_t^2,\
        z_t = x_0 - \frac{s_t}{\nu_t^{1/3} + \epsilon},\
        \theta_t = (1-\mu) z_t + \mu\theta_{t-1}

    ``g`` includes the L2 term ``weight_decay * theta``. Reference: Defazio & Jelassi (2022),
    Algorithm 1, https://arxiv.org/abs/2101.11075.

    >>> import numpy as np, lossbridge
    >>> opt = lossbridge.get("madgrad", lr=0.1, eps=0.0, momentum=0.0)
    >>> params = [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([0.8, -0.1])])  # x0 - 0.1 g / (0.1 g^2)^(1/3): 0.08 / 0.4, -0.01 / 0.1
    >>> params[0].round(6).tolist()
    [0.8, -0.9]
    """
    if not is_zero(weight_decay):
        grad = grad + weight_decay * param
    lam = _step_weight(step, lr + eps, step_weight_dtype, xp=xp)
    s = state["s"] + lam * grad
    nu = state["grad_sum_sq"] + lam * (grad * grad)
    z = state["x0"] - s / (nu ** (1.0 / 3.0) + eps)
    return (1.0 - momentum) * (z - param), {"x0": state["x0"], "s": s, "grad_sum_sq": nu}


MADGRAD = OptimizerSpec(
    name="madgrad",
    elementwise=True,
    summary="MADGRAD: momentumized dual averaging from the start point, scaled by the cube root of squared gradients.",
    init=madgrad_init,
    update=madgrad_update,
    slots=("x0", "s", "grad_sum_sq"),
    params=(
        lr_param(1e-2),
        Param("momentum", 0.9, "weight mu of the previous iterate: theta = (1-mu) z + mu theta", low=0.0, high=1.0,
              high_inclusive=False),
        eps_param(1e-6, "added to lr in the step weights and to the cube root in the denominator"),
        Param("weight_decay", 0.0, "L2 penalty added to the gradient", low=0.0),
        Param(
            "step_weight_dtype",
            None,
            "rounding of the step weight (lr+eps)*sqrt(t) (Optax computes sqrt of its int32 count in float32): "
            "None exact; 'sqrt_float32': sqrt(t) rounded to float32 (an array lr: a schedule, "
            "inject_hyperparams); 'float32': the whole weight in float32 (a Python-float lr)",
            kind="choice",
            choices=("sqrt_float32", "float32"),
            nullable=True,
            static=True,
        ),
    ),
    formula=(
        r"\lambda_t = (\eta+\epsilon)\sqrt{t},\ s_t = s_{t-1} + \lambda_t g_t,\ "
        r"\nu_t = \nu_{t-1} + \lambda_t g_t^2,\ z_t = \theta_0 - s_t / (\nu_t^{1/3} + \epsilon),\ "
        r"\theta_t = (1-\mu) z_t + \mu\theta_{t-1}"
    ),
    references=(_MADGRAD_REF,),
    usage=(
        "A single optimizer that matches SGD with momentum on vision and Adam on NLP; it needs a larger "
        "lr than Adam (1e-2 is typical) and no weight decay or a small one. It keeps the starting "
        "point x0 as state, so it uses three buffers per parameter; changing lr mid-run changes the "
        "weights of all later gradients."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.contrib.madgrad",
            state={"x0": "x0", "s": "s", "grad_sum_sq": "grad_sum_sq"},
            params={"step_weight_dtype": "float32"},
            notes="The same algorithm; the L2 weight decay is added to the gradient first "
            "(add_decayed_weights). Optax computes sqrt(count + 1) of its int32 count in float32: with a "
            "Python-float learning_rate the whole step weight (lr+eps)*sqrt(t) is then float32 "
            "(step_weight_dtype='float32', the default here); with an array learning rate (a schedule, "
            "inject_hyperparams) only sqrt(t) is (step_weight_dtype='sqrt_float32'). Measured: exact "
            "float64 misses optax by ~3e-8 relative over 100 steps. Optax takes the cube root with "
            "jnp.cbrt; here it is nu**(1/3), equal to within a few ulps.",
            names={"madgrad": {}},
        ),
    },
)

SPECS = (ADOPT, ADEMAMIX, SIMPLIFIED_ADEMAMIX, MADGRAD)
