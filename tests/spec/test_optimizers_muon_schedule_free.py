"""Muon and the schedule-free optimizers on NumPy against float64 textbook transcriptions written here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import ParameterError
from lossbridge.spec._muon import round_to_bfloat16
from lossbridge.spec._schedule_free import schedule_free_eval_params

STEPS = 30
RTOL = 1e-12
A, B, C = 3.4445, -4.7750, 2.0315


def _close(got: np.ndarray, want: np.ndarray, rtol: float = RTOL) -> None:
    assert np.max(np.abs(got - want)) <= rtol * max(np.max(np.abs(want)), 1e-300)


def _problem(shapes: tuple[tuple[int, ...], ...], seed: int = 3) -> tuple[list[np.ndarray], Any]:
    rng = np.random.default_rng(seed)
    start = [rng.normal(size=s) for s in shapes]
    targets = [rng.normal(size=s) for s in shapes]

    def grad(params: list[np.ndarray]) -> list[np.ndarray]:
        return [p - t + 0.3 * np.sin(3.0 * p) for p, t in zip(params, targets, strict=True)]

    return start, grad


def _run(opt: Any, start: list[np.ndarray], grad: Any, steps: int = STEPS) -> list[list[np.ndarray]]:
    params = [p.copy() for p in start]
    out = []
    for _ in range(steps):
        opt.step(params, grad(params))
        out.append([p.copy() for p in params])
    return out


# -- Muon: Jordan's algorithm (https://kellerjordan.github.io/posts/muon/), transcribed ----------------
def _ns(g: np.ndarray, steps: int = 5, eps: float = 1e-7, coeffs: tuple[float, float, float] = (A, B, C)) -> np.ndarray:
    a, b, c = coeffs
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / (np.linalg.norm(x) + eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if g.shape[0] > g.shape[1] else x


def _textbook_muon(start: list[np.ndarray], grad: Any, *, lr: float, mu: float, nesterov: bool, wd: float = 0.0,
                   adam: tuple[float, float, float] = (0.9, 0.999, 1e-7)) -> list[list[np.ndarray]]:
    params = [p.copy() for p in start]
    buf = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = adam
    out = []
    for t in range(1, STEPS + 1):
        gs = grad(params)
        for i, (p, g) in enumerate(zip(params, gs, strict=True)):
            buf[i] = mu * buf[i] + (1 - mu) * g
            if p.ndim == 2:
                m = (1 - mu) * g + mu * buf[i] if nesterov else buf[i]
                scale = np.sqrt(max(1.0, p.shape[0] / p.shape[1]))
                params[i] = p - lr * wd * p - lr * scale * _ns(m)
            else:  # AdamW (Kingma & Ba, Algorithm 1; Loshchilov & Hutter)
                v[i] = b2 * v[i] + (1 - b2) * g * g
                m_hat, v_hat = buf[i] / (1 - b1**t), v[i] / (1 - b2**t)
                params[i] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append([p.copy() for p in params])
    return out


@pytest.mark.parametrize("nesterov", [True, False])
def test_muon_matches_jordans_algorithm(nesterov: bool) -> None:
    start, grad = _problem(((4, 3), (2, 5)))
    got = _run(lossbridge.get("muon", lr=0.05, nesterov=nesterov, weight_decay=0.1), start, grad)
    want = _textbook_muon(start, grad, lr=0.05, mu=0.95, nesterov=nesterov, wd=0.1)
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            _close(a, b)


def test_muon_vector_takes_the_adam_fallback() -> None:
    start, grad = _problem(((3,), (3, 3)))
    got = _run(lossbridge.get("muon", lr=0.01, momentum=0.9), start, grad)
    want = _textbook_muon(start, grad, lr=0.01, mu=0.9, nesterov=True)
    for g, w in zip(got, want, strict=True):
        _close(g[0], w[0])
        _close(g[1], w[1])


def test_muon_sum_momentum_is_the_ema_scaled() -> None:
    """B = mu B + G is the EMA divided by (1-mu): the same step up to the normalization eps."""
    start, grad = _problem(((3, 4),))
    ema = _run(lossbridge.get("muon", eps=0.0), start, grad)
    summed = _run(lossbridge.get("muon", eps=0.0, momentum_form="sum"), start, grad)
    for a, b in zip(ema, summed, strict=True):
        _close(a[0], b[0], 1e-11)


def test_newton_schulz_properties() -> None:
    from lossbridge.spec._muon import newton_schulz

    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, 5))
    kw = {"ns_a": A, "ns_b": B, "ns_c": C, "ns_steps": 5, "eps": 0.0}
    o = newton_schulz(g, xp=np, **kw)
    _close(newton_schulz(g.T, xp=np, **kw), o.T)  # f(G^T) = f(G)^T
    _close(newton_schulz(7.0 * g, xp=np, **kw), o)  # scale-invariant without eps
    u, s, vt = np.linalg.svd(g, full_matrices=False)
    s = s / np.linalg.norm(g)
    for _ in range(5):  # the quintic acts on each singular value alone
        s = A * s + B * s**3 + C * s**5
    _close(o, u @ np.diag(s) @ vt, 1e-11)
    assert np.all((s > 0.6) & (s < 1.25))  # Jordan: S' ~ U(0.5, 1.5)
    many = newton_schulz(g, xp=np, ns_a=1.5, ns_b=-0.5, ns_c=0.0, ns_steps=60, eps=0.0)  # cubic: converges
    _close(many, u @ vt, 1e-10)


def test_muon_shape_scalings() -> None:
    start, grad = _problem(((6, 2),))
    g = grad(start)[0]
    o = _ns(g, eps=0.0)  # the first look-ahead is (1-mu)(1+mu) g, and NS is scale-invariant without eps
    for kwargs, scale in [
        ({}, np.sqrt(3.0)),
        ({"fan_out_axis": 1}, 1.0),
        ({"adjust_lr_fn": "match_rms_adamw"}, 0.2 * np.sqrt(6.0)),
        ({"rms_scale": 0.3}, 0.3 * np.sqrt(6.0)),
        ({"adjust_lr_fn": "none"}, 1.0),
    ]:
        params = [start[0].copy()]
        lossbridge.get("muon", lr=0.1, eps=0.0, **kwargs).step(params, [g])
        _close(params[0], start[0] - 0.1 * scale * o, 1e-10)


def test_muon_adaptive_scales_by_the_dual_norm() -> None:
    start, grad = _problem(((3, 3),))
    g = grad(start)[0]
    params = [start[0].copy()]
    lossbridge.get("muon", lr=0.1, eps=0.0, nesterov=False, adaptive=True).step(params, [g])
    m = 0.05 * g
    _close(params[0], start[0] - 0.1 * np.sum(m * _ns(m, eps=0.0)) * _ns(m, eps=0.0), 1e-11)


def _bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even to bfloat16 on the float32 bit pattern (the reference)."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def test_round_to_bfloat16_is_round_to_nearest_even() -> None:
    rng = np.random.default_rng(1)
    bits = rng.integers(0x00800000, 0x76000000, size=20000, dtype=np.uint32)
    bits[:10000] = (bits[:10000] & np.uint32(0xFFFF0000)) | np.uint32(0x8000)  # exact ties
    x = bits.view(np.float32).astype(np.float64) * np.where(rng.random(20000) < 0.5, -1.0, 1.0)
    np.testing.assert_array_equal(round_to_bfloat16(x, xp=np), _bf16_bits(x))


def test_muon_parameter_validation() -> None:
    with pytest.raises(ParameterError, match="adjust_lr_fn"):
        lossbridge.get("muon", adjust_lr_fn="arbitrary")
    with pytest.raises(ParameterError, match="momentum"):
        lossbridge.get("muon", momentum=1.0)
    with pytest.raises(ParameterError, match="ns_steps"):
        lossbridge.get("muon", ns_steps=-1)


# -- schedule-free: Defazio et al. (2024), Algorithm 1 with the x sequence stored ---------------------
def _textbook_schedule_free(start: list[np.ndarray], grad: Any, *, lr: float, b1: float, adam: bool,
                            warmup: int = 0, power: float = 2.0, wd: float = 0.0, b2: float = 0.999,
                            eps: float = 1e-8) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    y = [p.copy() for p in start]
    z = [p.copy() for p in start]
    x = [p.copy() for p in start]
    v = [np.zeros_like(p) for p in start]
    weight_sum, lr_max, ys, xs = 0.0, 0.0, [], []
    for t in range(1, STEPS + 1):
        gamma = lr * min(t / warmup, 1.0) if warmup else lr
        lr_max = max(lr_max, gamma)
        weight_sum += lr_max**power
        c = lr_max**power / weight_sum
        for i, g in enumerate(grad(y)):
            d = g
            if adam:
                v[i] = b2 * v[i] + (1 - b2) * g * g
                d = g / (np.sqrt(v[i] / (1 - b2**t)) + eps)
            z[i] = z[i] - gamma * (d + wd * y[i])
            x[i] = (1 - c) * x[i] + c * z[i]
            y[i] = (1 - b1) * z[i] + b1 * x[i]
        ys.append([p.copy() for p in y])
        xs.append([p.copy() for p in x])
    return ys, xs


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("schedule_free_sgd", {"lr": 0.1, "beta_1": 0.9}),
        ("schedule_free_sgd", {"lr": 0.2, "beta_1": 0.7, "warmup_steps": 5, "weight_decay": 0.01}),
        ("schedule_free_adamw", {"lr": 0.05, "beta_1": 0.9}),
        ("schedule_free_adamw", {"lr": 0.05, "beta_1": 0.8, "warmup_steps": 8, "weight_lr_power": 1.0,
                                 "weight_decay": 0.02, "beta_2": 0.99, "eps": 1e-6}),
    ],
)
def test_schedule_free_matches_the_paper(name: str, kwargs: dict[str, Any]) -> None:
    start, grad = _problem(((3,), (2, 3)))
    opt = lossbridge.get(name, **kwargs)
    params = [p.copy() for p in start]
    ys, xs = _textbook_schedule_free(
        start, grad, lr=kwargs["lr"], b1=kwargs["beta_1"], adam=name.endswith("adamw"),
        warmup=kwargs.get("warmup_steps", 0), power=kwargs.get("weight_lr_power", 2.0),
        wd=kwargs.get("weight_decay", 0.0), b2=kwargs.get("beta_2", 0.999), eps=kwargs.get("eps", 1e-8),
    )
    state = [opt.bound.init(p, xp=np) for p in params]
    for t in range(STEPS):
        for i, g in enumerate(grad(params)):
            delta, state[i] = opt.bound.update(params[i], g, state[i], step=np.float64(t + 1), xp=np)
            params[i] = params[i] + delta
        for i in range(len(params)):
            _close(params[i], ys[t][i], 1e-11)
            _close(schedule_free_eval_params(params[i], state[i], beta_1=kwargs["beta_1"]), xs[t][i], 1e-11)


def test_schedule_free_uniform_average_with_power_zero() -> None:
    """weight_lr_power = 0 averages uniformly: x_T is the mean of z_1..z_T."""
    start, grad = _problem(((4,),))
    ys, _ = _textbook_schedule_free(start, grad, lr=0.1, b1=0.9, adam=False, power=0.0)
    got = _run(lossbridge.get("schedule_free_sgd", lr=0.1, weight_lr_power=0.0), start, grad)
    for g, w in zip(got, ys, strict=True):
        _close(g[0], w[0], 1e-11)


def test_schedule_free_parameter_validation() -> None:
    with pytest.raises(ParameterError, match="beta_1"):
        lossbridge.get("schedule_free_adamw", beta_1=0.0)
    with pytest.raises(ParameterError, match="warmup_steps"):
        lossbridge.get("schedule_free_sgd", warmup_steps=-1)


@pytest.mark.parametrize(
    ("name", "convention", "spec"),
    [
        ("Muon", "torch", "muon"),
        ("Muon", "keras", "muon"),
        ("muon", "optax", "muon"),
        ("ScheduleFreeAdamW", "keras", "schedule_free_adamw"),
        ("schedule-free-adamw", "optax", "schedule_free_adamw"),
        ("SCHEDULE_FREE_SGD", "optax", "schedule_free_sgd"),
    ],
)
def test_framework_names_resolve(name: str, convention: str, spec: str) -> None:
    assert lossbridge.get(name, convention=convention).bound.spec.name == spec
