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


# -- state shared by all parameters (OptimizerSpec.global_slots: Prodigy's d) --------------------------
def grad2(params: list[np.ndarray]) -> list[np.ndarray]:
    w, b = params
    r = A @ w + b.sum() - B
    return [A.T @ r + 0.1 * np.sin(w), np.full(b.shape, r.sum())]


GLOBAL = {"prodigy": {"d0": 1e-3, "weight_decay": 0.01}, "dadapt_adamw": {"d0": 1e-3}}


def _global_run(name, steps, params=None):
    opt = lossbridge.get(name, convention="optax", **GLOBAL[name])
    params = params if params is not None else [np.array([0.5, -0.5]), np.array([0.1])]
    for _ in range(steps):
        opt.step(params, grad2(params))
    return opt, params


@pytest.mark.parametrize("name", sorted(GLOBAL))
def test_global_state_is_saved_and_the_trajectory_continues(tmp_path, name):
    ref, params = _global_run(name, 7)
    path = tmp_path / "g.safetensors"
    saved = lossbridge.save_state(path, ref, params=params)
    assert set(saved.glob) == {"d", "numerator"} and float(saved.glob["d"]) > GLOBAL[name]["d0"]
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["lossbridge"])
        assert meta["version"] == 1 and meta["global"] == {"d": "float64", "numerator": "float64"}
        assert f.get_tensor("global/d").shape == () and float(f.get_tensor("global/d")) == float(ref._state.glob["d"])
    resumed = lossbridge.get(name, convention="optax", **GLOBAL[name])
    copy = [p.copy() for p in params]
    state = lossbridge.load_state(path, resumed, params=copy)
    assert state.glob["d"].dtype == np.float64 and state.glob["d"] == ref._state.glob["d"]
    for _ in range(100):
        ref.step(params, grad2(params))
        resumed.step(copy, grad2(copy))
        for a, b in zip(copy, params, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


def test_a_version_1_file_without_global_state_still_loads(tmp_path):
    # written as lossbridge wrote it before global state was portable: no "global" key, no global/ tensors
    from safetensors.numpy import save_file

    meta = {"format": "lossbridge.optimizer_state", "version": 1, "spec": "adam", "convention": "torch",
            "hyper": {"lr": 0.05}, "step": 1, "backend": "numpy",
            "parameters": [{"name": None, "shape": [2], "dtype": "float64",
                            "slots": {"m": "float64", "v": "float64"}}]}
    tensors = {"0/m": np.array([0.01, 0.01]), "0/v": np.array([1e-5, 1e-5])}
    path = tmp_path / "v1.safetensors"
    save_file(tensors, str(path), metadata={"lossbridge": json.dumps(meta)})
    assert read_state(path).glob == {}
    opt = lossbridge.get("adam", convention="torch", lr=0.05)
    state = lossbridge.load_state(path, opt, params=[np.ones(2)])
    assert state.count == 1 and state.glob is None
    np.testing.assert_array_equal(state.slots[0]["m"], tensors["0/m"])
    # and a state without global slots is still written exactly so (no "global" key)
    lossbridge.save_state(tmp_path / "again.safetensors", opt, params=[np.ones(2)])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "again.safetensors"), framework="numpy") as f:
        assert "global" not in json.loads(f.metadata()["lossbridge"]) and set(f.keys()) == {"0/m", "0/v"}


def _edited(tmp_path, change):
    ref, params = _global_run("prodigy", 3)
    path = tmp_path / "g.safetensors"
    lossbridge.save_state(path, ref, params=params)
    state = read_state(path)
    change(state)
    write_state(path, state)
    return path, params


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s: s.glob.pop("d"), r"global state \(shared by all parameters\) \['numerator'\], the optimizer "
                                    r"'prodigy' keeps \['d', 'numerator'\]"),
        (lambda s: s.glob.update(extra=np.float64(1.0)), r"\['d', 'extra', 'numerator'\], the optimizer 'prodigy'"),
        (lambda s: s.glob.update(d=np.full((2,), s.glob["d"])), r"global slot 'd' was saved with shape \(2,\), "
                                                                r"expected \(\)"),
        (lambda s: s.glob.clear(), r"it holds the global state .* \[\], the optimizer 'prodigy' keeps"),
    ],
    ids=["missing", "extra", "shape", "none"],
)
def test_global_state_mismatch_is_refused_and_nothing_is_loaded(tmp_path, change, match):
    path, params = _edited(tmp_path, change)
    opt = lossbridge.get("prodigy", convention="optax", **GLOBAL["prodigy"])
    with pytest.raises(InputError, match=match) as info:
        lossbridge.load_state(path, opt, params=params)
    assert "nothing was loaded" in str(info.value)
    assert opt._state is None
    with pytest.raises(InputError, match=match):  # convert=True never accepts a different state layout
        lossbridge.load_state(path, opt, params=params, convert=True)
    assert opt._state is None


def test_global_state_into_an_optimizer_without_it_is_refused_even_with_convert(tmp_path):
    ref, params = _global_run("dadapt_adamw", 3)
    path = tmp_path / "g.safetensors"
    lossbridge.save_state(path, ref, params=params)
    opt = lossbridge.get("adamw", convention="optax")
    with pytest.raises(InputError, match=r"saved by spec 'dadapt_adamw', the optimizer is 'adamw'"):
        lossbridge.load_state(path, opt, params=params)
    with pytest.raises(InputError, match="nothing was loaded"):
        lossbridge.load_state(path, opt, params=params, convert=True)
    assert opt._state is None


def test_an_undescribed_global_tensor_is_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    ref, params = _global_run("prodigy", 2)
    path = tmp_path / "g.safetensors"
    lossbridge.save_state(path, ref, params=params)
    with safe_open(str(path), framework="numpy") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tensors["global/smuggled"] = np.array(2.0)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(InputError, match=r"tensors \['global/smuggled'\] are not described by its metadata"):
        read_state(path)


@pytest.mark.parametrize(("name", "convention"), [("prodigy", "optax"), ("adam", "torch"), ("rmsprop", "optax")])
def test_array_api_strict_saves_and_resumes_the_numpy_run(tmp_path, name, convention):
    """NumPy -> array-api-strict -> NumPy: both directions, global state included."""
    xp = pytest.importorskip("array_api_strict")
    pytest.importorskip("lossbridge_strict")
    hyper = {"prodigy": GLOBAL["prodigy"], "adam": {"lr": 0.02}, "rmsprop": {"lr": 0.01, "momentum": 0.5}}[name]
    ref = lossbridge.get(name, convention=convention, **hyper)
    params = [np.array([0.5, -0.5]), np.array([0.1])]
    for _ in range(5):
        ref.step(params, grad2(params))
    lossbridge.save_state(tmp_path / "a.safetensors", ref, params=params)
    strict = lossbridge.get(name, backend="strict", convention=convention, **hyper)
    on_strict = [xp.asarray(p.copy()) for p in params]  # a copy: asarray may share NumPy's memory
    lossbridge.load_state(tmp_path / "a.safetensors", strict, params=on_strict)
    for _ in range(3):
        ref.step(params, grad2(params))
        strict.step(on_strict, [xp.asarray(g) for g in grad2([np.array(np.from_dlpack(p)) for p in on_strict])])
    saved = lossbridge.save_state(tmp_path / "b.safetensors", strict, params=on_strict)
    assert (saved.backend, saved.step, set(saved.glob)) == ("strict", 8, set(lossbridge.spec(name).global_slots))
    back = lossbridge.get(name, convention=convention, **hyper)
    resumed = [np.array(np.from_dlpack(p)) for p in on_strict]
    lossbridge.load_state(tmp_path / "b.safetensors", back, params=resumed)
    for _ in range(100):
        ref.step(params, grad2(params))
        back.step(resumed, grad2(resumed))
        for a, b in zip(resumed, params, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


# -- past the per-tensor form: L-BFGS's flat state, random streams, Polyak SGD ----------------------------
def _lbfgs_closure(params):
    (w,) = params
    r = A @ w - B
    return 0.5 * float(r @ r) + 0.1 * float(np.sum(np.cos(2 * w))), [A.T @ r - 0.2 * np.sin(2 * w)]


@pytest.mark.parametrize("convention", ["torch", "optax"])
def test_lbfgs_flat_state_is_saved_and_the_trajectory_continues(tmp_path, convention):
    hyper = {"history_size": 3, "max_iter": 2, "line_search": "strong_wolfe"} if convention == "torch" else {}
    ref = lossbridge.get("lbfgs", convention=convention, **hyper)
    params = [np.array([0.5, -0.5])]
    for _ in range(2):
        ref.step(params, _lbfgs_closure)
    path = tmp_path / "l.safetensors"
    saved = lossbridge.save_state(path, ref, params=params)
    assert saved.step == int(ref.state["n_iter"]) and saved.slots == [{}]
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["lossbridge"])
        assert meta["version"] == FORMAT_VERSION == 1 and "rng" not in meta and "global" not in meta
        # the memory is a ring buffer in the optimizer (its oldest row at "head"); the file keeps the rows
        # oldest first and no head, the layout of files written before the ring buffer
        assert set(meta["flat"]) == set(lossbridge.spec("lbfgs").slots) - {"head"}
        assert f.get_tensor("flat/s_mem").shape == (hyper.get("history_size", 10), 2)
        head = int(ref.state["head"])
        for slot in ("s_mem", "y_mem", "rho"):
            np.testing.assert_array_equal(f.get_tensor(f"flat/{slot}"), np.roll(ref.state[slot], -head, axis=0))
    resumed = lossbridge.get("lbfgs", convention=convention, **hyper)
    copy = [p.copy() for p in params]
    lossbridge.load_state(path, resumed, params=copy)
    for _ in range(10):
        ref.step(params, _lbfgs_closure)
        resumed.step(copy, _lbfgs_closure)
        np.testing.assert_array_equal(copy[0], params[0])


def test_lbfgs_refuses_a_per_tensor_state_and_a_reshaped_memory(tmp_path):
    path = _saved(tmp_path)  # adam's per-tensor state
    opt = lossbridge.get("lbfgs", convention="torch")
    with pytest.raises(InputError, match="saved by spec 'adam', the optimizer is 'lbfgs'"):
        lossbridge.load_state(path, opt, params=[np.ones(2)])
    with pytest.raises(InputError, match=r"parameter 0 .*has saved slots \['m', 'v'\], the optimizer expects \[\]"):
        lossbridge.load_state(path, opt, params=[np.ones(2)], convert=True)
    assert opt.state is None
    ref = lossbridge.get("lbfgs", convention="torch")
    params = [np.array([0.5, -0.5])]
    ref.step(params, _lbfgs_closure)
    lossbridge.save_state(path, ref, params=params)
    state = read_state(path)
    state.flat["y_mem"] = state.flat["y_mem"][:, :1]
    write_state(path, state)
    with pytest.raises(InputError, match=r"slot 'y_mem' of the state over all parameters \(2 numbers as one vector\) "
                       r"was saved with shape \(100, 1\), expected \(100, 2\)"):
        lossbridge.load_state(path, opt, params=params, convert=True)
    state.flat.pop("y_mem")
    write_state(path, state)
    with pytest.raises(InputError, match=r"as one vector \[.*\], the optimizer 'lbfgs' keeps"):
        lossbridge.load_state(path, opt, params=params)
    assert opt.state is None


def _noisy_run(steps, key=3):
    opt = lossbridge.get("noisy_sgd", convention="optax", lr=0.05, key=key)
    params = [np.array([0.5, -0.5])]
    run(opt, params, steps)
    return opt, params


def test_numpy_random_stream_is_saved_as_json_and_resumes_bit_for_bit(tmp_path):
    ref, params = _noisy_run(5)
    path = tmp_path / "n.safetensors"
    saved = lossbridge.save_state(path, ref, params=params)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["lossbridge"])
        assert set(f.keys()) == set()  # noisy_sgd keeps no slots: the stream is metadata only
    assert meta["rng"]["kind"] == "numpy.random.PCG64" == saved.rng.kind
    inner = meta["rng"]["state"]["state"]
    assert isinstance(inner["state"], str) and int(inner["state"]) == ref._state.rng["state"]["state"]  # 128 bits
    resumed = lossbridge.get("noisy_sgd", convention="optax", lr=0.05, key=3)
    copy = [p.copy() for p in params]
    lossbridge.load_state(path, resumed, params=copy)
    np.testing.assert_array_equal(run(resumed, copy, 100)[0], run(ref, params, 100)[0])


def test_a_foreign_stream_is_refused_unless_convert_and_then_restarts_from_the_key(tmp_path):
    ref, params = _noisy_run(5)
    path = tmp_path / "n.safetensors"
    lossbridge.save_state(path, ref, params=params)
    state = read_state(path)
    from lossbridge.portable import RandomState

    state.rng = RandomState("torch.Generator", np.zeros(5056, np.uint8))
    write_state(path, state)
    opt = lossbridge.get("noisy_sgd", convention="optax", lr=0.05, key=3)
    with pytest.raises(InputError, match=r"its random stream is a torch.Generator state, the optimizer draws from a "
                       r"numpy.random.PCG64.*convert=True") as info:
        lossbridge.load_state(path, opt, params=params)
    assert "nothing was loaded" in str(info.value) and opt._state is None
    loaded = lossbridge.load_state(path, opt, params=params, convert=True)
    assert loaded.count == 5 and loaded.rng == np.random.default_rng(3).bit_generator.state
    assert read_state(path).rng.state.dtype == np.uint8  # a tensor stream reads back as one


def test_polyak_sgd_state_round_trips(tmp_path):
    opt = lossbridge.get("polyak_sgd", convention="optax", max_learning_rate=0.05)
    params = [np.array([0.5, -0.5])]
    for _ in range(5):
        value, grads = _lbfgs_closure(params)
        opt.step(params, grads, value=value)
    path = tmp_path / "p.safetensors"
    saved = lossbridge.save_state(path, opt, params=params)
    assert saved.step == 5 and set(saved.glob) == {"step_size"} and saved.rng is None
    resumed = lossbridge.get("polyak_sgd", convention="optax", max_learning_rate=0.05)
    copy = [p.copy() for p in params]
    state = lossbridge.load_state(path, resumed, params=copy)
    assert state.count == 5 and state.glob["step_size"] == opt._state.glob["step_size"]
