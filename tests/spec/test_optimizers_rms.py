"""RMSprop, Adagrad and Adadelta against float64 NumPy textbook rules written here, 100 steps each.

The problem is least squares plus a non-convex term, ``0.5 * mean((A p - b)^2) + 0.1 * sum(cos 2p)``,
for a vector and a matrix parameter. Both runs compute their own gradients from their own iterates;
lossbridge runs on the NumPy backend (``step`` on lists and dicts, and the functional ``init``/``update``).
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



# -- the problem ------------------------------------------------------------------------------------
def _problem() -> tuple[dict[str, np.ndarray], Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(8, 3))
    b, big_b = rng.normal(size=(8,)), rng.normal(size=(8, 2))
    start = {"x": rng.normal(size=(3,)), "w": rng.normal(size=(3, 2))}

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "x": a.T @ (a @ p["x"] - b) / 8 - 0.2 * np.sin(2 * p["x"]),
            "w": a.T @ (a @ p["w"] - big_b) / 8 - 0.2 * np.sin(2 * p["w"]),
        }

    return start, grad


def _textbook_run(rule: Rule, lr_at: Callable[[int], float] | None = None) -> dict[str, np.ndarray]:
    return textbook_run(rule, *_problem(), STEPS, lr_at=lr_at)


def _lossbridge_run(opt: Any, lr_at: Callable[[int], float] | None = None) -> dict[str, np.ndarray]:
    return lossbridge_run(opt, *_problem(), STEPS, lr_at=lr_at)


def _assert_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert_close(actual, expected, RTOL)


# -- textbook rules (state dicts start empty; t is 1-based) -------------------------------------------
def rmsprop_rule(
    lr: float = 1e-3,
    rho: float = 0.9,
    eps: float = 1e-8,
    in_sqrt: bool = False,
    centered: bool = False,
    bias_correction: bool = False,
    momentum: float = 0.0,
    nesterov: bool = False,
    lr_in_momentum: bool = False,
    initial: float = 0.0,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> Rule:
    """Tieleman & Hinton (2012); Graves (2013) eq. 38-41 for the centered form."""

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        if decoupled:
            x = x - eta * weight_decay * x
        else:
            g = g + weight_decay * x
        s["v"] = rho * s.get("v", initial) + (1 - rho) * g**2
        s["m"] = rho * s.get("m", 0.0) + (1 - rho) * g
        c = 1 - rho**t if bias_correction else 1.0
        var = s["v"] / c - (s["m"] / c) ** 2 if centered else s["v"] / c
        d = g / (np.sqrt(var + eps) if in_sqrt else np.sqrt(var) + eps)
        if momentum == 0:
            return x - eta * d
        if lr_in_momentum:  # the buffer holds lr-scaled steps
            s["u"] = momentum * s.get("u", 0.0) - eta * d
            return x + (momentum * s["u"] - eta * d if nesterov else s["u"])
        s["b"] = momentum * s.get("b", 0.0) + d
        return x - eta * (d + momentum * s["b"] if nesterov else s["b"])

    return rule


def adagrad_rule(
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    eps: float = 1e-10,
    in_sqrt: bool = False,
    initial: float = 0.0,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> Rule:
    """Duchi, Hazan & Singer (2011), diagonal form."""

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        if decoupled:
            x = x - eta * weight_decay * x
        else:
            g = g + weight_decay * x
        s["G"] = s.get("G", initial) + g**2
        rate = eta / (1 + (t - 1) * lr_decay)
        return x - rate * g / (np.sqrt(s["G"] + eps) if in_sqrt else np.sqrt(s["G"]) + eps)

    return rule


def adadelta_rule(
    lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6, weight_decay: float = 0.0, decoupled: bool = False
) -> Rule:
    """Zeiler (2012), Algorithm 1, with a learning rate on the final step."""

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        if decoupled:
            x = x - eta * weight_decay * x
        else:
            g = g + weight_decay * x
        s["Eg"] = rho * s.get("Eg", 0.0) + (1 - rho) * g**2
        dx = np.sqrt(s.get("Ex", 0.0) + eps) / np.sqrt(s["Eg"] + eps) * g
        s["Ex"] = rho * s.get("Ex", 0.0) + (1 - rho) * dx**2
        return x - eta * dx

    return rule


CASES: list[tuple[str, dict[str, Any], Rule]] = [
    ("rmsprop", {}, rmsprop_rule()),
    ("rmsprop", {"lr": 1e-2, "rho": 0.99, "eps": 1e-6, "eps_in_sqrt": True}, rmsprop_rule(1e-2, 0.99, 1e-6, True)),
    ("rmsprop", {"centered": True, "eps": 1e-4}, rmsprop_rule(eps=1e-4, centered=True)),
    (
        "rmsprop",
        {"centered": True, "bias_correction": True, "eps": 1e-4, "eps_in_sqrt": True},
        rmsprop_rule(eps=1e-4, in_sqrt=True, centered=True, bias_correction=True),
    ),
    ("rmsprop", {"momentum": 0.9, "weight_decay": 0.1}, rmsprop_rule(momentum=0.9, weight_decay=0.1)),
    (
        "rmsprop",
        {"momentum": 0.8, "nesterov": True, "lr_in_momentum": True, "initial_accumulator_value": 0.1},
        rmsprop_rule(momentum=0.8, nesterov=True, lr_in_momentum=True, initial=0.1),
    ),
    (
        "rmsprop",
        {"momentum": 0.5, "nesterov": True, "weight_decay": 0.2, "decoupled_weight_decay": True},
        rmsprop_rule(momentum=0.5, nesterov=True, weight_decay=0.2, decoupled=True),
    ),
    ("adagrad", {}, adagrad_rule()),
    (
        "adagrad",
        {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.3},
        adagrad_rule(0.1, 0.05, initial=0.3, weight_decay=0.1),
    ),
    (
        "adagrad",
        {
            "eps": 1e-7,
            "eps_in_sqrt": True,
            "initial_accumulator_value": 0.1,
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
        },
        adagrad_rule(eps=1e-7, in_sqrt=True, initial=0.1, weight_decay=0.1, decoupled=True),
    ),
    ("adadelta", {}, adadelta_rule()),
    ("adadelta", {"lr": 0.5, "rho": 0.9, "eps": 1e-4, "weight_decay": 0.1}, adadelta_rule(0.5, 0.9, 1e-4, 0.1)),
    (
        "adadelta",
        {"weight_decay": 0.3, "decoupled_weight_decay": True},
        adadelta_rule(weight_decay=0.3, decoupled=True),
    ),
]


def _id(case: tuple[str, dict[str, Any], Rule]) -> str:
    return case[0] + "-" + ("-".join(f"{k}={v}" for k, v in case[1].items()) or "default")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_textbook_over_100_steps(case: tuple[str, dict[str, Any], Rule]) -> None:
    name, params, rule = case
    _assert_close(_lossbridge_run(lossbridge.get(name, **params)), _textbook_run(rule))


@pytest.mark.parametrize("lr_in_momentum", [False, True])
def test_rmsprop_lr_change_follows_the_momentum_style(lr_in_momentum: bool) -> None:
    def lr_at(t: int) -> float:
        return 1e-2 if t <= 50 else 1e-3

    opt = lossbridge.get("rmsprop", momentum=0.9, lr_in_momentum=lr_in_momentum)
    got = _lossbridge_run(opt, lr_at)
    _assert_close(got, _textbook_run(rmsprop_rule(momentum=0.9, lr_in_momentum=lr_in_momentum), lr_at))
    other = _textbook_run(rmsprop_rule(momentum=0.9, lr_in_momentum=not lr_in_momentum), lr_at)
    assert np.max(np.abs(got["w"] - other["w"])) > 1e-6  # the two styles really differ here


@pytest.mark.parametrize("name", ["rmsprop", "adagrad", "adadelta"])
def test_lr_change_mid_run(name: str) -> None:
    def lr_at(t: int) -> float:
        return 0.02 if t <= 50 else 0.005

    rule = {"rmsprop": rmsprop_rule, "adagrad": adagrad_rule, "adadelta": adadelta_rule}[name]()
    _assert_close(_lossbridge_run(lossbridge.get(name), lr_at), _textbook_run(rule, lr_at))


@pytest.mark.parametrize("name", ["rmsprop", "adagrad", "adadelta"])
def test_step_on_lists_equals_functional_update(name: str) -> None:
    start, grad = _problem()
    as_list = [start["x"].copy(), start["w"].copy()]
    stepper, functional = lossbridge.get(name, lr=0.01), lossbridge.get(name, lr=0.01)
    params = {k: v.copy() for k, v in start.items()}
    state = functional.init(params)
    for _ in range(STEPS):
        g = grad({"x": as_list[0], "w": as_list[1]})
        stepper.step(as_list, [g["x"], g["w"]])
        updates, state = functional.update(grad(params), state, params)
        params = {k: params[k] + updates[k] for k in params}
    assert state.count == STEPS
    _assert_close({"x": as_list[0], "w": as_list[1]}, params)


# -- slots and edge cases ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "slots"),
    [
        ({}, {"square_avg"}),
        ({"momentum": None}, {"square_avg"}),
        ({"centered": True}, {"square_avg", "grad_avg"}),
        ({"momentum": 0.9, "centered": True}, {"square_avg", "grad_avg", "momentum"}),
    ],
)
def test_rmsprop_slots_only_when_needed(params: dict[str, Any], slots: set[str]) -> None:
    state = lossbridge.spec("rmsprop").init(np.zeros(3), xp=np, **lossbridge.get("rmsprop", **params).bound.hyper)
    assert set(state) == slots


def test_adagrad_initial_accumulator_rounding_is_float32_fill() -> None:
    spec = lossbridge.spec("adagrad")
    exact = spec.init(np.zeros(2), xp=np, initial_accumulator_value=0.1)["sum"]
    rounded = spec.init(np.zeros(2), xp=np, initial_accumulator_value=0.1, initial_accumulator_dtype="float32")["sum"]
    assert exact.dtype == rounded.dtype == np.float64
    assert exact[0] == 0.1 and rounded[0] == float(np.float32(0.1))


@pytest.mark.parametrize("in_sqrt", [False, True])
def test_adagrad_zero_sum_gives_zero_step_even_without_eps(in_sqrt: bool) -> None:
    opt, params = lossbridge.get("adagrad", lr=1.0, eps=0.0, eps_in_sqrt=in_sqrt), [np.array([1.0, 2.0])]
    with np.errstate(all="raise"):
        opt.step(params, [np.array([0.0, 4.0])])
    assert params[0].tolist() == [1.0, 1.0]


def test_adadelta_first_step_is_sqrt_eps_over_rms() -> None:
    opt, params = lossbridge.get("adadelta", rho=0.9, eps=1e-6), [np.array([0.0])]
    opt.step(params, [np.array([2.0])])
    assert params[0][0] == pytest.approx(-np.sqrt(1e-6) / np.sqrt(0.1 * 4 + 1e-6) * 2.0, rel=1e-15)


@pytest.mark.parametrize(
    ("name", "convention", "expected"),
    [
        ("rmsprop", "torch", {"lr": 1e-2, "rho": 0.99, "eps": 1e-8, "eps_in_sqrt": False}),
        ("rmsprop", "keras", {"lr": 1e-3, "rho": 0.9, "eps": 1e-7, "eps_in_sqrt": True, "lr_in_momentum": True}),
        ("rmsprop", "optax", {"rho": 0.9, "eps": 1e-8, "eps_in_sqrt": True, "lr_in_momentum": True}),
        ("rmsprop", "caffe", {"rho": 0.99, "eps": 1e-8, "eps_in_sqrt": False}),
        ("adagrad", "torch", {"lr": 1e-2, "eps": 1e-10, "initial_accumulator_value": 0.0, "eps_in_sqrt": False}),
        ("adagrad", "keras", {"lr": 1e-3, "eps": 1e-7, "initial_accumulator_value": 0.1, "eps_in_sqrt": True}),
        ("adagrad", "optax", {"eps": 1e-7, "initial_accumulator_value": 0.1, "eps_in_sqrt": True}),
        ("adagrad", "caffe", {"eps": 1e-8, "eps_in_sqrt": False}),
        ("adadelta", "torch", {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
        ("adadelta", "keras", {"lr": 1e-3, "rho": 0.95, "eps": 1e-7, "decoupled_weight_decay": True}),
        ("adadelta", "optax", {"rho": 0.9, "eps": 1e-6}),
        ("adadelta", "caffe", {"rho": 0.0, "eps": 1e-8}),
    ],
)
def test_convention_defaults(name: str, convention: str, expected: dict[str, Any]) -> None:
    hyper = lossbridge.get(name, convention=convention).bound.hyper
    assert {k: hyper[k] for k in expected} == expected


# -- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("rmsprop", {"rho": 1.5}, r"rmsprop: parameter 'rho' expects float in \[0, 1\], got 1.5"),
        ("rmsprop", {"momentum": -0.1}, r"parameter 'momentum' expects float in \[0, 1\] or None, got -0.1"),
        ("rmsprop", {"centered": 1}, r"parameter 'centered' expects bool, got 1"),
        ("rmsprop", {"gamma": 0.9}, r"rmsprop: unknown parameter\(s\) 'gamma'; valid: lr"),
        ("adagrad", {"lr_decay": -1.0}, r"adagrad: parameter 'lr_decay' expects float in \[0, inf\), got -1.0"),
        (
            "adagrad",
            {"initial_accumulator_dtype": "float16"},
            r"'initial_accumulator_dtype' expects one of 'float32' or None, got 'float16'",
        ),
        ("adadelta", {"eps": -1e-6}, r"adadelta: parameter 'eps' expects float in \[0, inf\), got -1e-06"),
        ("adadelta", {"lr": -1}, r"adadelta: parameter 'lr' expects float in \[0, inf\), got -1"),
    ],
)
def test_invalid_values_name_parameter_and_range(name: str, params: dict[str, Any], expected: str) -> None:
    with pytest.raises(ParameterError, match=expected):
        lossbridge.get(name, **params)
