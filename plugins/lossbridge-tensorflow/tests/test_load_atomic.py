"""Loading a lossbridge Keras optimizer's state is atomic: ``set_weights`` and
``load_own_variables`` with a wrong number of arrays or a wrong shape fail before any variable
changes (Keras's own assign one by one and stop at the first bad shape; ``set_weights`` ignores
extra or missing arrays)."""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import InputError

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


def _trained(name: str = "adam", **kwargs):
    w = keras.Variable(np.ones((2, 3)), dtype="float64", name="w")
    b = keras.Variable(np.zeros(3), dtype="float64", name="b")
    opt = lossbridge.get(name, backend="tensorflow", **kwargs)
    for _ in range(2):
        opt.apply([tf.ones((2, 3), tf.float64), tf.fill((3,), tf.constant(0.5, tf.float64))], [w, b])
    return opt


def _snapshot(opt) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in opt.variables]


def _assert_unchanged(opt, before: list[np.ndarray]) -> None:
    after = _snapshot(opt)
    assert len(after) == len(before)
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["adam", "adafactor", "sgd"])
def test_set_weights_wrong_shape_changes_nothing(name: str) -> None:
    opt = _trained(name)
    before = _snapshot(opt)
    bad = [w + 1.0 for w in before]
    bad[-1] = np.zeros(tuple(s + 1 for s in bad[-1].shape) or (2,))  # the LAST one is wrong
    with pytest.raises(InputError, match=r"set_weights refused \(nothing was loaded\): variable .* has shape"):
        opt.set_weights(bad)
    _assert_unchanged(opt, before)
    with pytest.raises(ValueError):  # InputError is a ValueError, as Keras's own refusal
        opt.set_weights(bad)


@pytest.mark.parametrize("count", ["fewer", "more"])
def test_set_weights_wrong_count_changes_nothing(count: str) -> None:
    opt = _trained()
    before = _snapshot(opt)
    weights = [w + 1.0 for w in before]
    weights = weights[:-1] if count == "fewer" else [*weights, np.zeros(3)]
    with pytest.raises(InputError, match=rf"expected {len(before)} arrays .*got {len(weights)}"):
        opt.set_weights(weights)
    _assert_unchanged(opt, before)


def test_set_weights_good_round_trip() -> None:
    opt = _trained()
    target = [w + 1.0 for w in _snapshot(opt)]
    opt.set_weights(target)
    _assert_unchanged(opt, target)


def test_load_own_variables_wrong_shape_changes_nothing() -> None:
    opt = _trained()
    before = _snapshot(opt)
    store: dict[str, np.ndarray] = {}
    opt.save_own_variables(store)
    store = {k: v + 1.0 for k, v in store.items()}
    last = str(len(store) - 1)
    store[last] = np.zeros(tuple(s + 1 for s in store[last].shape) or (2,))
    with pytest.raises(InputError, match=r"load_own_variables refused \(nothing was loaded\)"):
        opt.load_own_variables(store)
    _assert_unchanged(opt, before)


def test_load_own_variables_missing_key_changes_nothing() -> None:
    opt = _trained()
    before = _snapshot(opt)
    store: dict[str, np.ndarray] = {}
    opt.save_own_variables(store)
    store = {("x" if k == "1" else k): v for k, v in store.items()}
    with pytest.raises(InputError, match=r"lacks the entries \['1'\]"):
        opt.load_own_variables(store)
    _assert_unchanged(opt, before)


def test_load_own_variables_wrong_count_is_keras_skip() -> None:
    """Another number of arrays: Keras's own answer (a warning, nothing loaded) is kept."""
    opt = _trained()
    before = _snapshot(opt)
    store: dict[str, np.ndarray] = {}
    opt.save_own_variables(store)
    store.pop(str(len(store) - 1))
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        opt.load_own_variables(store)
    _assert_unchanged(opt, before)


def test_load_own_variables_round_trip() -> None:
    opt = _trained()
    store: dict[str, np.ndarray] = {}
    opt.save_own_variables(store)
    target = {k: v + 1.0 for k, v in store.items()}
    opt.load_own_variables(target)
    _assert_unchanged(opt, [target[str(i)] for i in range(len(target))])
