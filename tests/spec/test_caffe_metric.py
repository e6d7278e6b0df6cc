"""Caffe's ContrastiveLoss against a float64 NumPy transcription of its C++ loops.

Transcribed from BVLC/caffe ``src/caffe/layers/contrastive_loss_layer.cpp`` (Forward_cpu and
Backward_cpu), independently of lossbridge's spec.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge


def _caffe_forward_backward(a: np.ndarray, b: np.ndarray, y: np.ndarray, margin: float, legacy: bool):
    num, channels = a.shape
    diff = a - b
    dist_sq = np.zeros(num)
    loss = 0.0
    for i in range(num):
        dist_sq[i] = float(np.dot(diff[i], diff[i]))
        if int(y[i]):
            loss += dist_sq[i]
        elif legacy:
            loss += max(margin - dist_sq[i], 0.0)
        else:
            dist = max(margin - np.sqrt(dist_sq[i]), 0.0)
            loss += dist * dist
    loss = loss / num / 2.0
    grads = []
    for sign in (1.0, -1.0):
        alpha = sign * 1.0 / num  # top diff 1
        bout = np.zeros((num, channels))
        for j in range(num):
            if int(y[j]):
                bout[j] = alpha * diff[j]
                continue
            if legacy:
                mdist, beta = margin - dist_sq[j], -alpha
            else:
                dist = np.sqrt(dist_sq[j])
                mdist = margin - dist
                beta = -alpha * mdist / (dist + 1e-4)
            bout[j] = beta * diff[j] if mdist > 0.0 else 0.0
        grads.append(bout)
    return loss, grads


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("margin", [1.0, 2.5])
def test_caffe_contrastive_loss_matches_the_layer(legacy: bool, margin: float) -> None:
    rng = np.random.default_rng(3)
    a, b = 0.5 * rng.normal(size=(2, 9, 4))
    y = rng.integers(0, 2, size=9).astype(np.float64)
    b[0] = a[0]  # zero distance
    y[0] = 0.0
    expected, (ga, gb) = _caffe_forward_backward(a, b, y, margin, legacy)
    loss = lossbridge.get("ContrastiveLoss", convention="caffe", margin=margin, legacy_version=legacy)
    value, (da, db) = loss.value_and_grad(a, b, y)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(da, ga, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(db, gb, rtol=1e-12, atol=1e-15)
