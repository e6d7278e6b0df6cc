"""Caffe classification layers: float64 NumPy transcriptions of the C++ loops against lossbridge's caffe convention."""

from __future__ import annotations

import numpy as np

import lossbridge

RNG = np.random.default_rng(9)
N, C = 6, 4


def _caffe_softmax_with_loss(bottom, label):
    """BVLC/caffe src/caffe/layers/softmax_loss_layer.cpp (Forward_cpu, Backward_cpu): loss / num."""
    num = bottom.shape[0]
    prob = np.exp(bottom - bottom.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    flt_min = float(np.finfo(np.float32).tiny)
    loss = 0.0
    diff = prob.copy()
    for i in range(num):
        loss += -np.log(max(prob[i, int(label[i])], flt_min))
        diff[i, int(label[i])] -= 1
    return loss / num, diff / num


def _caffe_sigmoid_cross_entropy(x, target):
    """BVLC/caffe src/caffe/layers/sigmoid_cross_entropy_loss_layer.cpp: the stable sum, / num."""
    num = x.shape[0]
    loss = 0.0
    for xi, ti in zip(x.reshape(-1), target.reshape(-1)):
        loss -= xi * (ti - (xi >= 0)) - np.log(1 + np.exp(xi - 2 * xi * (xi >= 0)))
    diff = (1 / (1 + np.exp(-x)) - target) / num
    return loss / num, diff


def _caffe_infogain(bottom, label, h, threshold=1e-20):
    """BVLC/caffe src/caffe/layers/infogain_loss_layer.cpp: -sum_j H[label, j] log(max(p_j, 1e-20)) / num."""
    num, dim = bottom.shape
    loss, diff = 0.0, np.zeros_like(bottom)
    for i in range(num):
        for j in range(dim):
            prob = max(bottom[i, j], threshold)
            loss -= h[int(label[i]), j] * np.log(prob)
            diff[i, j] = -h[int(label[i]), j] / prob / num
    return loss / num, diff


def _caffe_multinomial_logistic(bottom, label, threshold=1e-20):
    """BVLC/caffe src/caffe/layers/multinomial_logistic_loss_layer.cpp: -log(max(p_label, 1e-20)) / num."""
    num = bottom.shape[0]
    loss, diff = 0.0, np.zeros_like(bottom)
    for i in range(num):
        prob = max(bottom[i, int(label[i])], threshold)
        loss -= np.log(prob)
        diff[i, int(label[i])] = -1.0 / prob / num
    return loss / num, diff


def _rows():
    z = np.exp(RNG.normal(size=(N, C)))
    return z / z.sum(axis=1, keepdims=True)


def test_softmax_with_loss_mean_is_caffe_normalization_valid_and_sum_is_none():
    x, y = 3.0 * RNG.normal(size=(N, C)), RNG.integers(0, C, size=N)
    x[0, y[0]] = -200.0  # the FLT_MIN floor is active on this sample
    loss_c, diff_c = _caffe_softmax_with_loss(x, y)
    value, grad = lossbridge.get("SoftmaxWithLoss", convention="caffe").value_and_grad(y, x)
    np.testing.assert_allclose(value, loss_c, rtol=1e-12)
    np.testing.assert_allclose(grad[1:], diff_c[1:], rtol=1e-10, atol=1e-15)  # row 0: floored, lossbridge gives 0
    total = lossbridge.get("SoftmaxWithLoss", convention="caffe", reduction="sum")(y, x)
    np.testing.assert_allclose(total, loss_c * N, rtol=1e-12)


def test_sigmoid_cross_entropy_batch_size_normalization_for_one_output():
    x, t = 3.0 * RNG.normal(size=(N, 1)), RNG.integers(0, 2, size=(N, 1)).astype(float)
    loss_c, diff_c = _caffe_sigmoid_cross_entropy(x, t)
    value, grad = lossbridge.get("SigmoidCrossEntropyLoss", convention="caffe").value_and_grad(t, x)
    np.testing.assert_allclose(value, loss_c, rtol=1e-12)
    np.testing.assert_allclose(grad, diff_c, rtol=1e-10)
    x4, t4 = 3.0 * RNG.normal(size=(N, C)), RNG.integers(0, 2, size=(N, C)).astype(float)
    total = lossbridge.get("SigmoidCrossEntropyLoss", convention="caffe", reduction="sum")(t4, x4)
    np.testing.assert_allclose(total / N, _caffe_sigmoid_cross_entropy(x4, t4)[0], rtol=1e-12)


def test_infogain_loss_with_a_gain_matrix():
    p, y = _rows(), RNG.integers(0, C, size=N)
    p[1, 2] = 0.0  # clamped at kLOG_THRESHOLD in the value
    h = RNG.uniform(0.0, 1.0, size=(C, C)) + np.eye(C)
    loss_c, diff_c = _caffe_infogain(p, y, h)
    value, grad = lossbridge.get("InfogainLoss", convention="caffe", infogain=h).value_and_grad(y, p)
    np.testing.assert_allclose(value, loss_c, rtol=1e-12)
    keep = p >= 1e-20  # below the threshold Caffe passes -H/t, lossbridge 0 (documented)
    np.testing.assert_allclose(grad[keep], diff_c[keep], rtol=1e-10)


def test_multinomial_logistic_loss_on_probabilities():
    p, y = _rows(), RNG.integers(0, C, size=N)
    p[0, y[0]] = 0.0
    loss_c, diff_c = _caffe_multinomial_logistic(p, y)
    value, grad = lossbridge.get("MultinomialLogisticLoss", convention="caffe").value_and_grad(y, p)
    np.testing.assert_allclose(value, loss_c, rtol=1e-12)
    np.testing.assert_allclose(grad[1:], diff_c[1:], rtol=1e-10)
