"""Optimizers with factored second moments: Adafactor (Shazeer & Stern, 2018)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._first_order import is_zero
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._ops import abs_sq
from lossbridge.spec._params import Param
from lossbridge.validation import dtype_name

__all__ = ["ADAFACTOR", "SPECS", "OptionalParam", "adafactor_init", "adafactor_update"]

_REFERENCE = (
    "Shazeer, N. & Stern, M. (2018). Adafactor: Adaptive Learning Rates with Sublinear Memory Cost. "
    "ICML. https://arxiv.org/abs/1804.04235"
)


@dataclass(frozen=True)
class OptionalParam(Param):
    """A parameter that also takes ``None`` with a meaning its doc gives, stored as ``none_value``
    (Optax's ``learning_rate=None``: no learning-rate factor, i.e. 1; ``clipping_threshold=None``: no
    clipping, kept as None). Its messages describe the numbers it takes, as before ``None`` was accepted."""

    none_value: Any = None

    def validate(self, value: Any, *, owner: str) -> Any:
        return self.none_value if value is None else super().validate(value, owner=owner)


class _DtypeParam(Param):
    """A dtype parameter given as a name or a dtype object (Optax's ``dtype_momentum=jnp.float32``),
    kept as its name; an array passes unchecked and is ignored (``optax.inject_hyperparams`` reads a
    dtype, being callable, as a schedule of the step count)."""

    def validate(self, value: Any, *, owner: str) -> Any:
        if value is None or (hasattr(value, "shape") and not isinstance(value, type)):
            return value
        try:
            import numpy as np

            name = np.dtype(value).name
        except TypeError:
            raise self._error(value, owner) from None
        if name not in ("float32", "float64"):
            raise self._error(value, owner)
        return name

    def describe(self) -> str:
        return "a dtype: 'float32' or 'float64' (or the dtype object), or None"


def factor_axes(
    shape: tuple[int, ...], *, factored_axes: str, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """``(d1, d0)``: the row statistics average over axis ``d0``, the column ones over ``d1``.

    ``None`` keeps a full second moment: vectors and scalars, and tensors whose second-largest
    factored axis is shorter than ``min_dim_size_to_factor``. ``"last_two"`` factors the last two
    axes (paper, PyTorch, Keras), ``"largest_two"`` the two longest ones (Optax).
    """
    if len(shape) < 2:
        return None
    if factored_axes == "largest_two":
        order = sorted(range(len(shape)), key=lambda i: shape[i])  # stable, like np.argsort here
        d1, d0 = order[-2], order[-1]
    else:
        d1, d0 = len(shape) - 2, len(shape) - 1
    return None if min(shape[d1], shape[d0]) < min_dim_size_to_factor else (d1, d0)


def _axes(param: Any, hyper: dict[str, Any]) -> tuple[int, int] | None:
    if not hyper.get("factored", True):  # Optax's factored=False: a full second moment everywhere
        return None
    return factor_axes(
        tuple(param.shape),
        factored_axes=hyper.get("factored_axes", "last_two"),
        min_dim_size_to_factor=hyper.get("min_dim_size_to_factor", 0),
    )


def adafactor_init(param: Any, /, *, xp: Any, **hyper: Any) -> dict[str, Any]:
    """Row and column moments for factored tensors (``v`` a 0-d placeholder), else a full ``v``.

    Every tensor gets the same three slots so that adapters can declare them up front; the unused
    ones are 0-d zeros.
    """
    empty = xp.zeros((), dtype=param.dtype)
    first = {"m": xp.zeros_like(param)} if hyper.get("momentum") is not None else {}  # Optax's momentum
    axes = _axes(param, hyper)
    if axes is None:
        return {"row": empty, "col": empty, "v": xp.zeros_like(param), **first}
    shape = tuple(param.shape)
    d1, d0 = axes
    return {
        "row": xp.zeros(shape[:d0] + shape[d0 + 1 :], dtype=param.dtype),
        "col": xp.zeros(shape[:d1] + shape[d1 + 1 :], dtype=param.dtype),
        "v": empty,
        **first,
    }


def _rms(x: Any, xp: Any) -> Any:
    return xp.sqrt(xp.mean(abs_sq(x, xp=xp)))


def _step_size(
    param: Any, step: Any, *, lr: Any, eps2: Any, relative_step: bool, scale_parameter: bool, xp: Any
) -> Any:
    r""":math:`\alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\,\min(\eta, 1/\sqrt t)`."""
    rho = lr * xp.ones_like(step)
    if relative_step:
        rho = xp.minimum(rho, 1.0 / xp.sqrt(step))
    if not scale_parameter:
        return rho
    return xp.maximum(eps2 * xp.ones_like(step), _rms(param, xp)) * rho


def _second_moment(
    grad: Any,
    state: dict[str, Any],
    beta2: Any,
    axes: tuple[int, int] | None,
    *,
    eps1: Any,
    clamp: bool,
    xp: Any,
) -> tuple[Any, dict[str, Any]]:
    """The second-moment estimate ``v`` the gradient is divided by (its square root), and new slots."""
    sq = abs_sq(grad, xp=xp) if clamp else abs_sq(grad, xp=xp) + eps1
    if axes is None:
        v = beta2 * state["v"] + (1.0 - beta2) * sq
        return v, {**state, "v": v}
    d1, d0 = axes
    row = beta2 * state["row"] + (1.0 - beta2) * xp.mean(sq, axis=d0)
    col = beta2 * state["col"] + (1.0 - beta2) * xp.mean(sq, axis=d1)
    row_mean = xp.mean(row, axis=d1 if d1 < d0 else d1 - 1, keepdims=True)
    if clamp:
        row_mean = xp.clip(row_mean, min=eps1)
    v = xp.expand_dims(row / row_mean, axis=d0) * xp.expand_dims(col, axis=d1)
    return v, {**state, "row": row, "col": col}


def _decay(step: Any, beta2_decay: Any, *, dtype: str | None, xp: Any) -> Any:
    r""":math:`\hat\beta_{2t} = 1 - t^{c}`, or evaluated in ``dtype`` (Optax: float32).

    In ``dtype``, the exponent and the power are rounded to it and ``1 - t^c`` is taken there. The
    power itself is computed accurately and then rounded: each library's own float32 ``pow``
    differs in the last bit (XLA, PyTorch), while the rounded accurate power agrees with all of them
    after the subtraction.
    """
    if dtype is None:
        return 1.0 - step**beta2_decay
    low = getattr(xp, dtype)
    exponent = xp.astype(xp.astype(beta2_decay * xp.ones_like(step), low), step.dtype)
    return xp.astype(1.0 - xp.astype(step**exponent, low), step.dtype)


def _rounded(x: Any, dtype: Any, *, xp: Any) -> Any:
    """``x`` rounded through ``dtype`` ("float32": Optax's float32 momentum accumulator), or as is."""
    if isinstance(dtype, str) and dtype != dtype_name(x):
        return xp.astype(xp.astype(x, getattr(xp, dtype)), x.dtype)
    return x


def adafactor_update(
    param: Any,
    grad: Any,
    state: dict[str, Any],
    /,
    *,
    step: Any,
    xp: Any,
    lr: Any,
    beta2_decay: Any,
    eps1: Any,
    eps2: Any,
    clip_threshold: Any,
    weight_decay: Any,
    relative_step: bool,
    scale_parameter: bool,
    eps1_placement: str,
    weight_decay_mode: str = "lr_scaled",
    decay_dtype: str | None = None,
    decay_offset: Any = 0.0,
    momentum: Any = None,
    momentum_dtype: Any = None,
    **layout: Any,
) -> tuple[Any, dict[str, Any]]:
    r"""One Adafactor step (see :data:`ADAFACTOR`); ``layout`` holds the factoring options.

    .. math::
        \hat\beta_{2t} = 1 - t^{c},\quad
        R_t = \hat\beta_{2t} R_{t-1} + (1-\hat\beta_{2t})\,\mathrm{mean}_j(G_t^2 + \epsilon_1),\quad
        C_t = \hat\beta_{2t} C_{t-1} + (1-\hat\beta_{2t})\,\mathrm{mean}_i(G_t^2 + \epsilon_1),

        \hat V_t = R_t C_t / \mathrm{mean}(R_t),\quad U_t = G_t / \sqrt{\hat V_t},\quad
        \theta_t = \theta_{t-1} - \alpha_t\, U_t / \max(1, \mathrm{RMS}(U_t)/d)

    Reference: Shazeer & Stern (2018), Algorithms 4 and 5, https://arxiv.org/abs/1804.04235.

    >>> import numpy as np, lossbridge
    >>> opt, params = lossbridge.get("adafactor"), [np.full((2, 2), 0.5)]
    >>> opt.step(params, [np.full((2, 2), 3.0)])  # U = sign(G); step RMS(theta) * min(lr, 1)
    >>> params[0].round(6).tolist()
    [[0.495, 0.495], [0.495, 0.495]]
    """
    if eps1 is None:
        eps1 = float(xp.finfo(param.dtype).eps)
    t = step if is_zero(decay_offset) else step - decay_offset
    beta2 = _decay(t, beta2_decay, dtype=decay_dtype, xp=xp)
    clamp = eps1_placement == "clamp"
    v, new_state = _second_moment(grad, state, beta2, _axes(param, layout), eps1=eps1, clamp=clamp, xp=xp)
    # 'clamp' (PyTorch): V is clamped at eps1^2 before its square root; taken as max(sqrt(V), eps1),
    # equal in exact arithmetic, since eps1^2 underflows float32 for eps1 < ~1e-19 (0 / 0 otherwise)
    root = xp.clip(xp.sqrt(v), min=eps1) if clamp else xp.sqrt(v)
    u = grad / root
    if clip_threshold is not None:  # None: no update clipping (Optax's clipping_threshold=None)
        u = u / xp.maximum(xp.ones_like(step), _rms(u, xp) / clip_threshold)
    decay: Any = 0.0
    if not is_zero(weight_decay):
        decay = -(weight_decay if weight_decay_mode == "unscaled" else lr * weight_decay) * param
    scale_from = param + decay if weight_decay_mode == "lr_scaled_first" else param
    alpha = _step_size(
        scale_from,
        step,
        lr=lr,
        eps2=eps2,
        relative_step=relative_step,
        scale_parameter=scale_parameter,
        xp=xp,
    )
    step_vec = alpha * u
    if momentum is not None:  # Optax's ema(momentum, debias=False) of the scaled update, before weight decay
        m = (1.0 - momentum) * step_vec + momentum * state["m"]
        step_vec = m
        new_state = {**new_state, "m": _rounded(m, momentum_dtype, xp=xp)}
    delta = decay - step_vec
    return delta, new_state


ADAFACTOR = OptimizerSpec(
    name="adafactor",
    summary="Adafactor: Adam-like scaling with factored (row x column) second moments, "
    "relative step sizes and update clipping.",
    init=adafactor_init,
    update=adafactor_update,
    slots=("row", "col", "v", "m"),
    params=(
        OptionalParam(
            "lr",
            1e-2,
            "cap of the relative step min(lr, 1/sqrt(t)), or the step if not relative_step; None: no "
            "learning-rate factor (Optax's learning_rate=None), stored as 1",
            low=0.0,
            none_value=1.0,
        ),
        Param(
            "beta2_decay",
            -0.8,
            "exponent c of the second-moment decay beta2_t = 1 - t^c",
            high=0.0,
            high_inclusive=False,
        ),
        Param(
            "eps1",
            1e-30,
            "regularizes the squared gradient; None: machine epsilon of the dtype (PyTorch)",
            low=0.0,
            nullable=True,
        ),
        Param("eps2", 1e-3, "lower bound of the parameter RMS that scales the step", low=0.0),
        OptionalParam("clip_threshold", 1.0, "update clipping threshold d on RMS(U); None: no clipping", low=0.0,
                      low_inclusive=False),
        OptionalParam("weight_decay", 0.0, "decoupled decay: theta -= lr*weight_decay*theta; None: none, stored "
                      "as 0", low=0.0, none_value=0.0),
        Param("decay_offset", 0.0, "the decay schedule reads t - decay_offset (Optax's decay_offset, for "
              "fine-tuning from a later step; t - decay_offset must stay positive)"),
        Param("momentum", None, "decay of an exponential moving average of the scaled update, taken before "
              "the weight decay, without bias correction (Optax's momentum); None: no first moment",
              low=0.0, high=1.0, nullable=True),
        _DtypeParam("momentum_dtype", None, "round the momentum accumulator through this dtype after each "
                    "step (Optax's dtype_momentum, float32 by default); None: the parameter's dtype",
                    kind="choice", choices=("float32", "float64"), nullable=True),
        Param("factored", True, "factor the second moment of tensors with ndim >= 2 (Optax's factored); "
              "False keeps a full second moment everywhere", kind="bool", static=True),
        Param(
            "relative_step", True, "step rho_t = min(lr, 1/sqrt(t)) instead of lr", kind="bool", static=True
        ),
        Param(
            "scale_parameter", True, "multiply the step by max(eps2, RMS(theta))", kind="bool", static=True
        ),
        Param(
            "eps1_placement",
            "add",
            "'add': eps1 is added to the squared gradient (paper, Keras, Optax); 'clamp': the row "
            "mean is clamped at eps1 and V at eps1^2 (PyTorch)",
            kind="choice",
            choices=("add", "clamp"),
            static=True,
        ),
        Param(
            "weight_decay_mode",
            "lr_scaled",
            "'lr_scaled': theta -= lr*weight_decay*theta, the step size read from the undecayed theta "
            "(PyTorch); 'lr_scaled_first': the same decay applied first, the step size read from the "
            "decayed theta (Keras); 'unscaled': theta -= weight_decay*theta (Optax)",
            kind="choice",
            choices=("lr_scaled", "lr_scaled_first", "unscaled"),
            static=True,
        ),
        Param(
            "factored_axes",
            "last_two",
            "which two axes of a tensor with ndim >= 2 get row/column statistics: 'last_two' "
            "(paper, PyTorch, Keras) or 'largest_two' (Optax)",
            kind="choice",
            choices=("last_two", "largest_two"),
            static=True,
        ),
        Param(
            "min_dim_size_to_factor",
            0,
            "keep a full second moment when a factored axis is shorter than this (Optax: 128)",
            kind="int",
            low=0,
            static=True,
        ),
        Param(
            "decay_dtype",
            None,
            "compute the decay schedule 1 - t^c in this dtype (Optax: float32); None: the parameter's",
            kind="choice",
            choices=("float32",),
            nullable=True,
            static=True,
        ),
    ),
    formula=(
        r"\hat\beta_{2t} = 1 - t^{c},\ R_t = \hat\beta_{2t}R_{t-1} + (1-\hat\beta_{2t})"
        r"\mathrm{mean}_j(G_t^2+\epsilon_1),\ C_t = \hat\beta_{2t}C_{t-1} + (1-\hat\beta_{2t})"
        r"\mathrm{mean}_i(G_t^2+\epsilon_1),\ \hat V_t = \frac{R_t C_t}{\mathrm{mean}(R_t)},\ "
        r"U_t = \frac{G_t}{\sqrt{\hat V_t}},\ \theta_t = \theta_{t-1} - "
        r"\max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\min(\eta, \tfrac{1}{\sqrt t})"
        r"\frac{U_t}{\max(1, \mathrm{RMS}(U_t)/d)}"
    ),
    references=(_REFERENCE,),
    usage=(
        "Training very large models (T5, PaLM-style transformers) when Adam's per-weight second "
        "moment does not fit in memory: O(n+m) state per n x m matrix. No first moment by default."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.Adafactor",
            params={"eps1": None, "eps1_placement": "clamp"},
            notes="eps1 = machine epsilon, not added to G^2 but used as a clamp of mean(R) and "
            "(squared) of V; decay theta *= 1 - lr*wd applied after the step size is read; lr 1e-2.",
            names={"Adafactor": {}},
            kwargs={"d": "clip_threshold", "eps": ("eps1", "eps2")},
        ),
        "keras": Convention(
            "keras",
            "keras.optimizers.Adafactor",
            params={"lr": 1e-3, "weight_decay_mode": "lr_scaled_first"},
            notes="The paper's form with learning_rate 1e-3 as the relative-step cap (min(lr, 1/sqrt(t)) "
            "whatever relative_step says); the base optimizer's decoupled weight_decay runs before the "
            "step size is read; learning_rate, weight_decay and epsilon_2 are float32, epsilon_1 and "
            "the decay exponent exact.",
            hyper_dtype="float32",
            rounded=("lr", "weight_decay", "eps2"),
            names={"Adafactor": {}},
        ),
        "optax": Convention(
            "optax",
            "optax.adafactor",
            params={
                "relative_step": False,
                "weight_decay_mode": "unscaled",
                "factored_axes": "largest_two",
                "min_dim_size_to_factor": 128,
                "decay_dtype": "float32",
                "lr": 1.0,  # Optax's learning_rate=None, its default: no learning-rate factor
                "eps1": 1e-30,
                "momentum_dtype": "float32",
            },
            notes="learning_rate is the step itself (no relative step; None, the default, is no factor), "
            "times max(1e-3, RMS(theta)); factors the two largest axes only if both are >= 128 (factored=False: "
            "never); decay 1 - (t - decay_offset)^-decay_rate in float32, decay_rate being lossbridge's "
            "-beta2_decay (the keyword is negated); weight_decay_rate adds wd*theta unscaled by lr (None: "
            "none); clipping_threshold=None skips the clipping; momentum is an ema of the scaled update "
            "without bias correction, its accumulator rounded through dtype_momentum (float32). Under "
            "inject_hyperparams decay_rate becomes a float64 array and the decay is computed in float64: "
            "pass decay_dtype=None.",
            names={"adafactor": {}},
            masks={"weight_decay_mask": {"weight_decay": 0.0}},
            kwargs={
                "decay_rate": "-beta2_decay",
                "eps": "eps1",
                "multiply_by_parameter_scale": "scale_parameter",
                "clipping_threshold": "clip_threshold",
                "weight_decay_rate": "weight_decay",
                "dtype_momentum": "momentum_dtype",
            },
        ),
    },
)

SPECS = (ADAFACTOR,)
