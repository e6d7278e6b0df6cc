"""ASGD (torch), Ftrl (Keras), LARS and NovoGrad (Optax) under each framework's convention against the REAL optimizer.

Both sides are built the framework's way (native name, native keyword arguments) and minimize the
same least-squares problem plus a non-convex term from their own iterates, in float64, for 100
steps; every iterate must agree to 1e-10 relative. One case per framework changes the learning
rate after step 50 the native way (torch ``param_groups``, the Keras ``learning_rate`` setter,
Optax ``inject_hyperparams``); lossbridge uses ``set_hyper(lr=...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import (
    Case,
    TorchSteps,
    Trajectory,
    assert_same,
    case_ids,
    keras_module,
    keras_trajectory,
    least_squares,
    lossbridge_trajectory,
    optax_module,
    optax_trajectory,
    trajectory,
)

keras = pytest.fixture(scope="module", name="keras")(keras_module)
optax = pytest.fixture(scope="module", name="optax")(optax_module)


# -- torch ------------------------------------------------------------------------------------------
TORCH_CASES = [
    Case("ASGD", {}),
    Case("ASGD", {"lr": 0.05, "lambd": 0.1, "alpha": 0.6, "t0": 40.0, "weight_decay": 0.05}),
    Case("ASGD", {"lr": 0.05, "lambd": 0.01, "t0": 20.0}, new_lr=0.2),  # the new lr acts one step later
]


def _torch_run(torch: Any, case: Case) -> tuple[Trajectory, list[np.ndarray]]:
    start, grad = least_squares()
    steps = TorchSteps(torch, case.name, case.native, start)
    out = trajectory(steps, start, grad, case.new_lr)
    return out, [steps.opt.state[p]["ax"].numpy().copy() for p in steps.params]


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_ids(TORCH_CASES))
def test_torch_asgd_matches_torch_optim_including_the_average(case: Case) -> None:
    torch = pytest.importorskip("torch")
    expected, expected_ax = _torch_run(torch, case)
    opt = lossbridge.get(case.name, convention="torch", **case.native)
    assert_same(lossbridge_trajectory(case, "torch", opt=opt), expected)
    assert_same([[s["ax"] for s in opt._state.slots]], [expected_ax], steps=1)


# -- keras ------------------------------------------------------------------------------------------
KERAS_CASES = [
    Case("Ftrl", {}),
    Case("Ftrl", {"learning_rate": 0.05, "l1_regularization_strength": 0.01, "l2_regularization_strength": 0.1}),
    Case(
        "Ftrl",
        {
            "learning_rate": 0.1,
            "learning_rate_power": -0.7,
            "initial_accumulator_value": 0.3,
            "l2_shrinkage_regularization_strength": 0.05,
            "beta": 0.5,
        },
    ),
    Case("Ftrl", {"learning_rate": 0.05, "l1_regularization_strength": 0.01}, new_lr=0.2),
]


@pytest.mark.parametrize("case", KERAS_CASES, ids=case_ids(KERAS_CASES))
def test_keras_ftrl_matches_keras_optimizers(keras: Any, case: Case) -> None:
    assert_same(lossbridge_trajectory(case, "keras"), keras_trajectory(keras, case))


def test_keras_ftrl_float32_hyperparameters_matter(keras: Any) -> None:
    """Exact (float64) learning rate and accumulator miss Keras by far more than 1e-10."""
    case = Case("Ftrl", {"learning_rate": 0.05})
    expected = keras_trajectory(keras, case)
    exact = lossbridge.get("ftrl", lr=0.05)
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(lossbridge_trajectory(case, "keras", opt=exact), expected)


# -- optax ------------------------------------------------------------------------------------------
OPTAX_CASES = [
    Case("lars", {"learning_rate": 1.0}),
    Case("lars", {"learning_rate": 2.0, "weight_decay": 0.1, "trust_coefficient": 0.01, "eps": 1e-3, "momentum": 0.5}),
    Case("lars", {"learning_rate": 1.0, "momentum": 0.8, "nesterov": True}),
    Case("lars", {"learning_rate": 1.0, "momentum": 0.0}),
    Case("lars", {"learning_rate": 1.0}, new_lr=5.0),
    Case("novograd", {"learning_rate": 0.05}),
    Case(
        "novograd",
        {"learning_rate": 0.05, "b1": 0.8, "b2": 0.5, "eps": 1e-4, "eps_root": 1e-8, "weight_decay": 0.1},
    ),
    Case("novograd", {"learning_rate": 0.02}, new_lr=0.08),
]


@pytest.mark.parametrize("case", OPTAX_CASES, ids=case_ids(OPTAX_CASES))
def test_optax_misc_optimizers_match_optax(optax: Any, case: Case) -> None:
    assert_same(lossbridge_trajectory(case, "optax"), optax_trajectory(optax, case, static=("nesterov",), jit=True))
