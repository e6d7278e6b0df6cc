"""Cross-entropy losses against scikit-learn's log_loss and float64 NumPy textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

import lossbridge
from lossbridge import InputError, ParameterError

RNG = np.random.default_rng(5)
N, C = 9, 4
LABELS = RNG.integers(0, C, size=N)
ONE_HOT = np.eye(C)[LABELS]
W = RNG.uniform(0.0, 2.0, size=N)


def _rows(shape: tuple[int, ...]) -> np.ndarray:
    z = np.exp(RNG.normal(size=shape))
    return z / z.sum(axis=-1, keepdims=True)


P = _rows((N, C))
LOGITS = 2.0 * RNG.normal(size=(N, C))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _bce_textbook(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


# -- scikit-learn ---------------------------------------------------------------------------------
def test_binary_matches_sklearn_log_loss_with_sample_weight() -> None:
    y, p = (LABELS % 2).astype(float), P[:, 0]
    loss = lossbridge.get("log_loss")
    np.testing.assert_allclose(loss(y, p), log_loss(y, p), rtol=1e-12)
    np.testing.assert_allclose(loss(y, p, sample_weight=W), log_loss(y, p, sample_weight=W), rtol=1e-12)


def test_sklearn_clipping_is_clip_eps_machine_epsilon_on_exact_zeros_and_ones() -> None:
    y, p = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.7, 0.2])
    loss = lossbridge.get("bce", clip_eps=float(np.finfo(np.float64).eps))
    np.testing.assert_allclose(loss(y, p), log_loss(y, p), rtol=1e-12)


@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_multiclass_matches_sklearn_log_loss_with_sample_weight(name: str) -> None:
    target = LABELS if name.startswith("sparse") else ONE_HOT
    loss = lossbridge.get(name)
    expected = log_loss(LABELS, P, sample_weight=W, labels=range(C))
    np.testing.assert_allclose(loss(target, P, sample_weight=W), expected, rtol=1e-12)


# -- textbook values, reductions, smoothing -------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_label_smoothing_moves_targets_towards_one_half(reduction: str) -> None:
    y, p, s = (LABELS % 2).astype(float)[:, None] * np.ones(3), _rows((N, 3)), 0.3
    per_element = _bce_textbook(y * (1 - s) + s / 2, p) * W[:, None]
    expected = {"none": per_element, "sum": per_element.sum(), "mean": per_element.sum() / (3 * W.sum())}
    got = lossbridge.get("bce", label_smoothing=s, reduction=reduction)(y, p, sample_weight=W)
    np.testing.assert_allclose(got, expected[reduction], rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_categorical_label_smoothing_mixes_in_the_uniform_distribution(reduction: str) -> None:
    s = 0.2
    per_sample = -(((1 - s) * ONE_HOT + s / C) * _log_softmax(LOGITS)).sum(axis=-1) * W
    expected = {"none": per_sample, "sum": per_sample.sum(), "mean": per_sample.sum() / W.sum()}
    for name, target in (("categorical_crossentropy", ONE_HOT), ("sparse_categorical_crossentropy", LABELS)):
        loss = lossbridge.get(name, from_logits=True, label_smoothing=s, reduction=reduction)
        np.testing.assert_allclose(loss(target, LOGITS, sample_weight=W), expected[reduction], rtol=1e-12)


def test_from_logits_equals_probabilities_of_the_sigmoid_and_softmax() -> None:
    y = (LABELS % 2).astype(float)
    x = LOGITS[:, 0]
    bce = lossbridge.get("bce", reduction="none")
    np.testing.assert_allclose(
        lossbridge.get("bce", from_logits=True, reduction="none")(y, x),
        bce(y, 1 / (1 + np.exp(-x))),
        rtol=1e-10,
    )
    softmax = np.exp(_log_softmax(LOGITS))
    for name, target in (("categorical_crossentropy", ONE_HOT), ("sparse_categorical_crossentropy", LABELS)):
        logits = lossbridge.get(name, from_logits=True, reduction="none")(target, LOGITS)
        np.testing.assert_allclose(
            logits, lossbridge.get(name, reduction="none")(target, softmax), rtol=1e-10
        )


def test_extreme_logits_are_finite_and_exact() -> None:
    x = np.array([50.0, -50.0, 1000.0, -1000.0])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    value, grad = lossbridge.get("bce", from_logits=True, reduction="sum").value_and_grad(y, x)
    np.testing.assert_allclose(value, 2100.0, rtol=1e-15)
    np.testing.assert_allclose(grad, [1.0, -1.0, 1.0, -1.0], rtol=1e-15)
    logits = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [50.0, -50.0]])
    loss = lossbridge.get("sparse_categorical_crossentropy", from_logits=True, reduction="none")
    value, grad = loss.value_and_grad(np.array([1, 1, 0]), logits)
    np.testing.assert_allclose(value, [2000.0, 0.0, 0.0], atol=1e-40)
    np.testing.assert_allclose(grad, [[1.0, -1.0], [0.0, 0.0], [0.0, 0.0]], atol=1e-40)


def test_probabilities_exactly_zero_and_one_are_floored_at_minus_100_by_default() -> None:
    y, p = np.array([1.0, 0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 1.0])
    value, grad = lossbridge.get("bce", reduction="none").value_and_grad(y, p)
    np.testing.assert_allclose(value, [100.0, 100.0, 0.0, 0.0])
    assert np.all(np.isfinite(grad))
    keras = lossbridge.get("bce", convention="keras", reduction="none", dtype="float64")(y[:, None], p[:, None])
    hi = 1.0 - 1e-7  # Keras clips p to [1e-7, hi], then takes log(p) and log(1 - p)
    np.testing.assert_allclose(keras, -np.log([1e-7, 1.0 - hi, hi, hi]), rtol=1e-12)
    rows = np.array([[0.0, 1.0], [1.0, 0.0]])
    value = lossbridge.get("sparse_categorical_crossentropy", reduction="none")(np.array([0, 0]), rows)
    np.testing.assert_allclose(value, [100.0, 0.0])


def test_keras_categorical_renormalizes_rows_before_clipping() -> None:
    p = 0.5 * P  # rows summing to 1/2
    expected = -(ONE_HOT * np.log(np.clip(p / p.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7))).sum(axis=-1)
    got = lossbridge.get("categorical_crossentropy", convention="keras", reduction="none", dtype="float64")(ONE_HOT, p)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_keras_sparse_clips_before_renormalizing() -> None:
    p = np.array([[0.0, 0.5, 0.3], [0.2, 0.2, 0.2]])
    c = np.clip(p, 1e-7, 1 - 1e-7)
    expected = -np.log(c[[0, 1], [0, 2]] / c.sum(axis=-1))
    loss = lossbridge.get(
        "sparse_categorical_crossentropy", convention="keras", reduction="none", dtype="float64"
    )
    np.testing.assert_allclose(loss(np.array([0, 2]), p), expected, rtol=1e-12)


# -- class weights and ignore_index -----------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_class_weight_and_ignore_index_match_the_weighted_textbook_mean(reduction: str) -> None:
    labels = LABELS.copy()
    labels[[1, 4]] = -100
    class_weight = np.array([0.5, 1.0, 2.0, 3.0])
    nll = -_log_softmax(LOGITS)[np.arange(N), np.where(labels < 0, 0, labels)]
    weight = np.where(labels < 0, 0.0, class_weight[np.where(labels < 0, 0, labels)]) * W
    expected = {
        "none": nll * weight,
        "sum": (nll * weight).sum(),
        "mean": (nll * weight).sum() / weight.sum(),
    }
    loss = lossbridge.get(
        "sparse_categorical_crossentropy",
        convention="torch",
        class_weight=class_weight,
        reduction=reduction,
    )
    np.testing.assert_allclose(loss(labels, LOGITS, sample_weight=W), expected[reduction], rtol=1e-12)


def test_ignored_samples_get_no_gradient() -> None:
    labels = np.array([0, -100, 2])
    grad = lossbridge.get("sparse_categorical_crossentropy", convention="torch").grad(labels, LOGITS[:3])
    np.testing.assert_array_equal(grad[1], 0.0)
    assert np.all(grad[[0, 2]] != 0.0)


def test_a_single_sample_of_shape_c_is_allowed() -> None:
    value = lossbridge.get("sparse_categorical_crossentropy", from_logits=True)(np.array(2), LOGITS[0])
    np.testing.assert_allclose(value, -_log_softmax(LOGITS[:1])[0, 2], rtol=1e-12)


# -- bad input ------------------------------------------------------------------------------------
def test_labels_out_of_range_are_refused() -> None:
    with pytest.raises(
        InputError, match=r"y_true: expected class indices in \[0, 3\] for 4 classes, got values in \[0, 7\]"
    ):
        lossbridge.get("sparse_categorical_crossentropy")(np.array([0, 7]), P[:2])


def test_probabilities_outside_0_1_are_refused() -> None:
    with pytest.raises(
        InputError, match=r"y_pred: expected probabilities in \[0, 1\], got values in \[-0.5, 0.5\]"
    ):
        lossbridge.get("bce")(np.array([0.0, 1.0]), np.array([-0.5, 0.5]))
    with pytest.raises(InputError, match=r"y_true: expected soft labels in \[0, 1\], got values in \[0, 2\]"):
        lossbridge.get("bce")(np.array([0.0, 2.0]), np.array([0.5, 0.5]))


def test_logits_are_not_range_checked() -> None:
    assert np.isfinite(lossbridge.get("bce", from_logits=True)(np.array([0.0, 1.0]), np.array([-3.0, 7.0])))


def test_integer_predictions_and_float_labels_are_refused() -> None:
    with pytest.raises(InputError, match="y_pred: expected a floating-point array, got dtype int64"):
        lossbridge.get("categorical_crossentropy")(ONE_HOT, np.ones((N, C), dtype=np.int64))
    with pytest.raises(InputError, match="y_true: expected integer class indices, got dtype float64"):
        lossbridge.get("sparse_categorical_crossentropy")(LABELS.astype(float), P)


def test_label_shape_mismatch_names_both_shapes() -> None:
    match = r"y_true: expected shape \(9,\) \(y_pred's shape without its class axis\), got \(9, 4\)"
    with pytest.raises(InputError, match=match):
        lossbridge.get("sparse_categorical_crossentropy")(ONE_HOT.astype(np.int64), P)


def test_empty_batch_is_refused() -> None:
    with pytest.raises(InputError, match=r"y_pred: expected a non-empty batch, got shape \(0, 4\)"):
        lossbridge.get("categorical_crossentropy")(np.zeros((0, 4)), np.zeros((0, 4)))


def test_invalid_parameters_are_refused_with_the_valid_values() -> None:
    with pytest.raises(
        ParameterError, match=r"parameter 'label_smoothing' expects float in \[0, 1\], got 1.5"
    ):
        lossbridge.get("bce", label_smoothing=1.5)
    with pytest.raises(ParameterError, match=r"parameter 'normalize' expects one of 'none', 'before_clip'"):
        lossbridge.get("categorical_crossentropy", normalize="always")
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'ignore_index'"):
        lossbridge.get("categorical_crossentropy", ignore_index=3)


def test_caffe_floors_the_softmax_probability_at_flt_min() -> None:
    logits = np.array([[0.0, -100.0, 5.0], [1.0, 2.0, 3.0]])
    flt_min = float(np.finfo(np.float32).tiny)
    expected = -np.log(np.maximum(np.exp(_log_softmax(logits))[[0, 1], [1, 0]], flt_min))
    loss = lossbridge.get("sparse_categorical_crossentropy", convention="caffe", reduction="none")
    np.testing.assert_allclose(loss(np.array([1, 0]), logits), expected, rtol=1e-12)
    assert expected[0] < 100.0  # the floor is active on the first sample


def test_cross_entropy_derivative_along_the_targets_is_minus_log_softmax_at_zero_targets() -> None:
    """The function's derivative in the (soft) targets is -log p wherever log p is finite, zero targets
    included (central finite differences of the function against the textbook -log_softmax); a -inf
    logit with a zero target still adds nothing (0 log 0 = 0)."""
    from lossbridge.spec._classification import categorical_crossentropy

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4)) * 2.0
    y = np.array([[0.0, 1.0, 0.0, 0.0], [0.3, 0.0, 0.7, 0.0], [0.0, 0.0, 0.0, 1.0]])
    h = 1e-6
    fd = np.zeros_like(y)
    for i in np.ndindex(*y.shape):
        up, down = y.copy(), y.copy()
        up[i] += h
        down[i] -= h
        f_up = categorical_crossentropy(up, x, xp=np, from_logits=True)[i[0]]
        f_down = categorical_crossentropy(down, x, xp=np, from_logits=True)[i[0]]
        fd[i] = (f_up - f_down) / (2 * h)
    np.testing.assert_allclose(fd, -_log_softmax(x), rtol=1e-6, atol=1e-8)
    x_inf = np.array([[-np.inf, 0.0, 1.0]])
    out = categorical_crossentropy(np.array([[0.0, 1.0, 0.0]]), x_inf, xp=np, from_logits=True)
    np.testing.assert_allclose(out, -_log_softmax(np.array([[0.0, 1.0]]))[:, 0])
