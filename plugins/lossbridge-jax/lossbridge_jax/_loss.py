"""Losses as pure JAX functions in Optax's argument order.

``lossbridge.get("mse", backend="jax")`` returns a plain Python function
``loss(predictions, targets, *, sample_weight=None, reduction=None)`` (for losses with more than
two inputs, the spec's order, predictions first). It is built only from the spec's function and
the shared reduction layer, evaluated with ``xp = jax.numpy``, so ``jax.jit``, ``jax.grad``,
``jax.vmap`` and ``jax.checkpoint`` apply to it like to any ``optax.losses`` function; gradients
come from the spec's analytic gradient (its ``vjp``) through ``jax.custom_vjp``, so they equal the
reference at clipping boundaries too (JAX's own ``clip`` splits the gradient at a tie); a spec
without a ``vjp`` is differentiated by JAX's autodiff. Forward-mode (``jax.jvp``, ``jax.hessian``)
therefore needs a spec without ``vjp``; reverse mode, ``jit``, ``vmap`` and ``checkpoint`` work for all.

Value checks (labels in range, probabilities in [0, 1]) run only when every input is concrete;
under a transformation the inputs are tracers and only shapes and dtypes are checked, so there is
never a host round-trip inside a trace. bfloat16/float16 inputs are computed in float32 and the
loss is returned in float32 (JAX's autodiff gives input gradients in the input's own dtype).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lossbridge._bound import BoundLoss
from lossbridge._errors import InputError
from lossbridge.spec._params import REDUCTION_PARAM

__all__ = ["argument_order", "make_loss", "to_jax"]

_FOREIGN = ("torch", "tensorflow", "keras", "cupy", "mlx", "dask")
_ROLE_RANK = {"prediction": 0, "target": 1, "input": 2}


def to_jax(x: Any, name: str) -> Any:
    """``x`` as a JAX array (tracers pass through); arrays of another framework are an error."""
    if isinstance(x, jax.Array):
        return x
    module = type(x).__module__.split(".")[0]
    if module in _FOREIGN or (
        hasattr(x, "__array_namespace__") and not isinstance(x, (np.ndarray, np.generic))
    ):
        raise InputError(
            f"{name}: expected a JAX array (or NumPy array) for the jax backend, got "
            f"{type(x).__module__}.{type(x).__name__}; use backend={module!r} for {module} inputs "
            "or convert with jnp.asarray(np.asarray(x))"
        )
    return jnp.asarray(x if isinstance(x, np.ndarray) else np.asarray(x))


def argument_order(bound: BoundLoss) -> tuple[int, ...]:
    """Spec input indices in call order: predictions first, then targets, then the rest (stable)."""
    inputs = bound.spec.inputs
    return tuple(sorted(range(len(inputs)), key=lambda k: _ROLE_RANK.get(inputs[k].role, 2)))


def _is_concrete(arrays: list[Any]) -> bool:
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def _rebound(bound: BoundLoss, reduction: str | None) -> BoundLoss:
    if reduction is None or reduction == bound.reduction:
        return bound
    value = REDUCTION_PARAM.validate(reduction, owner=bound.spec.name)
    return dataclasses.replace(bound, reduction=value)


def _expand_weight(weight: Any | None, like: Any) -> Any:
    """``weight`` (shape: leading axes of ``like``) broadcast to ``like``'s shape; ones if None."""
    if weight is None:
        return jnp.ones_like(like)
    weight = jnp.reshape(weight, weight.shape + (1,) * (like.ndim - weight.ndim))
    return jnp.broadcast_to(weight.astype(like.dtype), like.shape)


def _merge(positions: list[int], diff: tuple[Any, ...], others: tuple[Any, ...]) -> list[Any]:
    """Inputs in spec order from the differentiable ones (at ``positions``) and the others."""
    out, d, o = [], iter(diff), iter(others)
    for k in range(len(diff) + len(others)):
        out.append(next(d) if k in positions else next(o))
    return out


def _other_grads(
    bound: BoundLoss, positions: list[int], residuals: tuple[Any, ...], ct: Any
) -> tuple[tuple[Any, ...], Any]:
    """Cotangents of the non-differentiable inputs (JAX autodiff; None for integers) and weights."""
    diff, others, weight = residuals
    floating = [j for j, x in enumerate(others) if jnp.issubdtype(x.dtype, jnp.floating)]

    def reduced(values: list[Any], w: Any) -> Any:
        rest = list(others)
        for j, x in zip(floating, values, strict=True):
            rest[j] = x
        return bound(jnp, *_merge(positions, diff, tuple(rest)), sample_weight=w, check_values=False)

    _, pullback = jax.vjp(reduced, [others[j] for j in floating], weight)
    g_float, g_weight = pullback(ct)
    grads: list[Any] = [None] * len(others)
    for j, g in zip(floating, g_float, strict=True):
        grads[j] = g
    return tuple(grads), g_weight


def _spec_grads(
    bound: BoundLoss, positions: list[int], residuals: tuple[Any, ...], ct: Any
) -> tuple[Any, ...]:
    """The spec's analytic gradient of the differentiable inputs for the output cotangent ``ct``."""
    diff, others, weight = residuals
    inputs = _merge(positions, diff, others)
    if bound.reduction == "none":  # d sum(ct * w * terms): fold ct into the sample weight
        _, grads = bound.value_and_grad(
            jnp, *inputs, sample_weight=_expand_weight(weight, ct) * ct, check_values=False
        )
    else:
        _, grads = bound.value_and_grad(jnp, *inputs, sample_weight=weight, check_values=False)
        grads = tuple(g * ct for g in grads)
    return tuple(g.astype(x.dtype) for g, x in zip(grads, diff, strict=True))


def _with_spec_gradient(bound: BoundLoss, inputs: list[Any], weight: Any | None) -> Any:
    """The reduced loss, differentiated by the spec's analytic ``vjp`` through ``jax.custom_vjp``.

    The differentiable inputs get the spec's gradient; float targets and the sample weight get
    JAX's autodiff of the same definition (unused cotangents are dropped under ``jax.jit``),
    integer inputs none.
    """
    positions = [k for k, i in enumerate(bound.spec.inputs) if i.differentiable]
    diff = tuple(inputs[k] for k in positions)
    others = tuple(x for k, x in enumerate(inputs) if k not in positions)

    @jax.custom_vjp
    def reduced(diff: tuple[Any, ...], others: tuple[Any, ...], w: Any) -> Any:
        return bound(jnp, *_merge(positions, diff, others), sample_weight=w, check_values=False)

    def forward(diff: tuple[Any, ...], others: tuple[Any, ...], w: Any) -> tuple[Any, tuple[Any, ...]]:
        return reduced(diff, others, w), (diff, others, w)

    def backward(residuals: tuple[Any, ...], ct: Any) -> tuple[Any, ...]:
        g_others, g_weight = _other_grads(bound, positions, residuals, ct)
        return _spec_grads(bound, positions, residuals, ct), g_others, g_weight

    reduced.defvjp(forward, backward)
    return reduced(diff, others, weight)


def make_loss(bound: BoundLoss) -> Callable[..., Any]:
    """The pure function computing ``bound`` on JAX arrays."""
    spec = bound.spec
    order = argument_order(bound)
    call_names = [spec.inputs[k].name for k in order]

    def loss(*arrays: Any, sample_weight: Any | None = None, reduction: str | None = None) -> Any:
        if len(arrays) != len(order):
            raise TypeError(
                f"{spec.name}: expected {len(order)} arrays ({', '.join(call_names)}), got {len(arrays)}"
            )
        in_spec_order: list[Any] = [None] * len(order)
        for position, k in enumerate(order):
            in_spec_order[k] = to_jax(arrays[position], call_names[position])
        weight = None if sample_weight is None else to_jax(sample_weight, "sample_weight")
        rebound = _rebound(bound, reduction)
        check = _is_concrete(in_spec_order + ([] if weight is None else [weight]))
        if spec.vjp is None:
            return rebound(jnp, *in_spec_order, sample_weight=weight, check_values=check)
        if check:  # concrete inputs: check once, eagerly, before any tracing
            rebound.prepare(jnp, tuple(in_spec_order), check_values=True)
        return _with_spec_gradient(rebound, in_spec_order, weight)

    loss.__name__ = loss.__qualname__ = spec.name
    loss.__doc__ = _docstring(bound, call_names)
    loss.spec = spec  # type: ignore[attr-defined]
    loss.bound = bound  # type: ignore[attr-defined]
    loss.argnames = tuple(call_names)  # type: ignore[attr-defined]
    return loss


def _docstring(bound: BoundLoss, call_names: list[str]) -> str:
    conv = bound.convention.framework if bound.convention else None
    return (
        f"{bound.spec.summary}\n\n"
        f"Call as ``{bound.spec.name}({', '.join(call_names)}, *, sample_weight=None, reduction=None)``; "
        f"reduction defaults to {bound.reduction!r} (convention {conv!r}).\n\n"
        f".. math:: {bound.spec.formula}\n"
    )
