"""Adamax, NAdam, RAdam, AdaBelief, Yogi, Adan and the Adam family's native names against the real optimizers.

Each case runs 100 float64 steps of a least-squares problem plus a non-convex ``0.1 sin(3 theta)`` term;
every run computes its gradients from its own iterates. The framework optimizer is built with its own
keyword arguments (torch ``betas``, Keras ``learning_rate``/``epsilon``, Optax ``b1``/``b2``) and
lossbridge under the framework's convention; every iterate must agree to 1e-10 relative. One case per
framework changes the learning rate after step 50 the native way (``param_groups``, the Keras
``learning_rate`` setter, Optax ``inject_hyperparams``). ``test_*_native_names`` check that the
framework's own name and keyword arguments resolve to the same spec and hyperparameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import (
    KerasSteps,
    LossbridgeSteps,
    OptaxSteps,
    Params,
    Steps,
    TorchSteps,
    Trajectory,
    assert_same,
    case_ids,
    keras_module,
    optax_injected,
    optax_module,
    trajectory,
)

keras = pytest.fixture(scope="module", name="keras")(keras_module)
optax = pytest.fixture(scope="module", name="optax")(optax_module)


class Case(NamedTuple):
    spec: str
    native_name: str  # the framework's own name (class or function)
    params: dict[str, Any]  # lossbridge hyperparameters on top of the convention
    native: dict[str, Any]  # the framework's own keyword arguments
    new_lr: float | None = None  # set after LR_CHANGE_STEP steps (both sides)


# -- the problem: least squares plus a non-convex term ----------------------------------------------
_RNG = np.random.default_rng(11)
_A = _RNG.normal(size=(8, 3))
_TARGETS = (_RNG.normal(size=(8,)), _RNG.normal(size=(8, 2)))
_START = (_RNG.normal(size=(3,)), _RNG.normal(size=(3, 2)))


def _grads(params: list[np.ndarray]) -> list[np.ndarray]:
    """Gradient of 0.5 ||A p - y||^2 / 8 + 0.1 sum(sin(3 p)) for each parameter."""
    return [_A.T @ (_A @ p - y) / 8 + 0.3 * np.cos(3 * p) for p, y in zip(params, _TARGETS, strict=True)]


def _trajectory(steps: Callable[[Params], Steps], new_lr: float | None) -> Trajectory:
    start = list(_START)
    return trajectory(steps(start), start, _grads, new_lr)


def _lossbridge_trajectory(case: Case, convention: str) -> Trajectory:
    opt = lossbridge.get(case.spec, convention=convention, **case.params)
    return _trajectory(lambda start: LossbridgeSteps(opt, start), case.new_lr)


def _assert_native_name_resolves(case: Case, convention: str) -> None:
    native = lossbridge.get(case.native_name, convention=convention, **case.native)
    ours = lossbridge.get(case.spec, convention=convention, **case.params)
    assert native.spec.name == case.spec
    assert native.hyper == ours.hyper


# -- torch ------------------------------------------------------------------------------------------
_TORCH_FAST = {"lr": 0.01, "betas": (0.8, 0.99)}
_FAST = {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99}
TORCH_CASES = [
    Case("adamax", "Adamax", {}, {}),
    Case(
        "adamax",
        "Adamax",
        {**_FAST, "eps": 1e-6, "weight_decay": 0.1},
        {**_TORCH_FAST, "eps": 1e-6, "weight_decay": 0.1},
    ),
    Case("adamax", "Adamax", {}, {}, new_lr=0.02),
    Case("nadam", "NAdam", {}, {}),
    Case(
        "nadam",
        "NAdam",
        {**_FAST, "momentum_decay": 0.05, "weight_decay": 0.05},
        {**_TORCH_FAST, "momentum_decay": 0.05, "weight_decay": 0.05},
    ),
    Case(
        "nadam",
        "NAdam",
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
    ),
    Case("nadam", "NAdam", {}, {}, new_lr=0.01),
    Case("radam", "RAdam", {}, {}),
    Case(
        "radam", "RAdam", {**_FAST, "eps": 1e-6, "weight_decay": 0.1}, {**_TORCH_FAST, "eps": 1e-6, "weight_decay": 0.1}
    ),
    Case(
        "radam",
        "RAdam",
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
    ),
    Case("radam", "RAdam", {}, {}, new_lr=0.01),
]
TORCH_NAMES = [
    Case("adam", "Adam", {**_FAST, "amsgrad": True}, {**_TORCH_FAST, "amsgrad": True}),
    Case(
        "adam",
        "Adam",
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
    ),
    Case("adamw", "AdamW", {"weight_decay": 0.05}, {"weight_decay": 0.05}),
    *TORCH_CASES[::3],
]


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _torch_trajectory(torch: Any, case: Case) -> Trajectory:
    return _trajectory(lambda start: TorchSteps(torch, case.native_name, case.native, start), case.new_lr)


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_ids(TORCH_CASES, "native_name"))
def test_torch_convention_matches_torch_optim(torch: Any, case: Case) -> None:
    assert_same(_lossbridge_trajectory(case, "torch"), _torch_trajectory(torch, case))


@pytest.mark.parametrize("case", TORCH_NAMES, ids=case_ids(TORCH_NAMES, "native_name"))
def test_torch_native_names(case: Case) -> None:
    _assert_native_name_resolves(case, "torch")


def test_torch_nadam_float32_product_matters(torch: Any) -> None:
    """torch keeps NAdam's running product of mu in float32; exact float64 misses it by far more than 1e-10."""
    case = Case("nadam", "NAdam", {"product_dtype": None, "lr": 0.1}, {"lr": 0.1})
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(_lossbridge_trajectory(case, "torch"), _torch_trajectory(torch, case))


# -- keras ------------------------------------------------------------------------------------------
_KERAS_FAST = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99}
KERAS_CASES = [
    Case("adamax", "Adamax", {}, {}),
    Case(
        "adamax",
        "Adamax",
        {**_FAST, "eps": 1e-6, "weight_decay": 0.1},
        {**_KERAS_FAST, "epsilon": 1e-6, "weight_decay": 0.1},
    ),
    Case("adamax", "Adamax", {}, {}, new_lr=0.01),
    Case("nadam", "Nadam", {}, {}),
    Case(
        "nadam",
        "Nadam",
        {**_FAST, "eps": 1e-6, "weight_decay": 0.1},
        {**_KERAS_FAST, "epsilon": 1e-6, "weight_decay": 0.1},
    ),
    Case("nadam", "Nadam", {}, {}, new_lr=0.01),
]
KERAS_NAMES = [
    Case("adam", "Adam", {**_FAST, "eps": 1e-6}, {**_KERAS_FAST, "epsilon": 1e-6}),
    Case("adamw", "AdamW", {"weight_decay": 0.05}, {"weight_decay": 0.05}),
    Case("lamb", "Lamb", {"lr": 0.01}, {"learning_rate": 0.01}),
    *KERAS_CASES[::3],
]


def _keras_trajectory(keras: Any, case: Case) -> Trajectory:
    return _trajectory(lambda start: KerasSteps(keras, case.native_name, case.native, start), case.new_lr)


@pytest.mark.parametrize("case", KERAS_CASES, ids=case_ids(KERAS_CASES, "native_name"))
def test_keras_convention_matches_keras_optimizers(keras: Any, case: Case) -> None:
    assert_same(_lossbridge_trajectory(case, "keras"), _keras_trajectory(keras, case))


@pytest.mark.parametrize("case", KERAS_NAMES, ids=case_ids(KERAS_NAMES, "native_name"))
def test_keras_native_names(case: Case) -> None:
    _assert_native_name_resolves(case, "keras")


@pytest.mark.parametrize(
    ("spec", "name", "exact"),
    [("adamax", "Adamax", {"bias_correction_dtype": None}), ("nadam", "Nadam", {"factor_dtype": None})],
)
def test_keras_float32_hyperparameters_matter(keras: Any, spec: str, name: str, exact: dict[str, Any]) -> None:
    """Without Keras's float32 casts, lossbridge would miss Keras by far more than 1e-10."""
    case = Case(spec, name, exact, {})
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(_lossbridge_trajectory(case, "keras"), _keras_trajectory(keras, case))


# -- optax ------------------------------------------------------------------------------------------
_OPTAX_FAST = {"learning_rate": 0.01, "b1": 0.8, "b2": 0.99}
_DECOUPLED = {"decoupled_weight_decay": True}
OPTAX_CASES = [
    Case("adamax", "adamax", {"lr": 1e-3}, {"learning_rate": 1e-3}),
    Case("adamax", "adamax", {**_FAST, "eps": 1e-6}, {**_OPTAX_FAST, "eps": 1e-6}),
    Case(
        "adamax",
        "adamaxw",
        {"lr": 0.01, "weight_decay": 0.1, **_DECOUPLED},
        {"learning_rate": 0.01, "weight_decay": 0.1},
    ),
    Case("adamax", "adamax", {"lr": 1e-3}, {"learning_rate": 1e-3}, new_lr=0.01),
    Case("nadam", "nadam", {"lr": 1e-3}, {"learning_rate": 1e-3}),
    Case(
        "nadam",
        "nadam",
        {**_FAST, "eps": 1e-6, "eps_root": 1e-8},
        {**_OPTAX_FAST, "eps": 1e-6, "eps_root": 1e-8},
    ),
    Case("nadam", "nadamw", {"lr": 1e-3, "weight_decay": 1e-4, **_DECOUPLED}, {"learning_rate": 1e-3}),
    Case(
        "nadam",
        "nadamw",
        {"lr": 0.01, "weight_decay": 0.1, **_DECOUPLED},
        {"learning_rate": 0.01, "weight_decay": 0.1},
    ),
    Case("nadam", "nadam", {"lr": 1e-3}, {"learning_rate": 1e-3}, new_lr=0.01),
    Case("radam", "radam", {"lr": 1e-3}, {"learning_rate": 1e-3}),
    Case(
        "radam",
        "radam",
        {**_FAST, "eps": 1e-6, "eps_root": 1e-8, "threshold": 6.0},
        {**_OPTAX_FAST, "eps": 1e-6, "eps_root": 1e-8, "threshold": 6.0},
    ),
    Case("radam", "radam", {"lr": 1e-3}, {"learning_rate": 1e-3}, new_lr=0.01),
    Case("adabelief", "adabelief", {"lr": 1e-3}, {"learning_rate": 1e-3}),
    Case(
        "adabelief",
        "adabelief",
        {**_FAST, "eps": 1e-8, "eps_root": 1e-10},
        {**_OPTAX_FAST, "eps": 1e-8, "eps_root": 1e-10},
    ),
    Case("adabelief", "adabelief", {"lr": 1e-3}, {"learning_rate": 1e-3}, new_lr=0.01),
    Case("yogi", "yogi", {"lr": 1e-2}, {"learning_rate": 1e-2}),
    Case("yogi", "yogi", {**_FAST, "eps": 1e-4}, {**_OPTAX_FAST, "eps": 1e-4}),
    Case("yogi", "yogi", {"lr": 1e-2}, {"learning_rate": 1e-2}, new_lr=1e-3),
    Case("adan", "adan", {"lr": 1e-3}, {"learning_rate": 1e-3}),
    Case(
        "adan",
        "adan",
        {**_FAST, "beta_3": 0.95, "eps_root": 0.0, "weight_decay": 0.1},
        {**_OPTAX_FAST, "b3": 0.95, "eps_root": 0.0, "weight_decay": 0.1},
    ),
    Case("adan", "adan", {"lr": 1e-3}, {"learning_rate": 1e-3}, new_lr=0.01),
]
OPTAX_NAMES = [
    Case("adam", "adam", {"lr": 0.01, "eps_root": 1e-8}, {"learning_rate": 0.01, "eps_root": 1e-8}),
    Case("adam", "amsgrad", {"lr": 0.01, "amsgrad": True}, {"learning_rate": 0.01}),
    Case("adamw", "adamw", {"lr": 0.01}, {"learning_rate": 0.01}),
    Case("lamb", "lamb", {"lr": 0.01, "weight_decay": 0.1}, {"learning_rate": 0.01, "weight_decay": 0.1}),
    *OPTAX_CASES,
]


def _optax_trajectory(optax: Any, case: Case) -> Trajectory:
    tx = optax_injected(optax, case.native_name, case.native)
    return _trajectory(lambda start: OptaxSteps(optax, tx, start, jit=True), case.new_lr)


@pytest.mark.parametrize("case", OPTAX_CASES, ids=case_ids(OPTAX_CASES, "native_name"))
def test_optax_convention_matches_optax(optax: Any, case: Case) -> None:
    assert_same(_lossbridge_trajectory(case, "optax"), _optax_trajectory(optax, case))


@pytest.mark.parametrize("case", OPTAX_NAMES, ids=case_ids(OPTAX_NAMES, "native_name"))
def test_optax_native_names(case: Case) -> None:
    _assert_native_name_resolves(case, "optax")


def test_every_variant_convention_has_an_oracle() -> None:
    covered = {
        "torch": {c.spec for c in TORCH_CASES},
        "keras": {c.spec for c in KERAS_CASES},
        "optax": {c.spec for c in OPTAX_CASES},
    }
    for name in ("adamax", "nadam", "radam", "adabelief", "yogi", "adan"):
        for framework in lossbridge.spec(name).conventions:
            assert name in covered[framework], f"{name}: convention {framework!r} has no oracle"
