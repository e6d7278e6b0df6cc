"""Lion, Signum, signSGD and Rprop under each framework's convention against the REAL optimizer.

Both sides are built the framework's way (native name, native keyword arguments): for example
``lossbridge.get("Rprop", convention="torch", etas=(0.3, 1.5))`` next to
``torch.optim.Rprop(params, etas=(0.3, 1.5))``. Each minimizes the same objective from its own
iterates in float64 for 100 steps; every iterate must agree to 1e-10 relative. One case per
framework changes the learning rate after step 50 the native way (torch ``param_groups``, the Keras
``learning_rate`` setter, Optax ``inject_hyperparams``); lossbridge uses ``set_hyper(lr=...)``.

Sign-based steps jump by a whole step when a statistic near zero changes sign in its last bit, so
the tests are built to stay away from zero, and check it on the framework's own run:

* Lion / Signum / signSGD minimize a least-squares problem plus a non-convex term whose minimizer is
  at distance 3 in every coordinate while 100 steps move at most 100 * lr <= 0.5: every gradient
  coordinate keeps its sign and stays above 0.5 in magnitude (asserted), so their moving averages do too.
* Rprop's whole point is sign changes: it runs on the usual problem and converges, with step sizes
  down to ``min_step_size``; the smallest gradient coordinate it meets is asserted to be above 1e-9,
  many orders above the 1e-16 relative rounding that could flip a sign.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lossbridge

from ._optimizer_oracle import (
    Case,
    Grad,
    KerasSteps,
    LossbridgeSteps,
    OptaxSteps,
    Params,
    Problem,
    Steps,
    TorchSteps,
    Trajectory,
    assert_same,
    case_ids,
    keras_module,
    least_squares,
    lossbridge_trajectory,
    optax_injected,
    optax_module,
    quadratic_plus_cos,
    trajectory,
)

keras = pytest.fixture(scope="module", name="keras")(keras_module)
optax = pytest.fixture(scope="module", name="optax")(optax_module)


def _problem(far: bool) -> tuple[Params, Grad]:
    """``least_squares``; ``far``: the same objective with its minimizer 3 away per coordinate."""
    if not far:
        return least_squares()
    rng = np.random.default_rng(11)
    start = [rng.normal(size=(3,)), rng.normal(size=(3, 2))]
    mats = [2.0 * np.eye(3) + 0.1 * rng.normal(size=(3, 3)) for _ in start]
    targets = [a @ (p + 3.0 * rng.choice([-1.0, 1.0], size=p.shape)) for a, p in zip(mats, start, strict=True)]
    return start, quadratic_plus_cos(mats, targets)


def _problem_for(case: Case) -> Problem:
    return lambda: _problem(_far(case.name))


def _far(name: str) -> bool:
    return name.lower() != "rprop"


class _Watch:
    """Wraps a gradient function and records every gradient coordinate it returns."""

    def __init__(self, grad: Grad) -> None:
        self.grad: Grad = grad
        self.seen: list[Params] = []

    def __call__(self, params: list[np.ndarray]) -> list[np.ndarray]:
        out = self.grad(params)
        self.seen.append([g.copy() for g in out])
        return out

    def check_away_from_zero(self, far: bool) -> None:
        first = self.seen[0]
        for step in self.seen:
            for g, g0 in zip(step, first, strict=True):
                if far:
                    assert np.all(np.sign(g) == np.sign(g0)) and np.min(np.abs(g)) > 0.5
                else:
                    assert np.min(np.abs(g)) > 1e-9


def _watched(case: Case, steps: Callable[[Params], Steps]) -> Trajectory:
    """The framework's trajectory, checking that every gradient it met stayed away from zero."""
    far = _far(case.name)
    start, grad = _problem(far)
    watch = _Watch(grad)
    out = trajectory(steps(start), start, watch, case.new_lr)
    watch.check_away_from_zero(far)
    return out


# -- torch ------------------------------------------------------------------------------------------
TORCH_CASES = [
    Case("Rprop", {}),
    Case("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-4, 0.5)}),
    Case("Rprop", {"lr": 2.0, "step_sizes": (1e-3, 1.0)}),  # lr outside [min, max]: clipped at once
    Case("Rprop", {}, new_lr=0.5),  # lr is only the initial step size: changing it does nothing
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_ids(TORCH_CASES))
def test_torch_sign_optimizers_match_torch_optim(case: Case) -> None:
    torch = pytest.importorskip("torch")
    expected = _watched(case, lambda start: TorchSteps(torch, case.name, case.native, start))
    assert_same(lossbridge_trajectory(case, "torch", _problem_for(case)), expected)


def test_torch_has_no_lion() -> None:
    torch = pytest.importorskip("torch")
    assert not hasattr(torch.optim, "Lion")
    assert "torch" not in lossbridge.spec("lion").conventions


# -- keras ------------------------------------------------------------------------------------------
KERAS_CASES = [
    Case("Lion", {}),
    Case("Lion", {"learning_rate": 3e-3, "beta_1": 0.8, "beta_2": 0.95, "weight_decay": 0.1}),
    Case("Lion", {"learning_rate": 1e-3, "weight_decay": 0.05}, new_lr=4e-3),
]


@pytest.mark.parametrize("case", KERAS_CASES, ids=case_ids(KERAS_CASES))
def test_keras_sign_optimizers_match_keras_optimizers(keras: Any, case: Case) -> None:
    expected = _watched(case, lambda start: KerasSteps(keras, case.name, case.native, start))
    assert_same(lossbridge_trajectory(case, "keras", _problem_for(case)), expected)


def test_keras_lion_float32_learning_rate_matters(keras: Any) -> None:
    """Keras keeps learning_rate in float32; with the exact 3e-3, lossbridge would miss it by far more than 1e-10.

    (The float32 betas are reproduced too, but away from zero they cannot change a sign.)
    """
    case = Case("Lion", {"learning_rate": 3e-3, "beta_1": 0.8, "beta_2": 0.95})
    expected = _watched(case, lambda start: KerasSteps(keras, case.name, case.native, start))
    opt = lossbridge.get("lion", lr=3e-3, beta_1=0.8, beta_2=0.95)
    start, grad = _problem(True)
    exact = trajectory(LossbridgeSteps(opt, start), start, grad)
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(exact, expected)


# -- optax ------------------------------------------------------------------------------------------
OPTAX_CASES = [
    Case("lion", {"learning_rate": 1e-3}),
    Case("lion", {"learning_rate": 3e-3, "b1": 0.8, "b2": 0.95, "weight_decay": 0.1}),
    Case("lion", {"learning_rate": 1e-3}, new_lr=4e-3),
    Case("signum", {"learning_rate": 2e-3}),
    Case("signum", {"learning_rate": 2e-3, "beta": 0.5}),
    Case("sign_sgd", {"learning_rate": 2e-3}),
    Case("sign_sgd", {"learning_rate": 1e-3}, new_lr=5e-3),
    Case("rprop", {"learning_rate": 0.01}),
    Case(
        "rprop",
        {"learning_rate": 0.05, "eta_minus": 0.3, "eta_plus": 1.5, "min_step_size": 1e-4, "max_step_size": 0.5},
    ),
    Case("rprop", {"learning_rate": 2.0, "max_step_size": 1.0}),  # lr above max: not clipped until a step
    Case("rprop", {"learning_rate": 0.01}, new_lr=0.5),  # only the initial step size: no effect
]


@pytest.mark.parametrize("case", OPTAX_CASES, ids=case_ids(OPTAX_CASES))
def test_optax_sign_optimizers_match_optax(optax: Any, case: Case) -> None:
    tx = optax_injected(optax, case.name, case.native)
    expected = _watched(case, lambda start: OptaxSteps(optax, tx, start, jit=True))
    assert_same(lossbridge_trajectory(case, "optax", _problem_for(case)), expected)


def test_optax_rprop_lags_one_step(optax: Any) -> None:
    """optax.rprop's first update is 0 and each later one is the paper's previous step."""
    import jax.numpy as jnp

    tx = optax.rprop(learning_rate=0.1)
    state = tx.init(jnp.zeros(1))
    first, state = tx.update(jnp.ones(1), state)
    second, _ = tx.update(jnp.ones(1), state)
    assert float(first[0]) == 0.0 and float(second[0]) == -0.1
    ours = lossbridge.get("rprop", convention="optax", learning_rate=0.1)
    params = [np.zeros(1)]
    ours.step(params, [np.ones(1)])
    assert params[0][0] == 0.0
    ours.step(params, [np.ones(1)])
    assert params[0][0] == -0.1
