"""polyak_sgd, sophia, noisy_sgd (steps that need more than the gradient) on NumPy only.

Expected numbers come from float64 NumPy transcriptions of the published / Optax formulas written
here, not from lossbridge. The needs (loss value, Hessian-diagonal estimate, noise) are given
explicitly, so the transcriptions see the same inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import BackendError, InputError, ParameterError, SpecError
from lossbridge.spec import OptimizerSpec

_RNG = np.random.default_rng(5)
_X = _RNG.normal(size=(10, 3))
_Y = _RNG.normal(size=(10, 2))
_START = [_RNG.normal(size=(3, 2)), _RNG.normal(size=(2,))]


def _value(p: list[np.ndarray]) -> float:
    r = _X @ p[0] + p[1] - _Y
    return float(0.5 * np.mean(np.sum(r * r, -1)) + 0.1 * np.sum(np.sin(p[0])))


def _grad(p: list[np.ndarray]) -> list[np.ndarray]:
    r = (_X @ p[0] + p[1] - _Y) / len(_X)
    return [_X.T @ r + 0.1 * np.cos(p[0]), r.sum(0)]


def _close(a: list[np.ndarray], b: list[np.ndarray], rtol: float = 1e-12) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-300)


# --------------------------------------------------------------------------------------- polyak_sgd


def _polyak_reference(p: list[np.ndarray], g: list[np.ndarray], f: float, *, scaling: float = 1.0,
                      cap: float = 1.0, f_min: float = 0.0, eps: float = 0.0, plus: bool = False) -> list[np.ndarray]:
    """Loizou et al.'s SPS_max on the scaled direction u = -scaling*g (Optax's chain order)."""
    u = [-scaling * gi for gi in g]
    sq = sum(float(np.sum(ui * ui)) for ui in u)
    gap = max(f - f_min, 0.0) if plus else f - f_min
    gamma = 0.0 if sq + eps <= np.finfo(np.float64).eps else min(gap / (sq + eps), cap)
    return [pi + gamma * ui for pi, ui in zip(p, u)]


@pytest.mark.parametrize(
    "hyper",
    [{}, {"max_learning_rate": 0.2, "f_min": -0.5}, {"lr": 0.6, "variant": "sps+", "f_min": 1.0, "eps": 0.01}],
    ids=["defaults", "capped", "scaled-sps+"],
)
def test_polyak_sgd_matches_transcription(hyper: dict[str, Any]) -> None:
    opt = lossbridge.get("polyak_sgd", backend="numpy", **hyper)
    ref = dict(scaling=hyper.get("lr", 1.0), cap=hyper.get("max_learning_rate", 1.0), f_min=hyper.get("f_min", 0.0),
               eps=hyper.get("eps", 0.0), plus=hyper.get("variant") == "sps+")
    ours, theirs = [p.copy() for p in _START], [p.copy() for p in _START]
    for _ in range(40):
        opt.step(ours, _grad(ours), value=_value(ours))
        theirs = _polyak_reference(theirs, _grad(theirs), _value(theirs), **ref)
        _close(ours, theirs)


def test_polyak_sgd_norm_is_global_over_tensors() -> None:
    opt = lossbridge.get("polyak_sgd", backend="numpy", max_learning_rate=100.0)
    p, g = [np.array([1.0, 0.0]), np.array([2.0])], [np.array([3.0, 0.0]), np.array([4.0])]
    updates, state = opt.update(g, opt.init(p), p, value=5.0)
    # gamma = 5 / (9 + 16) = 0.2 for both tensors
    _close(updates, [np.array([-0.6, 0.0]), np.array([-0.8])])
    assert float(state.glob["step_size"]) == pytest.approx(0.2, rel=1e-15)


def test_polyak_sgd_zero_gradient_takes_no_step() -> None:
    opt = lossbridge.get("polyak_sgd", backend="numpy")
    p = [np.array([1.0, 2.0])]
    with np.errstate(all="raise"):  # no division by zero either
        updates, state = opt.update([np.zeros(2)], opt.init(p), p, value=3.0)
    assert np.all(updates[0] == 0.0) and float(state.glob["step_size"]) == 0.0


def test_polyak_sgd_needs_the_value() -> None:
    opt = lossbridge.get("polyak_sgd", backend="numpy")
    p = [np.ones(2)]
    with pytest.raises(InputError, match="value"):
        opt.update([np.ones(2)], opt.init(p), p)


def test_polyak_sgd_rejects_unknown_variant() -> None:
    with pytest.raises(ParameterError, match="variant"):
        lossbridge.get("polyak_sgd", backend="numpy", variant="sps++")


# ------------------------------------------------------------------------------------------- sophia


def _sophia_reference(t: int, p: np.ndarray, g: np.ndarray, m: np.ndarray, h: np.ndarray, d: np.ndarray, *,
                      lr: float, b1: float = 0.965, b2: float = 0.99, eps: float = 1e-8, wd: float = 1e-4,
                      gamma: float = 0.01, clip: float | None = 1.0, k: int = 10) -> tuple[np.ndarray, ...]:
    """Liu et al.'s Sophia-H, Optax's order: the step uses the previous estimate h, the refresh comes after."""
    m = b1 * m + (1 - b1) * g
    u = (m / (1 - b1**t)) / np.maximum(gamma * h, eps)
    if clip is not None:
        u = np.clip(u, -clip, clip)
    p_new = p - lr * (u + wd * p)
    if (t - 1) % k == 0:
        h = b2 * h + (1 - b2) * d
    return p_new, m, h


@pytest.mark.parametrize(
    "hyper",
    [{"lr": 0.01}, {"lr": 0.05, "update_interval": 3, "clip_threshold": None, "gamma": 1.0, "eps": 0.3,
                    "weight_decay": 0.0}],
    ids=["defaults", "interval3-noclip"],
)
def test_sophia_matches_transcription(hyper: dict[str, Any]) -> None:
    bound = lossbridge.get("sophia", backend="numpy", **hyper).bound
    ref = dict(lr=hyper["lr"], gamma=hyper.get("gamma", 0.01), eps=hyper.get("eps", 1e-8),
               wd=hyper.get("weight_decay", 1e-4), clip=hyper.get("clip_threshold", 1.0),
               k=hyper.get("update_interval", 10))
    rng = np.random.default_rng(0)
    p = _START[0].copy()
    q, m, h = p.copy(), np.zeros_like(p), np.zeros_like(p)
    state = bound.init(p, xp=np)
    for t in range(1, 31):
        g = np.cos(p) + p
        d = np.abs(rng.normal(size=p.shape)) + 0.5  # an estimate, given to both
        delta, state = bound.update(p, g, state, step=np.float64(t), xp=np, hessian_diag=d)
        p = p + delta
        q, m, h = _sophia_reference(t, q, np.cos(q) + q, m, h, d, **ref)
        _close([p, state["m"], state["h"]], [q, m, h])


def test_sophia_numpy_backend_estimate_is_exact_for_a_separable_quadratic() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])  # f = 0.5 * sum(a * x^2): Hessian diag(a), r * (H r) = a exactly
    opt = lossbridge.get("sophia", backend="numpy", update_interval=1, beta_2=0.0, lr=0.01)
    p = [np.ones((2, 2))]
    opt.step(p, [a * p[0]], hvp=lambda v: [a * v[0]])
    _close([opt._state.slots[0]["h"]], [a])


def test_sophia_numpy_backend_needs_hvp_only_at_refresh_steps() -> None:
    opt = lossbridge.get("sophia", backend="numpy", update_interval=2)
    p = [np.ones(3)]
    state = opt.init(p)
    with pytest.raises(InputError, match="hvp"):
        opt.update([np.ones(3)], state, p)  # step 1 refreshes
    _, state = opt.update([np.ones(3)], state, p, hvp=lambda v: v)
    _, state = opt.update([np.ones(3)], state, p)  # step 2 does not


def test_sophia_rejects_bad_interval() -> None:
    with pytest.raises(ParameterError, match="update_interval"):
        lossbridge.get("sophia", backend="numpy", update_interval=0)


# ---------------------------------------------------------------------------------------- noisy_sgd


def test_noisy_sgd_matches_transcription() -> None:
    bound = lossbridge.get("noisy_sgd", backend="numpy", lr=0.1, eta=0.3, gamma=0.55).bound
    rng = np.random.default_rng(1)
    p = _START[0].copy()
    q = p.copy()
    for t in range(1, 21):
        z = rng.normal(size=p.shape)
        delta, _ = bound.update(p, np.sin(p), {}, step=np.float64(t), xp=np, noise=z)
        p = p + delta
        q = q - 0.1 * (np.sin(q) + np.sqrt(0.3 / t**0.55) * z)  # Neelakantan et al., variance eta / t^gamma
        _close([p], [q])


def test_noisy_sgd_numpy_backend_draws_from_default_rng_key() -> None:
    opt = lossbridge.get("noisy_sgd", backend="numpy", lr=1.0, eta=1.0, gamma=0.0, key=7)
    p = [np.zeros((2, 3)), np.zeros(4)]
    updates, state = opt.update([np.zeros((2, 3)), np.zeros(4)], opt.init(p), p)
    rng = np.random.default_rng(7)
    expected = [-rng.standard_normal((2, 3)), -rng.standard_normal(4)]
    _close(updates, expected)
    again, _ = opt.update([np.zeros((2, 3)), np.zeros(4)], opt.init(p), p)  # same key, same numbers
    _close(again, expected)
    later, _ = opt.update([np.zeros((2, 3)), np.zeros(4)], state, p)  # the state carries the stream on
    assert not np.allclose(later[0], expected[0])


def test_noisy_sgd_noise_has_the_annealed_variance() -> None:
    opt = lossbridge.get("noisy_sgd", backend="numpy", lr=1.0, eta=0.5, gamma=1.0)
    p = [np.zeros(200_000)]
    state = opt.init(p)
    _, state = opt.update([np.zeros_like(p[0])], state, p)
    updates, _ = opt.update([np.zeros_like(p[0])], state, p)  # t = 2: variance 0.5 / 2
    assert np.var(updates[0]) == pytest.approx(0.25, rel=0.02)
    assert abs(np.mean(updates[0])) < 0.01


# ------------------------------------------------------------------------------- model and purity


def test_needs_declaration_is_validated() -> None:
    sgd = lossbridge.spec("noisy_sgd")
    assert isinstance(sgd, OptimizerSpec) and sgd.needs == ("noise",)
    from dataclasses import replace

    with pytest.raises(SpecError, match="needs"):
        replace(sgd, needs=("gradient_of_loss",)).validate_declaration()
    with pytest.raises(SpecError, match="key"):
        replace(sgd, params=tuple(p for p in sgd.params if p.name != "key")).validate_declaration()
    with pytest.raises(SpecError, match="needs_at"):
        replace(lossbridge.spec("adam"), needs_at=lambda step, **_: True).validate_declaration()


def test_missing_need_is_a_backend_error() -> None:
    bound = lossbridge.get("sophia", backend="numpy").bound
    p = np.ones(2)
    with pytest.raises(BackendError, match="hessian_diag"):
        bound.update(p, p, bound.init(p, xp=np), step=np.float64(1), xp=np)


@pytest.mark.parametrize("name", ["polyak_sgd", "sophia", "noisy_sgd"])
def test_specs_run_on_array_api_strict(name: str) -> None:
    xps = pytest.importorskip("array_api_strict")
    bound = lossbridge.get(name, backend="numpy").bound
    p_np, g_np = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    extra_np = {"value": np.float64(2.0), "hessian_diag": np.array([1.0, 3.0]), "noise": np.array([0.3, -0.1])}
    results = []
    for xp, conv in ((np, np.asarray), (xps, xps.asarray)):
        p, g = conv(p_np), conv(g_np)
        extra = {k: conv(v) for k, v in extra_np.items() if k in bound.spec.needs}
        step = conv(np.float64(1.0))
        if bound.spec.global_slots:
            glob = bound.init_global(dtype=p.dtype, xp=xp)
            deltas, _, _ = bound.update_all([p], [g], [bound.init(p, xp=xp)], glob, steps=[step], xp=xp, **extra)
            delta = deltas[0]
        else:
            delta, _ = bound.update(p, g, bound.init(p, xp=xp), step=step, xp=xp, **extra)
        results.append(np.asarray(delta))
    _close([results[1]], [results[0]], rtol=1e-15)
