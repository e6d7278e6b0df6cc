"""Property-based conformance: Hypothesis searches for the valid inputs that break a spec on a backend.

The fixed cases of the kit (:func:`lossbridge.testing.generate_checks`) sample each input domain at a
few points. Here Hypothesis draws the inputs: one strategy per input domain
(:func:`domain_strategy`), extreme but valid values included (logits and reals up to +-1e4,
probabilities at exactly 0 and 1 and within 1e-7 of them, positive values such as variances down to
1e-12, subnormal numbers), each shape the spec accepts, each parameter variant and convention, each
reduction, and each dtype of the backend. For each example it checks, on the backend under test:

* no exception on valid input;
* agreement with the float64 NumPy run of the spec on the inputs as rounded to the dtype, within
  :data:`lossbridge.testing.TOLERANCES` (NaN or infinity where the reference is finite is a failure;
  a reference beyond the dtype's range must overflow). Errors are relative to the larger of the
  reference's magnitude and 1 (optimizers: the largest parameter), since a result near an exact zero
  made by cancellation carries the dtype's epsilon in absolute terms. A disagreement is accepted
  only when it is the dtype's arithmetic and not the backend's: the backend matches the reference
  one unit in the last place away (a clamp or kink crossed by rounding), or with the dtype's
  subnormal inputs flushed to zero (TensorFlow, XLA), or within four times the reference's own
  change under normwise input perturbations of one rounding error (the problem's conditioning), or,
  on a backend other than NumPy, the NumPy backend's run of the spec in the same dtype (the spec's
  own float32 arithmetic is judged on the NumPy backend, against float64);
* the reference itself finite wherever the exact mathematics is (every input strictly inside its
  domain: no probability of exactly 0 or 1, no zero variance; a group of labels with a positive
  pair for losses that average over positive pairs; no input above log(float64 max) under an exp);
  on that boundary, float32 results are compared with the NumPy backend's float32 run instead, as
  the kit's edge cases are (clipping thresholds such as ``1 - 1e-7`` round with the dtype);
* optimizers: finite updates for finite gradients, and the trajectory within tolerance;
* optimizers that need the objective (``closure_step``: L-BFGS, on NumPy, torch and JAX; ``needs``:
  Polyak SGD, Sophia, noisy SGD, on torch and JAX, NumPy replaying synthetic needs) are driven on a
  drawn convex quadratic as each backend's users drive them (:func:`objective_trajectory`): no
  exception, finite parameters, and agreement with the NumPy float64 run on the same objective,
  except for noisy SGD on torch and JAX (finiteness only: each backend draws its own noise). Keras
  and array-api-strict refuse these specs (not fuzzed, with the reason).

A failing example is shrunk to a minimal one and reported as a ready-to-paste Python snippet
(:attr:`FuzzResult.reproduction`) that calls ``lossbridge.get(...)`` with the literal arrays.
Hypothesis is imported only when a fuzz run starts: the core imports without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LOSS_FLOOR", "FuzzResult", "domain_strategy", "fuzz", "fuzz_spec", "mixed_error"]

#: Extreme but valid values of each domain (besides those the domain's own sampler gives).
_LARGE = 1e4
_EXTREMES: dict[str, tuple[float, ...]] = {
    "real": (0.0, -0.0, 1e-30, -1e-30, 1e-40, 1e-310, 1.0, -1.0, _LARGE, -_LARGE, 1e3, -1e3),
    "logit": (0.0, 1e-30, -1e-30, 1e-40, 50.0, -50.0, 100.0, -100.0, 1e3, -1e3, _LARGE, -_LARGE),
    "probability": (0.0, 1.0, 1e-7, 1.0 - 1e-7, 1e-12, 1.0 - 1e-12, 0.5),
    "positive": (1e-12, 1e-8, 1e-6, 1.0, 1e3, 1e6),
}
_FAMILY = {
    "real": "real",
    "logit": "logit",
    "probability": "probability",
    "soft_binary": "probability",
    "positive": "positive",
    "broadcast_positive": "positive",
}
#: Above this, ``exp`` of an input overflows float64: an infinite reference may be the exact answer.
_EXP_OVERFLOW = float(np.log(np.finfo(np.float64).max))
#: Domains whose boundary values make the exact mathematics infinite (log 0, 1 / 0).
_CLOSED_AT = {"probability": (0.0, 1.0), "soft_binary": (0.0, 1.0), "simplex": (0.0, 1.0)}


def _st() -> Any:
    try:
        from hypothesis import strategies
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "lossbridge's property-based conformance needs Hypothesis: pip install hypothesis"
        ) from exc
    return strategies


def _value_strategy(family: str) -> Any:
    st = _st()
    extremes = st.sampled_from(_EXTREMES[family])
    if family == "probability":
        near = st.floats(0.0, 1e-6) | st.floats(1.0 - 1e-6, 1.0) | st.floats(0.0, 1.0)
    elif family == "positive":
        near = st.floats(-12.0, 6.0).map(lambda e: 10.0**e)
    else:
        near = st.floats(-_LARGE, _LARGE, allow_nan=False, allow_infinity=False)
    return extremes | near


def domain_strategy(name: str, shape: tuple[int, ...]) -> Any:
    """A Hypothesis strategy of float64 (or integer) NumPy arrays from input domain ``name`` for a
    prediction of ``shape``: the domain's own sampler at a drawn seed (its edge values drawn too),
    with some elements replaced by extreme but valid values of the domain; probability rows
    (``simplex``, ``log_simplex``) are the (log-)softmax of extreme logits."""
    from lossbridge.spec._domain import domain

    st = _st()
    dom = domain(name)

    @st.composite
    def draw(data: Any) -> np.ndarray:
        seed = data(st.integers(0, 2**32 - 1))
        edge = data(st.booleans())
        base = np.asarray(dom.sample(np.random.default_rng(seed), shape, np.float64, edge))
        if name in ("simplex", "log_simplex", "log_probability") and data(st.booleans()):
            z = _overridden(data, np.asarray(np.random.default_rng(seed).normal(size=shape)), "logit")
            z = z - z.max(axis=-1, keepdims=True)
            log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
            return log_p if name != "simplex" else np.exp(log_p)
        family = _FAMILY.get(name)
        if family is None or base.size == 0:
            return base
        return _overridden(data, base.astype(np.float64), family)

    return draw()


def _overridden(data: Any, base: np.ndarray, family: str) -> np.ndarray:
    st = _st()
    out = base.copy()
    if out.size == 0:
        return out
    changes = data(st.lists(st.tuples(st.integers(0, out.size - 1), _value_strategy(family)), max_size=out.size))
    for index, value in changes:
        out.flat[index] = value
    return out


# -- shapes and cases ---------------------------------------------------------------------------


#: Shapes a compiling backend (JAX, TensorFlow) is fuzzed on: each new shape compiles every
#: operation again (most of a search's time), while the values are what the search is about; the
#: NumPy backend (no compilation) searches every shape, and a spec's arithmetic is the same there.
_POOLED_ELEMENTWISE = ((3,), (2, 3))
_POOLED_ROWS = ((4, 3), (2, 2, 3))
_POOLED_3D = ((2, 3, 4),)
_POOLED_OPTIMIZER = ((2, 3), (1, 1))


def _shape_strategy(spec: Any, pooled: bool = False) -> Any:
    st = _st()
    if pooled:
        if spec.elementwise:
            return st.sampled_from(_POOLED_ELEMENTWISE if spec.min_ndim <= 1 else _POOLED_ELEMENTWISE[1:])
        if spec.min_ndim >= 3:
            return st.sampled_from(_POOLED_3D)
        return st.sampled_from(_POOLED_ROWS if spec.min_ndim <= 2 else _POOLED_ROWS[:1])
    n = st.integers(1, 5)
    if spec.elementwise:
        shapes = st.tuples(n) if spec.min_ndim <= 1 else st.nothing()
        shapes = shapes | st.tuples(n, st.integers(1, 4))
    elif spec.min_ndim >= 3:
        shapes = st.tuples(st.integers(1, 3), st.integers(2, 6), st.integers(2, 5))
    else:
        shapes = st.tuples(st.integers(2 if spec.coupled else 1, 6), st.integers(2, 5))
        if spec.min_ndim <= 2:
            shapes = shapes | st.tuples(st.integers(1, 3), st.integers(2, 3), st.integers(2, 4))
    return shapes


@dataclass(frozen=True)
class FuzzResult:
    """The outcome of fuzzing one spec on one backend."""

    spec: str
    backend: str
    examples: int
    passed: bool
    message: str = ""
    reproduction: str = ""

    def __str__(self) -> str:
        head = f"{self.backend}-{self.spec}: {'passed' if self.passed else 'FAILED'} ({self.examples} examples)"
        return head if self.passed else f"{head}\n{self.message}\n\n{self.reproduction}"


class _Failure(AssertionError):
    def __init__(self, message: str, reproduction: str) -> None:
        super().__init__(f"{message}\n\n{reproduction}")
        self.message = message
        self.reproduction = reproduction


def _literal(x: Any) -> str:
    arr = np.asarray(x)
    if np.issubdtype(arr.dtype, np.integer):
        return f"np.array({arr.tolist()!r}, dtype=np.{arr.dtype.name})"
    text = np.array2string(arr, separator=", ", threshold=10**6, max_line_width=10**6, floatmode="unique")
    text = text.replace("inf", "np.inf").replace("nan", "np.nan")
    return f"np.array({text}, dtype=np.{arr.dtype.name})"


def _kwargs(params: Mapping[str, Any]) -> str:
    return "".join(f", {k}={v!r}" for k, v in params.items())


def _loss_reproduction(
    spec: str, backend: str, convention: str | None, params: Mapping[str, Any], inputs: Mapping[str, Any],
    diff: Sequence[str], dtype: str,
) -> str:
    lines = [
        "import numpy as np",
        "import lossbridge",
        "from lossbridge.registry import default_registry",
        "from lossbridge.testing import relative_error",
        "",
        "inputs = {  # as the backend's users hold them, already rounded to " + dtype,
        *(f"    {name!r}: {_literal(x)}," for name, x in inputs.items()),
        "}",
        f"kwargs = dict(convention={convention!r}{_kwargs(params)})",
        "out = {}",
        f"for backend, dtype in ((\"numpy\", \"float64\"), ({backend!r}, {dtype!r})):",
        f"    loss = lossbridge.get({spec!r}, backend=backend, **kwargs)",
        "    out[backend] = default_registry().backend(backend).loss_value_and_grad(",
        f"        loss, inputs, sample_weight=None, differentiable={list(diff)!r}, dtype=dtype)",
        "    print(backend, out[backend])",
        f"print(\"value error\", relative_error(out[{backend!r}][0], out[\"numpy\"][0]))",
    ]
    return "\n".join(lines)


def _optimizer_reproduction(
    spec: str, backend: str, convention: str | None, params: Mapping[str, Any], start: Sequence[Any],
    grads: Sequence[Sequence[Any]], dtype: str,
) -> str:
    lines = [
        "import numpy as np",
        "import lossbridge",
        "from lossbridge.registry import default_registry",
        "",
        f"params = [{', '.join(_literal(p) for p in start)}]  # rounded to {dtype}",
        "grads = [  # one list per step",
        *(f"    [{', '.join(_literal(g) for g in step)}]," for step in grads),
        "]",
        f"kwargs = dict(convention={convention!r}{_kwargs(params)})",
        f"for backend, dtype in ((\"numpy\", \"float64\"), ({backend!r}, {dtype!r})):",
        f"    opt = lossbridge.get({spec!r}, backend=backend, **kwargs)",
        "    path = default_registry().backend(backend).optimizer_trajectory(opt, params, grads, dtype=dtype)",
        "    print(backend, path[-1])",
    ]
    return "\n".join(lines)


def _closed_boundary(spec: Any, resolved: Mapping[str, Any], inputs: Mapping[str, np.ndarray]) -> bool:
    """Whether a differentiable input sits on its domain's closed boundary (the exact value or
    gradient may be infinite there), or a strictly positive input rounded to zero."""
    for decl in spec.inputs:
        name = decl.domain_for(resolved)
        x = np.asarray(inputs[decl.name])
        bounds = _CLOSED_AT.get(name, ())
        if decl.differentiable and any(np.any(x == b) for b in bounds):
            return True
        if _FAMILY.get(name) == "positive" and np.any(x <= 0):
            return True
    return False


#: Errors of loss values and gradients are relative to the larger of the reference's magnitude and
#: this floor: near an exact zero (a minimum, equal vectors), a result computed by cancellation of
#: O(1) terms carries an absolute error of the dtype's epsilon, which no formulation avoids.
LOSS_FLOOR = 1.0


def mixed_error(actual: Any, expected: Any, floor: float) -> float:
    """``max|a - e| / max(max|e|, floor)``; matching infinities and NaNs count as equal."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return float("inf")
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    if np.all(same):
        return 0.0
    if not np.all(np.isfinite(a[~same])) or not np.all(np.isfinite(e[~same])):
        return float("inf")
    scale = max(float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)), floor, 1e-300)
    return float(np.max(np.abs(a[~same] - e[~same])) / scale)


def _representable(x: Any, dtype: str) -> bool:
    """Whether every finite value of ``x`` fits in ``dtype`` (else the dtype must overflow)."""
    arr = np.asarray(x, dtype=np.float64)
    return bool(np.all(np.abs(arr[np.isfinite(arr)]) <= np.finfo(dtype).max))


def _no_positive_pair(spec: Any, resolved: Mapping[str, Any], inputs: Mapping[str, np.ndarray]) -> bool:
    """Whether a group of ``group_label`` labels has no two equal labels: a mean over positive pairs
    is then a mean over nothing, undefined (0 / 0, as in Optax)."""
    for decl in spec.inputs:
        if decl.domain_for(resolved) == "group_label":
            labels = np.asarray(inputs[decl.name])
            rows = labels.reshape(-1, labels.shape[-1]) if labels.ndim else labels.reshape(1, 1)
            if any(len(np.unique(row)) == len(row) for row in rows):
                return True
    return False


def _finite(x: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))


def _loss_example(
    data: Any, spec: Any, backend: str, dtypes: Sequence[str], registry: Any, pooled: bool = False
) -> None:
    from lossbridge.testing._cases import LossCase, _bound_params, param_variants
    from lossbridge.testing._checks import (
        Check,
        _bind_case,
        _round_to,
        _with_dtype,
        case_inputs,
        reference_loss,
        tolerance,
    )

    st = _st()
    variant, conv, params = data.draw(st.sampled_from(list(param_variants(spec))), label="variant")
    reduction = data.draw(st.sampled_from(("mean", "sum", "none")), label="reduction")
    dtype = data.draw(st.sampled_from(tuple(dtypes)), label="dtype")
    shape = data.draw(_shape_strategy(spec, pooled), label="shape")
    resolved = _bound_params(spec, conv, params)
    inputs = {
        decl.name: data.draw(domain_strategy(decl.domain_for(resolved), shape), label=decl.name)
        for decl in spec.inputs
    }
    rounded = {k: _round_to(v, dtype) for k, v in inputs.items()}
    case = LossCase(spec.name, f"fuzz-{variant}", conv, {**params, "reduction": reduction}, rounded)
    bound = _bind_case(spec, case, "float64")
    native = case_inputs(bound, case)
    call_params = _with_dtype(case, dtype)
    diff = [i.name for i in spec.differentiable_inputs]

    def fail(message: str) -> None:
        raise _Failure(
            f"{backend}-{spec.name} [{variant}, {reduction}, {dtype}, shape {shape}]: {message}",
            _loss_reproduction(spec.name, backend, conv, call_params, native, diff, dtype),
        )

    try:
        with np.errstate(over="ignore"):  # exp beyond float64's range: judged by may_overflow below
            ref_value, ref_grads = reference_loss(bound, case, "float64")
    except Exception as exc:
        fail(f"the float64 NumPy reference raised {type(exc).__name__}: {exc}")
    exact_finite = not _closed_boundary(spec, resolved, rounded) and not _no_positive_pair(spec, resolved, rounded)
    may_overflow = any(
        np.issubdtype(np.asarray(x).dtype, np.floating) and np.any(np.abs(x) > _EXP_OVERFLOW) for x in rounded.values()
    )
    if exact_finite:
        for what, x in [("value", ref_value), *((f"d/d{k}", g) for k, g in ref_grads.items())]:
            if may_overflow and not np.any(np.isnan(x)):
                continue  # exp of an input above log(float64 max): the exact result overflows float64
            if not _finite(x):
                fail(f"the float64 NumPy reference {what} is not finite where the exact mathematics is: {x}")
    if backend == "numpy" and dtype == "float64":
        return  # the reference itself
    check = Check(f"fuzz-{backend}-{spec.name}", spec.name, backend, dtype, "loss", case, registry)
    try:
        # an overflow is judged by the comparison below (infinity is right where the exact result
        # exceeds the dtype's range), not by NumPy's overflow warning
        with np.errstate(over="ignore"):
            value, grads = registry.backend(backend).loss_value_and_grad(
                check._get(), native, sample_weight=None, differentiable=diff, dtype=dtype
            )
    except Exception as exc:
        fail(f"raised {type(exc).__name__}: {exc}")
    tol = tolerance(dtype, "loss")
    if not exact_finite and dtype != "float64":
        # on a domain's closed boundary (a probability of exactly 0 or 1) clipping thresholds such
        # as 1 - 1e-7 round with the dtype, as in the kit's edge cases: float32 is compared with
        # the spec's own float32 run, the float64 reference judges float64
        if backend != "numpy":
            problems = []
            for flush in (False, True):  # as given, or with subnormals flushed to zero (TensorFlow, XLA)
                arrays = {k: _nudge(v, dtype, 0.0) for k, v in native.items()} if flush else native
                own = registry.backend("numpy").loss_value_and_grad(
                    _get_object(spec.name, "numpy", conv, call_params, registry), arrays, sample_weight=None,
                    differentiable=diff, dtype=dtype,
                )
                problem = _loss_problem(value, grads, own[0], own[1], dtype, tol)
                if problem is None:
                    return
                problems.append(problem)
            fail(problems[0].replace("the float64 reference", f"the NumPy backend's {dtype} run"))
        return
    problem = _loss_problem(value, grads, ref_value, ref_grads, dtype, tol)
    if problem is None:
        return
    # a threshold or kink within one unit in the last place (a clamp at eps, a hinge at 0) is crossed
    # differently by the dtype's arithmetic: accept a match with the reference one ulp away ...
    # (or flushes subnormal inputs to zero, as TensorFlow and XLA do on CPU)
    for direction in (np.inf, -np.inf, 0.0):
        nudged = {k: _nudge(v, dtype, direction) for k, v in rounded.items()}
        near = LossCase(spec.name, case.variant, conv, case.params, nudged)
        try:
            near_value, near_grads = reference_loss(bound, near, "float64")
        except Exception:
            continue
        if _loss_problem(value, grads, near_value, near_grads, dtype, tol) is None:
            return
    # ... or within what the problem's own conditioning allows: the float64 reference moves by
    # `spread` when the inputs move by one rounding error of the dtype (backward stability)
    domains = {decl.name: decl.domain_for(resolved) for decl in spec.inputs}
    spread = _spread(bound, case, rounded, dtype, ref_value, ref_grads, domains)
    if _loss_problem(value, grads, ref_value, ref_grads, dtype, tol + _SPREAD_FACTOR * spread) is None:
        return
    # ... or with the NumPy backend's own run in the dtype (the spec's arithmetic in that dtype:
    # how well the spec itself does in float32 is judged on the NumPy backend, against float64)
    if backend != "numpy":
        own = registry.backend("numpy").loss_value_and_grad(
            _get_object(spec.name, "numpy", conv, call_params, registry), native, sample_weight=None,
            differentiable=diff, dtype=dtype,
        )
        if _loss_problem(value, grads, own[0], own[1], dtype, tol) is None:
            return
    fail(problem)


#: A backend's result may differ from the reference by this many times the reference's own change
#: under input perturbations of one rounding error of the dtype.
_SPREAD_FACTOR = 4.0


def _spread(bound: Any, case: Any, rounded: Mapping[str, np.ndarray], dtype: str, ref_value: Any,
            ref_grads: Mapping[str, Any], domains: Mapping[str, str] | None = None) -> float:
    """How far the float64 reference moves when every floating input moves normwise by a rounding
    error of ``dtype`` (three seeded random perturbations): the problem's conditioning.

    The norm is taken over all the inputs of one domain together (an anchor and its positive are
    points of one space: ``a - p`` rounds with ``max(|a|, |p|)``), inputs of different domains
    (labels and logits) separately."""
    from lossbridge.testing._cases import LossCase
    from lossbridge.testing._checks import reference_loss

    eps = float(np.finfo(dtype).eps)
    rng = np.random.default_rng(0)
    domains = domains or {}
    scales: dict[str, float] = {}
    for k, v in rounded.items():
        if np.issubdtype(v.dtype, np.floating) and v.size:
            group = domains.get(k, k)
            scales[group] = max(scales.get(group, 0.0), float(np.max(np.abs(v))))
    worst = 0.0
    for _ in range(3):
        moved = {
            k: _perturbed(v, eps, rng, scales.get(domains.get(k, k))) if np.issubdtype(v.dtype, np.floating) else v
            for k, v in rounded.items()
        }
        try:
            value, grads = reference_loss(bound, LossCase(case.spec, case.variant, case.convention, case.params, moved),
                                          "float64")
        except Exception:
            return 0.0
        pairs = [(value, ref_value)] + [(grads[k], g) for k, g in ref_grads.items()]
        worst = max([worst] + [mixed_error(a, e, LOSS_FLOOR) for a, e in pairs])
    return worst if np.isfinite(worst) else 0.0


def _perturbed(x: np.ndarray, eps: float, rng: np.random.Generator, scale: float | None = None) -> np.ndarray:
    """``x`` moved normwise by one rounding error: each element by up to ``eps * scale`` (default
    ``max|x|``: as a difference with the array's largest element is rounded), the domain's bounds kept."""
    if x.size == 0:
        return x
    scale = float(np.max(np.abs(x))) if scale is None else scale
    moved = x + eps * scale * rng.uniform(-1.0, 1.0, size=x.shape)
    low, high = float(np.min(x)), float(np.max(x))
    # probabilities stay in [0, 1], positive values positive, labels at their values
    if low >= 0.0:
        moved = np.where(x == 0.0, x, np.maximum(moved, x * (1.0 - eps)))
    if high <= 1.0 and low >= 0.0:
        moved = np.where(x == 1.0, x, np.minimum(moved, 1.0))
    return moved


def _get_object(name: str, backend: str, convention: str | None, params: Mapping[str, Any], registry: Any) -> Any:
    import lossbridge
    from lossbridge.registry import default_registry
    from lossbridge.testing._checks import TRANSFORM_OPTIMIZER

    made = lossbridge.get(name, backend=backend, convention=convention, registry=registry, **params)
    reg = registry or default_registry()
    if getattr(reg.spec(name), "role", "optimizer") == "transform":  # checked chained, as the kit does
        opt = lossbridge.get(TRANSFORM_OPTIMIZER[0], backend=backend, registry=reg, **TRANSFORM_OPTIMIZER[1])
        return lossbridge.chain(made, opt)
    return made


def _nudge(x: np.ndarray, dtype: str, direction: float) -> np.ndarray:
    """Floating ``x`` moved one unit in the last place of ``dtype`` towards ``direction``; for a
    ``direction`` of 0, ``x`` with its subnormal values of ``dtype`` flushed to zero."""
    if not np.issubdtype(x.dtype, np.floating):
        return x
    if direction == 0.0:
        return np.where(np.abs(x) < np.finfo(dtype).tiny, 0.0, x)
    return np.nextafter(x.astype(dtype), np.asarray(direction, dtype=dtype)).astype(np.float64)


def _loss_problem(
    value: Any, grads: Mapping[str, Any], ref_value: Any, ref_grads: Mapping[str, Any], dtype: str, tol: float
) -> str | None:
    """What disagrees between a backend's value and gradients and a reference, or None."""
    pairs = [("value", value, ref_value)] + [(f"d/d{k}", grads.get(k), g) for k, g in ref_grads.items()]
    for what, actual, expected in pairs:
        if not _representable(expected, dtype):
            continue  # the exact result overflows the dtype: infinity is the right answer
        if _finite(expected) and not _finite(actual):
            return f"{what} has NaN or inf where the float64 reference is finite: {actual}"
        err = mixed_error(actual, expected, LOSS_FLOOR)
        if err > tol:
            return f"{what}: error {err:.3g} > {tol:g} against the float64 reference (relative to max(|ref|, 1))"
    return None


def _draw_optimizer_setup(
    data: Any, variants: Any, dtypes: Sequence[str], pooled: bool
) -> tuple[str, str | None, dict[str, Any], str, list[tuple[int, ...]]]:
    """An optimizer example's variant, dtype and parameter shapes (a matrix and a vector), drawn in
    a fixed order so that derandomized runs and reproductions stay stable."""
    st = _st()
    variant, conv, params = data.draw(st.sampled_from(list(variants)), label="variant")
    dtype = data.draw(st.sampled_from(tuple(dtypes)), label="dtype")
    if pooled:
        rows, cols = data.draw(st.sampled_from(_POOLED_OPTIMIZER), label="rows, cols")
    else:
        rows, cols = data.draw(st.integers(1, 4), label="rows"), data.draw(st.integers(1, 4), label="cols")
    return variant, conv, params, dtype, [(rows, cols), (cols,)]


def _optimizer_example(
    data: Any, spec: Any, backend: str, dtypes: Sequence[str], registry: Any, pooled: bool = False
) -> None:
    from lossbridge.testing._cases import OptimizerCase, param_variants
    from lossbridge.testing._checks import _reference_on, _round_to, tolerance

    st = _st()
    variant, conv, params, dtype, shapes = _draw_optimizer_setup(data, param_variants(spec), dtypes, pooled)
    steps = data.draw(st.integers(1, 4), label="steps")
    start = [_round_to(data.draw(domain_strategy("real", s), label="param"), dtype) for s in shapes]
    grads = [
        [_round_to(data.draw(domain_strategy("real", s), label="grad"), dtype) for s in shapes] for _ in range(steps)
    ]
    case = OptimizerCase(spec.name, f"fuzz-{variant}", conv, params)

    def fail(message: str) -> None:
        raise _Failure(
            f"{backend}-{spec.name} [{variant}, {dtype}, {steps} steps, shapes {shapes}]: {message}",
            _optimizer_reproduction(spec.name, backend, conv, params, start, grads, dtype),
        )

    if getattr(spec, "needs", ()):  # value / Hessian estimate / noise: NumPy only (see _needs_trajectory)
        expected = _needs_trajectory(spec.name, conv, params, start, grads, "float64", registry)
        if not all(_finite(p) for step in expected for p in step):
            fail("the float64 NumPy run gave a non-finite parameter for finite gradients")
        if dtype != "float64":
            problem = _trajectory_problem(
                _needs_trajectory(spec.name, conv, params, start, grads, dtype, registry), expected,
                tolerance(dtype, "optimizer"),
            )
            if problem is not None:
                fail(problem)
        return

    try:
        expected = _reference_on(spec, case, start, grads, "float64")
    except Exception as exc:
        fail(f"the float64 NumPy reference raised {type(exc).__name__}: {exc}")
    if not all(_finite(p) for step in expected for p in step):
        fail("the float64 NumPy reference gave a non-finite parameter for finite gradients")
    if backend == "numpy" and dtype == "float64":
        return
    try:
        opt = _get_object(spec.name, backend, conv, params, registry)
        path = registry.backend(backend).optimizer_trajectory(opt, start, grads, dtype=dtype)
    except Exception as exc:
        fail(f"raised {type(exc).__name__}: {exc}")
    if len(path) != len(expected):
        fail(f"{len(path)} steps returned for {len(expected)}")
    tol = tolerance(dtype, "optimizer")
    for t, step in enumerate(path):
        for k, a in enumerate(step):
            if not _finite(a):
                fail(f"step {t + 1} param {k} is not finite for finite gradients: {a}")
    problem = _trajectory_problem(path, expected, tol)
    if problem is None:
        return
    # subnormal parameters or gradients flushed to zero (XLA and TensorFlow on CPU)
    flushed = _reference_on(
        spec, case, [_nudge(p, dtype, 0.0) for p in start], [[_nudge(g, dtype, 0.0) for g in s] for s in grads],
        "float64",
    )
    if _trajectory_problem(path, flushed, tol) is None:
        return
    if backend != "numpy":  # the spec's own arithmetic in the dtype (judged against float64 on NumPy)
        own = registry.backend("numpy").optimizer_trajectory(
            _get_object(spec.name, "numpy", conv, params, registry), start, grads, dtype=dtype
        )
        if _trajectory_problem(path, own, tol) is None:
            return
    fail(problem)


def _needs_trajectory(
    name: str, conv: str | None, params: Mapping[str, Any], start: Sequence[Any], grads: Sequence[Sequence[Any]],
    dtype: str, registry: Any,
) -> list[list[np.ndarray]]:
    """A NumPy-backend run of a spec with ``needs`` (OptimizerSpec.needs), given synthetic ones: the value
    ``1 + ||p||^2 / 2`` at the current parameters, the Hessian-vector product ``2 v`` and the backend's
    own noise (drawn in float64 from the key, so every dtype sees the same numbers)."""
    opt = _get_object(name, "numpy", conv, params, registry)
    current = [np.array(p, dtype=dtype) for p in start]
    path = []
    for step in grads:
        value = 1.0 + 0.5 * sum(float(np.sum(np.asarray(p, dtype=np.float64) ** 2)) for p in current)
        opt.step(current, [np.asarray(g, dtype=dtype) for g in step], value=value,
                 hvp=lambda v: [2.0 * np.asarray(x) for x in v])
        path.append([p.astype(np.float64) for p in current])
    return path


def _trajectory_problem(path: Sequence[Sequence[Any]], expected: Sequence[Sequence[Any]], tol: float) -> str | None:
    for t, (pa, pe) in enumerate(zip(path, expected)):
        scale = max(float(np.max(np.abs(e), initial=0.0)) for e in pe)  # the parameters' magnitude this step
        for k, (a, e) in enumerate(zip(pa, pe)):
            err = mixed_error(a, e, scale)
            if err > tol:
                return (
                    f"step {t + 1} param {k}: error {err:.3g} > {tol:g} against the float64 reference "
                    "(relative to the largest parameter)"
                )
    return None


# -- specs driven on an objective: closure steps (L-BFGS) and needs (value, Hessian estimate, noise) ----


#: Specs whose steps each backend drives with its OWN random draws (OptimizerSpec.needs ``noise``: torch's
#: generator, Optax's key splits, NumPy's generator: the same distribution, not the same numbers). Sophia's
#: Hutchinson estimate is random too, but on a separable quadratic ``r * (H r) = r^2 a = a`` for every
#: Rademacher ``r``: exact, so Sophia is compared across backends like the deterministic specs.
_BACKEND_RANDOM = frozenset({"noise"})
#: The diagonal scales of the fuzzed quadratic (its Hessian), extremes included.
_SCALES = (1e-3, 1e-2, 0.5, 1.0, 2.0, 1e2)


def _no_objective(backend: str) -> str:
    if backend == "tensorflow":
        return "refused by the backend: Keras's apply_gradients takes gradients only"
    return "the backend's optimizer steps with step(params, grads) only: no objective to drive"


def _objective_driven(spec: Any, backend: str) -> bool:
    """Whether ``spec`` is fuzzed on ``backend`` on a drawn objective rather than replayed gradients: a
    closure step everywhere, needs on every backend but NumPy (NumPy replays them, see _needs_trajectory)."""
    return getattr(spec, "closure_step", None) is not None or (bool(getattr(spec, "needs", ())) and backend != "numpy")


def _quadratic(xp: Any, params: Sequence[Any], scales: Sequence[Any]) -> Any:
    """``sum_k 0.5 * sum(scales[k] * params[k] ** 2)``, in the parameters' dtype."""
    total = None
    for a, p in zip(scales, params, strict=True):
        term = 0.5 * xp.sum(a * p * p)
        total = term if total is None else total + term
    return total


def objective_trajectory(
    spec: str, backend: str, params: Sequence[Any], scales: Sequence[Any], steps: int, *, dtype: str,
    convention: str | None = None, registry: Any = None, **hyper: Any,
) -> list[list[np.ndarray]]:
    """``steps`` steps of optimizer ``spec`` on ``backend`` in ``dtype`` on the convex quadratic
    ``sum_k 0.5 * sum(scales[k] * params[k] ** 2)`` from ``params``, driven as each backend's users drive
    it: NumPy ``step(params, closure)`` (closure steps) or ``step(params, grads, value=, hvp=)``; torch
    ``step(closure)`` (the closure calls ``backward()``, except for a Hessian estimate, which needs the
    loss's graph; noise alone: ``.grad`` set, then ``step()``); JAX ``update(grads, state, params,
    value=, grad=, value_fn=)`` with ``optax.value_and_grad_from_state`` (closure steps) or ``value=`` /
    ``obj_fn=`` (needs), jitted. Returns the parameters after each step, in float64."""
    from lossbridge.registry import default_registry

    reg = registry or default_registry()
    the_spec = reg.spec(spec)
    made = _get_object(spec, backend, convention, hyper, reg)
    start = [np.asarray(p, dtype=dtype) for p in params]
    a = [np.asarray(s, dtype=dtype) for s in scales]
    if backend == "numpy":
        return _numpy_objective(the_spec, made, start, a, steps)
    if backend == "torch":
        return _torch_objective(the_spec, made, start, a, steps, dtype)
    if backend == "jax":
        return _jax_objective(the_spec, made, start, a, steps, dtype, (spec, convention, repr(sorted(hyper.items()))))
    raise NotImplementedError(f"{backend}: no objective-driven optimizer loop in the fuzzer")


def _numpy_objective(spec: Any, opt: Any, start: list[np.ndarray], a: list[np.ndarray], steps: int) -> Any:
    current = [p.copy() for p in start]

    def closure(ps: Sequence[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return float(_quadratic(np, ps, a)), [s * p for s, p in zip(a, ps, strict=True)]

    path = []
    for _ in range(steps):
        if spec.closure_step is not None:
            opt.step(current, closure)
        else:
            value, grads = closure(current)
            opt.step(current, grads, value=value, hvp=lambda v: [s * np.asarray(x) for s, x in zip(a, v, strict=True)])
        path.append([np.array(p, dtype=np.float64, copy=True) for p in current])  # stepped in place
    return path


def _torch_objective(spec: Any, cls: Any, start: list[np.ndarray], a: list[np.ndarray], steps: int, dtype: str) -> Any:
    import importlib

    torch: Any = importlib.import_module("torch")
    tensors = [torch.nn.Parameter(torch.tensor(p, dtype=getattr(torch, dtype))) for p in start]
    scales = [torch.tensor(s, dtype=getattr(torch, dtype)) for s in a]
    opt = cls(tensors)
    keep_graph = "hessian_diag" in spec.needs  # the adapter differentiates the loss twice

    def closure() -> Any:
        opt.zero_grad()
        loss = _quadratic(torch, tensors, scales)
        if not keep_graph:
            loss.backward()
        return loss

    path = []
    for _ in range(steps):
        if spec.closure_step is not None or set(spec.needs) & {"value", "hessian_diag"}:
            opt.step(closure)
        else:  # noise only: a gradient-driven step
            with torch.enable_grad():
                closure()
            opt.step()
        path.append([t.detach().to(torch.float64).numpy().copy() for t in tensors])
    return path


#: Jitted JAX steps by (spec, convention, hyperparameters): each new objective is an argument, not a new trace.
_JAX_STEPS: dict[tuple[Any, ...], Any] = {}


def _jax_objective(
    spec: Any, tx: Any, start: list[np.ndarray], a: list[np.ndarray], steps: int, dtype: str, key: tuple[Any, ...]
) -> Any:
    import importlib

    jax: Any = importlib.import_module("jax")
    jnp: Any = importlib.import_module("jax.numpy")
    optax: Any = importlib.import_module("optax")
    if key not in _JAX_STEPS:

        def step(params: Any, state: Any, scales: Any) -> Any:
            def f(ps: Any) -> Any:
                return _quadratic(jnp, ps, scales)

            if spec.closure_step is not None:
                value, grad = optax.value_and_grad_from_state(f)(params, state=state)
                updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
            else:
                value, grad = jax.value_and_grad(f)(params)
                extra = {"value": value} if "value" in spec.needs else {}
                if "hessian_diag" in spec.needs:
                    extra["obj_fn"] = f
                updates, state = tx.update(grad, state, params, **extra)
            return optax.apply_updates(params, updates), state

        _JAX_STEPS[key] = (tx, jax.jit(step))
    tx, step = _JAX_STEPS[key]
    x64 = jax.enable_x64(True) if dtype == "float64" and not jax.config.jax_enable_x64 else contextlib.nullcontext()
    with x64:
        current = [jnp.asarray(p, dtype=dtype) for p in start]
        scales = [jnp.asarray(s, dtype=dtype) for s in a]
        state = tx.init(current)
        path = []
        for _ in range(steps):
            current, state = step(current, state, scales)
            path.append([np.asarray(p, dtype=np.float64) for p in current])
    return path


def _objective_reproduction(
    spec: str, backend: str, convention: str | None, params: Mapping[str, Any], start: Sequence[Any],
    scales: Sequence[Any], steps: int, dtype: str,
) -> str:
    lines = [
        "import numpy as np",
        "from lossbridge.testing._fuzz import objective_trajectory",
        "",
        f"params = [{', '.join(_literal(p) for p in start)}]  # rounded to {dtype}",
        f"scales = [{', '.join(_literal(s) for s in scales)}]  # objective: sum_k 0.5 * sum(scales[k] * params[k]**2)",
        f"kwargs = dict(convention={convention!r}{_kwargs(params)})",
        f"for backend, dtype in ((\"numpy\", \"float64\"), ({backend!r}, {dtype!r})):",
        f"    path = objective_trajectory({spec!r}, backend, params, scales, {steps}, dtype=dtype, **kwargs)",
        "    print(backend, path[-1])",
    ]
    return "\n".join(lines)


def _objective_example(
    data: Any, spec: Any, backend: str, dtypes: Sequence[str], registry: Any, pooled: bool = False
) -> None:
    """A closure-step spec (any backend) or a spec with needs (torch, JAX) on a drawn convex quadratic
    ``sum_k 0.5 * sum(a_k * p_k ** 2)`` (diagonal scales ``a`` from 1e-3 to 1e2, extremes included; the
    starting point from the ``real`` domain, extremes included), driven for 1 to 3 steps on the backend in
    the drawn dtype, as its users drive it (:func:`objective_trajectory`). Checked: no exception, finite
    parameters at every step, and agreement with the NumPy backend's float64 run on the same objective
    (parameters and scales as rounded to the dtype) within the dtype's tolerance, a disagreement being
    accepted only as the dtype's arithmetic: subnormals flushed to zero, within four times the float64
    run's own change under perturbations of one rounding error of the start and scales (the problem's
    conditioning, e.g. a line search's branch), or, on a backend other than NumPy, the NumPy backend's
    run in the same dtype. A spec whose backend draws its own random numbers (``noise``: noisy SGD) is
    checked for no exception and finiteness only on torch and JAX, not agreement (the draws differ by
    design) nor descent."""
    from lossbridge.testing._checks import _round_to, tolerance

    st = _st()
    variant, conv, params, dtype, shapes = _draw_optimizer_setup(data, _param_variants_of(spec), dtypes, pooled)
    steps = data.draw(st.integers(1, 3), label="steps")
    scale_value = st.sampled_from(_SCALES) | st.floats(-3.0, 2.0).map(lambda e: 10.0**e)
    scales = [
        _round_to(np.array(data.draw(st.lists(scale_value, min_size=int(np.prod(s)), max_size=int(np.prod(s))),
                                     label="scales")).reshape(s), dtype)
        for s in shapes
    ]
    start = [_round_to(data.draw(domain_strategy("real", s), label="param"), dtype) for s in shapes]

    def fail(message: str) -> None:
        raise _Failure(
            f"{backend}-{spec.name} [{variant}, {dtype}, {steps} steps, shapes {shapes}]: {message}",
            _objective_reproduction(spec.name, backend, conv, params, start, scales, steps, dtype),
        )

    def run(on: str, kind: str, p0: Sequence[Any], a: Sequence[Any]) -> list[list[np.ndarray]]:
        return objective_trajectory(spec.name, on, p0, a, steps, dtype=kind, convention=conv, registry=registry,
                                    **params)

    try:
        expected = run("numpy", "float64", start, scales)
    except Exception as exc:
        fail(f"the float64 NumPy run raised {type(exc).__name__}: {exc}")
    if not all(_finite(p) for step in expected for p in step):
        fail("the float64 NumPy run gave a non-finite parameter on a convex quadratic")
    if backend == "numpy" and dtype == "float64":
        return
    try:
        path = run(backend, dtype, start, scales)
    except Exception as exc:
        fail(f"raised {type(exc).__name__}: {exc}")
    for t, step in enumerate(path):
        for k, p in enumerate(step):
            if not _finite(p):
                fail(f"step {t + 1} param {k} is not finite on a convex quadratic: {p}")
    if backend != "numpy" and set(spec.needs) & _BACKEND_RANDOM:
        return  # the backend's own draws: finiteness only (see the docstring)
    tol = tolerance(dtype, "optimizer")
    problem = _path_problem(path, expected, start, tol)
    if problem is None:
        return
    flushed = run("numpy", "float64", [_nudge(p, dtype, 0.0) for p in start], [_nudge(s, dtype, 0.0) for s in scales])
    if _path_problem(path, flushed, start, tol) is None:
        return
    eps = float(np.finfo(dtype).eps)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(3):  # the float64 run's own sensitivity to one rounding error of the data
        moved = run("numpy", "float64", [_perturbed(p, eps, rng) for p in start],
                    [_perturbed(s, eps, rng) for s in scales])
        worst = max(worst, _path_error(moved, expected, start))
    if np.isfinite(worst) and _path_error(path, expected, start) <= max(tol, 4.0 * worst):
        return
    if backend != "numpy" and _path_problem(path, run("numpy", dtype, start, scales), start, tol) is None:
        return
    fail(f"{problem} (the float64 run's change under one rounding error of the data: {worst:.3g})")


def _path_problem(path: Sequence[Sequence[Any]], expected: Sequence[Sequence[Any]], start: Sequence[Any],
                  tol: float) -> str | None:
    """:func:`_trajectory_problem` for a minimizer: errors relative to the largest parameter SO FAR (the
    start included). A minimizer drives the parameters towards the exact minimum 0, where the dtype's
    rounding errors keep the size of the values they were made on (L-BFGS converges in one step)."""
    scale = max(float(np.max(np.abs(np.asarray(p, dtype=np.float64)), initial=0.0)) for p in start)
    for t, (pa, pe) in enumerate(zip(path, expected)):
        scale = max([scale] + [float(np.max(np.abs(e), initial=0.0)) for e in pe])
        for k, (a, e) in enumerate(zip(pa, pe)):
            err = mixed_error(a, e, scale)
            if err > tol:
                return (
                    f"step {t + 1} param {k}: error {err:.3g} > {tol:g} against the float64 NumPy run "
                    "(relative to the largest parameter so far)"
                )
    return None


def _path_error(path: Sequence[Sequence[Any]], expected: Sequence[Sequence[Any]], start: Sequence[Any]) -> float:
    scale = max(float(np.max(np.abs(np.asarray(p, dtype=np.float64)), initial=0.0)) for p in start)
    worst = 0.0
    for pa, pe in zip(path, expected):
        scale = max([scale] + [float(np.max(np.abs(e), initial=0.0)) for e in pe])
        worst = max([worst] + [mixed_error(a, e, scale) for a, e in zip(pa, pe)])
    return worst


def _param_variants_of(spec: Any) -> Any:
    from lossbridge.testing._cases import param_variants

    return param_variants(spec)


def fuzz_spec(
    spec: str,
    backend: str = "numpy",
    *,
    max_examples: int = 100,
    dtypes: Sequence[str] | None = None,
    derandomize: bool = False,
    seed: int | None = None,
    registry: Any = None,
    pooled_shapes: bool | None = None,
) -> FuzzResult:
    """Search ``max_examples`` Hypothesis examples for valid inputs on which ``spec`` fails on
    ``backend``; the failure (shrunk to a minimal example) is in the result with its reproduction.

    ``pooled_shapes`` draws the input shapes from a small fixed pool, so that a compiling backend
    reuses its compiled operations across examples (default: on every backend but NumPy, which
    searches every shape the spec accepts)."""
    st = _st()  # first: a clear message when Hypothesis is missing
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from lossbridge.registry import default_registry
    from lossbridge.spec._model import LossSpec

    reg = registry or default_registry()
    target = reg.backend(backend)
    the_spec = reg.spec(spec)
    kinds = tuple(dtypes or target.dtypes)
    if getattr(the_spec, "closure_step", None) is not None and target.name not in ("numpy", "torch", "jax"):
        # Keras has no closure step (the backend refuses the spec: BackendError naming closure_step);
        # array-api-strict's optimizer steps with step(params, grads) only (no closure to drive)
        reason = f"not fuzzed: closure_step ({_no_objective(target.name)})"
        return FuzzResult(the_spec.name, target.name, 0, True, reason)
    if getattr(the_spec, "role", "optimizer") == "transform" and target.name in ("tensorflow", "strict"):
        # no transform object there (Keras's own base-optimizer options are the native form)
        return FuzzResult(the_spec.name, target.name, 0, True, "not fuzzed: no gradient-transform object")
    if getattr(the_spec, "needs", ()) and target.name not in ("numpy", "torch", "jax"):
        # Keras has no way to supply the objective's value, Hessian estimate or noise: the backend
        # refuses these specs (BackendError naming the need); array-api-strict: step(params, grads) only
        needs = list(getattr(the_spec, "needs", ()))
        reason = f"not fuzzed: needs {needs} ({_no_objective(target.name)})"
        return FuzzResult(the_spec.name, target.name, 0, True, reason)
    run = _loss_example if isinstance(the_spec, LossSpec) else _optimizer_example
    if not isinstance(the_spec, LossSpec) and _objective_driven(the_spec, target.name):
        run = _objective_example
    pooled = target.name != "numpy" if pooled_shapes is None else pooled_shapes
    count = 0
    last: list[_Failure] = []

    @settings(
        max_examples=max_examples,
        derandomize=derandomize,
        deadline=None,
        database=None,
        print_blob=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def search(data: Any) -> None:
        nonlocal count
        count += 1
        try:
            if pooled:
                run(data, the_spec, target.name, kinds, reg, pooled)
            else:  # the five-argument call (tests substitute the example function)
                run(data, the_spec, target.name, kinds, reg)
        except _Failure as failure:
            last.append(failure)
            raise

    if seed is not None and not derandomize:
        search = hypothesis_seed(seed)(search)
    try:
        with _eager(target.name):
            search()
    except _Failure:
        failure = last[-1]  # Hypothesis replays the minimal example last
        return FuzzResult(the_spec.name, target.name, count, False, failure.message, failure.reproduction)
    return FuzzResult(the_spec.name, target.name, count, True)


@contextlib.contextmanager
def _eager(backend: str) -> Iterator[None]:
    """TensorFlow runs its ``tf.function``s eagerly during a search: the same kernels (no XLA), without
    tracing a new graph for every example (the conformance kit's fixed cases run them as graphs)."""
    tf: Any = None
    if backend == "tensorflow":  # the backend under test: importing it is what the search does anyway
        with contextlib.suppress(ImportError):
            import tensorflow

            tf = tensorflow
    if tf is None:
        yield
        return
    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


def fuzz(
    backends: Sequence[str] | None = None,
    *,
    specs: Sequence[str] | None = None,
    max_examples: int = 100,
    dtypes: Sequence[str] | None = None,
    derandomize: bool = False,
    registry: Any = None,
    progress: Any = None,
) -> list[FuzzResult]:
    """:func:`fuzz_spec` for every spec (schedules aside) on each backend (default: every installed one)."""
    from lossbridge.registry import default_registry

    reg = registry or default_registry()
    names = list(backends) if backends else sorted(n for n, b in reg.backends().items() if b.available())
    wanted = {reg.spec(s).name for s in specs} if specs is not None else None
    results = []
    for name in names:
        for spec, _ in sorted(reg.specs(), key=lambda t: t[0].name):
            if spec.kind == "schedule" or (wanted is not None and spec.name not in wanted):
                continue
            result = fuzz_spec(
                spec.name, name, max_examples=max_examples, dtypes=dtypes, derandomize=derandomize, registry=reg
            )
            results.append(result)
            if progress is not None:
                progress(result)
    return results

