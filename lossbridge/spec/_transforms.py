r"""Gradient transforms: clipping, centralization and an EMA of updates, each defined once.

A gradient transform is an :class:`~lossbridge.spec.OptimizerSpec` with ``role="transform"`` (see
its docstring): ``update(param, grad, state, /, *, step, xp, **hyper)`` returns the TRANSFORMED
GRADIENT and the new state, never a parameter increment, and there is no ``lr``. A sum over all
tensors (the global norm) uses the global-state mechanism (``global_slots`` / ``partials`` /
``combine``): each tensor contributes :math:`\sum |g|^p`, ``combine`` takes the root, and every
tensor is scaled by the same factor.

Materialized on each backend (``lossbridge.get(name, backend=...)``):

* JAX: an ``optax.GradientTransformation`` (the optimizer path itself: Optax's ``update`` returns
  updates), composing with ``optax.chain`` with Optax's and lossbridge's transformations, and
  wrapped by ``optax.MultiSteps`` like any other;
* torch: a ``torch.optim.Optimizer`` subclass over the same parameters whose ``step()`` rewrites
  each ``p.grad`` in place (run it before any optimizer's ``step()``: torch's or lossbridge's);
* NumPy: an object whose ``update(grads, state, params)`` returns the transformed gradients;
* TensorFlow/Keras: Keras's own base-optimizer options (``clipnorm``, ``clipvalue``,
  ``global_clipnorm``, ``use_ema``...) on any lossbridge Keras optimizer are the native form.

:func:`lossbridge.chain` composes transforms with an optimizer on NumPy, torch and JAX
(``accumulate=k`` averages the gradients of ``k`` calls before one step: Optax's ``MultiSteps``,
Keras's ``gradient_accumulation_steps``).
"""

from __future__ import annotations

import math
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._ops import abs_sq
from lossbridge.spec._params import Param

__all__ = [
    "ADAPTIVE_GRAD_CLIP",
    "CENTRALIZE",
    "CLIP",
    "CLIP_BY_GLOBAL_NORM",
    "CLIP_BY_NORM",
    "EMA",
    "SPECS",
    "unitwise_norm",
]


def _no_state(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    return {}


# -- clip by value ------------------------------------------------------------------------------
def clip_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, max_delta: Any, **hyper: Any
) -> tuple[Any, dict[str, Any]]:
    r"""Each entry clipped to :math:`[-\delta, \delta]`.

    .. math:: \tilde g = \min(\max(g, -\delta), \delta)

    >>> import numpy as np
    >>> clip_update(None, np.array([-3.0, 0.5, 2.0]), {}, step=1.0, xp=np, max_delta=1.0)[0]
    array([-1. ,  0.5,  1. ])
    """
    return xp.minimum(xp.maximum(grad, -max_delta), max_delta), state


CLIP = OptimizerSpec(
    name="clip",
    role="transform",
    aliases=("clip_by_value", "clip_grad_value"),
    summary="Gradient transform: clip every gradient entry to [-max_delta, max_delta].",
    init=_no_state,
    update=clip_update,
    params=(Param("max_delta", 1.0, "the largest absolute value an entry keeps", low=0.0),),
    formula=r"\tilde g_i = \min(\max(g_i, -\delta), \delta)",
    references=(
        "Mikolov, T. (2012). Statistical Language Models Based on Neural Networks. PhD thesis, Brno "
        "University of Technology (gradient clipping by value).",
        "Optax: optax.clip, https://optax.readthedocs.io/en/latest/api/transformations.html#optax.clip",
    ),
    usage=(
        "Caps outliers entry by entry; unlike norm clipping it changes the gradient's direction. "
        "Prefer clip_by_global_norm for RNNs/transformers; value clipping is the Keras clipvalue / torch "
        "clip_grad_value_ habit. max_delta=0 zeros every gradient."
    ),
    conventions={
        "optax": Convention("optax", "optax.clip", notes="optax.clip(max_delta).", names={"clip": {}}),
        "torch": Convention(
            "torch",
            "torch.nn.utils.clip_grad_value_",
            notes="torch.nn.utils.clip_grad_value_(parameters, clip_value), in place on .grad.",
            names={"clip_grad_value_": {}},
            kwargs={"clip_value": "max_delta"},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Optimizer(clipvalue=...)",
            notes="Keras's base-optimizer option clipvalue (ops.clip(g, -v, v)); on a Keras optimizer "
            "pass clipvalue= itself.",
            names={"clipvalue": {}},
            kwargs={"clipvalue": "max_delta"},
        ),
    },
)


# -- clip by global norm ------------------------------------------------------------------------
def _p_sum(grad: Any, norm_type: float, *, xp: Any) -> Any:
    if norm_type == 2.0:
        return xp.sum(abs_sq(grad, xp=xp))
    return xp.sum(xp.abs(grad) ** norm_type)


def global_norm_init(*, dtype: Any, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The global state: the last global norm (0 before the first step)."""
    return {"norm": xp.zeros((), dtype=dtype)}


def global_norm_partials(
    param: Any, grad: Any, state: dict[str, Any], glob: dict[str, Any], /, *, step: Any, xp: Any,
    norm_type: float = 2.0, **hyper: Any,
) -> dict[str, Any]:
    r"""This tensor's :math:`\sum_i |g_i|^p`."""
    return {"sum": _p_sum(grad, norm_type, xp=xp)}


def global_norm_combine(
    sums: dict[str, Any], glob: dict[str, Any], /, *, step: Any, xp: Any, norm_type: float = 2.0, **hyper: Any
) -> dict[str, Any]:
    r"""The global norm :math:`(\sum_{\text{tensors}} \sum_i |g_i|^p)^{1/p}`."""
    total = sums["sum"]
    norm = xp.sqrt(total) if norm_type == 2.0 else total ** (1.0 / norm_type)
    return {"norm": xp.astype(norm, glob["norm"].dtype)}


def clip_by_global_norm_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, max_norm: Any, eps: Any = 0.0,
    glob: dict[str, Any] | None = None, new_glob: dict[str, Any] | None = None, **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""Every tensor scaled by :math:`\min(1, c / (\|g\|_p + \epsilon))`, the same factor for all.

    .. math:: \tilde g = g \cdot \frac{c}{\max(\|g\|_p + \epsilon,\ c)}

    >>> import numpy as np
    >>> g = np.array([3.0, 4.0])
    >>> clip_by_global_norm_update(None, g, {}, step=1.0, xp=np, max_norm=1.0, new_glob={"norm": np.float64(5.0)})[0]
    array([0.6, 0.8])
    """
    assert new_glob is not None  # the adapter runs update_all
    norm = xp.astype(new_glob["norm"], grad.dtype)
    scale = max_norm / xp.maximum(norm + eps, max_norm)
    return grad * scale, state


CLIP_BY_GLOBAL_NORM = OptimizerSpec(
    name="clip_by_global_norm",
    role="transform",
    aliases=("global_norm_clip", "clip_grad_norm"),
    summary="Gradient transform: scale ALL gradients by one factor so their joint p-norm is at most max_norm.",
    init=_no_state,
    update=clip_by_global_norm_update,
    global_slots=("norm",),
    init_global=global_norm_init,
    partials=global_norm_partials,
    combine=global_norm_combine,
    params=(
        Param("max_norm", 1.0, "the largest global norm the gradients keep", low=0.0, low_inclusive=False),
        Param("eps", 0.0, "added to the norm in the scale's denominator (torch: 1e-6)", low=0.0),
        Param(
            "norm_type",
            2.0,
            "the p of the p-norm over all gradient entries (finite; 2 is the Euclidean norm)",
            low=0.0,
            low_inclusive=False,
            static=True,
        ),
    ),
    formula=(
        r"N = \Big(\sum_{\text{tensors}}\sum_i |g_i|^p\Big)^{1/p},\quad "
        r"\tilde g = g\cdot\min\!\Big(1, \frac{c}{N+\epsilon}\Big)"
    ),
    references=(
        "Pascanu, R., Mikolov, T. & Bengio, Y. (2013). On the difficulty of training recurrent neural "
        "networks. ICML. https://arxiv.org/abs/1211.5063",
    ),
    usage=(
        "The standard clipping for RNNs and transformers: the direction of the whole update is kept and "
        "only its length is capped. It couples all tensors (one norm over all of them), so it runs over "
        "the whole parameter set at once (global_slots). torch adds eps=1e-6 to the norm and supports p-norms; "
        "the infinity norm (a max, not a sum) is not supported here. The last global norm is kept in the "
        "state ('norm')."
    ),
    conventions={
        "optax": Convention(
            "optax", "optax.clip_by_global_norm", notes="g if ||g|| < c else g / ||g|| * c; no eps.",
            names={"clip_by_global_norm": {}},
        ),
        "torch": Convention(
            "torch",
            "torch.nn.utils.clip_grad_norm_",
            params={"eps": 1e-6},
            notes="clip_coef = max_norm / (total_norm + 1e-6), clamped at 1, multiplies every .grad in place.",
            names={"clip_grad_norm_": {}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Optimizer(global_clipnorm=...)",
            notes="Keras's base-optimizer option global_clipnorm; on a Keras optimizer pass global_clipnorm= itself.",
            names={"global_clipnorm": {}},
            kwargs={"global_clipnorm": "max_norm", "clip_norm": "max_norm"},
        ),
        "caffe": Convention(
            "caffe",
            "caffe.SolverParameter.clip_gradients",
            notes="SGDSolver::ClipGradients (sgd_solver.cpp): if the L2 norm of all diffs exceeds clip_gradients, "
            "every diff is scaled by clip_gradients / norm, before Normalize/Regularize/ComputeUpdateValue. "
            "(iter_size > 1 is Caffe's gradient accumulation: lossbridge.chain(..., accumulate=iter_size).)",
            names={"clip_gradients": {}},
            kwargs={"clip_gradients": "max_norm"},
        ),
    },
)


# -- clip by per-tensor norm ---------------------------------------------------------------------
def clip_by_norm_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, threshold: Any, rms: bool = False,
    **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""Each tensor scaled so that its own L2 norm (or RMS) is at most the threshold.

    .. math:: \tilde g = g \cdot \frac{c}{\max(\|g\|, c)}

    >>> import numpy as np
    >>> clip_by_norm_update(None, np.array([3.0, 4.0]), {}, step=1.0, xp=np, threshold=1.0)[0]
    array([0.6, 0.8])
    """
    total = xp.sum(abs_sq(grad, xp=xp))
    if rms:
        total = total / float(max(math.prod(grad.shape), 1))
    measure = xp.sqrt(total)
    return grad * (threshold / xp.maximum(measure, threshold)), state


CLIP_BY_NORM = OptimizerSpec(
    name="clip_by_norm",
    role="transform",
    aliases=("clip_by_tensor_norm", "per_tensor_norm_clip"),
    summary="Gradient transform: scale each tensor so its own L2 norm (or root-mean-square) is at most threshold.",
    init=_no_state,
    update=clip_by_norm_update,
    params=(
        Param("threshold", 1.0, "the largest norm (or RMS) a tensor's gradient keeps", low=0.0, low_inclusive=False),
        Param("rms", False, "measure the root-mean-square ||g|| / sqrt(size) instead of the L2 norm", kind="bool",
              static=True),
    ),
    formula=r"\tilde g = g\cdot\frac{c}{\max(m(g), c)},\quad m(g) = \|g\|_2\ \text{or}\ \|g\|_2/\sqrt{n}",
    references=(
        "Pascanu, R., Mikolov, T. & Bengio, Y. (2013). On the difficulty of training recurrent neural "
        "networks. ICML. https://arxiv.org/abs/1211.5063",
        "Optax: optax.clip_by_block_rms; Keras: Optimizer(clipnorm=...).",
    ),
    usage=(
        "Per-tensor clipping: each layer's gradient is capped independently (Keras clipnorm, Optax "
        "clip_by_block_rms with rms=True, torch's clip_grad_norm_ called on one tensor at a time). "
        "It changes the relative size of the layers' updates; clip_by_global_norm does not."
    ),
    conventions={
        "optax": Convention(
            "optax", "optax.clip_by_block_rms", params={"rms": True},
            notes="u / max(1, rms(u) / threshold), per leaf.", names={"clip_by_block_rms": {"rms": True}},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Optimizer(clipnorm=...)",
            notes="Keras's base-optimizer option clipnorm (ops clip_by_norm: g * c / max(||g||, c)); on a Keras "
            "optimizer pass clipnorm= itself.",
            names={"clipnorm": {}, "clip_by_norm": {}},
            kwargs={"clipnorm": "threshold", "clip_norm": "threshold"},
        ),
    },
)


# -- adaptive gradient clipping -----------------------------------------------------------------
def unitwise_norm(x: Any, *, xp: Any) -> Any:
    """The L2 norm per output unit (Brock et al.): all of ``x`` for scalars and vectors (after
    squeezing unit axes), over axis 0 for (in, out) matrices and (k, in, out) stacks, over all
    but the last axis for 4-D/5-D convolution kernels (HWIO, DHWIO); broadcast to ``x``'s shape."""
    squeezed = sum(1 for d in x.shape if d != 1)
    if squeezed <= 1:
        sq = xp.sum(abs_sq(x, xp=xp))
    elif x.ndim in (2, 3):
        sq = xp.sum(abs_sq(x, xp=xp), axis=0, keepdims=True)
    elif x.ndim in (4, 5):
        sq = xp.sum(abs_sq(x, xp=xp), axis=tuple(range(x.ndim - 1)), keepdims=True)
    else:
        raise ValueError(f"adaptive_grad_clip: expected a parameter of rank 1 to 5, got shape {tuple(x.shape)}")
    return xp.sqrt(sq) * xp.ones_like(xp.real(x) if xp.isdtype(x.dtype, "complex floating") else x)


def adaptive_grad_clip_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, clipping: Any, eps: Any = 1e-3,
    div_eps: Any = 1e-6, **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""Unit-wise clipping relative to the parameter's norm (AGC).

    .. math:: \tilde g = \begin{cases} g & \|g\|_u < \lambda \max(\|\theta\|_u, \epsilon) \\
              g\,\frac{\lambda \max(\|\theta\|_u, \epsilon)}{\max(\|g\|_u, 10^{-6})} & \text{else} \end{cases}

    >>> import numpy as np
    >>> p, g = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    >>> adaptive_grad_clip_update(p, g, {}, step=1.0, xp=np, clipping=0.5)[0]
    array([0. , 0.5])
    """
    if param is None:
        raise TypeError("adaptive_grad_clip needs the current parameters (update(grads, state, params))")
    g_norm = unitwise_norm(grad, xp=xp)
    max_norm = clipping * xp.maximum(unitwise_norm(param, xp=xp), eps)
    clipped = grad * (max_norm / xp.maximum(g_norm, div_eps))
    return xp.where(g_norm < max_norm, grad, clipped), state


ADAPTIVE_GRAD_CLIP = OptimizerSpec(
    name="adaptive_grad_clip",
    role="transform",
    aliases=("agc",),
    summary="Gradient transform: clip each unit's gradient norm relative to its parameter norm (AGC, NFNets).",
    init=_no_state,
    update=adaptive_grad_clip_update,
    params=(
        Param("clipping", 0.01, "the largest ratio of gradient norm to parameter norm (lambda)", low=0.0),
        Param("eps", 1e-3, "floor of the parameter norm (so zero-initialized units can move)", low=0.0),
        Param("div_eps", 1e-6, "floor of the gradient norm in the scale's denominator", low=0.0, low_inclusive=False),
    ),
    formula=(
        r"\tilde g = g\ \text{if}\ \|g\|_u < \lambda\max(\|\theta\|_u,\epsilon)\ \text{else}\ "
        r"g\,\lambda\max(\|\theta\|_u,\epsilon)/\max(\|g\|_u, 10^{-6})"
    ),
    references=(
        "Brock, A., De, S., Smith, S. L. & Simonyan, K. (2021). High-Performance Large-Scale Image "
        "Recognition Without Normalization. ICML. https://arxiv.org/abs/2102.06171",
    ),
    usage=(
        "Replaces batch normalization's implicit gradient control in normalizer-free networks; use "
        "clipping ~0.01 for large batches. Needs the parameters (update(grads, state, params)). Norms are per "
        "output unit: over axis 0 of a (in, out) matrix, over all but the last axis of HWIO kernels "
        "(Optax's layout). Optax's axis= override is not supported."
    ),
    conventions={
        "optax": Convention(
            "optax", "optax.adaptive_grad_clip", notes="unitwise_norm / unitwise_clip with div_eps 1e-6.",
            names={"adaptive_grad_clip": {}},
        ),
    },
)


# -- gradient centralization --------------------------------------------------------------------
def centralize_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, **hyper: Any
) -> tuple[Any, dict[str, Any]]:
    r"""Subtract the mean over all axes but the first (tensors of rank 2 and more; others unchanged).

    .. math:: \tilde g_{i,\cdot} = g_{i,\cdot} - \operatorname{mean}(g_{i,\cdot})

    >>> import numpy as np
    >>> centralize_update(None, np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), {}, step=1.0, xp=np)[0]
    array([[-1.,  0.,  1.],
           [-1.,  0.,  1.]])
    """
    if grad.ndim <= 1:
        return grad, state
    return grad - xp.mean(grad, axis=tuple(range(1, grad.ndim)), keepdims=True), state


CENTRALIZE = OptimizerSpec(
    name="centralize",
    role="transform",
    aliases=("gradient_centralization",),
    summary="Gradient transform: subtract each row's mean from gradients of rank 2 and more (GC).",
    init=_no_state,
    update=centralize_update,
    params=(),
    formula=r"\tilde g_{i,\cdot} = g_{i,\cdot} - \frac{1}{n}\sum_j g_{i,j}\quad(\text{rank}\ge 2)",
    references=(
        "Yong, H., Huang, J., Hua, X. & Zhang, L. (2020). Gradient Centralization: A New Optimization "
        "Technique for Deep Neural Networks. ECCV. https://arxiv.org/abs/2004.01461",
    ),
    usage=(
        "Constrains weight updates to zero-mean rows (a hyperplane); said to regularize and speed up "
        "training of conv/dense weights. Biases and other vectors pass unchanged. Mind the layout: the mean "
        "is over all axes but the FIRST (Optax's), which is the output axis for torch (out, in) weights "
        "and the input axis for Keras/Flax (in, out) kernels."
    ),
    conventions={
        "optax": Convention("optax", "optax.centralize", names={"centralize": {}}),
    },
)


# -- EMA of updates -----------------------------------------------------------------------------
def ema_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The moving average, zero."""
    return {"ema": xp.zeros_like(param)}


def ema_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, decay: Any, debias: bool = True,
    **hyper: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""The exponential moving average of the incoming updates, bias-corrected if ``debias``.

    .. math:: e_t = \beta e_{t-1} + (1-\beta) g_t,\quad \tilde g_t = e_t / (1-\beta^t)

    >>> import numpy as np
    >>> out, st = ema_update(None, np.array([2.0]), {"ema": np.array([0.0])}, step=np.float64(1), xp=np, decay=0.5)
    >>> out, st["ema"]
    (array([2.]), array([1.]))
    """
    ema = (1.0 - decay) * grad + decay * state["ema"]
    out = ema / (1.0 - decay**step) if debias else ema
    return out, {"ema": ema}


EMA = OptimizerSpec(
    name="ema",
    role="transform",
    aliases=("ema_of_updates", "exponential_moving_average"),
    summary="Gradient transform: the exponential moving average of past updates (optionally bias-corrected).",
    init=ema_init,
    update=ema_update,
    slots=("ema",),
    params=(
        Param("decay", 0.9, "the moving average's decay (weight of the past)", low=0.0, high=1.0),
        Param("debias", True, "divide by 1 - decay^t (Adam's bias correction)", kind="bool", static=True),
    ),
    formula=r"e_t = \beta e_{t-1} + (1-\beta) g_t,\quad \tilde g_t = e_t/(1-\beta^t)\ (\text{debias})",
    references=(
        "Polyak, B. T. & Juditsky, A. B. (1992). Acceleration of Stochastic Approximation by Averaging. "
        "SIAM J. Control Optim. 30(4).",
        "Optax: optax.ema, https://optax.readthedocs.io/en/latest/api/transformations.html#optax.ema",
    ),
    usage=(
        "Smooths the updates that flow through a chain (a momentum without the lr). This is NOT the EMA "
        "of the PARAMETERS used for evaluation (Keras use_ema / ema_momentum, torch's "
        "AveragedModel): on Keras that is the optimizer option use_ema=True, which lossbridge's Keras "
        "optimizers take as Keras's do."
    ),
    conventions={
        "optax": Convention(
            "optax", "optax.ema", notes="update_moment then bias_correction at the incremented count.",
            names={"ema": {}}, slot_dtypes={"accumulator_dtype": "ema"},
        ),
    },
)

SPECS = (CLIP, CLIP_BY_GLOBAL_NORM, CLIP_BY_NORM, ADAPTIVE_GRAD_CLIP, CENTRALIZE, EMA)
