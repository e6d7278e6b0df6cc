"""Margin losses against scikit-learn's hinge_loss and float64 NumPy textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import hinge_loss

import lossbridge
from lossbridge import InputError, ParameterError

RNG = np.random.default_rng(17)
N, C = 10, 4
SIGNS = 2.0 * RNG.integers(0, 2, size=N) - 1.0
SCORES = 1.5 * RNG.normal(size=N)
LABELS = RNG.integers(0, C, size=N)
DECISION = RNG.normal(size=(N, C))
W = RNG.uniform(0.0, 2.0, size=N)


@pytest.mark.parametrize("labels", [SIGNS, (SIGNS + 1) / 2], ids=["sign", "binary"])
def test_binary_hinge_matches_sklearn(labels: np.ndarray) -> None:
    loss = lossbridge.get("hinge")
    np.testing.assert_allclose(loss(labels, SCORES), hinge_loss(labels, SCORES), rtol=1e-12)
    np.testing.assert_allclose(
        loss(labels, SCORES, sample_weight=W), hinge_loss(labels, SCORES, sample_weight=W), rtol=1e-12
    )


def test_multiclass_hinge_matches_sklearn_crammer_singer() -> None:
    loss = lossbridge.get("multiclass_hinge")
    expected = hinge_loss(LABELS, DECISION, labels=range(C), sample_weight=W)
    np.testing.assert_allclose(loss(LABELS, DECISION, sample_weight=W), expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_binary_reductions_match_the_textbook_formula(name: str, reduction: str) -> None:
    y = 2.0 * RNG.integers(0, 2, size=(N, 3)) - 1.0
    f = RNG.normal(size=(N, 3))
    per_element = np.maximum(0.0, 1.0 - y * f) ** (2 if name == "squared_hinge" else 1) * W[:, None]
    expected = {"none": per_element, "sum": per_element.sum(), "mean": per_element.sum() / (3 * W.sum())}
    got = lossbridge.get(name, reduction=reduction)(y, f, sample_weight=W)
    np.testing.assert_allclose(got, expected[reduction], rtol=1e-12)


def test_zero_labels_count_as_minus_one_element_by_element() -> None:
    loss = lossbridge.get("squared_hinge", reduction="none")
    np.testing.assert_array_equal(loss(np.where(SIGNS < 0, 0.0, 1.0), SCORES), loss(SIGNS, SCORES))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_crammer_singer_reductions_match_the_textbook_formula(reduction: str) -> None:
    others = np.where(np.eye(C)[LABELS] > 0, -np.inf, DECISION).max(axis=-1)
    per_sample = np.maximum(0.0, 1.0 + others - DECISION[np.arange(N), LABELS]) * W
    expected = {"none": per_sample, "sum": per_sample.sum(), "mean": per_sample.sum() / W.sum()}
    got = lossbridge.get("multiclass_hinge", reduction=reduction)(LABELS, DECISION, sample_weight=W)
    np.testing.assert_allclose(got, expected[reduction], rtol=1e-12)


def test_one_hot_targets_give_the_same_crammer_singer_values() -> None:
    loss = lossbridge.get("multiclass_hinge", reduction="none")
    one_hot = lossbridge.get("multiclass_hinge", target_format="one_hot", reduction="none")
    np.testing.assert_allclose(one_hot(np.eye(C)[LABELS], DECISION), loss(LABELS, DECISION), rtol=1e-15)


def test_keras_categorical_hinge_counts_the_true_slot_as_zero_in_the_max() -> None:
    scores = np.array([[-1.0, -2.0, -0.5], [0.3, 0.9, 0.1]])
    one_hot = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    keras_style = np.maximum(
        0.0, 1.0 + ((1 - one_hot) * scores).max(axis=-1) - (one_hot * scores).sum(axis=-1)
    )
    got = lossbridge.get("multiclass_hinge", convention="keras", reduction="none")(one_hot, scores)
    np.testing.assert_allclose(got, keras_style, rtol=1e-15)
    crammer = lossbridge.get("multiclass_hinge", reduction="none")(np.array([1, 0]), scores)
    np.testing.assert_allclose(crammer, [2.5, 1.6], rtol=1e-15)  # max over others is -0.5, not 0
    assert got[0] == 3.0


def test_tied_rivals_share_the_gradient() -> None:
    grad = lossbridge.get("multiclass_hinge", reduction="sum").grad(
        np.array([0]), np.array([[0.5, 1.0, 1.0]])
    )
    np.testing.assert_allclose(grad, [[-1.0, 0.5, 0.5]])


def test_labels_outside_both_label_sets_are_refused() -> None:
    with pytest.raises(InputError, match=r"y_true: expected labels in \{-1, 1\} or \{0, 1\} .*got a value 2"):
        lossbridge.get("hinge")(np.array([1.0, 2.0]), np.array([0.1, 0.2]))


def test_class_index_out_of_range_is_refused() -> None:
    with pytest.raises(
        InputError, match=r"y_true: expected class indices in \[0, 3\] for 4 classes, got values in \[-1, 2\]"
    ):
        lossbridge.get("multiclass_hinge")(np.array([-1, 2]), DECISION[:2])


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(
        InputError, match=r"y_true: expected shape \(10,\) \(the shape of y_pred\), got \(9,\)"
    ):
        lossbridge.get("hinge")(SIGNS[:9], SCORES)


def test_integer_scores_and_empty_batches_are_refused() -> None:
    with pytest.raises(InputError, match="y_pred: expected a floating-point array, got dtype int64"):
        lossbridge.get("squared_hinge")(SIGNS, np.ones(N, dtype=np.int64))
    with pytest.raises(InputError, match=r"y_pred: expected a non-empty batch, got shape \(0, 4\)"):
        lossbridge.get("multiclass_hinge")(np.zeros((0,), dtype=np.int64), np.zeros((0, 4)))


def test_unknown_rival_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"parameter 'rival' expects one of 'max_other', 'masked_zero'"):
        lossbridge.get("multiclass_hinge", rival="sum")
