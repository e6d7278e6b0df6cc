"""The seed's Keras code with lossbridge objects, and the shared digits example on TensorFlow."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

from lossbridge.demo import load_digits_data
from lossbridge.registry import default_registry

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_history_matches_keras_strings_in_float64() -> None:
    """Same seed, float64: lossbridge's objects reproduce the history of Keras's own strings.

    Tolerance 1e-9 relative: both runs do the same float64 arithmetic up to summation order
    inside the loss, amplified over 450 Adam steps (measured ~4e-16).
    """
    seed = _example("seed_keras")
    ours = seed.train(
        lambda: seed.lossbridge_objects()[0], lambda: seed.lossbridge_objects()[1], dtype="float64"
    )
    native = seed.train("sparse_categorical_crossentropy", "adam", dtype="float64")
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(ours[key], native[key], rtol=1e-9, err_msg=key)
    assert ours["val_accuracy"][-1] >= 0.90


def test_train_digits_reaches_90_percent() -> None:
    data = load_digits_data()
    result = default_registry().backend("tensorflow").train_digits(data)
    assert result.backend == "tensorflow" and len(result.train_loss) == data.epochs
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.val_accuracy >= 0.90
