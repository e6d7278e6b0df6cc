"""Keras's base-optimizer options through ``lossbridge.get``, and transform specs refused with a pointer."""

from __future__ import annotations

import pytest

import lossbridge

keras = pytest.importorskip("keras")


@pytest.mark.parametrize(
    "options",
    [{"clipnorm": 1.0}, {"clipvalue": 0.5}, {"global_clipnorm": 2.0}, {"use_ema": True, "ema_momentum": 0.9,
                                                                           "ema_overwrite_frequency": 3},
     {"gradient_accumulation_steps": 4}, {"loss_scale_factor": 128.0}],
)
def test_get_passes_base_options_to_keras(options: dict) -> None:
    opt = lossbridge.get("adam", backend="tensorflow", convention="keras", **options)
    assert isinstance(opt, keras.optimizers.Optimizer)
    for k, v in options.items():
        assert getattr(opt, k) == v


def test_keras_validates_the_options_itself() -> None:
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        lossbridge.get("adam", backend="tensorflow", gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="Only one of"):
        lossbridge.get("adam", backend="tensorflow", clipnorm=1.0, clipvalue=1.0)


def test_transform_spec_is_refused_with_the_keras_option() -> None:
    with pytest.raises(lossbridge.BackendError, match="clipnorm"):
        lossbridge.get("clip_by_norm", backend="tensorflow")
