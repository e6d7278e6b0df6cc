"""Caffe's per-blob ``lr_mult`` / ``decay_mult`` (``ParamSpec``) under ``convention="caffe"``.

The oracle is a float64 NumPy transcription of Caffe's SGD solver, BVLC/caffe
``src/caffe/solvers/sgd_solver.cpp``: ``ApplyUpdate`` runs, per learnable blob, ``Regularize``
(``local_decay = weight_decay * net_params_weight_decay[param_id]``; L2: ``diff += local_decay * data``)
then ``ComputeUpdateValue`` (``local_rate = rate * net_params_lr[param_id]``;
``history = local_rate * diff + momentum * history``; ``diff = history``), and ``Net::Update``
subtracts ``diff`` from the data. ``lr_policy: "fixed"``, so ``rate = base_lr``.

50 float64 steps on two blobs (a weight with lr_mult 1 / decay_mult 1, a bias with lr_mult 2 /
decay_mult 0, the usual Caffe prototxt choice), relative error <= 1e-12 per iterate, against
lossbridge's torch optimizer with Caffe's multipliers in its param groups, and against lossbridge's
NumPy optimizer with ``lr_mult=`` / ``decay_mult=`` per leaf.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge

STEPS = 50
RTOL = 1e-12
BASE_LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 0.01
LR_MULT, DECAY_MULT = (1.0, 2.0), (1.0, 0.0)


def problem() -> tuple[list[np.ndarray], Any]:
    """Least squares of a linear layer ``x @ W + b`` plus 0.1 * sum(cos 2 theta): start and gradient."""
    rng = np.random.default_rng(31)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 2))
    start = [rng.normal(size=(3, 2)), rng.normal(size=(2,))]

    def grad(params: list[np.ndarray]) -> list[np.ndarray]:
        w, b = params
        r = (x @ w + b - y) / x.shape[0]
        return [x.T @ r - 0.2 * np.sin(2.0 * w), r.sum(axis=0) - 0.2 * np.sin(2.0 * b)]

    return start, grad


def caffe_sgd(
    start: list[np.ndarray], grad: Any, lr_mult: tuple[float, ...] = LR_MULT, decay_mult: tuple[float, ...] = DECAY_MULT
) -> list[list[np.ndarray]]:
    """Caffe's SGDSolver (sgd_solver.cpp, regularization_type "L2", iter_size 1, no clipping)."""
    data = [p.copy() for p in start]
    history = [np.zeros_like(p) for p in start]
    out = []
    for _ in range(STEPS):
        diffs = grad(data)
        rate = BASE_LR  # GetLearningRate, lr_policy "fixed"
        for param_id, diff in enumerate(diffs):
            local_decay = WEIGHT_DECAY * decay_mult[param_id]  # Regularize
            if local_decay:
                diff = diff + local_decay * data[param_id]
            local_rate = rate * lr_mult[param_id]  # ComputeUpdateValue: caffe_cpu_axpby
            history[param_id] = local_rate * diff + MOMENTUM * history[param_id]
            data[param_id] = data[param_id] - history[param_id]  # Net::Update: data -= diff
        out.append([p.copy() for p in data])
    return out


def assert_same(actual: list[list[np.ndarray]], expected: list[list[np.ndarray]]) -> None:
    assert len(actual) == len(expected) == STEPS
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        for k, (a, e) in enumerate(zip(got, want, strict=True)):
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= RTOL, f"step {t}, blob {k}: relative error {err:.3g}"


def test_caffe_multipliers_change_the_trajectory() -> None:
    """The multipliers matter: without them the transcription differs by far."""
    start, grad = problem()
    plain = caffe_sgd(start, grad, (1.0, 1.0), (1.0, 1.0))
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(plain, caffe_sgd(start, grad))


def test_torch_caffe_lr_mult_decay_mult_param_groups() -> None:
    torch = pytest.importorskip("torch")
    start, grad = problem()
    sgd = lossbridge.get("SGD", backend="torch", convention="caffe", base_lr=BASE_LR, momentum=MOMENTUM,
                         weight_decay=WEIGHT_DECAY)
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start]
    opt = sgd([{"params": [t], "lr_mult": lm, "decay_mult": dm}
               for t, lm, dm in zip(tensors, LR_MULT, DECAY_MULT, strict=True)])
    assert [g["lr"] for g in opt.param_groups] == [BASE_LR * m for m in LR_MULT]
    assert [g["weight_decay"] for g in opt.param_groups] == [WEIGHT_DECAY * m for m in DECAY_MULT]
    ours = []
    for _ in range(STEPS):
        for t, g in zip(tensors, grad([t.detach().numpy() for t in tensors]), strict=True):
            t.grad = torch.from_numpy(g)
        opt.step()
        ours.append([t.detach().numpy().copy() for t in tensors])
    assert_same(ours, caffe_sgd(start, grad))


def test_torch_multipliers_only_under_caffe() -> None:
    torch = pytest.importorskip("torch")
    sgd = lossbridge.get("SGD", backend="torch", convention="torch", lr=0.1)
    with pytest.raises(ValueError, match="lr_mult"):
        sgd([{"params": [torch.zeros(2, dtype=torch.float64, requires_grad=True)], "lr_mult": 2.0}])


def _numpy_run(opt: Any, start: list[np.ndarray], grad: Any) -> list[list[np.ndarray]]:
    params, out = [p.copy() for p in start], []
    for _ in range(STEPS):
        opt.step(params, grad(params))
        out.append([p.copy() for p in params])
    return out


def test_numpy_caffe_lr_mult_decay_mult_per_leaf() -> None:
    start, grad = problem()
    opt = lossbridge.get("SGD", convention="caffe", base_lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                         lr_mult=list(LR_MULT), decay_mult=list(DECAY_MULT))
    assert_same(_numpy_run(opt, start, grad), caffe_sgd(start, grad))


def test_numpy_caffe_lr_mult_alone_and_with_a_tree() -> None:
    """Only lr_mult (decay_mult 1 everywhere), with the multipliers given as a dict like the parameters."""
    start, grad = problem()
    opt = lossbridge.get("SGD", convention="caffe", base_lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                         lr_mult={"w": 1.0, "b": 2.0})
    params = {"w": start[0].copy(), "b": start[1].copy()}
    ours = []
    for _ in range(STEPS):
        g = grad([params["w"], params["b"]])
        opt.step(params, {"w": g[0], "b": g[1]})
        ours.append([params["w"].copy(), params["b"].copy()])
    assert_same(ours, caffe_sgd(start, grad, LR_MULT, (1.0, 1.0)))


def test_numpy_multipliers_refused_outside_caffe_and_miscounted() -> None:
    with pytest.raises(ValueError, match="caffe"):
        lossbridge.get("SGD", convention="torch", lr=0.1, lr_mult=[1.0, 2.0])
    start, grad = problem()
    opt = lossbridge.get("SGD", convention="caffe", base_lr=0.1, lr_mult=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one multiplier per parameter"):
        opt.step([p.copy() for p in start], grad(start))
