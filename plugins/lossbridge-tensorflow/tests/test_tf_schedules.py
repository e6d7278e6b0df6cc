"""lossbridge schedules as Keras LearningRateSchedules: float32 like Keras's, serializable, usable in optimizers."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

STEPS = 1000

CASES = [  # Keras's own class names and keyword arguments, for lossbridge and for Keras
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 100, "decay_rate": 0.96}),
    ("PiecewiseConstantDecay", {"boundaries": [100, 500], "values": [1.0, 0.5, 0.1]}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 300, "power": 0.5, "cycle": True}),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}),
    ("CosineDecay", {"initial_learning_rate": 0.01, "decay_steps": 600, "alpha": 0.1, "warmup_target": 0.3,
                     "warmup_steps": 100}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 100}),
]


@pytest.mark.parametrize(("native", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_keras_schedule_matches_native_float32(native: str, kwargs: dict) -> None:
    ours = lossbridge.get(native, backend="tensorflow", convention="keras", **kwargs)
    assert isinstance(ours, keras.optimizers.schedules.LearningRateSchedule)
    theirs = getattr(keras.optimizers.schedules, native)(**kwargs)
    steps = tf.range(STEPS, dtype=tf.int64)
    mine = ours(steps).numpy()
    if native == "CosineDecay":  # Keras's warmup branches on the step in Python: scalar steps
        want = np.asarray([theirs(tf.constant(t, tf.int64)).numpy() for t in range(STEPS)])
    else:
        want = theirs(steps).numpy()
    assert mine.dtype == np.float32
    np.testing.assert_allclose(mine, want, rtol=1e-6, atol=1e-6 * float(np.max(want)))


def test_keras_schedule_config_round_trip() -> None:
    ours = lossbridge.get("PiecewiseConstantDecay", backend="tensorflow", convention="keras", boundaries=[10, 20],
                          values=[1.0, 0.5, 0.1])
    config = keras.optimizers.schedules.serialize(ours)
    back = keras.optimizers.schedules.deserialize(config)
    steps = tf.range(30, dtype=tf.int64)
    np.testing.assert_array_equal(back(steps).numpy(), ours(steps).numpy())


def test_keras_schedule_in_keras_optimizer_under_tf_function() -> None:
    sched = lossbridge.get("ExponentialDecay", backend="tensorflow", convention="keras", initial_learning_rate=0.1,
                           decay_rate=0.5, decay_steps=1)
    opt = keras.optimizers.SGD(learning_rate=sched)
    var = keras.Variable(np.ones(1, dtype=np.float32))

    @tf.function
    def step() -> None:
        opt.apply_gradients([(tf.ones(1), var)])

    for _ in range(3):
        step()
    np.testing.assert_allclose(var.numpy(), [1 - 0.1 - 0.05 - 0.025], rtol=1e-6)


def test_keras_schedule_as_lossbridge_optimizer_learning_rate() -> None:
    """A lossbridge Keras optimizer takes a LearningRateSchedule as learning_rate=, as Keras's own do."""
    sched = lossbridge.get("ExponentialDecay", backend="tensorflow", convention="keras", initial_learning_rate=0.1,
                           decay_rate=0.5, decay_steps=1)
    opt = lossbridge.get("sgd", backend="tensorflow", convention="keras", learning_rate=sched)
    assert isinstance(opt, keras.optimizers.Optimizer)
    var = keras.Variable(np.ones(1, dtype=np.float32))
    for _ in range(3):
        opt.apply_gradients([(tf.ones(1), var)])
    np.testing.assert_allclose(var.numpy(), [1 - 0.1 - 0.05 - 0.025], rtol=1e-6)


def test_keras_schedule_equals_numpy_for_one_spec() -> None:
    """The Keras schedule and the NumPy callable of one spec and convention agree (to float32)."""
    params = {"initial_learning_rate": 0.1, "first_decay_steps": 90, "t_mul": 1.0, "m_mul": 0.8, "alpha": 0.05}
    ours = lossbridge.get("CosineDecayRestarts", backend="tensorflow", convention="keras", **params)
    ref = lossbridge.get("CosineDecayRestarts", convention="keras", **params)
    np.testing.assert_allclose(ours(tf.range(STEPS)).numpy(), ref(np.arange(STEPS)), rtol=1e-6, atol=1e-7)
