"""Keras's own loss tests (``keras/src/losses/losses_test.py`` from the installed wheel), run on
lossbridge's losses under the keras convention on the TensorFlow backend.

Every Keras loss class and function that ``lossbridge.get(name, backend="tensorflow",
convention="keras")`` resolves is substituted in the ``losses`` module object the Keras test
module uses: a class name becomes a factory returning lossbridge's ``keras.losses.Loss``; a
function name becomes lossbridge's loss with ``reduction="none"`` (Keras's loss functions are
unreduced). The outcome of each native test method is settled by the rules in ``conftest.py``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import unittest
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")
pytest.importorskip("lossbridge_tensorflow")

import lossbridge  # noqa: E402
from lossbridge.errors import LossbridgeError  # noqa: E402

SUITE = "keras_losses"
NATIVE_TESTS = "keras.src.losses.losses_test"

if keras.backend.backend() != "tensorflow":  # pragma: no cover - the env sets it
    pytest.skip("the Keras suite runs on Keras's TensorFlow backend", allow_module_level=True)

native_losses = importlib.import_module("keras.src.losses.losses")
suite_module = importlib.import_module(NATIVE_TESTS)


def _is_loss_object(name: str, obj: Any) -> bool:
    if name.startswith("_"):
        return False
    if inspect.isclass(obj):
        return issubclass(obj, native_losses.Loss) and obj is not native_losses.Loss
    return inspect.isfunction(obj) and obj.__module__ == native_losses.__name__


def covered_names() -> dict[str, Any]:
    """Every Keras loss class/function lossbridge resolves under the keras convention: name -> spec."""
    out = {}
    for name, obj in vars(native_losses).items():
        if not _is_loss_object(name, obj):
            continue
        try:
            found = lossbridge.spec(name, convention="keras")
        except LossbridgeError:
            continue
        if found.kind == "loss":
            out[name] = found
    return out


def _substitute(name: str, native: Any, spec: Any, counter: Any, split: Any) -> Any:
    if inspect.isclass(native):
        def factory(*args: Any, **kwargs: Any) -> Any:
            counter.hit(name)
            _, options = split(native, args, kwargs, 0)
            return lossbridge.get(name, backend="tensorflow", convention="keras", **options)

        factory.__name__ = name
        return factory

    def function(*args: Any, **kwargs: Any) -> Any:
        counter.hit(name)
        arrays, options = split(native, args, kwargs, len(spec.inputs))
        loss = lossbridge.get(name, backend="tensorflow", convention="keras", reduction="none", **options)
        return loss(*arrays)

    function.__name__ = name
    return function


_PROXY: dict[str, Any] = {}


def proxy(compat: Any) -> Any:
    """The stand-in for the ``losses`` module (built once)."""
    if "module" not in _PROXY:
        subs = {
            name: _substitute(name, getattr(native_losses, name), spec, compat.counter, compat.split_native_call)
            for name, spec in covered_names().items()
        }
        _PROXY["module"] = compat.Substituted(native_losses, subs)
    return _PROXY["module"]


def _cases() -> list[tuple[type[unittest.TestCase], str]]:
    loader = unittest.TestLoader()
    classes = [
        obj for obj in vars(suite_module).values()
        if inspect.isclass(obj) and issubclass(obj, unittest.TestCase) and obj.__module__ == suite_module.__name__
    ]
    return [(cls, m) for cls in classes for m in loader.getTestCaseNames(cls)]


CASES = _cases()
IDS = [f"{cls.__name__}.{m}" for cls, m in CASES]


@pytest.mark.parametrize(("cls", "method"), CASES, ids=IDS)
def test_keras_losses_suite(cls: type[unittest.TestCase], method: str, compat: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(suite_module, "losses", proxy(compat))
    outcome, detail = compat.run_native(cls, method)
    compat.settle(SUITE, f"{cls.__name__}.{method}", outcome, detail)


def test_keras_losses_expected_failures_are_current(compat: Any) -> None:
    """Every listed test exists in the installed suite (a stale entry is an error)."""
    stale = sorted(set(compat.expected_failures(SUITE)) - set(IDS))
    assert not stale, f"[{SUITE}] lists tests the installed Keras suite does not have: {stale}"


def test_keras_losses_cover_every_resolved_name() -> None:
    """The substitution covers the classes and functions Keras's suite uses (a regression guard)."""
    names = covered_names()
    for must in ("MeanSquaredError", "mean_squared_error", "SparseCategoricalCrossentropy", "Huber"):
        assert must in names
