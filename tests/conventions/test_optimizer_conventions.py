"""Each optimizer convention, on the NumPy backend, against the REAL framework optimizer in float64.

The same gradient sequence is fed to torch.optim / keras.optimizers / optax and to
``lossbridge.get(name, convention=...)`` for 100 steps; every iterate must agree to 1e-10 relative.
Frameworks are imported with ``pytest.importorskip``. A case may change the learning rate after
step 50 the way a framework user would (param_groups, the Keras ``learning_rate`` setter, Optax
``inject_hyperparams``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import (
    STEPS,
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
    optax_module,
    trajectory,
)

keras = pytest.fixture(scope="module", name="keras")(keras_module)
optax = pytest.fixture(scope="module", name="optax")(optax_module)


class Case(NamedTuple):
    spec: str
    params: dict[str, Any]  # lossbridge hyperparameters on top of the convention
    native: dict[str, Any]  # the framework's own keyword arguments
    new_lr: float | None = None  # set after LR_CHANGE_STEP steps (both sides)


def _start(spec: str, framework: str) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    params = [rng.normal(size=(4, 3)), rng.normal(size=(3,))]
    if spec == "adafactor":
        params.append(rng.normal(size=(2, 4, 3)))
    if spec == "adafactor" and framework == "optax":  # axes long enough (>= 128) for Optax to factor
        params += [rng.normal(size=(129, 130)), rng.normal(size=(130, 2, 129))]
    return params


def _grads(params: list[np.ndarray]) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(8)
    return [[rng.normal(size=p.shape) for p in params] for _ in range(STEPS)]


def _trajectory(case: Case, framework: str, steps: Callable[[Params], Steps]) -> Trajectory:
    """The iterates under the fixed gradient sequence ``_grads`` (not taken at the iterates)."""
    start = _start(case.spec, framework)
    sequence = iter(_grads(start))
    return trajectory(steps(start), start, lambda _: next(sequence), case.new_lr)


def _lossbridge_trajectory(case: Case, convention: str) -> Trajectory:
    opt = lossbridge.get(case.spec, convention=convention, **case.params)
    return _trajectory(case, convention, lambda start: LossbridgeSteps(opt, start))


# -- torch ------------------------------------------------------------------------------------------
TORCH_CASES = [
    Case("sgd", {}, {}),
    Case(
        "sgd",
        {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
    ),
    Case(
        "sgd",
        {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    Case("sgd", {"lr": 0.01, "momentum": 0.9}, {"lr": 0.01, "momentum": 0.9}, new_lr=0.1),
    Case("adam", {}, {}),
    Case(
        "adam",
        {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-6},
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
    ),
    Case("adam", {"amsgrad": True, "weight_decay": 0.1}, {"amsgrad": True, "weight_decay": 0.1}),
    Case("adam", {}, {}, new_lr=0.01),
    Case("adamw", {}, {}),
    Case(
        "adamw",
        {"amsgrad": True, "weight_decay": 0.05, "lr": 0.01},
        {"amsgrad": True, "weight_decay": 0.05, "lr": 0.01},
    ),
    Case("adafactor", {}, {}),
    Case("adafactor", {"lr": 0.05, "weight_decay": 0.1}, {"lr": 0.05, "weight_decay": 0.1}),
    Case(
        "adafactor",
        {"eps1": 1e-20, "eps2": 1e-2, "clip_threshold": 2.0, "beta2_decay": -0.6},
        {"eps": (1e-20, 1e-2), "d": 2.0, "beta2_decay": -0.6},
    ),
    Case("adafactor", {}, {}, new_lr=1e-3),
]
TORCH_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adafactor": "Adafactor"}


def _torch_trajectory(torch: Any, case: Case) -> Trajectory:
    return _trajectory(case, "torch", lambda start: TorchSteps(torch, TORCH_CLASSES[case.spec], case.native, start))


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_ids(TORCH_CASES, "spec"))
def test_torch_convention_matches_torch_optim(case: Case) -> None:
    torch = pytest.importorskip("torch")
    assert_same(_lossbridge_trajectory(case, "torch"), _torch_trajectory(torch, case))


# -- keras ------------------------------------------------------------------------------------------
KERAS_CASES = [
    Case("sgd", {}, {}),
    Case(
        "sgd",
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    Case("sgd", {"momentum": 0.9}, {"momentum": 0.9}, new_lr=0.003),
    Case("adam", {}, {}),
    Case(
        "adam",
        {"lr": 0.003, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-6},
        {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
    ),
    Case("adam", {"amsgrad": True, "weight_decay": 0.1}, {"amsgrad": True, "weight_decay": 0.1}),
    Case("adam", {}, {}, new_lr=0.01),
    Case("adamw", {}, {}),
    Case("adamw", {"amsgrad": True, "weight_decay": 0.05}, {"amsgrad": True, "weight_decay": 0.05}),
    Case("lamb", {}, {}),
    Case("lamb", {"weight_decay": 0.1, "lr": 0.01}, {"weight_decay": 0.1, "learning_rate": 0.01}),
    Case(
        "lamb",
        {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-6},
        {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
    ),
    Case("adafactor", {}, {}),
    Case(
        "adafactor",
        {"lr": 0.05, "clip_threshold": 0.5, "eps2": 1e-2, "eps1": 1e-20, "beta2_decay": -0.6},
        {
            "learning_rate": 0.05,
            "clip_threshold": 0.5,
            "epsilon_2": 1e-2,
            "epsilon_1": 1e-20,
            "beta_2_decay": -0.6,
        },
    ),
    Case("adafactor", {"weight_decay": 0.5, "lr": 0.05}, {"weight_decay": 0.5, "learning_rate": 0.05}),
]
KERAS_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "lamb": "Lamb", "adafactor": "Adafactor"}


def _keras_trajectory(keras: Any, case: Case) -> Trajectory:
    return _trajectory(case, "keras", lambda start: KerasSteps(keras, KERAS_CLASSES[case.spec], case.native, start))


@pytest.mark.parametrize("case", KERAS_CASES, ids=case_ids(KERAS_CASES, "spec"))
def test_keras_convention_matches_keras_optimizers(keras: Any, case: Case) -> None:
    assert_same(_lossbridge_trajectory(case, "keras"), _keras_trajectory(keras, case))


def test_keras_float32_hyperparameters_matter(keras: Any) -> None:
    """Without the float32 rounding, lossbridge would miss Keras by far more than 1e-10."""
    case = Case("adam", {}, {})
    expected = _keras_trajectory(keras, case)
    exact = _lossbridge_trajectory(case._replace(params={"bias_correction_dtype": None}), "keras")
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(exact, expected)


# -- optax ------------------------------------------------------------------------------------------
OPTAX_CASES = [
    Case(
        "sgd",
        {"lr": 0.01, "momentum": 0.9, "nesterov": True},
        {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
    ),
    Case("sgd", {"lr": 0.01, "momentum": 0.9}, {"learning_rate": 0.01, "momentum": 0.9}, new_lr=0.1),
    Case("adam", {}, {"learning_rate": 1e-3}),
    Case(
        "adam",
        {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-6, "eps_root": 1e-8},
        {"learning_rate": 0.01, "b1": 0.8, "b2": 0.99, "eps": 1e-6, "eps_root": 1e-8},
    ),
    Case("adam", {}, {"learning_rate": 1e-3}, new_lr=0.01),
    Case("adam", {"amsgrad": True}, {"learning_rate": 1e-3, "amsgrad": True}),
    Case("adamw", {}, {"learning_rate": 1e-3}),
    Case("adamw", {"weight_decay": 0.1, "lr": 0.01}, {"learning_rate": 0.01, "weight_decay": 0.1}),
    Case("lamb", {}, {"learning_rate": 1e-3}),
    Case("lamb", {"lr": 0.01, "weight_decay": 0.1}, {"learning_rate": 0.01, "weight_decay": 0.1}),
    Case("adafactor", {"lr": 1e-2}, {"learning_rate": 1e-2}),
    Case(
        "adafactor",
        {"lr": 0.05, "weight_decay": 0.1, "clip_threshold": 0.5, "beta2_decay": -0.6},
        {"learning_rate": 0.05, "weight_decay_rate": 0.1, "clipping_threshold": 0.5, "decay_rate": 0.6},
    ),
    Case("adafactor", {"lr": 1e-2}, {"learning_rate": 1e-2}, new_lr=0.1),
    Case("adafactor", {"decay_dtype": None, "lr": 1e-2}, {"learning_rate": 1e-2, "inject_decay_rate": True}),
]


def _optax_transform(optax: Any, case: Case) -> Any:
    native = dict(case.native)
    factory: Callable[..., Any] = getattr(optax, case.spec)
    if native.pop("amsgrad", False):
        factory = optax.amsgrad
    static: tuple[str, ...] = ()
    if case.spec == "adafactor" and not native.pop("inject_decay_rate", False):
        # a Python-float decay_rate makes optax compute 1 - t^-c in float32; injected, in float64
        static = ("decay_rate",)
    return optax.inject_hyperparams(factory, static_args=static)(**native)


def _optax_trajectory(optax: Any, case: Case) -> Trajectory:
    tx = _optax_transform(optax, case)
    return _trajectory(case, "optax", lambda start: OptaxSteps(optax, tx, start))


@pytest.mark.parametrize("case", OPTAX_CASES, ids=case_ids(OPTAX_CASES, "spec"))
def test_optax_convention_matches_optax(optax: Any, case: Case) -> None:
    assert_same(_lossbridge_trajectory(case, "optax"), _optax_trajectory(optax, case))


def test_every_framework_optimizer_has_a_convention() -> None:
    covered = {
        "torch": {c.spec for c in TORCH_CASES},
        "keras": {c.spec for c in KERAS_CASES},
        "optax": {c.spec for c in OPTAX_CASES},
    }
    for name in ("sgd", "adam", "adamw", "lamb", "adafactor"):
        for framework in lossbridge.spec(name).conventions:
            if framework in covered:
                assert name in covered[framework], f"{name}: convention {framework!r} has no test"
