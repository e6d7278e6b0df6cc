"""ASGD, FTRL-Proximal, LARS and NovoGrad against float64 NumPy textbook rules written here, 100 steps each.

The problem is least squares plus a non-convex term, ``0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p)``,
for a vector and a matrix parameter; both runs compute gradients from their own iterates.
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


def _problem() -> tuple[dict[str, np.ndarray], Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(8, 3))
    b = {"x": rng.normal(size=(8,)), "w": rng.normal(size=(8, 2))}
    start = {"x": rng.normal(size=(3,)), "w": rng.normal(size=(3, 2))}
    return start, lambda p: {k: a.T @ (a @ p[k] - b[k]) / 8 - 0.2 * np.sin(2 * p[k]) for k in p}


def _run(rule: Rule) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    states: dict[str, dict[str, Any]] = {}
    return textbook_run(rule, *_problem(), STEPS, states=states), states


def _lossbridge(opt: Any, new_lr: tuple[int, float] | None = None) -> dict[str, np.ndarray]:
    return lossbridge_run(opt, *_problem(), STEPS,
                          lr_at=lambda t: new_lr[1] if new_lr is not None and t == new_lr[0] else None)


def _assert_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert_close(actual, expected, RTOL)


# -- ASGD -------------------------------------------------------------------------------------------
def asgd_rule(lr: float, lam: float, alpha: float, t0: float, wd: float) -> Rule:
    """Bottou (2012), section 5.3 / Polyak & Juditsky (1992): decaying SGD plus the iterate average."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = lr / (1 + lam * lr * (t - 1)) ** alpha  # eta_t, with eta_1 = lr
        g = g + wd * p
        p = p * (1 - lam * eta) - eta * g
        start = max(1.0, t - 1 - t0)  # averaging weight 1 / (number of averaged iterates)
        s["ax"] = p.copy() if start == 1.0 else s["ax"] + (p - s["ax"]) / start
        return p

    return step


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({}, (1e-2, 1e-4, 0.75, 1e6, 0.0)),
        ({"lr": 0.05, "decay": 0.1, "alpha": 0.6, "t0": 40.0, "weight_decay": 0.05}, (0.05, 0.1, 0.6, 40.0, 0.05)),
    ],
)
def test_asgd_matches_the_textbook_iterates_and_average(kwargs: dict[str, Any], rule: tuple[float, ...]) -> None:
    expected, states = _run(asgd_rule(*rule))
    opt = lossbridge.get("asgd", **kwargs)
    _assert_close(_lossbridge(opt), expected)
    slots = opt._state.slots
    _assert_close({"x": slots[0]["ax"], "w": slots[1]["ax"]}, {k: states[k]["ax"] for k in ("x", "w")})


def test_asgd_torch_lambd_keyword() -> None:
    assert lossbridge.get("ASGD", convention="torch", lambd=0.3).hyper["decay"] == 0.3


# -- FTRL -------------------------------------------------------------------------------------------
def ftrl_rule(lr: float, power: float, n0: float, l1: float, l2: float, shrink: float, beta: float) -> Rule:
    """McMahan et al. (2013), Algorithm 1, with a general power and Keras's L2 shrinkage term."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        n, z = s.get("n", np.full_like(p, n0)), s.get("z", np.zeros_like(p))
        n_new = n + g**2
        sigma = (n_new ** (-power) - n ** (-power)) / lr
        z = z + g + 2 * shrink * p - sigma * p
        s["n"], s["z"] = n_new, z
        # the paper's lambda_2 is 2 * l2 here (Keras's strength: the penalty l2 * theta^2)
        out = -(z - np.sign(z) * l1) / ((beta + n_new ** (-power)) / lr + 2 * l2)
        return np.where(np.abs(z) <= l1, 0.0, out)

    return step


@pytest.mark.parametrize(
    "hp",
    [
        (1e-3, -0.5, 0.1, 0.0, 0.0, 0.0, 0.0),
        (0.05, -0.5, 0.1, 0.01, 0.1, 0.0, 0.0),
        (0.1, -0.7, 0.3, 0.0, 0.0, 0.05, 0.5),
    ],
)
def test_ftrl_matches_the_paper(hp: tuple[float, ...]) -> None:
    names = ("lr", "lr_power", "initial_accumulator_value", "l1", "l2", "l2_shrinkage", "beta")
    expected, _ = _run(ftrl_rule(*hp))
    _assert_close(_lossbridge(lossbridge.get("ftrl", **dict(zip(names, hp)))), expected)


def test_ftrl_l1_gives_exact_zeros() -> None:
    opt, params = lossbridge.get("ftrl", lr=0.1, l1=10.0), [np.array([0.5, -0.5])]
    opt.step(params, [np.array([1.0, -2.0])])
    assert params[0].tolist() == [0.0, 0.0]


# -- LARS -------------------------------------------------------------------------------------------
def lars_rule(lr: float, wd: float, coef: float, eps: float, mu: float, nesterov: bool) -> Rule:
    """You et al. (2017), Algorithm 1, with the trust ratio over the decayed gradient (Optax's form)."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        u = g + wd * p
        wn, un = np.linalg.norm(p), np.linalg.norm(u)
        local = coef * wn / (un + eps) if wn > 0 and un > 0 else 1.0
        v = mu * s.get("v", np.zeros_like(p)) - lr * local * u
        s["v"] = v
        return p + (mu * v - lr * local * u if nesterov else v)

    return step


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"lr": 1.0}, (1.0, 0.0, 1e-3, 0.0, 0.9, False)),
        (
            {"lr": 2.0, "weight_decay": 0.1, "trust_coefficient": 0.01, "eps": 1e-3, "momentum": 0.5},
            (2.0, 0.1, 0.01, 1e-3, 0.5, False),
        ),
        ({"lr": 1.0, "momentum": 0.8, "nesterov": True}, (1.0, 0.0, 1e-3, 0.0, 0.8, True)),
    ],
)
def test_lars_matches_the_paper(kwargs: dict[str, Any], rule: tuple[Any, ...]) -> None:
    expected, _ = _run(lars_rule(*rule))
    _assert_close(_lossbridge(lossbridge.get("lars", **kwargs)), expected)


def test_lars_ratio_is_one_for_a_zero_parameter() -> None:
    opt, params = lossbridge.get("lars", lr=0.5, momentum=0.0), [np.zeros(2)]
    opt.step(params, [np.array([1.0, -2.0])])
    assert params[0].tolist() == [-0.5, 1.0]


# -- NovoGrad ---------------------------------------------------------------------------------------
def novograd_rule(lr: float, b1: float, b2: float, eps: float, wd: float) -> Rule:
    """Ginsburg et al. (2019), Algorithm 1 (first step: v = ||g||^2, m = the normalized gradient)."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        sq = float(np.sum(g * g))
        s["v"] = sq if t == 1 else b2 * s["v"] + (1 - b2) * sq
        u = g / (np.sqrt(s["v"]) + eps) + wd * p
        s["m"] = u if t == 1 else b1 * s["m"] + u
        return p - lr * s["m"]

    return step


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"lr": 0.05}, (0.05, 0.9, 0.25, 1e-6, 0.0)),
        ({"lr": 0.05, "beta_1": 0.8, "beta_2": 0.5, "eps": 1e-4, "weight_decay": 0.1}, (0.05, 0.8, 0.5, 1e-4, 0.1)),
    ],
)
def test_novograd_matches_the_paper(kwargs: dict[str, Any], rule: tuple[float, ...]) -> None:
    expected, _ = _run(novograd_rule(*rule))
    _assert_close(_lossbridge(lossbridge.get("novograd", **kwargs)), expected)


@pytest.mark.parametrize(
    ("name", "bad"),
    [("asgd", {"decay": -1.0}), ("ftrl", {"lr": 0.0}), ("ftrl", {"lr_power": 0.5}), ("lars", {"momentum": 1.5})],
)
def test_invalid_hyperparameters_are_refused(name: str, bad: dict[str, Any]) -> None:
    with pytest.raises(ParameterError, match=next(iter(bad))):
        lossbridge.get(name, **bad)
