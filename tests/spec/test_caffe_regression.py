"""Caffe's EuclideanLoss against a float64 NumPy transcription of its C++ layer.

Source: BVLC/caffe ``src/caffe/layers/euclidean_loss_layer.cpp``. Forward_cpu computes
``diff_ = bottom[0] - bottom[1]``, ``loss = dot(diff_, diff_) / bottom[0]->num() / 2``; Backward_cpu
sets ``bottom[i]->diff = sign * top_diff / bottom[i]->num() * diff_`` with sign +1 for bottom[0]
(the prediction) and -1 for bottom[1]. ``num()`` is the first (batch) axis.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge


def _caffe_euclidean_forward(bottom0: np.ndarray, bottom1: np.ndarray) -> tuple[float, np.ndarray]:
    num = bottom0.shape[0]
    diff = np.empty(bottom0.size)
    b0, b1 = bottom0.reshape(-1), bottom1.reshape(-1)
    for i in range(bottom0.size):  # caffe_sub
        diff[i] = b0[i] - b1[i]
    dot = 0.0
    for i in range(diff.size):  # caffe_cpu_dot
        dot += diff[i] * diff[i]
    return dot / num / 2.0, diff.reshape(bottom0.shape)


def _caffe_euclidean_backward(diff: np.ndarray, top_diff: float, num: int, i: int) -> np.ndarray:
    sign = 1.0 if i == 0 else -1.0
    alpha = sign * top_diff / num
    out = np.empty(diff.size)
    flat = diff.reshape(-1)
    for k in range(diff.size):  # caffe_cpu_axpby with beta 0
        out[k] = alpha * flat[k]
    return out.reshape(diff.shape)


@pytest.mark.parametrize("shape", [(6, 3), (4, 2, 3, 3), (5,)])
def test_caffe_euclidean_loss_value_and_gradient(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    prediction, target = rng.normal(size=(2, *shape))
    expected, diff = _caffe_euclidean_forward(prediction, target)
    expected_grad = _caffe_euclidean_backward(diff, 1.0, shape[0], 0)
    loss = lossbridge.get("EuclideanLoss", convention="caffe")
    value, grad = loss.value_and_grad(target, prediction)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)


def test_caffe_euclidean_loss_is_half_the_batch_mean_of_the_summed_squares() -> None:
    rng = np.random.default_rng(4)
    prediction, target = rng.normal(size=(2, 8, 5))
    got = lossbridge.get("mse", convention="caffe")(target, prediction)
    assert float(got) == pytest.approx(((prediction - target) ** 2).sum() / (2 * 8), rel=1e-12)
