"""Keras-optimizer behaviours: slots, fit, tf.function/XLA, schedules, Keras base options, config.

Expected numbers come from keras.optimizers itself (same options, float64) or from a NumPy
formula written here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from lossbridge_tensorflow import KerasLoss, KerasOptimizer

import lossbridge

RNG = np.random.default_rng(0)
START = [RNG.normal(size=(4, 3)), RNG.normal(size=3)]
GRADS = [[RNG.normal(size=(4, 3)) * 3.0, RNG.normal(size=3) * 3.0] for _ in range(15)]


def _trajectory(optimizer: Any, *, jit: bool | None = None, dtype: str = "float64") -> list[np.ndarray]:
    """Final parameters after feeding GRADS: eagerly (jit None), in a tf.function, or under XLA."""
    variables = [keras.Variable(p, dtype=dtype) for p in START]
    optimizer.build(variables)
    apply = lambda g: optimizer.apply(g, variables)  # noqa: E731
    if jit is not None:
        apply = tf.function(apply, jit_compile=jit)
    for grads in GRADS:
        apply([tf.constant(g, dtype=dtype) for g in grads])
    return [v.numpy() for v in variables]


def _assert_same(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-10) -> None:
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * np.abs(w).max())


def test_get_returns_a_keras_optimizer_with_the_spec_slots() -> None:
    opt = lossbridge.get("adam", backend="tensorflow", convention="keras")
    assert isinstance(opt, keras.optimizers.Optimizer)
    variables = [keras.Variable(p) for p in START]
    opt.build(variables)
    names = sorted(v.name.split("_")[-1] for v in opt.variables if v.shape == (4, 3))
    assert names == ["m", "v"]  # the spec's slots (v_max only with amsgrad)
    assert float(opt.learning_rate) == pytest.approx(1e-3)


@pytest.mark.parametrize("jit", [False, True], ids=["tf.function", "xla"])
def test_graph_and_xla_match_eager(jit: bool) -> None:
    eager = _trajectory(lossbridge.get("adam", backend="tensorflow", convention="keras"))
    _assert_same(
        _trajectory(lossbridge.get("adam", backend="tensorflow", convention="keras"), jit=jit), eager
    )


@pytest.mark.parametrize(
    "options",
    [{"clipnorm": 0.5}, {"clipvalue": 0.1}, {"global_clipnorm": 1.0}, {"use_ema": True, "ema_momentum": 0.9}],
    ids=lambda o: next(iter(o)),
)
def test_keras_base_options_match_native(options: dict[str, Any]) -> None:
    ours = KerasOptimizer("sgd", convention="keras", learning_rate=0.1, momentum=0.9, **options)
    native = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, **options)
    got, want = _trajectory(ours, jit=False), _trajectory(native, jit=False)
    _assert_same(got, want)
    if options.get("use_ema"):
        assert len(ours._model_variables_moving_average) == 2


def test_learning_rate_schedule_matches_native() -> None:
    def schedule() -> Any:
        return keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=3, decay_rate=0.5)

    ours = KerasOptimizer("adam", convention="keras", learning_rate=schedule())
    native = keras.optimizers.Adam(learning_rate=schedule())
    _assert_same(_trajectory(ours, jit=True), _trajectory(native, jit=True))


def test_plain_sgd_formula() -> None:
    opt = lossbridge.get("sgd", backend="tensorflow", lr=0.1)
    got = _trajectory(opt)
    want = [p - 0.1 * sum(g[k] for g in GRADS) for k, p in enumerate(START)]
    _assert_same(got, want, rtol=1e-12)


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(
        lossbridge.ParameterError, match=r"adam: unknown parameter 'betas'; valid: .*beta_1.*clipnorm"
    ):
        KerasOptimizer("adam", betas=(0.9, 0.99))
    with pytest.raises(lossbridge.ParameterError, match=r"beta_1.*expects float in \[0, 1"):
        KerasOptimizer("adam", beta_1=2.0)


def test_config_round_trip() -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=3, decay_rate=0.5)
    opt = KerasOptimizer("adam", convention="keras", learning_rate=schedule, beta_1=0.8, global_clipnorm=1.0)
    config = opt.get_config()
    assert config["spec"] == "adam" and config["convention"] == "keras" and config["hyper"]["beta_1"] == 0.8
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(again, KerasOptimizer) and again.get_config() == config
    _assert_same(_trajectory(again), _trajectory(opt))


def test_fit_save_and_reload(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    x = RNG.normal(size=(64, 3)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5])).astype("float32")[:, None]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=lossbridge.get("adam", backend="tensorflow", convention="keras", lr=0.05),
        loss=lossbridge.get("mse", backend="tensorflow", convention="keras"),
        jit_compile=True,
    )
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, KerasOptimizer) and isinstance(loaded.loss, KerasLoss)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 20
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # training continues from the restored slots exactly as the original would
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
