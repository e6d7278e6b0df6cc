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

from typing import Any

import pytest

from ._optimizer_oracle import (
    Case,
    assert_same,
    case_ids,
    keras_module,
    keras_trajectory,
    lossbridge_trajectory,
    optax_module,
    optax_trajectory,
    torch_trajectory,
)

keras = pytest.fixture(scope="module", name="keras")(keras_module)
optax = pytest.fixture(scope="module", name="optax")(optax_module)


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


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_ids(TORCH_CASES))
def test_torch_rms_optimizers_match_torch_optim(case: Case) -> None:
    torch = pytest.importorskip("torch")
    assert_same(lossbridge_trajectory(case, "torch"), torch_trajectory(torch, case))


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


@pytest.mark.parametrize("case", KERAS_CASES, ids=case_ids(KERAS_CASES))
def test_keras_rms_optimizers_match_keras_optimizers(keras: Any, case: Case) -> None:
    assert_same(lossbridge_trajectory(case, "keras"), keras_trajectory(keras, case))


def test_keras_adagrad_float32_initial_accumulator_matters(keras: Any) -> None:
    """Keras fills the accumulator with float32(0.1); filling it exactly misses by far more than 1e-10."""
    case = Case("Adagrad", {"learning_rate": 0.1})
    expected = keras_trajectory(keras, case)
    assert_same(lossbridge_trajectory(case, "keras"), expected)
    exact = lossbridge_trajectory(case._replace(native={**case.native, "initial_accumulator_dtype": None}), "keras")
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(exact, expected)


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


@pytest.mark.parametrize("case", OPTAX_CASES, ids=case_ids(OPTAX_CASES))
def test_optax_rms_optimizers_match_optax(optax: Any, case: Case) -> None:
    assert_same(lossbridge_trajectory(case, "optax"), optax_trajectory(optax, case, static=_OPTAX_STATIC))
