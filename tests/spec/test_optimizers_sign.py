"""Lion (Signum, signSGD) and Rprop against float64 NumPy textbook rules written here, 100 steps each.

Lion runs on a least-squares problem plus a non-convex term whose minimizer is far from the start
(every gradient coordinate keeps its sign, so no sign is decided by rounding); Rprop, whose point is
sign changes, runs on a problem it converges on. lossbridge runs on the NumPy backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import ParameterError

from ._trajectories import Rule, assert_close, lossbridge_run, textbook_run

STEPS = 100
RTOL = 1e-10


def _problem(far: bool) -> tuple[dict[str, np.ndarray], Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]:
    rng = np.random.default_rng(5)
    start = {"x": rng.normal(size=(3,)), "w": rng.normal(size=(3, 2))}
    if far:
        a = 2.0 * np.eye(3) + 0.1 * rng.normal(size=(3, 3))
        b = {k: a @ (v + 3.0 * rng.choice([-1.0, 1.0], size=v.shape)) for k, v in start.items()}
    else:
        a = rng.normal(size=(8, 3))
        b = {"x": rng.normal(size=(8,)), "w": rng.normal(size=(8, 2))}
    return start, lambda p: {k: a.T @ (a @ p[k] - b[k]) / len(a) - 0.2 * np.sin(2 * p[k]) for k in p}


def _run(step: Rule, far: bool) -> dict[str, np.ndarray]:
    return textbook_run(step, *_problem(far), STEPS)


def _lossbridge(opt: Any, far: bool, new_lr: float | None = None) -> dict[str, np.ndarray]:
    return lossbridge_run(opt, *_problem(far), STEPS, lr_at=lambda t: new_lr if t == STEPS // 2 + 1 else None)


def _assert_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert_close(actual, expected, RTOL)


def lion_rule(lr: float, b1: float, b2: float, wd: float, new_lr: float | None = None) -> Any:
    """Chen et al. (2023), Algorithm 2 (Lion), with decoupled weight decay."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        m = s.get("m", np.zeros_like(p))
        eta = new_lr if new_lr is not None and t > STEPS // 2 else lr
        update = np.sign(b1 * m + (1 - b1) * g)
        s["m"] = b2 * m + (1 - b2) * g
        return p - eta * (update + wd * p)

    return step


@pytest.mark.parametrize(
    ("kwargs", "b1", "b2", "wd"),
    [
        ({"lr": 1e-3}, 0.9, 0.99, 0.0),
        ({"lr": 3e-3, "beta_1": 0.7, "beta_2": 0.95, "weight_decay": 0.1}, 0.7, 0.95, 0.1),
        ({"lr": 2e-3, "beta": 0.8}, 0.8, 0.8, 0.0),  # Signum: sign of the EMA itself
        ({"lr": 2e-3, "beta": 0.0}, 0.0, 0.0, 0.0),  # signSGD
    ],
)
def test_lion_matches_the_paper(kwargs: dict[str, Any], b1: float, b2: float, wd: float) -> None:
    expected = _run(lion_rule(kwargs["lr"], b1, b2, wd), far=True)
    _assert_close(_lossbridge(lossbridge.get("lion", **kwargs), far=True), expected)


def test_lion_lr_change_mid_run() -> None:
    expected = _run(lion_rule(1e-3, 0.9, 0.99, 0.0, new_lr=4e-3), far=True)
    _assert_close(_lossbridge(lossbridge.get("lion", lr=1e-3), far=True, new_lr=4e-3), expected)


def test_signum_is_the_sign_of_the_bernstein_momentum() -> None:
    """Bernstein et al. (2018), Algorithm 3: m = beta m + (1 - beta) g, theta -= lr sign(m)."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["m"] = 0.9 * s.get("m", np.zeros_like(p)) + 0.1 * g
        return p - 1e-3 * np.sign(s["m"])

    signum = lossbridge.get("signum", convention="optax", learning_rate=1e-3)
    _assert_close(_lossbridge(signum, far=True), _run(step, True))
    sign_sgd = lossbridge.get("sign_sgd", convention="optax", learning_rate=1e-3)
    _assert_close(_lossbridge(sign_sgd, far=True), _run(lambda p, g, s, t: p - 1e-3 * np.sign(g), True))


def test_lion_sign_of_zero_is_no_step() -> None:
    opt, params = lossbridge.get("lion", lr=0.1), [np.array([1.0, 2.0])]
    opt.step(params, [np.array([0.0, -1.0])])
    assert params[0].tolist() == [1.0, 2.1]


def rprop_rule(lr: float, eta_minus: float, eta_plus: float, lo: float, hi: float) -> Any:
    """Riedmiller & Braun (1993), Rprop without weight-backtracking (a sign change skips the step)."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        prev, size = s.get("prev", np.zeros_like(p)), s.get("size", np.full_like(p, lr))
        new_size, g_used = size.copy(), g.copy()
        for i in np.ndindex(p.shape):
            if g[i] * prev[i] > 0:
                new_size[i] = min(size[i] * eta_plus, hi)
            elif g[i] * prev[i] < 0:
                new_size[i] = max(size[i] * eta_minus, lo)
                g_used[i] = 0.0
            else:
                new_size[i] = min(max(size[i], lo), hi)
        s["prev"], s["size"] = g_used, new_size
        return p - np.sign(g_used) * new_size

    return step


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({}, (1e-2, 0.5, 1.2, 1e-6, 50.0)),
        (
            {"lr": 0.05, "eta_minus": 0.3, "eta_plus": 1.5, "min_step_size": 1e-4, "max_step_size": 0.5},
            (0.05, 0.3, 1.5, 1e-4, 0.5),
        ),
    ],
)
def test_rprop_matches_the_paper(kwargs: dict[str, Any], rule: tuple[float, ...]) -> None:
    _assert_close(_lossbridge(lossbridge.get("rprop", **kwargs), far=False), _run(rprop_rule(*rule), far=False))


def test_rprop_lr_is_only_the_initial_step_size() -> None:
    expected = _run(rprop_rule(1e-2, 0.5, 1.2, 1e-6, 50.0), far=False)
    _assert_close(_lossbridge(lossbridge.get("rprop"), far=False, new_lr=0.5), expected)


def test_rprop_lagged_applies_the_previous_step() -> None:
    """The optax form: every update is the paper's previous one, dropped where the sign flips."""
    opt, params = lossbridge.get("rprop", lr=0.1, lagged=True, clip_unchanged=False), [np.zeros(1)]
    trace = []
    for g in (1.0, 1.0, 1.0, -1.0, -1.0):
        before = params[0][0]
        opt.step(params, [np.array([g])])
        trace.append(round(params[0][0] - before, 12))
    assert trace == [0.0, -0.1, -0.12, 0.0, 0.0]


def test_rprop_torch_pairs_split() -> None:
    opt = lossbridge.get("Rprop", convention="torch", etas=(0.4, 1.3), step_sizes=(1e-5, 10.0))
    assert {k: opt.hyper[k] for k in ("eta_minus", "eta_plus", "min_step_size", "max_step_size")} == {
        "eta_minus": 0.4,
        "eta_plus": 1.3,
        "min_step_size": 1e-5,
        "max_step_size": 10.0,
    }


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("lion", {"beta_1": 1.5}),
        ("lion", {"beta": -0.1}),
        ("lion", {"lr": -1.0}),
        ("rprop", {"eta_minus": 1.0}),
        ("rprop", {"eta_plus": 1.0}),
        ("rprop", {"min_step_size": -1.0}),
    ],
)
def test_invalid_hyperparameters_are_refused(name: str, bad: dict[str, Any]) -> None:
    with pytest.raises(ParameterError, match=next(iter(bad))):
        lossbridge.get(name, **bad)
