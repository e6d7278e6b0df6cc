"""Adamax, NAdam, RAdam, AdaBelief, Yogi and Adan against float64 NumPy textbook rules, 100 steps each.

The problem is least squares ``0.5 ||A p - y||^2 / 8`` plus a non-convex ``0.1 sum(sin(3 p))`` for a
vector and a matrix parameter. Both runs compute their own gradients from their own iterates; the
textbook rules follow the papers (Kingma & Ba 2015 section 7.1, Dozat 2016, Liu et al. 2020) with the
framework variants written out explicitly (Zhuang et al. 2020, Zaheer et al. 2018), not taken from lossbridge.
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


_RNG = np.random.default_rng(5)
_A = _RNG.normal(size=(8, 3))
_Y = {"x": _RNG.normal(size=(8,)), "w": _RNG.normal(size=(8, 2))}
_START = {"x": _RNG.normal(size=(3,)), "w": _RNG.normal(size=(3, 2))}


def _grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: _A.T @ (_A @ v - _Y[k]) / 8 + 0.3 * np.cos(3 * v) for k, v in p.items()}


def _textbook_run(rule: Rule, lr_at: Callable[[int], float] | None = None) -> dict[str, np.ndarray]:
    return textbook_run(rule, _START, _grad, STEPS, lr_at=lr_at)


def _lossbridge_run(opt: Any, lr_at: Callable[[int], float] | None = None) -> dict[str, np.ndarray]:
    return lossbridge_run(opt, _START, _grad, STEPS, lr_at=lr_at)


def _assert_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert_close(actual, expected, RTOL)


def _decay(x: np.ndarray, g: np.ndarray, lr: float, wd: float, decoupled: bool) -> tuple[np.ndarray, np.ndarray]:
    return (x * (1 - lr * wd), g) if decoupled else (x, g + wd * x)


# -- textbook rules -----------------------------------------------------------------------------------
def adamax_rule(
    lr: float = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    keras_eps: bool = False,
    wd: float = 0.0,
    decoupled: bool = False,
) -> Rule:
    """Kingma & Ba (2015), Algorithm 2; eps inside the max (PyTorch/Optax) or added to u (Keras)."""

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        x, g = _decay(x, g, eta, wd, decoupled)
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        if keras_eps:
            s["u"] = np.maximum(b2 * s.get("u", 0.0), np.abs(g))
            return x - eta / (1 - b1**t) * s["m"] / (s["u"] + eps)
        s["u"] = np.maximum(b2 * s.get("u", 0.0), np.abs(g) + eps)
        return x - eta / (1 - b1**t) * s["m"] / s["u"]

    return rule


def nadam_rule(
    lr: float = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    psi: float | None = 4e-3,
    wd: float = 0.0,
    decoupled: bool = False,
) -> Rule:
    """Dozat (2016), Algorithm 2 with mu_t = b1 (1 - 0.5 * 0.96^(t psi)); psi=None: mu_t = b1."""

    def mu(t: int) -> float:
        return b1 if psi is None else b1 * (1 - 0.5 * 0.96 ** (t * psi))

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        x, g = _decay(x, g, eta, wd, decoupled)
        prod = float(np.prod([mu(i) for i in range(1, t + 1)]))
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat = mu(t + 1) * s["m"] / (1 - prod * mu(t + 1)) + (1 - mu(t)) * g / (1 - prod)
        return x - eta * m_hat / (np.sqrt(s["v"] / (1 - b2**t)) + eps)

    return rule


def radam_rule(
    lr: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    torch_eps: bool = False,
    threshold: float = 5.0,
    inclusive: bool = False,
    wd: float = 0.0,
    decoupled: bool = False,
) -> Rule:
    """Liu et al. (2020), Algorithm 2, with the framework's threshold and eps placement."""
    rho_inf = 2 / (1 - b2) - 1

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        x, g = _decay(x, g, eta, wd, decoupled)
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat = s["m"] / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if not (rho >= threshold if inclusive else rho > threshold):
            return x - eta * m_hat
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        if torch_eps:
            adaptive = np.sqrt(1 - b2**t) / (np.sqrt(s["v"]) + eps)
        else:
            adaptive = 1 / (np.sqrt(s["v"] / (1 - b2**t)) + eps)
        return x - eta * r * m_hat * adaptive

    return rule


def adabelief_rule(
    lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16, eps_root: float = 1e-16
) -> Rule:
    """Zhuang et al. (2020), Algorithm 2 (eps_root added to s_t each step, as Optax does)."""

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["s"] = b2 * s.get("s", 0.0) + (1 - b2) * (g - s["m"]) ** 2 + eps_root
        return x - eta * (s["m"] / (1 - b1**t)) / (np.sqrt(s["s"] / (1 - b2**t)) + eps)

    return rule


def yogi_rule(lr: float = 1e-2, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-3, init: float = 1e-6) -> Rule:
    """Zaheer et al. (2018), Algorithm 2, with Optax's initial accumulators and bias corrections."""

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        s["m"] = b1 * s.get("m", init) + (1 - b1) * g
        v = s.get("v", init)
        s["v"] = v - (1 - b2) * np.sign(v - g * g) * g * g
        return x - eta * (s["m"] / (1 - b1**t)) / (np.sqrt(s["v"] / (1 - b2**t)) + eps)

    return rule


def adan_rule(lr: float = 1e-3, b: tuple[float, float, float] = (0.98, 0.92, 0.99), wd: float = 0.0) -> Rule:
    """Xie et al. (2022), Algorithm 1 in Optax's form (decays as 1 - beta, eps_root 1e-8, lr-scaled decay)."""
    b1, b2, b3 = b

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        d = g - s["g"] if t > 1 else np.zeros_like(g)
        s["g"] = g
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * d
        s["n"] = b3 * s.get("n", 0.0) + (1 - b3) * (g + (1 - b2) * d) ** 2
        num = s["m"] / (1 - b1**t) + (1 - b2) * s["v"] / (1 - b2**t)
        return x - eta * (num / (np.sqrt(s["n"] / (1 - b3**t) + 1e-8) + 1e-8) + wd * x)

    return rule


CASES: list[tuple[str, dict[str, Any], Rule]] = [
    ("adamax", {}, adamax_rule()),
    ("adamax", {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-3}, adamax_rule(0.01, 0.8, 0.99, 1e-3)),
    ("adamax", {"eps_placement": "denominator", "eps": 1e-3}, adamax_rule(eps=1e-3, keras_eps=True)),
    ("adamax", {"weight_decay": 0.1}, adamax_rule(wd=0.1)),
    ("adamax", {"weight_decay": 0.1, "decoupled_weight_decay": True}, adamax_rule(wd=0.1, decoupled=True)),
    ("nadam", {}, nadam_rule()),
    ("nadam", {"momentum_decay": 1.0, "lr": 0.01}, nadam_rule(0.01, psi=1.0)),
    ("nadam", {"momentum_schedule": "constant", "beta_1": 0.8}, nadam_rule(b1=0.8, psi=None)),
    ("nadam", {"weight_decay": 0.1, "eps": 1e-3}, nadam_rule(eps=1e-3, wd=0.1)),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True}, nadam_rule(wd=0.1, decoupled=True)),
    ("radam", {}, radam_rule()),
    ("radam", {"eps_placement": "uncorrected", "eps": 1e-3}, radam_rule(eps=1e-3, torch_eps=True)),
    ("radam", {"threshold": 6.0, "beta_2": 0.99, "lr": 0.01}, radam_rule(0.01, b2=0.99, threshold=6.0)),
    ("radam", {"weight_decay": 0.1}, radam_rule(wd=0.1)),
    ("radam", {"weight_decay": 0.1, "decoupled_weight_decay": True}, radam_rule(wd=0.1, decoupled=True)),
    ("adabelief", {}, adabelief_rule()),
    (
        "adabelief",
        {"lr": 0.01, "beta_1": 0.8, "eps": 1e-8, "eps_root": 0.0},
        adabelief_rule(0.01, 0.8, eps=1e-8, eps_root=0.0),
    ),
    ("adan", {}, adan_rule()),
    ("adan", {"beta_1": 0.9, "beta_3": 0.95, "weight_decay": 0.1}, adan_rule(b=(0.9, 0.92, 0.95), wd=0.1)),
    ("yogi", {}, yogi_rule()),
    ("yogi", {"beta_2": 0.99, "initial_accumulator": 0.0, "eps": 1e-6}, yogi_rule(b2=0.99, init=0.0, eps=1e-6)),
]


def _id(case: tuple[str, dict[str, Any], Rule]) -> str:
    return case[0] + "-" + ("-".join(f"{k}={v}" for k, v in case[1].items()) or "default")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_textbook_over_100_steps(case: tuple[str, dict[str, Any], Rule]) -> None:
    name, params, rule = case
    _assert_close(_lossbridge_run(lossbridge.get(name, **params)), _textbook_run(rule))


@pytest.mark.parametrize(
    ("name", "rule"),
    [("adamax", adamax_rule(0.02)), ("nadam", nadam_rule(0.02)), ("radam", radam_rule(0.02))],
)
def test_lr_change_mid_run(name: str, rule: Rule) -> None:
    def lr_at(t: int) -> float:
        return 0.02 if t <= 50 else 0.002

    _assert_close(_lossbridge_run(lossbridge.get(name), lr_at), _textbook_run(rule, lr_at))


def test_radam_threshold_tie_is_strict_unless_inclusive() -> None:
    """At rho_t == threshold exactly, torch (strict) takes the momentum step and Optax the adaptive one."""
    b2, t_tie = 0.999, 6
    rho_inf = 2 / (1 - b2) - 1
    threshold = rho_inf - 2 * t_tie * b2**t_tie / (1 - b2**t_tie)  # rho_6, about 5.0
    grads = [np.array([0.5, -1.0]) * (1 + 0.1 * t) for t in range(t_tie)]
    results = []
    for inclusive in (False, True):
        opt = lossbridge.get("radam", lr=0.1, threshold=threshold, threshold_inclusive=inclusive)
        params = [np.zeros(2)]
        x, s = np.zeros(2), {}
        rule = radam_rule(0.1, threshold=threshold, inclusive=inclusive)
        for t, g in enumerate(grads, start=1):
            opt.step(params, [g])
            x = rule(x, g, s, t)
        np.testing.assert_allclose(params[0], x, rtol=1e-12)
        results.append(x)
    assert np.max(np.abs(results[0] - results[1])) > 1e-6  # the tie really decides the last step


def test_nadam_constant_schedule_has_no_product_slot() -> None:
    dozat = lossbridge.get("nadam").init([np.zeros(2)]).slots[0]
    constant = lossbridge.get("nadam", momentum_schedule="constant").init([np.zeros(2)]).slots[0]
    assert set(dozat) == {"m", "v", "mu_product"} and dozat["mu_product"].shape == ()
    assert set(constant) == {"m", "v"}


def test_adamax_first_step_is_bounded_by_lr() -> None:
    opt, params = lossbridge.get("adamax", lr=0.1, eps=0.0), [np.zeros(3)]
    opt.step(params, [np.array([1e-3, -5.0, 7.0])])
    np.testing.assert_allclose(params[0], [-0.1, 0.1, -0.1], rtol=1e-12)


def test_rounding_parameters_round_through_float32() -> None:
    """bias_correction_dtype / factor_dtype / product_dtype use float32-rounded betas (Keras, torch)."""
    b1 = 0.9
    b1_32 = float(np.float32(b1))
    opt, params = lossbridge.get("adamax", lr=0.1, bias_correction_dtype="float32"), [np.zeros(1)]
    opt.step(params, [np.array([1.0])])
    np.testing.assert_allclose(params[0], [-0.1 * (1 - b1) / (1 - b1_32) / (1 + 1e-8)], rtol=1e-14)


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("adamax", {"eps_placement": "inside"}, r"'eps_placement' expects one of 'max', 'denominator'"),
        ("nadam", {"momentum_schedule": "cosine"}, r"'momentum_schedule' expects one of 'dozat', 'constant'"),
        ("nadam", {"momentum_decay": -1.0}, r"'momentum_decay' expects float in \[0, inf\)"),
        ("nadam", {"product_dtype": "float16"}, r"'product_dtype' expects one of 'float32' or None"),
        ("radam", {"threshold": 3.0}, r"'threshold' expects float in \[4, inf\)"),
        ("radam", {"beta_2": 1.0}, r"'beta_2' expects float in \[0, 1\)"),
        ("adamax", {"lr": -1.0}, r"'lr' expects float in \[0, inf\)"),
    ],
)
def test_invalid_values_name_parameter_and_range(name: str, params: dict[str, Any], expected: str) -> None:
    with pytest.raises(ParameterError, match=expected):
        lossbridge.get(name, **params)
