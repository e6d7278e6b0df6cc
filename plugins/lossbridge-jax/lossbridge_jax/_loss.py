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
from lossbridge.errors import InputError, ParameterError
from lossbridge.spec import REDUCTION_PARAM, domain, validate_params

__all__ = ["make_loss", "spec_gradient_values", "to_jax"]


def to_jax(backend: Any, x: Any, name: str) -> Any:
    """``x`` as a JAX array (tracers pass through); arrays of another framework are an error."""
    if isinstance(x, jax.Array):
        return x
    backend.check_native(x, name, (np.ndarray, np.generic))
    return jnp.asarray(x if isinstance(x, np.ndarray) else np.asarray(x))


def _is_concrete(arrays: list[Any]) -> bool:
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def check_finite_array(x: Any, name: str) -> None:
    """The opt-in ``check_finite``: refuse NaN and infinity in a concrete floating (or complex) array,
    naming the argument and the first bad index. A tracer (under ``jax.jit``, ``vmap``, ``grad``)
    has no values: the check is skipped there (eager only; see :func:`make_loss`)."""
    if x is None or isinstance(x, jax.core.Tracer) or not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
        return
    host = np.asarray(x)
    bad = ~np.isfinite(host)
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = host[index]
        shown = complex(value) if np.iscomplexobj(host) else float(value)
        raise InputError(
            f"{name}: expected finite values (check_finite=True), got {shown} at index {index} "
            f"({int(bad.sum())} non-finite of {bad.size})"
        )


def _rebound(bound: BoundLoss, reduction: str | None) -> BoundLoss:
    """``bound`` with a per-call ``reduction=``: the shared reduction, or the spec parameter the
    convention's keywords map Optax's per-call ``reduction`` to (``dice_loss``: over classes; the
    keyword given to ``lossbridge.get`` stays the shared reduction)."""
    if reduction is None:
        return bound
    conv = bound.convention
    target = conv.kwargs.get("reduction") if conv is not None and conv.framework == "optax" else None
    if isinstance(target, str) and target != "reduction" and any(p.name == target for p in bound.spec.params):
        params = validate_params(bound.spec.params, {**bound.params, target: reduction}, owner=bound.spec.name)
        return dataclasses.replace(bound, params=params)
    if reduction == bound.reduction:
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
    Parameters given as JAX arrays (a traced ``gamma`` under ``jax.jit``) are arguments of the rule,
    not constants closed over, and are differentiated by JAX like the targets.
    """
    spec = bound.spec
    fn, vjp, params = spec.fn, spec.vjp, bound.spec_params()
    assert fn is not None  # validated at registration
    n = len(spec.inputs)
    dynamic = [k for k, v in params.items() if isinstance(v, jax.Array)]
    fixed = {k: v for k, v in params.items() if k not in dynamic}
    dyn_values = [params[k] for k in dynamic]

    def params_of(args: tuple[Any, ...]) -> dict[str, Any]:
        return {**fixed, **dict(zip(dynamic, args[n:], strict=True))} if dynamic else fixed

    def values(*args: Any) -> Any:
        return fn(*args[:n], xp=jnp, **params_of(args))

    if vjp is None:
        return _with_dynamic(values, dyn_values)

    def grads_of(args: tuple[Any, ...], cot: Any) -> tuple[Any, ...]:
        return vjp(*args[:n], cot, xp=jnp, **params_of(args))

    positions = [k for k, i in enumerate(spec.inputs) if i.differentiable]
    if spec.coupled:
        return _with_dynamic(_coupled(values, grads_of, positions), dyn_values)

    @jax.custom_jvp
    def rule(*args: Any) -> Any:
        return values(*args)

    def jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        out = values(*primals)
        grads = grads_of(primals, jnp.ones_like(out))
        t_out = jnp.zeros_like(out)
        for k, g in zip(positions, grads, strict=True):
            if not isinstance(tangents[k], SymbolicZero):
                t_out = t_out + _tangent_sum(g * tangents[k], out.ndim)
        others = [
            k for k, t in enumerate(tangents)
            if k not in positions and not isinstance(t, SymbolicZero) and jnp.issubdtype(primals[k].dtype, jnp.floating)
        ]
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
    return _with_dynamic(rule, dyn_values)


def _with_dynamic(rule: Callable[..., Any], dyn_values: list[Any]) -> Callable[..., Any]:
    """``rule`` called on the inputs with the array-valued parameters appended."""
    if not dyn_values:
        return rule
    return lambda *inputs: rule(*inputs, *dyn_values)


def _coupled(values: Callable[..., Any], grads_of: Callable[..., Any], positions: list[int]) -> Callable[..., Any]:
    """``values`` with the spec's vjp as a ``jax.custom_vjp`` rule (losses that couple rows)."""

    @jax.custom_vjp
    def rule(*inputs: Any) -> Any:
        return values(*inputs)

    def forward(*inputs: Any) -> tuple[Any, tuple[Any, ...]]:
        return values(*inputs), inputs

    def backward(inputs: tuple[Any, ...], cot: Any) -> tuple[Any, ...]:
        grads: list[Any] = [None] * len(inputs)
        for k, g in zip(positions, grads_of(inputs, cot), strict=True):
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


def _input_domain(bound: BoundLoss, k: int) -> Any:
    return domain(bound.spec.inputs[k].domain_for(bound.params))


def _has_axis(bound: BoundLoss, k: int, pred_ndim: int, x: Any) -> bool:
    """Input ``k`` carries the prediction's last axis (not a class index one rank lower)."""
    return x.ndim == pred_ndim and not (_input_domain(bound, k).integer and not bound.spec.elementwise)


def _axis_last(bound: BoundLoss, inputs: list[Any], where: Any, axis: Any, pk: int) -> tuple[list[Any], Any]:
    """Optax's ``axis=``: move that axis (axes: flattened, in order) last, like the core's class axis."""
    pred = inputs[pk]
    nd = pred.ndim
    if axis is None:
        axes = tuple(range(nd))
    elif isinstance(axis, int):
        axes = (axis % nd,) if nd else ()
    else:
        axes = tuple(a % nd for a in axis)
    if axes == (nd - 1,) or nd == 0:
        return inputs, where
    rest = tuple(a for a in range(nd) if a not in axes)

    def move(x: Any) -> Any:
        x = jnp.transpose(x, rest + axes)
        return jnp.reshape(x, (*x.shape[: len(rest)], -1))

    moved = [move(x) if x is not None and _has_axis(bound, k, nd, x) else x for k, x in enumerate(inputs)]
    if where is not None:
        where = move(jnp.broadcast_to(where, pred.shape) if where.ndim == nd else
                     jnp.broadcast_to(jnp.expand_dims(where, axes), pred.shape))
    return moved, where


def _arrays_for_spec(bound: BoundLoss, arrays: list[Any], pk: int) -> list[Any]:
    """Optax's input forms: a missing regression target means zeros, boolean and integer targets of
    a floating domain are cast to the prediction's dtype, boolean class indices to integers."""
    pred = arrays[pk]
    out = list(arrays)
    for k, x in enumerate(arrays):
        if k == pk:
            continue
        dom = _input_domain(bound, k)
        if x is None:
            if bound.spec.inputs[k].role != "target" or dom.integer:
                raise ParameterError(f"{bound.spec.name}: {bound.spec.inputs[k].name} is required")
            out[k] = jnp.zeros_like(pred)
        elif dom.integer and x.dtype == jnp.bool_:
            out[k] = x.astype(jnp.int32)
        elif not dom.integer and not jnp.issubdtype(x.dtype, jnp.floating) and jnp.issubdtype(pred.dtype, jnp.floating):
            out[k] = x.astype(pred.dtype)
    return out


_UNSET: Any = object()


def _reduction_of(reduce_fn: Any) -> tuple[str, Callable[..., Any] | None]:
    """Optax's ``reduce_fn`` as a reduction name, and the function to apply to unreduced values
    when it is not one of ``jnp.mean``, ``jnp.sum``, ``None``."""
    if reduce_fn is None:
        return "none", None
    if reduce_fn is jnp.mean or reduce_fn is np.mean:
        return "mean", None
    if reduce_fn is jnp.sum or reduce_fn is np.sum:
        return "sum", None
    if callable(reduce_fn):
        return "none", reduce_fn
    raise ParameterError(f"reduce_fn: expected a function (jnp.mean, jnp.sum) or None, got {reduce_fn!r}")


def make_loss(
    bound: BoundLoss, backend: Any, *, validate: bool = True, check_finite: bool = False
) -> Callable[..., Any]:
    """The pure function computing ``bound`` on JAX arrays (Optax's argument order).

    Besides ``sample_weight`` and ``reduction`` it takes Optax's per-call keywords: ``axis=`` (the
    axis, or axes, the spec's last axis is read from: moved last, as the core moves torch's class
    axis), ``where=`` (a mask of valid elements: masked ones count for nothing, as the spec's
    ``masking`` says, applied by the core's :meth:`~lossbridge.bound.BoundLoss.mask_inputs`),
    ``weights=`` (per-item weights where the spec declares them, Optax's ranking losses; otherwise
    per-value weights, Optax's name for ``sample_weight``) and ``reduce_fn=`` (Optax's ranking
    reduction: ``jnp.mean``, ``jnp.sum``, ``None`` are the reductions ``"mean"``, ``"sum"``,
    ``"none"``; another function is applied to the unreduced values). Scalar (0-d) inputs of
    elementwise specs are computed as one element and give a scalar.

    ``check_finite=True`` refuses NaN and infinity in the inputs and weights with an
    :class:`~lossbridge.errors.InputError` naming the argument and the first bad index (one host
    transfer per input; off by default, at no cost). It checks concrete arrays only: under
    ``jax.jit`` (and ``vmap``/``grad``) the inputs are tracers without values and it is skipped;
    there ``jax.config.update("jax_debug_nans", True)`` or ``jax.experimental.checkify`` catch NaN.
    """
    spec = bound.spec
    order = backend.argument_order(spec)
    call_names = [spec.inputs[k].name for k in order]
    wrapped: dict[tuple[str, Any], Callable[..., Any]] = {
        (b.spec.name, None): spec_gradient_values(b) for b in (bound, *bound.alternatives)
    }

    def wrap_for(reduction: str | None) -> Callable[[BoundLoss], Callable[..., Any]]:
        """The values functions; a per-call reduction that sets a spec parameter needs its own."""
        def wrap(b: BoundLoss) -> Callable[..., Any]:
            same = any(b.params is a.params for a in (bound, *bound.alternatives))
            key = (b.spec.name, None if same else reduction)
            if key not in wrapped:
                wrapped[key] = spec_gradient_values(b)
            return wrapped[key]

        return wrap
    pk = next(k for k, i in enumerate(spec.inputs) if i.differentiable)

    def loss(
        *arrays: Any,
        sample_weight: Any | None = None,
        reduction: str | None = None,
        validate: bool = validate,
        axis: Any = -1,
        where: Any | None = None,
        weights: Any | None = None,
        reduce_fn: Any = _UNSET,
    ) -> Any:
        if reduce_fn is not _UNSET:
            if reduction is not None:
                raise ParameterError(f"{spec.name}: give reduce_fn= or reduction=, not both")
            reduction, reducer = _reduction_of(reduce_fn)
        else:
            reducer = None
        if len(arrays) < len(call_names):  # trailing optional targets left out
            arrays = (*arrays, *[None] * (len(call_names) - len(arrays)))
        converted = [
            None if x is None else to_jax(backend, x, call_names[k] if k < len(call_names) else "input")
            for k, x in enumerate(arrays)
        ]
        inputs = _arrays_for_spec(bound, list(backend.to_spec_order(spec, converted)), pk)
        item_weights = None
        if weights is not None:
            if sample_weight is not None:
                raise ParameterError(f"{spec.name}: give weights= or sample_weight=, not both")
            if bound.masking is not None and bound.masking.item_weights is not None:
                item_weights = to_jax(backend, weights, "weights")
            else:
                sample_weight = weights
        weight = None if sample_weight is None else to_jax(backend, sample_weight, "sample_weight")
        mask = None if where is None else to_jax(backend, where, "where")
        if check_finite:
            for k, x in enumerate(converted):
                check_finite_array(x, call_names[k] if k < len(call_names) else "input")
            check_finite_array(weight, "weights" if weights is not None else "sample_weight")
            check_finite_array(item_weights, "weights")
        scalar = inputs[pk].ndim == 0
        if scalar:
            if not spec.elementwise:
                raise ParameterError(f"{spec.name}: scalar inputs need a last axis for this spec")
            inputs = [None if x is None else jnp.reshape(x, (1,)) if x.ndim == 0 else x for x in inputs]
        if axis != -1 and bound.consumes_last_axis:
            inputs, mask = _axis_last(bound, inputs, mask, axis, pk)
        chosen = bound.select(jnp, tuple(inputs))
        keep = None
        if mask is not None:
            inputs, keep = chosen.mask_inputs(jnp, tuple(inputs), mask)
        if item_weights is not None:
            inputs, _ = chosen.weigh_items(jnp, tuple(inputs), item_weights)
        check = validate and _is_concrete(list(inputs) + ([] if weight is None else [weight]))
        out = _rebound(bound, reduction).evaluate(
            jnp, *inputs, sample_weight=weight, check_values=check, wrap=wrap_for(reduction), keep=keep
        )
        if reducer is not None:
            out = reducer(out) if keep is None else reducer(out, where=jnp.broadcast_to(keep, out.shape))
        return jnp.reshape(out, ()) if scalar and out.ndim == 1 and out.shape[0] == 1 else out

    loss.__name__ = loss.__qualname__ = spec.name
    loss.__doc__ = _docstring(bound, call_names)
    loss.spec = spec  # type: ignore[attr-defined]
    loss.bound = bound  # type: ignore[attr-defined]
    loss.argnames = tuple(call_names)  # type: ignore[attr-defined]
    loss.check_finite = check_finite  # type: ignore[attr-defined]
    return loss


def _docstring(bound: BoundLoss, call_names: list[str]) -> str:
    conv = bound.convention.framework if bound.convention else None
    return (
        f"{bound.spec.summary}\n\n"
        f"Call as ``{bound.spec.name}({', '.join(call_names)}, *, sample_weight=None, reduction=None)``; "
        f"reduction defaults to {bound.reduction!r} (convention {conv!r}).\n\n"
        f".. math:: {bound.spec.formula}\n"
    )
