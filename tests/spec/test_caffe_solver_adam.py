"""Caffe's AdamSolver, transcribed from its C++ loops in float64 NumPy, against ``convention="caffe"``.

Source: BVLC/caffe ``src/caffe/solvers/adam_solver.cpp`` (``AdamSolver::ComputeUpdateValue``), with the
L2 ``Regularize`` step and ``Net::Update`` (``data -= diff``) of ``src/caffe/solvers/sgd_solver.cpp``
(``ApplyUpdate``: regularize, then compute the update value, then update). Defaults from
``src/caffe/proto/caffe.proto``: ``momentum`` 0, ``momentum2`` 0.999, ``delta`` 1e-8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

STEPS = 100
RTOL = 1e-12

_RNG = np.random.default_rng(3)
_A = _RNG.normal(size=(8, 3))
_Y = [_RNG.normal(size=(8,)), _RNG.normal(size=(8, 2))]
_START = [_RNG.normal(size=(3,)), _RNG.normal(size=(3, 2))]


def _diff(blobs: list[np.ndarray]) -> list[np.ndarray]:
    """The gradient ``Backward`` leaves in each blob's diff: least squares plus a sin term."""
    return [_A.T @ (_A @ p - y) / 8 + 0.3 * np.cos(3 * p) for p, y in zip(blobs, _Y, strict=True)]


def _caffe_adam(
    base_lr: float, momentum: float, momentum2: float, delta: float, weight_decay: float
) -> list[list[np.ndarray]]:
    """ApplyUpdate for ``STEPS`` iterations, element by element as the CPU branch does (lr_mult 1)."""
    data = [p.copy() for p in _START]
    history_m = [np.zeros_like(p) for p in data]  # history_[param_id]
    history_v = [np.zeros_like(p) for p in data]  # history_[param_id + update_history_offset]
    out = []
    for iter_ in range(STEPS):
        diffs = _diff(data)
        for i in range(len(data)):
            diff, m, v = diffs[i].ravel(), history_m[i].ravel(), history_v[i].ravel()
            val_data = data[i].ravel()
            diff += weight_decay * val_data  # Regularize, L2: caffe_axpy(local_decay, data, diff)
            t = iter_ + 1
            correction = np.sqrt(1.0 - momentum2**t) / (1.0 - momentum**t)
            for j in range(diff.size):
                m[j] = (1.0 - momentum) * diff[j] + momentum * m[j]  # caffe_cpu_axpby
                v[j] = (1.0 - momentum2) * diff[j] * diff[j] + momentum2 * v[j]
                val_t = m[j] / (v[j] ** 0.5 + delta)  # caffe_powx, caffe_add_scalar, caffe_div
                diff[j] = base_lr * correction * val_t  # caffe_cpu_scale(local_rate * correction)
                val_data[j] -= diff[j]  # Net::Update: data -= diff
            history_m[i], history_v[i] = m.reshape(data[i].shape), v.reshape(data[i].shape)
            data[i] = val_data.reshape(data[i].shape)
        out.append([d.copy() for d in data])
    return out


def _lossbridge(**params: Any) -> list[list[np.ndarray]]:
    opt = lossbridge.get("adam", convention="caffe", **params)
    data = [p.copy() for p in _START]
    out = []
    for _ in range(STEPS):
        opt.step(data, _diff(data))
        out.append([d.copy() for d in data])
    return out


SOLVERS = [  # (caffe SolverParameter fields, the same as lossbridge parameters)
    ({"base_lr": 1e-3, "momentum": 0.0, "momentum2": 0.999, "delta": 1e-8, "weight_decay": 0.0}, {"lr": 1e-3}),
    (
        {"base_lr": 1e-2, "momentum": 0.9, "momentum2": 0.999, "delta": 1e-8, "weight_decay": 5e-4},
        {"lr": 1e-2, "beta_1": 0.9, "weight_decay": 5e-4},
    ),
    (
        {"base_lr": 3e-3, "momentum": 0.8, "momentum2": 0.99, "delta": 1e-4, "weight_decay": 0.0},
        {"lr": 3e-3, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-4},
    ),
]


@pytest.mark.parametrize(("solver", "params"), SOLVERS)
def test_caffe_adam_solver_matches_transcription(solver: dict[str, float], params: dict[str, Any]) -> None:
    got, want = _lossbridge(**params), _caffe_adam(**solver)
    for t, (g, w) in enumerate(zip(got, want, strict=True), start=1):
        for k, (a, e) in enumerate(zip(g, w, strict=True)):
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= RTOL, f"step {t}, blob {k}: relative error {err:.3g}"


def test_caffe_adam_defaults_follow_caffe_proto() -> None:
    hyper = lossbridge.get("adam", convention="caffe").hyper
    assert (hyper["beta_1"], hyper["beta_2"], hyper["eps"]) == (0.0, 0.999, 1e-8)
    assert hyper["eps_placement"] == "uncorrected" and hyper["decoupled_weight_decay"] is False


@pytest.mark.parametrize(("solver", "params"), SOLVERS)
def test_caffe_solver_parameter_names_resolve(solver: dict[str, float], params: dict[str, Any]) -> None:
    """``type: "Adam"`` with the SolverParameter field names sets the same hyperparameters."""
    native = lossbridge.get("Adam", convention="caffe", **solver)
    assert native.spec.name == "adam"
    assert native.hyper == lossbridge.get("adam", convention="caffe", **params).hyper
