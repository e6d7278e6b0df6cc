"""Shared machinery of the optimizer oracle tests: lossbridge against the REAL framework optimizer.

Each test builds a *stepper* per side (``LossbridgeSteps``, ``TorchSteps``, ``KerasSteps``,
``OptaxSteps``), each holding its own float64 parameters, and ``trajectory`` drives it for ``STEPS``
steps: the gradient is computed from the stepper's own iterates, and the learning rate changes after
``LR_CHANGE_STEP`` steps the way that framework's users do it (lossbridge ``set_hyper(lr=...)``, torch
``param_groups``, the Keras ``learning_rate`` setter, Optax ``inject_hyperparams``). ``assert_same``
compares two trajectories iterate by iterate to ``RTOL`` relative.

Import it as ``from ._optimizer_oracle import ...`` (pytest runs with ``--import-mode=importlib``);
bind the framework fixtures in a test module with
``keras = pytest.fixture(scope="module", name="keras")(keras_module)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import pytest

STEPS = 100
RTOL = 1e-10
LR_CHANGE_STEP = 50

Params = list[np.ndarray]
Trajectory = list[Params]
Grad = Callable[[Params], Params]


class Case(NamedTuple):
    name: str  # the framework's own name: torch class, Keras class, Optax function
    native: dict[str, Any]  # the framework's own keyword arguments, given to both sides
    new_lr: float | None = None  # set after LR_CHANGE_STEP steps (both sides)


def case_ids(cases: Sequence[Any], label: str = "name") -> list[str]:
    """Test ids: the case's ``label`` field, its native keyword arguments, and ``lr_change``."""
    return [
        f"{getattr(c, label)}-"
        + ("-".join(f"{k}={getattr(v, '__name__', v)}" for k, v in c.native.items()) or "default")
        + ("-lr_change" if c.new_lr is not None else "")
        for c in cases
    ]


def least_squares_problem(seed: int = 11) -> tuple[Params, list[np.ndarray], list[np.ndarray]]:
    """Start, matrices and targets of 0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p) for a vector and a matrix
    parameter (one (A, b) per parameter)."""
    rng = np.random.default_rng(seed)
    start = [rng.normal(size=(3,)), rng.normal(size=(3, 2))]
    mats = [rng.normal(size=(8, 3)) for _ in start]
    targets = [rng.normal(size=(8,)), rng.normal(size=(8, 2))]
    return start, mats, targets


def least_squares() -> tuple[Params, Grad]:
    """0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p) for a vector and a matrix parameter: start and gradient."""
    start, mats, targets = least_squares_problem()
    return start, quadratic_plus_cos(mats, targets)


def quadratic_plus_cos_value(
    mats: Sequence[np.ndarray], targets: Sequence[np.ndarray]
) -> Callable[[Params], tuple[float, Params]]:
    """Value and gradient of 0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p): a closure for objective-driven
    optimizers (L-BFGS, polyak_sgd)."""

    def value_and_grad(params: Params) -> tuple[float, Params]:
        value, grads = 0.0, []
        for p, a, b in zip(params, mats, targets, strict=True):
            r = a @ p - b
            value += 0.5 * np.mean(r**2) + 0.1 * np.sum(np.cos(2 * p))
            grads.append(a.T @ r / r.size - 0.2 * np.sin(2 * p))
        return value, grads

    return value_and_grad


def quadratic_plus_cos(mats: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> Grad:
    """Gradient of 0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p), one (A, b) per parameter."""

    def grad(params: Params) -> Params:
        return [
            a.T @ (a @ p - b) / a.shape[0] - 0.2 * np.sin(2.0 * p)
            for p, a, b in zip(params, mats, targets, strict=True)
        ]

    return grad


class Steps(Protocol):
    def set_lr(self, lr: float) -> None: ...

    def step(self, grads: Params) -> Params:
        """Apply one update; return a float64 NumPy copy of the new parameters."""
        ...


def trajectory(steps: Steps, start: Params, grad: Grad, new_lr: float | None = None) -> Trajectory:
    """``STEPS`` iterates of ``steps`` from ``start``, each gradient taken at the previous iterate."""
    params = [p.copy() for p in start]
    out = []
    for t in range(1, STEPS + 1):
        if new_lr is not None and t == LR_CHANGE_STEP + 1:
            steps.set_lr(new_lr)
        params = steps.step(grad(params))
        out.append(params)
    return out


def assert_same(actual: Trajectory, expected: Trajectory, *, steps: int = STEPS) -> None:
    assert len(actual) == len(expected) == steps
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        for k, (a, e) in enumerate(zip(got, want, strict=True)):
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= RTOL, f"step {t}, parameter {k}: relative error {err:.3g}"


# -- the steppers -----------------------------------------------------------------------------------
class LossbridgeSteps:
    """A lossbridge NumPy optimizer (``lossbridge.get(...)``) over its own copies of ``start``."""

    def __init__(self, opt: Any, start: Params) -> None:
        self.opt, self.params = opt, [p.copy() for p in start]

    def set_lr(self, lr: float) -> None:
        self.opt.set_hyper(lr=lr)

    def step(self, grads: Params) -> Params:
        self.opt.step(self.params, [g.copy() for g in grads])
        return [p.copy() for p in self.params]


class TorchSteps:
    """``torch.optim.<name>(params, **native)`` over float64 tensors."""

    def __init__(self, torch: Any, name: str, native: dict[str, Any], start: Params) -> None:
        self.torch = torch
        self.params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start]
        self.opt = getattr(torch.optim, name)(self.params, **native)

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def step(self, grads: Params) -> Params:
        for p, g in zip(self.params, grads, strict=True):
            p.grad = self.torch.tensor(g, dtype=self.torch.float64)
        self.opt.step()
        return [p.detach().numpy().copy() for p in self.params]


def keras_module() -> Any:
    """Keras (TensorFlow backend unless set), float64-capable: the body of a ``keras`` fixture."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() == "jax":
        pytest.importorskip("jax").config.update("jax_enable_x64", True)
    return keras


def keras_numpy(variable: Any) -> np.ndarray:
    value = variable.value  # keras.ops.convert_to_numpy trips numpy 2's copy-keyword DeprecationWarning
    return np.array(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)


class KerasSteps:
    """``keras.optimizers.<name>(**native)`` over float64 variables, applied in a compiled train step."""

    def __init__(self, keras: Any, name: str, native: dict[str, Any], start: Params) -> None:
        self.keras = keras
        self.variables = [keras.Variable(p, dtype="float64") for p in start]
        self.opt = getattr(keras.optimizers, name)(**native)

        def apply(grads: list[Any]) -> None:
            self.opt.apply_gradients(zip(grads, self.variables, strict=True))

        if keras.backend.backend() == "tensorflow":  # a compiled train step, as model.fit runs it
            apply = pytest.importorskip("tensorflow").function(apply)
        self.apply = apply

    def set_lr(self, lr: float) -> None:
        self.opt.learning_rate = lr

    def step(self, grads: Params) -> Params:
        self.apply([self.keras.ops.convert_to_tensor(g, dtype="float64") for g in grads])
        return [keras_numpy(v) for v in self.variables]


def optax_module() -> Iterator[Any]:
    """Optax with JAX's x64 on for the fixture's scope: the body of an ``optax`` fixture."""
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


def optax_injected(optax: Any, name: str, native: dict[str, Any], static: Sequence[str] = ()) -> Any:
    """``optax.<name>(**native)`` with its hyperparameters injected; ``static`` ones (of ``native``) stay Python."""
    static_args = tuple(k for k in static if k in native)
    return optax.inject_hyperparams(getattr(optax, name), static_args=static_args)(**native)


class OptaxSteps:
    """An Optax ``GradientTransformation`` built with ``inject_hyperparams``; ``jit``: one compiled update."""

    def __init__(self, optax: Any, tx: Any, start: Params, *, jit: bool = False) -> None:
        import jax
        import jax.numpy as jnp

        self.optax, self.jnp = optax, jnp
        self.params = [jnp.asarray(p) for p in start]
        self.state = tx.init(self.params)
        self.update = jax.jit(tx.update) if jit else tx.update

    def set_lr(self, lr: float) -> None:
        self.state.hyperparams["learning_rate"] = self.jnp.asarray(lr)

    def step(self, grads: Params) -> Params:
        updates, self.state = self.update([self.jnp.asarray(g) for g in grads], self.state, self.params)
        self.params = self.optax.apply_updates(self.params, updates)
        return [np.asarray(p, dtype=np.float64) for p in self.params]


# -- a ``Case`` (native name and keyword arguments on both sides) on a problem ----------------------
Problem = Callable[[], tuple[Params, Grad]]


def lossbridge_trajectory(
    case: Case, convention: str, problem: Problem = least_squares, *, opt: Any = None
) -> Trajectory:
    """``lossbridge.get(case.name, convention=convention, **case.native)`` (or ``opt``) on ``problem``."""
    import lossbridge

    start, grad = problem()
    opt = opt or lossbridge.get(case.name, convention=convention, **case.native)
    return trajectory(LossbridgeSteps(opt, start), start, grad, case.new_lr)


def torch_trajectory(torch: Any, case: Case, problem: Problem = least_squares) -> Trajectory:
    start, grad = problem()
    return trajectory(TorchSteps(torch, case.name, case.native, start), start, grad, case.new_lr)


def keras_trajectory(keras: Any, case: Case, problem: Problem = least_squares) -> Trajectory:
    start, grad = problem()
    return trajectory(KerasSteps(keras, case.name, case.native, start), start, grad, case.new_lr)


def optax_trajectory(
    optax: Any, case: Case, problem: Problem = least_squares, *, static: Sequence[str] = (), jit: bool = False
) -> Trajectory:
    start, grad = problem()
    tx = optax_injected(optax, case.name, case.native, static)
    return trajectory(OptaxSteps(optax, tx, start, jit=jit), start, grad, case.new_lr)


def optax_loop_step(tx: Any, value_fn: Any) -> Any:
    """One jitted step of Optax's documented loop for an L-BFGS transformation ``tx``:
    ``value_and_grad_from_state``, ``update(..., value=, grad=, value_fn=)``, ``apply_updates``."""
    import jax
    import optax

    value_and_grad = optax.value_and_grad_from_state(value_fn)

    @jax.jit
    def step(params: Any, state: Any) -> Any:
        value, grad = value_and_grad(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(params, updates), state

    return step
