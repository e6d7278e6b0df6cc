"""Array API building blocks the loss specs share: stable logs, softmax, one-hot, smoothing.

Every helper takes the namespace ``xp`` as a keyword, uses only functions of the Array API standard
and never branches on array values, so the specs built from them trace under ``jax.jit``,
``tf.function(jit_compile=True)`` and ``torch.compile(fullgraph=True)``. Each forward helper that a
vjp needs has its derivative next to it, so a formula and its gradient live side by side.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "floored_log",
    "floored_log_grad",
    "hinge_part",
    "hinge_part_grad",
    "log_sigmoid",
    "log_softmax",
    "one_hot",
    "same_position",
    "sigmoid",
    "smooth_binary",
    "smooth_categorical",
    "softmax",
]

#: PyTorch's ``BCELoss`` floor for ``log p``; lossbridge's default on probabilities.
DEFAULT_LOG_FLOOR = -100.0


def floored_log(p: Any, floor: float, *, xp: Any) -> Any:
    r"""``max(log p, floor)``, with exact zeros mapped to ``floor`` without evaluating ``log 0``.

    .. math:: \operatorname{flog}(p) = \max(\log p, f)
    """
    positive = p > 0
    safe = xp.where(positive, p, xp.ones_like(p))
    return xp.clip(xp.where(positive, xp.log(safe), xp.full_like(p, floor)), min=floor)


def floored_log_grad(p: Any, floor: float, *, xp: Any) -> Any:
    """d floored_log / dp: ``1/p`` where ``log p > floor``, else 0 (the floor is flat)."""
    above = floored_log(p, floor, xp=xp) > floor
    safe = xp.where(above, p, xp.ones_like(p))
    return xp.where(above, 1.0 / safe, xp.zeros_like(p))


def log_sigmoid(x: Any, *, xp: Any) -> Any:
    r"""``log σ(x) = -log(1 + e^{-x})``, stable for any finite ``x``."""
    return -xp.logaddexp(xp.zeros_like(x), -x)


def sigmoid(x: Any, *, xp: Any) -> Any:
    r"""``σ(x) = 1 / (1 + e^{-x})`` without overflow for large ``|x|``."""
    return xp.exp(log_sigmoid(x, xp=xp))


def log_softmax(x: Any, *, xp: Any) -> Any:
    r"""Log-softmax over the last axis with the max subtracted (log-sum-exp trick).

    An empty last axis (no classes) gives the empty result, as ``jax.nn.log_softmax`` and
    ``torch.log_softmax`` do (a maximum over it has no identity)."""
    if x.shape[-1] == 0:
        return x
    shifted = x - xp.max(x, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def softmax(x: Any, *, xp: Any) -> Any:
    """Softmax over the last axis."""
    return xp.exp(log_softmax(x, xp=xp))


def one_hot(labels: Any, n_classes: int, dtype: Any, *, xp: Any) -> Any:
    """Rows of ``n_classes`` with a 1 at each integer label (shape ``labels.shape + (n_classes,)``)."""
    classes = xp.arange(n_classes, dtype=labels.dtype)
    return xp.astype(classes == xp.expand_dims(labels, axis=-1), dtype)


def smooth_binary(y: Any, label_smoothing: Any) -> Any:
    r"""Keras's binary label smoothing, towards 1/2: :math:`y (1 - \epsilon) + \epsilon / 2`."""
    return y * (1.0 - label_smoothing) + 0.5 * label_smoothing


def smooth_categorical(y: Any, label_smoothing: Any) -> Any:
    r"""Label smoothing towards uniform over the last axis: :math:`(1 - \epsilon) y + \epsilon / C`."""
    return y * (1.0 - label_smoothing) + label_smoothing / y.shape[-1]


def hinge_part(margin: Any, *, xp: Any) -> Any:
    """``max(margin, 0)``, the positive part shared by every hinge loss."""
    return xp.maximum(margin, xp.zeros_like(margin))


def hinge_part_grad(margin: Any, kink_gradient: Any, *, xp: Any) -> Any:
    """d max(margin, 0) / d margin: 1 above 0, 0 below, ``kink_gradient`` exactly at 0.

    The share at the corner is a convention: 0 (lossbridge), 1 (PyTorch's ``clamp_min`` and
    TensorFlow's ``maximum`` pass it), 0.5 (``jax.numpy.maximum`` splits a tie).
    """
    one, zero = xp.ones_like(margin), xp.zeros_like(margin)
    return xp.where(margin > 0, one, xp.where(margin == 0, zero + kink_gradient, zero))


def same_position(x: Any, *, xp: Any) -> Any:
    """The boolean identity over the last axis of ``x``: ``(..., n, n)``, true where ``i == j``.

    ``xp.eye(n)`` needs ``n`` as a Python int, which a batch axis traced with an unknown size
    (``None`` inside ``tf.function``, as ``model.fit`` traces a loss) does not have; positions
    counted by a running sum of ones need no size.
    """
    position = xp.cumulative_sum(xp.ones_like(x, dtype=xp.int32), axis=-1)
    return xp.expand_dims(position, axis=-1) == xp.expand_dims(position, axis=-2)


def abs_sq(x: Any, *, xp: Any) -> Any:
    r"""The squared modulus :math:`|x|^2`: ``x * x`` for real ``x``, :math:`\operatorname{Re}(\bar x x)` for complex.

    Optimizers' second moments square the gradient with it, so complex parameters get real,
    non-negative moments as Optax's ``numerics.abs_sq`` gives them. The branch is on the static
    dtype, never on values, and real inputs compute exactly ``x * x``.
    """
    if xp.isdtype(x.dtype, "complex floating"):
        return xp.real(xp.conj(x) * x)
    return x * x


def scaled_norm(x: Any, *, xp: Any) -> Any:
    r"""The Euclidean norm of all of ``x`` as :math:`m\sqrt{\sum_i |x_i / m|^2}`, :math:`m = \max_i |x_i|`.

    Equal to :math:`\sqrt{\sum_i |x_i|^2}` in exact arithmetic, but the squares neither underflow
    (float32 elements below ~1e-19, whose plain norm is 0) nor overflow (above ~1e19): trust
    ratios (LAMB, LARS) divide by it. An all-zero (or empty) ``x`` has norm 0.

    Real ``x`` narrower than float64 (float32, float16, bfloat16) in a namespace that has float64 is
    summed there instead, :math:`\sqrt{\sum_i x_i^2}` rounded back to ``x``'s dtype: its squares are
    exact and in range in float64 (the same guarantee, and a more accurate sum) with one reduction
    instead of a maximum, its NaN guard and a sum. float64 (and a namespace without float64, such as
    JAX without x64) keeps the scaled form.
    """
    if any(d == 0 for d in x.shape):  # static: a zero-size tensor has no maximum
        return xp.sqrt(xp.sum(abs_sq(x, xp=xp)))
    wide = _float64_for(x, xp=xp)
    if wide is not None:
        w = xp.astype(x, wide)
        return xp.astype(xp.sqrt(xp.sum(w * w)), x.dtype)
    m = xp.max(xp.abs(x))
    safe = xp.where(m > 0, m, xp.ones_like(m))
    return m * xp.sqrt(xp.sum(abs_sq(x / safe, xp=xp)))


def hinge_part_slope(margin: Any, kink_gradient: Any, *, xp: Any) -> Any:
    """:func:`hinge_part_grad` as arithmetic on 0/1 masks instead of a chain of selects.

    ``[margin > 0] + kink_gradient * [margin == 0]``: the same values (NaN gives 0 as there), with no
    materialized ones/zeros and no ``where`` (a select is the slowest elementwise kernel on torch's
    CPU backend, ~8x a multiplication); the second term is skipped for a literal Python 0.
    """
    above = xp.astype(margin > 0, margin.dtype)
    if isinstance(kink_gradient, (int, float)) and kink_gradient == 0:
        return above
    return above + kink_gradient * xp.astype(margin == 0, margin.dtype)


def _float64_for(x: Any, *, xp: Any) -> Any:
    """``xp.float64`` for a real ``x`` narrower than it when the namespace has float64, else ``None``
    (static: the dtype and the namespace's dtypes, never values; JAX without x64 lists no float64)."""
    if not xp.isdtype(x.dtype, "real floating") or xp.finfo(x.dtype).bits >= 64:
        return None
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return None
    return info().dtypes(kind="real floating").get("float64")
