"""Muon: momentum orthogonalized by a Newton–Schulz iteration, with an Adam fallback.

One spec covers ``torch.optim.Muon``, ``keras.optimizers.Muon`` and ``optax.contrib.muon``: the three
differ in data (how the momentum is accumulated and bias-corrected, where the iteration's ``eps``
goes, how the step is scaled by the matrix shape, which Adam runs the parameters that are not
matrices, and torch's bfloat16 iteration), not in the algorithm.

The per-tensor choice between the orthogonalized step and the Adam fallback is made on the
parameter's static ``ndim`` (2-D: Muon; otherwise Adam), as Optax and Keras do by default, or forced
by the static ``use_adam``, which an adapter sets per tensor from the framework's labels (Keras's
``exclude_layers`` / ``exclude_embeddings``: ``Convention.masks`` of the keras convention).
"""

from __future__ import annotations

import math
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._adaptive import adam_direction, beta_param, bias_correction, rounded_to
from lossbridge.spec._first_order import is_zero, lr_param
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = ["MUON", "SPECS", "muon_init", "muon_update", "newton_schulz", "round_to_bfloat16"]

_JORDAN = (
    "Jordan, K. et al. (2024). Muon: An optimizer for hidden layers in neural networks. "
    "https://kellerjordan.github.io/posts/muon/"
)
_LIU = "Liu, J. et al. (2025). Muon is Scalable for LLM Training. https://arxiv.org/abs/2502.16982"
_BERNSTEIN = (
    "Bernstein, J. & Newhouse, L. (2024). Old Optimizer, New Norm: An Anthology. "
    "https://arxiv.org/abs/2409.20325"
)

#: 2**16 + 1: Veltkamp's splitting constant that keeps 24 - 16 = 8 significant bits of a float32.
_BF16_SPLIT = 65537.0


def round_to_bfloat16(x: Any, /, *, xp: Any) -> Any:
    """``x`` rounded to the nearest bfloat16 value (ties to even), returned in ``x``'s dtype.

    The value goes through float32 first (as torch's ``Tensor.bfloat16()`` does), then keeps 8
    significant bits by Veltkamp's splitting in float32 arithmetic, which needs only ``astype``,
    ``*`` and ``-`` (the Array API has no bfloat16). Valid for |x| < 5e33.
    """
    x32 = xp.astype(x, xp.float32)
    c = x32 * _BF16_SPLIT
    return xp.astype(c - (c - x32), x.dtype)


def _rounder(ns_dtype: str | None, xp: Any) -> Any:
    if ns_dtype is None:
        return lambda v: v
    return lambda v: round_to_bfloat16(v, xp=xp)


def newton_schulz(
    x: Any,
    /,
    *,
    xp: Any,
    ns_a: Any,
    ns_b: Any,
    ns_c: Any,
    ns_steps: int,
    eps: Any,
    eps_placement: str = "add",
    ns_dtype: str | None = None,
) -> Any:
    r"""Approximate orthogonalization :math:`UV^\top` of the matrix ``x`` (quintic Newton–Schulz).

    .. math::
        X_0 = \frac{G}{\|G\|_F + \epsilon},\quad A_k = X_k X_k^\top,\quad
        X_{k+1} = a X_k + (b A_k + c A_k^2) X_k

    computed on the wide orientation (``x`` transposed when it has more rows than columns).
    ``eps_placement="clamp"`` divides by :math:`\max(\|G\|_F, \epsilon)` (PyTorch). With
    ``ns_dtype="bfloat16"`` every intermediate result is rounded to bfloat16 (through float32) and
    the coefficients to float32, which is what torch's bfloat16 iteration computes.

    >>> import numpy as np
    >>> g = np.array([[3.0, 0.0], [0.0, 0.5]])
    >>> o = newton_schulz(g, xp=np, ns_a=3.4445, ns_b=-4.7750, ns_c=2.0315, ns_steps=5, eps=1e-7)
    >>> bool(np.all(np.abs(np.diag(o) - 1.0) < 0.3))  # singular values pushed towards 1
    True
    """
    rnd = _rounder(ns_dtype, xp)
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = xp.matrix_transpose(x)
    x = rnd(x)
    norm = rnd(xp.sqrt(xp.sum(x * x)))
    if eps_placement == "clamp":
        norm = xp.maximum(norm, rnd(eps * xp.ones_like(norm)))
    else:
        norm = norm + eps
    if ns_dtype is None:
        x = x / norm
    else:  # torch divides in float32 before rounding to bfloat16
        x = xp.astype(round_to_bfloat16(xp.astype(x, xp.float32) / xp.astype(norm, xp.float32), xp=xp), x.dtype)
    scalar = xp.ones((), dtype=x.dtype)
    a, b, c = (rounded_to(v, scalar, dtype=None if ns_dtype is None else "float32", xp=xp) for v in (ns_a, ns_b, ns_c))
    for _ in range(ns_steps):
        gram = rnd(xp.matmul(x, xp.matrix_transpose(x)))
        poly = rnd(b * gram + c * xp.matmul(gram, gram))
        x = rnd(a * x + xp.matmul(poly, x))
    return xp.matrix_transpose(x) if transposed else x


def _momentum(
    grad: Any, m: Any, step: Any, *, momentum: Any, nesterov: bool, momentum_form: str, bias_correction_: bool, xp: Any
) -> tuple[Any, Any]:
    """The new momentum buffer and the matrix to orthogonalize."""
    if momentum_form == "sum":  # Keras: m = mu m + g, Nesterov g + mu m
        new_m = m + (grad + m * (momentum - 1.0))
        return new_m, (grad + momentum * new_m if nesterov else new_m)
    new_m = m + (1.0 - momentum) * (grad - m)
    if not bias_correction_:
        return new_m, ((1.0 - momentum) * grad + momentum * new_m if nesterov else new_m)
    if not nesterov:  # Optax: the bias-corrected EMA, Nesterov with the next step's correction
        return new_m, new_m / bias_correction(step, momentum, xp=xp)
    ahead = momentum * (new_m / bias_correction(step + 1.0, momentum, xp=xp))
    return new_m, ahead + (1.0 - momentum) * (grad / bias_correction(step, momentum, xp=xp))


def _shape_scale(
    shape: tuple[int, ...], *, adjust_lr_fn: str | None, rms_scale: Any, fan_out_axis: int, dtype: str | None, xp: Any,
    like: Any,
) -> Any:
    """The factor the orthogonalized step is scaled by, from the matrix shape (static)."""
    if rms_scale is not None or adjust_lr_fn == "match_rms_adamw":
        root = math.sqrt(max(shape[0], shape[1]))
        root = rounded_to(root, like, dtype=dtype, xp=xp) if dtype is not None else root
        return root * (0.2 if rms_scale is None else rms_scale)
    if adjust_lr_fn == "none":
        return 1.0
    fan_out, fan_in = shape[fan_out_axis], shape[1 - fan_out_axis]
    return math.sqrt(max(1.0, fan_out / fan_in))


def muon_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """The momentum ``m``; ``v`` is the Adam fallback's second moment (a 0-d zero for Muon's matrices)."""
    v = xp.zeros((), dtype=param.dtype) if param.ndim == 2 and not hyper.get("use_adam") else xp.zeros_like(param)
    return {"m": xp.zeros_like(param), "v": v}


def _adam_step(grad: Any, state: dict[str, Any], step: Any, *, xp: Any, hyper: dict[str, Any]) -> tuple[Any, Any]:
    """The Adam fallback's direction (without lr) and new state, for parameters that are not matrices."""
    eps = hyper["eps"] if hyper["adam_eps"] is None else hyper["adam_eps"]
    nesterov = hyper["nesterov"] if hyper["adam_nesterov"] is None else hyper["adam_nesterov"]
    beta_1, beta_2 = hyper["adam_beta_1"], hyper["adam_beta_2"]
    eps_hat = hyper["fallback"] == "adam_eps_hat"
    if not nesterov or eps_hat:
        direction, scale, new_state = adam_direction(
            grad, state, step=step, xp=xp, beta_1=beta_1, beta_2=beta_2, eps=eps,
            eps_root=hyper["adam_eps_root"], eps_placement="uncorrected" if eps_hat else "corrected",
            bias_correction_dtype=hyper["bias_correction_dtype"],
        )
        return scale * direction, new_state
    m, hat = _momentum(
        grad, state["m"], step, momentum=beta_1, nesterov=True, momentum_form="ema", bias_correction_=True, xp=xp
    )
    v = beta_2 * state["v"] + (1.0 - beta_2) * (grad * grad)
    v_hat = v / bias_correction(step, beta_2, xp=xp)
    return hat / (xp.sqrt(v_hat + hyper["adam_eps_root"]) + eps), {"m": m, "v": v}


def muon_update(
    param: Any, grad: Any, state: dict[str, Any], /, *, step: Any, xp: Any, **hyper: Any
) -> tuple[Any, dict[str, Any]]:
    r"""One Muon step (see :data:`MUON`); parameters that are not matrices take the Adam fallback.

    .. math::
        B_t = \mu B_{t-1} + (1-\mu) G_t,\quad
        O_t = \mathrm{NS}_k\big((1-\mu) G_t + \mu B_t\big),\quad
        \theta_t = \theta_{t-1} - \eta\lambda\theta_{t-1} - \eta\, s(\text{shape})\, O_t

    Reference: Jordan et al. (2024), https://kellerjordan.github.io/posts/muon/.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("muon", lr=0.1), [np.zeros((2, 2))]
    >>> opt.step(params, [np.array([[1.0, 0.0], [0.0, 1.0]])])  # an orthogonal gradient stays one
    >>> bool(np.allclose(params[0], -0.1 * np.eye(2), atol=0.03))
    True
    """
    if param.ndim != 2 or hyper["use_adam"]:
        adam_lr = hyper["lr"] if hyper["adam_lr"] is None else hyper["adam_lr"]
        direction, new_state = _adam_step(grad, state, step, xp=xp, hyper=hyper)
        decay: Any = 0.0 if is_zero(hyper["adam_weight_decay"]) else -adam_lr * hyper["adam_weight_decay"] * param
        return decay - (adam_lr * hyper["adam_lr_ratio"]) * direction, new_state
    m, target = _momentum(
        grad, state["m"], step, momentum=hyper["momentum"], nesterov=hyper["nesterov"],
        momentum_form=hyper["momentum_form"], bias_correction_=hyper["bias_correction"], xp=xp,
    )
    ortho = newton_schulz(
        target, xp=xp, ns_a=hyper["ns_a"], ns_b=hyper["ns_b"], ns_c=hyper["ns_c"], ns_steps=hyper["ns_steps"],
        eps=hyper["eps"], eps_placement=hyper["eps_placement"], ns_dtype=hyper["ns_dtype"],
    )
    if hyper["adaptive"]:  # scaled by the dual norm <target, O> (Bernstein & Newhouse)
        ortho = xp.sum(target * ortho) * ortho
    scale = _shape_scale(
        tuple(param.shape), adjust_lr_fn=hyper["adjust_lr_fn"], rms_scale=hyper["rms_scale"],
        fan_out_axis=hyper["fan_out_axis"], dtype=hyper["shape_scale_dtype"], xp=xp,
        like=xp.ones((), dtype=param.dtype),
    )
    lr, weight_decay = hyper["lr"], hyper["weight_decay"]
    decay = 0.0 if is_zero(weight_decay) else -lr * weight_decay * param
    return decay - (lr * scale) * ortho, {"m": m, "v": state["v"]}


_PARAMS = (
    lr_param(0.02),
    Param(
        "momentum", 0.95, "momentum mu of the buffer that is orthogonalized", low=0.0, high=1.0, high_inclusive=False
    ),
    Param("nesterov", True, "orthogonalize the Nesterov look-ahead instead of the buffer", kind="bool", static=True),
    Param(
        "momentum_form",
        "ema",
        "'ema': B = mu B + (1-mu) G, look-ahead (1-mu) G + mu B (Jordan, PyTorch, Optax); 'sum': "
        "B = mu B + G, look-ahead G + mu B (Keras)",
        kind="choice",
        choices=("ema", "sum"),
        static=True,
    ),
    Param(
        "bias_correction",
        False,
        "divide the EMA by 1 - mu^t (the Nesterov look-ahead's buffer term by 1 - mu^(t+1)) (Optax)",
        kind="bool",
        static=True,
    ),
    Param("ns_a", 3.4445, "Newton-Schulz coefficient a (of X)"),
    Param("ns_b", -4.7750, "Newton-Schulz coefficient b (of A X, A = X X^T)"),
    Param("ns_c", 2.0315, "Newton-Schulz coefficient c (of A^2 X)"),
    Param("ns_steps", 5, "number of Newton-Schulz iterations", kind="int", low=0, static=True),
    Param("eps", 1e-7, "stabilizes the Frobenius normalization before the iteration", low=0.0),
    Param(
        "eps_placement",
        "add",
        "'add': divide by ||G||_F + eps (Jordan, Keras, Optax); 'clamp': by max(||G||_F, eps) (PyTorch)",
        kind="choice",
        choices=("add", "clamp"),
        static=True,
    ),
    Param(
        "ns_dtype",
        None,
        "'bfloat16': run the iteration in bfloat16 (results rounded through float32, coefficients in "
        "float32), as torch.optim.Muon does whatever the parameter dtype; None: the parameter's dtype",
        kind="choice",
        choices=("bfloat16",),
        nullable=True,
        static=True,
    ),
    Param(
        "adaptive",
        False,
        "scale the orthogonalized step by <B, O>, the dual norm of the buffer (Optax's adaptive)",
        kind="bool",
        static=True,
    ),
    Param("weight_decay", 0.0, "decoupled decay of matrices: theta -= lr*weight_decay*theta", low=0.0),
    Param(
        "adjust_lr_fn",
        None,
        "step scaling by the shape: None/'original': sqrt(max(1, fan_out/fan_in)) (Jordan); "
        "'match_rms_adamw': 0.2*sqrt(max(rows, cols)) (Liu et al.); 'none': 1",
        kind="choice",
        choices=("original", "match_rms_adamw", "none"),
        nullable=True,
        static=True,
    ),
    Param(
        "rms_scale",
        None,
        "if set, scale the step by rms_scale*sqrt(max(rows, cols)) (Keras rms_rate, Optax "
        "consistent_rms), whatever adjust_lr_fn says",
        low=0.0,
        nullable=True,
    ),
    Param(
        "fan_out_axis",
        0,
        "which axis of a matrix is fan-out for 'original': 0 for (out, in) weights (PyTorch), 1 for "
        "(in, out) weights (Optax)",
        kind="choice",
        choices=(0, 1),
        static=True,
    ),
    Param(
        "shape_scale_dtype",
        None,
        "round sqrt(max(rows, cols)) to this dtype (Keras takes the square root of an int32 in float32)",
        kind="choice",
        choices=("float32",),
        nullable=True,
        static=True,
    ),
    Param(
        "fallback",
        "adam",
        "the optimizer of parameters that are not matrices: 'adam' (eps on the bias-corrected sqrt(v), "
        "eps_root inside; Optax's adamw) or 'adam_eps_hat' (eps on the raw sqrt(v), Keras)",
        kind="choice",
        choices=("adam", "adam_eps_hat"),
        static=True,
    ),
    Param(
        "use_adam",
        False,
        "run the Adam fallback on this tensor whatever its shape; set per tensor by the adapter from the "
        "framework's labels (Keras's exclude_layers / exclude_embeddings), a per-parameter label",
        kind="bool",
        static=True,
    ),
    beta_param("adam_beta_1", 0.9, "the Adam fallback's first-moment decay"),
    beta_param("adam_beta_2", 0.999, "the Adam fallback's second-moment decay"),
    Param("adam_eps", None, "the Adam fallback's eps; None: eps", low=0.0, nullable=True),
    Param("adam_eps_root", 0.0, "the Adam fallback's eps inside the square root", low=0.0),
    Param("adam_weight_decay", 0.0, "the Adam fallback's decoupled weight decay", low=0.0),
    Param("adam_lr", None, "the Adam fallback's learning rate; None: lr", low=0.0, nullable=True),
    Param("adam_lr_ratio", 1.0, "the Adam fallback's step is multiplied by this (Keras)", low=0.0),
    Param(
        "adam_nesterov",
        False,
        "Nesterov momentum in the Adam fallback (NAdam); None: the same as nesterov (Optax)",
        kind="bool",
        nullable=True,
        static=True,
    ),
    Param(
        "bias_correction_dtype",
        None,
        "round the Adam fallback's betas to this dtype inside 1 - beta^t (Keras casts through float32)",
        kind="choice",
        choices=("float32",),
        nullable=True,
        static=True,
    ),
)

MUON = OptimizerSpec(
    name="muon",
    summary="Muon: the momentum of each weight matrix orthogonalized by a Newton-Schulz iteration; "
    "Adam for the parameters that are not matrices.",
    init=muon_init,
    update=muon_update,
    slots=("m", "v"),
    params=_PARAMS,
    formula=(
        r"B_t = \mu B_{t-1} + (1-\mu)G_t,\ O_t = \mathrm{NS}_k\!\big((1-\mu)G_t + \mu B_t\big),\ "
        r"X_0 = \tfrac{M}{\|M\|_F+\epsilon},\ X_{j+1} = aX_j + (bA_j + cA_j^2)X_j,\ A_j = X_jX_j^\top,\ "
        r"\theta_t = (1-\eta\lambda)\theta_{t-1} - \eta\sqrt{\max(1, n_\text{out}/n_\text{in})}\,O_t"
    ),
    references=(_JORDAN, _LIU, _BERNSTEIN),
    usage=(
        "Hidden-layer weight matrices of transformers and CNNs (flatten conv kernels to 2-D first): "
        "faster than AdamW per step in the nanoGPT speedruns. Embeddings, output heads, biases and "
        "norms belong to AdamW: 1-D and 0-D parameters here get the Adam fallback automatically, but "
        "embeddings and heads are 2-D and must be labelled use_adam=True (a torch param group; Keras's "
        "exclude_layers / exclude_embeddings on the tensorflow backend) or given to another optimizer. The "
        "iteration is 3 matmuls per step on the smaller Gram matrix."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.Muon",
            params={
                "lr": 1e-3,
                "weight_decay": 0.1,
                "eps_placement": "clamp",
                "ns_dtype": "bfloat16",
                "adam_eps": 1e-8,
                "adam_weight_decay": 0.01,
                "adam_nesterov": False,
            },
            notes="Iteration in bfloat16 whatever the dtype (the step has bfloat16 precision); "
            "normalization by max(||B||, eps), eps 1e-7; step sqrt(max(1, rows/cols)) for (out, in) "
            "weights, 'match_rms_adamw' 0.2*sqrt(max(rows, cols)); wd 0.1 decoupled. torch refuses "
            "parameters that are not 2-D; lossbridge gives them AdamW with torch.optim.AdamW's "
            "defaults (eps 1e-8, weight_decay 0.01) and the same lr instead.",
            names={"Muon": {}},
            kwargs={"ns_coefficients": ("ns_a", "ns_b", "ns_c")},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Muon",
            params={
                "lr": 1e-3,
                "momentum_form": "sum",
                "adjust_lr_fn": "none",
                "rms_scale": 0.2,
                "shape_scale_dtype": "float32",
                "weight_decay": 0.004,
                "fallback": "adam_eps_hat",
                "adam_eps": 1e-7,
                "adam_weight_decay": 0.004,
                "bias_correction_dtype": "float32",
            },
            notes="Buffer m = mu m + g (no 1-mu); normalization eps 1e-7 fixed, `epsilon` is the "
            "fallback Adam's (epsilon hat on the raw sqrt(v)); step rms_rate*sqrt(max(rows, cols)) with "
            "the root in float32 (rms_rate=None: no scaling); learning_rate and both weight decays live "
            "in float32; the fallback's lr is learning_rate*adam_lr_ratio, its decay uses learning_rate. "
            "exclude_layers (regexes searched in variable.path) and exclude_embeddings (default True: "
            "'embedding' in the lower-cased path) give those variables the fallback (use_adam=True per "
            "variable) on the tensorflow backend (KerasOptimizer); the other backends take use_adam= for "
            "the whole optimizer (torch: per param group).",
            hyper_dtype="float32",
            rounded=("lr", "weight_decay", "adam_weight_decay"),
            masks={"exclude_layers": {"use_adam": True}, "exclude_embeddings": {"use_adam": True}},
            names={"Muon": {}},
            kwargs={"muon_a": "ns_a", "muon_b": "ns_b", "muon_c": "ns_c", "epsilon": "adam_eps",
                    "rms_rate": "rms_scale"},
        ),
        "optax": Convention(
            "optax",
            "optax.contrib.muon",
            params={"eps": 1e-8, "bias_correction": True, "fan_out_axis": 1, "adam_nesterov": None,
                    "adam_eps": None},
            notes="Bias-corrected EMA (Nesterov look-ahead with 1 - beta^(t+1)); normalization by "
            "||B|| + eps, eps 1e-8 shared with the fallback; step sqrt(max(1, cols/rows)) for (in, out) "
            "weights or consistent_rms*sqrt(max(rows, cols)); the fallback is optax.adamw with "
            "nesterov=nesterov. ns_coeffs per step, presets, preconditioning other than 'frobenius', "
            "mu_dtype, masks and weight_dimension_numbers are not supported.",
            names={"muon": {}},
            kwargs={"beta": "momentum", "ns_coeffs": ("ns_a", "ns_b", "ns_c"), "consistent_rms": "rms_scale",
                    "adam_b1": "adam_beta_1", "adam_b2": "adam_beta_2", "adam_learning_rate": "adam_lr"},
        ),
    },
)

SPECS = (MUON,)
