"""Optax's per-call forms on the JAX backend, against Optax itself in float64 (x64 is on here).

Regression tests for the causes that made Optax's own loss tests fail with lossbridge's objects:
``ranking_softmax_loss``'s ``reduce_fn`` / ``where`` / ``weights`` (a mask of valid items is spec
data, :class:`lossbridge.spec.Masking`, applied by the core), ``dice_loss``'s per-call ``reduction``
(its class reduction) and ``ignore_background``, ``sigmoid_focal_loss`` with ``gamma`` traced under
``jax.jit``, and the cross-entropy's derivative along the labels (``jax.test_util.check_grads``).
Every expected number comes from ``optax.losses``; relative error <= 1e-10.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossbridge

TOL = 1e-10


def _close(actual: Any, expected: Any, tol: float = TOL) -> None:
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    assert np.all(np.isfinite(a) == np.isfinite(e))
    scale = max(float(np.max(np.abs(e))) if e.size else 0.0, 1e-300)
    assert float(np.max(np.abs(a - e), initial=0.0)) / scale <= tol, (a, e)


def _ranking_data() -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    rng = np.random.default_rng(0)
    scores = jnp.asarray(rng.normal(size=(2, 3, 5)))
    labels = jnp.asarray(rng.integers(0, 3, size=(2, 3, 5)).astype(np.float64))
    where = rng.random((2, 3, 5)) < 0.7
    where[0, 1] = False  # a list with no valid item
    weights = jnp.asarray(rng.uniform(0.5, 2.0, size=(2, 3, 5)))
    return scores, labels, jnp.asarray(where), weights


RANKING_CASES = {
    "default": {},
    "sum": {"reduce_fn": jnp.sum},
    "none": {"reduce_fn": None},
    "where": {"where": True},
    "where-sum": {"where": True, "reduce_fn": jnp.sum},
    "where-none": {"where": True, "reduce_fn": None},
    "weights": {"weights": True},
    "where-weights-mean": {"where": True, "weights": True, "reduce_fn": jnp.mean},
}


@pytest.mark.parametrize("case", sorted(RANKING_CASES))
def test_optax_ranking_softmax_per_call_keywords(case: str) -> None:
    scores, labels, where, weights = _ranking_data()
    kw = dict(RANKING_CASES[case])
    if kw.pop("where", False):
        kw["where"] = where
    if kw.pop("weights", False):
        kw["weights"] = weights
    ours = lossbridge.get("ranking_softmax_loss", backend="jax", convention="optax")
    _close(ours(scores, labels, **kw), optax.losses.ranking_softmax_loss(scores, labels, **kw))

    def total(f: Any) -> Any:
        return lambda s: jnp.sum(f(s, labels, **kw))

    _close(jax.grad(total(ours))(scores), jax.grad(total(optax.losses.ranking_softmax_loss))(scores))


def test_optax_ranking_softmax_all_masked_and_zero_labels_are_zero_without_nan() -> None:
    ours = lossbridge.get("ranking_softmax_loss", backend="jax", convention="optax")
    scores, labels = jnp.asarray([0.0, 3.0, 1.0, 2.0]), jnp.asarray([0.0, 0.0, 1.0, 1.0])
    none = jnp.zeros(4, dtype=bool)
    for kw in ({"where": none}, {"where": none, "reduce_fn": jnp.sum}):
        expected = optax.losses.ranking_softmax_loss(scores, labels, **kw)
        _close(ours(scores, labels, **kw), expected)
        grad = jax.grad(lambda s, kw=kw: ours(s, labels, **kw))(scores)
        _close(grad, jax.grad(lambda s, kw=kw: optax.losses.ranking_softmax_loss(s, labels, **kw))(scores))
    zero = jnp.zeros(4)
    assert np.all(np.isfinite(jax.grad(lambda s: ours(s, zero, reduce_fn=jnp.mean))(scores)))
    _close(ours(scores, zero, reduce_fn=jnp.sum), optax.losses.ranking_softmax_loss(scores, zero, reduce_fn=jnp.sum))


def test_optax_ranking_softmax_under_jit_and_vmap() -> None:
    scores, labels, where, _ = _ranking_data()
    ours = lossbridge.get("ranking_softmax_loss", backend="jax", convention="optax")
    got = jax.jit(jax.vmap(lambda s, y, w: ours(s, y, where=w, reduce_fn=jnp.sum)))(scores, labels, where)
    want = jax.vmap(lambda s, y, w: optax.losses.ranking_softmax_loss(s, y, where=w, reduce_fn=jnp.sum))(
        scores, labels, where
    )
    _close(got, want)


def test_optax_where_masking_is_spec_data() -> None:
    """The mask of valid items is declared by the spec (data), which the core applies on every backend."""
    masking = lossbridge.spec("ranking_softmax").masking
    assert masking is not None and masking.item_weights == "labels"
    assert lossbridge.spec("categorical_crossentropy").masking.rows


def _dice_data() -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(2, 4, 5, 3)))
    targets = jnp.asarray(np.eye(3)[rng.integers(0, 3, size=(2, 4, 5))])
    return logits, targets


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_background", [False, True])
def test_optax_dice_per_call_class_reduction(reduction: str, ignore_background: bool) -> None:
    """Optax's dice_loss reduction= per call is over classes ('none': (N, C) values): class_reduction."""
    logits, targets = _dice_data()
    kw = {"reduction": reduction, "ignore_background": ignore_background}
    expected = optax.losses.dice_loss(logits, targets, **kw)
    per_call = lossbridge.get("dice_loss", backend="jax", convention="optax", ignore_background=ignore_background)
    built = lossbridge.get("dice_loss", backend="jax", convention="optax", class_reduction=reduction,
                           ignore_background=ignore_background)
    _close(per_call(logits, targets, reduction=reduction), expected)
    _close(built(logits, targets), expected)
    grad = jax.grad(lambda x: jnp.sum(per_call(x, targets, reduction=reduction)))(logits)
    _close(grad, jax.grad(lambda x: jnp.sum(optax.losses.dice_loss(x, targets, **kw)))(logits))


def test_optax_sigmoid_focal_traced_gamma_and_alpha() -> None:
    """gamma/alpha traced by jax.jit (Optax's test_extreme_logits_finite_gradients): values, gradients."""
    logits = jnp.asarray([100.0, -100.0, 75.0, -75.0, 50.0, -50.0, 0.3, -1.2])
    labels = jnp.asarray([0.9, 0.1, 0.8, 0.2, 1.0, 0.0, 1.0, 0.0])

    def ours(x: Any, gamma: Any, alpha: Any) -> Any:
        return lossbridge.get("sigmoid_focal_loss", backend="jax", convention="optax", gamma=gamma, alpha=alpha)(
            x, labels
        )

    def native(x: Any, gamma: Any, alpha: Any) -> Any:
        return optax.losses.sigmoid_focal_loss(x, labels, gamma=gamma, alpha=alpha)

    for gamma, alpha in [(0.5, 0.25), (2.0, 0.6)]:
        _close(jax.jit(ours)(logits, gamma, alpha), native(logits, gamma, alpha))
        g_ours = jax.grad(lambda x, g=gamma, a=alpha: jnp.sum(jax.jit(ours)(x, g, a)))(logits)
        g_native = jax.grad(lambda x, g=gamma, a=alpha: jnp.sum(native(x, g, a)))(logits)
        _close(g_ours, g_native, 1e-9)
        # the hyperparameters themselves are differentiable (JAX's autodiff of the spec's function)
        x, y = logits[6:], labels[6:]
        d_ours = jax.grad(lambda g, a=alpha, x=x, y=y: jnp.sum(jax.jit(
            lambda x, g, a: lossbridge.get("sigmoid_focal_loss", backend="jax", convention="optax",
                                           gamma=g, alpha=a)(x, y))(x, g, a)))(gamma)
        d_native = jax.grad(lambda g, a=alpha, x=x, y=y: jnp.sum(
            optax.losses.sigmoid_focal_loss(x, y, gamma=g, alpha=a)))(gamma)
        _close(d_ours, d_native, 1e-9)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "safe_softmax_cross_entropy"])
def test_optax_cross_entropy_tangent_along_the_labels(name: str) -> None:
    """Optax's soft-label cross-entropy is differentiable in the labels (-log_softmax, zero labels too)."""
    from jax.test_util import check_grads

    rng = np.random.default_rng(2)
    logits = jnp.asarray(rng.normal(size=(3, 4)) * 3.0)
    labels = jnp.asarray([[0.0, 1.0, 0.0, 0.0], [0.2, 0.0, 0.8, 0.0], [0.25, 0.25, 0.25, 0.25]])
    ours = lossbridge.get(name, backend="jax", convention="optax")
    native = getattr(optax.losses, name)
    tangent = jnp.asarray(rng.normal(size=(3, 4)))
    _, t_ours = jax.jvp(lambda y: ours(logits, y), (labels,), (tangent,))
    _, t_native = jax.jvp(lambda y: native(logits, y), (labels,), (tangent,))
    _close(t_ours, t_native)
    g_ours = jax.grad(lambda y: jnp.sum(ours(logits, y)))(labels)
    _close(g_ours, jax.grad(lambda y: jnp.sum(native(logits, y)))(labels))
    check_grads(ours, (logits, labels), order=1)


def test_optax_unreduced_empty_batch_is_an_empty_result():
    # Optax's test_mask draws a random mask; when it is all False, preds[mask] is empty and Optax
    # returns an empty array. Unreduced, so is ours (a reduced empty batch stays an error).
    import jax.numpy as jnp

    import lossbridge

    loss = lossbridge.get("softmax_cross_entropy", backend="jax", convention="optax")
    out = loss(jnp.zeros((0, 3)), jnp.zeros((0, 3)))
    assert out.shape == (0,)
