"""The plugin's optimizer against a textbook oracle written here in float64 NumPy.

Quasi-hyperbolic momentum is in no framework's catalog, so the oracle is Ma & Yarats (2019),
Algorithm 1 (with weight decay added to the gradient), transcribed independently of the spec. Both
runs minimize the same least-squares problem plus a non-convex term from their own iterates for
100 steps, and one run changes the learning rate after step 50; every iterate must agree to 1e-10
relative.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import lossbridge

STEPS = 100


def _problem() -> tuple[list[np.ndarray], Callable[[list[np.ndarray]], list[np.ndarray]]]:
    """0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p) for a vector and a matrix parameter."""
    rng = np.random.default_rng(11)
    start = [rng.normal(size=(3,)), rng.normal(size=(3, 2))]
    mats = [rng.normal(size=(8, 3)) for _ in start]
    targets = [rng.normal(size=(8,)), rng.normal(size=(8, 2))]

    def grad(params: list[np.ndarray]) -> list[np.ndarray]:
        return [a.T @ (a @ p - b) / 8 - 0.2 * np.sin(2 * p) for p, a, b in zip(params, mats, targets, strict=True)]

    return start, grad


def _textbook(lr: float, beta: float, nu: float, wd: float, new_lr: float | None) -> list[list[np.ndarray]]:
    start, grad = _problem()
    params, bufs, out = [p.copy() for p in start], [np.zeros_like(p) for p in start], []
    for t in range(1, STEPS + 1):
        eta = new_lr if new_lr is not None and t > STEPS // 2 else lr
        for k, g in enumerate(grad(params)):
            g = g + wd * params[k]
            bufs[k] = beta * bufs[k] + (1 - beta) * g  # Ma & Yarats (2019), Algorithm 1
            params[k] = params[k] - eta * ((1 - nu) * g + nu * bufs[k])
        out.append([p.copy() for p in params])
    return out


def _lossbridge(lr: float, beta: float, nu: float, wd: float, new_lr: float | None) -> list[list[np.ndarray]]:
    start, grad = _problem()
    opt = lossbridge.get("qhm", lr=lr, momentum=beta, nu=nu, weight_decay=wd)
    params, out = [p.copy() for p in start], []
    for t in range(1, STEPS + 1):
        if new_lr is not None and t == STEPS // 2 + 1:
            opt.set_hyper(lr=new_lr)
        opt.step(params, grad(params))
        out.append([p.copy() for p in params])
    return out


@pytest.mark.parametrize(
    ("lr", "beta", "nu", "wd", "new_lr"),
    [(0.1, 0.999, 0.7, 0.0, None), (0.05, 0.9, 0.5, 0.01, None), (0.1, 0.99, 1.0, 0.0, 0.02)],
)
def test_qhm_matches_the_textbook_update_for_100_steps(
    lr: float, beta: float, nu: float, wd: float, new_lr: float | None
) -> None:
    expected = _textbook(lr, beta, nu, wd, new_lr)
    actual = _lossbridge(lr, beta, nu, wd, new_lr)
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        for a, e in zip(got, want, strict=True):
            err = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert err <= 1e-10, f"step {t}: relative error {err:.3g}"
