"""Learning-rate-free optimizers whose step size needs a sum over ALL parameters: Prodigy, D-Adapt AdamW.

Both estimate a distance-to-solution ``d`` from inner products summed over every parameter tensor,
so they use the spec model's global state (``OptimizerSpec.global_slots``): per-tensor ``partials``
summed by the backend, ``combine`` into the new ``d``, then the per-tensor ``update``.
Real parameters only (the inner products are real dot products).
"""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._adaptive import BETA_1, BETA_2, EPS
from lossbridge.spec._first_order import lr_param
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = ["DADAPT_ADAMW", "PRODIGY", "SPECS"]

_PRODIGY_REF = (
    "Mishchenko, K. & Defazio, A. (2024). Prodigy: An Expeditiously Adaptive Parameter-Free Learner. "
    "ICML. https://arxiv.org/abs/2306.06101"
)
_DADAPT_REF = (
    "Defazio, A. & Mishchenko, K. (2023). Learning-Rate-Free Learning by D-Adaptation. ICML. "
    "https://arxiv.org/abs/2301.07733"
)

_LR = lr_param(1.0, "learning-rate multiplier of the estimated d (a schedule with 1.0 as its peak)")
_D0 = Param("d0", 1e-6, "initial (under-)estimate of d, the distance to the solution", low=0.0, low_inclusive=False)
_D_COEF = Param("d_coef", 1.0, "the estimate of d is multiplied by this", low=0.0)
_BETA_3 = Param(
    "beta_3", None, "decay of the d-estimate's sums (None: sqrt(beta_2))", low=0.0, high=1.0, nullable=True
)
_WEIGHT_DECAY = Param("weight_decay", 0.0, "decoupled (AdamW-style) weight decay, scaled by the step size", low=0.0)
_SAFEGUARD = Param(
    "safeguard_warmup",
    False,
    "leave lr out of the d-estimate's denominator (for a warm-up schedule)",
    kind="bool",
    static=True,
)


def _bias_factor(step: Any, beta_1: Any, beta_2: Any, *, xp: Any) -> Any:
    r""":math:`\sqrt{1-\beta_2^t} / (1-\beta_1^t)`."""
    return xp.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)


# ---------------------------------------------------------------------------------------------- Prodigy


def _beta_3(beta_2: Any, beta_3: Any) -> Any:
    return beta_2**0.5 if beta_3 is None else beta_3


def prodigy_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """Moments ``m``, ``v``, the weighted gradient sum ``s`` and the initial point ``x0``."""
    zeros = xp.zeros_like(param)
    # a copy: a backend that updates parameters in place must not move x0 with them
    return {"m": zeros, "v": zeros, "s": zeros, "x0": xp.asarray(param, copy=True)}


def prodigy_init_global(*, dtype: Any, xp: Any, d0: Any, **hyper: Any) -> dict[str, Any]:
    """``d`` starts at ``d0``, the weighted numerator at 0."""
    return {"d": xp.asarray(d0, dtype=dtype), "numerator": xp.zeros((), dtype=dtype)}


def _prodigy_dlr(d: Any, step: Any, *, lr: Any, beta_1: Any, beta_2: Any, xp: Any) -> Any:
    return d * lr * _bias_factor(step, beta_1, beta_2, xp=xp)


def _prodigy_s(grad: Any, s: Any, d: Any, dlr: Any, *, beta_2: Any, beta_3: Any, d0: Any, safeguard: bool) -> Any:
    r""":math:`s \leftarrow \beta_3 s + (d\,\eta_t \text{ or } d)\, d g / d_0`."""
    return _beta_3(beta_2, beta_3) * s + (d if safeguard else dlr) * (d * grad) / d0


def prodigy_partials(
    param: Any, grad: Any, state: dict[str, Any], glob: dict[str, Any], /, *, step: Any, xp: Any,
    lr: Any, beta_1: Any, beta_2: Any, beta_3: Any, d0: Any, safeguard_warmup: bool = False, **hyper: Any,
) -> dict[str, Any]:
    r"""This tensor's :math:`\langle g, x_0 - x\rangle` and :math:`\|s_{t}\|_1` (the new ``s``)."""
    d = glob["d"]
    dlr = _prodigy_dlr(d, step, lr=lr, beta_1=beta_1, beta_2=beta_2, xp=xp)
    s = _prodigy_s(grad, state["s"], d, dlr, beta_2=beta_2, beta_3=beta_3, d0=d0, safeguard=safeguard_warmup)
    return {"num": xp.sum(grad * (state["x0"] - param)), "den": xp.sum(xp.abs(s))}


def prodigy_combine(
    sums: dict[str, Any], glob: dict[str, Any], /, *, step: Any, xp: Any,
    lr: Any, beta_1: Any, beta_2: Any, beta_3: Any, d0: Any, d_coef: Any, **hyper: Any,
) -> dict[str, Any]:
    r""":math:`r \leftarrow \beta_3 r + (d/d_0)\,d\eta_t \sum\langle g, x_0-x\rangle`,
    :math:`d \leftarrow \max(d,\ c\, r / \sum\|s\|_1)`."""
    d = glob["d"]
    dlr = _prodigy_dlr(d, step, lr=lr, beta_1=beta_1, beta_2=beta_2, xp=xp)
    numerator = _beta_3(beta_2, beta_3) * glob["numerator"] + (d / d0) * dlr * sums["num"]
    return {"d": xp.maximum(d, d_coef * numerator / sums["den"]), "numerator": numerator}


def prodigy_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, glob: dict[str, Any],
    new_glob: dict[str, Any], lr: Any, beta_1: Any, beta_2: Any, beta_3: Any, eps: Any, d0: Any,
    weight_decay: Any, safeguard_warmup: bool = False, **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""Adam on :math:`d g` with step :math:`d\eta_t` and ``eps`` scaled by the new ``d``.

    .. math:: x \leftarrow x - \lambda d\eta_t x - d\eta_t\, m / (\sqrt v + d' \epsilon)

    >>> import numpy as np
    >>> p, g = np.array([1.0]), np.array([0.5])
    >>> st = prodigy_init(p, xp=np)
    >>> glob = prodigy_init_global(dtype=np.float64, xp=np, d0=1e-6)
    >>> delta, _ = prodigy_update(p, g, st, step=np.float64(1), xp=np, glob=glob, new_glob=glob, lr=1.0,
    ...                           beta_1=0.9, beta_2=0.999, beta_3=None, eps=1e-8, d0=1e-6, weight_decay=0.0)
    >>> bool(delta[0] < 0)
    True
    """
    d = glob["d"]
    dlr = _prodigy_dlr(d, step, lr=lr, beta_1=beta_1, beta_2=beta_2, xp=xp)
    dg = d * grad
    m = beta_1 * state["m"] + (1.0 - beta_1) * dg
    v = beta_2 * state["v"] + (1.0 - beta_2) * dg * dg
    s = _prodigy_s(grad, state["s"], d, dlr, beta_2=beta_2, beta_3=beta_3, d0=d0, safeguard=safeguard_warmup)
    delta = -dlr * m / (xp.sqrt(v) + new_glob["d"] * eps)
    if not (isinstance(weight_decay, (int, float)) and weight_decay == 0):
        delta = delta - weight_decay * dlr * param
    return delta, {"m": m, "v": v, "s": s, "x0": state["x0"]}


PRODIGY = OptimizerSpec(
    name="prodigy",
    summary="Prodigy: learning-rate-free AdamW that estimates the distance to the solution d on the fly.",
    init=prodigy_init,
    update=prodigy_update,
    slots=("m", "v", "s", "x0"),
    global_slots=("d", "numerator"),
    init_global=prodigy_init_global,
    partials=prodigy_partials,
    combine=prodigy_combine,
    params=(_LR, BETA_1, BETA_2, _BETA_3, EPS, _D0, _D_COEF, _WEIGHT_DECAY, _SAFEGUARD),
    formula=(
        r"\eta_t = d\,\mathrm{lr}\sqrt{1-\beta_2^t}/(1-\beta_1^t),\ m \leftarrow \beta_1 m + (1-\beta_1) d g,\ "
        r"v \leftarrow \beta_2 v + (1-\beta_2) d^2 g^2,\ s \leftarrow \beta_3 s + \eta_t d g / d_0,\ "
        r"r \leftarrow \beta_3 r + \tfrac{d}{d_0}\eta_t \sum\langle g, x_0 - x\rangle,\ "
        r"d' = \max(d, c\,r/\sum\|s\|_1),\ x \leftarrow x - \lambda\eta_t x - \eta_t m/(\sqrt v + d'\epsilon)"
    ),
    references=(_PRODIGY_REF, _DADAPT_REF),
    usage=(
        "When you do not want to tune the learning rate of Adam(W): keep lr=1 (or a schedule peaking at 1, "
        "with warm-up) and let d grow from d0. d couples all parameters (a sum over every tensor), so the "
        "step of one tensor depends on the others; the optimizer must see the whole model at once. "
        "Stores x0 (a copy of the initial parameters): 4 slots per parameter."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.contrib.prodigy",
            state={"m": "exp_avg", "v": "exp_avg_sq", "s": "grad_sum", "x0": "params0", "d": "estim_lr",
                   "numerator": "numerator_weighted"},
            notes="beta3=None is sqrt(b2); estim_lr0 and estim_lr_coef are d0 and d_coef; the state holds "
            "d (estim_lr) and the weighted numerator in the parameters' lowest dtype.",
            names={"prodigy": {}},
            kwargs={"betas": ("beta_1", "beta_2"), "beta3": "beta_3", "estim_lr0": "d0",
                    "estim_lr_coef": "d_coef"},
        ),
    },
)


# ------------------------------------------------------------------------------------------ D-Adapt AdamW


def dadapt_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """Moments ``m`` (of the step-scaled gradient), ``v`` and the weighted gradient sum ``s``."""
    zeros = xp.zeros_like(param)
    return {"m": zeros, "v": zeros, "s": zeros}


def dadapt_init_global(*, dtype: Any, xp: Any, d0: Any, **hyper: Any) -> dict[str, Any]:
    """``d`` starts at ``d0``, the weighted numerator at 0."""
    return {"d": xp.asarray(d0, dtype=dtype), "numerator": xp.zeros((), dtype=dtype)}


def dadapt_partials(
    param: Any, grad: Any, state: dict[str, Any], glob: dict[str, Any], /, *, step: Any, xp: Any,
    lr: Any, beta_1: Any, beta_2: Any, eps: Any, **hyper: Any,
) -> dict[str, Any]:
    r"""This tensor's :math:`\langle g, s/(\sqrt v+\epsilon)\rangle` (old ``s``, ``v``) and
    :math:`\|\sqrt{\beta_2} s + (1-\sqrt{\beta_2}) d\eta_t g\|_1` (the new ``s``)."""
    sb2 = beta_2**0.5
    dlr = glob["d"] * lr * _bias_factor(step, beta_1, beta_2, xp=xp)
    s = state["s"]
    return {
        "num": xp.sum(grad * (s / (xp.sqrt(state["v"]) + eps))),
        "den": xp.sum(xp.abs(sb2 * s + (1.0 - sb2) * dlr * grad)),
    }


def dadapt_combine(
    sums: dict[str, Any], glob: dict[str, Any], /, *, step: Any, xp: Any,
    lr: Any, beta_1: Any, beta_2: Any, **hyper: Any,
) -> dict[str, Any]:
    r""":math:`r \leftarrow \sqrt{\beta_2} r + (1-\sqrt{\beta_2}) d\eta_t \sum\langle\cdot\rangle`,
    :math:`d \leftarrow \max(d, r / ((1-\sqrt{\beta_2})\sum\|s\|_1))`."""
    sb2 = beta_2**0.5
    d = glob["d"]
    dlr = d * lr * _bias_factor(step, beta_1, beta_2, xp=xp)
    numerator = sb2 * glob["numerator"] + (1.0 - sb2) * dlr * sums["num"]
    return {"d": xp.maximum(d, numerator / ((1.0 - sb2) * sums["den"])), "numerator": numerator}


def dadapt_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, glob: dict[str, Any],
    new_glob: dict[str, Any], lr: Any, beta_1: Any, beta_2: Any, eps: Any, weight_decay: Any, **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""AdamW whose first moment averages :math:`d\eta_t g` (the step size inside ``m``; the new ``d``
    is used from the next step on).

    .. math:: x \leftarrow x - \lambda d\eta_t x - m / (\sqrt v + \epsilon)

    >>> import numpy as np
    >>> p, g = np.array([1.0]), np.array([0.5])
    >>> glob = dadapt_init_global(dtype=np.float64, xp=np, d0=1e-6)
    >>> delta, st = dadapt_update(p, g, dadapt_init(p, xp=np), step=np.float64(1), xp=np, glob=glob,
    ...                           new_glob=glob, lr=1.0, beta_1=0.9, beta_2=0.999, eps=1e-8, weight_decay=0.0)
    >>> bool(delta[0] < 0)
    True
    """
    sb2 = beta_2**0.5
    dlr = glob["d"] * lr * _bias_factor(step, beta_1, beta_2, xp=xp)
    m = beta_1 * state["m"] + (1.0 - beta_1) * dlr * grad
    v = beta_2 * state["v"] + (1.0 - beta_2) * grad * grad
    s = sb2 * state["s"] + (1.0 - sb2) * dlr * grad
    delta = -m / (xp.sqrt(v) + eps)
    if not (isinstance(weight_decay, (int, float)) and weight_decay == 0):
        delta = delta - weight_decay * dlr * param
    return delta, {"m": m, "v": v, "s": s}


DADAPT_ADAMW = OptimizerSpec(
    name="dadapt_adamw",
    aliases=("d_adapt_adamw", "dadaptation_adamw"),
    summary="D-Adaptation AdamW: learning-rate-free AdamW estimating d from a global inner-product sum.",
    init=dadapt_init,
    update=dadapt_update,
    slots=("m", "v", "s"),
    global_slots=("d", "numerator"),
    init_global=dadapt_init_global,
    partials=dadapt_partials,
    combine=dadapt_combine,
    params=(_LR, BETA_1, BETA_2, EPS, _D0, _WEIGHT_DECAY),
    formula=(
        r"\eta_t = d\,\mathrm{lr}\sqrt{1-\beta_2^t}/(1-\beta_1^t),\ "
        r"r \leftarrow \sqrt{\beta_2} r + (1-\sqrt{\beta_2})\eta_t \sum\langle g, s/(\sqrt v+\epsilon)\rangle,\ "
        r"m \leftarrow \beta_1 m + (1-\beta_1)\eta_t g,\ v \leftarrow \beta_2 v + (1-\beta_2) g^2,\ "
        r"s \leftarrow \sqrt{\beta_2} s + (1-\sqrt{\beta_2})\eta_t g,\ "
        r"d' = \max(d, r/((1-\sqrt{\beta_2})\sum\|s\|_1)),\ x \leftarrow x - \lambda\eta_t x - m/(\sqrt v+\epsilon)"
    ),
    references=(_DADAPT_REF,),
    usage=(
        "Learning-rate-free AdamW: keep lr=1 (or a schedule peaking at 1) and let d grow from d0. "
        "Prodigy adapts d faster; prefer it unless reproducing D-Adaptation results. d couples all "
        "parameters (a sum over every tensor), so the optimizer must see the whole model at once."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.contrib.dadapt_adamw",
            state={"m": "exp_avg", "v": "exp_avg_sq", "s": "grad_sum", "d": "estim_lr",
                   "numerator": "numerator_weighted"},
            notes="estim_lr0 is d0; the state holds d (estim_lr) and the weighted numerator in the "
            "parameters' lowest dtype.",
            names={"dadapt_adamw": {}},
            kwargs={"betas": ("beta_1", "beta_2"), "estim_lr0": "d0"},
        ),
    },
)

SPECS = (PRODIGY, DADAPT_ADAMW)
