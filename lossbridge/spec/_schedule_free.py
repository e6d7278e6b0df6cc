"""Schedule-free optimizers (Defazio et al., 2024): SGD and AdamW without a decaying schedule.

Three sequences: the base optimizer steps ``z``; ``x`` is a running weighted average of the ``z``
iterates (the point to evaluate the model at); the gradient is taken at their interpolation
``y = (1 - beta_1) z + beta_1 x``. The parameters the user holds are ``y``; the state holds ``z``
(and the second moment, the largest lr seen, the sum of the averaging weights and ``b1``, the
``beta_1`` the state was made with, as Optax's ``ScheduleFreeState.b1``). ``x`` is not stored: as in
Optax and Keras it is recovered from ``y`` and ``z``, and :func:`schedule_free_eval_params` gives it
for evaluation from a parameter and its state alone.

Evaluation parameters on each backend (``y`` the held parameter, ``state`` its spec state dict)::

    x = schedule_free_eval_params(y, state)        # NumPy: opt.init/update's state.slots[i];
                                                   # torch: opt.state[p]; JAX: state.slots leaves
    x = optax.contrib.schedule_free_eval_params(state, params)   # JAX: Optax's own, on our state

(Keras: ``opt.slots_of(variable)`` is the variable's state dict.) The state's 0-d ``b1`` is constant:
like Optax's, it keeps the value ``init`` saw; ``update`` reads the ``beta_1`` hyperparameter.

Extension of the per-tensor form: the step returns the increment of ``y``; the evaluation point is a
function of a parameter and its state, not something the optimizer applies.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._adaptive import bias_correction, eps_param
from lossbridge.spec._first_order import is_zero, lr_param
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = [
    "SCHEDULE_FREE_ADAMW",
    "SCHEDULE_FREE_SGD",
    "SPECS",
    "schedule_free_eval_params",
    "schedule_free_init",
    "schedule_free_update",
]

_DEFAZIO = (
    "Defazio, A., Yang, X. A., Mehta, H., Mishchenko, K., Khaled, A. & Cutkosky, A. (2024). The Road "
    "Less Scheduled. NeurIPS. https://arxiv.org/abs/2405.15682"
)
_REPO = "Defazio, A. et al. (2024). Schedule-Free Learning. https://github.com/facebookresearch/schedule_free"


def schedule_free_eval_params(param: Any, state: dict[str, Any], /, *, beta_1: Any = None) -> Any:
    r"""The evaluation point :math:`x = (y - (1-\beta_1) z) / \beta_1` of one parameter.

    ``param`` is the parameter the optimizer updates (``y``), ``state`` its per-parameter state
    (the slot ``z``, and ``b1``), ``beta_1`` the interpolation constant (default: the state's ``b1``).
    The same formula as ``optax.contrib.schedule_free_eval_params``, which reads ``state.b1``.

    >>> import numpy as np
    >>> schedule_free_eval_params(np.array([1.0]), {"z": np.array([2.0])}, beta_1=0.5).tolist()
    [0.0]
    >>> schedule_free_eval_params(np.array([1.0]), {"z": np.array([2.0]), "b1": np.array(0.5)}).tolist()
    [0.0]
    """
    b1 = state["b1"] if beta_1 is None else beta_1
    return (param - (1.0 - b1) * state["z"]) / b1


def schedule_free_init(param: Any, /, *, xp: Any, base: str = "adam", **hyper: Any) -> dict[str, Any]:
    """``z`` starts at the parameter; ``v`` (AdamW only), the 0-d running ``lr_max`` and ``weight_sum``,
    and the 0-d constant ``b1`` (``beta_1``, for :func:`schedule_free_eval_params`)."""
    zero = xp.zeros((), dtype=param.dtype)
    state = {"z": param + xp.zeros_like(param), "lr_max": zero, "weight_sum": zero}
    state["b1"] = hyper["beta_1"] * xp.ones((), dtype=param.dtype)
    if base == "adam":
        state["v"] = xp.zeros_like(param)
    return state


def _warmup(lr: Any, t: Any, warmup_steps: int, *, dtype: str | None, xp: Any) -> Any:
    r""":math:`\eta \min(t / W, 1)`, as Optax's linear schedule from 0: :math:`\eta - \eta(1 - \min(t, W)/W)`.

    With ``dtype`` (Optax: float32, its int32 count over the Python ``W``), the whole warmed-up lr
    is computed in that dtype, during and after the warmup.
    """
    if warmup_steps == 0:
        return lr
    if dtype is None:
        return lr - lr * (1.0 - xp.minimum(t, warmup_steps * xp.ones_like(t)) / warmup_steps)
    low = getattr(xp, dtype)
    t_low = xp.astype(t, low)
    lr_low = xp.astype(lr * xp.ones_like(t), low)
    frac = 1.0 - xp.minimum(t_low, warmup_steps * xp.ones_like(t_low)) / warmup_steps
    return xp.astype(-lr_low * frac + lr_low, t.dtype)


def _averaging_weight(state: dict[str, Any], lr: Any, step: Any, power: Any, *, xp: Any) -> tuple[Any, dict[str, Any]]:
    r"""``c_t = w_t / sum_{i<=t} w_i`` with :math:`w_t = \max_{i\le t}\eta_i^{p}` (0 when the sum is 0)."""
    lr_max = xp.maximum(state["lr_max"], lr * xp.ones_like(step))
    weight = xp.ones_like(lr_max) if is_zero(power) else lr_max**power
    total = state["weight_sum"] + weight
    positive = total > 0
    c = xp.where(positive, weight / xp.where(positive, total, xp.ones_like(total)), xp.zeros_like(total))
    return c, {"lr_max": lr_max, "weight_sum": total}


def schedule_free_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    beta_1: Any,
    weight_decay: Any,
    warmup_steps: int,
    weight_lr_power: Any,
    warmup_lag: bool,
    weight_decay_at: str = "z",
    warmup_dtype: str | None = None,
    x_from: str = "z_prev",
    base: str = "adam",
    beta_2: Any = 0.999,
    eps: Any = 1e-8,
) -> tuple[Any, dict[str, Any]]:
    r"""One schedule-free step (see :data:`SCHEDULE_FREE_ADAMW`, :data:`SCHEDULE_FREE_SGD`).

    .. math::
        x_{t-1} = \frac{y_{t-1} - (1-\beta_1) z_{t-1}}{\beta_1},\quad
        z_t = z_{t-1} - \gamma_t\,(d_t + \lambda y_{t-1}),\quad
        x_t = (1 - c_t) x_{t-1} + c_t z_t,\quad
        y_t = \beta_1 x_t + (1-\beta_1) z_t

    with :math:`d_t = g_t` (SGD) or :math:`g_t / (\sqrt{v_t/(1-\beta_2^t)} + \epsilon)` (AdamW) and
    :math:`c_t = \gamma_{\max,t}^p / \sum_i \gamma_{\max,i}^p`. Reference: Defazio et al. (2024),
    https://arxiv.org/abs/2405.15682.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("schedule_free_sgd", lr=0.5, beta_1=0.5), [np.array([1.0])]
    >>> opt.step(params, [np.array([1.0])])  # z = 0.5, x = z (c_1 = 1), y = 0.5
    >>> params[0].tolist()
    [0.5]
    """
    new_state: dict[str, Any] = {}
    y = param
    if weight_decay_at == "y" and not is_zero(weight_decay):  # Keras: the held parameters decay first
        y = param - param * weight_decay * lr
    lr_z = _warmup(lr, step - 1.0 if warmup_lag else step, warmup_steps, dtype=warmup_dtype, xp=xp)
    lr_t = _warmup(lr, step, warmup_steps, dtype=warmup_dtype, xp=xp)
    direction = grad
    if base == "adam":
        v = state["v"] + (grad * grad - state["v"]) * (1.0 - beta_2)
        direction = grad / (xp.sqrt(v / bias_correction(step, beta_2, xp=xp)) + eps)
        new_state["v"] = v
    if weight_decay_at == "z" and not is_zero(weight_decay):
        direction = direction + weight_decay * param
    z = state["z"] - lr_z * direction
    c, averages = _averaging_weight(state, lr_t, step, weight_lr_power, xp=xp)
    x = schedule_free_eval_params(y, {"z": z} if x_from == "z_new" else state, beta_1=beta_1)
    x = (1.0 - c) * x + c * z
    new_y = beta_1 * x + (1.0 - beta_1) * z
    if "b1" in state:  # constant: the beta_1 init saw (Optax's state.b1)
        new_state["b1"] = state["b1"]
    return new_y - param, {"z": z, **averages, **new_state}


_LR_DOC = "the base optimizer's learning rate (peak after warmup)"
_BETA_1 = Param(
    "beta_1",
    0.9,
    "interpolation y = (1 - beta_1) z + beta_1 x (the momentum's replacement), in (0, 1]",
    low=0.0,
    low_inclusive=False,
    high=1.0,
)
_WARMUP = Param(
    "warmup_steps", 0, "linear warmup of the lr from 0 over this many steps (0: none)", kind="int", low=0, static=True
)
_POWER = Param(
    "weight_lr_power",
    2.0,
    "the averaging weight of step t is max_{i<=t} lr_i ** weight_lr_power (0: uniform average 1/t)",
    low=0.0,
)
_WARMUP_DTYPE = Param(
    "warmup_dtype",
    None,
    "compute the warmed-up lr in this dtype when warmup_steps > 0 (Optax's warmup_constant_schedule "
    "gives float32 for a Python-float learning_rate); None: exact",
    kind="choice",
    choices=("float32",),
    nullable=True,
    static=True,
)
_LAG = Param(
    "warmup_lag",
    False,
    "the z step reads the warmup one step behind the averaging weight, lr(t-1) vs lr(t) (Optax: its "
    "base optimizer counts from 0, schedule_free from 1)",
    kind="bool",
    static=True,
)

_OPTAX_NOTE = (
    "A learning-rate schedule given to lossbridge is read at the update count by both the z step and "
    "the averaging weight; Optax's own wrapper reads a schedule at t-1 for z and at t for the weight "
    "(reproduced for warmup_steps by warmup_lag). Evaluate at optax.contrib.schedule_free_eval_params: on the "
    "jax backend the state's max_lr, weight_sum and b1 are single 0-d fields, z and nu trees, as in Optax's "
    "ScheduleFreeState."
)

SCHEDULE_FREE_ADAMW = OptimizerSpec(
    name="schedule_free_adamw",
    elementwise=True,
    aliases=("schedule_free_adam",),
    summary="Schedule-free AdamW: RMS-scaled steps on z, evaluation at a weighted average x of z, "
    "gradients at an interpolation y.",
    init=schedule_free_init,
    update=schedule_free_update,
    slots=("z", "v", "lr_max", "weight_sum", "b1"),
    params=(
        lr_param(0.0025, _LR_DOC),
        _BETA_1,
        Param("beta_2", 0.999, "decay of the second-moment estimate", low=0.0, high=1.0, high_inclusive=False),
        eps_param(1e-8, "added to the bias-corrected sqrt(v)"),
        Param("weight_decay", 0.0, "decay coefficient (see weight_decay_at)", low=0.0),
        _WARMUP,
        _POWER,
        _LAG,
        _WARMUP_DTYPE,
        Param(
            "x_from",
            "z_prev",
            "recover x_{t-1} = (y - (1-beta_1) z) / beta_1 from the previous z (paper, Optax) or from the "
            "new z_t ('z_new': Keras on TensorFlow, whose `momentum.value` is read after the update)",
            kind="choice",
            choices=("z_prev", "z_new"),
            static=True,
        ),
        Param(
            "weight_decay_at",
            "z",
            "'z': weight_decay*y is added to the z step (paper, Optax); 'y': the held parameters y shrink "
            "by lr*weight_decay before the step (Keras's base-optimizer decay, lr without warmup)",
            kind="choice",
            choices=("z", "y"),
            static=True,
        ),
    ),
    formula=(
        r"v_t = \beta_2 v_{t-1} + (1-\beta_2)g_t^2,\ "
        r"z_t = z_{t-1} - \gamma_t\big(\tfrac{g_t}{\sqrt{v_t/(1-\beta_2^t)}+\epsilon} + \lambda y_{t-1}\big),\ "
        r"x_t = (1-c_t)x_{t-1} + c_t z_t,\ y_t = \beta_1 x_t + (1-\beta_1) z_t,\ "
        r"c_t = \frac{\gamma_{\max,t}^p}{\sum_{i\le t}\gamma_{\max,i}^p}"
    ),
    references=(_DEFAZIO, _REPO),
    usage=(
        "Replaces AdamW plus a cosine/linear decay when the training length is not known in advance; "
        "matches tuned schedules in the paper's benchmarks. Evaluate (and checkpoint for inference) at "
        "x = schedule_free_eval_params(y, state), not at the held parameters y (the state: NumPy's "
        "state.slots[i], torch's opt.state[p], Keras's opt.slots_of(variable); on JAX "
        "optax.contrib.schedule_free_eval_params(state, params) runs on lossbridge's state); BatchNorm "
        "statistics must be recomputed at x. Use beta_1 > 0 and a warmup."
    ),
    conventions={
        "keras": Convention(
            "keras",
            "keras.optimizers.ScheduleFreeAdamW",
            params={"weight_lr_power": 0.0, "weight_decay_at": "y", "x_from": "z_new"},
            notes="Uniform average (weight 1/t, no lr weighting); warmup min(t/W, 1) for the z step; "
            "x_{t-1} is recovered from the NEW z (Keras 3.15 on TensorFlow reads the momentum variable "
            "after assigning it; on the JAX backend Keras reads the old one: use x_from='z_prev'); "
            "weight_decay is the base optimizer's decay of y (default None = 0); learning_rate, beta_1, "
            "beta_2, epsilon and weight_decay are all cast through float32.",
            hyper_dtype="float32",
            rounded=("lr", "beta_1", "beta_2", "eps", "weight_decay"),
            names={"ScheduleFreeAdamW": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.contrib.schedule_free_adamw",
            params={"warmup_lag": True, "warmup_dtype": "float32"},
            notes="scale_by_rms (eps outside the sqrt, bias-corrected), weight_decay*y added, -lr; "
            "weights max lr^2. " + _OPTAX_NOTE,
            names={"schedule_free_adamw": {}},
            kwargs={"b1": "beta_1", "b2": "beta_2"},
            state={"z": "z", "v": "nu", "lr_max": "max_lr", "weight_sum": "weight_sum", "b1": "b1"},
        ),
    },
)

SCHEDULE_FREE_SGD = OptimizerSpec(
    name="schedule_free_sgd",
    elementwise=True,
    summary="Schedule-free SGD: gradient steps on z, evaluation at a weighted average x of z, "
    "gradients at an interpolation y.",
    init=partial(schedule_free_init, base="sgd"),
    update=partial(schedule_free_update, base="sgd"),
    slots=("z", "lr_max", "weight_sum", "b1"),
    params=(
        lr_param(1.0, _LR_DOC),
        _BETA_1,
        Param("weight_decay", 0.0, "weight_decay*y is added to the gradient of the z step", low=0.0),
        _WARMUP,
        _POWER,
        _LAG,
        _WARMUP_DTYPE,
    ),
    formula=(
        r"z_t = z_{t-1} - \gamma_t(g_t + \lambda y_{t-1}),\ x_t = (1-c_t)x_{t-1} + c_t z_t,\ "
        r"y_t = \beta_1 x_t + (1-\beta_1) z_t,\ c_t = \frac{\gamma_{\max,t}^p}{\sum_{i\le t}\gamma_{\max,i}^p}"
    ),
    references=(_DEFAZIO, _REPO),
    usage=(
        "SGD-with-momentum workloads (vision, convex problems) without choosing a decay schedule or a "
        "stopping time. Evaluate at x = schedule_free_eval_params(y, state); beta_1 must be > 0."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.contrib.schedule_free_sgd",
            params={"warmup_lag": True, "warmup_dtype": "float32"},
            notes="add_decayed_weights (y) before sgd; weights max lr^2. " + _OPTAX_NOTE,
            names={"schedule_free_sgd": {}},
            kwargs={"b1": "beta_1"},
            state={"z": "z", "lr_max": "max_lr", "weight_sum": "weight_sum", "b1": "b1"},
        ),
    },
)

SPECS = (SCHEDULE_FREE_ADAMW, SCHEDULE_FREE_SGD)
