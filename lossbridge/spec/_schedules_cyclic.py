"""Cyclic and composed schedules: cosine decay with warmup, warm restarts (SGDR), one-cycle, cyclical
learning rates (torch CyclicLR), and composition: join (torch SequentialLR, Optax join_schedules /
sgdr_schedule) and product (torch ChainedScheduler).

Part of the schedule family of :mod:`lossbridge.spec._schedules` (which registers them); see its
docstring for the step count and the torch ``lr=None`` rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.errors import ParameterError
from lossbridge.spec._model import ScheduleSpec
from lossbridge.spec._params import Param

__all__ = ["CHAINED_SCHEDULES", "COSINE_DECAY", "COSINE_RESTARTS", "CYCLIC", "JOIN_SCHEDULES", "ONE_CYCLE"]


def _full(xp: Any, like: Any, value: Any) -> Any:
    return xp.zeros_like(like) + value


def _clip(xp: Any, x: Any, low: Any, high: Any) -> Any:
    return xp.minimum(xp.maximum(x, _full(xp, x, low)), _full(xp, x, high))


def _lr(lr: Any) -> Any:
    if lr is None:
        raise ParameterError("lr is None: give lr (only a torch scheduler fills it from the optimizer's lr)")
    return lr


def _half_cosine(xp: Any, fraction: Any) -> Any:
    """0.5 * (1 + cos(pi * fraction)): 1 at 0, 0 at 1."""
    return 0.5 * (1.0 + xp.cos(math.pi * fraction))


# -- cosine decay with linear warmup -------------------------------------------------------------------------------
def cosine_decay(
    step: Any, /, *, xp: Any, lr: Any, peak_value: Any, warmup_steps: int, decay_steps: int, alpha: Any,
    end_value: Any, exponent: Any, periodic: bool, decay_includes_warmup: bool,
) -> Any:
    r"""Linear warmup from ``lr`` to ``peak_value``, then cosine decay from the peak over ``decay_steps``.

    .. math::
        \eta_t = \eta + (\hat\eta - \eta)\,t/W \ (t < W),\qquad
        \eta_t = e + (\hat\eta - e)\big((1-\alpha)\,c^{k} + \alpha\big),\
        c = \tfrac12\big(1 + \cos(\pi \min(t - W, T)/T)\big)

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> cosine_decay(np.asarray([0.0, 1.0, 2.0]), xp=xp, lr=1.0, peak_value=None, warmup_steps=0,
    ...              decay_steps=2, alpha=0.0, end_value=0.0, exponent=1.0, periodic=False,
    ...              decay_includes_warmup=False).round(12).tolist()
    [1.0, 0.5, 0.0]
    """
    lr = _lr(lr)
    peak = lr if peak_value is None else peak_value
    length = decay_steps - warmup_steps if decay_includes_warmup else decay_steps
    length = max(length, 1)
    since = step - warmup_steps
    t = since if periodic else _clip(xp, since, 0.0, length)
    c = _half_cosine(xp, t / length)
    decayed = (1.0 - alpha) * c**exponent + alpha
    value = end_value + (peak - end_value) * decayed
    if isinstance(warmup_steps, int) and warmup_steps == 0:
        return value
    warm = (peak - lr) * (step / max(warmup_steps, 1)) + lr
    return xp.where(step < warmup_steps, warm, value)


COSINE_DECAY = ScheduleSpec(
    name="cosine_decay",
    aliases=("cosine_annealing", "cosine_annealing_lr", "warmup_cosine_decay", "cosine_decay_schedule"),
    summary="Cosine annealing from the peak to alpha*peak (or end_value), after an optional linear warmup.",
    fn=cosine_decay,
    params=(
        Param("lr", 0.1, "value at step 0: the peak without warmup, the warmup's start with it "
              "(torch: None = each group's initial lr)", nullable=True),
        Param("peak_value", None, "value reached after warmup_steps (Keras warmup_target); None: lr, no warmup",
              nullable=True),
        Param("warmup_steps", 0, "length of the linear warmup", kind="int", low=0),
        Param("decay_steps", 100, "length of the cosine (torch T_max)", kind="int", low=1),
        Param("alpha", 0.0, "final value as a fraction of the peak", low=0.0),
        Param("end_value", 0.0, "final value, absolute (torch eta_min; Optax warmup end_value)"),
        Param("exponent", 1.0, "power of the cosine factor (Optax)", low=0.0),
        Param("periodic", False, "keep following the cosine after decay_steps (torch) instead of holding the end",
              kind="bool", static=True),
        Param("decay_includes_warmup", False, "decay_steps counts the warmup too (Optax)", kind="bool",
              static=True),
    ),
    formula=r"\eta_t = e + (\hat\eta - e)\Big((1-\alpha)\big[\tfrac12(1 + \cos\tfrac{\pi \min(t-W,T)}{T})\big]^k"
    r" + \alpha\Big),\ \eta_t = \eta + (\hat\eta - \eta)\tfrac{t}{W}\ (t < W)",
    references=(
        "Loshchilov, I. & Hutter, F. (2017). SGDR: Stochastic Gradient Descent with Warm Restarts. ICLR. "
        "https://arxiv.org/abs/1608.03983",
        "Goyal et al. (2017). Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour (linear warmup). "
        "https://arxiv.org/abs/1706.02677",
    ),
    usage="The default decay for transformers and modern vision training, usually after a linear warmup of a "
    "few percent of the steps. torch's CosineAnnealingLR keeps going past T_max (back up again); Keras and Optax "
    "hold the final value. Optax's decay_steps includes the warmup, Keras's does not.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.CosineAnnealingLR", params={"lr": None, "periodic": True},
            notes="eta_min + (base_lr - eta_min)(1 + cos(pi t / T_max))/2, continuing past T_max.",
            names={"CosineAnnealingLR": {}}, kwargs={"T_max": "decay_steps", "eta_min": "end_value"},
        ),
        "keras": Convention(
            "keras", "keras.optimizers.schedules.CosineDecay",
            notes="initial_learning_rate is the warmup's start when warmup_target is given.",
            names={"CosineDecay": {}}, kwargs={"initial_learning_rate": "lr", "warmup_target": "peak_value"},
        ),
        "optax": Convention(
            "optax", "optax.warmup_cosine_decay_schedule", params={"decay_includes_warmup": True},
            notes="decay_steps includes the warmup; warmup_constant_schedule is the warmup then the peak.",
            names={
                "cosine_decay_schedule": {},
                "warmup_cosine_decay_schedule": {},
                "warmup_constant_schedule": {"alpha": 1.0, "decay_steps": 1, "decay_includes_warmup": False},
            },
            kwargs={"init_value": "lr"},
        ),
    },
)


# -- cosine with warm restarts -------------------------------------------------------------------------------------
def _restart_index(xp: Any, fraction: Any, t_mul: float) -> tuple[Any, Any]:
    """The cycle index and the position in that cycle (0..1) of ``fraction = t / T_0``."""
    if t_mul == 1.0:
        index = xp.floor(fraction)
        return index, fraction - index
    index = xp.floor(xp.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
    for _ in range(2):  # the log may land a hair below a whole number: settle on the exact cycle
        start = (1.0 - t_mul**index) / (1.0 - t_mul)
        index = xp.where(fraction >= start + t_mul**index, index + 1.0, index)
        index = xp.where(fraction < start, index - 1.0, index)
    start = (1.0 - t_mul**index) / (1.0 - t_mul)
    return index, (fraction - start) / t_mul**index


def cosine_restarts(
    step: Any, /, *, xp: Any, lr: Any, first_decay_steps: int, t_mul: float, m_mul: Any, alpha: Any,
    end_value: Any,
) -> Any:
    r"""Cosine decay restarted every cycle; cycle ``i`` lasts ``T_0 t_mul^i`` steps and peaks at ``lr m_mul^i``.

    .. math:: \eta_t = e + (\eta - e)\big((1-\alpha)\,\tfrac12 m^{i}(1 + \cos \pi \tau) + \alpha\big)

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> cosine_restarts(np.asarray([0.0, 1.0, 2.0]), xp=xp, lr=1.0, first_decay_steps=2, t_mul=1.0,
    ...                 m_mul=1.0, alpha=0.0, end_value=0.0).round(12).tolist()
    [1.0, 0.5, 1.0]
    """
    lr = _lr(lr)
    index, tau = _restart_index(xp, step / first_decay_steps, float(t_mul))
    c = (m_mul**index) * _half_cosine(xp, tau)
    return end_value + (lr - end_value) * ((1.0 - alpha) * c + alpha)


COSINE_RESTARTS = ScheduleSpec(
    name="cosine_restarts",
    aliases=("cosine_annealing_warm_restarts", "sgdr", "cosine_decay_restarts"),
    summary="Cosine annealing with warm restarts (SGDR): cycles growing by t_mul, peaks shrinking by m_mul.",
    fn=cosine_restarts,
    params=(
        Param("lr", 0.1, "peak of the first cycle (torch: None = each group's initial lr)", nullable=True),
        Param("first_decay_steps", 100, "length of the first cycle (torch T_0)", kind="int", low=1),
        Param("t_mul", 2.0, "growth factor of the cycle length (torch T_mult)", low=1.0, static=True),
        Param("m_mul", 1.0, "factor of the peak per cycle (Keras)", low=0.0),
        Param("alpha", 0.0, "floor as a fraction of lr (Keras)", low=0.0),
        Param("end_value", 0.0, "floor, absolute (torch eta_min)"),
    ),
    formula=r"\eta_t = e + (\eta - e)\big((1-\alpha)\,\tfrac12 m^{i}(1 + \cos \pi \tau_t) + \alpha\big),\ "
    r"t = T_0 \tfrac{1 - r^{i}}{1 - r} + \tau_t T_0 r^{i}",
    references=(
        "Loshchilov, I. & Hutter, F. (2017). SGDR: Stochastic Gradient Descent with Warm Restarts. ICLR. "
        "https://arxiv.org/abs/1608.03983",
    ),
    usage="Periodic restarts explore several minima (snapshot ensembles). The step counts updates: torch's "
    "scheduler must then be stepped once per batch (not per epoch with fractions).",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts", params={"lr": None, "t_mul": 1.0},
            notes="integer T_mult (1 by default), no peak decay, eta_min absolute.",
            names={"CosineAnnealingWarmRestarts": {}},
            kwargs={"T_0": "first_decay_steps", "T_mult": "t_mul", "eta_min": "end_value"},
        ),
        "keras": Convention(
            "keras", "keras.optimizers.schedules.CosineDecayRestarts",
            notes="t_mul 2, m_mul 1, alpha relative.",
            names={"CosineDecayRestarts": {}}, kwargs={"initial_learning_rate": "lr"},
        ),
    },
)


# -- one-cycle ---------------------------------------------------------------------------------------------------
def _interpolate(xp: Any, start: Any, end: Any, pct: Any, anneal: str) -> Any:
    if anneal == "cos":
        return end + (start - end) / 2.0 * (xp.cos(math.pi * pct) + 1.0)
    return (end - start) * pct + start


def _phase_ends(total: int, pct_start: float, pct_final: float | None, three: bool, style: str) -> list[float]:
    if style == "torch":
        first = float(pct_start * total) - 1
        middle = [float(2 * pct_start * total) - 2 if pct_final is None else float(pct_final * total) - 1]
        return [first, *(middle if three else []), total - 1.0]
    final = int(2 * pct_start * total) if pct_final is None else int(pct_final * total)
    return [float(int(pct_start * total)), *([float(final)] if three else []), float(total)]


def one_cycle(
    step: Any, /, *, xp: Any, lr: Any, total_steps: int, pct_start: float, pct_final: Any, div_factor: Any,
    final_div_factor: Any, anneal_strategy: str, three_phase: bool, phase_ends: str, cycle_momentum: bool,
    base_momentum: Any, max_momentum: Any, quantity: str,
) -> Any:
    r"""The one-cycle policy: up from ``lr/div_factor`` to ``lr``, then down to ``lr/(div_factor*final_div_factor)``.

    ``quantity="momentum"`` gives the momentum that torch's OneCycleLR cycles the other way.

    .. math:: \eta_t = \text{anneal}(v_k, v_{k+1}, (t - s_k)/(s_{k+1} - s_k))\ \text{in phase } k

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> v = one_cycle(np.asarray([0.0, 2.0]), xp=xp, lr=1.0, total_steps=10, pct_start=0.3, pct_final=None,
    ...               div_factor=4.0, final_div_factor=1.0, anneal_strategy="linear", three_phase=False,
    ...               phase_ends="torch", cycle_momentum=False, base_momentum=0.85, max_momentum=0.95,
    ...               quantity="lr")
    >>> v.tolist()
    [0.25, 1.0]
    """
    ends = _phase_ends(total_steps, pct_start, pct_final, three_phase, phase_ends)
    if quantity == "momentum":
        low, high = base_momentum, max_momentum
        values = [high, low, high, high] if three_phase else [high, low, high]
    else:
        start = _lr(lr) / div_factor
        values = [start, lr, start, start / final_div_factor] if three_phase else [start, lr, start / final_div_factor]
    starts = [0.0, *ends[:-1]]
    if phase_ends == "torch":  # the last phase extends past its end (torch raises past total_steps)
        k = len(ends) - 1
        out = _interpolate(xp, values[k], values[k + 1], (step - starts[k]) / (ends[k] - starts[k]), anneal_strategy)
        last = len(ends) - 2
        below = [(e, e - s) for s, e in zip(starts, ends)]
    else:  # Optax: hold the final value from the last boundary on; intervals of at least 1 step
        out = _full(xp, step, values[-1])
        last = len(ends) - 1
        below = [(e, max(e - s, 1.0)) for s, e in zip(starts, ends)]
    for k in range(last, -1, -1):
        end, size = below[k]
        piece = _interpolate(xp, values[k], values[k + 1], (step - starts[k]) / size, anneal_strategy)
        out = xp.where((step <= end) if phase_ends == "torch" else (step < end), piece, out)
    return out


ONE_CYCLE = ScheduleSpec(
    name="one_cycle",
    aliases=("one_cycle_lr", "onecycle", "cosine_onecycle", "linear_onecycle"),
    summary="The one-cycle policy: warm up to the maximum lr, then anneal far below the start (super-convergence).",
    fn=one_cycle,
    params=(
        Param("lr", 0.1, "the maximum value (torch max_lr, Optax peak_value)", low=0.0),
        Param("total_steps", 1000, "number of steps in the cycle (Optax transition_steps)", kind="int", low=1),
        Param("pct_start", 0.3, "fraction of the steps spent increasing", low=0.0, high=1.0),
        Param("pct_final", None, "three phases: fraction where the decrease back to the start ends "
              "(None: 2*pct_start, torch)", low=0.0, high=1.0, nullable=True),
        Param("div_factor", 25.0, "start value = lr / div_factor", low=0.0, low_inclusive=False),
        Param("final_div_factor", 1e4, "final value = start / final_div_factor", low=0.0, low_inclusive=False),
        Param("anneal_strategy", "cos", "cosine or linear interpolation", kind="choice", choices=("cos", "linear"),
              static=True),
        Param("three_phase", False, "up, back down to the start, then down to the final value", kind="bool",
              static=True),
        Param("phase_ends", "torch", "'torch': phases end at pct*T - 1 and T - 1, the last extends; 'optax': "
              "at int(pct*T) and T, then constant", kind="choice", choices=("torch", "optax"), static=True),
        Param("cycle_momentum", False, "also cycle the optimizer's momentum / beta_1 inversely (torch)", kind="bool",
              static=True),
        Param("base_momentum", 0.85, "lowest momentum, at the peak lr", low=0.0, high=1.0),
        Param("max_momentum", 0.95, "highest momentum, at the ends", low=0.0, high=1.0),
        Param("quantity", "lr", "which value fn returns: the lr or the cycled momentum", kind="choice",
              choices=("lr", "momentum"), static=True),
    ),
    formula=r"\eta_t = \text{anneal}\big(v_k, v_{k+1}, \tfrac{t - s_k}{s_{k+1} - s_k}\big),\ "
    r"v = (\tfrac{\eta}{d}, \eta, \tfrac{\eta}{d f}),\ \text{anneal}_{\cos}(a,b,p) = b + \tfrac{a-b}{2}(1+\cos\pi p)",
    references=(
        "Smith, L. N. & Topin, N. (2019). Super-Convergence: Very Fast Training of Neural Networks Using Large "
        "Learning Rates. https://arxiv.org/abs/1708.07120",
        "Smith, L. N. (2018). A disciplined approach to neural network hyper-parameters. "
        "https://arxiv.org/abs/1803.09820",
    ),
    usage="Fast training to good accuracy with a large peak lr found by an lr range test. Step the torch scheduler "
    "once per batch; total_steps must cover the whole run. torch's OneCycleLR also cycles momentum.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.OneCycleLR", params={"cycle_momentum": True},
            notes="phase ends at pct_start*T - 1 and T - 1; cycles momentum (or betas[0]) inversely by default.",
            names={"OneCycleLR": {}}, kwargs={"max_lr": "lr"},
        ),
        "optax": Convention(
            "optax", "optax.cosine_onecycle_schedule", params={"phase_ends": "optax"},
            notes="boundaries int(pct*T) and T; linear_onecycle_schedule has three phases with pct_final 0.85.",
            names={
                "cosine_onecycle_schedule": {"anneal_strategy": "cos"},
                "linear_onecycle_schedule": {"anneal_strategy": "linear", "three_phase": True, "pct_final": 0.85},
            },
            kwargs={"peak_value": "lr", "transition_steps": "total_steps"},
        ),
    },
)


# -- cyclical learning rates ---------------------------------------------------------------------------------------
def cyclic(
    step: Any, /, *, xp: Any, lr: Any, max_lr: Any, step_size_up: int, step_size_down: Any, mode: str,
    gamma: Any, cycle_momentum: bool, base_momentum: Any, max_momentum: Any, quantity: str,
) -> Any:
    r"""A triangle between ``lr`` and ``max_lr``: up over ``step_size_up`` steps, down over ``step_size_down``.

    ``triangular2`` halves the amplitude every cycle, ``exp_range`` scales it by ``gamma**t``.
    ``quantity="momentum"`` gives the momentum torch's CyclicLR cycles the other way.

    .. math:: \eta_t = \eta + (\hat\eta - \eta)\,h(x_t)\,s_t,\quad
        c = \lfloor 1 + t/L \rfloor,\ x = 1 + t/L - c,\ h = x/r\ (x \le r),\ (x-1)/(r-1)\ \text{else}

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> cyclic(np.arange(5.0), xp=xp, lr=0.0, max_lr=1.0, step_size_up=2, step_size_down=None, mode="triangular",
    ...        gamma=1.0, cycle_momentum=False, base_momentum=0.8, max_momentum=0.9, quantity="lr").tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    up = float(step_size_up)
    total = up + (up if step_size_down is None else float(step_size_down))
    ratio = up / total
    cycle = xp.floor(1.0 + step / total)
    x = 1.0 + step / total - cycle
    height = xp.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
    if mode == "triangular2":
        height = height / 2.0 ** (cycle - 1.0)
    elif mode == "exp_range":
        height = height * _full(xp, step, gamma) ** step
    if quantity == "momentum":
        return max_momentum - (max_momentum - base_momentum) * height
    return _lr(lr) + (max_lr - lr) * height


CYCLIC = ScheduleSpec(
    name="cyclic",
    aliases=("cyclic_lr", "cyclical_lr", "triangular"),
    summary="Cyclical learning rates: a triangle wave between lr and max_lr, optionally damped per cycle.",
    fn=cyclic,
    params=(
        Param("lr", 0.001, "the lower bound of the cycle (torch base_lr)", low=0.0),
        Param("max_lr", 0.006, "the upper bound of the cycle", low=0.0),
        Param("step_size_up", 2000, "steps from lr up to max_lr", kind="int", low=1, static=True),
        Param("step_size_down", None, "steps back down (None: step_size_up)", kind="int", low=1, nullable=True,
              static=True),
        Param("mode", "triangular", "triangular: constant amplitude; triangular2: halved every cycle; exp_range: "
              "times gamma**t", kind="choice", choices=("triangular", "triangular2", "exp_range"), static=True),
        Param("gamma", 1.0, "exp_range's per-step factor of the amplitude", low=0.0),
        Param("cycle_momentum", False, "also cycle the optimizer's momentum / beta_1 inversely (torch)", kind="bool",
              static=True),
        Param("base_momentum", 0.8, "lowest momentum, at max_lr", low=0.0, high=1.0),
        Param("max_momentum", 0.9, "highest momentum, at lr", low=0.0, high=1.0),
        Param("quantity", "lr", "which value fn returns: the lr or the cycled momentum", kind="choice",
              choices=("lr", "momentum"), static=True),
    ),
    formula=r"\eta_t = \eta + (\hat\eta - \eta)\,h_t\,s_t,\ h_t = \text{triangle}(t; L_{up}, L_{down}),\ "
    r"s_t \in \{1,\ 2^{1-c},\ \gamma^t\}",
    references=(
        "Smith, L. N. (2017). Cyclical Learning Rates for Training Neural Networks. WACV. "
        "https://arxiv.org/abs/1506.01186",
    ),
    usage="Cycle between a safe and an aggressive lr found by an lr range test; step once per batch with "
    "step_size_up of 2-10 epochs' worth of batches. torch's CyclicLR also cycles momentum (0.9 down to 0.8) by "
    "default, and fails on optimizers without momentum unless cycle_momentum=False.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.CyclicLR", params={"cycle_momentum": True},
            notes="base_lr and max_lr are absolute (not factors of the group's lr); momentum cycles from "
            "max_momentum down to base_momentum and back.",
            names={"CyclicLR": {}}, kwargs={"base_lr": "lr"},
        ),
    },
)


# -- composition: join (torch SequentialLR, Optax join_schedules / sgdr_schedule) and product (ChainedScheduler) ----
def _child(child: Any, lr: Any) -> Any:
    """A child schedule as ``f(xp, step)``: lossbridge schedules (bound or materialized) or native callables.

    A child whose ``lr`` is None takes ``lr`` (the torch rule: each group's initial lr). A mapping is the
    keyword arguments of Optax's ``warmup_cosine_decay_schedule`` (as ``optax.sgdr_schedule`` takes them).
    """
    if isinstance(child, Mapping):
        from lossbridge.bound import bind, translate_kwargs

        child = bind(COSINE_DECAY, convention="optax", params=translate_kwargs(COSINE_DECAY, "optax", child))
    bound = getattr(child, "bound", child)
    params = getattr(bound, "params", None)
    if params is None:  # a framework's own schedule: called on that framework's step
        return lambda xp, step: child(step)
    if params.get("lr", 0.0) is None and lr is not None:
        bound = bound.with_params(lr=lr)
    return bound


def _length(child: Any) -> int:
    """A child's own length: ``decay_steps`` (sgdr cycles), for boundaries left to the children."""
    params = child if isinstance(child, Mapping) else getattr(getattr(child, "bound", child), "params", {})
    if "decay_steps" not in params:
        raise ParameterError("join_schedules: boundaries=None needs children with decay_steps (sgdr cycles)")
    return int(params["decay_steps"])


def join_schedules(step: Any, /, *, xp: Any, lr: Any, schedules: Any, boundaries: Any) -> Any:
    r"""Schedule ``k`` from boundary ``b_k`` on, restarted at its own step 0 there.

    .. math:: \eta_t = s_k(t - b_k),\quad b_k \le t < b_{k+1},\ b_0 = 0

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> first = lambda t: 1.0 + t  # a plain step -> value callable
    >>> join_schedules(np.arange(4.0), xp=xp, lr=None, schedules=[first, first], boundaries=[2]).tolist()
    [1.0, 2.0, 1.0, 2.0]
    """
    if not schedules:
        raise ParameterError("join_schedules: give at least one schedule")
    if boundaries is None:
        ends = [0]
        for child in schedules[:-1]:
            ends.append(ends[-1] + _length(child))
        bounds = [float(b) for b in ends[1:]]
    else:
        bounds = [float(b) for b in boundaries]
    if len(bounds) != len(schedules) - 1:
        raise ParameterError(
            f"join_schedules: expected len(schedules) - 1 = {len(schedules) - 1} boundaries, got {len(bounds)}"
        )
    out = _child(schedules[0], lr)(xp, step)
    for b, child in zip(bounds, schedules[1:]):
        out = xp.where(step < b, out, _full(xp, step, 0.0) + _child(child, lr)(xp, step - b))
    return out


JOIN_SCHEDULES = ScheduleSpec(
    name="join_schedules",
    aliases=("sequential_schedules", "sequential_lr", "join"),
    summary="Schedules one after another: each runs from its boundary on, counting its steps from 0 there.",
    fn=join_schedules,
    params=(
        Param("lr", None, "filled into children whose lr is None (torch: each group's initial lr)", nullable=True),
        Param("schedules", (), "the children: lossbridge schedules (any backend's, or bound), a framework's own "
              "callables, or dicts of warmup_cosine_decay_schedule kwargs (sgdr)", kind="array", static=True),
        Param("boundaries", None, "len(schedules) - 1 increasing steps (torch milestones); None: the running sum "
              "of the children's decay_steps (Optax sgdr_schedule)", kind="array", nullable=True, static=True),
    ),
    formula=r"\eta_t = s_k(t - b_k)\ \text{for}\ b_k \le t < b_{k+1},\ b_0 = 0",
    references=(
        "PyTorch SequentialLR, https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.SequentialLR.html",
        "Optax join_schedules / sgdr_schedule, https://optax.readthedocs.io/en/latest/api/optimizer_schedules.html",
        "Loshchilov, I. & Hutter, F. (2017). SGDR: Stochastic Gradient Descent with Warm Restarts. ICLR. "
        "https://arxiv.org/abs/1608.03983",
    ),
    usage="Warmup then decay, or restarts with cycles of different shapes. The children must be lossbridge "
    "schedules for a result that runs on every backend; a framework's own schedule works on that framework only.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.SequentialLR", params={"lr": None},
            notes="SequentialLR(optimizer, schedulers, milestones): lossbridge or torch schedulers on the same "
            "optimizer; the next one restarts from its step 0 at each milestone.",
            names={"SequentialLR": {}}, kwargs={"schedulers": "schedules", "milestones": "boundaries"},
        ),
        "optax": Convention(
            "optax", "optax.join_schedules",
            notes="join_schedules(schedules, boundaries); sgdr_schedule(cosine_kwargs) joins warmup cosine "
            "cycles at the running sum of their decay_steps.",
            names={"join_schedules": {}, "sgdr_schedule": {}}, kwargs={"cosine_kwargs": "schedules"},
        ),
    },
)


def chained_schedules(step: Any, /, *, xp: Any, lr: Any, schedules: Any) -> Any:
    r"""``lr`` times the product of each child's factor (its value over its own lr; lr None: a factor of 1).

    .. math:: \eta_t = \eta \prod_i s_i(t) / \eta_i

    >>> import numpy as np, array_api_compat.numpy as xp
    >>> half = lambda t: 0.5 ** t
    >>> chained_schedules(np.arange(3.0), xp=xp, lr=2.0, schedules=[half, half]).tolist()
    [2.0, 0.5, 0.125]
    """
    out = _full(xp, step, _lr(lr))
    for child in schedules:
        own = getattr(getattr(child, "bound", child), "params", {}).get("lr", 1.0)
        out = out * (_child(child, 1.0)(xp, step) / (1.0 if own is None else own))
    return out


CHAINED_SCHEDULES = ScheduleSpec(
    name="chained_schedules",
    aliases=("chained_scheduler", "chain_schedules", "product_schedule"),
    summary="Several schedules at once: the base value times each schedule's factor (torch ChainedScheduler).",
    fn=chained_schedules,
    params=(
        Param("lr", 0.1, "the base value the factors multiply (torch: None = each group's initial lr)",
              nullable=True),
        Param("schedules", (), "the children: lossbridge schedules (any backend's, or bound) or a "
              "framework's own step -> value callables", kind="array", static=True),
    ),
    formula=r"\eta_t = \eta \prod_i s_i(t) / \eta_i",
    references=(
        "PyTorch ChainedScheduler, "
        "https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ChainedScheduler.html",
    ),
    usage="A warmup factor (ConstantLR, LinearLR) on top of a decay (ExponentialLR, StepLR). Equals torch's "
    "ChainedScheduler for its multiplicative schedulers (ConstantLR, LinearLR, StepLR, MultiStepLR, ExponentialLR, "
    "PolynomialLR); torch chains CosineAnnealingLR through its recursive form, which is not a product of factors.",
    conventions={
        "torch": Convention(
            "torch", "torch.optim.lr_scheduler.ChainedScheduler", params={"lr": None},
            notes="ChainedScheduler(schedulers): every scheduler steps each time, their factors multiply.",
            names={"ChainedScheduler": {}}, kwargs={"schedulers": "schedules"},
        ),
    },
)
