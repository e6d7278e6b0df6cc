"""The JAX CTC fast path under ``convention="optax"`` (Optax's ``ctc_loss`` kernel) computes the spec.

``lossbridge.get("ctc", backend="jax", convention="optax")`` runs ``optax.losses.ctc_loss`` for calls in
Optax's own form; these tests hold it to the one definition: values and gradients with respect to the
logits against the spec's ``fn`` and ``vjp`` called directly on NumPy in float64 (the spec's inputs built
here from Optax's arguments as the convention's input rule says: the first ``L`` labels padded to the
frame count, suffix label paddings, no frame of a sequence with more labels than frames), relative error
``<= 1e-10``, eagerly and under ``jax.jit``, for every reduction the convention offers, over batches
mixing repeated labels, empty labels, full-length labels, infeasible sequences (labels plus repeats past
the unpadded frames), labels longer than the frames, padded frames in the middle, paddings other than
0/1, and a case where Optax's default ``log_epsilon`` (-1e5) would give another value. The value checks
stay. (The generic JAX path is not evaluated here: eagerly it takes ~15 s on this machine, and its
agreement with the spec is the conformance kit's.)
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lossbridge  # noqa: E402
from lossbridge.errors import InputError  # noqa: E402

REDUCTIONS = ("none", "mean", "sum", "batchmean", "sum_over_batch_size")
TOL = 1e-10


def _batch(rng: np.random.Generator, frames: int = 6, size: int = 4, classes: int = 5, blank: int = 0) -> list:
    """Optax's (logits, logit_paddings, labels, label_paddings): one row per kind of case."""
    others = [c for c in range(classes) if c != blank]
    rows = []
    for kind in ("plain", "repeated", "empty", "full", "infeasible", "mid_pad", "plain", "repeated"):
        labels = rng.choice(others, size=size)
        count = int(rng.integers(1, size + 1))
        pads = np.zeros(frames)
        if kind == "repeated":
            labels[1] = labels[0]
            count = max(count, 2)
        elif kind == "empty":
            count = 0
        elif kind == "full":
            count = size
        elif kind == "infeasible":  # 4 labels with 3 repeats need 7 frames: 6 - 1 padded are too few
            labels[:] = labels[0]
            count, pads[-1] = size, 1.0
        elif kind == "mid_pad":
            pads[1] = 1.0
        else:
            pads[frames - int(rng.integers(0, 2)) :] = 1.0
        rows.append((rng.normal(size=(frames, classes)) * 2.0, pads, labels, (np.arange(size) >= count) * 1.0))
    return [np.stack([r[k] for r in rows]) for k in range(4)]


def _spec_form(logits, logit_paddings, labels, label_paddings):  # type: ignore[no-untyped-def]
    """The spec's (labels, logits, label_paddings, logit_paddings) from Optax's arguments (NumPy)."""
    n, frames = logit_paddings.shape
    count = (label_paddings == 0).sum(axis=-1)
    fitted = np.zeros((n, frames), np.int64)
    width = min(frames, labels.shape[1])
    fitted[:, :width] = labels[:, :width]
    suffix = (np.arange(frames)[None, :] >= count[:, None]) * 1.0
    frame_pad = np.where((count > frames)[:, None], 1.0, logit_paddings)
    return fitted, logits, suffix, frame_pad


def _truth(loss, args, reduction, **params):  # type: ignore[no-untyped-def]
    """The spec's value and d/d logits (its fn and vjp on NumPy, float64) for this reduction."""
    spec = loss.spec
    inputs = _spec_form(*[np.asarray(a) for a in args])
    kw = {"blank": 0, "from_logits": True, "zero_infinity": False, "normalize_by_length": False, **params}
    values = spec.fn(*inputs, xp=np, **kw)
    n = values.shape[0]
    if reduction == "none":
        value, cot = values, np.ones(n)
    elif reduction == "sum":
        value, cot = values.sum(), np.ones(n)
    elif reduction == "batchmean":
        value, cot = values.sum() / n, np.full(n, 1.0 / n)
    else:  # mean, sum_over_batch_size
        value, cot = values.mean(), np.full(n, 1.0 / n)
    (grad,) = spec.vjp(*inputs, cot, xp=np, **kw)
    return value, grad


def _close(got, want) -> None:  # type: ignore[no-untyped-def]
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.array_equal(np.isfinite(got), np.isfinite(want)), (got, want)
    assert np.array_equal(got[~np.isfinite(got)], want[~np.isfinite(want)])
    fin = np.isfinite(want)
    scale = max(float(np.max(np.abs(want[fin]), initial=0.0)), 1e-300)
    assert float(np.max(np.abs(got[fin] - want[fin]), initial=0.0)) <= TOL * scale, (got, want)


def _value_and_grad(loss, args, reductions, jit):  # type: ignore[no-untyped-def]
    """Per reduction: the loss's value and d/d logits (the cotangent: ones of the value's shape), all in
    one function (one compilation under ``jit``)."""
    def all_of(x):  # type: ignore[no-untyped-def]
        out = []
        for reduction in reductions:
            value, pullback = jax.vjp(lambda y, r=reduction: loss(y, *args[1:], reduction=r), x)
            out.append((value, pullback(jnp.ones_like(value))[0]))
        return out

    return (jax.jit(all_of) if jit else all_of)(args[0])


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_optax_ctc_fast_path_equals_the_spec(jit: bool) -> None:
    """Every reduction the convention offers, values and gradients, at a batch of every kind of case."""
    loss = lossbridge.get("ctc", backend="jax", convention="optax")
    assert loss.native == "optax.losses.ctc_loss"  # the override took it
    args = [jnp.asarray(a) for a in _batch(np.random.default_rng(0))]
    for reduction, (value, grad) in zip(REDUCTIONS, _value_and_grad(loss, args, REDUCTIONS, jit), strict=True):
        want_value, want_grad = _truth(loss, args, reduction)
        assert value.dtype == jnp.float64 and grad.dtype == jnp.float64
        _close(value, want_value)
        _close(grad, want_grad)
        if reduction == "none":  # the batch holds a sequence without an alignment: inf, zero gradient
            assert np.isinf(np.asarray(value)).any()


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_optax_ctc_fast_path_other_blank_zero_infinity_float_labels(jit: bool) -> None:
    """blank_id=2, zero_infinity, whole-number float labels; labels equal to the blank are the spec's too."""
    loss = lossbridge.get("ctc", backend="jax", convention="optax", blank_id=2, zero_infinity=True)
    assert loss.native == "optax.losses.ctc_loss"
    logits, fpad, labels, lpad = _batch(np.random.default_rng(1), blank=2)
    labels[0, 0] = 2  # a label that is the blank
    args = [jnp.asarray(a) for a in (logits, fpad, labels.astype(np.float64), lpad)]
    for reduction, (value, grad) in zip(("none", "mean"), _value_and_grad(loss, args, ("none", "mean"), jit),
                                        strict=True):
        want_value, want_grad = _truth(loss, args, reduction, blank=2, zero_infinity=True)
        _close(value, want_value)
        _close(grad, want_grad)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_optax_ctc_fast_path_labels_longer_than_frames(jit: bool) -> None:
    """Label arrays wider than the frames: a sequence with more labels than frames has no alignment."""
    loss = lossbridge.get("ctc", backend="jax", convention="optax")
    rng = np.random.default_rng(2)
    frames, size = 4, 7
    logits = rng.normal(size=(3, frames, 5))
    labels = rng.integers(1, 5, size=(3, size))
    counts = np.array([2, 4, 6])  # the last: 6 labels in 4 frames
    args = [jnp.asarray(a) for a in (logits, np.zeros((3, frames)), labels, (np.arange(size) >= counts[:, None]) * 1.0)]
    for reduction, (value, grad) in zip(("none", "sum"), _value_and_grad(loss, args, ("none", "sum"), jit),
                                        strict=True):
        want_value, want_grad = _truth(loss, args, reduction)
        _close(value, want_value)
        _close(grad, want_grad)
    assert np.isinf(np.asarray(loss(*args))[2])


def test_optax_ctc_fast_path_where_optax_default_log_epsilon_differs() -> None:
    """Two equal labels in exactly three frames, the middle frame far from the blank: the spec's loss is
    about 2e5, Optax's default log_epsilon=-1e5 gives about 1e5; the fast path gives the spec's."""
    loss = lossbridge.get("ctc", backend="jax", convention="optax")
    logits = np.zeros((1, 3, 3))
    logits[0, 1, 1] = 2e5
    args = [jnp.asarray(a) for a in (logits, np.zeros((1, 3)), np.array([[1, 1]]), np.zeros((1, 2)))]
    ((value, grad),) = _value_and_grad(loss, args, ("none",), True)
    want_value, want_grad = _truth(loss, args, "none")
    assert float(want_value[0]) > 1.9e5
    _close(value, want_value)
    _close(grad, want_grad)


def test_optax_ctc_fast_path_keeps_the_value_checks_and_paddings() -> None:
    loss = lossbridge.get("ctc", backend="jax", convention="optax")
    logits, fpad, labels, lpad = _batch(np.random.default_rng(4))
    with pytest.raises(InputError, match="fractional"):  # the convention's label cast refuses fractions
        loss(*[jnp.asarray(a) for a in (logits, fpad, labels + 0.5, lpad)])
    loss(*[jnp.asarray(a) for a in (logits, fpad, labels + 0.5, lpad)], validate=False)  # cast, not checked
    # paddings other than 0/1 (the Optax convention checks no ranges) are read as the spec reads them:
    # a frame is skipped where its padding is > 0, a label counts where its padding is 0
    bad = fpad.copy()
    bad[0, 0], bad[1, 2] = 0.5, -0.5
    odd = [jnp.asarray(a) for a in (logits, bad, labels, np.where(lpad > 0, 0.5, 0.0))]
    want_value, want_grad = _truth(loss, odd, "none")
    _close(loss(*odd), want_value)
    ((value, grad),) = _value_and_grad(loss, odd, ("none",), True)
    _close(value, want_value)
    _close(grad, want_grad)


def test_optax_ctc_fast_path_float32_and_scope() -> None:
    loss = lossbridge.get("ctc", backend="jax", convention="optax")
    args = _batch(np.random.default_rng(5))
    args32 = [jnp.asarray(a, jnp.int32 if k == 2 else jnp.float32) for k, a in enumerate(args)]
    ((value, grad),) = _value_and_grad(loss, args32, ("none",), True)
    assert value.dtype == jnp.float32 and grad.dtype == jnp.float32
    want_value, want_grad = _truth(loss, args, "none")
    fin = np.isfinite(want_value)
    np.testing.assert_allclose(np.asarray(value)[fin], want_value[fin], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(grad), want_grad, atol=1e-4)
    # Optax's convention only: lossbridge's own convention is the generic function, and so are the options
    # and parameters the kernel does not take (check_finite, from_logits=False)
    assert not hasattr(lossbridge.get("ctc", backend="jax"), "native")
    assert not hasattr(lossbridge.get("ctc", backend="jax", convention="optax", check_finite=True), "native")
    assert not hasattr(lossbridge.get("ctc", backend="jax", convention="optax", from_logits=False), "native")
