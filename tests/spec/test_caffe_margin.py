"""Caffe's HingeLoss layer against a float64 NumPy transcription of its C++ loops.

The oracle below transcribes ``src/caffe/layers/hinge_loss_layer.cpp`` (BVLC/caffe,
``HingeLossLayer<Dtype>::Forward_cpu`` and ``Backward_cpu``) and ``src/caffe/proto/caffe.proto``
(``HingeLossParameter``: ``norm`` L1 or L2, default L1). Caffe cannot be installed; this is the
third oracle for ``convention="caffe"``. It is written from the C++ alone, independently of the spec.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge


def caffe_hinge_forward(bottom_data: np.ndarray, label: np.ndarray, norm: str) -> tuple[float, np.ndarray]:
    """Forward_cpu: returns (loss, bottom_diff as the layer leaves it for Backward_cpu)."""
    num = bottom_data.shape[0]
    count = bottom_data.size
    dim = count // num
    data = bottom_data.reshape(-1)
    bottom_diff = data.copy()  # caffe_copy(count, bottom_data, bottom_diff)
    for i in range(num):
        bottom_diff[i * dim + int(label[i])] *= -1
    for i in range(num):
        for j in range(dim):
            bottom_diff[i * dim + j] = max(0.0, 1 + bottom_diff[i * dim + j])
    if norm == "L1":
        loss = np.sum(np.abs(bottom_diff)) / num  # caffe_cpu_asum(count, bottom_diff) / num
    else:
        loss = np.dot(bottom_diff, bottom_diff) / num  # caffe_cpu_dot(count, bottom_diff, bottom_diff) / num
    return float(loss), bottom_diff


def caffe_hinge_backward(bottom_diff: np.ndarray, label: np.ndarray, num: int, norm: str,
                         loss_weight: float = 1.0) -> np.ndarray:
    """Backward_cpu, starting from the bottom_diff Forward_cpu left behind."""
    diff = bottom_diff.copy()
    dim = diff.size // num
    for i in range(num):
        diff[i * dim + int(label[i])] *= -1
    if norm == "L1":
        diff = np.sign(diff) * (loss_weight / num)  # caffe_cpu_sign, then caffe_scal(loss_weight / num)
    else:
        diff = diff * (loss_weight * 2 / num)  # caffe_scal(loss_weight * 2 / num)
    return diff


RNG = np.random.default_rng(5)
N, C = 6, 4


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    labels = RNG.integers(0, C, size=N)
    scores = 1.5 * RNG.normal(size=(N, C))
    kinks = scores.copy()
    signs = 2.0 * np.eye(C)[labels] - 1.0
    kinks[::2] = signs[::2]  # every other sample exactly on the margin, for every class
    kinks[1, 0] = -signs[1, 0] * 3.0  # and a violation well inside
    return {"random": (labels, scores), "kinks": (labels, kinks)}


@pytest.mark.parametrize("case", ["random", "kinks"])
@pytest.mark.parametrize("norm", [None, "L1", "L2"])
def test_caffe_hinge_loss_matches_the_layer(norm: str | None, case: str) -> None:
    labels, scores = _cases()[case]
    kwargs = {} if norm is None else {"norm": norm}
    loss = lossbridge.get("HingeLoss", convention="caffe", **kwargs)
    assert loss.bound.spec.name == "one_vs_all_hinge"
    expected, diff = caffe_hinge_forward(scores, labels, norm or "L1")
    value, grad = loss.value_and_grad(labels, scores)
    np.testing.assert_allclose(value, expected, rtol=1e-13)
    np.testing.assert_allclose(grad, caffe_hinge_backward(diff, labels, N, norm or "L1").reshape(N, C),
                               rtol=1e-13, atol=1e-15)


def test_caffe_hinge_loss_is_the_one_vs_all_sum_not_a_mean_over_classes() -> None:
    labels, scores = _cases()["random"]
    per_sample = lossbridge.get("HingeLoss", convention="caffe", reduction="none")(labels, scores)
    assert per_sample.shape == (N,)
    np.testing.assert_allclose(per_sample.mean(), caffe_hinge_forward(scores, labels, "L1")[0], rtol=1e-13)


def test_hingeloss_means_each_frameworks_own_loss() -> None:
    assert lossbridge.get("HingeLoss", convention="caffe").bound.spec.name == "one_vs_all_hinge"
    assert lossbridge.get("hinge_loss", convention="optax").bound.spec.name == "hinge"
    assert lossbridge.get("HingeLoss", convention="optax").bound.spec.name == "hinge"
    assert lossbridge.get("hinge_loss").bound.spec.name == "hinge"  # lossbridge's own alias
