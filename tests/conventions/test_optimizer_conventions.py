"""Each optimizer convention, on the NumPy backend, against the REAL framework optimizer in float64.

The same gradient sequence is fed to torch.optim / keras.optimizers / optax and to
``lossbridge.get(name, convention=...)`` for 100 steps; every iterate must agree to 1e-10 relative.
Frameworks are imported with ``pytest.importorskip``. A case may change the learning rate after
step 50 the way a framework user would (param_groups, the Keras ``learning_rate`` setter, Optax
``inject_hyperparams``).
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


def _lossbridge_trajectory(case: Case, convention: str) -> list[list[np.ndarray]]:
    opt = lossbridge.get(case.spec, convention=convention, **case.params)
    params = [p.copy() for p in _start(case.spec, convention)]
    out = []
    for t, grads in enumerate(_grads(params), start=1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            opt.set_hyper(lr=case.new_lr)
        opt.step(params, [g.copy() for g in grads])
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
        f"{c.spec}-"
        + ("-".join(f"{k}={v}" for k, v in c.native.items()) or "default")
        + ("-lr_change" if c.new_lr is not None else "")
        for c in cases
    ]


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


def _torch_trajectory(torch: Any, case: Case) -> list[list[np.ndarray]]:
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in _start(case.spec, "torch")]
    opt = getattr(torch.optim, TORCH_CLASSES[case.spec])(params, **case.native)
    out = []
    for t, grads in enumerate(_grads(_start(case.spec, "torch")), start=1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            for group in opt.param_groups:
                group["lr"] = case.new_lr
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


@pytest.mark.parametrize("case", TORCH_CASES, ids=_ids(TORCH_CASES))
def test_torch_convention_matches_torch_optim(case: Case) -> None:
    torch = pytest.importorskip("torch")
    _assert_same(_lossbridge_trajectory(case, "torch"), _torch_trajectory(torch, case))


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
    variables = [keras.Variable(p, dtype="float64") for p in _start(case.spec, "keras")]
    opt = getattr(keras.optimizers, KERAS_CLASSES[case.spec])(**case.native)

    def apply(grads: list[Any]) -> None:
        opt.apply_gradients(zip(grads, variables, strict=True))

    if keras.backend.backend() == "tensorflow":  # a compiled train step, as model.fit runs it
        apply = pytest.importorskip("tensorflow").function(apply)
    out = []
    for t, grads in enumerate(_grads(_start(case.spec, "keras")), start=1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            opt.learning_rate = case.new_lr
        apply([keras.ops.convert_to_tensor(g, dtype="float64") for g in grads])
        out.append([_keras_numpy(v) for v in variables])
    return out


@pytest.mark.parametrize("case", KERAS_CASES, ids=_ids(KERAS_CASES))
def test_keras_convention_matches_keras_optimizers(keras: Any, case: Case) -> None:
    _assert_same(_lossbridge_trajectory(case, "keras"), _keras_trajectory(keras, case))


def test_keras_float32_hyperparameters_matter(keras: Any) -> None:
    """Without the float32 rounding, lossbridge would miss Keras by far more than 1e-10."""
    case = Case("adam", {}, {})
    expected = _keras_trajectory(keras, case)
    exact = _lossbridge_trajectory(case._replace(params={"bias_correction_dtype": None}), "keras")
    with pytest.raises(AssertionError, match="relative error"):
        _assert_same(exact, expected)


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
    Case("adafactor", {}, {"learning_rate": 1e-2}),
    Case(
        "adafactor",
        {"lr": 0.05, "weight_decay": 0.1, "clip_threshold": 0.5, "beta2_decay": -0.6},
        {"learning_rate": 0.05, "weight_decay_rate": 0.1, "clipping_threshold": 0.5, "decay_rate": 0.6},
    ),
    Case("adafactor", {}, {"learning_rate": 1e-2}, new_lr=0.1),
    Case("adafactor", {"decay_dtype": None}, {"learning_rate": 1e-2, "inject_decay_rate": True}),
]


@pytest.fixture(scope="module")
def optax() -> Iterator[Any]:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield optax
    jax.config.update("jax_enable_x64", previous)


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


def _optax_trajectory(optax: Any, case: Case) -> list[list[np.ndarray]]:
    import jax.numpy as jnp

    params = [jnp.asarray(p) for p in _start(case.spec, "optax")]
    tx = _optax_transform(optax, case)
    state = tx.init(params)
    out = []
    for t, grads in enumerate(_grads(_start(case.spec, "optax")), start=1):
        if case.new_lr is not None and t == LR_CHANGE_STEP + 1:
            state.hyperparams["learning_rate"] = jnp.asarray(case.new_lr)
        updates, state = tx.update([jnp.asarray(g) for g in grads], state, params)
        params = optax.apply_updates(params, updates)
        out.append([np.asarray(p, dtype=np.float64) for p in params])
    return out


@pytest.mark.parametrize("case", OPTAX_CASES, ids=_ids(OPTAX_CASES))
def test_optax_convention_matches_optax(optax: Any, case: Case) -> None:
    _assert_same(_lossbridge_trajectory(case, "optax"), _optax_trajectory(optax, case))


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
