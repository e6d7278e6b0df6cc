"""Optimizers each in one framework's catalog: ASGD (PyTorch), FTRL (Keras), LARS and NovoGrad (Optax)."""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._first_order import is_zero, lr_param, momentum_step, round_through, sgd_init
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._ops import abs_sq, scaled_norm
from lossbridge.spec._params import Param

__all__ = [
    "ASGD",
    "FTRL",
    "LARS",
    "NOVOGRAD",
    "SPECS",
    "asgd_init",
    "asgd_update",
    "ftrl_init",
    "ftrl_update",
    "lars_update",
    "novograd_init",
    "novograd_update",
]


# -- ASGD -------------------------------------------------------------------------------------------
def asgd_init(param: Any, /, *, xp: Any, lr: Any, scalar_dtype: str | None = None, **hyper: Any) -> dict[str, Any]:
    """The step size to use next (0-d, ``lr`` at first) and the running average ``ax`` of the iterates."""
    return {"eta": round_through(xp.zeros((), dtype=param.dtype) + lr, scalar_dtype, xp=xp), "ax": xp.zeros_like(param)}


def asgd_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    decay: Any,
    alpha: Any,
    t0: Any,
    weight_decay: Any,
    scalar_dtype: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    r"""One averaged-SGD step (see :data:`ASGD`); ``ax`` holds the Polyak average of the iterates.

    .. math::
        \theta_t = \theta_{t-1}(1 - \lambda\eta_t) - \eta_t g_t,\quad
        \bar\theta_t = \bar\theta_{t-1} + \mu_t(\theta_t - \bar\theta_{t-1}),\quad
        \eta_{t+1} = \frac{\eta}{(1 + \lambda\eta t)^{\alpha}},\quad \mu_t = \frac{1}{\max(1, t - 1 - t_0)}

    Reference: Polyak & Juditsky (1992); Bottou (2012), Stochastic Gradient Descent Tricks.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("asgd", lr=0.1, decay=0.0), [np.array([1.0])]
    >>> opt.step(params, [np.array([2.0])])  # eta_1 = lr
    >>> params[0].round(6).tolist()
    [0.8]
    """
    if not is_zero(weight_decay):
        grad = grad + weight_decay * param
    eta = state["eta"]
    delta = -(decay * eta) * param - eta * grad
    new = param + delta
    mu = round_through(1.0 / xp.maximum(xp.ones_like(step), step - 1.0 - t0), scalar_dtype, xp=xp)
    ax = xp.where(mu == 1.0, new, state["ax"] + (new - state["ax"]) * mu)
    next_eta = round_through(lr / (1.0 + decay * lr * step) ** alpha, scalar_dtype, xp=xp)
    return delta, {"eta": next_eta, "ax": ax}


ASGD = OptimizerSpec(
    name="asgd",
    elementwise=True,
    aliases=("averaged_sgd", "polyak_averaging_sgd"),
    summary="Averaged SGD: SGD with a decaying step and a running (Polyak) average of the iterates.",
    init=asgd_init,
    update=asgd_update,
    slots=("eta", "ax"),
    params=(
        Param("lr", 1e-2, "initial step size eta_1 (changes take effect one step later, as in PyTorch)", low=0.0),
        Param("decay", 1e-4, "lambda: decay of the step size and shrinkage of the parameter", low=0.0),
        Param("alpha", 0.75, "power of the step-size decay", low=0.0),
        Param("t0", 1e6, "the step after which averaging starts", low=0.0),
        Param("weight_decay", 0.0, "L2 penalty added to the gradient", low=0.0),
        Param(
            "scalar_dtype",
            None,
            "round the stored step size eta and the averaging weight mu to this dtype (PyTorch keeps "
            "them in its scalar dtype, float32 unless the default dtype is float64); None: exact",
            kind="choice",
            choices=("float32",),
            nullable=True,
            static=True,
        ),
    ),
    formula=(
        r"\theta_t = \theta_{t-1}(1-\lambda\eta_t) - \eta_t g_t,\ "
        r"\bar\theta_t = \bar\theta_{t-1} + \frac{\theta_t - \bar\theta_{t-1}}{\max(1, t-1-t_0)},\ "
        r"\eta_{t+1} = \eta (1 + \lambda\eta t)^{-\alpha}"
    ),
    references=(
        "Polyak, B. T. & Juditsky, A. B. (1992). Acceleration of Stochastic Approximation by Averaging. "
        "SIAM J. Control Optim. 30(4). https://doi.org/10.1137/0330046",
        "Bottou, L. (2012). Stochastic Gradient Descent Tricks. Neural Networks: Tricks of the Trade. "
        "https://doi.org/10.1007/978-3-642-35289-8_25",
    ),
    usage=(
        "Convex or nearly convex stochastic problems (linear models) where the averaged iterate "
        "(slot `ax`) converges faster than the last one; evaluate with `ax`, not the parameter. The "
        "parameter trajectory is plain SGD with a slowly decaying step; averaging starts after t0 steps."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.ASGD",
            params={"scalar_dtype": "float32"},
            notes="eta and mu are float32 tensors (torch's scalar dtype unless the default dtype is "
            "float64), so both are rounded to float32; lambd is the decay; eta for step t+1 is computed "
            "at the end of step t from the lr of that moment (an lr change acts one step later); mu = 1 "
            "copies the parameter into ax.",
            names={"ASGD": {}},
            kwargs={"lambd": "decay"},
        ),
    },
)


# -- FTRL-Proximal ----------------------------------------------------------------------------------
def ftrl_init(
    param: Any,
    /,
    *,
    xp: Any,
    initial_accumulator_value: Any = 0.1,
    initial_accumulator_dtype: str | None = None,
    **hyper: Any,
) -> dict[str, Any]:
    """The accumulated squared gradients ``n`` (rounded through a dtype if asked) and the linear term ``z``."""
    n = xp.full_like(param, initial_accumulator_value)
    if initial_accumulator_dtype is not None:
        n = xp.astype(xp.astype(n, getattr(xp, initial_accumulator_dtype)), param.dtype)
    return {"n": n, "z": xp.zeros_like(param)}


def _rate(n: Any, lr_power: Any, *, xp: Any) -> Any:
    r"""The per-coordinate :math:`n^{-p}`: ``xp.sqrt(n)`` for a literal ``p = -0.5`` (the default).

    Not a change of formula: :math:`n^{1/2}` IS the square root, which every namespace rounds
    correctly (IEEE 754), while ``n ** 0.5`` is a general power on TensorFlow (up to an ulp off in
    float32; NumPy and PyTorch take the square root). The step is ``new - param`` of two nearly
    equal numbers, so one ulp of the new parameter would be a relative 1e-4 of the step. A traced
    ``lr_power`` takes the power (a value test on it is never made).
    """
    if isinstance(lr_power, (int, float)) and lr_power == -0.5:
        return xp.sqrt(n)
    return n ** (-lr_power)


def _rate_change(g2: Any, n: Any, rate: Any, lr_power: Any, *, xp: Any) -> Any:
    r""":math:`n_t^{-p} - n_{t-1}^{-p}` with :math:`n_t = n_{t-1} + g_t^2`; for the square root (a literal
    ``p = -0.5``) as :math:`g_t^2 / (\sqrt{n_t} + \sqrt{n_{t-1}})`, equal in exact arithmetic but free
    of the cancellation of two nearly equal roots: a small gradient on a large accumulator loses all
    of the difference in float32 (Keras subtracts the roots). 0 where both roots are 0.
    """
    if isinstance(lr_power, (int, float)) and lr_power == -0.5:
        den = rate + xp.sqrt(n)
        return g2 / xp.where(den > 0, den, xp.ones_like(den))
    return rate - _rate(n, lr_power, xp=xp)


def ftrl_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    lr_power: Any,
    l1: Any,
    l2: Any,
    l2_shrinkage: Any,
    beta: Any,
    initial_accumulator_value: Any = 0.1,
    initial_accumulator_dtype: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    r"""One FTRL-Proximal step (see :data:`FTRL`); the new parameter is a closed form, not an increment.

    .. math::
        n_t = n_{t-1} + g_t^2,\quad
        z_t = z_{t-1} + g_t + 2\lambda_s\theta_{t-1} - \frac{n_t^{-p} - n_{t-1}^{-p}}{\eta}\theta_{t-1},\quad
        \theta_t = \frac{\operatorname{clip}(z_t, -\lambda_1, \lambda_1) - z_t}{n_t^{-p}/\eta + 2\lambda_2 + \beta/\eta}

    Reference: McMahan et al. (2013), Ad Click Prediction: a View from the Trenches, Algorithm 1.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("ftrl", lr=1.0, initial_accumulator_value=0.0), [np.array([0.0])]
    >>> opt.step(params, [np.array([2.0])])  # z = 2, n = 4: theta = -z / sqrt(n)
    >>> params[0].tolist()
    [-1.0]
    """
    n = state["n"]
    g2 = grad * grad
    new_n = n + g2
    g = grad if is_zero(l2_shrinkage) else grad + (2.0 * l2_shrinkage) * param  # a literal 0 adds nothing
    rate = _rate(new_n, lr_power, xp=xp)
    z = state["z"] + (g - (_rate_change(g2, n, rate, lr_power, xp=xp) / lr) * param)
    quadratic = rate / lr + 2.0 * (l2 + beta / (2.0 * lr))
    new = (xp.clip(z, min=-l1, max=l1) - z) / quadratic
    return new - param, {"n": new_n, "z": z}


FTRL = OptimizerSpec(
    name="ftrl",
    elementwise=True,
    aliases=("ftrl_proximal", "follow_the_regularized_leader"),
    summary="FTRL-Proximal: per-coordinate adaptive steps with L1/L2 regularization giving sparse weights.",
    init=ftrl_init,
    update=ftrl_update,
    slots=("n", "z"),
    params=(
        Param("lr", 1e-3, "learning rate alpha", low=0.0, low_inclusive=False),
        Param("lr_power", -0.5, "power p of the per-coordinate rate n^p (-0.5: the paper's 1/sqrt(n))", high=0.0),
        Param("initial_accumulator_value", 0.1, "starting value of the squared-gradient sum n", low=0.0),
        Param("l1", 0.0, "L1 regularization strength lambda_1 (exact zeros below it)", low=0.0),
        Param("l2", 0.0, "L2 regularization strength lambda_2", low=0.0),
        Param("l2_shrinkage", 0.0, "L2 shrinkage added to the gradient as 2*l2_shrinkage*theta", low=0.0),
        Param("beta", 0.0, "the paper's beta: adds beta/(2 lr) to the L2 strength", low=0.0),
        Param(
            "initial_accumulator_dtype",
            None,
            "round initial_accumulator_value to this dtype before filling n (Keras's Constant "
            "initializer casts through float32); None: exact",
            kind="choice",
            choices=("float32",),
            nullable=True,
            static=True,
        ),
    ),
    formula=(
        r"n_t = n_{t-1} + g_t^2,\ z_t = z_{t-1} + g_t + 2\lambda_s\theta_{t-1} - "
        r"\frac{n_t^{-p} - n_{t-1}^{-p}}{\eta}\theta_{t-1},\ "
        r"\theta_t = \frac{\operatorname{clip}(z_t, -\lambda_1, \lambda_1) - z_t}"
        r"{n_t^{-p}/\eta + 2\lambda_2 + \beta/\eta}"
    ),
    references=(
        "McMahan, H. B. et al. (2013). Ad Click Prediction: a View from the Trenches. KDD. "
        "https://doi.org/10.1145/2487575.2488200",
    ),
    usage=(
        "Online learning of large sparse linear models (click-through prediction): l1 > 0 gives "
        "exact zeros. The parameter is recomputed from the state each step, so the initial value "
        "only enters through the first z update."
    ),
    conventions={
        "keras": Convention(
            "keras",
            "keras.optimizers.Ftrl",
            state={"n": "_accumulators", "z": "_linears"},
            params={"initial_accumulator_dtype": "float32"},
            notes="learning_rate (and the base optimizer's weight_decay, not modelled here) is a float32 "
            "variable; the initial accumulator is filled through float32; the regularization strengths "
            "and beta are exact Python floats.",
            hyper_dtype="float32",
            rounded=("lr",),
            names={"Ftrl": {}},
            kwargs={
                "learning_rate_power": "lr_power",
                "l1_regularization_strength": "l1",
                "l2_regularization_strength": "l2",
                "l2_shrinkage_regularization_strength": "l2_shrinkage",
            },
        ),
    },
)


# -- LARS -------------------------------------------------------------------------------------------
def lars_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    weight_decay: Any,
    trust_coefficient: Any,
    eps: Any,
    momentum: Any,
    nesterov: bool,
    trust_ratio: bool = True,
) -> tuple[Any, dict[str, Any]]:
    r"""One LARS step (see :data:`LARS`): decay, the per-tensor trust ratio, then lr-scaled momentum.

    .. math::
        u_t = g_t + \lambda\theta_{t-1},\quad
        r_t = \frac{c\,\|\theta_{t-1}\|}{\|u_t\| + \epsilon}\ (1 \text{ if a norm is } 0),\quad
        v_t = \mu v_{t-1} - \eta r_t u_t,\quad \theta_t = \theta_{t-1} + v_t

    Reference: You, Gitman & Ginsburg (2017), https://arxiv.org/abs/1708.03888.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("lars", lr=1.0, momentum=0.0), [np.array([3.0, 4.0])]
    >>> opt.step(params, [np.array([0.0, 1.0])])  # ratio 1e-3 * 5 / 1
    >>> params[0].round(6).tolist()
    [3.0, 3.995]
    """
    u = grad if is_zero(weight_decay) else grad + weight_decay * param
    if not trust_ratio:
        return _lars_momentum(u, state, step=step, xp=xp, lr=lr, momentum=momentum, nesterov=nesterov)
    w_norm = scaled_norm(param, xp=xp)  # m * sqrt(sum((x / m)^2)): no float32 underflow of the squares
    u_norm = scaled_norm(u, xp=xp)
    one = xp.ones_like(w_norm)
    ratio = trust_coefficient * w_norm / (u_norm + eps)
    ratio = xp.where((w_norm == 0) | (u_norm == 0), one, ratio)
    return _lars_momentum(u * ratio, state, step=step, xp=xp, lr=lr, momentum=momentum, nesterov=nesterov)


def _lars_momentum(
    direction: Any, state: dict[str, Any], *, step: Any, xp: Any, lr: Any, momentum: Any, nesterov: bool
) -> tuple[Any, dict[str, Any]]:
    """The lr-scaled momentum step of LARS on the (trust-scaled) direction."""
    if is_zero(momentum) or "momentum" not in state:  # no buffer: built with momentum 0 (sgd_init)
        return -lr * direction, state
    delta, buf = momentum_step(
        direction, state["momentum"], step=step, xp=xp, lr=lr, momentum=momentum, nesterov=nesterov, lr_in_momentum=True
    )
    return delta, {"momentum": buf}


LARS = OptimizerSpec(
    name="lars",
    aliases=("layerwise_adaptive_rate_scaling",),
    summary="LARS: SGD with momentum whose per-tensor step is scaled by ||theta|| / ||update||.",
    init=sgd_init,  # one momentum buffer (of lr-scaled steps)
    update=lars_update,
    slots=("momentum",),
    params=(
        lr_param(1e-2),
        Param("weight_decay", 0.0, "decay added to the gradient before the trust ratio", low=0.0),
        Param("trust_coefficient", 1e-3, "multiplier c of the trust ratio", low=0.0),
        Param("eps", 0.0, "added to the update norm in the trust ratio's denominator", low=0.0),
        Param("momentum", 0.9, "decay of the momentum buffer of lr-scaled steps", low=0.0, high=1.0),
        Param("nesterov", False, "Nesterov momentum: the step is mu*v_t - lr*r_t*u_t", kind="bool", static=True),
        Param(
            "trust_ratio",
            True,
            "scale by the trust ratio; False: r_t = 1 (plain momentum SGD with weight decay, as Optax's "
            "trust_ratio_mask leaves biases and norm layers)",
            kind="bool",
            static=True,
        ),
    ),
    formula=(
        r"u_t = g_t + \lambda\theta_{t-1},\ r_t = \frac{c\|\theta_{t-1}\|_2}{\|u_t\|_2 + \epsilon},\ "
        r"v_t = \mu v_{t-1} - \eta r_t u_t,\ \theta_t = \theta_{t-1} + v_t"
    ),
    references=(
        "You, Y., Gitman, I. & Ginsburg, B. (2017). Large Batch Training of Convolutional Networks. "
        "https://arxiv.org/abs/1708.03888",
    ),
    usage=(
        "Very large batch SGD training of CNNs (ResNet at batch 8k-32k): the trust ratio keeps each "
        "layer's step proportional to its weight norm. Exclude biases and norm layers from the decay "
        "and the ratio in practice (Optax's weight_decay_mask / trust_ratio_mask on the JAX backend; "
        "trust_ratio=False and weight_decay=0 elsewhere). The ratio is 1 where either norm is 0."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.lars",
            state={"momentum": "trace"},
            notes="add_decayed_weights, scale_by_trust_ratio (trust_coefficient 1e-3, eps 0), -lr, then "
            "trace(momentum 0.9): the buffer holds lr-scaled steps. weight_decay_mask / trust_ratio_mask "
            "choose per tensor: False runs it with weight_decay 0 / trust_ratio False.",
            names={"lars": {}},
            masks={"weight_decay_mask": {"weight_decay": 0.0}, "trust_ratio_mask": {"trust_ratio": False}},
        ),
    },
)


# -- NovoGrad ---------------------------------------------------------------------------------------
def novograd_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The first moment ``m`` (like the parameter) and the per-tensor second moment ``v`` (0-d)."""
    return {"m": xp.zeros_like(param), "v": xp.zeros((), dtype=param.dtype)}


def novograd_update(
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
    weight_decay: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One NovoGrad step (see :data:`NOVOGRAD`): Adam-like, with one second moment per tensor.

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\|g_t\|^2\ (v_1 = \|g_1\|^2),\quad
        m_t = \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t + \epsilon_r} + \epsilon} + \lambda\theta_{t-1}\ (m_0 = 0),\quad
        \theta_t = \theta_{t-1} - \eta m_t

    Reference: Ginsburg et al. (2019), https://arxiv.org/abs/1905.11286.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("novograd", lr=0.1, eps=0.0), [np.array([1.0, 1.0])]
    >>> opt.step(params, [np.array([3.0, 4.0])])  # g / ||g||
    >>> params[0].round(6).tolist()
    [0.94, 0.92]
    """
    norm = xp.sqrt(xp.sum(abs_sq(grad, xp=xp)))
    sq = norm * norm
    v = xp.where(step == 1, sq, (1.0 - beta_2) * sq + beta_2 * state["v"])
    u = grad / (xp.sqrt(v + eps_root) + eps)
    if not is_zero(weight_decay):
        u = u + weight_decay * param
    m = xp.where(step == 1, u, beta_1 * state["m"] + u)
    return -lr * m, {"m": m, "v": v}


NOVOGRAD = OptimizerSpec(
    name="novograd",
    aliases=("novo_grad",),
    summary="NovoGrad: momentum over gradients normalized by a per-tensor second moment, plus decay.",
    init=novograd_init,
    update=novograd_update,
    slots=("m", "v"),
    params=(
        lr_param(1e-3),
        Param("beta_1", 0.9, "momentum decay (the normalized gradient enters undamped)", low=0.0, high=1.0),
        Param("beta_2", 0.25, "decay of the per-tensor squared gradient norm", low=0.0, high=1.0),
        Param("eps", 1e-6, "added to the root of the second moment", low=0.0),
        Param("eps_root", 0.0, "added to the second moment inside the square root", low=0.0),
        Param("weight_decay", 0.0, "decay added to the normalized gradient, inside the momentum", low=0.0),
    ),
    formula=(
        r"v_t = \beta_2 v_{t-1} + (1-\beta_2)\|g_t\|_2^2\ (v_1 = \|g_1\|_2^2),\ "
        r"m_t = \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t+\epsilon_r}+\epsilon} + \lambda\theta_{t-1},\ "
        r"\theta_t = \theta_{t-1} - \eta m_t"
    ),
    references=(
        "Ginsburg, B. et al. (2019). Stochastic Gradient Methods with Layer-wise Adaptive Moments for "
        "Training of Deep Networks. https://arxiv.org/abs/1905.11286",
    ),
    usage=(
        "Speech (Jasper, QuartzNet) and language models trained with large batches: one second-moment "
        "scalar per tensor (less memory than Adam) and robustness to the gradient scale of each layer."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.novograd",
            state={"m": "mu", "v": "nu"},
            notes="b2 0.25, eps 1e-6; the first step initializes v = ||g||^2 and m = the normalized "
            "gradient (no bias correction); ||g||^2 is computed as norm(g)**2.",
            names={"novograd": {}},
        ),
    },
)

SPECS = (ASGD, FTRL, LARS, NOVOGRAD)
