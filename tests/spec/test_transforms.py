"""Gradient transform specs (``role="transform"``) and the NumPy chain, against float64 transcriptions.

Expected numbers come from textbook formulas written here (and from Caffe's ``ClipGradients`` in
``src/caffe/solvers/sgd_solver.cpp``), never from lossbridge.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import ParameterError

RNG = np.random.default_rng(3)
SHAPES = [(3,), (4, 3), (2, 4, 3), (2, 2, 3, 4)]


def _grads(scale: float = 1.0) -> list[np.ndarray]:
    return [RNG.normal(size=s) * scale for s in SHAPES]


def _apply(name: str, grads: list[np.ndarray], params: list[np.ndarray] | None = None, **kw: object):
    t = lossbridge.get(name, **kw)
    state = t.init(grads if params is None else params)
    out, _ = t.update(grads, state, params)
    return out


def test_transform_specs_are_registered_without_lr() -> None:
    for name in ("clip", "clip_by_global_norm", "clip_by_norm", "adaptive_grad_clip", "centralize", "ema"):
        spec = lossbridge.spec(name)
        assert spec.kind == "optimizer" and spec.role == "transform"
        assert "lr" not in {p.name for p in spec.params}


@pytest.mark.parametrize("delta", [0.0, 0.3, 5.0])
def test_clip_by_value(delta: float) -> None:
    grads = _grads()
    for got, g in zip(_apply("clip", grads, max_delta=delta), grads, strict=True):
        np.testing.assert_array_equal(got, np.clip(g, -delta, delta))


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_by_global_norm(p: float, max_norm: float) -> None:
    grads = _grads()
    norm = sum(float(np.sum(np.abs(g) ** p)) for g in grads) ** (1.0 / p)
    scale = min(1.0, max_norm / (norm + 1e-6))  # torch's clip_coef, clamped at 1
    out = _apply("clip_grad_norm_", grads, convention="torch", max_norm=max_norm, norm_type=p)
    for got, g in zip(out, grads, strict=True):
        np.testing.assert_allclose(got, g * scale, rtol=1e-14)


def test_clip_by_global_norm_keeps_the_norm_and_zero_gradients() -> None:
    t = lossbridge.get("clip_by_global_norm", max_norm=1.0)
    grads = [np.array([3.0, 4.0]), np.array([[12.0]])]
    out, state = t.update(grads, t.init(grads))
    assert float(state.glob["norm"]) == 13.0
    np.testing.assert_allclose(out[0], [3 / 13, 4 / 13], rtol=1e-15)
    zeros = [np.zeros(2), np.zeros((1, 1))]
    out, _ = t.update(zeros, t.init(zeros))
    assert all(np.all(o == 0) and np.all(np.isfinite(o)) for o in out)


def test_caffe_clip_gradients() -> None:
    """SGDSolver<Dtype>::ClipGradients (src/caffe/solvers/sgd_solver.cpp): sumsq over all diffs, sqrt,
    and if l2norm_diff > clip_gradients every diff is scaled by clip_gradients / l2norm_diff."""
    for clip_gradients in (0.5, 100.0):
        diffs = _grads()
        sumsq_diff = 0.0
        for d in diffs:
            sumsq_diff += float(np.sum(d * d))
        l2norm_diff = np.sqrt(sumsq_diff)
        expected = [d.copy() for d in diffs]
        if l2norm_diff > clip_gradients:
            scale_factor = clip_gradients / l2norm_diff
            expected = [d * scale_factor for d in expected]
        t = lossbridge.get("clip_gradients", convention="caffe", clip_gradients=clip_gradients)
        grads = [d.copy() for d in diffs]
        t.step([np.zeros_like(d) for d in diffs], grads)  # rewrites grads in place
        for got, want in zip(grads, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-14)


@pytest.mark.parametrize("rms", [False, True])
def test_clip_by_norm_per_tensor(rms: bool) -> None:
    grads = _grads()
    threshold = 0.8
    out = _apply("clip_by_norm", grads, threshold=threshold, rms=rms)
    for got, g in zip(out, grads, strict=True):
        measure = np.sqrt(np.mean(g * g)) if rms else np.sqrt(np.sum(g * g))
        np.testing.assert_allclose(got, g / max(1.0, measure / threshold), rtol=1e-14)


def _unitwise(x: np.ndarray) -> np.ndarray:
    if np.squeeze(x).ndim <= 1:
        n = np.sqrt(np.sum(x * x))
    elif x.ndim in (2, 3):
        n = np.sqrt(np.sum(x * x, axis=0, keepdims=True))
    else:
        n = np.sqrt(np.sum(x * x, axis=tuple(range(x.ndim - 1)), keepdims=True))
    return np.broadcast_to(n, x.shape)


@pytest.mark.parametrize("clipping", [0.05, 10.0])
def test_adaptive_grad_clip(clipping: float) -> None:
    grads = [*_grads(), RNG.normal(size=(1, 4))]
    params = [*_grads(), RNG.normal(size=(1, 4))]
    params[1][:, 0] = 0.0  # a zero unit: the eps floor
    out = _apply("agc", grads, params, clipping=clipping, eps=1e-3)
    for got, g, p in zip(out, grads, params, strict=True):
        gn, pn = _unitwise(g), _unitwise(p)
        max_norm = clipping * np.maximum(pn, 1e-3)
        want = np.where(gn < max_norm, g, g * max_norm / np.maximum(gn, 1e-6))
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_adaptive_grad_clip_needs_params_and_rank() -> None:
    t = lossbridge.get("adaptive_grad_clip")
    g = [np.ones(3)]
    with pytest.raises(TypeError, match="needs the current parameters"):
        t.update(g, t.init(g))
    big = [np.ones((1, 2, 1, 2, 1, 2))]
    with pytest.raises(ValueError, match="rank 1 to 5"):
        t.update([np.ones((2, 2, 2, 2, 2, 2))], t.init(big), [np.ones((2, 2, 2, 2, 2, 2))])


def test_centralize() -> None:
    grads = _grads()
    out = _apply("centralize", grads)
    np.testing.assert_array_equal(out[0], grads[0])  # vectors unchanged
    for got, g in zip(out[1:], grads[1:], strict=True):
        np.testing.assert_allclose(got, g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True), rtol=1e-14,
                                   atol=1e-15)


@pytest.mark.parametrize("debias", [True, False])
def test_ema_of_updates(debias: bool) -> None:
    t = lossbridge.get("ema", decay=0.7, debias=debias)
    seq = [_grads() for _ in range(6)]
    state = t.init(seq[0])
    ema = [np.zeros_like(g) for g in seq[0]]
    for step, grads in enumerate(seq, start=1):
        out, state = t.update(grads, state)
        ema = [0.7 * e + 0.3 * g for e, g in zip(ema, grads, strict=True)]
        for got, e in zip(out, ema, strict=True):
            np.testing.assert_allclose(got, e / (1 - 0.7**step) if debias else e, rtol=1e-12, atol=1e-15)


def test_parameter_validation() -> None:
    with pytest.raises(ParameterError, match="max_norm"):
        lossbridge.get("clip_by_global_norm", max_norm=0.0)
    with pytest.raises(ParameterError, match="clipping"):
        lossbridge.get("adaptive_grad_clip", clipping=-1.0)
    with pytest.raises(ParameterError, match="decay"):
        lossbridge.get("ema", decay=1.5)
    with pytest.raises(ParameterError, match="max_delta"):
        lossbridge.get("clip", max_delta=-0.1)


def test_framework_names_and_keywords() -> None:
    assert lossbridge.spec("clip_grad_value_", convention="torch").name == "clip"
    assert lossbridge.spec("clipnorm", convention="keras").name == "clip_by_norm"
    t = lossbridge.get("clip_by_block_rms", convention="optax", threshold=0.1)
    assert t.bound.hyper["rms"] is True
    t = lossbridge.get("clip_grad_value_", convention="torch", clip_value=0.25)
    assert t.bound.hyper["max_delta"] == 0.25
    t = lossbridge.get("clip_grad_norm_", convention="torch", max_norm=2.0)
    assert t.bound.hyper["eps"] == 1e-6


# -- the NumPy chain -------------------------------------------------------------------------------
def test_chain_is_transforms_then_optimizer() -> None:
    params = [RNG.normal(size=s) for s in SHAPES]
    grads = _grads(3.0)
    expected = [p.copy() for p in params]
    norm = np.sqrt(sum(np.sum(np.clip(g, -1, 1) ** 2) for g in grads))
    for p, g in zip(expected, grads, strict=True):
        p -= 0.1 * np.clip(g, -1, 1) * min(1.0, 0.5 / norm)
    opt = lossbridge.chain(lossbridge.get("clip", max_delta=1.0), lossbridge.get("clip_by_global_norm", max_norm=0.5),
                           lossbridge.get("sgd", lr=0.1))
    opt.step(params, [g.copy() for g in grads])
    for got, want in zip(params, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_chain_accumulate_averages_then_steps() -> None:
    params = [np.ones(3)]
    opt = lossbridge.chain(lossbridge.get("clip", max_delta=10.0), lossbridge.get("sgd", lr=1.0), accumulate=3)
    seq = [np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]), np.array([7.0, 8.0, 9.0])]
    for k, g in enumerate(seq):
        opt.step(params, [g.copy()])
        if k < 2:
            np.testing.assert_array_equal(params[0], np.ones(3))
    np.testing.assert_allclose(params[0], 1.0 - np.mean(seq, axis=0), rtol=1e-15)


def test_chain_of_transforms_rewrites_gradients_and_nests() -> None:
    inner = lossbridge.chain(lossbridge.get("clip", max_delta=1.0), lossbridge.get("centralize"))
    grads = [np.array([[3.0, -1.0], [0.5, 0.25]])]
    inner.step([np.zeros((2, 2))], grads)
    clipped = np.clip([[3.0, -1.0], [0.5, 0.25]], -1, 1)
    np.testing.assert_allclose(grads[0], clipped - clipped.mean(axis=1, keepdims=True))
    outer = lossbridge.chain(inner, lossbridge.get("sgd", lr=1.0))
    assert [p.spec.name for p in outer.parts] == ["clip", "centralize", "sgd"]


def test_chain_errors() -> None:
    with pytest.raises(ParameterError, match="accumulate"):
        lossbridge.chain(lossbridge.get("clip"), lossbridge.get("sgd"), accumulate=0)
    with pytest.raises(ParameterError, match="only the last part"):
        lossbridge.chain(lossbridge.get("clip"), lossbridge.get("sgd"), lossbridge.get("clip"))
    with pytest.raises(ParameterError, match="none of the parts"):
        lossbridge.chain(object())


@pytest.mark.parametrize("name", ["clip", "clip_by_global_norm", "clip_by_norm", "adaptive_grad_clip", "centralize",
                                  "ema"])
def test_transform_specs_run_on_array_api_strict(name: str) -> None:
    """Purity: every transform spec runs unchanged on array-api-strict and gives the NumPy numbers.

    (The conformance kit checks transforms as chains on NumPy, torch and JAX; array-api-strict has no
    chain object, so the spec functions are driven here directly, global-norm transforms through
    ``BoundOptimizer.update_all``.)"""
    xps = pytest.importorskip("array_api_strict")
    from lossbridge.bound import bind

    spec = lossbridge.spec(name)
    params = [RNG.normal(size=s) for s in SHAPES]
    grads = _grads()
    results = []
    for xp, cast in ((np, np.asarray), (xps, xps.asarray)):
        bound = bind(spec, params={"clipping": 0.05} if name == "adaptive_grad_clip" else {})
        ps, gs = [cast(p) for p in params], [cast(g) for g in grads]
        states = [bound.init(p, xp=xp) for p in ps]
        step = [cast(np.float64(1.0)) for _ in ps]
        if spec.global_slots:
            glob = bound.init_global(dtype=xp.float64, xp=xp)
            outs, _, _ = bound.update_all(ps, gs, states, glob, steps=step, xp=xp)
        else:
            outs = [bound.update(p, g, s, step=t, xp=xp)[0] for p, g, s, t in zip(ps, gs, states, step, strict=True)]
        results.append([np.asarray(o) for o in outs])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-16)


def test_docstring_examples_run() -> None:
    import doctest
    import sys

    from lossbridge.spec import _transforms

    for module in (_transforms, sys.modules["lossbridge.chain"]):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0
