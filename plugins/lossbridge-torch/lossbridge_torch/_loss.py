"""Losses as ``torch.nn.Module``: the core's call path, differentiated by the spec's one gradient.

The spec's values go through a ``torch.autograd.Function`` whose backward is the spec's ``vjp``
(the same gradient every backend uses, kinks included). Its backward is made of differentiable
torch ops on the saved inputs, so double backward and Hessian-vector products work;
``generate_vmap_rule`` makes it usable under ``torch.func.grad``/``vmap``; Dynamo traces it under
``torch.compile(fullgraph=True)``. A spec without a ``vjp`` is differentiated by torch autograd.

This module imports torch at the top; the backend imports it lazily.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from lossbridge import InputError, ParameterError
from lossbridge.bound import BoundLoss
from lossbridge.reduction import cotangent, reduce_loss
from lossbridge.spec import REDUCTION_PARAM, domain

from ._namespace import namespace

__all__ = ["TorchLoss", "spec_gradient_values"]


def _values_with_autograd(values: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...],
                          cot: torch.Tensor, wanted: list[int]) -> tuple[torch.Tensor, ...]:
    """Gradients of ``sum(cot * values)`` for the non-differentiable float inputs (torch autograd of ``fn``)."""
    with torch.enable_grad():
        leaves = [x.detach().requires_grad_(k in wanted) for k, x in enumerate(inputs)]
        return torch.autograd.grad(values(*leaves), [leaves[k] for k in wanted], cot, allow_unused=True)


def _fixed_arity(fn: Callable[..., Any], n: int) -> Callable[..., Any]:
    """``fn`` behind a signature of exactly ``n`` positional tensors.

    Dynamo binds an ``autograd.Function.forward`` declared with ``*args`` as if its first
    parameter were ``ctx``; a fixed arity traces as written.
    """
    arities: dict[int, Callable[..., Any]] = {
        1: lambda a: fn(a),
        2: lambda a, b: fn(a, b),
        3: lambda a, b, c: fn(a, b, c),
        4: lambda a, b, c, d: fn(a, b, c, d),
        5: lambda a, b, c, d, e: fn(a, b, c, d, e),
        6: lambda a, b, c, d, e, f: fn(a, b, c, d, e, f),
    }
    return arities[n]


def spec_gradient_values(bound: BoundLoss) -> Callable[..., torch.Tensor]:
    """``values(*prepared)`` for ``bound``, with the spec's ``vjp`` as torch's backward."""
    spec = bound.spec
    xp = namespace()
    # only plain functions and constants in the closures: Dynamo speculates forward and backward
    # as subgraphs and cannot carry arbitrary objects (a BoundLoss) into them
    fn, vjp, params = spec.fn, spec.vjp, bound.spec_params()
    assert fn is not None  # validated at registration

    def values(*inputs: torch.Tensor) -> torch.Tensor:
        return fn(*inputs, xp=xp, **params)

    if vjp is None or _user_callables(spec, params):
        # a user function among the parameters (torch's distance_function) is no Array API math: torch
        # autograd differentiates the values through it
        return values
    positions = [k for k, i in enumerate(spec.inputs) if i.differentiable]

    class SpecValues(torch.autograd.Function):
        generate_vmap_rule = True
        forward = staticmethod(_fixed_arity(values, len(spec.inputs)))

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            ctx.save_for_backward(*inputs)

        @staticmethod
        def backward(ctx: Any, cot: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
            inputs = ctx.saved_tensors
            grads: list[Any] = [None] * len(inputs)
            for k, g in zip(positions, vjp(*inputs, cot, xp=xp, **params), strict=True):
                grads[k] = g if ctx.needs_input_grad[k] else None
            others = [
                k for k, x in enumerate(inputs)
                if k not in positions and ctx.needs_input_grad[k] and torch.is_floating_point(x)
            ]
            if others:
                for k, g in zip(others, _values_with_autograd(values, inputs, cot, others), strict=True):
                    grads[k] = g
            return tuple(grads)

    SpecValues.__name__ = SpecValues.__qualname__ = f"SpecValues_{spec.name}"
    apply = SpecValues.apply
    # ``Function.apply`` binds the arguments against ``forward``'s signature on every call (an
    # ``inspect.signature``, tens of microseconds) because ``setup_context`` is defined; ``forward`` has a
    # fixed positional arity and no defaults, so eager calls outside functorch transforms go to the
    # C++ apply directly. Dynamo and functorch keep the public path.
    try:  # torch internals (verified on the pinned torch): without them, the public path
        direct = super(torch.autograd.Function, SpecValues).apply  # type: ignore[misc]
        functorch_active = torch._C._are_functorch_transforms_active
        is_compiling = torch.compiler.is_compiling
        from torch._functorch.utils import unwrap_dead_wrappers  # as Function.apply does
    except (AttributeError, ImportError):
        return apply

    def spec_values(*inputs: torch.Tensor) -> torch.Tensor:
        if is_compiling() or functorch_active():
            return apply(*inputs)
        return direct(*unwrap_dead_wrappers(inputs))

    return spec_values


def spec_reduced_values(bound: BoundLoss) -> Callable[..., torch.Tensor] | None:
    """``reduced(*prepared)``: the spec's values summed (``"sum"``) or averaged (``"mean"``) in ONE
    ``torch.autograd.Function`` whose backward is the spec's ``vjp``; None when the spec has no
    ``vjp`` (or a user callable among its parameters). With class weights or an ignored label the
    shared layer weighs and reduces (:meth:`BoundLoss.reduction_terms`, ``reduce_loss``, and
    ``cotangent`` for the backward, as ``value_and_grad`` does).

    The eager fast path of :class:`TorchLoss` (unweighted calls whose inputs need no rearranging, see
    ``TorchLoss._fast``). Folding the reduction into the Function saves two autograd nodes and their
    ops per call (``sum`` and the division by the count, and their backward); its backward gives the
    ``vjp`` exactly the cotangent those nodes give: the incoming gradient divided by the count (in the
    values' dtype, as :func:`lossbridge.reduction.reduce_loss` divides by), broadcast to the values'
    shape without copying. Eager only: under ``torch.compile`` or functorch the
    general path runs (the compiler fuses it anyway).
    """
    spec = bound.spec
    xp = namespace()
    fn, vjp, params = spec.fn, spec.vjp, bound.spec_params()
    assert fn is not None  # validated at registration
    if vjp is None or _user_callables(spec, params):
        return None
    positions = [k for k, i in enumerate(spec.inputs) if i.differentiable]
    rest = [k for k in range(len(spec.inputs)) if k not in positions]  # autodiff only if one needs a gradient
    mean = bound.reduction == "mean"
    weighted = bound.class_weight is not None or bound.ignore_index is not None

    def values(*inputs: torch.Tensor) -> torch.Tensor:
        return fn(*inputs, xp=xp, **params)

    class SpecReduced(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            if weighted:  # class weights, ignored labels: the shared layer's weighting and reduction
                inputs, kwargs = bound.reduction_terms(xp, inputs)
                out = values(*inputs)
                ctx.save_for_backward(*inputs)
                ctx.cot = cotangent(out, xp=xp, **kwargs)
                return reduce_loss(out, xp=xp, **kwargs)
            out = values(*inputs)
            ctx.save_for_backward(*inputs)
            ctx.shape = out.shape
            total = torch.sum(out)
            if not mean:
                return total
            ctx.count = float(out.numel())  # a Python scalar divides as the 0-d tensor of the values' dtype does
            return total / ctx.count

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
            inputs = ctx.saved_tensors
            if weighted:
                cot = ctx.cot * grad
            else:
                cot = (grad / ctx.count if mean else grad).expand(ctx.shape)
            needs = ctx.needs_input_grad
            grads: list[Any] = [None] * len(inputs)
            for k, g in zip(positions, vjp(*inputs, cot, xp=xp, **params), strict=True):
                if needs[k]:
                    grads[k] = g
            others = [k for k in rest if needs[k] and torch.is_floating_point(inputs[k])]
            if others:
                for k, g in zip(others, _values_with_autograd(values, inputs, cot, others), strict=True):
                    grads[k] = g
            return tuple(grads)

    SpecReduced.__name__ = SpecReduced.__qualname__ = f"SpecReduced_{spec.name}"
    return SpecReduced.apply


def _user_callables(spec: Any, params: dict[str, Any]) -> bool:
    """Whether a spec parameter holds a user callable (then the spec's closed-form gradient does not apply)."""
    names = {p.name for p in spec.params}
    return any(callable(v) for k, v in params.items() if k in names)


class TorchLoss(torch.nn.Module):
    """A lossbridge loss as a ``torch.nn.Module``; call it as ``loss(input, target)``.

    Arguments come prediction first, then targets, then any other input, as torch's losses take
    them. ``sample_weight`` (optional keyword) weights each sample; ``weight`` (class weights) is
    a buffer, so ``.to(device)`` moves it. Value checks run on concrete tensors in eager mode
    only (never under ``torch.compile``, ``torch.func`` or on meta tensors); ``validate=False``
    turns them off.
    """

    def __init__(
        self, bound: BoundLoss, *, validate: bool = True, backend: Any = None, check_finite: bool = False
    ) -> None:
        super().__init__()
        weight = bound.class_weight
        if weight is not None and not isinstance(weight, torch.Tensor):
            weight = torch.as_tensor(weight, dtype=torch.get_default_dtype())
        self.register_buffer("weight", weight)
        self._bound = dataclasses.replace(bound, class_weight=weight)
        self._backend = backend
        self.validate = validate
        self.check_finite = check_finite  # opt-in: refuse NaN and infinity (one host sync per input)
        # built here, not in forward: Dynamo cannot trace a class definition
        self._wrapped = {b.spec.name: spec_gradient_values(b) for b in (bound, *bound.alternatives)}
        self.__doc__ = bound.spec.summary

    # -- torch-style attributes ---------------------------------------------------------------------
    @property
    def bound(self) -> BoundLoss:
        """The resolved spec this module computes."""
        return self._bound

    @property
    def spec(self) -> Any:
        """The spec declaration (formula, parameters, references)."""
        return self._bound.spec

    @property
    def reduction(self) -> str:
        """``"mean"``, ``"sum"``, ``"none"`` or ``"batchmean"``; assignable like torch's ``loss.reduction``."""
        return self._bound.reduction

    @reduction.setter
    def reduction(self, value: str) -> None:
        checked = REDUCTION_PARAM.validate(value, owner=self.spec.name)
        if checked is None:
            raise ParameterError(f"{self.spec.name}: parameter 'reduction' expects a reduction name, got None")
        self._bound = dataclasses.replace(self._bound, reduction=checked)
        self.__dict__.pop("_fast_cache", None)
        self.__dict__.pop("_no_checks", None)
        # the spec's parameters may depend on the reduction (Reduction.mean_params: CTC's per-length mean)
        self._wrapped = {b.spec.name: spec_gradient_values(b) for b in (self._bound, *self._bound.alternatives)}

    @property
    def ignore_index(self) -> int | None:
        """The ignored label, or None."""
        return self._bound.ignore_index

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> TorchLoss:
        super()._apply(fn, *args, **kwargs)
        self._bound = dataclasses.replace(self._bound, class_weight=self.weight)
        self.__dict__.pop("_fast_cache", None)
        self.__dict__.pop("_no_checks", None)
        self._wrapped = {b.spec.name: spec_gradient_values(b) for b in (self._bound, *self._bound.alternatives)}
        return self

    # -- the computation ----------------------------------------------------------------------------
    def _wrap(self, bound: BoundLoss) -> Callable[..., torch.Tensor]:
        return self._wrapped[bound.spec.name]

    def _concrete(self, tensors: list[torch.Tensor]) -> bool:
        """Value checks need real data: eager, not compiling, no functorch, meta or fake tensors."""
        if not self.validate or torch.compiler.is_compiling():
            return False
        wrapped = torch._C._functorch.is_functorch_wrapped_tensor
        return all(not t.is_meta and (type(t) in _PLAIN or not _is_fake(t)) and not wrapped(t) for t in tensors)

    def _nothing_to_check(self) -> bool:
        """The core checks no value of any input (no checked domain, no class labels), whatever the call."""
        none = self.__dict__.get("_no_checks")
        if none is None:
            bound = self._bound
            none = self.__dict__["_no_checks"] = not bound.alternatives and _check_plan(bound) == [] and not any(
                domain(i.domain_for(bound.params)).integer for i in bound.spec.inputs
            )
        return none

    def _fused_checks_pass(self, inputs: tuple[torch.Tensor, ...]) -> bool:
        """The core's value checks of ``inputs`` (spec order) as one pass per input and ONE host sync.

        True when every checked input is valid; False when something is invalid or a check is not one
        of the fused kinds (:func:`_check_plan`), and then the caller runs the core's own checks, whose
        errors name the problem (so the errors are the core's, only the valid case is fast).
        """
        bound = self._bound.select(namespace(), inputs) if self._bound.alternatives else self._bound
        plans = self.__dict__.setdefault("_check_plans", {})
        key = (bound.spec.name, id(bound.params))
        plan = plans.get(key, False)
        if plan is False:
            plan = plans[key] = _check_plan(bound)
        if plan is None:
            return False
        if not plan:
            return True
        stats: list[torch.Tensor] = []
        bounds: list[tuple[float, float]] = []
        pred = inputs[next(k for k, i in enumerate(bound.spec.inputs) if i.differentiable)]
        for k, kind, arg in plan:
            x = inputs[k].detach()
            if x.numel() == 0:
                continue
            if kind in ("class", "padded"):
                if x.is_floating_point() or x.is_complex():  # float labels: the core also checks they are whole
                    return False
                # no masking of ignore_index: an ignored label outside [0, C) fails here, and the core's
                # check (which masks it) decides; inside [0, C) it passes either way
                classes = pred.shape[1] if arg and pred.ndim > 2 else (pred.shape[-1] if pred.ndim else 0)
                # padded class lists (multilabel margin): -1 marks the end of a sample's list
                low, high = (0.0 if kind == "class" else -1.0), float(classes - 1)
            elif not x.is_floating_point():
                return False
            elif kind in ("set", "set_per_sample"):
                x, low, high = _set_statistic(x, arg, blocks=kind == "set_per_sample")
            else:
                low, high = arg
            mn, mx = torch.aminmax(x)
            stats += [mn, mx]
            bounds += [(low, high), (low, high)]
        if not stats:
            return True
        by_dtype: dict[torch.dtype, list[int]] = {}
        for n, v in enumerate(stats):
            by_dtype.setdefault(v.dtype, []).append(n)
        order = [n for idx in by_dtype.values() for n in idx]
        parts = [torch.stack([stats[n] for n in idx]) for idx in by_dtype.values()]
        flat = parts[0] if len(parts) == 1 else torch.cat([p.to(torch.float64) for p in parts])
        values = flat.tolist()  # the one host sync
        return all(bounds[n][0] <= v <= bounds[n][1] for n, v in zip(order, values, strict=True))

    def _fast(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor | None:
        """The reduced loss through :func:`spec_reduced_values`, or None when this call needs the core's
        general path (run by the caller).

        Eligible: a ``"mean"``/``"sum"`` without ``sample_weight`` on CPU, eager (no compiling, no
        functorch), the convention's per-value reduction (no feature mean, no zero mask),
        and inputs the core's :meth:`BoundLoss.prepare` gives back unchanged (already in the compute
        dtype and layout, which is also the result dtype). That is decided once per input signature
        (shapes, dtypes, CPU or not) by running ``prepare`` itself (without value checks: the caller ran
        them), so its shape and dtype checks hold for every later call with the same signature.
        """
        if torch.compiler.is_compiling():  # never traced: the lookup would guard on every shape
            return None
        try:
            key = (id(self._bound), *((x.shape, x.dtype, x.is_cpu) for x in inputs))
        except AttributeError:  # an input that is not a tensor (an optional one left out): the general path
            return None
        cache = self.__dict__.setdefault("_fast_cache", {})
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = self._fast_plan(inputs) or False
            if len(cache) > 64:  # many signatures: forget the oldest
                del cache[next(iter(cache))]
        if hit is False or torch._C._are_functorch_transforms_active():
            return None
        return hit(*inputs)

    def _fast_plan(self, inputs: tuple[torch.Tensor, ...]) -> Callable[..., torch.Tensor] | None:
        bound = self._bound.select(namespace(), inputs) if self._bound.alternatives else self._bound
        rule = bound.rule
        if (
            bound.reduction not in ("mean", "sum") or rule.feature_mean or rule.mask_zero or rule.mean_params
            or bound.rules.native is not None
            or any(not isinstance(x, torch.Tensor) or x.device.type != "cpu" for x in inputs)
            or torch.compiler.is_compiling() or not self._concrete_any(list(inputs))
        ):
            return None
        try:
            prepared, layout = bound.prepare(namespace(), inputs, check_values=False)
        except Exception:  # the general path raises the core's error
            return None
        unchanged = all(a is b for a, b in zip(prepared, inputs, strict=True))
        if not unchanged or layout.moved or layout.time_major or layout.expanded:
            return None
        if layout.result_dtype != layout.compute_dtype:
            return None
        return spec_reduced_values(bound)

    def _concrete_any(self, tensors: list[torch.Tensor]) -> bool:
        """Plain eager tensors (no meta, fake or functorch-wrapped ones), whatever ``validate`` says."""
        wrapped = torch._C._functorch.is_functorch_wrapped_tensor
        return all(not t.is_meta and (type(t) in _PLAIN or not _is_fake(t)) and not wrapped(t) for t in tensors)

    def forward(self, *args: Any, sample_weight: Any | None = None) -> torch.Tensor:
        """The reduced loss (prediction first, then target, then any other input)."""
        backend = self._backend
        if self._bound.rules.native is not None:  # torch's CTC takes lengths as tuples of ints too
            args = tuple(torch.as_tensor(x) if isinstance(x, (list, tuple)) else x for x in args)
        names = self.__dict__.get("_arg_names") or self.__dict__.setdefault("_arg_names", self._names())
        tensors = [_tensor(x, name, k) for k, (x, name) in enumerate(zip(args, names, strict=False))]
        order = self.__dict__.get("_arg_order") or self.__dict__.setdefault(
            "_arg_order", tuple(backend.argument_order(self.spec))
        )
        if len(tensors) == len(order):  # the backend's rearrangement, with the order computed once
            ordered: list[Any] = [None] * len(order)
            for position, k in enumerate(order):
                ordered[k] = tensors[position]
            inputs = tuple(ordered)
        else:  # the backend's error
            inputs = backend.to_spec_order(self.spec, tensors)
        if sample_weight is not None:
            sample_weight = _tensor(sample_weight, "sample_weight", None)
        if self.validate and not self.check_finite and self._nothing_to_check():
            check = finite = False  # no value check applies to these inputs' domains: no need to look at them
        else:
            check = self._concrete(tensors)
            finite = self.check_finite and check
        if check and self._fused_checks_pass(inputs):
            check = False  # checked above (one host sync); the core's checks run only when something is wrong
        if finite:
            for t, name in zip((*tensors, sample_weight), (*self._names(), "sample_weight"), strict=False):
                _check_finite(t, name)
        if sample_weight is None and not check and not torch.compiler.is_compiling():  # Dynamo: the general path
            reduced = self._fast(inputs)
            if reduced is not None:
                return reduced
        device = tensors[0].device if tensors else None
        if device is None or device.type == "cpu" or torch.compiler.is_compiling():
            return self._bound.evaluate(namespace(), *inputs, sample_weight=sample_weight, check_values=check,
                                        wrap=self._wrap)
        # the spec's constants (class ranges, padding) are made without a device: make them on the
        # inputs' (meta for shape-only evaluation, as FSDP's deferred initialisation uses)
        with torch.device(device):
            return self._bound.evaluate(namespace(), *inputs, sample_weight=sample_weight, check_values=check,
                                        wrap=self._wrap)

    def _names(self) -> list[str]:
        native = self._bound.rules.native
        if native is not None:  # the convention's own argument names (torch's CTC: log_probs, targets, ...)
            return [native.slots[k] or self.spec.inputs[k].name for k in self._backend.argument_order(self.spec)]
        return [self.spec.inputs[k].name for k in self._backend.argument_order(self.spec)]

    def extra_repr(self) -> str:
        conv = self._bound.convention.framework if self._bound.convention else None
        return f"spec={self.spec.name!r}, convention={conv!r}, reduction={self.reduction!r}"


#: tensor types that are never fake (a FakeTensor is a subclass)
_PLAIN = (torch.Tensor, torch.nn.Parameter)
#: the core's range checks (lossbridge.spec._domain) of the built-in domains, as (low, high) bounds
_RANGES = {
    "probability": (0.0, 1.0), "soft_binary": (0.0, 1.0), "positive": (0.0, float("inf")),
    "simplex": (0.0, 1.0),  # its check is the [0, 1] range (rows summing to 1 are not checked)
    "count": (0.0, float("inf")),  # lossbridge.spec._probabilistic: x >= 0
    "broadcast_positive": (0.0, float("inf")),  # the positive domain's check
    "log_simplex": (-float("inf"), 0.0),  # log-probabilities: x <= 0
    "log_probability": (-float("inf"), 0.0),  # lossbridge.spec._classification (NLLLoss): x <= 0
}
#: the core's set checks: the allowed values
_SETS = {
    "binary": (0.0, 1.0), "sign": (-1.0, 1.0), "binary_or_sign": (-1.0, 0.0, 1.0),
    "sign_per_sample": (-1.0, 1.0),  # the sign domain's check, one label per sample
}


#: elements per temporary of the set check of a per-sample input (one label per row, as cosine_embedding's
#: y): 64 KB of float32, below glibc's 128 KB mmap threshold. A freed mmapped temporary raises that threshold
#: to its size, after which the loss kernel's own temporaries of that size (its per-row sums, also one per
#: sample) come from the heap and stay resident: measured, one 4 MB |y| temporary at cosine_embedding 1e7
#: (1e6 x 10) gave a peak of 223.8 MB against torch's 216.1 MB in three runs of four. Per-sample inputs
#: are 1/D of the prediction, so the block loop is amortized (0.7 ms at 1e6 labels); a same-shape input
#: (margin_ranking's y, multilabel targets) takes one temporary of its size: blocks there cost 15-60% at
#: 1e5/1e6 elements (measured 1.3-1.7x against 1.1-1.3x).
_SET_BLOCK = 1 << 14


def _set_terms(x: torch.Tensor, values: tuple[float, ...]) -> tuple[torch.Tensor, float, float]:
    if values == (-1.0, 1.0):
        return torch.abs(x), 1.0, 1.0
    if values == (0.0, 1.0):
        return torch.sub(x, 1.0).mul_(x), 0.0, 0.0
    if values == (-1.0, 0.0, 1.0):
        return torch.mul(x, x).sub_(1.0).mul_(x), 0.0, 0.0
    product = torch.sub(x, values[0])
    for v in values[1:]:
        product.mul_(x - v)
    return product, 0.0, 0.0


def _set_statistic(x: torch.Tensor, allowed: tuple[float, ...], *, blocks: bool = False
                   ) -> tuple[torch.Tensor, float, float]:
    """``(t, low, high)``: ``x`` holds only the ``allowed`` values exactly when ``low <= t <= high`` everywhere.

    One temporary, written in place, where the former product ``(x - a)(x - b)`` made three of ``x``'s
    size (torch.isin: ~10x slower on CPU, 27 ms at 1e6 elements); with ``blocks`` (a per-sample input) a
    contiguous ``x`` is taken :data:`_SET_BLOCK` elements at a time and ``t`` is the blocks' minima and
    maxima.
    NaN gives NaN and fails; infinity fails.

    * ``{-1, 1}``: ``|x|`` in ``[1, 1]`` (abs is exact);
    * ``{0, 1}``: ``(x - 1) x`` in ``[0, 0]``: a product of two nonzero floats is never 0 here (for tiny
      ``x`` it is about ``-x``, which does not underflow);
    * ``{-1, 0, 1}``: ``(x^2 - 1) x`` in ``[0, 0]``: ``x^2`` rounds to exactly 1 only at ``x = +-1`` (the
      neighbours of 1 square to other floats), a tiny ``x`` gives about ``-x``;
    * any other set: the product of ``(x - v)`` over the values, accumulated in place.
    """
    values = tuple(sorted(allowed))
    if not blocks or x.numel() <= _SET_BLOCK or not x.is_contiguous():
        return _set_terms(x, values)
    bounds: list[torch.Tensor] = []
    low = high = 0.0
    for block in x.view(-1).split(_SET_BLOCK):
        t, low, high = _set_terms(block, values)
        bounds.extend(torch.aminmax(t))
    return torch.stack(bounds), low, high


def _check_plan(bound: BoundLoss) -> list[tuple[int, str, Any]] | None:
    """What the core checks (``prepare_inputs``), per spec input: ``(index, kind, argument)``.

    The same condition as the core (a domain with a check, integer or ``rules.check_ranges``);
    None when an input's check is not one of the built-in kinds known here (then the core checks).
    """
    rules = bound.rules
    if rules.native is not None or rules.match_rank:
        return None
    plan: list[tuple[int, str, Any]] = []
    for k, decl in enumerate(bound.spec.inputs):
        dom = domain(decl.domain_for(bound.params))
        if dom.check is None or not (dom.integer or rules.check_ranges):
            continue
        if dom.name in _RANGES:
            plan.append((k, "range", _RANGES[dom.name]))
        elif dom.name in _SETS:
            plan.append((k, "set_per_sample" if dom.shape == "batch" else "set", _SETS[dom.name]))
        elif dom.name == "class_index":  # argument: the class axis is 1 for inputs of more than 2 dims
            plan.append((k, "class", rules.class_axis == 1 and not bound.spec.elementwise))
        elif dom.name == "padded_class_indices":  # the core's check: labels in [-1, C), C the last axis
            plan.append((k, "padded", False))
        else:
            return None
    return plan


def _check_finite(t: Any, name: str) -> None:
    if not isinstance(t, torch.Tensor) or not torch.is_floating_point(t):
        return
    bad = ~torch.isfinite(t.detach())
    if bool(bad.any()):
        index = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise InputError(
            f"{name}: expected finite values (check_finite=True), got {float(t.detach()[index])} at index {index} "
            f"({int(bad.sum())} non-finite of {t.numel()})"
        )


def _is_fake(t: torch.Tensor) -> bool:
    """A FakeTensor (torch.export, FakeTensorMode): shapes and dtypes only, no values to check."""
    try:
        from torch._subclasses.fake_tensor import is_fake
    except ImportError:  # pragma: no cover - older torch
        return False
    return bool(is_fake(t))


def _tensor(x: Any, name: str, position: int | None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    where = f" (argument {position + 1})" if position is not None else ""
    kind = f"{type(x).__module__}.{type(x).__name__}"
    raise InputError(
        f"{name}{where}: expected a torch.Tensor for the torch backend, got {kind}; inputs of two "
        "frameworks cannot be mixed in one call (convert with torch.as_tensor)"
    )
