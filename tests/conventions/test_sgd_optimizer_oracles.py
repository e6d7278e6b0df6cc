"""SGD (momentum, Nesterov, dampening, weight decay) under each framework's convention, against the real one.

Both sides are built the framework's way: ``lossbridge.get("SGD", convention="torch", momentum=0.9)``
next to ``torch.optim.SGD(params, momentum=0.9)`` (native name, native keyword arguments), and each
minimizes the same least-squares problem plus a non-convex term from its own iterates, in float64,
for 100 steps; every iterate must agree to 1e-10 relative. One case per framework changes the
learning rate after step 50 the way that framework's users do (torch ``param_groups``, the Keras
``learning_rate`` setter, Optax ``inject_hyperparams``); lossbridge's NumPy optimizer uses
``set_hyper(lr=...)``. Caffe's SGD and Nesterov solvers are in tests/spec/test_caffe_solvers_sgd_rms.py.
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
    Case("SGD", {}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    Case("SGD", {"lr": 0.05, "momentum": 0.9}, new_lr=0.01),
]



@pytest.mark.parametrize("case", TORCH_CASES, ids=case_ids(TORCH_CASES))
def test_torch_sgd_matches_torch_optim(case: Case) -> None:
    torch = pytest.importorskip("torch")
    assert_same(lossbridge_trajectory(case, "torch"), torch_trajectory(torch, case))


# -- keras ------------------------------------------------------------------------------------------
KERAS_CASES = [
    Case("SGD", {}),
    Case("SGD", {"learning_rate": 0.05, "momentum": 0.9, "weight_decay": 0.1}),
    Case("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    Case("SGD", {"learning_rate": 0.05, "momentum": 0.9}, new_lr=0.01),
]



@pytest.mark.parametrize("case", KERAS_CASES, ids=case_ids(KERAS_CASES))
def test_keras_sgd_matches_keras_optimizers(keras: Any, case: Case) -> None:
    assert_same(lossbridge_trajectory(case, "keras"), keras_trajectory(keras, case))


# -- optax ------------------------------------------------------------------------------------------
OPTAX_CASES = [
    Case("sgd", {"learning_rate": 0.05}),
    Case("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    Case("sgd", {"learning_rate": 0.05, "momentum": 0.9}, new_lr=0.01),
]
_OPTAX_STATIC = ("nesterov",)



@pytest.mark.parametrize("case", OPTAX_CASES, ids=case_ids(OPTAX_CASES))
def test_optax_sgd_matches_optax(optax: Any, case: Case) -> None:
    assert_same(lossbridge_trajectory(case, "optax"), optax_trajectory(optax, case, static=_OPTAX_STATIC))
