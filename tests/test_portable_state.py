"""Portable optimizer state on the NumPy backend: the file, the checks, nothing half-loaded.

The cross-framework round trips (torch -> JAX, JAX -> Keras, ...) are in tests/portable (the
``all`` environment); here only NumPy and the core, so every environment checks the format.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import InputError
from lossbridge.portable import FORMAT_VERSION, PortableState, read_state, write_state

A = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.1]])
B = np.array([0.3, -0.2, 1.0])


def grad(params: list[np.ndarray]) -> list[np.ndarray]:
    (w,) = params
    return [A.T @ (A @ w - B) + 0.1 * np.sin(w)]


def run(opt, params, steps):
    for _ in range(steps):
        opt.step(params, grad(params))
    return params


@pytest.mark.parametrize(("name", "convention"), [("adam", "torch"), ("sgd", "keras"), ("rmsprop", "optax")])
def test_numpy_save_load_continues_the_trajectory(tmp_path, name, convention):
    hyper = {"lr": 0.05} if name != "sgd" else {"lr": 0.05, "momentum": 0.9}
    ref = lossbridge.get(name, convention=convention, **hyper)
    params = run(ref, [np.array([0.5, -0.5])], 7)
    path = tmp_path / "state.safetensors"
    saved = lossbridge.save_state(path, ref, params=params)
    assert saved.step == 7 and saved.spec == name and saved.convention == convention
    resumed = lossbridge.get(name, convention=convention, **hyper)
    copy = [p.copy() for p in params]
    lossbridge.load_state(path, resumed, params=copy)
    expected = run(ref, params, 30)
    got = run(resumed, copy, 30)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-15, atol=0)


def test_file_holds_the_documented_metadata_and_complex_pairs(tmp_path):
    from safetensors import safe_open

    state = PortableState(
        spec="adam",
        convention=None,
        hyper={"lr": 0.1},
        step=3,
        shapes=[(2,)],
        dtypes=["complex128"],
        slots=[{"m": np.array([1 + 2j, 3 - 1j]), "v": np.array([0.5, 0.25])}],
        names=["w"],
        backend="numpy",
    )
    path = tmp_path / "s.safetensors"
    write_state(path, state)
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["lossbridge"])
        keys = set(f.keys())
    assert meta["version"] == FORMAT_VERSION and meta["spec"] == "adam" and meta["step"] == 3
    assert meta["parameters"] == [{"name": "w", "shape": [2], "dtype": "complex128",
                                   "slots": {"m": "complex128", "v": "float64"}}]
    assert keys == {"0/m.real", "0/m.imag", "0/v"}
    back = read_state(path)
    np.testing.assert_array_equal(back.slots[0]["m"], state.slots[0]["m"])
    assert back.slots[0]["m"].dtype == np.complex128


def _saved(tmp_path, name="adam", convention="torch", lr=0.05, shape=(2,)):
    opt = lossbridge.get(name, convention=convention, lr=lr)
    params = [np.ones(shape)]
    opt.step(params, [np.full(shape, 0.1)])
    path = tmp_path / "s.safetensors"
    lossbridge.save_state(path, opt, params=params)
    return path


@pytest.mark.parametrize(
    ("target", "params", "match"),
    [
        (("adamw", "torch", 0.05), [np.ones(2)], "saved by spec 'adam', the optimizer is 'adamw'"),
        (("adam", "keras", 0.05), [np.ones(2)], "saved under convention 'torch', the optimizer uses 'keras'"),
        (("adam", "torch", 0.01), [np.ones(2)], r"hyperparameters differ \(lr: saved 0.05, optimizer 0.01\)"),
        (("adam", "torch", 0.05), [np.ones(3)], r"parameter 0 was saved with shape \(2,\), is \(3,\)"),
        (("adam", "torch", 0.05), [np.ones(2), np.ones(2)], "it holds 1 parameter"),
    ],
)
def test_mismatch_is_refused_naming_both_sides_and_nothing_is_loaded(tmp_path, target, params, match):
    path = _saved(tmp_path)
    name, convention, lr = target
    opt = lossbridge.get(name, convention=convention, lr=lr)
    with pytest.raises(InputError, match=match) as info:
        lossbridge.load_state(path, opt, params=params)
    assert "nothing was loaded" in str(info.value)
    assert opt._state is None


def test_convert_true_loads_across_conventions(tmp_path):
    path = _saved(tmp_path)
    opt = lossbridge.get("adam", convention="keras", lr=0.01)
    state = lossbridge.load_state(path, opt, params=[np.ones(2)], convert=True)
    assert state.count == 1


def test_not_an_optimizer_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="optimizer: expected a lossbridge optimizer"):
        lossbridge.save_state(tmp_path / "x", object())
    with pytest.raises(InputError, match="no step yet"):
        lossbridge.save_state(tmp_path / "x", lossbridge.get("adam"), params=[np.ones(2)])


def test_a_file_that_is_not_a_lossbridge_state_is_refused(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"x": np.ones(2)}, str(path))
    with pytest.raises(InputError, match="not a lossbridge optimizer state"):
        lossbridge.load_state(path, lossbridge.get("adam"), params=[np.ones(2)])


def test_truncated_or_edited_files_are_refused_with_a_message(tmp_path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    opt = lossbridge.get("adam", convention="torch", lr=0.05)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a readable lossbridge optimizer state"):
        lossbridge.load_state(truncated, opt, params=[np.ones(2)])
    edited = tmp_path / "edited.safetensors"
    assert data.count(b'\\"version\\": 1') == 1  # the metadata is JSON inside the JSON header
    edited.write_bytes(data.replace(b'\\"version\\": 1', b'\\"version\\": 9'))
    with pytest.raises(InputError, match="format version 9"):
        lossbridge.load_state(edited, opt, params=[np.ones(2)])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="not a readable lossbridge optimizer state"):
        lossbridge.load_state(garbage, opt, params=[np.ones(2)])
    with pytest.raises(InputError, match="no such file"):
        lossbridge.load_state(tmp_path / "missing.safetensors", opt, params=[np.ones(2)])
    assert opt._state is None


def test_an_interrupted_save_leaves_the_previous_file_readable(tmp_path, monkeypatch):
    import safetensors.numpy

    path = _saved(tmp_path)
    before = path.read_bytes()

    def killed(tensors, filename, metadata=None):  # the process dies after writing half a file
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", killed)
    opt = lossbridge.get("adam", convention="torch", lr=0.05)
    params = [np.ones(2)]
    opt.step(params, [np.full(2, 0.3)])
    with pytest.raises(KeyboardInterrupt):
        lossbridge.save_state(path, opt, params=params)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert read_state(path).step == 1
