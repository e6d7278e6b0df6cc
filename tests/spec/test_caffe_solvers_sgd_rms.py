"""Caffe's SGD, Nesterov, AdaGrad, RMSProp and AdaDelta solvers against float64 NumPy transcriptions.

Caffe cannot be installed, so each solver's ``ComputeUpdateValue`` CPU branch is transcribed here,
loop for loop, from BVLC/caffe (written independently of lossbridge's specs):

* ``src/caffe/solvers/sgd_solver.cpp``: ``ApplyUpdate`` (rate from the lr policy, then per parameter
  ``Regularize`` -- L2: ``diff += weight_decay * data`` -- then ``ComputeUpdateValue``, then
  ``net_->Update()``: ``data -= diff``); SGD: ``history = local_rate * diff + momentum * history``,
  ``diff = history``;
* ``src/caffe/solvers/nesterov_solver.cpp``: ``update = history``; ``history = local_rate * diff +
  momentum * history``; ``diff = (1 + momentum) * history - momentum * update``;
* ``src/caffe/solvers/adagrad_solver.cpp``: ``history += diff^2``; ``diff = local_rate * diff /
  (sqrt(history) + delta)``;
* ``src/caffe/solvers/rmsprop_solver.cpp``: ``history = (1 - rms_decay) * diff^2 + rms_decay *
  history``; ``diff = local_rate * diff / (sqrt(history) + delta)``;
* ``src/caffe/solvers/adadelta_solver.cpp``: ``history = (1 - momentum) * diff^2 + momentum *
  history``; ``update = sqrt((delta + history2) / (delta + history))``; ``diff *= update``;
  ``history2 = (1 - momentum) * diff^2 + momentum * history2``; ``diff *= local_rate``.

lossbridge is built the Caffe way: the solver ``type`` as the name, SolverParameter field names as
keywords (``base_lr``, ``momentum``, ``delta``, ``rms_decay``, ``weight_decay``), ``convention="caffe"``.
The problem is least squares plus a non-convex term; 100 iterations, relative error <= 1e-12.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lossbridge

ITERS = 100
RTOL = 1e-12


def _problem() -> tuple[list[np.ndarray], Callable[[list[np.ndarray]], list[np.ndarray]]]:
    rng = np.random.default_rng(3)
    start = [rng.normal(size=(3,)), rng.normal(size=(3, 2))]
    mats = [rng.normal(size=(8, 3)) for _ in start]
    targets = [rng.normal(size=(8,)), rng.normal(size=(8, 2))]

    def grad(params: list[np.ndarray]) -> list[np.ndarray]:
        return [a.T @ (a @ p - b) / 8 - 0.2 * np.sin(2.0 * p) for p, a, b in zip(params, mats, targets, strict=True)]

    return start, grad


def _rate(solver: dict[str, Any], it: int) -> float:
    """``SGDSolver::GetLearningRate`` for lr_policy "fixed" and "step" (iter counts from 0)."""
    if solver.get("lr_policy", "fixed") == "fixed":
        return solver["base_lr"]
    return solver["base_lr"] * solver["gamma"] ** (it // solver["stepsize"])


# -- ComputeUpdateValue transcriptions: (diff, history, local_rate, solver) -> diff ---------------------
def _sgd(diff: np.ndarray, h: list[np.ndarray], rate: float, s: dict[str, Any]) -> np.ndarray:
    h[0] = rate * diff + s.get("momentum", 0.0) * h[0]
    return h[0].copy()


def _nesterov(diff: np.ndarray, h: list[np.ndarray], rate: float, s: dict[str, Any]) -> np.ndarray:
    momentum = s.get("momentum", 0.0)
    update = h[0].copy()
    h[0] = rate * diff + momentum * h[0]
    return (1.0 + momentum) * h[0] - momentum * update


def _adagrad(diff: np.ndarray, h: list[np.ndarray], rate: float, s: dict[str, Any]) -> np.ndarray:
    h[0] = diff**2 + h[0]
    return rate * (diff / (np.sqrt(h[0]) + s.get("delta", 1e-8)))


def _rmsprop(diff: np.ndarray, h: list[np.ndarray], rate: float, s: dict[str, Any]) -> np.ndarray:
    decay = s.get("rms_decay", 0.99)
    h[0] = (1.0 - decay) * diff**2 + decay * h[0]
    return rate * (diff / (np.sqrt(h[0]) + s.get("delta", 1e-8)))


def _adadelta(diff: np.ndarray, h: list[np.ndarray], rate: float, s: dict[str, Any]) -> np.ndarray:
    momentum, delta = s.get("momentum", 0.0), s.get("delta", 1e-8)
    h[0] = (1.0 - momentum) * diff**2 + momentum * h[0]
    update = np.sqrt((delta + h[1]) / (delta + h[0]))
    diff = diff * update
    h[1] = (1.0 - momentum) * diff**2 + momentum * h[1]
    return rate * diff


SOLVERS = {"SGD": _sgd, "Nesterov": _nesterov, "AdaGrad": _adagrad, "RMSProp": _rmsprop, "AdaDelta": _adadelta}


def _caffe_run(solver_type: str, solver: dict[str, Any]) -> list[list[np.ndarray]]:
    start, grad = _problem()
    data = [p.copy() for p in start]
    history = [[np.zeros_like(p), np.zeros_like(p)] for p in data]
    out = []
    for it in range(ITERS):
        rate = _rate(solver, it)
        diffs = grad(data)
        for k, p in enumerate(data):
            diff = diffs[k] + solver.get("weight_decay", 0.0) * p  # Regularize, L2
            data[k] = p - SOLVERS[solver_type](diff, history[k], rate, solver)  # Blob::Update
        out.append([p.copy() for p in data])
    return out


def _lossbridge_run(solver_type: str, solver: dict[str, Any]) -> list[list[np.ndarray]]:
    kwargs = {k: v for k, v in solver.items() if k not in ("lr_policy", "gamma", "stepsize")}
    opt = lossbridge.get(solver_type, convention="caffe", **kwargs)
    start, grad = _problem()
    params = [p.copy() for p in start]
    out = []
    for it in range(ITERS):
        opt.set_hyper(lr=_rate(solver, it))
        opt.step(params, grad(params))
        out.append([p.copy() for p in params])
    return out


CASES = [
    ("SGD", {"base_lr": 0.05}),
    ("SGD", {"base_lr": 0.02, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"base_lr": 0.02, "momentum": 0.9, "lr_policy": "step", "gamma": 0.3, "stepsize": 40}),
    ("Nesterov", {"base_lr": 0.02, "momentum": 0.9}),
    ("Nesterov", {"base_lr": 0.02, "momentum": 0.95, "weight_decay": 0.05}),
    ("Nesterov", {"base_lr": 0.02, "momentum": 0.9, "lr_policy": "step", "gamma": 0.3, "stepsize": 40}),
    ("AdaGrad", {"base_lr": 0.05}),
    ("AdaGrad", {"base_lr": 0.1, "delta": 1e-6, "weight_decay": 0.01}),
    ("AdaGrad", {"base_lr": 0.1, "lr_policy": "step", "gamma": 0.5, "stepsize": 30}),
    ("RMSProp", {"base_lr": 1e-3}),
    ("RMSProp", {"base_lr": 1e-3, "rms_decay": 0.9, "delta": 1e-6, "weight_decay": 0.01}),
    ("RMSProp", {"base_lr": 1e-3, "lr_policy": "step", "gamma": 0.5, "stepsize": 30}),
    ("AdaDelta", {"base_lr": 1.0}),
    ("AdaDelta", {"base_lr": 1.0, "momentum": 0.95, "delta": 1e-6, "weight_decay": 0.01}),
    ("AdaDelta", {"base_lr": 1.0, "momentum": 0.9, "delta": 1e-6, "lr_policy": "step", "gamma": 2.0, "stepsize": 50}),
]


@pytest.mark.parametrize(
    ("solver_type", "solver"), CASES, ids=[t + "-" + "-".join(f"{k}={v}" for k, v in s.items()) for t, s in CASES]
)
def test_caffe_solver_matches_transcription(solver_type: str, solver: dict[str, Any]) -> None:
    got, want = _lossbridge_run(solver_type, solver), _caffe_run(solver_type, solver)
    for it, (a_step, e_step) in enumerate(zip(got, want, strict=True)):
        for k, (a, e) in enumerate(zip(a_step, e_step, strict=True)):
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= RTOL, f"iteration {it}, parameter {k}: relative error {err:.3g}"


@pytest.mark.parametrize(
    ("solver_type", "spec", "preset"),
    [
        ("SGD", "sgd", {"lr_in_momentum": True, "nesterov": False}),
        ("Nesterov", "sgd", {"lr_in_momentum": True, "nesterov": True}),
        ("AdaGrad", "adagrad", {"eps": 1e-8, "eps_in_sqrt": False, "initial_accumulator_value": 0.0}),
        ("RMSProp", "rmsprop", {"rho": 0.99, "eps": 1e-8, "eps_in_sqrt": False}),
        ("AdaDelta", "adadelta", {"rho": 0.0, "eps": 1e-8}),
    ],
)
def test_caffe_solver_types_resolve_with_proto_defaults(solver_type: str, spec: str, preset: dict[str, Any]) -> None:
    opt = lossbridge.get(solver_type, convention="caffe")
    assert opt.bound.spec.name == spec
    assert {k: opt.bound.hyper[k] for k in preset} == preset
    assert opt.bound.hyper["weight_decay"] == 0.0 and not opt.bound.hyper["decoupled_weight_decay"]


def test_caffe_keyword_names_map_onto_the_spec() -> None:
    hyper = lossbridge.get("AdaDelta", convention="caffe", base_lr=0.5, momentum=0.9, delta=1e-6).bound.hyper
    assert (hyper["lr"], hyper["rho"], hyper["eps"]) == (0.5, 0.9, 1e-6)
    hyper = lossbridge.get("RMSProp", convention="caffe", rms_decay=0.9, weight_decay=0.1).bound.hyper
    assert (hyper["rho"], hyper["weight_decay"]) == (0.9, 0.1)
