"""Muon and the schedule-free optimizers, on the NumPy backend, against the REAL framework objects in float64.

torch.optim.Muon, keras.optimizers.Muon / ScheduleFreeAdamW and optax.contrib.muon /
schedule_free_adamw / schedule_free_sgd, built with their native keyword arguments, 100 steps on the
least-squares + cosine problem of ``_optimizer_oracle`` (a vector and a matrix; torch's Muon takes
matrices only, so its problem has a tall and a wide matrix), relative error <= 1e-10 per iterate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.spec._schedule_free import schedule_free_eval_params

from ._optimizer_oracle import (
    STEPS,
    Case,
    KerasSteps,
    OptaxSteps,
    Params,
    assert_same,
    case_ids,
    keras_module,
    least_squares,
    lossbridge_trajectory,
    optax_module,
    quadratic_plus_cos,
    torch_trajectory,
    trajectory,
)

keras = pytest.fixture(scope="module", name="keras")(keras_module)
optax = pytest.fixture(scope="module", name="optax")(optax_module)


def matrices() -> tuple[Params, Any]:
    """A tall and a wide matrix (Newton-Schulz runs on the transpose of the tall one)."""
    rng = np.random.default_rng(5)
    start = [rng.normal(size=(3, 2)), rng.normal(size=(2, 4))]
    mats = [rng.normal(size=(8, 3)), rng.normal(size=(8, 2))]
    targets = [rng.normal(size=(8, 2)), rng.normal(size=(8, 4))]
    return start, quadratic_plus_cos(mats, targets)


# -- torch ------------------------------------------------------------------------------------------
TORCH_CASES = [
    Case("Muon", {}, new_lr=0.005),
    Case("Muon", {"lr": 0.02, "nesterov": False, "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.05}),
    Case("Muon", {"lr": 0.01, "momentum": 0.8, "ns_coefficients": (3.4, -4.7, 2.0), "ns_steps": 6}),
    Case("Muon", {"lr": 0.01, "adjust_lr_fn": "original", "eps": 1e-5}),
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_ids(TORCH_CASES))
def test_torch_muon_matches_torch_optim(case: Case) -> None:
    """torch's bfloat16 Newton-Schulz is reproduced exactly (the step has bfloat16 precision)."""
    torch = pytest.importorskip("torch")
    assert_same(lossbridge_trajectory(case, "torch", matrices), torch_trajectory(torch, case, matrices))


def test_torch_muon_vector_is_torch_adamw() -> None:
    """torch's Muon refuses vectors; ours gives them torch.optim.AdamW with its defaults and Muon's lr."""
    torch = pytest.importorskip("torch")
    start, grad = least_squares()
    ours = trajectory(_LbSteps(lossbridge.get("Muon", convention="torch", lr=0.01), start), start, grad)
    vec = [start[0]]
    adamw = Case("AdamW", {"lr": 0.01})
    theirs = torch_trajectory(torch, adamw, lambda: (vec, lambda p: [grad([p[0], start[1]])[0]]))
    assert_same([[p[0]] for p in ours], theirs)  # the problem's gradient is separable per parameter
    with pytest.raises(ValueError, match="2D"):
        torch.optim.Muon([torch.zeros(3, dtype=torch.float64, requires_grad=True)])


class _LbSteps:
    def __init__(self, opt: Any, start: Params) -> None:
        self.opt, self.params = opt, [p.copy() for p in start]

    def set_lr(self, lr: float) -> None:
        self.opt.set_hyper(lr=lr)

    def step(self, grads: Params) -> Params:
        self.opt.step(self.params, [g.copy() for g in grads])
        return [p.copy() for p in self.params]


# -- keras ------------------------------------------------------------------------------------------
KERAS_CASES = [
    Case("Muon", {"rms_rate": None}, new_lr=0.003),
    Case(
        "Muon",
        {"learning_rate": 0.01, "nesterov": False, "rms_rate": None, "weight_decay": 0.01,
         "adam_weight_decay": 0.1, "adam_lr_ratio": 0.5, "epsilon": 1e-6, "adam_beta_1": 0.8},
    ),
    Case("Muon", {"momentum": 0.8, "muon_a": 3.4, "muon_b": -4.6, "ns_steps": 4, "rms_rate": None}),
    Case("ScheduleFreeAdamW", {}, new_lr=0.005),
    Case(
        "ScheduleFreeAdamW",
        {"learning_rate": 0.01, "warmup_steps": 10, "weight_decay": 0.05, "beta_1": 0.8, "beta_2": 0.99,
         "epsilon": 1e-6},
    ),
]


def _keras_built(keras: Any, case: Case) -> list[Params]:
    """Keras's own trajectory with the optimizer built eagerly first, as ``model.fit`` does.

    (Built inside the compiled step instead, ScheduleFreeAdamW's ``build`` assignment of the
    momentum to the variable would run at every step.)
    """
    start, grad = least_squares()
    steps = KerasSteps(keras, case.name, case.native, start)
    steps.opt.build(steps.variables)
    return trajectory(steps, start, grad, case.new_lr)


@pytest.mark.parametrize("case", KERAS_CASES, ids=case_ids(KERAS_CASES))
def test_keras_matches_keras_optimizers(keras: Any, case: Case) -> None:
    assert_same(lossbridge_trajectory(case, "keras"), _keras_built(keras, case))


def test_keras_schedule_free_reads_the_new_momentum(keras: Any) -> None:
    """Keras 3 on TensorFlow recovers x from the updated z; the paper's form misses it by far."""
    case = Case("ScheduleFreeAdamW", {})
    paper = lossbridge.get("ScheduleFreeAdamW", convention="keras", x_from="z_prev")
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(lossbridge_trajectory(case, "keras", opt=paper), _keras_built(keras, case))


def test_keras_muon_rms_rate_in_float32(keras: Any) -> None:
    """Keras's default rms_rate multiplies a float32 sqrt into the update, so its Muon runs in float32 only.

    Compared with lossbridge's float64 run: a float32 trajectory of 100 steps with a 3-matmul iteration
    drifts by ~1e-6 relative, hence the looser tolerance.
    """
    start, grad = least_squares()
    ours = lossbridge_trajectory(Case("Muon", {}), "keras")
    variables = [keras.Variable(p.astype(np.float32), dtype="float32") for p in start]
    opt = keras.optimizers.Muon()
    params = [p.copy() for p in start]
    for t in range(STEPS):
        grads = grad(params)
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g.astype(np.float32)) for g in grads], variables,
                                strict=True))
        params = [np.asarray(v.numpy(), dtype=np.float64) for v in variables]
        for a, e in zip(ours[t], params, strict=True):
            assert np.max(np.abs(a - e)) / np.max(np.abs(e)) < 1e-4


# -- optax ------------------------------------------------------------------------------------------
OPTAX_CASES = [
    Case("muon", {"learning_rate": 0.01}, new_lr=0.005),
    Case("muon", {"learning_rate": 0.01, "nesterov": False, "consistent_rms": 0.2, "weight_decay": 0.01,
                  "adam_weight_decay": 0.1}),
    Case("muon", {"learning_rate": 0.02, "beta": 0.8, "adaptive": True, "ns_coeffs": (3.4, -4.7, 2.0),
                  "adam_b1": 0.8, "adam_eps_root": 1e-8, "adam_learning_rate": 0.003, "eps": 1e-6}),
    Case("schedule_free_adamw", {}, new_lr=0.005),
    Case("schedule_free_adamw", {"learning_rate": 0.01, "warmup_steps": 10, "weight_decay": 0.05, "b1": 0.8,
                                 "b2": 0.99, "eps": 1e-6, "weight_lr_power": 1.0}),
    Case("schedule_free_sgd", {"learning_rate": 0.1}, new_lr=0.05),
    Case("schedule_free_sgd", {"learning_rate": 0.1, "warmup_steps": 7, "weight_decay": 0.01, "b1": 0.7}),
]
_STATIC = ("ns_steps", "nesterov", "adaptive", "ns_coeffs", "warmup_steps")


def _optax_tx(optax: Any, case: Case) -> Any:
    factory = getattr(optax.contrib, case.name)
    if case.new_lr is None:  # the plain native call (a warmup makes Optax's lr a float32 schedule)
        return factory(**case.native)
    return optax.inject_hyperparams(factory, static_args=tuple(k for k in _STATIC if k in case.native))(**case.native)


@pytest.mark.parametrize("case", OPTAX_CASES, ids=case_ids(OPTAX_CASES))
def test_optax_matches_optax_contrib(optax: Any, case: Case) -> None:
    start, grad = least_squares()
    # Muon compiled (eager it dispatches ~1,000 small ops a step); the schedule-free ones eager, because
    # under jit XLA fuses the float32 warmup's (-lr) * frac + lr into one FMA (a different rounding)
    jit = case.name == "muon"
    expected = trajectory(OptaxSteps(optax, _optax_tx(optax, case), start, jit=jit), start, grad, case.new_lr)
    assert_same(lossbridge_trajectory(case, "optax"), expected)


@pytest.mark.parametrize("name", ["schedule_free_adamw", "schedule_free_sgd"])
def test_optax_schedule_free_eval_params(optax: Any, name: str) -> None:
    """lossbridge's evaluation point from its state equals optax.contrib.schedule_free_eval_params."""
    import jax.numpy as jnp

    native = {"learning_rate": 0.05, "warmup_steps": 5, "b1": 0.8}
    start, grad = least_squares()
    tx = getattr(optax.contrib, name)(**native)
    opt = lossbridge.get(name, convention="optax", **native)
    theirs, ours = [jnp.asarray(p) for p in start], [p.copy() for p in start]
    their_state, our_state = tx.init(theirs), opt.init(ours)
    for _ in range(20):
        updates, their_state = tx.update([jnp.asarray(g) for g in grad(ours)], their_state, theirs)
        theirs = optax.apply_updates(theirs, updates)
        deltas, our_state = opt.update(grad(ours), our_state, ours)
        ours = [p + d for p, d in zip(ours, deltas, strict=True)]
        expected = optax.contrib.schedule_free_eval_params(their_state, theirs)
        got = [schedule_free_eval_params(p, s, beta_1=0.8) for p, s in zip(ours, our_state.slots, strict=True)]
        assert_same([got], [[np.asarray(e) for e in expected]], steps=1)
