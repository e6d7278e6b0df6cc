"""Sign-based optimizers: Lion (with signSGD and Signum as its special cases) and Rprop.

Their steps depend on the SIGN of a gradient statistic, so two runs that differ in the last bit
of a near-zero statistic differ by a whole step; compare them on problems whose gradients stay away
from zero.
"""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._first_order import is_zero, lr_param
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = ["LION", "RPROP", "SPECS", "lion_init", "lion_update", "rprop_init", "rprop_update"]

_LION_REF = (
    "Chen, X. et al. (2023). Symbolic Discovery of Optimization Algorithms. NeurIPS. https://arxiv.org/abs/2302.06675"
)
_SIGNUM_REF = (
    "Bernstein, J., Wang, Y.-X., Azizzadenesheli, K. & Anandkumar, A. (2018). signSGD: Compressed "
    "Optimisation for Non-Convex Problems. ICML. https://arxiv.org/abs/1802.04434"
)
_RPROP_REF = (
    "Riedmiller, M. & Braun, H. (1993). A Direct Adaptive Method for Faster Backpropagation Learning: "
    "The RPROP Algorithm. IEEE ICNN. https://doi.org/10.1109/ICNN.1993.298623"
)


# -- Lion / Signum / signSGD ------------------------------------------------------------------------
def lion_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """One momentum buffer ``m``."""
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
    beta_1: Any,
    beta_2: Any,
    beta: Any = None,
    weight_decay: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One Lion step (see :data:`LION`): the sign of an interpolated momentum, plus decoupled decay.

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        \theta_t = \theta_{t-1} - \eta(\operatorname{sign}(c_t) + \lambda\theta_{t-1}),\quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    ``beta`` (Signum) sets both decays: then :math:`c_t = m_t` and the step is
    :math:`-\eta\operatorname{sign}(m_t)`; ``beta=0`` is signSGD. Reference: Chen et al. (2023),
    Algorithm 2, https://arxiv.org/abs/2302.06675.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("lion", lr=0.1), [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([0.5, -2.0])])  # the first step is -lr * sign(g)
    >>> params[0].round(6).tolist()
    [0.9, -0.9]
    """
    if beta is not None:
        beta_1 = beta_2 = beta
    m = state["m"]
    c = (1.0 - beta_1) * grad + beta_1 * m
    delta = -lr * xp.sign(c)
    if not is_zero(weight_decay):
        delta = delta - lr * weight_decay * param
    return delta, {"m": (1.0 - beta_2) * grad + beta_2 * m}


LION = OptimizerSpec(
    name="lion",
    elementwise=True,
    aliases=("evolved_sign_momentum", "sign_momentum"),
    summary="Lion: the sign of an interpolated momentum (Signum and signSGD are its special cases).",
    init=lion_init,
    update=lion_update,
    slots=("m",),
    params=(
        lr_param(1e-4, "learning rate (typically 3-10x smaller than Adam's)"),
        Param("beta_1", 0.9, "interpolation of momentum and gradient inside the sign", low=0.0, high=1.0),
        Param("beta_2", 0.99, "decay of the momentum buffer", low=0.0, high=1.0),
        Param(
            "beta",
            None,
            "Signum's single decay: when given, beta_1 = beta_2 = beta, so the step is -lr*sign(m_t) "
            "(optax.signum's `beta`; 0 is signSGD)",
            low=0.0,
            high=1.0,
            nullable=True,
        ),
        Param("weight_decay", 0.0, "decoupled weight decay theta -= lr*weight_decay*theta", low=0.0),
    ),
    formula=(
        r"c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\ "
        r"\theta_t = \theta_{t-1} - \eta(\operatorname{sign}(c_t) + \lambda\theta_{t-1}),\ "
        r"m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t"
        r"\ (\text{Signum: } \beta_1 = \beta_2 = \beta;\ \text{signSGD: } \beta = 0)"
    ),
    references=(_LION_REF, _SIGNUM_REF),
    usage=(
        "Lion: memory-light alternative to AdamW for transformers and vision models; use an lr 3-10x "
        "smaller and a weight decay 3-10x larger than AdamW's. signSGD / Signum: gradient compression "
        "(one bit per coordinate) in distributed training. Every coordinate moves by exactly lr per "
        "step, so the iterate chatters around a minimum by about lr: decay the lr. sign(0) = 0."
    ),
    conventions={
        "keras": Convention(
            "keras",
            "keras.optimizers.Lion",
            state={"m": "_momentums"},
            params={"lr": 1e-3},
            notes="learning_rate 1e-3; beta_1 and beta_2 are cast through float32 (ops.cast of a Python "
            "float), as are learning_rate and weight_decay; the base optimizer's decoupled decay "
            "theta -= theta*wd*lr runs before the sign step. No torch.optim counterpart (torch 2.13).",
            hyper_dtype="float32",
            names={"Lion": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.lion / optax.signum / optax.sign_sgd",
            state={"m": "mu"},
            params={"weight_decay": 1e-3},
            notes="lion: weight_decay 1e-3 (decayed weights added before the lr scaling, the same "
            "decoupled form); signum(beta) is ema(beta, debias=False) then sign, i.e. lion with "
            "b1 = b2 = beta and no decay; sign_sgd is -lr*sign(g). scale_by_lion's 'smooth' and "
            "'refined' modes are not modelled (optax.lion uses the hard sign).",
            names={
                "lion": {},
                "signum": {"beta": 0.9, "weight_decay": 0.0},
                "sign_sgd": {"beta": 0.0, "weight_decay": 0.0},
            },
            slot_dtypes={"mu_dtype": "m", "accumulator_dtype": "m"},
            masks={"mask": {"weight_decay": 0.0}},
        ),
    },
)


# -- Rprop ------------------------------------------------------------------------------------------
def rprop_init(param: Any, /, *, xp: Any, lr: Any, **hyper: Any) -> dict[str, Any]:
    """The per-coordinate step sizes (starting at ``lr``) and the previous (masked) gradient."""
    return {"step_size": xp.full_like(param, lr), "prev": xp.zeros_like(param)}


def rprop_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    eta_minus: Any,
    eta_plus: Any,
    min_step_size: Any,
    max_step_size: Any,
    clip_unchanged: bool,
    lagged: bool,
    sign_test: str = "signs",
) -> tuple[Any, dict[str, Any]]:
    r"""One Rprop step (see :data:`RPROP`); ``lr`` only sets the initial step sizes (in ``init``).

    .. math::
        s = \operatorname{sign}(g_t g'_{t-1}),\quad
        \Delta_t = \operatorname{clip}(\Delta_{t-1}\,\{\eta_+, \eta_-, 1\}_{s = 1, -1, 0},
        \Delta_{\min}, \Delta_{\max}),\quad
        g'_t = [s \ge 0]\, g_t,\quad \theta_t = \theta_{t-1} - \Delta_t \operatorname{sign}(g'_t)

    Reference: Riedmiller & Braun (1993) (Rprop without weight-backtracking, "Rprop-").

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("rprop", lr=0.1), [np.array([1.0])]
    >>> for g in (1.0, 1.0, -1.0):  # steps 0.1, 0.12, then a sign change: no step, 0.06 next
    ...     opt.step(params, [np.array([g])])
    >>> params[0].round(6).tolist()
    [0.78]
    """
    old_size, prev = state["step_size"], state["prev"]
    if sign_test == "signs":  # exact: a product of two tiny floats underflows to 0 ("no sign")
        s = xp.sign(grad) * xp.sign(prev)
    elif sign_test == "product":  # PyTorch
        s = xp.sign(grad * prev)
    else:  # "update_product", Optax: the gradient times the previous update Delta_{t-1} sign(g'_{t-1})
        s = xp.sign(grad * (old_size * xp.sign(prev)))
    one = xp.ones_like(grad)
    factor = xp.where(s > 0, eta_plus * one, xp.where(s < 0, eta_minus * one, one))
    size = xp.clip(old_size * factor, min=min_step_size, max=max_step_size)
    if not clip_unchanged:
        size = xp.where(s == 0, old_size, size)
    masked = xp.where(s < 0, xp.zeros_like(grad), grad)
    if lagged:  # Optax: the previous step's increment, dropped where the sign flips
        delta = -xp.where(s < 0, xp.zeros_like(grad), old_size * xp.sign(prev))
    else:
        delta = -(xp.sign(masked) * size)
    return delta, {"step_size": size, "prev": masked}


RPROP = OptimizerSpec(
    name="rprop",
    elementwise=True,
    aliases=("resilient_backpropagation", "resilient_propagation"),
    summary="Rprop: per-coordinate step sizes grown while the gradient keeps its sign, shrunk when it flips.",
    init=rprop_init,
    update=rprop_update,
    slots=("step_size", "prev"),
    params=(
        Param(
            "lr",
            1e-2,
            "the initial step size of every coordinate (read once, when the state is created: changing "
            "it later has no effect, as in PyTorch and Optax; a schedule is not accepted)",
            low=0.0,
        ),
        Param(
            "eta_minus",
            0.5,
            "step-size factor when the gradient changes sign",
            low=0.0,
            high=1.0,
            low_inclusive=False,
            high_inclusive=False,
        ),
        Param("eta_plus", 1.2, "step-size factor when the gradient keeps its sign", low=1.0, low_inclusive=False),
        Param("min_step_size", 1e-6, "lower bound of the step sizes", low=0.0),
        Param("max_step_size", 50.0, "upper bound of the step sizes", low=0.0),
        Param(
            "clip_unchanged",
            True,
            "clip the step size to [min, max] also where it is unchanged (g_t g'_{t-1} = 0, e.g. the "
            "first step) (PyTorch); Optax leaves it as is. Differs only if lr is outside [min, max]",
            kind="bool",
            static=True,
        ),
        Param(
            "lagged",
            False,
            "apply the PREVIOUS step's increment Delta_{t-1} sign(g'_{t-1}), zeroed where the sign "
            "flips (optax.rprop: its first update is 0); False: this step's (paper, PyTorch)",
            kind="bool",
            static=True,
        ),
        Param(
            "sign_test",
            "signs",
            "how sign(g_t g'_{t-1}) is taken: 'signs' sign(g_t) sign(g'_{t-1}) (exact); 'product' "
            "sign of the product (PyTorch), 0 when the product underflows (|g_t g'_{t-1}| below the "
            "dtype's smallest subnormal); 'update_product' sign(g_t Delta_{t-1} sign(g'_{t-1})) (Optax)",
            kind="choice",
            choices=("signs", "product", "update_product"),
            static=True,
        ),
    ),
    formula=(
        r"s = \operatorname{sign}(g_t g'_{t-1}),\ \Delta_t = \operatorname{clip}(\Delta_{t-1}"
        r"\,\{\eta_+ \text{ if } s>0;\ \eta_- \text{ if } s<0;\ 1\},\ \Delta_{\min}, \Delta_{\max}),\ "
        r"g'_t = [s \ge 0]\,g_t,\ \theta_t = \theta_{t-1} - \Delta_t \operatorname{sign}(g'_t),\ "
        r"\Delta_0 = \eta"
    ),
    references=(_RPROP_REF,),
    usage=(
        "Full-batch training of small networks and deterministic objectives: only gradient signs "
        "are used, so it is insensitive to gradient scale. Unsuitable for mini-batches (noisy signs). "
        "lr is only the initial step size."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.Rprop",
            state={"step_size": "step_size", "prev": "prev"},
            notes="etas=(eta_minus, eta_plus), step_sizes=(min, max); the step size is clipped every "
            "step; lr (1e-2) is only read when the state is created, so changing it later does nothing. "
            "The sign of g_t g'_{t-1} is taken from the product, which underflows to 0 for tiny gradients.",
            params={"sign_test": "product"},
            names={"Rprop": {}},
            kwargs={"etas": ("eta_minus", "eta_plus"), "step_sizes": ("min_step_size", "max_step_size")},
        ),
        "optax": Convention(
            "optax",
            "optax.rprop",
            state={"step_size": "step_sizes", "prev": "prev_updates"},
            params={"clip_unchanged": False, "lagged": True, "sign_test": "update_product"},
            notes="scale_by_rprop returns the previous step's increment (its prev_updates slot before "
            "the update), zeroed where the gradient's sign flips: every step lags one behind the "
            "paper's, and the first update is 0. A step size is not clipped where it is unchanged. "
            "learning_rate is only the initial step size. The sign of g_t g'_{t-1} is taken from the "
            "gradient times the previous update, which underflows to 0 for tiny gradients.",
            names={"rprop": {}},
        ),
    },
)

SPECS = (LION, RPROP)
