"""Optimizer specs on complex parameters: the one definition against a NumPy complex128 oracle.

Optax updates complex parameters with the same formulas, reading every square as a squared modulus:
first moments are complex, second moments average :math:`|g|^2 = \\operatorname{Re}(\\bar g g)`
(``optax._src.numerics.abs_sq``, ``tree_update_moment_per_elem_norm``), norms are
:math:`\\sqrt{\\sum |x|^2}`. The oracles below transcribe that math in float64/complex128 NumPy,
independently of the specs, which run through ``lossbridge.bound.bind`` on the NumPy namespace.
Real inputs must give exactly the numbers they gave before (``x * x``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat.numpy as xp
import numpy as np
import pytest

import lossbridge
from lossbridge.bound import bind
from lossbridge.spec._ops import abs_sq

STEPS = 30
RTOL = 1e-12


def _complex(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def _sq(x: np.ndarray) -> np.ndarray:
    return (np.conj(x) * x).real


def _run_spec(name: str, params: dict[str, Any], p0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    bound = bind(lossbridge.spec(name), convention="optax", params=params)
    p, state, path = p0, bound.init(p0, xp=xp), []
    for t, g in enumerate(grads, start=1):
        delta, state = bound.update(p, g, state, step=np.asarray(float(t)), xp=xp)
        p = p + delta
        path.append(p)
    return path


def _run_oracle(step: Callable[..., np.ndarray], init: dict[str, Any], p0: np.ndarray,
                grads: list[np.ndarray]) -> list[np.ndarray]:
    p, state, path = p0, dict(init), []
    for t, g in enumerate(grads, start=1):
        p = p + step(p, g, state, t)
        path.append(p)
    return path


# -- oracles of Optax's complex math (float64 / complex128) -----------------------------------------
def adam_oracle(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Callable[..., np.ndarray]:
    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * _sq(g)
        return -lr * (s["m"] / (1 - b1**t)) / (np.sqrt(s["v"] / (1 - b2**t)) + eps)

    return step


def rmsprop_oracle(lr: float, decay: float = 0.9, eps: float = 1e-8, centered: bool = False) -> Callable[..., Any]:
    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["v"] = decay * s["v"] + (1 - decay) * _sq(g)
        var = s["v"]
        if centered:
            s["mg"] = decay * s["mg"] + (1 - decay) * g
            var = var - _sq(s["mg"])
        return -lr * g / np.sqrt(var + eps)

    return step


def adagrad_oracle(lr: float, eps: float = 1e-7) -> Callable[..., np.ndarray]:
    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["sum"] = s["sum"] + _sq(g)
        return -lr * g / np.sqrt(s["sum"] + eps)

    return step


def yogi_oracle(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-3) -> Callable[..., np.ndarray]:
    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["m"] = b1 * s["m"] + (1 - b1) * g
        g2 = _sq(g)
        s["v"] = s["v"] - (1 - b2) * np.sign(s["v"] - g2) * g2
        return -lr * (s["m"] / (1 - b1**t)) / (np.sqrt(s["v"] / (1 - b2**t)) + eps)

    return step


def lamb_oracle(lr: float, wd: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6) -> Callable[..., Any]:
    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * _sq(g)
        r = (s["m"] / (1 - b1**t)) / (np.sqrt(s["v"] / (1 - b2**t)) + eps) + wd * p
        ratio = np.sqrt(np.sum(_sq(p))) / np.sqrt(np.sum(_sq(r)))
        return -lr * ratio * r

    return step


def sgd_oracle(lr: float, momentum: float) -> Callable[..., np.ndarray]:
    def step(p: np.ndarray, g: np.ndarray, s: dict[str, Any], t: int) -> np.ndarray:
        s["trace"] = g + momentum * s["trace"]
        return -lr * s["trace"]

    return step


def _zeros(shape: tuple[int, ...], *names: str, fill: float = 0.0) -> dict[str, Any]:
    return {n: np.full(shape, fill, dtype=complex) for n in names}


SHAPE = (3, 4)
CASES = [
    ("adam", {"lr": 0.05}, adam_oracle(0.05), _zeros(SHAPE, "m", "v")),
    ("adam", {"lr": 0.05, "beta_1": 0.5, "eps": 1e-3}, adam_oracle(0.05, b1=0.5, eps=1e-3), _zeros(SHAPE, "m", "v")),
    ("rmsprop", {"lr": 0.01}, rmsprop_oracle(0.01), _zeros(SHAPE, "v")),
    ("rmsprop", {"lr": 0.01, "centered": True}, rmsprop_oracle(0.01, centered=True), _zeros(SHAPE, "v", "mg")),
    ("adagrad", {"lr": 0.1}, adagrad_oracle(0.1), _zeros(SHAPE, "sum", fill=0.1)),
    ("yogi", {"lr": 0.05}, yogi_oracle(0.05), {**_zeros(SHAPE, "m", "v", fill=1e-6)}),
    ("lamb", {"lr": 0.01, "weight_decay": 0.1}, lamb_oracle(0.01, 0.1), _zeros(SHAPE, "m", "v")),
    ("sgd", {"lr": 0.01, "momentum": 0.9}, sgd_oracle(0.01, 0.9), _zeros(SHAPE, "trace")),
]


@pytest.mark.parametrize(("name", "params", "oracle", "init"), CASES, ids=[f"{c[0]}-{len(c[1])}" for c in CASES])
def test_complex_parameters_follow_optax_math(name: str, params: dict[str, Any], oracle: Any, init: Any) -> None:
    rng = np.random.default_rng(3)
    p0 = _complex(rng, SHAPE)
    grads = [_complex(rng, SHAPE) for _ in range(STEPS)]
    ours = _run_spec(name, params, p0, grads)
    expected = _run_oracle(oracle, init, p0, grads)
    for t, (a, b) in enumerate(zip(ours, expected, strict=True)):
        assert a.dtype == np.complex128, (t, a.dtype)
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-14, err_msg=f"{name} step {t + 1}")


def test_abs_sq_is_the_squared_modulus_and_exactly_x_times_x_for_real() -> None:
    z = np.array([1 + 2j, -3j, 0.5])
    np.testing.assert_array_equal(abs_sq(z, xp=xp), np.array([5.0, 9.0, 0.25]))
    assert abs_sq(z, xp=xp).dtype == np.float64
    x = np.random.default_rng(0).normal(size=7)
    np.testing.assert_array_equal(abs_sq(x, xp=xp), x * x)


def test_abs_sq_runs_on_array_api_strict_for_real_inputs() -> None:
    strict = pytest.importorskip("array_api_strict")
    x = strict.asarray([1.5, -2.0])
    out = abs_sq(x, xp=strict)
    assert out.dtype == strict.float64
    np.testing.assert_array_equal(np.asarray(out), np.array([2.25, 4.0]))


def test_real_parameters_are_unchanged_by_the_complex_forms() -> None:
    """Real gradients: the spec gives the textbook real Adam numbers (the complex path is not taken)."""
    rng = np.random.default_rng(5)
    p0 = rng.normal(size=SHAPE)
    grads = [rng.normal(size=SHAPE) for _ in range(STEPS)]
    ours = _run_spec("adam", {"lr": 0.05}, p0, grads)
    expected = _run_oracle(adam_oracle(0.05), {"m": np.zeros(SHAPE), "v": np.zeros(SHAPE)}, p0, grads)
    assert ours[-1].dtype == np.float64
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=1e-14)
