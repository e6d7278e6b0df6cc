"""Drop-in regressions: lossbridge's JAX losses take Optax's per-call arguments and input forms.

Each test compares lossbridge (``convention="optax"``) with the real ``optax.losses`` function on
the same call, values and input gradients, in float64 (the expected numbers come from Optax).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jnp = jax.numpy

import lossbridge  # noqa: E402

RNG = np.random.default_rng(7)


def _lb(name: str) -> Any:
    return lossbridge.get(name, backend="jax", convention="optax")


def _close(a: Any, b: Any, tol: float = 1e-12) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _logits(shape: tuple[int, ...]) -> Any:
    return jnp.asarray(RNG.normal(size=shape))


def _probs(shape: tuple[int, ...], axis: int = -1) -> Any:
    return jax.nn.softmax(_logits(shape), axis=axis)


@pytest.mark.parametrize("axis", [0, 1, (1, 2), None])
@pytest.mark.parametrize("name", ["softmax_cross_entropy", "kl_divergence", "cosine_similarity"])
def test_optax_axis_keyword(name: str, axis: Any) -> None:
    """``axis=`` reads the spec's last axis from another axis (axes flattened), as Optax does."""
    shape = (3, 4, 5)
    if name == "kl_divergence":
        pred, target = jnp.log(_probs(shape)), _probs(shape)
    else:
        pred, target = _logits(shape), _probs(shape)
    native = getattr(optax.losses, name)
    _close(_lb(name)(pred, target, axis=axis), native(pred, target, axis=axis))
    _close(jax.grad(lambda p: _lb(name)(p, target, axis=axis).sum())(pred),
           jax.grad(lambda p: native(p, target, axis=axis).sum())(pred))


@pytest.mark.parametrize("axis", [0, (0, 2)])
def test_optax_axis_keyword_integer_labels(axis: Any) -> None:
    logits = _logits((3, 4, 5))
    nd = logits.ndim
    axes = (axis,) if isinstance(axis, int) else axis
    batch = tuple(s for k, s in enumerate(logits.shape) if k not in axes)
    classes = int(np.prod([logits.shape[a % nd] for a in axes]))
    labels = jnp.asarray(RNG.integers(0, classes, size=batch))
    name = "softmax_cross_entropy_with_integer_labels"
    _close(_lb(name)(logits, labels, axis=axis), getattr(optax.losses, name)(logits, labels, axis=axis))


@pytest.mark.parametrize(
    "name", ["softmax_cross_entropy", "poly_loss_cross_entropy", "kl_divergence", "kl_divergence_with_log_targets",
             "generalized_kl_divergence", "cosine_similarity", "cosine_distance"]
)
@pytest.mark.parametrize("row_mask", [False, True])
def test_optax_where_keyword(name: str, row_mask: bool) -> None:
    """``where=``: masked elements count for nothing (values and gradients), a fully masked row is 0.

    A mask one rank lower is a mask of rows for the softmax cross-entropy (Optax expands it) and
    broadcasts against the trailing axis for the others (as Optax's ``jnp.sum(..., where=)`` does).
    """
    if row_mask and name == "poly_loss_cross_entropy":
        pytest.skip("Optax's poly loss reads a lower-rank mask both ways (softmax: trailing, cross-entropy: rows)")
    shape = (6, 6) if row_mask and name != "softmax_cross_entropy" else (4, 6)
    if "kl" in name:
        pred = jnp.log(_probs(shape))
        target = jnp.log(_probs(shape)) if "log_targets" in name else _probs(shape)
    else:
        pred, target = _logits(shape), _probs(shape)
    where = jnp.asarray(RNG.random(shape[:1] if row_mask else shape) > 0.3).at[0].set(True)
    if "cosine" not in name:  # (a fully masked row: Optax's cosine gradient is 0/0 = nan there, ours 0)
        where = where.at[0].set(False)
    native = getattr(optax.losses, name)
    _close(_lb(name)(pred, target, where=where), native(pred, target, where=where))
    _close(jax.grad(lambda p: _lb(name)(p, target, where=where).sum())(pred),
           jax.grad(lambda p: native(p, target, where=where).sum())(pred))


def test_optax_where_integer_labels() -> None:
    logits = _logits((4, 6))
    labels = jnp.asarray([1, 2, 3, 0])
    where = jnp.ones((4, 6), bool).at[1, 4].set(False).at[3, 5].set(False)
    name = "softmax_cross_entropy_with_integer_labels"
    _close(_lb(name)(logits, labels, where=where), getattr(optax.losses, name)(logits, labels, where=where))


@pytest.mark.parametrize("name", ["squared_error", "l2_loss", "huber_loss", "log_cosh"])
def test_optax_scalar_and_predictions_only(name: str) -> None:
    """0-d inputs give a 0-d loss; ``targets`` left out means zeros (Optax's regression losses)."""
    p, t = jnp.asarray(1.7), jnp.asarray(-0.4)
    native = getattr(optax.losses, name)
    out = _lb(name)(p, t)
    assert out.shape == ()
    _close(out, native(p, t))
    v = _logits((5,))
    _close(_lb(name)(v), native(v))
    _close(_lb(name)(p), native(p))


def test_optax_boolean_and_integer_targets() -> None:
    """Boolean / integer binary targets are cast to the prediction's dtype, as Optax computes them."""
    logits = _logits((3, 4))
    labels = jnp.asarray(RNG.random((3, 4)) > 0.5)
    name = "sigmoid_binary_cross_entropy"
    _close(_lb(name)(logits, labels), optax.losses.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)))
    _close(_lb(name)(logits, labels.astype(jnp.int32)),
           optax.losses.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)))


def test_optax_no_range_checks() -> None:
    """Optax computes on unnormalized log-predictions and targets slightly outside [0, 1]."""
    pred = _logits((3, 4)) + 2.0  # not log-probabilities
    target = _probs((3, 4)) * 1.01
    _close(_lb("kl_divergence")(pred, target), optax.losses.kl_divergence(pred, target))
    _close(_lb("generalized_kl_divergence")(pred, target), optax.losses.generalized_kl_divergence(pred, target))
