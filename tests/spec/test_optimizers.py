"""Optimizer specs against float64 NumPy textbook implementations written here, 100 steps each.

The problem is least squares: ``0.5 * ||A x - b||^2 / n`` with ``A`` (8 x 3), plus a matrix-shaped
parameter ``W`` (3 x 2) fitting ``A W - B``. Both runs compute their own gradients from their own
iterates, through ``lossbridge.get(name)`` on the NumPy backend (``step`` on lists and dicts, and
the functional ``init``/``update``).
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
    rng = np.random.default_rng(42)
    a = rng.normal(size=(8, 3))
    b = rng.normal(size=(8,))
    big_b = rng.normal(size=(8, 2))
    start = {"x": rng.normal(size=(3,)), "w": rng.normal(size=(3, 2))}

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"x": a.T @ (a @ p["x"] - b) / 8, "w": a.T @ (a @ p["w"] - big_b) / 8}

    return start, grad


def _textbook_run(rule: Rule, lr_at: Callable[[int], float] | None = None) -> dict[str, np.ndarray]:
    return textbook_run(rule, *_problem(), STEPS, lr_at=lr_at)


def _lossbridge_run(opt: Any, lr_at: Callable[[int], float] | None = None) -> dict[str, np.ndarray]:
    return lossbridge_run(opt, *_problem(), STEPS, lr_at=lr_at)


def _assert_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert_close(actual, expected, RTOL)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


# -- textbook rules (state dicts start empty; t is 1-based) -------------------------------------------
def sgd_rule(
    lr: float = 0.01,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    lr_in_momentum: bool = False,
) -> Rule:
    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        eta = s.get("lr", lr)
        if decoupled:
            x = x - eta * weight_decay * x
        else:
            g = g + weight_decay * x
        if lr_in_momentum:  # Sutskever et al. / Keras: velocity holds lr-scaled steps
            v = momentum * s.get("v", 0.0) - eta * g
            s["v"] = v
            return x + (momentum * v - eta * g if nesterov else v)
        b = g if t == 1 else momentum * s["b"] + (1 - dampening) * g
        s["b"] = b
        return x - eta * (g + momentum * b if nesterov else b)

    return rule


def adam_rule(
    lr: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    amsgrad: str | None = None,
    eps_hat: bool = False,
    round_betas: bool = False,
) -> Rule:
    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        if decoupled:
            x = x * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * x
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        pb1, pb2 = (float(np.float32(b1)), float(np.float32(b2))) if round_betas else (b1, b2)
        c1, c2 = 1 - pb1**t, 1 - pb2**t
        v = s["v"]
        if amsgrad == "raw":
            s["vmax"] = v = np.maximum(s.get("vmax", 0.0), s["v"])
        elif amsgrad == "corrected":
            s["vmax"] = np.maximum(s.get("vmax", 0.0), s["v"] / c2)
            v = s["vmax"] * c2
        if eps_hat:  # Kingma & Ba, end of section 2
            return x - lr * np.sqrt(c2) / c1 * s["m"] / (np.sqrt(v + eps_root) + eps)
        return x - lr * (s["m"] / c1) / (np.sqrt(v / c2 + eps_root) + eps)

    return rule


def lamb_rule(
    lr: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> Rule:
    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        r = (s["m"] / (1 - b1**t)) / (np.sqrt(s["v"] / (1 - b2**t)) + eps)
        if decoupled:  # shrink first; the shrunk weights enter the trust ratio
            x = x - lr * weight_decay * x
        else:
            r = r + weight_decay * x
        wn, rn = np.linalg.norm(x), np.linalg.norm(r)
        ratio = wn / rn if wn > 0 and rn > 0 else 1.0
        return x - lr * ratio * r

    return rule


def adafactor_rule(
    lr: float = 1e-2,
    decay: float = -0.8,
    eps1: float = 1e-30,
    eps2: float = 1e-3,
    d: float = 1.0,
    relative_step: bool = True,
    scale_parameter: bool = True,
    clamp: bool = False,
    weight_decay: float = 0.0,
    wd_mode: str = "lr_scaled",
    min_dim: int = 0,
    float32_decay: bool = False,
) -> Rule:
    """Shazeer & Stern (2018), Algorithms 4 (matrices, with sums) and 5 (vectors)."""

    def rule(x: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        beta = float(1 - np.float32(t) ** np.float32(decay)) if float32_decay else 1 - t**decay
        rho = min(lr, 1 / np.sqrt(t)) if relative_step else lr
        shrink = (1.0 if wd_mode == "unscaled" else lr) * weight_decay * x
        alpha = (
            max(eps2, _rms(x - shrink if wd_mode == "lr_scaled_first" else x)) * rho
            if scale_parameter
            else rho
        )
        g2 = g * g if clamp else g * g + eps1
        if x.ndim == 2 and min(x.shape) >= min_dim:
            n, m = x.shape
            s["R"] = beta * s.get("R", 0.0) + (1 - beta) * g2 @ np.ones(m)
            s["C"] = beta * s.get("C", 0.0) + (1 - beta) * np.ones(n) @ g2
            total = s["R"].sum() if not clamp else max(s["R"].sum(), eps1 * n * m)
            v = np.outer(s["R"], s["C"]) / total
        else:
            s["V"] = v = beta * s.get("V", 0.0) + (1 - beta) * g2
        if clamp:
            v = np.maximum(v, eps1**2)
        u = g / np.sqrt(v)
        u = u / max(1.0, _rms(u) / d)
        return x - alpha * u - shrink

    return rule


# -- cases: (name, lossbridge params, textbook rule) ----------------------------------------------------
CASES: list[tuple[str, dict[str, Any], Rule]] = [
    ("sgd", {}, sgd_rule()),
    ("sgd", {"momentum": 0.9}, sgd_rule(momentum=0.9)),
    (
        "sgd",
        {"momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1},
        sgd_rule(0.01, 0.9, 0.3, weight_decay=0.1),
    ),
    ("sgd", {"momentum": 0.9, "nesterov": True}, sgd_rule(momentum=0.9, nesterov=True)),
    ("sgd", {"momentum": 0.9, "lr_in_momentum": True}, sgd_rule(momentum=0.9, lr_in_momentum=True)),
    (
        "sgd",
        {"momentum": 0.9, "nesterov": True, "lr_in_momentum": True},
        sgd_rule(momentum=0.9, nesterov=True, lr_in_momentum=True),
    ),
    (
        "sgd",
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        sgd_rule(weight_decay=0.1, decoupled=True),
    ),
    ("adam", {}, adam_rule()),
    ("adam", {"lr": 0.05, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-6}, adam_rule(0.05, 0.8, 0.99, 1e-6)),
    ("adam", {"eps_root": 1e-6}, adam_rule(eps_root=1e-6)),
    ("adam", {"eps_placement": "uncorrected", "eps": 1e-3}, adam_rule(eps=1e-3, eps_hat=True)),
    ("adam", {"amsgrad": True}, adam_rule(amsgrad="raw")),
    ("adam", {"amsgrad": True, "amsgrad_max": "corrected"}, adam_rule(amsgrad="corrected")),
    (
        "adam",
        {"amsgrad": True, "amsgrad_max": "corrected", "eps_placement": "uncorrected"},
        adam_rule(amsgrad="corrected", eps_hat=True),
    ),
    ("adam", {"weight_decay": 0.1}, adam_rule(weight_decay=0.1)),
    (
        "adam",
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        adam_rule(weight_decay=0.1, decoupled=True),
    ),
    ("adam", {"bias_correction_dtype": "float32", "beta_2": 0.997}, adam_rule(b2=0.997, round_betas=True)),
    ("adamw", {}, adam_rule(weight_decay=1e-2, decoupled=True)),
    (
        "adamw",
        {"weight_decay": 0.2, "amsgrad": True, "lr": 0.01},
        adam_rule(0.01, weight_decay=0.2, decoupled=True, amsgrad="raw"),
    ),
    ("lamb", {}, lamb_rule()),
    ("lamb", {"weight_decay": 0.1, "lr": 0.01}, lamb_rule(0.01, weight_decay=0.1)),
    (
        "lamb",
        {"weight_decay": 0.1, "lr": 0.01, "decoupled_weight_decay": True},
        lamb_rule(0.01, weight_decay=0.1, decoupled=True),
    ),
    ("adafactor", {}, adafactor_rule()),
    ("adafactor", {"lr": 0.3, "clip_threshold": 0.5}, adafactor_rule(0.3, d=0.5)),
    (
        "adafactor",
        {"relative_step": False, "scale_parameter": False, "lr": 0.02},
        adafactor_rule(0.02, relative_step=False, scale_parameter=False),
    ),
    (
        "adafactor",
        {"eps1_placement": "clamp", "eps1": None, "weight_decay": 0.1},
        adafactor_rule(eps1=float(np.finfo(np.float64).eps), clamp=True, weight_decay=0.1),
    ),
    ("adafactor", {"beta2_decay": -0.5, "eps2": 0.5}, adafactor_rule(decay=-0.5, eps2=0.5)),
    ("adafactor", {"min_dim_size_to_factor": 3}, adafactor_rule(min_dim=3)),
    (
        "adafactor",
        {"decay_dtype": "float32", "weight_decay": 0.1, "weight_decay_mode": "unscaled"},
        adafactor_rule(float32_decay=True, weight_decay=0.1, wd_mode="unscaled"),
    ),
    (
        "adafactor",
        {"weight_decay": 0.5, "lr": 0.3, "weight_decay_mode": "lr_scaled_first"},
        adafactor_rule(0.3, weight_decay=0.5, wd_mode="lr_scaled_first"),
    ),
]


def _id(case: tuple[str, dict[str, Any], Rule]) -> str:
    return case[0] + "-" + ("-".join(f"{k}={v}" for k, v in case[1].items()) or "default")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_textbook_over_100_steps(case: tuple[str, dict[str, Any], Rule]) -> None:
    name, params, rule = case
    _assert_close(_lossbridge_run(lossbridge.get(name, **params)), _textbook_run(rule))


@pytest.mark.parametrize("lr_in_momentum", [False, True])
def test_lr_change_mid_run_follows_the_momentum_style(lr_in_momentum: bool) -> None:
    def lr_at(t: int) -> float:
        return 0.05 if t <= 50 else 0.005

    opt = lossbridge.get("sgd", momentum=0.9, lr_in_momentum=lr_in_momentum)
    got = _lossbridge_run(opt, lr_at)
    _assert_close(got, _textbook_run(sgd_rule(momentum=0.9, lr_in_momentum=lr_in_momentum), lr_at))
    other = _textbook_run(sgd_rule(momentum=0.9, lr_in_momentum=not lr_in_momentum), lr_at)
    assert np.max(np.abs(got["w"] - other["w"])) > 1e-6  # the two styles really differ here


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "lamb", "adafactor"])
def test_step_on_lists_equals_functional_update(name: str) -> None:
    start, grad = _problem()
    as_list = [start["x"].copy(), start["w"].copy()]
    stepper = lossbridge.get(name)
    functional = lossbridge.get(name)
    params = {k: v.copy() for k, v in start.items()}
    state = functional.init(params)
    for _ in range(STEPS):
        g = grad({"x": as_list[0], "w": as_list[1]})
        stepper.step(as_list, [g["x"], g["w"]])
        updates, state = functional.update(grad(params), state, params)
        assert set(updates) == {"x", "w"}
        params = {k: params[k] + updates[k] for k in params}
    assert state.count == STEPS
    _assert_close({"x": as_list[0], "w": as_list[1]}, params)


def test_adafactor_keeps_factored_state_for_matrices() -> None:
    opt = lossbridge.get("adafactor")
    state = opt.init({"x": np.zeros(3), "w": np.zeros((3, 2)), "t": np.zeros((2, 4, 5))})
    x_slots, w_slots, t_slots = state.slots
    assert x_slots["v"].shape == (3,) and x_slots["row"].shape == ()
    assert w_slots["row"].shape == (3,) and w_slots["col"].shape == (2,) and w_slots["v"].shape == ()
    assert t_slots["row"].shape == (2, 4) and t_slots["col"].shape == (2, 5)


def test_adafactor_largest_two_axes_and_minimum_size() -> None:
    opt = lossbridge.get("adafactor", factored_axes="largest_two", min_dim_size_to_factor=5)
    big, small = opt.init([np.zeros((7, 2, 6)), np.zeros((4, 9))]).slots
    assert big["row"].shape == (2, 6) and big["col"].shape == (7, 2)  # axes 0 (7) and 2 (6)
    assert small["v"].shape == (4, 9) and small["row"].shape == ()  # 4 < 5: not factored


def test_amsgrad_slot_only_when_enabled() -> None:
    assert set(lossbridge.get("adam").init([np.zeros(2)]).slots[0]) == {"m", "v"}
    assert set(lossbridge.get("adam", amsgrad=True).init([np.zeros(2)]).slots[0]) == {"m", "v", "v_max"}


def test_adamw_is_adam_with_decoupled_decay() -> None:
    spec, adam = lossbridge.spec("adamw"), lossbridge.spec("adam")
    assert spec.init is adam.init and spec.update.func is adam.update
    assert spec.param("weight_decay").default == 1e-2
    assert {n: spec.conventions[n].params.get("weight_decay", 1e-2) for n in spec.conventions} == {
        "torch": 1e-2,
        "keras": 0.004,
        "optax": 1e-4,
    }


def test_lamb_trust_ratio_is_one_for_zero_parameters() -> None:
    opt = lossbridge.get("lamb", lr=0.1)
    params = [np.zeros(3)]
    g = np.array([1.0, -2.0, 0.5])
    opt.step(params, [g])
    direction = g / (np.abs(g) + 1e-6)  # at t = 1, m_hat = g and sqrt(v_hat) = |g|
    np.testing.assert_allclose(params[0], -0.1 * direction, rtol=1e-12)


def test_lamb_trust_ratio_is_one_for_zero_gradient() -> None:
    opt = lossbridge.get("lamb", lr=0.1)
    params = [np.array([1.0, 2.0])]
    opt.step(params, [np.zeros(2)])
    np.testing.assert_array_equal(params[0], [1.0, 2.0])


# -- validation -----------------------------------------------------------------------------------------
def test_framework_keyword_names_are_accepted() -> None:
    torch_style = lossbridge.get("adam", betas=(0.8, 0.9)).bound.hyper
    optax_style = lossbridge.get("adam", learning_rate=0.1, b1=0.8).bound.hyper
    assert (torch_style["beta_1"], torch_style["beta_2"]) == (0.8, 0.9)
    assert (optax_style["lr"], optax_style["beta_1"]) == (0.1, 0.8)
    with pytest.raises(ParameterError, match="give either 'lr' or 'learning_rate', not both"):
        lossbridge.get("adam", lr=0.1, learning_rate=0.2)


def test_unknown_parameter_lists_valid_ones_with_ranges() -> None:
    with pytest.raises(ParameterError) as info:
        lossbridge.get("adam", betaz=(0.9, 0.99))
    message = str(info.value)
    assert "adam: unknown parameter(s) 'betaz'" in message
    assert "beta_1 (float in [0, 1))" in message
    assert "lr (float in [0, inf))" in message
    assert "eps_placement (one of 'corrected', 'uncorrected')" in message


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "lamb", "adafactor"])
def test_negative_lr_rejected_with_range(name: str) -> None:
    with pytest.raises(ParameterError, match=rf"{name}: parameter 'lr' expects float in \[0, inf\), got -1"):
        lossbridge.get(name, lr=-1)


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("adam", {"beta_2": 1.0}, r"parameter 'beta_2' expects float in \[0, 1\), got 1.0"),
        (
            "adam",
            {"eps_placement": "hat"},
            r"'eps_placement' expects one of 'corrected', 'uncorrected', got 'hat'",
        ),
        ("adam", {"amsgrad": 1}, r"parameter 'amsgrad' expects bool, got 1"),
        ("adafactor", {"clip_threshold": 0.0}, r"'clip_threshold' expects float in \(0, inf\), got 0.0"),
        ("adafactor", {"beta2_decay": 0.5}, r"'beta2_decay' expects float in \(-inf, 0\), got 0.5"),
    ],
)
def test_invalid_values_name_parameter_and_range(name: str, params: dict[str, Any], expected: str) -> None:
    with pytest.raises(ParameterError, match=expected):
        lossbridge.get(name, **params)


def test_convention_rounding_unknown_parameter_is_a_malformed_spec() -> None:
    from dataclasses import replace

    from lossbridge.conventions import Convention
    from lossbridge.errors import SpecError

    spec = lossbridge.spec("adam")
    bad = replace(
        spec, conventions={"keras": Convention("keras", "x", hyper_dtype="float32", rounded=("lrr",))}
    )
    with pytest.raises(SpecError, match=r"convention 'keras' rounds unknown parameter\(s\) \['lrr'\]"):
        bad.validate_declaration(plugin="demo")


def test_keras_conventions_round_only_what_keras_keeps_in_float32() -> None:
    from lossbridge.bound import bind

    bound = bind(lossbridge.spec("adam"), convention="keras", params={"lr": 0.1, "eps": 0.1})
    values = bound._rounded(bound.hyper)
    assert values["lr"] == float(np.float32(0.1)) != 0.1  # a float32 variable in Keras
    assert values["eps"] == 0.1 and values["beta_2"] == 0.999  # Python floats, used exactly


@pytest.mark.parametrize("name", ["sgd", "lars"])
def test_no_momentum_buffer_at_momentum_zero_as_the_frameworks_keep(name: str) -> None:
    """torch (momentum_buffer None), Keras and Optax keep no buffer at momentum 0: neither do we; the step
    is then the plain one, also when a later call passes momentum as an array (a traced hyperparameter)."""
    spec = lossbridge.spec(name)
    hyper = {p.name: p.default for p in spec.params} | {"momentum": 0.0, "lr": 0.1}
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    assert spec.init(p, xp=np, **hyper) == {}
    assert set(spec.init(p, xp=np, **(hyper | {"momentum": 0.9}))) == {"momentum"}
    plain, _ = spec.update(p, g, {}, step=np.asarray(1.0), xp=np, **hyper)
    traced, state = spec.update(p, g, {}, step=np.asarray(1.0), xp=np, **(hyper | {"momentum": np.asarray(0.0)}))
    np.testing.assert_array_equal(traced, plain)
    assert state == {}
