"""Case generation from a spec's declaration: parameter variants, shapes and inputs from domains."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossbridge.bound import BoundLoss, bind
from lossbridge.spec._domain import domain
from lossbridge.spec._model import LossSpec, OptimizerSpec
from lossbridge.spec._params import Param

__all__ = [
    "LossCase",
    "OptimizerCase",
    "least_squares",
    "loss_cases",
    "optimizer_cases",
    "param_variants",
]

_ELEMENTWISE_SHAPES = ((7,), (4, 3))
_CLASS_SHAPES = ((6, 4), (2, 3, 5))


@dataclass(frozen=True)
class LossCase:
    """One loss evaluation: parameters, convention and float64 NumPy inputs keyed by input name."""

    spec: str
    variant: str
    convention: str | None
    params: Mapping[str, Any]
    inputs: Mapping[str, np.ndarray]
    sample_weight: np.ndarray | None = None
    edge: bool = False


@dataclass(frozen=True)
class OptimizerCase:
    """One optimizer run: parameters and convention; the problem is :func:`least_squares`."""

    spec: str
    variant: str
    convention: str | None
    params: Mapping[str, Any] = field(default_factory=dict)


def _is_zero_float(p: Param) -> bool:
    return p.kind == "float" and not p.static and p.default == 0.0 and p.name != "lr"


def param_variants(spec: LossSpec | OptimizerSpec) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """``(variant id, convention, params)``: defaults, each convention, each static switch."""
    active = {p.name: min(0.1, p.high / 2 if p.high else 0.1) for p in spec.params if _is_zero_float(p)}
    yield "default", None, {}
    for fw in sorted(spec.conventions):
        yield fw, fw, {}
    if active:
        yield "active", None, dict(active)
    for p in spec.params:
        if p.kind == "bool" and p.static:
            yield f"{p.name}={not p.default}", None, {**active, p.name: not p.default}
        elif p.kind == "choice" and p.static:
            for choice in p.choices:
                if choice != p.default:
                    yield f"{p.name}={choice}", None, {**active, p.name: choice}


def _bound_params(spec: LossSpec, convention: str | None, params: Mapping[str, Any]) -> Mapping[str, Any]:
    bound = bind(spec, convention=convention, params=params)
    assert isinstance(bound, BoundLoss)
    return bound.params


def _shapes(spec: LossSpec) -> tuple[tuple[int, ...], ...]:
    shapes = _ELEMENTWISE_SHAPES if spec.elementwise else _CLASS_SHAPES
    return tuple(s for s in shapes if len(s) >= spec.min_ndim) or (shapes[-1],)


def _inputs(
    spec: LossSpec, resolved: Mapping[str, Any], shape: tuple[int, ...], rng: np.random.Generator, edge: bool
) -> dict[str, np.ndarray]:
    out = {}
    for decl in spec.inputs:
        dom = domain(decl.domain_for(resolved))
        x = dom.sample(rng, shape, np.float64, edge and decl.differentiable)
        out[decl.name] = np.asarray(x)
    return out


def _weighting_params(spec: LossSpec, shape: tuple[int, ...]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if "class_weight" in spec.weighting:
        extra["class_weight"] = np.linspace(0.5, 2.0, shape[-1])
    if "ignore_index" in spec.weighting:
        extra["ignore_index"] = 1
    return extra


def _has_batch_axis(spec: LossSpec, conv: str | None, params: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    """Whether the unreduced values keep a batch axis to weight (a whole-batch Dice does not)."""
    import array_api_compat.numpy as np_xp

    bound = bind(spec, convention=conv, params={**params, "reduction": "none", "dtype": "float64"})
    assert isinstance(bound, BoundLoss)
    values = bound(np_xp, *(inputs[i.name] for i in spec.inputs), check_values=False)
    return bool(np.ndim(values) >= 1)


def loss_cases(spec: LossSpec, *, seed: int = 0) -> list[LossCase]:
    """Cases for one loss spec: every variant x shape, reductions, weights and edge values."""
    rng = np.random.default_rng(seed)
    cases = []
    for variant, conv, params in param_variants(spec):
        resolved = _bound_params(spec, conv, params)
        for shape in _shapes(spec):
            tag = f"{variant}-{'x'.join(map(str, shape))}"
            inputs = _inputs(spec, resolved, shape, rng, edge=False)
            for reduction in ("mean", "sum", "none"):
                cases.append(
                    LossCase(spec.name, f"{tag}-{reduction}", conv, {**params, "reduction": reduction}, inputs)
                )
        shape = next((s for s in _shapes(spec) if len(s) == 2), _shapes(spec)[-1])
        inputs = _inputs(spec, resolved, shape, rng, edge=False)
        weight = rng.uniform(0.0, 2.0, size=shape[:1])  # one weight per sample
        if _has_batch_axis(spec, conv, params, inputs):
            cases.append(
                LossCase(spec.name, f"{variant}-sample_weight", conv, dict(params), inputs, sample_weight=weight)
            )
        cases.append(
            LossCase(
                spec.name,
                f"{variant}-edge",
                conv,
                dict(params),
                _inputs(spec, resolved, shape, rng, edge=True),
                edge=True,
            )
        )
        if spec.kinks is not None:
            kinked = spec.kinks(rng, _inputs(spec, resolved, shape, rng, edge=False), resolved)
            cases.append(LossCase(spec.name, f"{variant}-kinks", conv, dict(params), kinked, edge=True))
    if spec.weighting:
        shape = _shapes(spec)[-1]
        params = _weighting_params(spec, shape)
        inputs = _inputs(spec, _bound_params(spec, None, params), shape, rng, edge=False)
        cases.append(LossCase(spec.name, "weighted", None, params, inputs))
    return cases


def optimizer_cases(spec: OptimizerSpec) -> list[OptimizerCase]:
    """Cases for one optimizer spec: every variant on the least-squares problem."""
    return [OptimizerCase(spec.name, variant, conv, params) for variant, conv, params in param_variants(spec)]


def least_squares(seed: int = 0) -> tuple[list[np.ndarray], Any]:
    """Initial parameters ``[W (4, 3), b (3,)]`` and the gradient of 0.5*||X W + b - Y||^2 / n."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 4))
    y = rng.normal(size=(8, 3))
    params = [rng.normal(size=(4, 3)), rng.normal(size=(3,))]

    def grad(p: list[np.ndarray]) -> list[np.ndarray]:
        residual = (x @ p[0] + p[1] - y) / len(x)
        return [x.T @ residual, residual.sum(axis=0)]

    return params, grad
