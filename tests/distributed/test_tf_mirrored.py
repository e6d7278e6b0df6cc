"""``tf.distribute.MirroredStrategy`` over 2 logical CPUs: ``model.fit`` with lossbridge's Keras loss and optimizer.

Keras's rule under a strategy: each replica's loss with a mean reduction (``sum_over_batch_size``,
``mean``, ``mean_with_sample_weight``) is multiplied by ``1 / num_replicas_in_sync``
(``keras/src/losses/loss.py``, ``reduce_values`` -> ``scale_loss_for_distribution``) and the
replicas' gradients are summed, so a step sees the gradient of the mean over the GLOBAL batch,
as on one device; ``sum`` is not scaled (the replicas' sums add up to the global sum). The loss
``fit`` reports is unscaled again (``unscale_loss_for_distribution``). lossbridge's Keras losses
must follow the same rule, or every mean-reduced gradient is ``num_replicas`` times too large.

Checked in float64 (``keras.config.set_floatx("float64")``), for ``mse`` and for the integer-label
``sparse_categorical_crossentropy`` fed Keras-style float labels of shape ``(N, 1)``, with
lossbridge's ``adam`` under the keras convention: weights after 2 epochs and the per-epoch losses
``fit`` reports equal the single-device run (relative 1e-12; the replicas' gradient sum adds in
another order). Logical devices must be configured before TensorFlow initializes, so the check
runs in a fresh interpreter.
"""

from __future__ import annotations

import textwrap

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    import lossbridge

    keras.config.set_floatx("float64")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4))
    targets = {
        "mse": rng.normal(size=(32, 1)),
        "sparse_categorical_crossentropy": rng.integers(0, 3, size=(32, 1)).astype("float64"),
    }

    def build(name):
        keras.utils.set_random_seed(1)
        units = 1 if name == "mse" else 3
        layers = [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(units)]
        model = keras.Sequential(layers)
        extra = {} if name == "mse" else {"from_logits": True}
        loss = lossbridge.get(name, backend="tensorflow", convention="keras", **extra)
        optimizer = lossbridge.get("adam", backend="tensorflow", convention="keras", learning_rate=0.01)
        model.compile(loss=loss, optimizer=optimizer)
        return model

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    for name, y in targets.items():
        with strategy.scope():
            mirrored = build(name)
        got = mirrored.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
        single = build(name)
        want = single.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{name}: loss reported by fit")
        for a, b in zip(mirrored.get_weights(), single.get_weights(), strict=True):
            err = np.max(np.abs(a - b)) / np.max(np.abs(b))
            assert err <= 1e-12, (name, err)
    print("mirrored ok")
    """
)


def test_mirrored_strategy_fit_matches_one_device():
    from ._launch import require, run_child

    require("tensorflow", "keras", "lossbridge_tensorflow")
    run_child(["-c", SCRIPT], "mirrored ok", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
              KERAS_BACKEND="tensorflow")
