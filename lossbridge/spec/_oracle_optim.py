"""Optimizers whose step needs more than the gradient: Polyak SGD, Sophia, noisy SGD.

Each declares ``OptimizerSpec.needs`` (see the spec model): ``polyak_sgd`` the objective's value
(and a squared gradient norm over ALL tensors, through the global-state path), ``sophia`` a
Hutchinson estimate of the Hessian diagonal, ``noisy_sgd`` a standard-normal sample. The adapter
supplies them (autodiff and random generators are not in the Array API); the math here only
consumes them.
"""

from __future__ import annotations

from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._first_order import is_zero, lr_param
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = ["NOISY_SGD", "POLYAK_SGD", "SOPHIA", "SPECS"]

#: float64's machine epsilon: Optax's Polyak step is 0 where ``||u||^2 + eps`` is at most this
#: (``jnp.finfo(float).eps``, the float64 value whatever the parameters' dtype).
_FLOAT_EPS = 2.220446049250313e-16

_KEY = Param(
    "key",
    0,
    "seed of the random stream the adapter draws from (None: 0, Optax's default; JAX: Optax's key handling; "
    "other backends: their own generator, same distribution, not the same numbers)",
    kind="int",
    low=0,
    static=True,
    nullable=True,
)

# ------------------------------------------------------------------------------------------ Polyak SGD

_POLYAK_REFS = (
    "Loizou, N., Vaswani, S., Laradji, I. & Lacoste-Julien, S. (2021). Stochastic Polyak Step-size for SGD: "
    "An Adaptive Learning Rate for Fast Convergence. AISTATS. https://arxiv.org/abs/2002.10542",
    "Garrigos, G., Gower, R. M. & Schaipp, F. (2023). Function Value Learning: Adaptive Learning Rates Based "
    "on the Polyak Stepsize and Function Splitting in ERM. https://arxiv.org/abs/2307.14528",
)


def polyak_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """No per-tensor state."""
    return {}


def polyak_init_global(*, dtype: Any, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The last Polyak step size (0 before the first step; kept for inspection, never read)."""
    return {"step_size": xp.zeros((), dtype=dtype)}


def polyak_partials(
    param: Any, grad: Any, state: dict[str, Any], glob: dict[str, Any], /, *, step: Any, xp: Any, lr: Any,
    **hyper: Any,
) -> dict[str, Any]:
    r"""This tensor's :math:`\|u\|^2` of the scaled direction :math:`u = -\mathrm{lr}\,g`."""
    u = -lr * grad
    return {"sq_norm": xp.sum(u * u)}


def polyak_combine(
    sums: dict[str, Any], glob: dict[str, Any], /, *, step: Any, xp: Any, value: Any, max_learning_rate: Any,
    f_min: Any, eps: Any, variant: str, **hyper: Any,
) -> dict[str, Any]:
    r""":math:`\gamma = \min((f - f^\star)/(\|u\|^2 + \epsilon), \gamma_{\max})`, 0 where the denominator
    is at most float64's machine epsilon; ``sps+`` uses :math:`(f - f^\star)_+`."""
    sq = sums["sq_norm"]
    gap = xp.asarray(value, dtype=sq.dtype) - f_min
    if variant == "sps+":
        gap = xp.maximum(gap, xp.zeros_like(gap))
    denom = sq + eps
    degenerate = denom <= _FLOAT_EPS
    safe = xp.where(degenerate, xp.ones_like(denom), denom)
    ratio = xp.minimum(gap / safe, xp.asarray(max_learning_rate, dtype=sq.dtype))
    return {"step_size": xp.where(degenerate, xp.zeros_like(ratio), ratio)}


def polyak_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, glob: dict[str, Any],
    new_glob: dict[str, Any], lr: Any, **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""The scaled direction times the Polyak step size of this step.

    .. math:: x \leftarrow x - \gamma\,\mathrm{lr}\,g,\quad
        \gamma = \min\Big(\frac{f(x) - f^\star}{\mathrm{lr}^2\|g\|^2 + \epsilon}, \gamma_{\max}\Big)

    >>> import numpy as np
    >>> p, g = np.array([1.0, 2.0]), np.array([2.0, 4.0])   # f = |x|^2 = 5, grad 2x
    >>> hyper = dict(lr=1.0, max_learning_rate=1.0, f_min=0.0, eps=0.0, variant="sps")
    >>> sums = polyak_partials(p, g, {}, {}, step=np.float64(1), xp=np, **hyper)
    >>> glob = polyak_combine(sums, {}, step=np.float64(1), xp=np, value=5.0, **hyper)
    >>> delta, _ = polyak_update(p, g, {}, step=np.float64(1), xp=np, glob={}, new_glob=glob, **hyper)
    >>> (p + delta).tolist()
    [0.5, 1.0]
    """
    return new_glob["step_size"] * (-lr * grad), {}


POLYAK_SGD = OptimizerSpec(
    name="polyak_sgd",
    aliases=("sps", "stochastic_polyak_sgd"),
    summary="SGD with the (stochastic) Polyak step size (f - f*)/||g||^2, capped; needs the loss value.",
    init=polyak_init,
    update=polyak_update,
    global_slots=("step_size",),
    init_global=polyak_init_global,
    partials=polyak_partials,
    combine=polyak_combine,
    needs=("value",),
    params=(
        lr_param(1.0, "scaling of the direction (Optax's scaling): the step is gamma * lr * g, with gamma "
                 "computed from the scaled direction"),
        Param("max_learning_rate", 1.0, "cap on the Polyak step size", low=0.0),
        Param("f_min", 0.0, "lower bound (a guess) of the objective's minimum"),
        Param("eps", 0.0, "added to the squared gradient norm in the denominator", low=0.0),
        Param("variant", "sps", "'sps': the gap f - f_min as is; 'sps+': its positive part", kind="choice",
              choices=("sps", "sps+"), static=True),
    ),
    formula=(
        r"u = -\mathrm{lr}\,g,\ \gamma = \min\Big(\frac{f(x) - f^\star}{\sum\|u\|^2 + \epsilon}, "
        r"\gamma_{\max}\Big)\ (0 \text{ if } \sum\|u\|^2 + \epsilon \le \epsilon_{64}),\ x \leftarrow x + \gamma u"
    ),
    references=_POLYAK_REFS,
    usage=(
        "For models that (nearly) interpolate the data, where the minimum f_min is known (often 0): the step "
        "size adapts to the distance from it with no tuning. A wrong f_min diverges or stalls; 'sps+' never "
        "steps backwards when the value is below f_min. The squared norm sums over ALL parameters, so the "
        "optimizer must see the whole model; each step needs the loss value at the current parameters "
        "(JAX: update(..., value=v); torch: step(closure) with a closure returning the loss; NumPy: "
        "update(grads, state, params, value=v) or step(params, grads, value=v)). As in Optax, lr (scaling) "
        "scales the direction BEFORE the norm is taken: an uncapped step moves by (f - f*) / (lr ||g||^2) * g, "
        "so lr acts as 1/lr unless the cap binds. The global slot step_size is the last step size, for "
        "inspection. Keras: not supported (its optimizers see no loss value)."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.polyak_sgd",
            notes="optax.chain(sgd(learning_rate=scaling), scale_by_polyak(...)): the norm is of the scaled "
            "updates; the value is update's value= extra argument; no state.",
            names={"polyak_sgd": {}},
            kwargs={"scaling": "lr"},
        ),
    },
)


# ---------------------------------------------------------------------------------------------- Sophia

_SOPHIA_REFS = (
    "Liu, H., Li, Z., Hall, D., Liang, P. & Ma, T. (2024). Sophia: A Scalable Stochastic Second-order "
    "Optimizer for Language Model Pre-training. ICLR. https://arxiv.org/abs/2305.14342",
    "Hutchinson, M. F. (1989). A stochastic estimator of the trace of the influence matrix for Laplacian "
    "smoothing splines. Communications in Statistics - Simulation and Computation 18(3). "
    "https://doi.org/10.1080/03610918908812806",
)


def sophia_refresh(step: Any, /, *, xp: Any, update_interval: int, **hyper: Any) -> Any:
    """True at the steps whose update refreshes the Hessian estimate: 1, 1 + k, 1 + 2k, ... (k = interval)."""
    return xp.remainder(step - 1, xp.asarray(update_interval, dtype=step.dtype)) == 0


def sophia_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The momentum ``m`` and the moving average ``h`` of the Hessian-diagonal estimates."""
    zeros = xp.zeros_like(param)
    return {"m": zeros, "h": zeros}


def sophia_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, hessian_diag: Any, lr: Any,
    beta_1: Any, beta_2: Any, eps: Any, weight_decay: Any, gamma: Any, clip_threshold: Any,
    update_interval: int, **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""Bias-corrected momentum over the clipped, Hessian-scaled step (the estimate of the PREVIOUS refresh).

    .. math:: u = \mathrm{clip}\big(\hat m / \max(\gamma h, \epsilon), \pm\rho\big),\quad
        x \leftarrow x - \mathrm{lr}(u + \lambda x),\quad h \leftarrow \beta_2 h + (1-\beta_2)\hat D
        \text{ at refresh steps}

    >>> import numpy as np
    >>> p, g = np.array([1.0]), np.array([0.5])
    >>> delta, st = sophia_update(p, g, sophia_init(p, xp=np), step=np.float64(1), xp=np,
    ...     hessian_diag=np.array([2.0]), lr=0.1, beta_1=0.965, beta_2=0.99, eps=1e-8, weight_decay=0.0,
    ...     gamma=0.01, clip_threshold=1.0, update_interval=10)
    >>> delta.tolist(), st["h"].tolist()   # h was 0: the step is clipped to lr
    ([-0.1], [0.020000000000000018])
    """
    m = beta_1 * state["m"] + (1.0 - beta_1) * grad
    m_hat = m / (1.0 - beta_1**step)
    denom = xp.maximum(gamma * state["h"], xp.asarray(eps, dtype=m_hat.dtype))
    u = m_hat / denom
    if clip_threshold is not None:
        u = xp.clip(u, -clip_threshold, clip_threshold)
    if not is_zero(weight_decay):
        u = u + weight_decay * param
    refresh = sophia_refresh(step, xp=xp, update_interval=update_interval)
    h = xp.where(refresh, beta_2 * state["h"] + (1.0 - beta_2) * hessian_diag, state["h"])
    return -lr * u, {"m": m, "h": h}


SOPHIA = OptimizerSpec(
    name="sophia",
    aliases=("sophia_h",),
    summary="Sophia: momentum over a clipped step scaled by a moving Hutchinson estimate of the Hessian diagonal.",
    init=sophia_init,
    update=sophia_update,
    slots=("m", "h"),
    needs=("hessian_diag",),
    needs_at=sophia_refresh,
    params=(
        lr_param(0.001),
        Param("beta_1", 0.965, "decay of the momentum", low=0.0, high=1.0, high_inclusive=False),
        Param("beta_2", 0.99, "decay of the Hessian-diagonal average (per refresh)", low=0.0, high=1.0,
              high_inclusive=False),
        Param("eps", 1e-8, "floor of the scaled Hessian diagonal in the denominator", low=0.0),
        Param("weight_decay", 1e-4, "decoupled weight decay, added to the clipped step (times lr)", low=0.0),
        Param("gamma", 0.01, "scale of the Hessian diagonal in the denominator", low=0.0),
        Param("clip_threshold", 1.0, "per-element clip of the scaled step (None: no clip)", low=0.0,
              low_inclusive=False, nullable=True),
        Param("update_interval", 10, "refresh the Hessian estimate every this many steps (at steps 1, 1+k, ...)",
              kind="int", low=1, static=True),
        _KEY,
    ),
    formula=(
        r"m \leftarrow \beta_1 m + (1-\beta_1) g,\ u = \mathrm{clip}\Big(\frac{m/(1-\beta_1^t)}"
        r"{\max(\gamma h, \epsilon)}, \pm\rho\Big),\ x \leftarrow x - \mathrm{lr}(u + \lambda x),\ "
        r"h \leftarrow \beta_2 h + (1-\beta_2)\, r \odot (\nabla^2 f\, r)\ \text{every } k \text{ steps}, "
        r"r \sim \mathrm{Rademacher}"
    ),
    references=_SOPHIA_REFS,
    usage=(
        "Second-order-flavoured replacement for Adam(W) in large-model pre-training: the per-coordinate "
        "curvature estimate damps steps along sharp directions and the clip bounds each coordinate's step "
        "by lr (the first step, with h = 0, is lr * sign-like). The Hessian estimate uses the objective, "
        "not only the gradient: JAX: update(grads, state, params, obj_fn=f) as Optax; torch: step(closure) "
        "where the closure returns the loss without calling backward (or after backward(create_graph=True)); "
        "the optimizer takes the gradient with torch.autograd.grad(create_graph=True) and a Hessian-vector "
        "product with a Rademacher vector from its torch.Generator seeded with key (same distribution as "
        "Optax, not the same numbers); NumPy: update(..., hvp=fn) with fn(vectors) -> H @ vectors over the "
        "parameter list. The estimate of step t is used from step t+1 on; negative curvature is floored "
        "by eps, so such coordinates take clipped (lr-sized) steps. The stream advances only at refresh "
        "steps. Keras: not supported."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.contrib.sophia",
            state={"m": "mu", "h": "nu"},
            notes="scale_by_sophia + add_decayed_weights + scale_by_learning_rate; the default "
            "hessian_diagonal_fn (hutchinson_estimator_diag_hessian, random_seed=PRNGKey(key)) is the "
            "only one supported; weight_decay_mask, mu_dtype and verbose are not.",
            names={"sophia": {}},
        ),
    },
)


# -------------------------------------------------------------------------------------------- noisy SGD

_NOISY_REF = (
    "Neelakantan, A., Vilnis, L., Le, Q. V., Sutskever, I., Kaiser, L., Kurach, K. & Martens, J. (2015). "
    "Adding Gradient Noise Improves Learning for Very Deep Networks. https://arxiv.org/abs/1511.06807"
)


def noisy_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """No per-tensor state (the step count and the random stream are the adapter's)."""
    return {}


def noisy_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, noise: Any, lr: Any, eta: Any,
    gamma: Any, **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""SGD on the gradient plus Gaussian noise of variance :math:`\eta / t^{\gamma}`.

    .. math:: x \leftarrow x - \mathrm{lr}\big(g + \sqrt{\eta / t^{\gamma}}\,\xi\big),\quad \xi \sim N(0, I)

    >>> import numpy as np
    >>> delta, _ = noisy_update(np.array([1.0]), np.array([0.5]), {}, step=np.float64(1), xp=np,
    ...                         noise=np.array([1.0]), lr=0.1, eta=0.01, gamma=0.55)
    >>> round(float(delta[0]), 12)
    -0.06
    """
    std = xp.sqrt(eta / step**gamma)
    return -lr * (grad + std * noise), {}


NOISY_SGD = OptimizerSpec(
    name="noisy_sgd",
    aliases=("gradient_noise_sgd",),
    summary="SGD with annealed Gaussian gradient noise of variance eta / t^gamma.",
    init=noisy_init,
    update=noisy_update,
    needs=("noise",),
    params=(
        lr_param(0.01),
        Param("eta", 0.01, "base variance of the noise", low=0.0),
        Param("gamma", 0.55, "decay exponent of the variance over steps", low=0.0),
        _KEY,
    ),
    formula=r"x \leftarrow x - \mathrm{lr}\big(g + \sqrt{\eta/t^{\gamma}}\,\xi_t\big),\ \xi_t \sim N(0, I)",
    references=(_NOISY_REF,),
    usage=(
        "Very deep or hard-to-train networks, where annealed gradient noise helps escape poor regions early. "
        "The noise is drawn by the backend: on JAX the state holds a PRNG key split as Optax splits it "
        "(optax.noisy_sgd's numbers, same key); torch draws with a torch.Generator seeded with key, NumPy with "
        "numpy.random.default_rng(key), Keras with a keras.random.SeedGenerator(key): the same distribution, "
        "not the same numbers. Runs are reproducible per backend and key."
    ),
    conventions={
        "optax": Convention(
            "optax",
            "optax.noisy_sgd",
            state={},
            notes="chain(add_noise(eta, gamma, key), scale_by_learning_rate): the key (an int seed) is "
            "canonicalized with jax.random.key; each step splits it into (next key, sample key) and draws "
            "one normal array per leaf from the sample key (optax.tree.random_like). learning_rate has no "
            "default in Optax.",
            names={"noisy_sgd": {}},
            kwargs={"seed": "key"},
        ),
    },
)

SPECS = (POLYAK_SGD, SOPHIA, NOISY_SGD)
