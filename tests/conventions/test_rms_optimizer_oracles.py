"""RMSprop, Adagrad and Adadelta under each framework's convention against the REAL optimizer.

Both sides are built the framework's way: ``lossbridge.get("RMSprop", convention="torch",
alpha=0.9)`` next to ``torch.optim.RMSprop(params, alpha=0.9)`` (native name, native keyword
arguments), and each minimizes the same least-squares problem plus a non-convex term from its own
iterates, in float64, for 100 steps; every iterate must agree to 1e-10 relative. One case per
framework changes the learning rate after step 50 the way that framework's users do (torch
``param_groups``, the Keras ``learning_rate`` setter, Optax ``inject_hyperparams``); lossbridge's
NumPy optimizer uses ``set_hyper(lr=...)``.

The learning rates keep the 100 steps away from the regime where RMSprop's nearly sign-like steps
chatter around the minimum: there the frameworks' last-bit differences (``rsqrt(v) * g`` against
``g / sqrt(v)``) grow chaotically, whatever the formula.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import pytest

import lossbridge

STEPS = 100
RTOL = 1e-10
LR_CHANGE_STEP = 50


class Case(NamedTuple):
    name: str  # the framework's own name: torch class, Keras class, Optax function
    native: dict[str, Any]  # the framework's own keyword arguments, given to both sides
    new_lr: float | None = None  # set after LR_CHANGE_STEP steps (both sides)


# -- the problem: 0.5 * mean((A p - b)^2) + 0.1 * sum(cos(2 p)) for each parameter p ------------
def _problem() -> tuple[list[np.ndarray], Callable[[list[np.ndarray]], list[np.ndarray]]]:
    rng = np.random.default_rng(11)
    start = [rng.normal(size=(3,)), rng.normal(size=(3, 2))]
    mats = [rng.normal(size=(8, 3)) for _ in start]
    targets = [rng.normal(size=(8,)), rng.normal(size=(8, 2))]

    def grad(params: list[np.ndarray]) -> list[np.ndarray]:
        return [
            a.T @ (a @ p - b) / a.shape[0] - 0.2 * np.sin(2.0 * p)
            for p, a, b in zip(params, mats, targets, strict=True)
        ]

    return start, grad


def _lossbridge_trajectory(case: Case, convention: str) -> list[list[np.ndarray]]:
    opt = lossbridge.get(case.name, convention=convention, **case.native)
    start, grad = _problem()
    params = [p.copy() for p in start]
    out = []
    for t in range(1, STEPS + 1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            opt.set_hyper(lr=case.new_lr)
        opt.step(params, grad(params))
        out.append([p.copy() for p in params])
    return out


def _assert_same(actual: list[list[np.ndarray]], expected: list[list[np.ndarray]]) -> None:
    assert len(actual) == len(expected) == STEPS
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        for k, (a, e) in enumerate(zip(got, want, strict=True)):
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= RTOL, f"step {t}, parameter {k}: relative error {err:.3g}"


def _ids(cases: list[Case]) -> list[str]:
    return [
        f"{c.name}-"
        + ("-".join(f"{k}={v}" for k, v in c.native.items()) or "default")
        + ("-lr_change" if c.new_lr is not None else "")
        for c in cases
    ]


# -- torch ------------------------------------------------------------------------------------------
TORCH_CASES = [
    Case("RMSprop", {}),
    Case("RMSprop", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "momentum": 0.8, "centered": True, "weight_decay": 0.05}),
    Case("RMSprop", {"lr": 1e-3, "momentum": 0.9}, new_lr=5e-3),
    Case("Adagrad", {}),
    Case("Adagrad", {"lr": 0.05, "lr_decay": 0.01, "initial_accumulator_value": 0.2, "eps": 1e-6, "weight_decay": 0.1}),
    Case("Adagrad", {"lr": 0.05}, new_lr=0.01),
    Case("Adadelta", {}),
    Case("Adadelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-4, "weight_decay": 0.1}),
    Case("Adadelta", {}, new_lr=2.0),
]


def _torch_trajectory(torch: Any, case: Case) -> list[list[np.ndarray]]:
    start, grad = _problem()
    params = [torch.tensor(p, dtype=torch.float64) for p in start]
    opt = getattr(torch.optim, case.name)(params, **case.native)
    out = []
    for t in range(1, STEPS + 1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            for group in opt.param_groups:
                group["lr"] = case.new_lr
        for p, g in zip(params, grad([p.numpy() for p in params]), strict=True):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append([p.numpy().copy() for p in params])
    return out


@pytest.mark.parametrize("case", TORCH_CASES, ids=_ids(TORCH_CASES))
def test_torch_rms_optimizers_match_torch_optim(case: Case) -> None:
    torch = pytest.importorskip("torch")
    _assert_same(_lossbridge_trajectory(case, "torch"), _torch_trajectory(torch, case))


# -- keras ------------------------------------------------------------------------------------------
KERAS_CASES = [
    Case("RMSprop", {}),
    Case("RMSprop", {"learning_rate": 3e-3, "rho": 0.8, "epsilon": 1e-5, "momentum": 0.7, "centered": True}),
    Case("RMSprop", {"momentum": 0.9, "weight_decay": 0.1}, new_lr=3e-3),
    Case("Adagrad", {}),
    Case("Adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.3, "epsilon": 1e-5, "weight_decay": 0.1}),
    Case("Adagrad", {"learning_rate": 0.05}, new_lr=0.01),
    Case("Adadelta", {}),
    Case("Adadelta", {"learning_rate": 0.7, "rho": 0.9, "epsilon": 1e-5, "weight_decay": 0.1}),
    Case("Adadelta", {"learning_rate": 1.0}, new_lr=0.3),
]


@pytest.fixture(scope="module")
def keras() -> Iterator[Any]:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() == "jax":
        pytest.importorskip("jax").config.update("jax_enable_x64", True)
    yield keras


def _keras_numpy(variable: Any) -> np.ndarray:
    value = variable.value  # keras.ops.convert_to_numpy trips numpy 2's copy-keyword DeprecationWarning
    return np.array(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)


def _keras_trajectory(keras: Any, case: Case) -> list[list[np.ndarray]]:
    start, grad = _problem()
    variables = [keras.Variable(p, dtype="float64") for p in start]
    opt = getattr(keras.optimizers, case.name)(**case.native)

    def apply(grads: list[Any]) -> None:
        opt.apply_gradients(zip(grads, variables, strict=True))

    if keras.backend.backend() == "tensorflow":  # a compiled train step, as model.fit runs it
        apply = pytest.importorskip("tensorflow").function(apply)
    out = []
    for t in range(1, STEPS + 1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            opt.learning_rate = case.new_lr
        grads = grad([_keras_numpy(v) for v in variables])
        apply([keras.ops.convert_to_tensor(g, dtype="float64") for g in grads])
        out.append([_keras_numpy(v) for v in variables])
    return out


@pytest.mark.parametrize("case", KERAS_CASES, ids=_ids(KERAS_CASES))
def test_keras_rms_optimizers_match_keras_optimizers(keras: Any, case: Case) -> None:
    _assert_same(_lossbridge_trajectory(case, "keras"), _keras_trajectory(keras, case))


def test_keras_adagrad_float32_initial_accumulator_matters(keras: Any) -> None:
    """Keras fills the accumulator with float32(0.1); filling it exactly misses by far more than 1e-10."""
    case = Case("Adagrad", {"learning_rate": 0.1})
    expected = _keras_trajectory(keras, case)
    _assert_same(_lossbridge_trajectory(case, "keras"), expected)
    exact = _lossbridge_trajectory(case._replace(native={**case.native, "initial_accumulator_dtype": None}), "keras")
    with pytest.raises(AssertionError, match="relative error"):
        _assert_same(exact, expected)


# -- optax ------------------------------------------------------------------------------------------
OPTAX_CASES = [
    Case("rmsprop", {"learning_rate": 2e-3}),
    Case(
        "rmsprop",
        {"learning_rate": 3e-3, "decay": 0.8, "eps": 1e-5, "initial_scale": 0.1, "momentum": 0.7, "nesterov": True},
    ),
    Case("rmsprop", {"learning_rate": 1e-3, "centered": True, "eps_in_sqrt": False, "momentum": 0.5}),
    Case("rmsprop", {"learning_rate": 3e-3, "bias_correction": True, "centered": True, "eps": 1e-4}),
    Case("rmsprop", {"learning_rate": 1e-2, "momentum": 0.9}, new_lr=3e-3),
    Case("adagrad", {"learning_rate": 0.05}),
    Case("adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.0, "eps": 1e-3}, new_lr=0.2),
    Case("adadelta", {"learning_rate": 1.0}),
    Case("adadelta", {"learning_rate": 0.5, "rho": 0.95, "eps": 1e-4, "weight_decay": 0.1}),
    Case("adadelta", {"learning_rate": 1.0}, new_lr=3.0),
]
_OPTAX_STATIC = ("eps_in_sqrt", "centered", "nesterov", "bias_correction")


@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _optax_trajectory(optax: Any, case: Case) -> list[list[np.ndarray]]:
    import jax.numpy as jnp

    start, grad = _problem()
    static = tuple(k for k in _OPTAX_STATIC if k in case.native)
    tx = optax.inject_hyperparams(getattr(optax, case.name), static_args=static)(**case.native)
    params = [jnp.asarray(p) for p in start]
    state = tx.init(params)
    out = []
    for t in range(1, STEPS + 1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            state.hyperparams["learning_rate"] = jnp.asarray(case.new_lr)
        grads = grad([np.asarray(p) for p in params])
        updates, state = tx.update([jnp.asarray(g) for g in grads], state, params)
        params = optax.apply_updates(params, updates)
        out.append([np.asarray(p, dtype=np.float64) for p in params])
    return out


@pytest.mark.parametrize("case", OPTAX_CASES, ids=_ids(OPTAX_CASES))
def test_optax_rms_optimizers_match_optax(optax: Any, case: Case) -> None:
    _assert_same(_lossbridge_trajectory(case, "optax"), _optax_trajectory(optax, case))
