"""Verified native fast paths for losses on JAX: ``optax.losses`` kernels under ``convention="optax"``.

Registered through the override hook (``lossbridge_register_overrides``, kind ``"loss"``). A fast path,
not a second definition: :data:`NATIVE_LOSSES` says, as data, which Optax function computes which spec
under which parameter values, and the factory admits a bound loss only when

* its convention is Optax's own (``bound.convention.framework == "optax"``) and its input rules take
  Optax's own argument list (the convention's ``NativeInputs``, whose slots the entry names),
* every spec parameter is pinned to the value the kernel implements (``fixed``) or passed to it as a
  keyword (``kwargs``), with no class weights, ignored label, ``dtype=`` or ``check_finite``.

The object returned is the generic loss function's twin (same signature, ``spec``, ``bound``,
``argnames``, ``check_finite`` attributes); a call runs the kernel only when it qualifies: the four
arrays of Optax's call as JAX or NumPy arrays, with no ``sample_weight``/``weights``/``where``/``reduce_fn``
/``axis``, float32 or float64 logits ``(N, T, C)`` with ``N, T >= 1`` and ``blank < C``, floating paddings,
labels ``(N, S)`` with ``S >= 1`` (integer, or whole-number floats cast as the convention casts them) and
their paddings of the labels' shape. Every other call (and every other shape or dtype) is the generic
path, which raises the core's errors. With ``validate=True`` and concrete arrays (eager, not traced) the
core's own input rules and value checks run first (``BoundLoss.prepare``), so an invalid call raises
exactly the error the generic path raises; under a transformation (``jit``/``grad``/``vmap``) there are
no values to check, as on the generic path.

``ctc`` (``optax.losses.ctc_loss``): Optax's lattice is ``2S + 1`` states for the labels' own length
``S``, where the spec's input form pads the labels to the frame count ``T`` (``2T + 1`` states); the
value is the same forward recursion. What the call computes, exactly as the spec path does:

* the label count of a sequence is the number of its paddings equal to 0 (the core's rule), given to the
  kernel as 0/1 paddings; Optax reads the first ``L`` labels, as the core's rule does;
* a frame is skipped where its padding is ``> 0`` (the spec's test), given to the kernel as 0/1;
* whether an alignment exists is the spec's rule (``L <= T`` and labels plus repeated neighbours within
  the first ``L`` fit in ``sum(1 - logit_paddings)``), and a sequence without one gets the spec's value
  (``inf``, or 0 with ``zero_infinity``) and a zero gradient, where Optax gives a finite value of about
  ``-log_epsilon`` (its ``log(0)``) and a gradient through it;
* the kernel's ``log_epsilon`` is the spec's own finite ``log(0)`` (``-1e30``, ``LOG_ZERO`` of
  ``lossbridge.spec._sequence``), not Optax's default ``-1e5``: with ``-1e5`` the impossible paths
  weigh ``exp(-1e5)`` relative to the real ones, which shows once a sequence's loss nears ``1e5``
  (large logits); with ``-1e30`` the kernel's impossible states are as impossible as the spec's.

The gradient is JAX's autodiff through Optax's scan (not the spec's closed-form ``vjp``): for every
sequence with an alignment it is the same derivative (``softmax - posterior`` on the unpadded frames, 0
on the padded ones); a frame whose padding is not 0 gets no gradient, as the spec's ``vjp`` says, also
where the spec does not skip it (a negative padding: the logits enter the kernel through a
``stop_gradient`` there). The paddings get a zero gradient, as on the generic path (they enter only
through comparisons). ``plugins/lossbridge-jax/tests/test_native_ctc.py`` checks values and gradients
against the spec's ``fn`` and ``vjp`` called directly on NumPy in float64 at ``1e-10`` (measured
agreement ~1e-15), eagerly and under ``jax.jit``, for every reduction, at repeated labels, empty and
full-length labels, infeasible sequences, labels longer than the frames, padded frames anywhere,
paddings other than 0/1, another blank, zero_infinity, whole-number float labels, and a sequence where
Optax's default ``log_epsilon`` would give about half the spec's loss.

Measured (``jax.jit(value_and_grad)`` of the mean loss at the benchmark's 10 x 10 frames x 10 classes,
3 labels, float32): 34 top-level HLO fusions against ``optax.losses.ctc_loss``'s 30 (the extra: the
feasibility gate's three small reductions and the label count), 26,444 against 26,252 bytes of XLA
temp + output; 0.91-0.97x Optax in three benchmark runs, 1.01-1.03x in interleaved in-process A/B
medians (the spec path: 2.2x, 119 fusions, 97,116 bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lossbridge.bound import BoundLoss
from lossbridge.reduction import reduce_loss
from lossbridge.spec import REDUCTION_PARAM

__all__ = ["NATIVE_LOSSES", "NativeLoss", "native_loss_factory"]

#: the spec's finite log(0) (``LOG_ZERO`` in ``lossbridge/spec/_sequence.py``), the kernel's ``log_epsilon``
LOG_ZERO = -1e30


@dataclass(frozen=True)
class NativeLoss:
    """One Optax kernel for one spec under the Optax convention.

    ``fixed``: spec parameter -> the only value the kernel computes; ``kwargs``: the kernel's keyword ->
    the spec parameter passed to it; ``constants``: keywords always passed; ``free``: spec parameters the
    fast path applies itself (around the kernel); ``slots``: the convention's native argument list the
    kernel takes (``NativeInputs.slots``).
    """

    spec: str
    function: str  # the optax.losses function
    fixed: Mapping[str, Any] = field(default_factory=dict)
    kwargs: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    free: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()

    def keywords(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The kernel's keyword arguments for ``params``, or None when it does not compute them exactly."""
        if set(params) - (set(self.fixed) | set(self.kwargs.values()) | set(self.free)):
            return None
        for name, value in self.fixed.items():
            if name not in params or type(params[name]) is not type(value) or params[name] != value:
                return None
        out = dict(self.constants)
        for keyword, name in self.kwargs.items():
            value = params.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                return None
            out[keyword] = value
        return out


NATIVE_LOSSES: tuple[NativeLoss, ...] = (
    NativeLoss(
        "ctc", "ctc_loss",
        fixed={"from_logits": True, "normalize_by_length": False},
        kwargs={"blank_id": "blank"},
        constants={"log_epsilon": LOG_ZERO},
        free=("zero_infinity",),
        slots=("logit_paddings", "logits", "labels", "label_paddings"),
    ),
)
_BY_SPEC = {entry.spec: entry for entry in NATIVE_LOSSES}


def _match(bound: BoundLoss) -> tuple[NativeLoss, dict[str, Any]] | None:
    conv = bound.convention
    entry = _BY_SPEC.get(bound.spec.name)
    if entry is None or conv is None or conv.framework != "optax" or bound.alternatives:
        return None
    if bound.class_weight is not None or bound.ignore_index is not None or bound.dtype is not None:
        return None
    rule, native = bound.rule, bound.rules.native
    if rule.feature_mean or rule.mask_zero or rule.mean_params or native is None or native.slots != entry.slots:
        return None
    keywords = entry.keywords(dict(bound.params))
    return None if keywords is None else (entry, keywords)


def native_loss_factory(spec_name: str) -> Callable[..., Any]:
    """The override factory for ``spec_name``: the fast loss function, or None (the generic function)."""

    def factory(bound: BoundLoss, *, validate: bool = True, check_finite: bool = False) -> Any:
        found = _match(bound)
        if found is None or check_finite:
            return None
        from ._backend import JaxBackend
        from ._loss import make_loss

        backend = JaxBackend()
        generic = make_loss(bound, backend, validate=validate, check_finite=False)
        _, keywords = found
        return _ctc_loss(generic, bound, backend, keywords, validate)

    factory.__name__ = f"native_{spec_name}"
    return factory


#: the jitted kernels, by their static arguments (one compilation per shape, shared by every loss object)
_KERNELS: dict[tuple[Any, ...], Callable[..., Any]] = {}


def _ctc_kernel(keywords: dict[str, Any], zero_infinity: bool) -> Callable[..., Any]:
    """``optax.losses.ctc_loss`` with the spec's label count, frame skips and infeasible sequences: the
    per-sequence values (jitted; the shared reduction is applied by the caller)."""
    key = (tuple(sorted(keywords.items())), zero_infinity)
    found = _KERNELS.get(key)
    if found is not None:
        return found
    import jax
    import jax.numpy as jnp
    import optax

    @jax.jit
    def kernel(logits: Any, logit_paddings: Any, labels: Any, label_paddings: Any) -> Any:
        dtype = logits.dtype
        frames, size = logits.shape[1], labels.shape[1]
        if jnp.issubdtype(labels.dtype, jnp.floating):  # the convention's cast of whole-number float labels
            labels = labels.astype(jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
        frame_pad = logit_paddings.astype(dtype)  # the core casts the paddings to the compute dtype
        kept = label_paddings == 0  # the core's label count: paddings equal to 0
        count = jnp.sum(kept, axis=-1)
        # the spec's rule: labels plus repeated neighbours (within the first `count`) fit the unpadded frames
        repeats = (labels[:, 1:] == labels[:, :-1]) & (jnp.arange(1, size) < count[:, None])
        need = (count + jnp.sum(repeats, axis=-1)).astype(dtype)
        feasible = (count <= frames) & (need <= jnp.sum(1.0 - frame_pad, axis=-1))
        # the spec's vjp gives no gradient on a frame whose padding is not 0, also one it does not skip (< 0)
        used = (frame_pad == 0)[:, :, None]
        scores = jnp.where(used, logits, jax.lax.stop_gradient(logits))
        nll = optax.losses.ctc_loss(
            scores, (frame_pad > 0).astype(dtype), labels, (~kept).astype(dtype), **keywords
        ).astype(dtype)
        return jnp.where(feasible, nll, jnp.zeros_like(nll) if zero_infinity else jnp.full_like(nll, jnp.inf))

    _KERNELS[key] = kernel
    return kernel


def _ctc_loss(generic: Callable[..., Any], bound: BoundLoss, backend: Any, keywords: dict[str, Any],
              validate: bool) -> Callable[..., Any]:
    """The loss function: ``generic``'s signature; qualifying calls run Optax's CTC kernel."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    kernel = _ctc_kernel(keywords, bool(bound.params["zero_infinity"]))
    rule = bound.rule
    spec = bound.spec
    unset = generic.__kwdefaults__["reduce_fn"]
    floating = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))
    blank = keywords["blank_id"]

    def arrays_of(arrays: tuple[Any, ...]) -> list[Any] | None:
        """The four arrays as JAX arrays when the call is Optax's own form, else None."""
        out = []
        for x in arrays:
            if isinstance(x, np.ndarray):
                x = jnp.asarray(x)
            elif not isinstance(x, jax.Array):
                return None
            out.append(x)
        logits, logit_paddings, labels, label_paddings = out
        if logits.ndim != 3 or logits.dtype not in floating or 0 in logits.shape[:2] or blank >= logits.shape[2]:
            return None
        if logit_paddings.shape != logits.shape[:2] or not jnp.issubdtype(logit_paddings.dtype, jnp.floating):
            return None
        if labels.ndim != 2 or labels.shape[0] != logits.shape[0] or labels.shape[1] < 1:
            return None
        if label_paddings.shape != labels.shape or not jnp.issubdtype(label_paddings.dtype, jnp.floating):
            return None
        if labels.dtype == jnp.bool_ or not (jnp.issubdtype(labels.dtype, jnp.integer)
                                             or jnp.issubdtype(labels.dtype, jnp.floating)):
            return None
        return out

    def loss(
        *arrays: Any,
        sample_weight: Any | None = None,
        reduction: str | None = None,
        validate: bool = validate,
        axis: Any = -1,
        where: Any | None = None,
        weights: Any | None = None,
        reduce_fn: Any = unset,
    ) -> Any:
        if (len(arrays) == 4 and sample_weight is None and where is None and weights is None and reduce_fn is unset
                and isinstance(axis, int) and axis == -1):
            found = arrays_of(arrays)
            if found is not None:
                chosen = bound.reduction if reduction is None else REDUCTION_PARAM.validate(reduction, owner=spec.name)
                if validate and not any(isinstance(x, jax.core.Tracer) for x in found):
                    # the core's input rules and value checks, raising its errors (eager only, as the generic path)
                    bound.prepare(jnp, tuple(backend.to_spec_order(spec, found)), check_values=True)
                return reduce_loss(kernel(*found), xp=jnp, reduction=chosen, rule=rule, elementwise=False)
        return generic(*arrays, sample_weight=sample_weight, reduction=reduction, validate=validate, axis=axis,
                       where=where, weights=weights, reduce_fn=reduce_fn)

    for name in ("__name__", "__qualname__", "__doc__", "spec", "bound", "argnames", "check_finite"):
        setattr(loss, name, getattr(generic, name))
    loss.native = "optax.losses.ctc_loss"  # type: ignore[attr-defined]
    return loss
