"""Losses as pure JAX functions in Optax's argument order.

``lossbridge.get("mse", backend="jax")`` returns a plain Python function
``loss(predictions, targets, *, sample_weight=None, reduction=None)`` (for losses with more than
two inputs, the spec's order, predictions first). It is built only from the spec's function and
the core's shared call path, evaluated with ``xp = jax.numpy``, so ``jax.jit``, ``jax.grad``,
``jax.vmap`` and ``jax.checkpoint`` apply to it like to any ``optax.losses`` function. Gradients
come from the spec's one gradient (its ``vjp``) through ``jax.custom_jvp`` (see
:func:`spec_gradient_values`), so they equal every other backend's at kinks and clip edges, and
forward mode, ``jax.hessian`` and ``jax.test_util.check_grads`` work. A spec without a ``vjp`` is
differentiated by JAX's autodiff.

Value checks (labels in range, probabilities in [0, 1]) run only when every input is concrete;
under a transformation the inputs are tracers and only shapes and dtypes are checked, so there is
never a host round-trip inside a trace; ``validate=False`` turns them off. The result dtype is the
convention's (the core's input rules): float16/bfloat16 inputs are computed in float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from lossbridge.bound import BoundLoss
from lossbridge.spec import REDUCTION_PARAM

__all__ = ["make_loss", "spec_gradient_values", "to_jax"]


def to_jax(backend: Any, x: Any, name: str) -> Any:
    """``x`` as a JAX array (tracers pass through); arrays of another framework are an error."""
    if isinstance(x, jax.Array):
        return x
    backend.check_native(x, name, (np.ndarray, np.generic))
    return jnp.asarray(x if isinstance(x, np.ndarray) else np.asarray(x))


def _is_concrete(arrays: list[Any]) -> bool:
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def _rebound(bound: BoundLoss, reduction: str | None) -> BoundLoss:
    if reduction is None or reduction == bound.reduction:
        return bound
    value = REDUCTION_PARAM.validate(reduction, owner=bound.spec.name)
    return dataclasses.replace(bound, reduction=value)


def _tangent_sum(product: Any, out_ndim: int) -> Any:
    """Contract a gradient-times-tangent product onto the output: sum the axes past the output's."""
    axes = tuple(range(out_ndim, product.ndim))
    return jnp.sum(product, axis=axes) if axes else product


def spec_gradient_values(bound: BoundLoss) -> Callable[..., Any]:
    """``values(*prepared)`` for ``bound`` with the spec's one gradient as JAX's derivative rule.

    Row-local losses (each value depends on its own row) get a ``jax.custom_jvp`` whose tangent is
    the spec's per-row gradient contracted with the input tangents, so forward mode, reverse mode
    (by transposition) and ``jax.hessian`` all work. Losses that couple rows use ``jax.custom_vjp``
    (reverse mode only). Non-differentiable floating inputs (targets) are differentiated by JAX.
    """
    spec = bound.spec
    fn, vjp, params = spec.fn, spec.vjp, bound.spec_params()
    assert fn is not None  # validated at registration

    def values(*inputs: Any) -> Any:
        return fn(*inputs, xp=jnp, **params)

    if vjp is None:
        return values
    positions = [k for k, i in enumerate(spec.inputs) if i.differentiable]
    if spec.coupled:
        return _coupled(values, vjp, params, positions)

    @jax.custom_jvp
    def rule(*inputs: Any) -> Any:
        return values(*inputs)

    def jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        out = values(*primals)
        grads = vjp(*primals, jnp.ones_like(out), xp=jnp, **params)
        t_out = jnp.zeros_like(out)
        for k, g in zip(positions, grads, strict=True):
            if not isinstance(tangents[k], SymbolicZero):
                t_out = t_out + _tangent_sum(g * tangents[k], out.ndim)
        others = [k for k, t in enumerate(tangents) if k not in positions and not isinstance(t, SymbolicZero)]
        if others:
            def of_others(*xs: Any) -> Any:
                args = list(primals)
                for k, x in zip(others, xs, strict=True):
                    args[k] = x
                return values(*args)

            _, t_rest = jax.jvp(of_others, [primals[k] for k in others], [tangents[k] for k in others])
            t_out = t_out + t_rest
        return out, t_out

    rule.defjvp(jvp, symbolic_zeros=True)
    return rule


def _coupled(values: Callable[..., Any], vjp: Callable[..., Any], params: dict[str, Any],
             positions: list[int]) -> Callable[..., Any]:
    """``values`` with the spec's vjp as a ``jax.custom_vjp`` rule (losses that couple rows)."""

    @jax.custom_vjp
    def rule(*inputs: Any) -> Any:
        return values(*inputs)

    def forward(*inputs: Any) -> tuple[Any, tuple[Any, ...]]:
        return values(*inputs), inputs

    def backward(inputs: tuple[Any, ...], cot: Any) -> tuple[Any, ...]:
        grads: list[Any] = [None] * len(inputs)
        for k, g in zip(positions, vjp(*inputs, cot, xp=jnp, **params), strict=True):
            grads[k] = g
        others = [k for k, x in enumerate(inputs) if k not in positions and jnp.issubdtype(x.dtype, jnp.floating)]
        if others:
            def of_others(*xs: Any) -> Any:
                args = list(inputs)
                for k, x in zip(others, xs, strict=True):
                    args[k] = x
                return values(*args)

            _, pullback = jax.vjp(of_others, *[inputs[k] for k in others])
            for k, g in zip(others, pullback(cot), strict=True):
                grads[k] = g
        return tuple(
            g if g is not None else (jnp.zeros_like(x) if jnp.issubdtype(x.dtype, jnp.floating)
                                     else np.zeros(x.shape, dtype=jax.dtypes.float0))
            for g, x in zip(grads, inputs, strict=True)
        )

    rule.defvjp(forward, backward)
    return rule


def make_loss(bound: BoundLoss, backend: Any, *, validate: bool = True) -> Callable[..., Any]:
    """The pure function computing ``bound`` on JAX arrays (Optax's argument order)."""
    spec = bound.spec
    order = backend.argument_order(spec)
    call_names = [spec.inputs[k].name for k in order]
    wrapped = {b.spec.name: spec_gradient_values(b) for b in (bound, *bound.alternatives)}

    def loss(
        *arrays: Any, sample_weight: Any | None = None, reduction: str | None = None, validate: bool = validate
    ) -> Any:
        converted = [
            to_jax(backend, x, call_names[k] if k < len(call_names) else "input") for k, x in enumerate(arrays)
        ]
        in_spec_order = backend.to_spec_order(spec, converted)
        weight = None if sample_weight is None else to_jax(backend, sample_weight, "sample_weight")
        check = validate and _is_concrete(list(in_spec_order) + ([] if weight is None else [weight]))
        return _rebound(bound, reduction).evaluate(
            jnp, *in_spec_order, sample_weight=weight, check_values=check, wrap=lambda b: wrapped[b.spec.name]
        )

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
