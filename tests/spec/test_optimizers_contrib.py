"""ADOPT, AdEMAMix, simplified AdEMAMix and MADGRAD against float64 NumPy textbook rules written here.

Each rule is transcribed from its paper (cited at each function), independently of the spec, and run
for 100 steps of a least-squares problem plus a non-convex term; lossbridge runs on the NumPy backend.
ADOPT's first step (which only records g^2) and MADGRAD's float32 step weight (Optax's) are checked on
their own.
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
    rng = np.random.default_rng(13)
    start = {"x": rng.normal(size=(3,)), "w": rng.normal(size=(3, 2))}
    a = rng.normal(size=(8, 3))
    b = {"x": rng.normal(size=(8,)), "w": rng.normal(size=(8, 2))}
    return start, lambda p: {k: a.T @ (a @ p[k] - b[k]) / len(a) - 0.2 * np.sin(2 * p[k]) for k in p}


def _run(rule: Rule) -> list[dict[str, np.ndarray]]:
    """``STEPS`` iterates of ``rule(param, grad, state, t) -> new param`` (t 1-based), per tensor."""
    every: list[dict[str, np.ndarray]] = []
    textbook_run(rule, *_problem(), STEPS, every=every)
    return every


def _lossbridge(name: str, **hyper: Any) -> list[dict[str, np.ndarray]]:
    every: list[dict[str, np.ndarray]] = []
    lossbridge_run(lossbridge.get(name, **hyper), *_problem(), STEPS, every=every)
    return every


def _assert_close(actual: list[dict[str, np.ndarray]], expected: list[dict[str, np.ndarray]]) -> None:
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        assert_close(got, want, RTOL, label=f"step {t}, ")


# -- ADOPT: Taniguchi et al. (2024), with the clipped normalization (bound (t-1)^p) ------------------------
def _adopt(lr: float, b1: float, b2: float, eps: float, clip: float | None, nesterov: bool) -> Rule:
    def rule(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        if t == 1:  # v_0 = g_0^2 and m_0 = 0; no parameter update
            s["v"], s["m"] = g**2, np.zeros_like(g)
            return p.copy()
        u = g / np.maximum(np.sqrt(s["v"]), eps)
        if clip is not None:
            c = (t - 1) ** clip
            u = np.clip(u, -c, c)
        s["m"] = b1 * s["m"] + (1 - b1) * u
        s["v"] = b2 * s["v"] + (1 - b2) * g**2
        step = b1 * s["m"] + (1 - b1) * u if nesterov else s["m"]
        return p - lr * step

    return rule


ADOPT_CASES = [
    ({}, (1e-3, 0.9, 0.9999, 1e-6, 0.25, False)),
    ({"lr": 0.02, "beta_1": 0.8, "beta_2": 0.99, "eps": 1e-4}, (0.02, 0.8, 0.99, 1e-4, 0.25, False)),
    ({"lr": 0.02, "nesterov": True}, (0.02, 0.9, 0.9999, 1e-6, 0.25, True)),
    ({"lr": 0.02, "use_clipping": False}, (0.02, 0.9, 0.9999, 1e-6, None, False)),
    ({"lr": 0.02, "clip_exponent": 0.0}, (0.02, 0.9, 0.9999, 1e-6, 0.0, False)),  # a bound of 1: it binds here
]


@pytest.mark.parametrize(("hyper", "rule"), ADOPT_CASES, ids=[str(h) for h, _ in ADOPT_CASES])
def test_adopt_matches_textbook(hyper: dict[str, Any], rule: tuple[Any, ...]) -> None:
    _assert_close(_lossbridge("adopt", **hyper), _run(_adopt(*rule)))


def test_adopt_clipping_is_active_in_these_cases() -> None:
    """A bound of (t-1)^0 = 1 binds on this problem (the default (t-1)^0.25 does not: see the first-step test)."""
    clipped = _lossbridge("adopt", lr=0.02, clip_exponent=0.0)[-1]
    free = _lossbridge("adopt", lr=0.02, use_clipping=False)[-1]
    assert max(np.max(np.abs(clipped[k] - free[k])) for k in clipped) > 1e-6


def test_adopt_first_step_only_records_the_second_moment() -> None:
    opt = lossbridge.get("adopt", lr=0.1, nesterov=True)
    g = np.array([0.5, -2.0, 0.0])
    state = opt.init([np.ones(3)])
    updates, state = opt.update([g], state, [np.ones(3)])
    np.testing.assert_array_equal(updates[0], np.zeros(3))
    np.testing.assert_array_equal(state.slots[0]["v"], g**2)
    np.testing.assert_array_equal(state.slots[0]["m"], np.zeros(3))
    # second step: u = g / max(|g_1|, eps), clipped to [-1, 1]; m = 0.1 u; nesterov: 0.9 m + 0.1 u
    g2 = np.array([1.0, 1.0, 1.0])
    updates, _ = opt.update([g2], state, [np.ones(3)])
    u = np.clip(g2 / np.maximum(np.abs(g), 1e-6), -1.0, 1.0)
    np.testing.assert_allclose(updates[0], -0.1 * (0.9 * 0.1 * u + 0.1 * u), rtol=1e-15)


# -- AdEMAMix: Pagliardini et al. (2025), Algorithm 1 (no warm-up) ----------------------------------
def _ademamix(lr: float, b1: float, b2: float, b3: Any, alpha: Any, eps: float, wd: float) -> Rule:
    def rule(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        a = alpha(t - 1) if callable(alpha) else alpha  # schedules of the updates taken so far
        beta3 = b3(t - 1) if callable(b3) else b3
        s["m1"] = b1 * s.get("m1", 0.0) + (1 - b1) * g
        s["m2"] = beta3 * s.get("m2", 0.0) + (1 - beta3) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g**2
        m1_hat, v_hat = s["m1"] / (1 - b1**t), s["v"] / (1 - b2**t)
        return p - lr * ((m1_hat + a * s["m2"]) / (np.sqrt(v_hat) + eps) + wd * p)

    return rule


def test_ademamix_matches_textbook() -> None:
    _assert_close(_lossbridge("ademamix"), _run(_ademamix(1e-3, 0.9, 0.999, 0.9999, 5.0, 1e-8, 0.0)))
    hyper = {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99, "beta_3": 0.99, "alpha": 3.0, "eps": 1e-6, "weight_decay": 0.1}
    _assert_close(_lossbridge("ademamix", **hyper), _run(_ademamix(0.01, 0.8, 0.99, 0.99, 3.0, 1e-6, 0.1)))


def test_ademamix_alpha_and_beta_3_take_schedules() -> None:
    """The paper warms alpha and beta_3 up; any callable of the update count (here plain Python) works."""

    def alpha(count: int) -> float:
        return 5.0 * min(count, 50) / 50

    def beta_3(count: int) -> float:
        return 0.9 + 0.099 * min(count, 50) / 50

    expected = _run(_ademamix(0.01, 0.9, 0.999, beta_3, alpha, 1e-8, 0.0))
    _assert_close(_lossbridge("ademamix", lr=0.01, alpha=alpha, beta_3=beta_3), expected)


# -- simplified AdEMAMix: Morwani et al. (2025) -------------------------------------------------------
def _simplified(lr: float, b1: float, b2: float, alpha: float, eps: float, wd: float) -> Rule:
    def rule(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["m"] = b1 * s.get("m", 0.0) + g  # an undamped sum, not an average
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g**2
        v_hat = s["v"] / (1 - b2**t)
        return p - lr * ((s["m"] + alpha * g) / (np.sqrt(v_hat) + eps) + wd * p)

    return rule


def test_simplified_ademamix_matches_textbook() -> None:
    _assert_close(_lossbridge("simplified_ademamix"), _run(_simplified(1e-3, 0.99, 0.95, 0.0, 1e-8, 0.0)))
    hyper = {"lr": 2e-3, "beta_1": 0.9, "beta_2": 0.99, "alpha": 2.0, "eps": 1e-6, "weight_decay": 0.1}
    _assert_close(_lossbridge("simplified_ademamix", **hyper), _run(_simplified(2e-3, 0.9, 0.99, 2.0, 1e-6, 0.1)))


# -- MADGRAD: Defazio & Jelassi (2022), Algorithm 1 -------------------------------------------------
def _madgrad(lr: float, mom: float, eps: float, wd: float, weight32: str | None = None) -> Rule:
    def rule(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        g = g + wd * p
        if weight32 is None:
            lam = (lr + eps) * np.sqrt(t)
        elif weight32 == "sqrt_float32":  # sqrt of an int32 count in float32 (JAX), times a float64 lr
            lam = (lr + eps) * float(np.sqrt(np.float32(t)))
        else:  # a Python-float lr times that float32 root stays float32 (JAX's weak typing)
            lam = float(np.float32(lr + eps) * np.sqrt(np.float32(t)))
        x0 = s.setdefault("x0", p.copy())
        s["s"] = s.get("s", 0.0) + lam * g
        s["nu"] = s.get("nu", 0.0) + lam * g**2
        z = x0 - s["s"] / (np.cbrt(s["nu"]) + eps)
        return (1 - mom) * z + mom * p

    return rule


def test_madgrad_matches_textbook() -> None:
    _assert_close(_lossbridge("madgrad"), _run(_madgrad(1e-2, 0.9, 1e-6, 0.0)))
    # lr=0.01: at lr=0.02 this problem oscillates and MADGRAD's z = x0 - s / nu^(1/3) amplifies the last bit
    # of a different operation order 1e6-fold over 100 steps (1e-18 -> 1.3e-10), which would test nothing
    hyper = {"lr": 0.01, "momentum": 0.5, "eps": 1e-4, "weight_decay": 0.1}
    _assert_close(_lossbridge("madgrad", **hyper), _run(_madgrad(0.01, 0.5, 1e-4, 0.1)))


@pytest.mark.parametrize("weight32", ["sqrt_float32", "float32"])
def test_madgrad_step_weight_rounding(weight32: str) -> None:
    _assert_close(_lossbridge("madgrad", step_weight_dtype=weight32), _run(_madgrad(1e-2, 0.9, 1e-6, 0.0, weight32)))
    exact = _run(_madgrad(1e-2, 0.9, 1e-6, 0.0))
    with pytest.raises(AssertionError):  # the rounding is visible at this tolerance
        _assert_close(_lossbridge("madgrad", step_weight_dtype=weight32), exact)


def test_madgrad_optax_convention_rounds_the_whole_step_weight() -> None:
    assert lossbridge.get("madgrad", convention="optax").hyper["step_weight_dtype"] == "float32"
    assert lossbridge.get("madgrad").hyper["step_weight_dtype"] is None


def test_madgrad_keeps_its_own_copy_of_the_start() -> None:
    """Parameters updated in place (as ``step`` does) must not move the state's x0."""
    opt, params = lossbridge.get("madgrad", lr=0.1), [np.array([1.0, -1.0])]
    state = opt.init(params)
    for _ in range(2):
        updates, state = opt.update([np.array([0.5, 0.5])], state, params)
        params[0] += updates[0]
    np.testing.assert_array_equal(state.slots[0]["x0"], [1.0, -1.0])


# -- names and validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("ADOPT", "adopt"),
        ("AdEMAMix", "ademamix"),
        ("Simplified-AdEMAMix", "simplified_ademamix"),
        ("MadGrad", "madgrad"),
    ],
)
def test_names_resolve_case_and_separator_insensitively(name: str, spec: str) -> None:
    assert lossbridge.get(name, convention="optax").spec.name == spec
    assert lossbridge.get(name).spec.name == spec


@pytest.mark.parametrize(
    ("name", "hyper"),
    [
        ("adopt", {"beta_2": 1.0}),
        ("adopt", {"eps": -1e-6}),
        ("adopt", {"clip_value_fn": lambda c: c**0.25}),
        ("ademamix", {"beta_3": 1.5}),
        ("ademamix", {"alpha": -1.0}),
        ("simplified_ademamix", {"beta_1": -0.1}),
        ("madgrad", {"momentum": 1.0}),
        ("madgrad", {"step_weight_dtype": "float16"}),
    ],
)
def test_invalid_hyperparameters_are_refused(name: str, hyper: dict[str, Any]) -> None:
    with pytest.raises(ParameterError):
        lossbridge.get(name, **hyper)
