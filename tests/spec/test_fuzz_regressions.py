"""Regression tests for the float32 failures found by the property-based search
(``lossbridge check --fuzz 200``), NumPy backend only.

Each test runs the minimal failing input the search reported (or, where the search's input is
not reproducible, the smallest input showing the same rounding), as a literal, in float32, and
compares with a float64 NumPy transcription of the textbook formula written here on the same
(float32-rounded) inputs: the result must be finite and close.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.registry import default_registry

F32 = np.float32
#: float32 results against the float64 textbook, relative to the largest parameter of the step.
RTOL = 1e-5


def _f32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=F32).astype(np.float64)


def _trajectory(name: str, params: list[np.ndarray], grads: list[list[np.ndarray]], **kwargs: Any) -> list[Any]:
    opt = lossbridge.get(name, **kwargs)
    return default_registry().backend("numpy").optimizer_trajectory(opt, params, grads, dtype="float32")


def _assert_close(actual: list[np.ndarray], expected: list[np.ndarray], rtol: float = RTOL) -> None:
    scale = max(float(np.max(np.abs(e))) for e in expected)
    for a, e in zip(actual, expected, strict=True):
        assert np.all(np.isfinite(a)), a
        np.testing.assert_allclose(a, e, rtol=0, atol=rtol * scale)


# -- Adafactor, eps1_placement="clamp": V clamped at eps1^2 underflowed to 0, then 0 / sqrt(0) ------
def test_adafactor_clamp_zero_gradient_float32() -> None:
    p = _f32(0.1257302165031433)
    params = [np.array([[p]]), np.array([p])]
    grads = [[np.array([[p]]), np.array([0.0])]]
    out = _trajectory("adafactor", params, grads, weight_decay=0.1, eps1_placement="clamp")[-1]
    # textbook, step 1 (beta2_1 = 1 - 1^c = 0): R = C = V = G^2; U = G / sqrt(max(V, eps1^2))
    lr, wd, eps1, eps2 = 1e-2, 0.1, 1e-30, 1e-3
    expected = []
    for theta, g in ((params[0], grads[0][0]), (params[1], grads[0][1])):
        u = g / np.sqrt(np.maximum(g * g, eps1 * eps1))
        u = u / max(1.0, np.sqrt(np.mean(u * u)))
        alpha = max(eps2, np.sqrt(np.mean(theta * theta))) * min(lr, 1.0)
        expected.append(theta - lr * wd * theta - alpha * u)
    _assert_close(out, expected)
    assert out[1][0] == pytest.approx(p * (1 - lr * wd), rel=1e-6)  # the zero gradient: decay only


# -- LAMB / LARS: the trust ratio's norms squared the elements (1e-30^2 underflows float32) -----------
def test_lamb_tiny_gradient_trust_ratio_float32() -> None:
    p, tiny = _f32(0.1257302165031433), _f32(1.0000000031710769e-30)
    params = [np.array([[p]]), np.array([p])]
    grads = [[np.array([[p]]), np.array([tiny])]]
    out = _trajectory("lamb", params, grads)[-1]
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-6
    expected = []
    for theta, g in zip(params, grads[0], strict=True):
        m_hat = (1 - b1) * g / (1 - b1)
        v_hat = (1 - b2) * g * g / (1 - b2)
        r = m_hat / (np.sqrt(v_hat) + eps)
        expected.append(theta - lr * np.linalg.norm(theta) / np.linalg.norm(r) * r)
    _assert_close(out, expected)
    assert out[1][0] == pytest.approx(p - lr * p, rel=1e-6)  # ||theta|| / ||r|| r = theta here


def test_lars_tiny_gradient_trust_ratio_float32() -> None:
    p, tiny = _f32(0.1257302165031433), _f32(1e-30)
    params = [np.array([p, -p])]
    grads = [[np.array([tiny, tiny])]]
    out = _trajectory("lars", params, grads)[-1]
    lr, c = 1e-2, 1e-3
    u = grads[0][0]
    expected = [params[0] - lr * c * np.linalg.norm(params[0]) / np.linalg.norm(u) * u]
    _assert_close(out, expected)


def test_scaled_norm_matches_the_norm() -> None:
    from lossbridge.spec._ops import scaled_norm

    for x in (np.array([3.0, -4.0]), np.array([1e-30, 1e-30], dtype=F32), np.array([1e30, -1e30], dtype=F32)):
        got = scaled_norm(x, xp=np)
        assert got.dtype == x.dtype
        assert float(got) == pytest.approx(float(np.linalg.norm(x.astype(np.float64))), rel=1e-6)
    assert float(scaled_norm(np.zeros(3, dtype=F32), xp=np)) == 0.0
    assert float(scaled_norm(np.zeros(0), xp=np)) == 0.0


# -- Rprop: sign(g * prev) of two tiny floats underflowed to 0 ("no sign"): the step did not grow ---
def _rprop_textbook(theta: np.ndarray, grads: list[np.ndarray], product_underflows: bool) -> np.ndarray:
    lr, eta_minus, eta_plus, lo, hi = 1e-2, 0.5, 1.2, 1e-6, 50.0
    size, prev = np.full_like(theta, lr), np.zeros_like(theta)
    for g in grads:
        s = np.sign(g) * np.sign(prev)
        if product_underflows:  # PyTorch: the sign of the float32 product
            s = np.sign((g.astype(F32) * prev.astype(F32)).astype(np.float64))
        size = np.clip(size * np.where(s > 0, eta_plus, np.where(s < 0, eta_minus, 1.0)), lo, hi)
        g = np.where(s < 0, 0.0, g)
        theta = theta - size * np.sign(g)
        prev = g
    return theta


def test_rprop_tiny_gradients_keep_their_sign_float32() -> None:
    tiny = _f32(1e-30)
    params, grads = [np.array([1.0])], [[np.array([tiny])], [np.array([tiny])]]
    out = _trajectory("rprop", params, grads)[-1]
    _assert_close(out, [_rprop_textbook(params[0], [g[0] for g in grads], False)])
    assert out[0][0] == pytest.approx(1.0 - 0.01 - 0.012, rel=1e-6)  # the step grew by eta_plus


def test_rprop_torch_convention_keeps_the_product_float32() -> None:
    # torch.optim.Rprop takes grad.mul(prev).sign(): 1e-60 is 0 in float32, the step size stays
    tiny = _f32(1e-30)
    params, grads = [np.array([1.0])], [[np.array([tiny])], [np.array([tiny])]]
    out = _trajectory("rprop", params, grads, convention="torch")[-1]
    _assert_close(out, [_rprop_textbook(params[0], [g[0] for g in grads], True)])
    assert out[0][0] == pytest.approx(1.0 - 0.01 - 0.01, rel=1e-6)
    # float64: no underflow, the conventions agree
    opt = lossbridge.get("rprop", convention="torch")
    path = default_registry().backend("numpy").optimizer_trajectory(opt, params, grads, dtype="float64")
    assert path[-1][0][0] == pytest.approx(1.0 - 0.01 - 0.012, rel=1e-12)


@pytest.mark.parametrize("sign_test", ["signs", "product", "update_product"])
def test_rprop_sign_tests_agree_without_underflow(sign_test: str) -> None:
    rng = np.random.default_rng(3)
    params = [rng.normal(size=(3, 2))]
    grads = [[rng.normal(size=(3, 2))] for _ in range(6)]
    expected = _rprop_textbook(params[0], [g[0] for g in grads], False)
    opt = lossbridge.get("rprop", sign_test=sign_test)
    path = default_registry().backend("numpy").optimizer_trajectory(opt, params, grads, dtype="float64")
    np.testing.assert_allclose(path[-1][0], expected, rtol=1e-12)


# -- FTRL: sqrt(n + g^2) - sqrt(n) of a small gradient on a large accumulator cancels in float32 -----
def test_ftrl_rate_change_without_cancellation_float32() -> None:
    from lossbridge.spec._misc_optim import ftrl_update

    lr, n0 = 1e-3, 1e4
    theta, g = np.array([1.0], dtype=F32), np.array([0.1], dtype=F32)
    state = {"n": np.array([n0], dtype=F32), "z": np.array([0.0], dtype=F32)}
    hyper = dict(lr=lr, lr_power=-0.5, l1=0.0, l2=0.0, l2_shrinkage=0.0, beta=0.0)
    delta, new = ftrl_update(theta, g, state, step=np.asarray(1.0, dtype=F32), xp=np, **hyper)
    th, gg, n = theta.astype(np.float64), g.astype(np.float64), np.float64(n0)
    z = gg - (np.sqrt(n + gg * gg) - np.sqrt(n)) / lr * th  # McMahan et al. (2013), Algorithm 1
    assert new["z"].dtype == F32 and np.all(np.isfinite(new["z"]))
    np.testing.assert_allclose(new["z"], z, rtol=1e-5)  # the plain difference of roots: 8% off
    # the new parameter comes as an increment of theta: absolute precision float32's eps * |theta|
    np.testing.assert_allclose(theta + delta, -z / (np.sqrt(n + gg * gg) / lr), rtol=0, atol=1e-6 * abs(th[0]))


def test_ftrl_zero_accumulator_and_gradient_rate_change_is_zero() -> None:
    from lossbridge.spec._misc_optim import ftrl_update

    theta, zero = np.array([0.5], dtype=F32), np.array([0.0], dtype=F32)
    hyper = dict(lr=1e-3, lr_power=-0.5, l1=0.0, l2=0.0, l2_shrinkage=0.0, beta=0.0)
    # n = 0 and g = 0: sqrt(0) - sqrt(0) = 0, not 0 / (0 + 0)
    with np.errstate(invalid="ignore"):  # the new parameter is -z / (sqrt(n) / lr) = 0 / 0, as exactly
        _, new = ftrl_update(theta, zero, {"n": zero, "z": zero}, step=np.asarray(1.0, dtype=F32), xp=np, **hyper)
    assert new["z"].tolist() == [0.0]
