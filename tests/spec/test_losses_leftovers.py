"""Issue 12 leftovers on NumPy only: each against a float64 transcription of its textbook formula written
here, gradients against central finite differences, and parameter validation.

Circle with a separate reference set, the triplet margin loss along another axis, CTC on one unbatched
sequence, Optax's dice rank expansion, Adafactor's Optax options (momentum, decay offset, no clipping,
no learning-rate factor, no factoring), Adadelta without a learning rate, and the negated keyword.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import lossbridge
from lossbridge.bound import translate_kwargs
from lossbridge.conventions import InputRules
from lossbridge.errors import ParameterError
from lossbridge.spec._metric import circle, triplet_margin
from lossbridge.spec._sequence import ctc, ctc_vjp


def _close(actual: Any, expected: Any, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected), rtol=rtol, atol=atol)


def _rng() -> np.random.Generator:
    return np.random.default_rng(2012)


def _fd(f: Any, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f`` at ``x``."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        g[i] = (f(up) - f(down)) / (2 * h)
    return g


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# -- Circle with a reference set ------------------------------------------------------------------------
def _circle_reference(labels: np.ndarray, emb: np.ndarray, ref_labels: np.ndarray, ref: np.ndarray, *,
                      gamma: float, margin: float, remove_diagonal: bool) -> np.ndarray:
    """Sun et al.'s pair form, query by query, over the reference rows (Keras's masks: (i, i) dropped)."""
    out = []
    for i in range(len(labels)):
        pos, neg = [], []
        for j in range(len(ref_labels)):
            d = max(1.0 - float(emb[i] @ ref[j]), 0.0)
            if labels[i] == ref_labels[j]:
                if not (remove_diagonal and i == j):
                    pos.append(-gamma * max(margin + d, 0.0) * (margin - d))
            else:
                neg.append(gamma * max(1.0 + margin - d, 0.0) * (1.0 - margin - d))
        lse = [np.logaddexp.reduce(v) if v else -np.inf for v in (pos, neg)]
        out.append(np.logaddexp(0.0, lse[0] + lse[1]))
    return np.array(out)


@pytest.mark.parametrize("remove_diagonal", [True, False])
@pytest.mark.parametrize(("n", "m"), [(5, 7), (6, 3)])
def test_circle_reference_set_values_and_gradient(n: int, m: int, remove_diagonal: bool) -> None:
    rng = _rng()
    labels, ref_labels = rng.integers(0, 3, size=n), rng.integers(0, 3, size=m)
    emb, ref = _unit(rng.normal(size=(n, 4))), _unit(rng.normal(size=(m, 4)))
    kw = {"gamma": 8.0, "margin": 0.3, "remove_diagonal": remove_diagonal}
    expected = _circle_reference(labels, emb, ref_labels, ref, **kw)
    _close(circle(labels, emb, xp=np, ref_labels=ref_labels, ref_embeddings=ref, **kw), expected)
    loss = lossbridge.get("circle", reduction="sum", ref_labels=ref_labels, ref_embeddings=ref, **kw)
    value, grad = loss.value_and_grad(labels, emb)
    _close(value, expected.sum())
    fd = _fd(lambda e: _circle_reference(labels, e, ref_labels, ref, **kw).sum(), emb)
    _close(grad, fd, rtol=1e-6, atol=1e-7)


def test_circle_reference_set_defaults_to_the_batch() -> None:
    """Only ref_labels or only ref_embeddings given: the other is the batch's (as Keras); the batch as an
    explicit reference set has the same values, its gradient the query side only (a constant reference)."""
    rng = _rng()
    labels = np.array([0, 0, 1, 1, 2, 2])
    emb = _unit(rng.normal(size=(6, 3)))
    kw = {"gamma": 8.0, "margin": 0.25, "remove_diagonal": True}
    own = circle(labels, emb, xp=np, **kw)
    _close(own, _circle_reference(labels, emb, labels, emb, **kw))
    _close(circle(labels, emb, xp=np, ref_labels=labels, **kw), own)
    _close(circle(labels, emb, xp=np, ref_embeddings=emb, **kw), own)
    g_const = lossbridge.get("circle", reduction="sum", ref_embeddings=emb, **kw).grad(labels, emb)
    fd = _fd(lambda e: _circle_reference(labels, e, labels, emb, **kw).sum(), emb)
    _close(g_const, fd, rtol=1e-6, atol=1e-7)


def test_circle_reference_parameters_take_lists_and_validate() -> None:
    labels = np.array([0, 1])
    emb = _unit(np.array([[1.0, 0.2], [0.1, 1.0]]))
    loss = lossbridge.get("circle", ref_labels=[0, 1, 1], ref_embeddings=emb[[0, 1, 1]].tolist(), reduction="none")
    assert loss(labels, emb).shape == (2,)
    with pytest.raises(ParameterError, match="ref_embeddings"):
        lossbridge.get("circle", ref_embeddings="bank")


# -- triplet margin along another axis --------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -2])
def test_triplet_margin_axis_values_and_gradient(axis: int) -> None:
    rng = _rng()
    a, p, n = rng.normal(size=(3, 3, 4, 5))

    def reference(a: np.ndarray, p: np.ndarray, n: np.ndarray) -> np.ndarray:
        d_ap = (np.sum((a - p) ** 2, axis=axis) + 1e-6) ** 0.5
        d_an = (np.sum((a - n) ** 2, axis=axis) + 1e-6) ** 0.5
        return np.maximum(0.5 + d_ap - d_an, 0.0)

    expected = reference(a, p, n)
    _close(triplet_margin(a, p, n, xp=np, margin=0.5, axis=axis), expected)
    loss = lossbridge.get("triplet_margin", margin=0.5, axis=axis, reduction="sum")
    value, grads = loss.value_and_grad(a, p, n)
    _close(value, expected.sum())
    for k, g in enumerate(grads):
        def f(x: np.ndarray, k: int = k) -> float:
            args = [a, p, n]
            args[k] = x
            return float(reference(*args).sum())

        _close(g, _fd(f, [a, p, n][k]), rtol=1e-6, atol=1e-7)


def test_triplet_margin_axis_is_an_integer() -> None:
    with pytest.raises(ParameterError, match="axis"):
        lossbridge.get("triplet_margin", axis=0.5)


# -- CTC on one unbatched sequence ----------------------------------------------------------------------
def _ctc_brute_force(logp: np.ndarray, labels: list[int], blank: int = 0) -> float:
    """-log of the summed probability of every path (frames x classes) that collapses to ``labels``."""
    frames, classes = logp.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=frames):
        collapsed = [c for k, c in enumerate(path) if c != blank and (k == 0 or c != path[k - 1])]
        if collapsed == labels:
            total += float(np.exp(sum(logp[t, c] for t, c in enumerate(path))))
    return -np.log(total)


def test_ctc_unbatched_spec_inputs_are_one_sequence() -> None:
    """Spec inputs (T,), (T, C), (T,), (T,): the value of a batch of one, a scalar; its gradient too."""
    rng = _rng()
    logits = rng.normal(size=(5, 3))
    labels = np.array([1, 1, 0, 0, 0])
    lpad, fpad = np.array([0.0, 0.0, 1.0, 1.0, 1.0]), np.zeros(5)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    value = ctc(labels, logits, lpad, fpad, xp=np)
    assert np.shape(value) == ()
    _close(value, _ctc_brute_force(logp, [1, 1]))
    _close(value, ctc(labels[None], logits[None], lpad[None], fpad[None], xp=np)[0])
    (g,) = ctc_vjp(labels, logits, lpad, fpad, np.asarray(1.0), xp=np)
    assert g.shape == (5, 3)
    _close(g, _fd(lambda x: float(ctc(labels, x, lpad, fpad, xp=np)), logits), rtol=1e-6, atol=1e-8)


def test_ctc_torch_unbatched_native_call_on_numpy() -> None:
    """torch's unbatched form ((S,) targets, 0-d lengths) under convention='torch', against brute force."""
    rng = _rng()
    logp = np.log(rng.dirichlet(np.ones(3), size=4))
    targets = np.array([2, 1])
    loss = lossbridge.get("CTCLoss", convention="torch", reduction="none")
    value = loss(targets, logp, np.asarray(4), np.asarray(2))
    assert np.shape(value) == ()
    _close(value, _ctc_brute_force(logp, [2, 1]))
    _close(loss(targets, logp, np.array([3]), np.array([2])), _ctc_brute_force(logp[:3], [2, 1]))
    mean = lossbridge.get("CTCLoss", convention="torch")(targets, logp, np.asarray(4), np.asarray(2))
    _close(mean, _ctc_brute_force(logp, [2, 1]) / 2)


# -- Optax's dice rank expansion --------------------------------------------------------------------
def _dice_reference(logits: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Optax's dice_loss on one channel: a sigmoid, per-sample soft Dice over the spatial axes, smooth 1."""
    p = 1.0 / (1.0 + np.exp(-logits))
    axes = tuple(range(1, p.ndim))
    inter, ps, ts = (np.sum(p * masks, axis=axes), np.sum(p, axis=axes), np.sum(masks, axis=axes))
    return 1.0 - (inter + 1.0) / (inter + 0.5 * (ps - inter) + 0.5 * (ts - inter) + 1.0)


@pytest.mark.parametrize("lower", ["predictions", "targets"])
def test_optax_dice_expands_the_lower_rank_input(lower: str) -> None:
    rng = _rng()
    logits = rng.normal(size=(2, 4, 3, 1))
    masks = (rng.random(size=(2, 4, 3, 1)) > 0.5).astype(float)
    expected = _dice_reference(logits[..., 0], masks[..., 0])
    if lower == "predictions":
        logits = logits[..., 0]
    else:
        masks = masks[..., 0]
    loss = lossbridge.get("dice_loss", convention="optax")
    _close(loss(masks, logits), expected)
    grad = lossbridge.get("dice_loss", convention="optax", reduction="sum").grad(masks, logits)
    assert grad.shape == logits.shape
    fd = _fd(lambda x: float(_dice_reference(x if x.ndim == 3 else x[..., 0],
                                             masks if masks.ndim == 3 else masks[..., 0]).sum()), logits)
    _close(grad, fd, rtol=1e-6, atol=1e-8)


def test_expand_rank_is_optax_dice_only() -> None:
    assert InputRules().expand_rank is False
    assert lossbridge.spec("dice_loss", convention="optax").conventions["optax"].inputs.expand_rank is True
    with pytest.raises(lossbridge.errors.InputError):  # lossbridge's own convention: equal shapes
        lossbridge.get("dice")(np.ones((2, 3, 1)), np.full((2, 3), 0.5))


# -- Adafactor's Optax options and Adadelta without a learning rate ---------------------------------
def _adafactor_reference(start: list[np.ndarray], grads: list[list[np.ndarray]], *, lr: float | None,
                         decay_rate: float = 0.8, decay_offset: float = 0.0, eps: float = 1e-30,
                         clipping: float | None = 1.0, momentum: float | None = None, wd: float | None = None,
                         param_scale: bool = True) -> list[np.ndarray]:
    """Shazeer & Stern with Optax's chain: full second moment (nothing factored), update clipping, lr,
    parameter scale max(1e-3, RMS), a momentum ema without bias correction, decayed weights, minus."""
    params = [p.copy() for p in start]
    v = [np.zeros_like(p) for p in params]
    m = [np.zeros_like(p) for p in params]
    for t, gs in enumerate(grads, start=1):
        beta = 1.0 - (t - decay_offset) ** (-decay_rate)
        for k, (p, g) in enumerate(zip(params, gs, strict=True)):
            v[k] = beta * v[k] + (1.0 - beta) * (g * g + eps)
            u = g / np.sqrt(v[k])
            if clipping is not None:
                u = u / max(1.0, np.sqrt(np.mean(u * u)) / clipping)
            if lr is not None:
                u = u * lr
            if param_scale:
                u = u * max(np.sqrt(np.mean(p * p)), 1e-3)
            if momentum is not None:
                m[k] = (1.0 - momentum) * u + momentum * m[k]
                u = m[k]
            if wd is not None:
                u = u + wd * p
            params[k] = p - u
    return params


ADAFACTOR_OPTIONS = [
    ({}, {"lr": None}),
    ({"learning_rate": None, "weight_decay_rate": None}, {"lr": None}),
    ({"learning_rate": 0.1, "decay_rate": 0.5, "decay_offset": -2}, {"lr": 0.1, "decay_rate": 0.5, "decay_offset": -2}),
    ({"learning_rate": 0.1, "clipping_threshold": None, "multiply_by_parameter_scale": False},
     {"lr": 0.1, "clipping": None, "param_scale": False}),
    ({"learning_rate": 0.1, "momentum": 0.9, "dtype_momentum": "float64", "weight_decay_rate": 0.2},
     {"lr": 0.1, "momentum": 0.9, "wd": 0.2}),
    ({"learning_rate": 0.1, "eps": 1e-3, "factored": False, "min_dim_size_to_factor": 1}, {"lr": 0.1, "eps": 1e-3}),
]


@pytest.mark.parametrize(("native", "reference"), ADAFACTOR_OPTIONS, ids=[str(n) for n, _ in ADAFACTOR_OPTIONS])
def test_adafactor_optax_options(native: dict[str, Any], reference: dict[str, Any]) -> None:
    rng = _rng()
    start = [rng.normal(size=(3,)), rng.normal(size=(2, 3))]
    grads = [[rng.normal(size=p.shape) for p in start] for _ in range(6)]
    opt = lossbridge.get("adafactor", convention="optax", decay_dtype=None, **native)
    params = [p.copy() for p in start]
    for gs in grads:
        opt.step(params, [g.copy() for g in gs])
    for got, want in zip(params, _adafactor_reference(start, grads, **reference), strict=True):
        _close(got, want, rtol=1e-12)


def test_adafactor_momentum_accumulator_rounded_through_float32() -> None:
    """dtype_momentum=float32 (Optax's default): the stored ema is the float32 rounding of the new one."""
    rng = _rng()
    param, grad = [rng.normal(size=(4,))], [rng.normal(size=(4,))]
    opt = lossbridge.get("adafactor", convention="optax", learning_rate=0.1, momentum=0.5)
    assert opt.bound.hyper["momentum_dtype"] == "float32"
    state = opt.init([p.copy() for p in param])
    _, state = opt.update([g.copy() for g in grad], state, [p.copy() for p in param])
    m = state.slots[0]["m"]
    assert m.dtype == np.float64 and np.array_equal(m, m.astype(np.float32).astype(np.float64))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"momentum": 1.5}, r"'momentum' expects float in \[0, 1\] or None"),
        ({"dtype_momentum": "float16"}, r"'momentum_dtype' expects a dtype"),
        ({"clipping_threshold": 0.0}, r"'clip_threshold' expects float in \(0, inf\), got 0.0"),
        ({"learning_rate": -1.0}, r"'lr' expects float in \[0, inf\), got -1.0"),
    ],
)
def test_adafactor_option_validation(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        lossbridge.get("adafactor", convention="optax", **params)


def test_adadelta_without_learning_rate_ascends() -> None:
    """Optax's adadelta(learning_rate=None): theta += d, d = sqrt(u + eps) / sqrt(v + eps) * g (also the
    convention's default, as Optax's; learning_rate=1.0 descends)."""
    opt = lossbridge.get("adadelta", convention="optax", learning_rate=None)
    assert opt.bound.hyper["lr"] is None
    params = [np.array([1.0, -2.0])]
    g = np.array([0.5, 3.0])
    opt.step(params, [g.copy()])
    v = 0.1 * g * g
    d = np.sqrt(1e-6) / np.sqrt(v + 1e-6) * g
    _close(params[0], np.array([1.0, -2.0]) + d)
    assert lossbridge.get("adadelta", convention="optax").bound.hyper["lr"] is None
    descent = lossbridge.get("adadelta", convention="optax", learning_rate=1.0)
    params = [np.array([1.0, -2.0])]
    descent.step(params, [g.copy()])
    _close(params[0], np.array([1.0, -2.0]) - d)


# -- the negated keyword ----------------------------------------------------------------------------
def test_convention_kwargs_negation() -> None:
    spec = lossbridge.spec("adafactor", convention="optax")
    assert translate_kwargs(spec, "optax", {"decay_rate": 0.7}) == {"beta2_decay": -0.7}
    assert translate_kwargs(spec, "optax", {"decay_rate": None}) == {"beta2_decay": None}
    scheduled = translate_kwargs(spec, "optax", {"decay_rate": lambda count: 0.5 + count})["beta2_decay"]
    assert scheduled(2) == -2.5
    array = translate_kwargs(spec, "optax", {"decay_rate": np.array(0.6)})["beta2_decay"]
    assert float(array) == -0.6
    with pytest.raises(ParameterError, match="either"):
        translate_kwargs(spec, "optax", {"decay_rate": 0.7, "beta2_decay": -0.7})
