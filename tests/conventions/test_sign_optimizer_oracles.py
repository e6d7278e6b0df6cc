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

import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import pytest

import lossbridge

STEPS = 100
RTOL = 1e-10
LR_CHANGE_STEP = 50
Grad = Callable[[list[np.ndarray]], list[np.ndarray]]


class Case(NamedTuple):
    name: str  # the framework's own name: torch class, Keras class, Optax function
    native: dict[str, Any]  # the framework's own keyword arguments, given to both sides
    new_lr: float | None = None  # set after LR_CHANGE_STEP steps (both sides)


def _problem(far: bool) -> tuple[list[np.ndarray], Grad]:
    """0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p) per parameter; ``far``: minimizer 3 away per coordinate."""
    rng = np.random.default_rng(11)
    start = [rng.normal(size=(3,)), rng.normal(size=(3, 2))]
    if far:
        mats = [2.0 * np.eye(3) + 0.1 * rng.normal(size=(3, 3)) for _ in start]
        targets = [a @ (p + 3.0 * rng.choice([-1.0, 1.0], size=p.shape)) for a, p in zip(mats, start, strict=True)]
    else:
        mats = [rng.normal(size=(8, 3)) for _ in start]
        targets = [rng.normal(size=(8,)), rng.normal(size=(8, 2))]

    def grad(params: list[np.ndarray]) -> list[np.ndarray]:
        return [
            a.T @ (a @ p - b) / a.shape[0] - 0.2 * np.sin(2.0 * p)
            for p, a, b in zip(params, mats, targets, strict=True)
        ]

    return start, grad


def _far(name: str) -> bool:
    return name.lower() != "rprop"


class _Watch:
    """Wraps a gradient function and records every gradient coordinate it returns."""

    def __init__(self, grad: Grad) -> None:
        self.grad, self.seen = grad, []

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


def _lossbridge_trajectory(case: Case, convention: str) -> list[list[np.ndarray]]:
    opt = lossbridge.get(case.name, convention=convention, **case.native)
    start, grad = _problem(_far(case.name))
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
    Case("Rprop", {}),
    Case("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-4, 0.5)}),
    Case("Rprop", {"lr": 2.0, "step_sizes": (1e-3, 1.0)}),  # lr outside [min, max]: clipped at once
    Case("Rprop", {}, new_lr=0.5),  # lr is only the initial step size: changing it does nothing
]


def _torch_trajectory(torch: Any, case: Case) -> list[list[np.ndarray]]:
    start, grad = _problem(_far(case.name))
    watch = _Watch(grad)
    params = [torch.tensor(p, dtype=torch.float64) for p in start]
    opt = getattr(torch.optim, case.name)(params, **case.native)
    out = []
    for t in range(1, STEPS + 1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            for group in opt.param_groups:
                group["lr"] = case.new_lr
        for p, g in zip(params, watch([p.numpy() for p in params]), strict=True):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append([p.numpy().copy() for p in params])
    watch.check_away_from_zero(_far(case.name))
    return out


@pytest.mark.parametrize("case", TORCH_CASES, ids=_ids(TORCH_CASES))
def test_torch_sign_optimizers_match_torch_optim(case: Case) -> None:
    torch = pytest.importorskip("torch")
    _assert_same(_lossbridge_trajectory(case, "torch"), _torch_trajectory(torch, case))


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
    start, grad = _problem(_far(case.name))
    watch = _Watch(grad)
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
        grads = watch([_keras_numpy(v) for v in variables])
        apply([keras.ops.convert_to_tensor(g, dtype="float64") for g in grads])
        out.append([_keras_numpy(v) for v in variables])
    watch.check_away_from_zero(_far(case.name))
    return out


@pytest.mark.parametrize("case", KERAS_CASES, ids=_ids(KERAS_CASES))
def test_keras_sign_optimizers_match_keras_optimizers(keras: Any, case: Case) -> None:
    _assert_same(_lossbridge_trajectory(case, "keras"), _keras_trajectory(keras, case))


def test_keras_lion_float32_learning_rate_matters(keras: Any) -> None:
    """Keras keeps learning_rate in float32; with the exact 3e-3, lossbridge would miss it by far more than 1e-10.

    (The float32 betas are reproduced too, but away from zero they cannot change a sign.)
    """
    case = Case("Lion", {"learning_rate": 3e-3, "beta_1": 0.8, "beta_2": 0.95})
    expected = _keras_trajectory(keras, case)
    opt = lossbridge.get("lion", lr=3e-3, beta_1=0.8, beta_2=0.95)
    start, grad = _problem(True)
    params, exact = [p.copy() for p in start], []
    for _ in range(STEPS):
        opt.step(params, grad(params))
        exact.append([p.copy() for p in params])
    with pytest.raises(AssertionError, match="relative error"):
        _assert_same(exact, expected)


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


@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def _optax_trajectory(optax: Any, case: Case) -> list[list[np.ndarray]]:
    import jax
    import jax.numpy as jnp

    start, grad = _problem(_far(case.name))
    watch = _Watch(grad)
    tx = optax.inject_hyperparams(getattr(optax, case.name))(**case.native)
    params = [jnp.asarray(p) for p in start]
    state = tx.init(params)
    update = jax.jit(tx.update)  # one compiled step (optax.novograd's lax.cond is slow eagerly)
    out = []
    for t in range(1, STEPS + 1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            state.hyperparams["learning_rate"] = jnp.asarray(case.new_lr)
        grads = watch([np.asarray(p) for p in params])
        updates, state = update([jnp.asarray(g) for g in grads], state, params)
        params = optax.apply_updates(params, updates)
        out.append([np.asarray(p, dtype=np.float64) for p in params])
    watch.check_away_from_zero(_far(case.name))
    return out


@pytest.mark.parametrize("case", OPTAX_CASES, ids=_ids(OPTAX_CASES))
def test_optax_sign_optimizers_match_optax(optax: Any, case: Case) -> None:
    _assert_same(_lossbridge_trajectory(case, "optax"), _optax_trajectory(optax, case))


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
