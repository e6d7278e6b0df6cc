"""The third oracle: under convention="torch", lossbridge matches PyTorch itself in float64.

Losses: values (each reduction) and input gradients against ``torch.nn.functional``. Optimizers:
100 steps on a small least-squares problem against ``torch.optim``, the same gradients fed to both
(through the native fast path, the eager spec path and the compiled spec path), relative error
<= 1e-10.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossbridge

RTOL = 1e-10
REDUCTIONS = ("mean", "sum", "none")


def _rel(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach(), expected.detach()
    scale = max(float(expected.abs().max()), 1e-300)
    return float((actual - expected).abs().max()) / scale if actual.numel() else 0.0


def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(x.is_floating_point())


def _compare(ours: Any, native: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> None:
    mine, theirs = [_leaf(x) for x in inputs], [_leaf(x) for x in inputs]
    a, b = ours(*mine), native(*theirs)
    assert a.dtype == b.dtype == torch.float64
    assert a.shape == b.shape
    assert _rel(a, b) <= RTOL
    a.sum().backward()
    b.sum().backward()
    for x, y in zip(mine, theirs, strict=True):
        if y.grad is not None:
            assert _rel(x.grad, y.grad) <= RTOL


def _get(name: str, **params: Any) -> Any:
    return lossbridge.get(name, backend="torch", convention="torch", **params)


g = torch.Generator().manual_seed(0)


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def probs(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=g, dtype=torch.float64) * 0.96 + 0.02


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_torch(reduction: str) -> None:
    x, y = randn(6, 4), randn(6, 4)
    _compare(_get("mse", reduction=reduction), lambda a, b: F.mse_loss(a, b, reduction=reduction), x, y)
    _compare(_get("mae", reduction=reduction), lambda a, b: F.l1_loss(a, b, reduction=reduction), x, y)
    for delta in (1.0, 0.5):
        _compare(
            _get("huber", reduction=reduction, delta=delta),
            lambda a, b, d=delta: F.huber_loss(a, b, reduction=reduction, delta=d),
            3 * x,
            y,
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_crossentropy_matches_torch(reduction: str) -> None:
    p, y = probs(7, 3), torch.randint(0, 2, (7, 3), generator=g).double()
    native = lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction)  # noqa: E731
    _compare(_get("bce", reduction=reduction), native, p, y)
    # probabilities of exactly 0 and 1: torch clamps the log at -100; the values agree. (Its
    # backward there is its own formula (p - y) / max(p(1 - p), 1e-12), not the derivative of the
    # clamped value, so gradients are compared on interior probabilities only.)
    p[0, 0], p[1, 1], y[0, 0], y[1, 1] = 0.0, 1.0, 1.0, 0.0
    native = F.binary_cross_entropy(p, y, reduction=reduction)
    assert _rel(_get("bce", reduction=reduction)(p, y), native) <= RTOL
    logits = 4 * randn(7, 3)
    logits[0, 0], logits[1, 1] = 60.0, -60.0
    _compare(
        _get("bce", reduction=reduction, from_logits=True),
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
        logits,
        y,
    )


_WEIGHT = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0], dtype=torch.float64)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("smoothing", "weight"),
    [(0.0, None), (0.0, _WEIGHT), (0.1, None), (0.1, _WEIGHT)],  # torch weights smoothing per class too
    ids=["plain", "weighted", "smoothed", "smoothed-weighted"],
)
def test_sparse_crossentropy_matches_torch(reduction: str, smoothing: float, weight: Any) -> None:
    logits, labels = 3 * randn(8, 5), torch.randint(0, 5, (8,), generator=g)
    labels[2] = -100
    ours = _get(
        "sparse_categorical_crossentropy", reduction=reduction, weight=weight, label_smoothing=smoothing
    )

    def native(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(a, b, weight=weight, reduction=reduction, label_smoothing=smoothing)

    _compare(ours, native, logits, labels)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_crossentropy_k_dim_layout_matches_torch(reduction: str) -> None:
    logits, labels = randn(2, 4, 3, 5), torch.randint(0, 4, (2, 3, 5), generator=g)
    ours = _get("sparse_categorical_crossentropy", reduction=reduction, ignore_index=1)
    _compare(ours, lambda a, b: F.cross_entropy(a, b, reduction=reduction, ignore_index=1), logits, labels)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_categorical_crossentropy_probability_targets_match_torch(reduction: str) -> None:
    logits, target = randn(6, 4), torch.softmax(randn(6, 4), dim=-1)
    _compare(
        _get("categorical_crossentropy", reduction=reduction, label_smoothing=0.2),
        lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=0.2),
        logits,
        target,
    )
    logits, target = randn(2, 4, 3), torch.softmax(randn(2, 4, 3), dim=1)  # (N, C, d1) layout
    _compare(
        _get("categorical_crossentropy", reduction=reduction),
        lambda a, b: F.cross_entropy(a, b, reduction=reduction),
        logits,
        target,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("margin", "p", "swap"), [(1.0, 2.0, False), (0.5, 1.0, True), (2.0, 3.0, False)])
def test_triplet_margin_matches_torch(reduction: str, margin: float, p: float, swap: bool) -> None:
    a, pos, neg = randn(6, 4), randn(6, 4), randn(6, 4)
    _compare(
        _get("triplet_margin", reduction=reduction, margin=margin, p=p, swap=swap),
        lambda x, y, z: F.triplet_margin_loss(x, y, z, margin=margin, p=p, swap=swap, reduction=reduction),
        a,
        pos,
        neg,
    )


# -- optimizers ------------------------------------------------------------------------------------
STEPS = 100


def _problem() -> tuple[list[torch.Tensor], Callable[[list[torch.Tensor]], list[torch.Tensor]]]:
    rng = np.random.default_rng(1)
    x, y = torch.tensor(rng.normal(size=(8, 4))), torch.tensor(rng.normal(size=(8, 3)))
    start = [torch.tensor(rng.normal(size=(4, 3))), torch.tensor(rng.normal(size=(3,)))]

    def grad(p: list[torch.Tensor]) -> list[torch.Tensor]:
        residual = (x @ p[0] + p[1] - y) / len(x)
        return [x.T @ residual, residual.sum(dim=0)]

    return start, grad


def _trajectories(
    ours_cls: Any, native_cls: Any, ours_kw: dict[str, Any], native_kw: dict[str, Any]
) -> float:
    start, grad = _problem()
    mine = [torch.nn.Parameter(p.clone()) for p in start]
    theirs = [torch.nn.Parameter(p.clone()) for p in start]
    opt_a, opt_b = ours_cls(mine, **ours_kw), native_cls(theirs, **native_kw)
    worst = 0.0
    for _ in range(STEPS):
        grads = grad([p.detach() for p in theirs])  # closed loop on torch's own run
        for p, q, gr in zip(mine, theirs, grads, strict=True):
            p.grad, q.grad = gr.clone(), gr.clone()
        opt_a.step()
        opt_b.step()
        worst = max(worst, *(_rel(p.detach(), q.detach()) for p, q in zip(mine, theirs, strict=True)))
    return worst


OPTIMIZER_CASES = [
    ("adam", torch.optim.Adam, {"lr": 0.05}),
    ("adam", torch.optim.Adam, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("adam", torch.optim.Adam, {"lr": 0.05, "amsgrad": True}),
    ("adam", torch.optim.Adam, {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamw", torch.optim.AdamW, {"lr": 0.05}),
    ("adamw", torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True}),
    ("sgd", torch.optim.SGD, {"lr": 0.1}),
    ("sgd", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ("sgd", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", torch.optim.SGD, {"lr": 0.1, "momentum": 0.8, "dampening": 0.3}),
    ("adafactor", torch.optim.Adafactor, {"lr": 0.05}),
    ("adafactor", torch.optim.Adafactor, {"lr": 0.05, "weight_decay": 0.1, "beta2_decay": -0.5}),
]

_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(OPTIMIZER_CASES)]


@pytest.mark.parametrize("engine", ["default", "eager"])
@pytest.mark.parametrize(("name", "native", "kw"), OPTIMIZER_CASES, ids=_IDS)
def test_optimizer_matches_torch_optim(name: str, native: Any, kw: dict[str, Any], engine: str) -> None:
    cls = lossbridge.get(name, backend="torch", convention="torch")
    extra = {"fused": False} if engine == "eager" else {}
    assert _trajectories(cls, native, {**kw, **extra}, kw) <= RTOL


@pytest.mark.parametrize(("name", "native", "kw"), [OPTIMIZER_CASES[1]], ids=["adam"])
def test_compiled_spec_update_matches_torch_optim(name: str, native: Any, kw: dict[str, Any]) -> None:
    cls = lossbridge.get(name, backend="torch", convention="torch")
    assert _trajectories(cls, native, {**kw, "fused": False, "compile": True}, kw) <= RTOL


def test_the_native_path_is_taken_only_where_it_computes_the_spec() -> None:
    assert lossbridge.get("adam", backend="torch", convention="torch").native is not None
    assert lossbridge.get("sgd", backend="torch", convention="torch").native is not None
    assert lossbridge.get("adam", backend="torch", convention="keras").native is None  # eps hat
    assert lossbridge.get("sgd", backend="torch", convention="keras").native is None  # lr in buffer
    assert lossbridge.get("adam", backend="torch", convention="optax", eps_root=1e-8).native is None
