"""Optimistic GD, optimistic Adam, Fromage and SM3 against float64 NumPy textbook rules written here.

100 steps each on a least-squares problem plus a non-convex term, with parameters of rank 1, 2 and 3;
lossbridge runs on the NumPy backend.
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
    rng = np.random.default_rng(3)
    start = {"x": rng.normal(size=(3,)), "w": rng.normal(size=(3, 2)), "k": rng.normal(size=(3, 2, 2))}
    a = rng.normal(size=(8, 3))
    b = {k: rng.normal(size=(8, v.reshape(3, -1).shape[1])) for k, v in start.items()}

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            k: (a.T @ (a @ v.reshape(3, -1) - b[k]) / len(a)).reshape(v.shape) - 0.2 * np.sin(2 * v)
            for k, v in p.items()
        }

    return start, grad


def _run(rule: Rule) -> dict[str, np.ndarray]:
    return textbook_run(rule, *_problem(), STEPS)


def _lossbridge(opt: Any, new_lr: float | None = None) -> dict[str, np.ndarray]:
    return lossbridge_run(opt, *_problem(), STEPS, lr_at=lambda t: new_lr if t == STEPS // 2 + 1 else None)


def _assert_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    start, _ = _problem()
    assert max(np.max(np.abs(expected[k] - start[k])) for k in start) > 1e-3
    assert_close(actual, expected, RTOL)


def _lr(lr: float, new_lr: float | None, t: int) -> float:
    return new_lr if new_lr is not None and t > STEPS // 2 else lr


def ogd_rule(lr: float, alpha: float, beta: float, new_lr: float | None = None) -> Rule:
    """Mokhtari et al. (2020), generalized OGD: theta -= lr * (alpha g_t + beta (g_t - g_{t-1})), g_0 = g_1."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        prev = s.get("prev", g)
        s["prev"] = g
        return p - _lr(lr, new_lr, t) * (alpha * g + beta * (g - prev))

    return step


def oadam_rule(
    lr: float, alpha: float, beta: float, optimism: float | None, b1: float, b2: float, eps: float, nesterov: bool
) -> Rule:
    """Daskalakis et al. (2018), optimistic Adam; Nesterov first moment as in Dozat (2016) with constant mu."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        m = b1 * s.get("m", 0.0 * p) + (1 - b1) * g
        v = b2 * s.get("v", 0.0 * p) + (1 - b2) * g**2
        s["m"], s["v"] = m, v
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t) if nesterov else m / (1 - b1**t)
        r = m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
        prev = s.get("r", r)
        s["r"] = r
        o = lr * beta if optimism is None else optimism
        return p - lr * alpha * r - o * (r - prev)

    return step


def fromage_rule(lr: float, min_norm: float, new_lr: float | None = None) -> Rule:
    """Bernstein et al. (2020), Algorithm 1, with the norms floored at min_norm."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = _lr(lr, new_lr, t)
        ratio = max(np.linalg.norm(p), min_norm) / max(np.linalg.norm(g), min_norm)
        return (p - eta * ratio * g) / np.sqrt(1 + eta**2)

    return step


def sm3_rule(lr: float, momentum: float, eps: float, new_lr: float | None = None) -> Rule:
    """Anil et al. (2019), SM3-II over the cover {slices of each axis}, loops over coordinates, then an EMA."""

    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        if p.ndim < 2:
            nu = s.get("acc", np.zeros_like(p)) + g**2
            s["acc"] = nu
        else:
            mus = s.get("mus", [np.zeros(n) for n in p.shape])
            nu = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                nu[idx] = min(mus[ax][i] for ax, i in enumerate(idx)) + g[idx] ** 2
            new = [np.zeros(n) for n in p.shape]
            for idx in np.ndindex(p.shape):
                for ax, i in enumerate(idx):
                    new[ax][i] = max(new[ax][i], nu[idx])
            s["mus"] = new
        scaled = np.where(nu > 0, g / np.sqrt(nu + eps), 0.0)
        s["n"] = momentum * s.get("n", np.zeros_like(p)) + (1 - momentum) * scaled
        return p - _lr(lr, new_lr, t) * s["n"]

    return step


OGD, OADAM, FROMAGE, SM3 = "optimistic_gradient_descent", "optimistic_adam", "fromage", "sm3"


@pytest.mark.parametrize(
    ("name", "kwargs", "rule"),
    [
        (OGD, {"lr": 0.05}, ogd_rule(0.05, 1.0, 1.0)),
        (OGD, {"lr": 0.05, "alpha": 0.6, "beta": 0.3}, ogd_rule(0.05, 0.6, 0.3)),
        (OADAM, {"lr": 0.01}, oadam_rule(0.01, 1.0, 1.0, None, 0.9, 0.999, 1e-8, True)),
        (
            OADAM,
            {"lr": 0.02, "alpha": 0.8, "beta": 0.5, "beta_1": 0.7, "beta_2": 0.99, "eps": 1e-6, "nesterov": False},
            oadam_rule(0.02, 0.8, 0.5, None, 0.7, 0.99, 1e-6, False),
        ),
        (OADAM, {"lr": 0.01, "optimism": 0.05}, oadam_rule(0.01, 1.0, 1.0, 0.05, 0.9, 0.999, 1e-8, True)),
        (FROMAGE, {"lr": 0.01}, fromage_rule(0.01, 1e-6)),
        (FROMAGE, {"lr": 0.2, "min_norm": 1e-2}, fromage_rule(0.2, 1e-2)),
        (SM3, {"lr": 0.05}, sm3_rule(0.05, 0.9, 1e-8)),
        (SM3, {"lr": 0.1, "momentum": 0.0, "eps": 0.0}, sm3_rule(0.1, 0.0, 0.0)),
    ],
)
def test_matches_textbook_rule(name: str, kwargs: dict[str, Any], rule: Rule) -> None:
    _assert_close(_lossbridge(lossbridge.get(name, **kwargs)), _run(rule))


@pytest.mark.parametrize(
    ("name", "new_lr", "rule"),
    [
        (OGD, 0.02, ogd_rule(0.05, 1.0, 1.0, new_lr=0.02)),
        (FROMAGE, 0.2, fromage_rule(0.05, 1e-6, new_lr=0.2)),
        (SM3, 0.2, sm3_rule(0.05, 0.9, 1e-8, new_lr=0.2)),
    ],
)
def test_learning_rate_change(name: str, new_lr: float, rule: Rule) -> None:
    _assert_close(_lossbridge(lossbridge.get(name, lr=0.05), new_lr=new_lr), _run(rule))


def test_sm3_memory_is_sum_of_shape() -> None:
    spec = lossbridge.spec("sm3")
    state = spec.init(np.zeros((4, 5, 6)), xp=np, **{p.name: p.default for p in spec.params})
    assert state["acc"].shape == (15,) and state["ema"].shape == (4, 5, 6)


def test_fromage_keeps_the_norm_bounded() -> None:
    """With the gradient orthogonal to theta, the step leaves the norm unchanged (the paper's point)."""
    opt, params = lossbridge.get("fromage", lr=0.5), [np.array([1.0, 0.0])]
    opt.step(params, [np.array([0.0, 3.0])])
    assert np.linalg.norm(params[0]) == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("optimistic_gradient_descent", {"lr": -1.0}),
        ("optimistic_adam", {"beta_1": 1.0}),
        ("optimistic_adam", {"eps": -1.0}),
        ("fromage", {"min_norm": -1.0}),
        ("sm3", {"momentum": 1.5}),
    ],
)
def test_invalid_hyperparameters_are_refused(name: str, bad: dict[str, Any]) -> None:
    with pytest.raises(ParameterError, match=next(iter(bad))):
        lossbridge.get(name, **bad)
