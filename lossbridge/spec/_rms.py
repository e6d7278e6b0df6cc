"""Optimizers that divide by a root of accumulated squared gradients: RMSprop, Adagrad, Adadelta.

The frameworks differ in data only: where ``eps`` sits (inside the square root: Keras, Optax;
outside: PyTorch, Caffe), the initial accumulator (0 or 0.1), the defaults, whether a momentum
buffer holds lr-scaled steps, and how weight decay is applied. Each is one parameter here, read by
the one formula of each spec.
"""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.errors import ParameterError
from lossbridge.spec._factored import OptionalParam
from lossbridge.spec._first_order import DECOUPLED, is_zero, lr_param, momentum_step, round_through, weight_decay_terms
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._ops import abs_sq
from lossbridge.spec._params import Param

__all__ = [
    "ADADELTA",
    "ADAGRAD",
    "RMSPROP",
    "SPECS",
    "adadelta_init",
    "adadelta_update",
    "adagrad_init",
    "adagrad_update",
    "rmsprop_init",
    "rmsprop_update",
]

_WEIGHT_DECAY = Param(
    "weight_decay", 0.0, "L2 penalty added to the gradient (decoupled: theta -= lr*wd*theta)", low=0.0
)
_EPS_IN_SQRT = Param(
    "eps_in_sqrt",
    False,
    "add eps inside the square root, sqrt(v + eps) (Keras, Optax), instead of sqrt(v) + eps (PyTorch, Caffe)",
    kind="bool",
    static=True,
)
_INITIAL_DTYPE = Param(
    "initial_accumulator_dtype",
    None,
    "round initial_accumulator_value to this dtype before filling the accumulator (Keras's Constant "
    "initializer casts its Python float through float32); None: exact",
    kind="choice",
    choices=("float32",),
    nullable=True,
    static=True,
)
_KERAS_NOTE = (
    "learning_rate and weight_decay are float32 (rounded); weight_decay is the base optimizer's "
    "decoupled decay theta -= lr*wd*theta before the step; the other hyperparameters are exact floats."
)


def _denominator(v: Any, eps: Any, *, eps_in_sqrt: bool, xp: Any) -> Any:
    r""":math:`\sqrt{v + \epsilon}` or :math:`\sqrt{v} + \epsilon`."""
    return xp.sqrt(v + eps) if eps_in_sqrt else xp.sqrt(v) + eps


def _filled(param: Any, value: Any, dtype: str | None, *, xp: Any) -> Any:
    """An array like ``param`` holding ``value``, rounded through ``dtype`` first if given."""
    return round_through(xp.full_like(param, value), dtype, xp=xp)


# -- RMSprop ----------------------------------------------------------------------------------------
def rmsprop_init(
    param: Any,
    /,
    *,
    xp: Any,
    momentum: Any = 0.0,
    centered: bool = False,
    initial_accumulator_value: Any = 0.0,
    **hyper: Any,
) -> dict[str, Any]:
    """The mean square, the mean gradient when ``centered``, a momentum buffer unless momentum is 0."""
    state = {"square_avg": _filled(param, initial_accumulator_value, None, xp=xp)}
    if centered:
        state["grad_avg"] = xp.zeros_like(param)
    if not (momentum is None or is_zero(momentum)):
        state["momentum"] = xp.zeros_like(param)
    return state


def rmsprop_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    rho: Any,
    eps: Any,
    eps_in_sqrt: bool,
    centered: bool,
    bias_correction: bool,
    momentum: Any,
    nesterov: bool,
    lr_in_momentum: bool,
    weight_decay: Any,
    decoupled_weight_decay: bool,
    initial_accumulator_value: Any = 0.0,
) -> tuple[Any, dict[str, Any]]:
    r"""One RMSprop step (see :data:`RMSPROP`).

    .. math::
        v_t = \rho v_{t-1} + (1-\rho) g_t^2,\quad
        \theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{v_t} + \epsilon}

    Reference: Tieleman & Hinton (2012), Lecture 6.5, COURSERA: Neural Networks for Machine Learning.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("rmsprop", lr=0.1, rho=0.75, eps=0.0), [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([2.0, -0.5])])  # v = g^2 / 4, so the step is -lr * 2 * sign(g)
    >>> params[0].round(6).tolist()
    [0.8, -0.8]
    """
    g, decay = weight_decay_terms(param, grad, lr=lr, weight_decay=weight_decay, decoupled=decoupled_weight_decay)
    v = rho * state["square_avg"] + (1.0 - rho) * abs_sq(g, xp=xp)
    new_state = {"square_avg": v}
    correction = 1.0 - rho**step if bias_correction else None
    v_hat = v if correction is None else v / correction
    if centered:
        m = state["grad_avg"] + (1.0 - rho) * (g - state["grad_avg"])
        new_state["grad_avg"] = m
        m_hat = m if correction is None else m / correction
        v_hat = v_hat - abs_sq(m_hat, xp=xp)
    direction = g / _denominator(v_hat, eps, eps_in_sqrt=eps_in_sqrt, xp=xp)
    # Whether there is momentum is structural: init made the buffer unless momentum was None or 0, and
    # the update follows the state's slots, never the value of a (possibly traced) momentum.
    if "momentum" not in state:
        if not (momentum is None or is_zero(momentum) or not isinstance(momentum, (int, float))):
            raise ParameterError(f"rmsprop: momentum={momentum!r} but the state has no momentum buffer "
                             "(init ran with momentum 0 or None); re-initialize the state")
        return decay - lr * direction, new_state
    if momentum is None or is_zero(momentum):  # a literal 0 or None: skip the work, keep the buffer
        return decay - lr * direction, {**new_state, "momentum": state["momentum"]}
    delta, buf = momentum_step(
        direction,
        state["momentum"],
        step=step,
        xp=xp,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        lr_in_momentum=lr_in_momentum,
    )
    return decay + delta, {**new_state, "momentum": buf}


RMSPROP = OptimizerSpec(
    name="rmsprop",
    elementwise=True,
    aliases=("rms_prop",),
    summary="RMSprop: divide the gradient by a running root mean square (optionally centered, with momentum).",
    init=rmsprop_init,
    update=rmsprop_update,
    slots=("square_avg", "grad_avg", "momentum"),
    params=(
        lr_param(1e-3),
        Param("rho", 0.9, "decay of the mean square (torch alpha, Optax decay, Caffe rms_decay)", low=0.0, high=1.0),
        Param("eps", 1e-8, "added to the denominator for numerical stability", low=0.0),
        _EPS_IN_SQRT,
        Param("centered", False, "divide by an estimate of the variance, v - mean(g)^2", kind="bool", static=True),
        Param(
            "bias_correction",
            False,
            "divide the running averages by 1 - rho^t (Optax's bias_correction)",
            kind="bool",
            static=True,
        ),
        Param("momentum", 0.0, "momentum of the scaled step (0 or None: no buffer)", low=0.0, high=1.0, nullable=True),
        Param("nesterov", False, "Nesterov momentum (Optax)", kind="bool", static=True),
        Param(
            "lr_in_momentum",
            False,
            "the momentum buffer accumulates lr-scaled steps (Keras, Optax) instead of scaled gradients "
            "(PyTorch); equal for a constant lr, different once lr changes",
            kind="bool",
            static=True,
        ),
        Param("initial_accumulator_value", 0.0, "initial value of the mean square (Optax initial_scale)", low=0.0),
        _WEIGHT_DECAY,
        DECOUPLED,
    ),
    formula=(
        r"v_t = \rho v_{t-1} + (1-\rho) g_t^2,\ \bar g_t = \rho \bar g_{t-1} + (1-\rho) g_t\ "
        r"(\text{centered}: s_t = v_t - \bar g_t^2,\ \text{else } s_t = v_t),\ "
        r"d_t = \frac{g_t}{\sqrt{s_t} + \epsilon}\ \text{or}\ \frac{g_t}{\sqrt{s_t + \epsilon}},\ "
        r"b_t = \mu b_{t-1} + d_t,\ \theta_t = \theta_{t-1} - \eta\, b_t"
    ),
    references=(
        "Tieleman, T. & Hinton, G. (2012). Lecture 6.5 - rmsprop: Divide the gradient by a running "
        "average of its recent magnitude. COURSERA: Neural Networks for Machine Learning. "
        "https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf",
        "Graves, A. (2013). Generating Sequences With Recurrent Neural Networks (centered RMSprop). "
        "https://arxiv.org/abs/1308.0850",
    ),
    usage=(
        "Recurrent networks and non-stationary objectives (reinforcement learning: DQN, A3C), where "
        "Adam's momentum is unwanted. The eps placement matters: inside the square root (Keras, "
        "Optax) eps=1e-7 caps the step at lr*|g|/sqrt(eps) ~ 3000 lr|g|, outside (PyTorch) at "
        "lr*|g|/eps; port hyperparameters with the convention, not by name. With eps=0 and a zero "
        "mean square the step is 0/0."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.RMSprop",
            state={"square_avg": "square_avg", "grad_avg": "grad_avg", "momentum": "momentum_buffer"},
            params={"lr": 1e-2, "rho": 0.99},
            notes="alpha 0.99, eps 1e-8 outside the sqrt, lr 1e-2; the momentum buffer holds scaled "
            "gradients and lr multiplies it; weight_decay is L2 added to the gradient.",
            names={"RMSprop": {}},
            kwargs={"alpha": "rho"},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.RMSprop",
            state={"square_avg": "_velocities", "grad_avg": "_average_gradients", "momentum": ("_momentums", -1.0)},
            params={"eps": 1e-7, "eps_in_sqrt": True, "lr_in_momentum": True, "decoupled_weight_decay": True},
            notes="rho 0.9, epsilon 1e-7 inside the sqrt (also inside for centered: sqrt(v - m^2 + eps)), "
            "lr 1e-3; momentum accumulates lr*g/sqrt(.) and is subtracted. " + _KERAS_NOTE,
            hyper_dtype="float32",
            rounded=("lr", "weight_decay"),
            names={"RMSprop": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.rmsprop",
            state={"square_avg": "nu", "grad_avg": "mu", "momentum": "trace"},
            params={"eps_in_sqrt": True, "lr_in_momentum": True},
            notes="decay 0.9, eps 1e-8 inside the sqrt by default (eps_in_sqrt), initial_scale 0; "
            "scale_by_rms/scale_by_stddev, then -lr, then trace(momentum, nesterov): the buffer holds "
            "lr-scaled steps. No weight decay. learning_rate is required.",
            names={"rmsprop": {}},
            kwargs={"decay": "rho", "initial_scale": "initial_accumulator_value"},
        ),
        "caffe": Convention(
            "caffe",
            "caffe RMSPropSolver",
            params={"rho": 0.99},
            notes="h = rms_decay*h + (1-rms_decay)*g^2, update lr*g/(sqrt(h) + delta); rms_decay 0.99, "
            "delta 1e-8; momentum must be 0; L2 weight decay added to the gradient first.",
            names={"RMSProp": {}},
            kwargs={"rms_decay": "rho", "delta": "eps", "base_lr": "lr"},
        ),
    },
)


# -- Adagrad ----------------------------------------------------------------------------------------
def adagrad_init(
    param: Any,
    /,
    *,
    xp: Any,
    initial_accumulator_value: Any = 0.0,
    initial_accumulator_dtype: str | None = None,
    **hyper: Any,
) -> dict[str, Any]:
    """The running sum of squared gradients, starting at ``initial_accumulator_value``."""
    return {"sum": _filled(param, initial_accumulator_value, initial_accumulator_dtype, xp=xp)}


def adagrad_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    lr_decay: Any,
    eps: Any,
    eps_in_sqrt: bool,
    weight_decay: Any,
    decoupled_weight_decay: bool,
    initial_accumulator_value: Any = 0.0,
    initial_accumulator_dtype: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    r"""One Adagrad step (see :data:`ADAGRAD`).

    .. math::
        G_t = G_{t-1} + g_t^2,\quad
        \theta_t = \theta_{t-1} - \frac{\eta}{1 + (t-1)\lambda}\,\frac{g_t}{\sqrt{G_t} + \epsilon}

    Where the sum is still 0 the step is 0 (as Optax does), even with ``eps=0``.
    Reference: Duchi, Hazan & Singer (2011), JMLR 12.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("adagrad", lr=0.5, eps=0.0), [np.array([1.0, -1.0])]
    >>> opt.step(params, [np.array([3.0, 0.0])])  # G = g^2: the first step is -lr * sign(g)
    >>> params[0].round(6).tolist()
    [0.5, -1.0]
    """
    g, decay = weight_decay_terms(param, grad, lr=lr, weight_decay=weight_decay, decoupled=decoupled_weight_decay)
    total = state["sum"] + abs_sq(g, xp=xp)
    positive = total > 0
    # Where the sum is not positive the step is the select's 0 whatever the quotient there; the sum is
    # replaced by 1 under the root only so a zero denominator (eps 0, or a traced eps) raises no
    # division warning. A literal eps of at least the dtype's smallest normal keeps the denominator
    # positive: the same values with two passes fewer (no inner select, no filled ones). The selects
    # take arrays, not Python scalars: the torch plugin's recorded group program replays only those.
    if _positive_literal(eps, total.dtype, xp=xp):
        denominator = _denominator(total, eps, eps_in_sqrt=eps_in_sqrt, xp=xp)
    else:
        denominator = _denominator(xp.where(positive, total, xp.ones_like(total)), eps, eps_in_sqrt=eps_in_sqrt, xp=xp)
    direction = xp.where(positive, g / denominator, xp.zeros_like(g))
    rate = lr if is_zero(lr_decay) else lr / (1.0 + (step - 1.0) * lr_decay)
    if is_zero(decay):  # 0 - r d is -(r d), (-r) d: one pass over the tensor, not two
        return (-rate) * direction, {"sum": total}
    return decay - rate * direction, {"sum": total}


def _positive_literal(eps: Any, dtype: Any, *, xp: Any) -> bool:
    """A Python ``eps`` that stays positive (and normal) in ``dtype``: ``sqrt(0) + eps`` and
    ``sqrt(0 + eps)`` are then positive, so a zero sum needs no substitute under the root."""
    literal = isinstance(eps, (int, float)) and not isinstance(eps, bool)
    return literal and eps >= float(xp.finfo(dtype).smallest_normal)


ADAGRAD = OptimizerSpec(
    name="adagrad",
    elementwise=True,
    aliases=("ada_grad",),
    summary="Adagrad: per-coordinate steps scaled by the root of the sum of all past squared gradients.",
    init=adagrad_init,
    update=adagrad_update,
    slots=("sum",),
    params=(
        lr_param(1e-2),
        Param("lr_decay", 0.0, "the rate at step t is lr / (1 + (t - 1) * lr_decay) (PyTorch)", low=0.0),
        Param("eps", 1e-10, "added to the denominator for numerical stability", low=0.0),
        _EPS_IN_SQRT,
        Param("initial_accumulator_value", 0.0, "initial value of the sum of squares", low=0.0),
        _INITIAL_DTYPE,
        _WEIGHT_DECAY,
        DECOUPLED,
    ),
    formula=(
        r"G_t = G_{t-1} + g_t^2\ (G_0 = G_{\text{init}}),\ "
        r"\theta_t = \theta_{t-1} - \frac{\eta}{1 + (t-1)\lambda}\,"
        r"\frac{g_t}{\sqrt{G_t} + \epsilon}\ \text{or}\ \frac{g_t}{\sqrt{G_t + \epsilon}}"
    ),
    references=(
        "Duchi, J., Hazan, E. & Singer, Y. (2011). Adaptive Subgradient Methods for Online Learning "
        "and Stochastic Optimization. JMLR 12, 2121-2159. https://jmlr.org/papers/v12/duchi11a.html",
    ),
    usage=(
        "Sparse features (linear models on text, embeddings, click-through prediction): rare "
        "coordinates keep large steps. The sum only grows, so the step size decays towards 0; for "
        "long non-convex training prefer RMSprop, Adadelta or Adam. Keras and Optax start the sum at "
        "0.1 and put eps inside the root, PyTorch at 0 with eps outside: early steps differ a lot."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.Adagrad",
            state={"sum": "sum"},
            notes="initial_accumulator_value 0, eps 1e-10 outside the sqrt, lr 1e-2, lr_decay; "
            "weight_decay is L2 added to the gradient.",
            names={"Adagrad": {}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Adagrad",
            state={"sum": "_accumulators"},
            params={
                "lr": 1e-3,
                "eps": 1e-7,
                "eps_in_sqrt": True,
                "initial_accumulator_value": 0.1,
                "initial_accumulator_dtype": "float32",
                "decoupled_weight_decay": True,
            },
            notes="initial_accumulator_value 0.1 (filled through float32), epsilon 1e-7 inside the "
            "sqrt, lr 1e-3. " + _KERAS_NOTE,
            hyper_dtype="float32",
            rounded=("lr", "weight_decay"),
            names={"Adagrad": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.adagrad",
            state={"sum": "sum_of_squares"},
            params={"eps": 1e-7, "eps_in_sqrt": True, "initial_accumulator_value": 0.1},
            notes="scale_by_rss: initial_accumulator_value 0.1, eps 1e-7 inside the sqrt, a zero sum "
            "gives a zero step; no weight decay; learning_rate is required.",
            names={"adagrad": {}},
        ),
        "caffe": Convention(
            "caffe",
            "caffe AdaGradSolver",
            params={"eps": 1e-8},
            notes="h += g^2, update lr*g/(sqrt(h) + delta); delta 1e-8; momentum must be 0; L2 weight "
            "decay added to the gradient first.",
            names={"AdaGrad": {}},
            kwargs={"delta": "eps", "base_lr": "lr"},
        ),
    },
)


# -- Adadelta ---------------------------------------------------------------------------------------
def adadelta_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """Running averages of the squared gradients and of the squared (pre-lr) updates."""
    return {"square_avg": xp.zeros_like(param), "acc_delta": xp.zeros_like(param)}


def adadelta_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    rho: Any,
    eps: Any,
    weight_decay: Any,
    decoupled_weight_decay: bool,
) -> tuple[Any, dict[str, Any]]:
    r"""One Adadelta step (see :data:`ADADELTA`).

    .. math::
        v_t = \rho v_{t-1} + (1-\rho) g_t^2,\quad
        d_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t,\quad
        u_t = \rho u_{t-1} + (1-\rho) d_t^2,\quad \theta_t = \theta_{t-1} - \eta d_t

    Reference: Zeiler (2012), https://arxiv.org/abs/1212.5701.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("adadelta", rho=0.0, eps=1.0), [np.array([1.0])]
    >>> opt.step(params, [np.array([3.0])])  # d = sqrt(0 + 1) / sqrt(9 + 1) * 3
    >>> params[0].round(6).tolist()
    [0.051317]
    """
    rate = 1.0 if lr is None else lr
    g, decay = weight_decay_terms(param, grad, lr=rate, weight_decay=weight_decay, decoupled=decoupled_weight_decay)
    v = rho * state["square_avg"] + (1.0 - rho) * (g * g)
    d = xp.sqrt(state["acc_delta"] + eps) / xp.sqrt(v + eps) * g
    u = rho * state["acc_delta"] + (1.0 - rho) * (d * d)
    if lr is None:  # Optax's learning_rate=None: no scaling and no sign flip, the update is +d (it ascends)
        return decay + d, {"square_avg": v, "acc_delta": u}
    return decay - lr * d, {"square_avg": v, "acc_delta": u}


ADADELTA = OptimizerSpec(
    name="adadelta",
    elementwise=True,
    aliases=("ada_delta",),
    summary="Adadelta: the step is the ratio of running RMS of past updates to running RMS of gradients.",
    init=adadelta_init,
    update=adadelta_update,
    slots=("square_avg", "acc_delta"),
    params=(
        OptionalParam("lr", 1.0, "learning rate (the paper has none, i.e. 1); None: Optax's learning_rate=None, "
                      "no scaling and no sign flip (theta += d: the parameters climb the gradient)", low=0.0),
        Param("rho", 0.95, "decay of both running averages (Caffe: momentum)", low=0.0, high=1.0),
        Param("eps", 1e-6, "added inside both square roots; also sets the first steps' size", low=0.0),
        _WEIGHT_DECAY,
        DECOUPLED,
    ),
    formula=(
        r"v_t = \rho v_{t-1} + (1-\rho) g_t^2,\ "
        r"d_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t,\ "
        r"u_t = \rho u_{t-1} + (1-\rho) d_t^2,\ \theta_t = \theta_{t-1} - \eta\, d_t"
    ),
    references=("Zeiler, M. D. (2012). ADADELTA: An Adaptive Learning Rate Method. https://arxiv.org/abs/1212.5701",),
    usage=(
        "When a learning rate is hard to pick: the ratio of RMS values gives the step its units. "
        "eps matters far more than in Adam: the first steps are about sqrt(eps) * g / |g|, so "
        "Keras's lr 1e-3 with eps 1e-7 moves ~1000x less than PyTorch's lr 1.0 with eps 1e-6."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.Adadelta",
            state={"square_avg": "square_avg", "acc_delta": "acc_delta"},
            params={"rho": 0.9},
            notes="rho 0.9, eps 1e-6, lr 1.0; weight_decay is L2 added to the gradient.",
            names={"Adadelta": {}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Adadelta",
            state={"square_avg": "_accumulated_grads", "acc_delta": "_accumulated_delta_vars"},
            params={"lr": 1e-3, "eps": 1e-7, "decoupled_weight_decay": True},
            notes="rho 0.95, epsilon 1e-7, lr 1e-3. " + _KERAS_NOTE,
            hyper_dtype="float32",
            rounded=("lr", "weight_decay"),
            names={"Adadelta": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.adadelta",
            state={"square_avg": "e_g", "acc_delta": "e_x"},
            params={"rho": 0.9, "lr": None},
            notes="add_decayed_weights (L2 on the gradient), scale_by_adadelta (rho 0.9, eps 1e-6), "
            "then -lr. Optax's default learning_rate=None skips the lr scaling AND its sign flip, so the "
            "parameters climb the gradient (theta += d); the convention's default is lr=None too, so "
            "optax.adadelta() and lossbridge.get('adadelta', convention='optax') agree on every backend "
            "(the Keras optimizer then holds learning_rate 1.0 and ignores it). Pass learning_rate to descend.",
            names={"adadelta": {}},
            masks={"weight_decay_mask": {"weight_decay": 0.0}},
        ),
        "caffe": Convention(
            "caffe",
            "caffe AdaDeltaSolver",
            params={"rho": 0.0, "eps": 1e-8},
            notes="rho is the solver's `momentum`, whose proto default is 0 (the example solver sets "
            "0.95 with delta 1e-6, base_lr 1.0); the history of updates is kept before lr; update "
            "sqrt((u + delta)/(v + delta)) * g; L2 weight decay added to the gradient first.",
            names={"AdaDelta": {}},
            kwargs={"momentum": "rho", "delta": "eps", "base_lr": "lr"},
        ),
    },
)

SPECS = (RMSPROP, ADAGRAD, ADADELTA)
