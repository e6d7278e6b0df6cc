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
    got = lossbridge.get("multiclass_hinge", convention="keras", dtype="float64", reduction="none")(one_hot, scores)
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
        InputError, match=r"y_true: expected shape \(10,\) \(y_true and y_pred must have the same shape.*\), got \(9,\)"
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


# -- margin, perceptron and the gradient at the kink ------------------------------------------------
def _fd(fun, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function of ``x`` (float64)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        grad[idx] = (fun(plus) - fun(minus)) / (2 * h)
    return grad


@pytest.mark.parametrize("margin", [1.0, 0.0, 2.5])
def test_hinge_margin_and_perceptron_match_the_textbook_formula(margin: float) -> None:
    got = lossbridge.get("hinge", margin=margin, reduction="none")(SIGNS, SCORES)
    np.testing.assert_allclose(got, np.maximum(0.0, margin - SIGNS * SCORES), rtol=1e-15)


def test_optax_perceptron_name_is_hinge_with_margin_zero() -> None:
    loss = lossbridge.get("perceptron_loss", convention="optax")
    assert loss.bound.spec.name == "hinge" and loss.bound.params["margin"] == 0.0
    np.testing.assert_allclose(loss(SIGNS, SCORES), np.maximum(0.0, -SIGNS * SCORES), rtol=1e-15)


@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_binary_vjp_matches_finite_differences_away_from_the_kink(name: str) -> None:
    y = 2.0 * RNG.integers(0, 2, size=(N, 3)) - 1.0
    f = RNG.normal(size=(N, 3))
    loss = lossbridge.get(name, reduction="sum")
    np.testing.assert_allclose(loss.grad(y, f, sample_weight=W), _fd(lambda x: loss(y, x, sample_weight=W), f),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("share", "margin"), [(0.0, 1.0), (0.5, 1.0), (1.0, 1.0), (0.5, 0.0), (1.0, 0.0)])
def test_hinge_gradient_at_the_margin_is_the_declared_share(share: float, margin: float) -> None:
    y = np.array([1.0, -1.0, 0.0, 1.0])
    f = margin * np.where(y == 0, -1.0, y)  # y f = margin exactly
    f[3] = margin - 3.0  # inside the margin: the whole -y
    grad = lossbridge.get("hinge", margin=margin, margin_gradient=share, reduction="sum").grad(y, f)
    np.testing.assert_array_equal(grad, [-share, share, share, -1.0])


def test_hinge_convention_shares_at_the_margin() -> None:
    y, f = np.array([1.0, -1.0]), np.array([1.0, -1.0])
    keras_grad = lossbridge.get("hinge", convention="keras", dtype="float64", reduction="sum").grad(y, f)
    optax_grad = lossbridge.get("hinge", convention="optax", reduction="sum").grad(y, f)
    np.testing.assert_array_equal(keras_grad, [-0.5, 0.5])  # -y, averaged over the last axis (2)
    np.testing.assert_array_equal(optax_grad, [-0.5, 0.5])  # -y / 2
    np.testing.assert_array_equal(lossbridge.get("hinge", reduction="sum").grad(y, f), [0.0, 0.0])


def test_squared_hinge_gradient_vanishes_at_the_margin() -> None:
    grad = lossbridge.get("squared_hinge", reduction="sum").grad(np.array([1.0, 0.0]), np.array([1.0, -1.0]))
    np.testing.assert_array_equal(grad, [0.0, 0.0])


@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "multiclass_hinge", "one_vs_all_hinge"])
def test_declared_kinks_land_exactly_on_the_margin(name: str) -> None:
    spec = lossbridge.spec(name)
    params = lossbridge.get(name).bound.params
    y = LABELS[:6] if not spec.elementwise else 2.0 * RNG.integers(0, 2, size=(6, C)) - 1.0
    inputs = {"y_true": y, "y_pred": DECISION[:6].copy()}
    moved = spec.kinks(np.random.default_rng(0), inputs, params)
    np.testing.assert_array_equal(inputs["y_pred"], DECISION[:6])  # the inputs are not modified
    f = moved["y_pred"]
    if spec.elementwise:
        z = 1.0 - y * f
    elif name == "one_vs_all_hinge":
        z = 1.0 - (2.0 * np.eye(C)[y] - 1.0) * f
    else:
        others = np.where(np.eye(C)[y] > 0, -np.inf, f).max(axis=-1)
        z = 1.0 + others - f[np.arange(6), y]
    assert (z == 0.0).sum() >= 2


def _mc_grad(share: float, labels: np.ndarray, scores: np.ndarray, **kw: object) -> np.ndarray:
    return lossbridge.get("multiclass_hinge", margin_gradient=share, reduction="sum", **kw).grad(labels, scores)


def test_multiclass_hinge_gradient_at_the_margin() -> None:
    labels = np.array([1, 1])
    scores = np.array([[0.0, 1.0, -2.0], [0.5, 1.5, 0.5]])  # one rival on the margin; two tied on it
    np.testing.assert_array_equal(_mc_grad(0.0, labels, scores), np.zeros((2, 3)))
    np.testing.assert_array_equal(_mc_grad(1.0, labels, scores), [[1.0, -1.0, 0.0], [0.5, -1.0, 0.5]])
    # 0.5: jnp.max's equal split over f + m (1 - onehot), the true score one of the tied arguments
    np.testing.assert_allclose(_mc_grad(0.5, labels, scores), [[0.5, -0.5, 0.0], [1 / 3, -2 / 3, 1 / 3]],
                               rtol=1e-15)


def test_multiclass_perceptron_is_margin_zero() -> None:
    loss = lossbridge.get("multiclass_perceptron_loss", convention="optax")
    assert loss.bound.params["margin"] == 0.0
    expected = DECISION.max(axis=-1) - DECISION[np.arange(N), LABELS]
    np.testing.assert_allclose(loss(LABELS, DECISION), expected, rtol=1e-15)


@pytest.mark.parametrize("kw", [{}, {"rival": "masked_zero", "target_format": "one_hot"}, {"margin": 0.0}])
def test_multiclass_vjp_matches_finite_differences(kw: dict) -> None:
    labels = LABELS if "target_format" not in kw else np.eye(C)[LABELS]
    loss = lossbridge.get("multiclass_hinge", reduction="mean", **kw)
    np.testing.assert_allclose(
        loss.grad(labels, DECISION, sample_weight=W),
        _fd(lambda x: loss(labels, x, sample_weight=W), DECISION), rtol=1e-6, atol=1e-9,
    )


def test_invalid_margin_parameters_are_refused() -> None:
    with pytest.raises(ParameterError, match=r"parameter 'margin_gradient' expects one of 0.0, 0.5, 1.0, got 0.3"):
        lossbridge.get("hinge", margin_gradient=0.3)
    with pytest.raises(ParameterError, match=r"parameter 'margin' expects float in \[0, inf\), got -1"):
        lossbridge.get("multiclass_hinge", margin=-1.0)
    with pytest.raises(ParameterError, match=r"parameter 'norm' expects one of 'L1', 'L2', got 'L3'"):
        lossbridge.get("one_vs_all_hinge", norm="L3")


# -- one-vs-all -------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["L1", "L2"])
def test_one_vs_all_hinge_matches_the_textbook_formula(norm: str) -> None:
    signs = 2.0 * np.eye(C)[LABELS] - 1.0
    per_class = np.maximum(0.0, 1.0 - signs * DECISION) ** (1 if norm == "L1" else 2)
    loss = lossbridge.get("one_vs_all_hinge", norm=norm, reduction="none")
    np.testing.assert_allclose(loss(LABELS, DECISION), per_class.sum(axis=-1), rtol=1e-14)
    mean = lossbridge.get("one_vs_all_hinge", norm=norm)
    np.testing.assert_allclose(mean.grad(LABELS, DECISION, sample_weight=W),
                               _fd(lambda x: mean(LABELS, x, sample_weight=W), DECISION), rtol=1e-6, atol=1e-9)
