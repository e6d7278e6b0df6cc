"""The CTC spec against brute-force enumeration of every alignment (Graves et al., 2006).

Values come from summing the probability of every frame path that collapses to the labels; the
closed-form gradient is checked against a sixth-order central difference of that value (error far
below 1e-10 for these smooth functions) and against the properties of the posterior occupancy.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import ParameterError


def _rng() -> np.random.Generator:
    return np.random.default_rng(11)


def _collapse(path: tuple[int, ...], blank: int) -> tuple[int, ...]:
    """The many-to-one map B: merge repeats, then drop blanks."""
    merged = [c for k, c in enumerate(path) if k == 0 or c != path[k - 1]]
    return tuple(c for c in merged if c != blank)


def _brute_nll(logp: np.ndarray, labels: tuple[int, ...], blank: int) -> float:
    """-log of the summed probability of every path over the frames of ``logp`` (T, C) collapsing to labels."""
    frames, classes = logp.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=frames):
        if _collapse(path, blank) == labels:
            total += np.exp(sum(logp[t, c] for t, c in enumerate(path)))
    return -np.log(total) if total > 0 else np.inf


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _case(lengths: list[int], label_lengths: list[int], frames: int, classes: int, blank: int):
    rng = _rng()
    n = len(lengths)
    logits = 2.0 * rng.normal(size=(n, frames, classes))
    others = [c for c in range(classes) if c != blank]
    labels = rng.choice(others, size=(n, frames))
    labels[0, :2] = others[0]  # a repeated label needs a blank between
    lpad = (np.arange(frames)[None] >= np.array(label_lengths)[:, None]).astype(float)
    fpad = (np.arange(frames)[None] >= np.array(lengths)[:, None]).astype(float)
    return labels, logits, lpad, fpad


def _derivative(total: object, x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Sixth-order central difference of the scalar ``total(x)``: O(h^6) truncation, ~1e-13 rounding."""
    weights = {1: 45.0, 2: -9.0, 3: 1.0}
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        acc = 0.0
        for k, w in weights.items():
            up, down = x.copy(), x.copy()
            up[idx] += k * h
            down[idx] -= k * h
            acc += w * (float(total(up)) - float(total(down)))
        grad[idx] = acc / (60.0 * h)
    return grad


def _normwise(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


# -- values -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("blank", [0, 2])
def test_values_match_enumerated_alignments(blank: int) -> None:
    lengths, label_lengths = [5, 4, 5, 3], [2, 2, 1, 1]
    labels, logits, lpad, fpad = _case(lengths, label_lengths, 5, 3, blank)
    got = lossbridge.get("ctc", blank=blank, reduction="none")(labels, logits, lpad, fpad)
    logp = _log_softmax(logits)
    expected = [
        _brute_nll(logp[b, : lengths[b]], tuple(labels[b, : label_lengths[b]]), blank) for b in range(len(lengths))
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_log_probabilities_are_used_as_given_without_from_logits() -> None:
    labels, logits, lpad, fpad = _case([4, 4], [2, 1], 4, 3, 0)
    scores = _log_softmax(logits) - 0.3  # not normalized: PyTorch uses them as they are
    got = lossbridge.get("ctc", from_logits=False, reduction="none")(labels, scores, lpad, fpad)
    expected = [_brute_nll(scores[b], tuple(labels[b, : (2, 1)[b]]), 0) for b in range(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_padded_frames_are_skipped_wherever_they_are() -> None:
    labels, logits, lpad, _ = _case([4], [2], 4, 3, 0)
    fpad = np.array([[0.0, 1.0, 0.0, 0.0]])
    got = lossbridge.get("ctc", reduction="none")(labels, logits, lpad, fpad)
    kept = _log_softmax(logits)[0, [0, 2, 3]]
    np.testing.assert_allclose(got, [_brute_nll(kept, tuple(labels[0, :2]), 0)], rtol=1e-12)


def test_no_alignment_is_inf_or_zero() -> None:
    labels = np.array([[1, 1, 2, 0]])  # 1 1 2 needs 4 frames
    logits = _rng().normal(size=(1, 4, 3))
    lpad = np.array([[0.0, 0.0, 0.0, 1.0]])
    fpad = np.array([[0.0, 0.0, 0.0, 1.0]])
    assert np.isinf(lossbridge.get("ctc", reduction="none")(labels, logits, lpad, fpad)[0])
    zeroed = lossbridge.get("ctc", zero_infinity=True, reduction="none")
    np.testing.assert_array_equal(zeroed(labels, logits, lpad, fpad), [0.0])
    feasible = lossbridge.get("ctc", reduction="none")(labels, logits, lpad, np.zeros((1, 4)))
    assert np.isfinite(feasible[0])


def test_padding_label_values_do_not_matter() -> None:
    labels, logits, lpad, fpad = _case([5, 5], [2, 3], 5, 4, 0)
    other = np.where(lpad > 0, labels[:, :1], labels)  # padding equal to a real label
    loss = lossbridge.get("ctc", reduction="none")
    np.testing.assert_allclose(loss(other, logits, lpad, fpad), loss(labels, logits, lpad, fpad), rtol=1e-13)


def test_normalize_by_length_divides_by_the_label_count_at_least_one() -> None:
    labels, logits, lpad, fpad = _case([4, 4, 3], [2, 0, 1], 4, 3, 0)  # an empty label sequence: all blanks
    logp = _log_softmax(logits)
    plain = [_brute_nll(logp[b, : (4, 4, 3)[b]], tuple(labels[b, : (2, 0, 1)[b]]), 0) for b in range(3)]
    np.testing.assert_allclose(plain[1], -logp[1, :, 0].sum(), rtol=1e-13)
    got = lossbridge.get("ctc", normalize_by_length=True, reduction="none")(labels, logits, lpad, fpad)
    np.testing.assert_allclose(got, np.array(plain) / [2.0, 1.0, 1.0], rtol=1e-12)


def test_spec_function_traces_the_documented_probability() -> None:
    spec = lossbridge.spec("ctc")
    out = spec.fn(np.array([[1, 1]]), np.zeros((1, 2, 2)), np.array([[0.0, 1.0]]), np.zeros((1, 2)), xp=np)
    np.testing.assert_allclose(out, [-np.log(0.75)], rtol=1e-14)  # a-a, a-blank, blank-a


# -- the closed-form gradient -----------------------------------------------------------------------
GRADIENT_CASES = {
    "logits": ({}, False),
    "log_probs": ({"from_logits": False}, True),
    "normalized_blank2": ({"normalize_by_length": True, "blank": 2}, False),
}


@pytest.mark.parametrize("case", sorted(GRADIENT_CASES))
def test_gradient_matches_sixth_order_differences_to_1e10(case: str) -> None:
    params, log_inputs = GRADIENT_CASES[case]
    blank = params.get("blank", 0)
    labels, logits, lpad, fpad = _case([6, 5, 6], [3, 2, 1], 6, 4, blank)
    fpad[2, 2] = 1.0  # a padded frame in the middle
    x = _log_softmax(logits) - 0.2 if log_inputs else logits  # log-probabilities used as given, unnormalized
    weight = np.array([0.5, 2.0, 1.5])
    loss = lossbridge.get("ctc", reduction="sum", **params)
    value, grad = loss.value_and_grad(labels, x, lpad, fpad, sample_weight=weight)
    expected = _derivative(lambda z: loss(labels, z, lpad, fpad, sample_weight=weight), x)
    assert _normwise(grad, expected) < 1e-10
    assert np.isfinite(value)


def test_gradient_is_softmax_minus_occupancy_and_occupancy_is_a_distribution() -> None:
    labels, logits, lpad, fpad = _case([5, 5], [2, 1], 5, 3, 0)
    g_logp = lossbridge.get("ctc", from_logits=False, reduction="sum").grad(labels, _log_softmax(logits), lpad, fpad)
    occupancy = -g_logp  # d loss / d log p = -gamma, the expected count of class c at frame t
    np.testing.assert_allclose(occupancy.sum(axis=-1), 1.0, rtol=1e-13)
    assert occupancy.min() >= 0.0
    g_logits = lossbridge.get("ctc", reduction="sum").grad(labels, logits, lpad, fpad)
    np.testing.assert_allclose(g_logits, np.exp(_log_softmax(logits)) - occupancy, rtol=1e-12, atol=1e-15)


def test_padded_frames_and_infeasible_sequences_get_zero_gradient() -> None:
    labels = np.array([[1, 1, 2, 0], [2, 1, 0, 0]])  # row 0: 1 1 2 needs 4 frames, gets 3
    logits = _rng().normal(size=(2, 4, 3))
    lpad = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    fpad = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    for zero_infinity in (True, False):
        loss = lossbridge.get("ctc", zero_infinity=zero_infinity, reduction="sum")
        grad = loss.grad(labels, logits, lpad, fpad)
        np.testing.assert_array_equal(grad[0], 0.0)  # no alignment: zero, never NaN
        np.testing.assert_array_equal(grad[1, 2], 0.0)  # a padded frame
        assert np.all(np.abs(grad[1, [0, 1, 3]]) > 0)


@pytest.mark.parametrize("bad", [{"blank": -1}, {"blank": 1.5}, {"zero_infinity": "yes"},
                                 {"normalize_by_length": 1}])
def test_invalid_parameters_are_named(bad: dict) -> None:
    with pytest.raises(ParameterError, match=next(iter(bad))):
        lossbridge.get("ctc", **bad)


@pytest.mark.parametrize("seed", range(5))
def test_float32_posteriors_of_a_sure_alignment_are_exact(seed: int) -> None:
    """As many distinct labels as frames: one alignment, so d loss / d logits = softmax - one_hot. In
    float32 the posteriors are normalized per frame (not by the last alpha), so the gradient keeps
    float32's own precision (Optax's test asserts rtol 1e-6)."""
    rng = np.random.default_rng(seed)
    n, frames, classes = 4, 7, 13
    logits = rng.normal(size=(n, frames, classes)).astype(np.float32)
    labels = np.stack([rng.permutation(np.arange(1, classes))[:frames] for _ in range(n)])
    lengths = rng.integers(3, 6, size=n)
    pads = (np.arange(frames)[None] >= lengths[:, None]).astype(np.float32)
    grad = lossbridge.get("ctc", reduction="sum").grad(labels, logits, pads, pads)
    z = logits.astype(np.float64)
    expected = np.exp(z - z.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    expected[np.arange(n)[:, None], np.arange(frames)[None], labels] -= 1.0
    expected *= (pads == 0)[..., None]
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=0)
