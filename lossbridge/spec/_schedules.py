"""Learning-rate schedules: constant, exponential/step, piecewise, polynomial, inverse-time, sigmoid, cosine,
restarts, one-cycle, cyclic, and their composition (join, product).

Every schedule is ``fn(step, /, *, xp, **params)`` with ``step`` the number of optimizer updates
already taken (0 for the first update; Optax's ``count``, Keras's ``iterations``, torch's
``last_epoch`` when the scheduler steps once per ``optimizer.step()``, Caffe's ``iter``).

The torch conventions set ``lr=None``: a torch scheduler multiplies each parameter group's initial
learning rate (``base_lrs``), so the torch materialization puts that group's initial lr in ``lr``.
Keras and Optax take absolute values (``initial_learning_rate``, ``init_value``).

Composition is a spec over other schedules, not a backend feature: ``join_schedules`` runs child
``k`` from boundary ``b_k`` on, restarted at its own step 0 (torch ``SequentialLR``, Optax
``join_schedules`` and ``sgdr_schedule``), and ``chained_schedules`` multiplies the children's
factors (torch ``ChainedScheduler``). The children are lossbridge schedules from any backend (or bound
specs), so one composed definition materializes everywhere; the torch materialization also accepts
torch's own schedulers of the names in these conventions (it reads their constructor arguments back),
and a framework's own schedule function is called as it is (on that framework only).

``ReduceLROnPlateau`` is not a schedule: its value depends on a monitored metric, not on the step,
so it has no spec here. What each framework offers: torch ``ReduceLROnPlateau(optimizer, mode, factor=0.1,
patience=10, threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8)`` stepped with the
metric; Keras the callback ``keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1,
patience=10, min_delta=1e-4, cooldown=0, min_lr=0)`` that sets the optimizer's ``learning_rate``
between epochs (it needs a plain float or variable lr, not a ``LearningRateSchedule``); Optax
``optax.contrib.reduce_on_plateau(factor=0.1, patience=10, rtol=1e-4, atol=0, cooldown=0,
accumulation_size=1, min_scale=0)``, a gradient transformation that scales the updates and reads the
loss from ``update(..., value=loss)``; Caffe has no metric-driven policy. With lossbridge, use those
natively: lossbridge's torch optimizers work under torch's ``ReduceLROnPlateau``, its Keras optimizers
under the Keras callback, and its Optax transformations chain with ``reduce_on_plateau``.
"""

from __future__ import annotations

import math
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.errors import ParameterError
from lossbridge.spec._model import ScheduleSpec
from lossbridge.spec._params import Param

__all__ = [
    "CONSTANT",
    "COSINE_DECAY",
    "COSINE_RESTARTS",
    "EXPONENTIAL_DECAY",
    "INVERSE_TIME_DECAY",
    "ONE_CYCLE",
    "PIECEWISE_CONSTANT",
    "PIECEWISE_INTERPOLATE",
    "POLYNOMIAL_DECAY",
    "SIGMOID_DECAY",
    "SPECS",
]

LR = Param(
    "lr",
    0.1,
    "the base value the schedule scales (torch: None = each param group's initial lr)",
    nullable=True,
)


def _full(xp: Any, step: Any, value: Any) -> Any:
    """``value`` broadcast to an array like ``step`` (scalars and arrays alike)."""
    return xp.zeros_like(step) + value


def _min(xp: Any, a: Any, b: Any) -> Any:
    return xp.minimum(a, _full(xp, a, b))


def _max(xp: Any, a: Any, b: Any) -> Any:
    return xp.maximum(a, _full(xp, a, b))


def _lr(lr: Any) -> Any:
    if lr is None:
        raise ParameterError("lr is None: give lr (only a torch scheduler fills it from the optimizer's lr)")
    return lr


def _steps(name: str, default: int, doc: str, low: int = 1) -> Param:
    return Param(name, default, doc, kind="int", low=low)


# -- constant ----------------------------------------------------------------------------------------
def constant(step: Any, /, *, xp: Any, lr: Any, factor: Any, total_iters: int) -> Any:
    r"""``lr * factor`` for the first ``total_iters`` steps, then ``lr``.

    .. math:: \eta_t = \eta\,(t < T\ ?\ f : 1)

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> constant(np.arange(4.0), xp=xp, lr=0.3, factor=0.5, total_iters=2).tolist()
    [0.15, 0.15, 0.3, 0.3]
    """
    lr = _lr(lr)
    return lr * xp.where(step < total_iters, _full(xp, step, factor), _full(xp, step, 1.0))


CONSTANT = ScheduleSpec(
    name="constant",
    aliases=("constant_lr", "constant_schedule", "fixed_lr"),
    summary="A constant value, optionally scaled by a factor for the first few steps.",
    fn=constant,
    params=(
        LR,
        Param("factor", 1.0, "multiplier of lr during the first total_iters steps", low=0.0),
        _steps("total_iters", 0, "number of steps the factor applies", low=0),
    ),
    formula=r"\eta_t = \eta \cdot (t < T\ ?\ f : 1)",
    references=(
        "PyTorch ConstantLR, https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ConstantLR.html",
        "Jia et al. (2014). Caffe: Convolutional Architecture for Fast Feature Embedding (lr_policy fixed).",
    ),
    usage="The baseline. With factor < 1 and a few total_iters it is a crude warmup; prefer a linear warmup.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.ConstantLR", params={"lr": None, "factor": 1.0 / 3, "total_iters": 5},
            notes="factor 1/3 for 5 steps by default; multiplies each group's initial lr.",
            names={"ConstantLR": {}},
        ),
        "optax": Convention(
            "optax", "optax.constant_schedule", notes="the value itself.",
            names={"constant_schedule": {}}, kwargs={"value": "lr"},
        ),
        "caffe": Convention(
            "caffe", "caffe lr_policy fixed", params={"lr": 0.01}, notes="base_lr every iteration.",
            names={"fixed": {}},
        ),
    },
)


# -- exponential / step ----------------------------------------------------------------------------------
def exponential_decay(
    step: Any, /, *, xp: Any, lr: Any, decay_rate: Any, decay_steps: int, staircase: bool, begin: int,
    end_value: Any, peak_value: Any, warmup_steps: int,
) -> Any:
    r"""``lr * decay_rate ** ((t - begin) / decay_steps)``, floored when ``staircase``, clipped at ``end_value``.

    With ``warmup_steps`` W > 0, a linear warmup from ``lr`` to ``peak_value`` comes first and the decay
    starts from the peak at step W (Optax ``warmup_exponential_decay_schedule``).

    .. math:: \eta_t = \hat\eta\,\gamma^{p},\quad p = (t - W - t_0)/T\ (\lfloor\cdot\rfloor\ \text{if staircase})

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> exponential_decay(np.arange(5.0), xp=xp, lr=1.0, decay_rate=0.5, decay_steps=2, staircase=True,
    ...                   begin=0, end_value=None, peak_value=None, warmup_steps=0).tolist()
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    start = _lr(lr)
    lr = start if peak_value is None else peak_value
    shifted = step - warmup_steps - begin
    p = shifted / decay_steps
    if staircase:
        p = xp.floor(p)
    value = xp.where(shifted <= 0, _full(xp, step, lr), lr * (_full(xp, step, decay_rate) ** p))
    if end_value is not None:
        decaying = _full(xp, step, decay_rate) < 1.0
        value = xp.where(decaying, _max(xp, value, end_value), _min(xp, value, end_value))
    if warmup_steps == 0:
        return value
    warm = (lr - start) * (step / warmup_steps) + start
    return xp.where(step < warmup_steps, warm, value)


EXPONENTIAL_DECAY = ScheduleSpec(
    name="exponential_decay",
    aliases=("exponential_lr", "step_lr", "step_decay"),
    summary="Exponential decay by decay_rate every decay_steps steps, continuous or as a staircase (step decay).",
    fn=exponential_decay,
    params=(
        LR,
        Param("decay_rate", 0.1, "factor per decay_steps steps (torch/Caffe gamma)", low=0.0),
        _steps("decay_steps", 1, "steps per factor of decay_rate (torch step_size, Caffe stepsize)"),
        Param("staircase", False, "decay in whole steps (StepLR) instead of continuously", kind="bool", static=True),
        _steps("begin", 0, "steps before the decay starts (Optax transition_begin)", low=0),
        Param("end_value", None, "a floor (growth: a ceiling) on the value", nullable=True),
        Param("peak_value", None, "value reached after warmup_steps, where the decay starts; None: lr",
              nullable=True),
        _steps("warmup_steps", 0, "length of a linear warmup from lr to peak_value (Optax)", low=0),
    ),
    formula=r"\eta_t = \eta\,\gamma^{p},\ p = \frac{t - t_0}{T}\ (\lfloor p \rfloor \text{ if staircase}),\ "
    r"\eta_t = \eta \text{ for } t \le t_0",
    references=(
        "PyTorch StepLR / ExponentialLR, https://pytorch.org/docs/stable/optim.html",
        "Keras ExponentialDecay, https://keras.io/api/optimizers/learning_rate_schedules/exponential_decay/",
        "Optax exponential_decay, https://optax.readthedocs.io/en/latest/api/optimizer_schedules.html",
    ),
    usage="Step decay (staircase) by 0.1 every 30 epochs is the classic ImageNet recipe; continuous exponential "
    "decay is smoother. decay_steps counts the steps the schedule sees: torch schedulers stepped per epoch count "
    "epochs.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.StepLR", params={"lr": None, "decay_rate": 0.1, "staircase": True},
            notes="StepLR: gamma**(t // step_size); ExponentialLR: gamma**t. Multiplies each group's initial lr.",
            names={"StepLR": {"staircase": True}, "ExponentialLR": {"staircase": False, "decay_steps": 1}},
            kwargs={"gamma": "decay_rate", "step_size": "decay_steps"},
        ),
        "keras": Convention(
            "keras", "keras.optimizers.schedules.ExponentialDecay", notes="no begin, no end value.",
            names={"ExponentialDecay": {}}, kwargs={"initial_learning_rate": "lr"},
        ),
        "optax": Convention(
            "optax", "optax.exponential_decay", notes="transition_begin and an optional end_value clip; "
            "warmup_exponential_decay_schedule warms up linearly from init_value to peak_value first.",
            names={"exponential_decay": {}, "warmup_exponential_decay_schedule": {}},
            kwargs={"init_value": "lr", "transition_steps": "decay_steps", "transition_begin": "begin"},
        ),
        "caffe": Convention(
            "caffe", "caffe lr_policy step / exp", params={"lr": 0.01, "staircase": True},
            notes="step: base_lr * gamma^floor(iter/stepsize); exp: base_lr * gamma^iter.",
            names={"step": {"staircase": True}, "exp": {"staircase": False, "decay_steps": 1}},
            kwargs={"gamma": "decay_rate", "stepsize": "decay_steps"},
        ),
    },
)


# -- piecewise constant ----------------------------------------------------------------------------------
def _floats(values: Any) -> list[float]:
    return [float(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]


def _check_piecewise(bounds: list[float], scales: Any, values: Any) -> None:
    if any(b > a for a, b in zip(bounds[1:], bounds)):
        raise ParameterError(f"piecewise_constant: boundaries must be increasing, got {bounds}")
    if scales is not None and len(_floats(scales)) != len(bounds):
        raise ParameterError(f"piecewise_constant: expected one scale per boundary ({len(bounds)}), got {scales!r}")
    if values is not None and len(_floats(values)) != len(bounds) + 1:
        raise ParameterError(
            f"piecewise_constant: expected len(boundaries)+1 = {len(bounds) + 1} values, got {values!r}"
        )


def piecewise_constant(
    step: Any, /, *, xp: Any, lr: Any, boundaries: Any, gamma: Any, scales: Any, values: Any, inclusive: bool
) -> Any:
    r"""Constant pieces: ``lr`` times the scales of the boundaries passed, or ``values[k]`` directly.

    A boundary ``b`` is passed when ``t >= b`` (``inclusive``, torch/Optax/Caffe) or ``t > b`` (Keras).

    .. math:: \eta_t = \eta \prod_{i:\ t \ge b_i} s_i

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> piecewise_constant(np.arange(5.0), xp=xp, lr=1.0, boundaries=[1, 3], gamma=0.5, scales=None,
    ...                    values=None, inclusive=True).tolist()
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """
    bounds = _floats(boundaries)
    _check_piecewise(bounds, scales, values)
    if values is not None:
        vals = _floats(values)
        out = _full(xp, step, vals[0])
        for b, v in zip(bounds, vals[1:]):
            out = xp.where((step >= b) if inclusive else (step > b), _full(xp, step, v), out)
        return out
    factors = [gamma] * len(bounds) if scales is None else _floats(scales)
    out = _full(xp, step, _lr(lr))
    for b, s in zip(bounds, factors):
        out = xp.where((step >= b) if inclusive else (step > b), out * s, out)
    return out


PIECEWISE_CONSTANT = ScheduleSpec(
    name="piecewise_constant",
    aliases=("multistep", "multi_step_lr", "piecewise_constant_decay"),
    summary="Piecewise constant: multiply by gamma (or a scale per boundary) at each boundary, or give the values.",
    fn=piecewise_constant,
    params=(
        LR,
        Param("boundaries", (), "increasing steps where the value changes (torch milestones)", kind="array",
              static=True),
        Param("gamma", 0.1, "factor applied at every boundary when scales is None", low=0.0),
        Param("scales", None, "one factor per boundary (Optax boundaries_and_scales)", kind="array", nullable=True,
              static=True),
        Param("values", None, "len(boundaries)+1 absolute values (Keras); replaces lr and the factors",
              kind="array", nullable=True, static=True),
        Param("inclusive", True, "a boundary b applies from t = b (torch, Optax, Caffe) or from t = b+1 (Keras)",
              kind="bool", static=True),
    ),
    formula=r"\eta_t = \eta \prod_{i:\ t \ge b_i} s_i \quad\text{or}\quad \eta_t = v_{\#\{i:\ t > b_i\}}",
    references=(
        "PyTorch MultiStepLR, https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.MultiStepLR.html",
        "Keras PiecewiseConstantDecay, https://keras.io/api/optimizers/learning_rate_schedules/",
        "Optax piecewise_constant_schedule, https://optax.readthedocs.io/en/latest/api/optimizer_schedules.html",
    ),
    usage="Drop the lr by 10x at chosen epochs (e.g. 30, 60, 90). Keras's boundaries are exclusive: its value "
    "changes one step later than torch's for the same numbers.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.MultiStepLR", params={"lr": None},
            notes="gamma**(number of milestones <= t), times each group's initial lr.",
            names={"MultiStepLR": {}}, kwargs={"milestones": "boundaries"},
        ),
        "keras": Convention(
            "keras", "keras.optimizers.schedules.PiecewiseConstantDecay", params={"inclusive": False},
            notes="values[0] for t <= b_0, values[i] for b_{i-1} < t <= b_i.",
            names={"PiecewiseConstantDecay": {}},
        ),
        "optax": Convention(
            "optax", "optax.piecewise_constant_schedule",
            notes="boundaries_and_scales={b: s}: the product of the scales of the boundaries <= t.",
            names={"piecewise_constant_schedule": {}},
            kwargs={"init_value": "lr", "boundaries_and_scales": ("boundaries", "scales")},
        ),
        "caffe": Convention(
            "caffe", "caffe lr_policy multistep", params={"lr": 0.01},
            notes="base_lr * gamma^(number of stepvalues <= iter).",
            names={"multistep": {}}, kwargs={"stepvalue": "boundaries"},
        ),
    },
)


# -- piecewise interpolated ----------------------------------------------------------------------------------
def _interpolate(xp: Any, start: float, end: float, pct: Any, kind: str) -> Any:
    if kind == "cosine":
        return end + (start - end) / 2.0 * (xp.cos(math.pi * pct) + 1.0)
    return (end - start) * pct + start


def piecewise_interpolate(
    step: Any, /, *, xp: Any, lr: Any, boundaries: Any, scales: Any, interpolate_type: str
) -> Any:
    r"""Interpolate between the running products of the scales, reached at each boundary.

    ``v_0 = lr`` at step 0, ``v_k = lr * s_1 * ... * s_k`` at boundary ``b_k``, linear or cosine in between,
    ``v_K`` from the last boundary on (Optax ``piecewise_interpolate_schedule``).

    .. math:: \eta_t = \text{interp}(v_{k-1}, v_k, \tfrac{t - b_{k-1}}{b_k - b_{k-1}}),\ b_{k-1} \le t < b_k

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> piecewise_interpolate(np.arange(5.0), xp=xp, lr=1.0, boundaries=[2, 4], scales=[0.5, 0.5],
    ...                       interpolate_type="linear").tolist()
    [1.0, 0.75, 0.5, 0.375, 0.25]
    """
    bounds = _floats(boundaries)
    _check_piecewise(bounds, scales, None)
    values = [_lr(lr)]
    for s in _floats(scales if scales is not None else [1.0] * len(bounds)):
        values.append(values[-1] * s)
    starts = [0.0, *bounds]
    out = _full(xp, step, values[-1])
    for k in range(len(bounds) - 1, -1, -1):
        size = max(bounds[k] - starts[k], 1.0)
        piece = _interpolate(xp, values[k], values[k + 1], (step - starts[k]) / size, interpolate_type)
        out = xp.where(step < bounds[k], piece, out)
    return xp.where(step < 0.0, _full(xp, step, 0.0), out)


PIECEWISE_INTERPOLATE = ScheduleSpec(
    name="piecewise_interpolate",
    aliases=("piecewise_interpolate_schedule", "piecewise_linear"),
    summary="Linear or cosine interpolation between lr times the running product of the scales at each boundary.",
    fn=piecewise_interpolate,
    params=(
        LR,
        Param("boundaries", (), "increasing steps at which each running product is reached", kind="array",
              static=True),
        Param("scales", None, "one factor per boundary, multiplied up (None: all 1)", kind="array",
              nullable=True, static=True),
        Param("interpolate_type", "linear", "linear or cosine interpolation", kind="choice",
              choices=("linear", "cosine"), static=True),
    ),
    formula=r"\eta_t = \text{interp}\big(v_{k-1}, v_k, \tfrac{t - b_{k-1}}{b_k - b_{k-1}}\big),\ "
    r"v_k = \eta \prod_{i \le k} s_i,\ b_0 = 0",
    references=(
        "Optax piecewise_interpolate_schedule, https://optax.readthedocs.io/en/latest/api/optimizer_schedules.html",
    ),
    usage="A hand-drawn lr curve: warmup and decays as straight (or cosine) segments. The scales multiply up: "
    "boundaries_and_scales={100: 10, 200: 0.1} goes up 10x and back, not to 0.1.",
    conventions={
        "optax": Convention(
            "optax", "optax.piecewise_interpolate_schedule",
            notes="boundaries_and_scales={b: s}; 0 before step 0; intervals of at least one step.",
            names={"piecewise_interpolate_schedule": {}},
            kwargs={"init_value": "lr", "boundaries_and_scales": ("boundaries", "scales")},
        ),
    },
)


# -- polynomial / linear -------------------------------------------------------------------------------------
def polynomial_decay(
    step: Any, /, *, xp: Any, lr: Any, init_value: Any, end_value: Any, power: Any, decay_steps: int,
    begin: int, cycle: bool,
) -> Any:
    r"""``lr * ((init - end) * (1 - t/T) ** power + end)``, held at ``end`` after ``T`` (or cycling).

    .. math:: \eta_t = \eta\,\big((v_0 - v_1)(1 - \min(t - t_0, T)/T)^{k} + v_1\big)

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> polynomial_decay(np.arange(4.0), xp=xp, lr=1.0, init_value=1.0, end_value=0.0, power=1.0,
    ...                  decay_steps=2, begin=0, cycle=False).tolist()
    [1.0, 0.5, 0.0, 0.0]
    """
    lr = _lr(lr)
    t = _max(xp, step - begin, 0.0)
    if cycle:  # Keras: stretch T to the next multiple of decay_steps above t
        periods = xp.where(t == 0, _full(xp, t, 1.0), xp.ceil(t / decay_steps))
        frac = 1.0 - t / (decay_steps * periods)
    else:
        frac = 1.0 - _min(xp, t, decay_steps) / decay_steps
    return lr * ((init_value - end_value) * frac**power + end_value)


POLYNOMIAL_DECAY = ScheduleSpec(
    name="polynomial_decay",
    aliases=("polynomial_lr", "linear_lr", "linear_schedule", "polynomial_schedule"),
    summary="Polynomial (power 1: linear) interpolation from init_value to end_value over decay_steps steps.",
    fn=polynomial_decay,
    params=(
        Param("lr", 1.0, "scale of init_value and end_value (torch: None = each group's initial lr)",
              nullable=True),
        Param("init_value", 0.1, "value at the start (torch start_factor)"),
        Param("end_value", 0.0, "value from decay_steps on (torch end_factor)"),
        Param("power", 1.0, "exponent of the remaining fraction", low=0.0),
        _steps("decay_steps", 100, "length of the decay (torch total_iters)"),
        _steps("begin", 0, "steps held at init_value first (Optax transition_begin)", low=0),
        Param("cycle", False, "restart with a longer period after decay_steps (Keras)", kind="bool", static=True),
    ),
    formula=r"\eta_t = \eta\,\big((v_0 - v_1)\,(1 - \min(t - t_0, T)/T)^{k} + v_1\big)",
    references=(
        "PyTorch LinearLR / PolynomialLR, https://pytorch.org/docs/stable/optim.html",
        "Keras PolynomialDecay, https://keras.io/api/optimizers/learning_rate_schedules/polynomial_decay/",
        "Optax polynomial_schedule, https://optax.readthedocs.io/en/latest/api/optimizer_schedules.html",
    ),
    usage="Linear warmup (init < end) or linear/polynomial decay to zero (BERT fine-tuning, DeepLab poly). "
    "torch's LinearLR/PolynomialLR give factors of the optimizer's lr; Keras/Optax give absolute values.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.LinearLR",
            params={"lr": None, "init_value": 1.0 / 3, "end_value": 1.0, "decay_steps": 5},
            notes="factors of each group's initial lr; PolynomialLR decays to 0.",
            names={"LinearLR": {"power": 1.0}, "PolynomialLR": {"init_value": 1.0, "end_value": 0.0}},
            kwargs={"start_factor": "init_value", "end_factor": "end_value", "total_iters": "decay_steps"},
        ),
        "keras": Convention(
            "keras", "keras.optimizers.schedules.PolynomialDecay", params={"lr": 1.0, "end_value": 1e-4},
            notes="end_learning_rate 1e-4 by default; optional cycle.", names={"PolynomialDecay": {}},
            kwargs={"initial_learning_rate": "init_value", "end_learning_rate": "end_value"},
        ),
        "optax": Convention(
            "optax", "optax.polynomial_schedule", params={"lr": 1.0},
            notes="transition_begin holds init_value first.",
            names={"polynomial_schedule": {}, "linear_schedule": {"power": 1.0}},
            kwargs={"transition_steps": "decay_steps", "transition_begin": "begin"},
        ),
        "caffe": Convention(
            "caffe", "caffe lr_policy poly", params={"lr": 0.01, "init_value": 1.0, "end_value": 0.0},
            notes="base_lr * (1 - iter/max_iter)^power.",
            names={"poly": {}}, kwargs={"max_iter": "decay_steps"},
        ),
    },
)


# -- inverse time ----------------------------------------------------------------------------------------------
def inverse_time_decay(
    step: Any, /, *, xp: Any, lr: Any, decay_rate: Any, decay_steps: int, power: Any, staircase: bool
) -> Any:
    r"""``lr * (1 + decay_rate * t / decay_steps) ** -power``.

    .. math:: \eta_t = \eta\,(1 + \gamma\,p)^{-k},\quad p = t/T

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> inverse_time_decay(np.arange(3.0), xp=xp, lr=1.0, decay_rate=1.0, decay_steps=1, power=1.0,
    ...                    staircase=False).tolist()
    [1.0, 0.5, 0.3333333333333333]
    """
    p = step / decay_steps
    if staircase:
        p = xp.floor(p)
    base = 1.0 + decay_rate * p
    if isinstance(power, (int, float)) and power == 1:  # Keras divides; exact for the default power
        return _lr(lr) / base
    return _lr(lr) * base ** (-power)


INVERSE_TIME_DECAY = ScheduleSpec(
    name="inverse_time_decay",
    aliases=("inverse_time", "inv_decay"),
    summary="Inverse-time decay lr / (1 + decay_rate * t / decay_steps)^power.",
    fn=inverse_time_decay,
    params=(
        LR,
        Param("decay_rate", 0.5, "rate of decay (Caffe gamma)", low=0.0),
        _steps("decay_steps", 1, "steps per unit of t"),
        Param("power", 1.0, "exponent (Caffe power; Keras 1)", low=0.0),
        Param("staircase", False, "floor t / decay_steps", kind="bool", static=True),
    ),
    formula=r"\eta_t = \eta\,(1 + \gamma\,t/T)^{-k}",
    references=(
        "Keras InverseTimeDecay, https://keras.io/api/optimizers/learning_rate_schedules/inverse_time_decay/",
        "Jia et al. (2014). Caffe (lr_policy inv), src/caffe/solvers/sgd_solver.cpp.",
        "Robbins & Monro (1951): step sizes decaying like 1/t.",
    ),
    usage="The 1/t decay of stochastic approximation theory; slow, never reaches zero.",
    conventions={
        "keras": Convention(
            "keras", "keras.optimizers.schedules.InverseTimeDecay", notes="power 1.",
            names={"InverseTimeDecay": {}}, kwargs={"initial_learning_rate": "lr"},
        ),
        "caffe": Convention(
            "caffe", "caffe lr_policy inv", params={"lr": 0.01, "decay_rate": 1e-4, "power": 0.75},
            notes="base_lr * (1 + gamma * iter)^(-power).",
            names={"inv": {}}, kwargs={"gamma": "decay_rate"},
        ),
    },
)


# -- sigmoid ----------------------------------------------------------------------------------------------------
def sigmoid_decay(step: Any, /, *, xp: Any, lr: Any, gamma: Any, step_size: Any) -> Any:
    r"""``lr / (1 + exp(-gamma * (t - step_size)))`` (Caffe's ``sigmoid`` policy).

    .. math:: \eta_t = \eta\,\sigma(\gamma (t - s))

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> sigmoid_decay(np.asarray([5.0]), xp=xp, lr=1.0, gamma=-0.1, step_size=5).tolist()
    [0.5]
    """
    return _lr(lr) * (1.0 / (1.0 + xp.exp(-gamma * (step - step_size))))


SIGMOID_DECAY = ScheduleSpec(
    name="sigmoid_decay",
    aliases=("sigmoid_schedule",),
    summary="A sigmoid ramp centred at step_size: decays for negative gamma, grows for positive.",
    fn=sigmoid_decay,
    params=(
        LR,
        Param("gamma", -0.01, "slope; negative decays, positive warms up"),
        Param("step_size", 1000.0, "the step at which the value is lr / 2"),
    ),
    formula=r"\eta_t = \eta\,\frac{1}{1 + e^{-\gamma (t - s)}}",
    references=("Jia et al. (2014). Caffe (lr_policy sigmoid), src/caffe/solvers/sgd_solver.cpp.",),
    usage="A smooth step. Caffe's policy; gamma must be negative for a decay.",
    conventions={
        "caffe": Convention(
            "caffe", "caffe lr_policy sigmoid", params={"lr": 0.01},
            notes="base_lr * 1/(1 + exp(-gamma*(iter - stepsize))).",
            names={"sigmoid": {}}, kwargs={"stepsize": "step_size"},
        ),
    },
)

from lossbridge.spec._schedules_cyclic import (  # noqa: E402
    CHAINED_SCHEDULES,
    COSINE_DECAY,
    COSINE_RESTARTS,
    CYCLIC,
    JOIN_SCHEDULES,
    ONE_CYCLE,
)

SPECS = (
    CONSTANT,
    EXPONENTIAL_DECAY,
    PIECEWISE_CONSTANT,
    PIECEWISE_INTERPOLATE,
    POLYNOMIAL_DECAY,
    INVERSE_TIME_DECAY,
    SIGMOID_DECAY,
    COSINE_DECAY,
    COSINE_RESTARTS,
    ONE_CYCLE,
    CYCLIC,
    JOIN_SCHEDULES,
    CHAINED_SCHEDULES,
)
