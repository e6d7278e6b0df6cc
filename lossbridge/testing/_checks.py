"""Checks: one backend, one case, one dtype, compared with the float64 NumPy run of the spec."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat.numpy as np_xp
import numpy as np

import lossbridge
from lossbridge._inputs import native_layout
from lossbridge.backends.numpy import NumpyOptimizer
from lossbridge.bound import BoundLoss, BoundOptimizer, bind
from lossbridge.errors import BackendError
from lossbridge.registry import Registry, default_registry
from lossbridge.spec._model import LossSpec, OptimizerSpec
from lossbridge.testing._cases import LossCase, OptimizerCase, least_squares, loss_cases, optimizer_cases

__all__ = [
    "TOLERANCES",
    "Check",
    "CheckResult",
    "generate_checks",
    "relative_error",
    "tolerance",
]

#: Worst normwise relative error allowed, by dtype and by what is compared.
TOLERANCES = {
    ("float64", "loss"): 1e-10,
    ("float64", "optimizer"): 1e-10,
    ("float64", "fd"): 1e-6,  # central differences with h ~ 1e-6 carry O(h^2) + rounding/h error
    ("float32", "loss"): 1e-5,
    # 100 steps accumulate float32 rounding in the state; Adam-type updates near convergence
    # amplify it (m / sqrt(v) with both small), so trajectories get a looser bound.
    ("float32", "optimizer"): 1e-4,
}
TRAJECTORY_STEPS = 100


def tolerance(dtype: str, kind: str) -> float:
    """The relative tolerance for ``kind`` ("loss", "optimizer", "fd") in ``dtype``."""
    return TOLERANCES[(dtype, kind)]


def relative_error(actual: Any, expected: Any) -> float:
    """Normwise relative error ``max|a - e| / max|e|``; matching infinities and NaNs count as equal."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return float("inf")
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    if np.all(same):
        return 0.0
    if not np.all(np.isfinite(a[~same])) or not np.all(np.isfinite(e[~same])):
        return float("inf")
    scale = np.max(np.abs(e[np.isfinite(e)]), initial=0.0)
    return float(np.max(np.abs(a[~same] - e[~same])) / max(scale, 1e-30))


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its worst relative error against the reference."""

    check_id: str
    spec: str
    backend: str
    dtype: str
    kind: str
    passed: bool
    worst_error: float
    tolerance: float
    message: str = ""


def _round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """Inputs as the backend sees them, back in float64 (so input rounding is not an error)."""
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(dtype).astype(np.float64)
    return x


def _fd_grads(bound: BoundLoss, arrays: list[np.ndarray], weight: Any) -> tuple[np.ndarray, ...]:
    """Central finite differences of the reduced (summed, for "none") loss, in float64."""

    def total(args: list[np.ndarray]) -> float:
        return float(np.sum(bound(np_xp, *args, sample_weight=weight, check_values=False)))

    grads = []
    for k, decl in enumerate(bound.spec.inputs):
        if not decl.differentiable:
            continue
        g = np.zeros_like(arrays[k])
        for idx in np.ndindex(arrays[k].shape):
            h = 1e-6 * max(1.0, float(abs(arrays[k][idx])))
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[k][idx] += h
            minus[k][idx] -= h
            g[idx] = (total(plus) - total(minus)) / (2 * h)
        grads.append(g)
    return tuple(grads)


def case_inputs(bound: BoundLoss, case: LossCase) -> dict[str, np.ndarray]:
    """The case's inputs in the layout the convention's users hold them (torch: class axis 1)."""
    return native_layout(bound.spec, bound.params, bound.rules, case.inputs)


def _with_dtype(case: LossCase | OptimizerCase, dtype: str) -> dict[str, Any]:
    """The case's parameters; a loss under a convention with a fixed compute dtype (Keras: float32)
    is built in the check's dtype, as Keras users do with ``dtype=``."""
    params = dict(case.params)
    if isinstance(case, LossCase) and case.convention is not None:
        spec = default_registry().spec(case.spec)
        conv = spec.conventions.get(case.convention)
        if conv is not None and conv.inputs is not None and conv.inputs.compute_dtype is not None:
            params.setdefault("dtype", dtype)
    return params


@contextlib.contextmanager
def _framework_deprecations_ignored() -> Iterator[None]:
    """Silence the registry's "<name> is deprecated in <framework>" warnings: the kit checks numbers.

    ``optimistic_adam`` is both a spec name and a name Optax deprecated, so resolving it under
    ``convention="optax"`` warns as Optax does; that is the user's concern, not the kit's.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".* is deprecated in \w+: ", category=DeprecationWarning)
        yield


def _bind_case(spec: LossSpec, case: LossCase, dtype: str) -> BoundLoss:
    """The reference's bound spec, resolved as ``lossbridge.get`` resolves the spec's name (a
    framework name equal to the spec's name may preset parameters under that convention)."""
    with _framework_deprecations_ignored():
        found = default_registry().resolve(case.spec, case.convention)
    preset = found.preset if found.spec.name == spec.name else {}
    bound = bind(spec, convention=case.convention, params={**preset, **_with_dtype(case, dtype)})
    assert isinstance(bound, BoundLoss)
    return bound


def reference_loss(bound: BoundLoss, case: LossCase, dtype: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The float64 NumPy value and gradients (analytic if the spec has them, else differences)."""
    inputs = case_inputs(bound, case)
    arrays = [_round_to(inputs[i.name], dtype) for i in bound.spec.inputs]
    weight = None if case.sample_weight is None else _round_to(case.sample_weight, dtype)
    if bound.spec.vjp is not None:
        value, grads = bound.value_and_grad(np_xp, *arrays, sample_weight=weight)
    else:
        value = bound(np_xp, *arrays, sample_weight=weight)
        grads = _fd_grads(bound, arrays, weight)
    names = [i.name for i in bound.spec.differentiable_inputs]
    return np.asarray(value, dtype=np.float64), dict(zip(names, (np.asarray(g) for g in grads)))


@dataclass(frozen=True)
class Check:
    """A callable conformance check; ``check()`` raises AssertionError when it fails."""

    check_id: str
    spec: str
    backend: str
    dtype: str
    kind: str  # "loss", "optimizer" or "fd"
    case: LossCase | OptimizerCase
    registry: Registry | None = None

    def __repr__(self) -> str:
        return f"Check({self.check_id})"

    def __call__(self) -> CheckResult:
        result = self.run()
        if not result.passed:
            raise AssertionError(f"{self.check_id}: {result.message}")
        return result

    def run(self) -> CheckResult:
        """Run without raising: a failure or an exception becomes a failed result."""
        tol = tolerance(self.dtype, self.kind)
        try:
            worst, detail = _RUNNERS[self.kind](self)
        except Exception as exc:  # a crash in a backend is a failed check, with its message
            return self._result(False, float("inf"), tol, f"{type(exc).__name__}: {exc}")
        passed = worst <= tol
        message = "" if passed else f"worst relative error {worst:.3g} > {tol:g} ({detail})"
        return self._result(passed, worst, tol, message)

    def _result(self, passed: bool, worst: float, tol: float, message: str) -> CheckResult:
        return CheckResult(self.check_id, self.spec, self.backend, self.dtype, self.kind, passed, worst, tol, message)

    def _get(self) -> Any:
        params = _with_dtype(self.case, self.dtype)
        with _framework_deprecations_ignored():  # a spec named like a name its framework deprecated
            made = lossbridge.get(
                self.spec, backend=self.backend, convention=self.case.convention, registry=self.registry, **params
            )
        reg = self.registry or default_registry()
        if getattr(reg.spec(self.spec), "role", "optimizer") == "transform":  # see TRANSFORM_OPTIMIZER
            opt = lossbridge.get(TRANSFORM_OPTIMIZER[0], backend=self.backend, registry=reg, **TRANSFORM_OPTIMIZER[1])
            return lossbridge.chain(made, opt)
        return made


def _worst(pairs: Sequence[tuple[str, Any, Any]]) -> tuple[float, str]:
    errors = [(relative_error(a, e), name) for name, a, e in pairs]
    worst = max(errors, key=lambda t: t[0])
    return worst[0], f"in {worst[1]}"


def _run_loss(check: Check) -> tuple[float, str]:
    case = check.case
    assert isinstance(case, LossCase)
    reg = check.registry or default_registry()
    spec = reg.spec(check.spec)
    assert isinstance(spec, LossSpec)
    bound = _bind_case(spec, case, "float64")
    ref_value, ref_grads = reference_loss(bound, case, check.dtype)
    backend = reg.backend(check.backend)
    value, grads = backend.loss_value_and_grad(
        check._get(),
        case_inputs(bound, case),
        sample_weight=case.sample_weight,
        differentiable=list(ref_grads),
        dtype=check.dtype,
    )
    pairs = [("value", value, ref_value)] + [(f"d/d{n}", grads.get(n), g) for n, g in ref_grads.items()]
    return _worst(pairs)


def _run_fd(check: Check) -> tuple[float, str]:
    case = check.case
    assert isinstance(case, LossCase)
    reg = check.registry or default_registry()
    spec = reg.spec(check.spec)
    assert isinstance(spec, LossSpec)
    bound = _bind_case(spec, case, "float64")
    inputs = case_inputs(bound, case)
    arrays = [inputs[i.name] for i in bound.spec.inputs]
    _, analytic = bound.value_and_grad(np_xp, *arrays, sample_weight=case.sample_weight)
    numeric = _fd_grads(bound, arrays, case.sample_weight)
    return _worst([(f"d/d{i}", a, n) for i, a, n in zip(range(len(numeric)), analytic, numeric)])


#: A gradient transform (``OptimizerSpec.role == "transform"``) is checked as the chain
#: ``lossbridge.chain(transform, sgd(lr=0.1))`` on every backend that chains (NumPy, torch, JAX), against the
#: same chain on NumPy in float64; the parameters then follow a descent whose every step goes through it.
TRANSFORM_OPTIMIZER: tuple[str, dict[str, Any]] = ("sgd", {"lr": 0.1})


def _numpy_optimizer(spec: OptimizerSpec, case: OptimizerCase) -> Any:
    """The NumPy reference of a case: the optimizer, or a transform chained before :data:`TRANSFORM_OPTIMIZER`."""
    bound = bind(spec, convention=case.convention, params=case.params)
    assert isinstance(bound, BoundOptimizer)
    if spec.role != "transform":
        return NumpyOptimizer(bound)
    from lossbridge.chain import NumpyChain, NumpyTransform

    sgd = bind(default_registry().spec(TRANSFORM_OPTIMIZER[0]), params=TRANSFORM_OPTIMIZER[1])
    assert isinstance(sgd, BoundOptimizer)
    return NumpyChain((NumpyTransform(bound), NumpyOptimizer(sgd)))


def _chains(target: Any, spec: str, registry: Registry) -> bool:
    """Whether ``target`` chains a gradient transform before an optimizer (``lossbridge.chain``): one probe
    per backend. TensorFlow does not (Keras's base-optimizer options are its native transforms, verified in
    tests/conventions/test_transform_oracles.py); array-api-strict has no chain object (the transform specs'
    purity is checked on array-api-strict in tests/spec/test_transforms.py)."""
    if target.name not in _CHAIN_SUPPORT:
        try:
            lossbridge.chain(lossbridge.get(spec, backend=target.name, registry=registry),
                             lossbridge.get(TRANSFORM_OPTIMIZER[0], backend=target.name, registry=registry))
            _CHAIN_SUPPORT[target.name] = True
        except (BackendError, lossbridge.ParameterError):
            _CHAIN_SUPPORT[target.name] = False
    return _CHAIN_SUPPORT[target.name]


_CHAIN_SUPPORT: dict[str, bool] = {}


def reference_trajectory(
    spec: OptimizerSpec, case: OptimizerCase
) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """Closed-loop float64 NumPy run: the gradient sequence it saw and the parameters after each step."""
    optimizer = _numpy_optimizer(spec, case)
    params, grad = least_squares()
    current = [p.copy() for p in params]
    grads, path = [], []
    for _ in range(TRAJECTORY_STEPS):
        g = grad(current)
        grads.append(g)
        optimizer.step(current, g)
        path.append([p.copy() for p in current])
    return grads, path


def _run_optimizer(check: Check) -> tuple[float, str]:
    case = check.case
    assert isinstance(case, OptimizerCase)
    reg = check.registry or default_registry()
    spec = reg.spec(check.spec)
    assert isinstance(spec, OptimizerSpec)
    grads, expected = reference_trajectory(spec, case)
    start, _ = least_squares()
    backend = reg.backend(check.backend)
    rounded = [[_round_to(g, check.dtype) for g in step] for step in grads]
    path = backend.optimizer_trajectory(
        check._get(), [_round_to(p, check.dtype) for p in start], rounded, dtype=check.dtype
    )
    if check.dtype != "float64":  # the reference must see the same rounded gradients
        expected = _reference_on(spec, case, start, rounded, check.dtype)
    pairs = [
        (f"step {t + 1} param {k}", a, e)
        for t, (pa, pe) in enumerate(zip(path, expected))
        for k, (a, e) in enumerate(zip(pa, pe))
    ]
    return _worst(pairs) if len(path) == len(expected) else (float("inf"), f"{len(path)} steps returned")


def _reference_on(
    spec: OptimizerSpec, case: OptimizerCase, start: list[np.ndarray], grads: list[list[np.ndarray]], dtype: str
) -> list[list[np.ndarray]]:
    optimizer = _numpy_optimizer(spec, case)
    current = [_round_to(p, dtype) for p in start]
    if spec.global_slots:
        # Prodigy-type d-estimates difference x0 - x (cancellation) and take maxima, so a low-precision
        # run departs from float64 by far more than rounding: the reference runs in that dtype too
        current = [p.astype(dtype) for p in current]
        grads = [[g.astype(dtype) for g in step] for step in grads]
    path = []
    for g in grads:
        optimizer.step(current, g)
        path.append([p.copy() for p in current])
    return path


def _wants_fd(spec: LossSpec | OptimizerSpec, case: LossCase | OptimizerCase) -> bool:
    """Finite differences for the reduced ("mean") and weighted cases of specs with a vjp."""
    if not isinstance(case, LossCase) or not isinstance(spec, LossSpec) or spec.vjp is None:
        return False
    return case.variant.endswith(("-mean", "-sample_weight")) or case.variant == "weighted"


_RUNNERS: Mapping[str, Callable[[Check], tuple[float, str]]] = {
    "loss": _run_loss,
    "optimizer": _run_optimizer,
    "fd": _run_fd,
}


_GLOBAL_STATE_SUPPORT: dict[str, bool] = {}


def _runs_global_state(target: Any, spec: str, registry: Registry) -> bool:
    """Whether ``target`` runs optimizers with global state (``OptimizerSpec.global_slots``): one
    probe step per backend; a backend without it refuses with a :class:`~lossbridge.BackendError`."""
    if target.name not in _GLOBAL_STATE_SUPPORT:
        try:
            opt = lossbridge.get(spec, backend=target.name, registry=registry)
            start = [np.ones((2, 2)), np.ones((2,))]
            target.optimizer_trajectory(opt, start, [[np.ones((2, 2)), np.ones((2,))]], dtype="float64")
            _GLOBAL_STATE_SUPPORT[target.name] = True
        except Exception as exc:  # a tf.function wraps the BackendError in its own error
            # only the refusal skips; any other failure leaves the checks in, to fail with their message
            _GLOBAL_STATE_SUPPORT[target.name] = not (isinstance(exc, BackendError) or "global_slots" in str(exc))
    return _GLOBAL_STATE_SUPPORT[target.name]


def generate_checks(
    backend: str,
    *,
    specs: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    registry: Registry | None = None,
) -> list[Check]:
    """Every check of ``backend``: each spec's cases in each dtype (and the spec's own gradient
    against finite differences when ``backend`` is ``"numpy"``)."""
    reg = registry or default_registry()
    target = reg.backend(backend)
    wanted = {reg.spec(s).name for s in specs} if specs is not None else None
    kinds = tuple(dtypes or target.dtypes)
    checks: list[Check] = []
    for spec, _ in sorted(reg.specs(), key=lambda t: t[0].name):
        if wanted is not None and spec.name not in wanted:
            continue
        if spec.kind == "schedule":
            continue  # schedules are checked by generate_schedule_checks
        if getattr(spec, "role", "optimizer") == "transform" and not _chains(target, spec.name, reg):
            continue  # no chain on this backend (see _chains)
        if getattr(spec, "closure_step", None) is not None:
            # L-BFGS-type specs need the objective at trial points (a closure), not a fixed gradient
            # sequence: the kit's trajectories replay precomputed gradients, which such a step cannot
            # consume. Their cross-backend agreement (numpy, torch, jax) is tests/spec/test_optimizers_lbfgs.py
            # and tests/conventions/test_lbfgs_oracles.py.
            continue
        if getattr(spec, "needs", ()):
            # the kit's trajectories feed gradients only; a step that also needs the loss value, a Hessian
            # estimate or a noise sample (OptimizerSpec.needs) is checked across backends by
            # tests/spec/test_optimizers_oracle.py, tests/conventions/test_oracle_optim_oracles.py and
            # plugins/lossbridge-{torch,jax}/tests/test_oracle_optim.py (and fuzzed on NumPy)
            continue
        if getattr(spec, "global_slots", ()) and not _runs_global_state(target, spec.name, reg):
            continue  # the backend refuses global_slots with a BackendError (tested where it is supported)
        cases: Sequence[LossCase | OptimizerCase] = (
            loss_cases(spec) if isinstance(spec, LossSpec) else optimizer_cases(spec)
        )
        for case in cases:
            for dtype in kinds:
                if dtype != "float64" and isinstance(case, LossCase) and case.edge:
                    continue  # clipping thresholds move with the dtype; edges are checked in float64
                cid = f"{target.name}-{spec.name}-{case.variant}-{dtype}"
                checks.append(Check(cid, spec.name, target.name, dtype, spec.kind, case, registry))
            if target.name == "numpy" and _wants_fd(spec, case):
                cid = f"{target.name}-{spec.name}-{case.variant}-fd"
                checks.append(Check(cid, spec.name, target.name, "float64", "fd", case, registry))
    return checks
