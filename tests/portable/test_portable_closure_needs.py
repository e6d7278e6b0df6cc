"""Portable state past the per-tensor form: L-BFGS's flat state, Polyak SGD, and random streams.

* ``lbfgs`` keeps ONE state over all parameters as a vector (the ``flat/`` section of the file). A
  run saved after k closure steps on NumPy, torch or JAX resumes on another backend and follows the
  saving run continued (float64, relative error <= 1e-12 per step), in the rotation
  NumPy -> torch -> JAX -> NumPy, under both conventions. Every side evaluates the SAME objective
  numbers (NumPy's, handed to torch and, through ``jax.pure_callback``, to JAX), so what is compared
  is the state transfer, not three implementations of the objective.
* ``torch.optim.LBFGS``'s own state maps onto the spec's slots (its lists are the newest rows of the
  fixed memory): a native run saved and resumed in lossbridge follows the native run continued.
* ``polyak_sgd`` (needs the loss value; its only state is the step count and the last step size)
  resumes across backends like any other optimizer.
* ``sophia`` and ``noisy_sgd`` draw random numbers from each backend's own generator: the stream is
  saved with its kind, a same-backend save/load continues BIT FOR BIT (100 steps), and loading
  another backend's stream is an error naming both generators unless ``convert=True`` (the
  deterministic state loads, the stream restarts from the optimizer's key).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
pytest.importorskip("lossbridge_torch")
pytest.importorskip("lossbridge_jax")

import jax.numpy as jnp  # noqa: E402

import lossbridge  # noqa: E402
from lossbridge.errors import InputError  # noqa: E402
from lossbridge.portable import read_state, write_state  # noqa: E402

from ._problems import (  # noqa: E402
    LBFGS_START,
    NumpyHolder,
    hvp,
    jax_loss,
    numpy_value_fn,
    objective,
    optax_loop_step,
    torch_loss,
    value_grad,
    value_grad_quadratic,
)
from ._problems import START as PSTART  # noqa: E402

jax.config.update("jax_enable_x64", True)

RTOL = 1e-12


# -- the L-BFGS problem of tests/conventions/test_lbfgs_oracles.py (tests/portable/_problems.py) -----------
START = LBFGS_START


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


class LbfgsNumpy(NumpyHolder):
    def __init__(self, convention: str, hyper: dict[str, Any], start: list[np.ndarray]) -> None:
        self.opt = lossbridge.get("lbfgs", convention=convention, **hyper)
        self.p = [np.array(x) for x in start]

    def step(self) -> None:
        self.opt.step(self.p, objective)


class LbfgsTorch:
    def __init__(self, convention: str, hyper: dict[str, Any], start: list[np.ndarray], cls: Any = None) -> None:
        self.p = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in start]
        if cls is None:
            self.opt = lossbridge.get("lbfgs", backend="torch", convention=convention, **hyper)(self.p)
        else:
            self.opt = cls(self.p, **hyper)

    def _closure(self) -> Any:  # NumPy's numbers, handed to torch
        value, grads = objective([p.detach().numpy() for p in self.p])
        for p, g in zip(self.p, grads, strict=True):
            p.grad = torch.tensor(g)
        return torch.tensor(value, dtype=torch.float64)

    def step(self) -> None:
        self.opt.step(self._closure)

    @property
    def params(self) -> list[np.ndarray]:
        return [p.detach().numpy().copy() for p in self.p]

    def save(self, path: Any) -> Any:
        return lossbridge.save_state(path, self.opt)

    def load(self, path: Any, **kw: Any) -> Any:
        return lossbridge.load_state(path, self.opt, **kw)


_value_fn = numpy_value_fn(objective)  # NumPy's numbers inside JAX's loops


#: one compiled step per (spec, convention, hyperparameters), shared by the sides of a test (equal transformations)
_COMPILED: dict[str, Any] = {}


def _compiled_step(cache: str, tx: Any) -> Any:
    """The jitted step of ``tx`` in Optax's loop (``value_and_grad_from_state``, NumPy's objective numbers),
    compiled once per ``cache`` key: the line searches' loops take seconds to compile."""
    if cache not in _COMPILED:
        _COMPILED[cache] = optax_loop_step(tx, _value_fn)
    return _COMPILED[cache]


class LbfgsJax:
    def __init__(self, convention: str, hyper: dict[str, Any], start: list[np.ndarray]) -> None:
        self.tx = lossbridge.get("lbfgs", backend="jax", convention=convention, **hyper)
        self.p = [jnp.asarray(x) for x in start]
        self.state = self.tx.init(self.p)
        self._step = _compiled_step(f"lbfgs-{convention}-{sorted(hyper.items())}", self.tx)

    def step(self) -> None:
        self.p, self.state = self._step(self.p, self.state)

    @property
    def params(self) -> list[np.ndarray]:
        return [np.asarray(p).copy() for p in self.p]

    def save(self, path: Any) -> Any:
        return lossbridge.save_state(path, self.tx, state=self.state, params=self.p)

    def load(self, path: Any, **kw: Any) -> Any:
        self.state = lossbridge.load_state(path, self.tx, params=self.p, **kw)
        return self.state


LBFGS_SIDES = {"numpy": LbfgsNumpy, "torch": LbfgsTorch, "jax": LbfgsJax}
LBFGS_CASES = {
    # two iterations per step(closure), so 20 steps keep moving
    "torch": {"line_search": "strong_wolfe", "history_size": 5, "max_iter": 2},
    "optax": {},  # one iteration per update, cyclic memory of 10, zoom line search
}
#: per convention. The transfer itself is exact (asserted bit for bit below); what the continued runs differ
#: by is the backends' own arithmetic (torch's and XLA's sums and dot products round differently from
#: NumPy's), amplified where L-BFGS approaches the minimum (gradient changes lose their digits). From the
#: same start WITHOUT any transfer, NumPy, torch and JAX differ by as much: under the optax convention
#: (zoom line search) up to 2.6e-12 around the 16th update of this problem, so that convention's bound is
#: tests/conventions/test_lbfgs_oracles.py's cross-backend 1e-11; under the torch convention 1e-12 holds.
LBFGS_RTOL = {"torch": RTOL, "optax": 1e-11}
K, LEG = 3, 20


def _follow(reference: Any, resumed: Any, steps: int) -> float:
    worst = 0.0
    for _ in range(steps):
        reference.step()
        resumed.step()
        for a, b in zip(resumed.params, reference.params, strict=True):
            worst = max(worst, _rel(a, b))
    return worst


ROTATION = [("numpy", "torch"), ("torch", "jax"), ("jax", "numpy")]


@pytest.mark.parametrize(("source", "target"), ROTATION, ids=[f"{s}-to-{t}" for s, t in ROTATION])
@pytest.mark.parametrize("convention", sorted(LBFGS_CASES))
def test_lbfgs_resumes_across_backends(tmp_path, convention, source, target):
    """The rotation NumPy -> torch -> JAX -> NumPy: each backend saves after K steps, the next resumes."""
    hyper = LBFGS_CASES[convention]
    reference = LBFGS_SIDES[source](convention, hyper, START)
    for _ in range(K):
        reference.step()
    path = tmp_path / "l.safetensors"
    saved = reference.save(path)
    assert saved.spec == "lbfgs" and saved.convention == convention and saved.backend == source
    assert all(s == {} for s in saved.slots) and saved.flat["s_mem"].shape == (hyper.get("history_size", 10), 9)
    assert np.count_nonzero(saved.flat["rho"]) >= 2  # the memory holds pairs: resuming empty would differ
    before = reference.params
    resumed = LBFGS_SIDES[target](convention, hyper, before)
    resumed.load(path)
    again = resumed.save(tmp_path / "again.safetensors")  # the loaded state, bit for bit
    for k, value in saved.flat.items():
        np.testing.assert_array_equal(again.flat[k], value, err_msg=k)
    worst = _follow(reference, resumed, LEG)
    assert worst <= LBFGS_RTOL[convention], f"{source} -> {target}: {worst:.3g}"
    assert _rel(resumed.params[1], before[1]) > 1e-3  # the run moved on (not a comparison at a converged point)


def test_lbfgs_file_layout_and_a_wrong_memory_shape_is_refused(tmp_path):
    hyper = LBFGS_CASES["torch"]
    source = LbfgsNumpy("torch", hyper, START)
    source.step()
    path = tmp_path / "l.safetensors"
    source.save(path)
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["lossbridge"])
        keys = set(f.keys())
    # the optimizer's ring-buffer head is not in the file: its memory rows are stored oldest first
    assert meta["version"] == 1 and set(meta["flat"]) == set(lossbridge.spec("lbfgs").slots) - {"head"}
    assert keys == {f"flat/{k}" for k in meta["flat"]}
    assert [p["shape"] for p in meta["parameters"]] == [[3], [3, 2]] and all(p["slots"] == {} for p in
                                                                              meta["parameters"])
    # a file whose memory is for another history size (edited here) is refused on every backend, even with convert
    state = read_state(path)
    state.flat["s_mem"] = state.flat["s_mem"][1:]
    write_state(path, state)
    for name, side in LBFGS_SIDES.items():
        target = side("torch", hyper, START)
        before = target.params
        for convert in (False, True):
            with pytest.raises(InputError, match=r"slot 's_mem' of the state over all parameters \(9 numbers as one "
                               r"vector\) was saved with shape \(4, 9\), expected \(5, 9\)") as info:
                target.load(path, convert=convert)
            assert "nothing was loaded" in str(info.value), name
        target.step()  # a fresh optimizer: the first step takes min(1, 1/|g|_1) lr as if never loaded
        fresh = LbfgsNumpy("torch", hyper, START)
        fresh.step()
        assert _rel(target.params[0], fresh.params[0]) <= RTOL and before[0].shape == (3,)
    # another history size on the optimizer: a hyperparameter difference, then (convert) the memory's shape
    source.save(path)
    other = LbfgsTorch("torch", {**hyper, "history_size": 7}, START)
    with pytest.raises(InputError, match=r"hyperparameters differ \(history_size: saved 5, optimizer 7\)"):
        other.load(path)
    with pytest.raises(InputError, match=r"slot 's_mem' .* shape \(5, 9\), expected \(7, 9\)"):
        other.load(path, convert=True)
    assert not other.opt.state
    # another parameter layout with the same total size: the per-parameter shapes are refused
    with pytest.raises(InputError, match=r"parameter 1 was saved with shape \(3, 2\), is \(6,\)"):
        LbfgsNumpy("torch", hyper, [START[0], START[1].reshape(6)]).load(path)


# -- torch.optim.LBFGS's own state -----------------------------------------------------------------------
NATIVE_LBFGS = [
    {"history_size": 4, "max_iter": 2},  # fixed step lr: torch's default line_search_fn=None
    # LBFGS_CASES["torch"] (so JAX compiles its step once for both tests); 4 steps of 2 iterations can hold
    # more pairs than 5: the native lists are the newest rows of a memory that has wrapped
    {"line_search_fn": "strong_wolfe", "history_size": 5, "max_iter": 2},
]


NATIVE_LBFGS_CASES = [(native, target) for native in NATIVE_LBFGS for target in ("numpy", "torch", "jax")]


@pytest.mark.parametrize(("native", "target"), NATIVE_LBFGS_CASES,
                         ids=[f"{'strong_wolfe' if n.get('line_search_fn') else 'fixed'}-{t}" for n, t in
                              NATIVE_LBFGS_CASES])
def test_native_torch_lbfgs_resumes_in_lossbridge(tmp_path, native, target):
    reference = LbfgsTorch("torch", native, START, cls=torch.optim.LBFGS)
    for _ in range(4):
        reference.step()
    state = reference.opt.state[reference.p[0]]
    assert 0 < len(state["old_dirs"]) <= native["history_size"]
    path = tmp_path / "native.safetensors"
    saved = reference.save(path)
    assert (saved.spec, saved.convention, saved.step) == ("lbfgs", "torch", state["n_iter"])
    m = native["history_size"]
    rows = len(state["old_dirs"])
    np.testing.assert_array_equal(saved.flat["y_mem"][m - rows:], np.stack([y.numpy() for y in state["old_dirs"]]))
    assert not saved.flat["rho"][: m - rows].any() and np.isinf(saved.flat["value"])
    hyper = {("line_search" if k == "line_search_fn" else k): v for k, v in native.items()}
    resumed = LBFGS_SIDES[target]("torch", hyper, reference.params)
    resumed.load(path)
    # lossbridge's arithmetic against torch's own (the convention oracle's 1e-10 in tests/conventions)
    worst = _follow(reference, resumed, LEG)
    assert worst <= 1e-10, f"{worst:.3g}"


class OptaxLbfgs(LbfgsJax):
    """``optax.lbfgs`` itself in Optax's loop (NumPy's objective numbers, as every side here)."""

    def __init__(self, native: dict[str, Any], start: list[np.ndarray]) -> None:
        self.tx, self.native = optax.lbfgs(**native), native
        self.p = [jnp.asarray(x) for x in start]
        self.state = self.tx.init(self.p)
        self._step = _compiled_step(f"optax.lbfgs-{sorted(native.items())}", self.tx)

    def save(self, path: Any) -> Any:
        return lossbridge.save_state(path, None, state=self.state, params=self.p, spec="lbfgs", convention="optax",
                                     hyper=self.native)


#: each case compiles Optax's zoom line search twice (seconds): three cases, every target once
NATIVE_OPTAX_LBFGS = [({}, "jax"), ({"memory_size": 4}, "numpy"), ({"memory_size": 4}, "torch")]


@pytest.mark.parametrize(("native", "target"), NATIVE_OPTAX_LBFGS, ids=["default-jax", "memory4-numpy",
                                                                        "memory4-torch"])
def test_native_optax_lbfgs_resumes_in_lossbridge(tmp_path, native, target):
    reference = OptaxLbfgs(native, START)
    for _ in range(6):  # more updates than memory_size=4: the cyclic memory has wrapped around
        reference.step()
    path = tmp_path / "optax.safetensors"
    saved = reference.save(path)
    assert (saved.spec, saved.convention, saved.step) == ("lbfgs", "optax", 6)
    m = native.get("memory_size", 10)
    assert saved.flat["s_mem"].shape == (m, 9) and np.isfinite(saved.flat["value"])
    # the newest pair is the last row: the step from the previous point to the current one
    hyper = {"history_size": m} if "memory_size" in native else {}
    resumed = LBFGS_SIDES[target]("optax", hyper, reference.params)
    resumed.load(path)
    worst = _follow(reference, resumed, LEG)
    assert worst <= 1e-10, f"{worst:.3g}"  # lossbridge's arithmetic against Optax's (the convention oracle's bound)


def test_a_torch_lbfgs_state_with_more_pairs_than_its_history_is_refused(tmp_path):
    reference = LbfgsTorch("torch", {"history_size": 2, "max_iter": 3}, START, cls=torch.optim.LBFGS)
    reference.step()
    state = reference.opt.state[reference.p[0]]
    for k in ("old_dirs", "old_stps", "ro"):  # three pairs in a memory of two (a corrupted or edited state)
        state[k] = state[k][:1] * 3
    with pytest.raises(InputError, match=r"holds 3 steps, 3 gradient changes and 3 weights for history_size=2"):
        reference.save(tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


# -- polyak_sgd: needs the loss value, state = the step count and the last step size -------------------
# (the per-tensor problem of tests/portable/_problems.py: value_grad, its quadratic part, hvp)
def _objective(name: str) -> Any:
    return value_grad_quadratic if name == "polyak_sgd" else value_grad


class NeedsNumpy:
    def __init__(self, name: str, hyper: dict[str, Any], start: list[np.ndarray]) -> None:
        self.name, self.opt, self.p = name, lossbridge.get(name, convention="optax", **hyper), [x.copy() for x in start]

    def step(self) -> None:
        value, grads = _objective(self.name)(self.p)
        self.opt.step(self.p, grads, value=value, hvp=hvp if self.name == "sophia" else None)

    params = LbfgsNumpy.params
    save = LbfgsNumpy.save
    load = LbfgsNumpy.load


class NeedsTorch:
    def __init__(self, name: str, hyper: dict[str, Any], start: list[np.ndarray]) -> None:
        self.name = name
        self.p = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in start]
        self.opt = lossbridge.get(name, backend="torch", convention="optax", **hyper)(self.p)

    def _loss(self) -> Any:  # the objective in torch (sophia's Hessian-vector products need its graph)
        return torch_loss(self.p)

    def step(self) -> None:
        if self.name == "sophia":
            self.opt.step(self._loss)
            return

        def closure() -> Any:  # NumPy's numbers
            value, grads = _objective(self.name)(self.params)
            for p, g in zip(self.p, grads, strict=True):
                p.grad = torch.tensor(g)
            return torch.tensor(value, dtype=torch.float64)

        self.opt.step(closure)

    params = LbfgsTorch.params
    save = LbfgsTorch.save
    load = LbfgsTorch.load


class NeedsJax:
    def __init__(self, name: str, hyper: dict[str, Any], start: list[np.ndarray]) -> None:
        self.name, self.tx = name, lossbridge.get(name, backend="jax", convention="optax", **hyper)
        self.p = [jnp.asarray(x) for x in start]
        self.state = self.tx.init(self.p)

        tx, cache = self.tx, f"{name}-{sorted(hyper.items())}"
        if cache not in _COMPILED:

            @jax.jit
            def update(grads: Any, state: Any, params: Any, value: Any) -> Any:  # one trace, not one per step
                return tx.update(grads, state, params, value=value, obj_fn=jax_loss)

            _COMPILED[cache] = update
        self._update = _COMPILED[cache]

    def step(self) -> None:
        value, grads = _objective(self.name)(self.params)
        updates, self.state = self._update([jnp.asarray(g) for g in grads], self.state, self.p, value)
        self.p = optax.apply_updates(self.p, updates)

    params = LbfgsJax.params
    save = LbfgsJax.save
    load = LbfgsJax.load


NEEDS_SIDES = {"numpy": NeedsNumpy, "torch": NeedsTorch, "jax": NeedsJax}
POLYAK = {"lr": 1.0, "max_learning_rate": 0.05, "f_min": 0.0}


@pytest.mark.parametrize(("source", "target"), [("numpy", "torch"), ("torch", "jax"), ("jax", "numpy")])
def test_polyak_sgd_resumes_across_backends(tmp_path, source, target):
    reference = NEEDS_SIDES[source]("polyak_sgd", POLYAK, PSTART)
    for _ in range(7):
        reference.step()
    path = tmp_path / "p.safetensors"
    saved = reference.save(path)
    assert saved.step == 7 and saved.rng is None and 0 < float(saved.glob["step_size"]) <= POLYAK["max_learning_rate"]
    resumed = NEEDS_SIDES[target]("polyak_sgd", POLYAK, reference.params)
    resumed.load(path)
    worst = max(_follow(reference, resumed, 1) for _ in range(100))
    assert worst <= RTOL, f"{worst:.3g}"
    again = resumed.save(tmp_path / "again.safetensors")  # the step count and last step size, as the run's
    assert again.step == 107 and float(again.glob["step_size"]) == pytest.approx(float(reference.save(path).glob[
        "step_size"]), rel=1e-12)


# -- sophia / noisy_sgd: the random stream ---------------------------------------------------------------
#: sophia with gamma and beta_2 that leave its step unclipped: the Hessian estimates (the stream) move the run
RANDOM = {"sophia": {"lr": 0.01, "update_interval": 3, "gamma": 1.0, "beta_2": 0.5, "key": 5},
          "noisy_sgd": {"lr": 0.01, "key": 5}}
KINDS = {"numpy": "numpy.random.PCG64", "torch": "torch.Generator", "jax": "jax.random.threefry2x32"}


@pytest.mark.parametrize("backend", sorted(NEEDS_SIDES))
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_a_random_stream_resumes_bit_for_bit_on_the_same_backend(tmp_path, name, backend):
    reference = NEEDS_SIDES[backend](name, RANDOM[name], PSTART)
    for _ in range(7):  # sophia draws at steps 1, 4, 7: the saved stream has advanced
        reference.step()
    path = tmp_path / "r.safetensors"
    saved = reference.save(path)
    assert saved.rng is not None and saved.rng.kind == KINDS[backend]
    again = read_state(path).rng
    assert again.kind == saved.rng.kind
    if isinstance(saved.rng.state, np.ndarray):
        np.testing.assert_array_equal(again.state, saved.rng.state)
    else:
        assert again.state == saved.rng.state
    resumed = NEEDS_SIDES[backend](name, RANDOM[name], reference.params)
    resumed.load(path)
    for _ in range(100):
        reference.step()
        resumed.step()
        for a, b in zip(resumed.params, reference.params, strict=True):
            np.testing.assert_array_equal(a, b)
    fresh = NEEDS_SIDES[backend](name, RANDOM[name], PSTART)  # and the stream matters: a restarted one differs
    fresh.load(path)
    other = NEEDS_SIDES[backend](name, {**RANDOM[name], "key": 6}, PSTART)
    other.load(path, convert=True)  # another key: the stream restarts from it
    for _ in range(5):  # sophia's next draw is at step 10, used from step 11 on
        fresh.step()
        other.step()
    assert not np.array_equal(fresh.params[1], other.params[1])


ACROSS = [("numpy", "torch"), ("torch", "jax"), ("jax", "numpy")]


@pytest.mark.parametrize(("source", "target"), ACROSS, ids=[f"{s}-to-{t}" for s, t in ACROSS])
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_another_backends_stream_is_refused_unless_convert(tmp_path, name, source, target):
    reference = NEEDS_SIDES[source](name, RANDOM[name], PSTART)
    for _ in range(4):
        reference.step()
    path = tmp_path / "r.safetensors"
    saved = reference.save(path)
    side = NEEDS_SIDES[target](name, RANDOM[name], reference.params)
    pattern = (rf"its random stream is a {KINDS[source]} state, the optimizer draws from a {KINDS[target]}.*"
               "pass convert=True")
    with pytest.raises(InputError, match=pattern) as info:
        side.load(path)
    assert "nothing was loaded" in str(info.value)
    if target == "torch":
        assert not side.opt.state
    # convert=True: the deterministic state is the saved one, the stream restarts from the optimizer's key
    side.load(path, convert=True)
    side.save(tmp_path / "converted.safetensors")
    converted = read_state(tmp_path / "converted.safetensors")
    assert converted.step == 4 and converted.rng.kind == KINDS[target]
    for mine, theirs in zip(converted.slots, saved.slots, strict=True):
        assert set(mine) == set(theirs)
        for k in mine:
            np.testing.assert_array_equal(mine[k], theirs[k])
    key = RANDOM[name]["key"]
    if target == "numpy":
        assert converted.rng.state == np.random.default_rng(key).bit_generator.state
    elif target == "torch":
        np.testing.assert_array_equal(converted.rng.state, torch.Generator().manual_seed(key).get_state().numpy())
    else:
        np.testing.assert_array_equal(converted.rng.state, np.asarray(jax.random.key_data(jax.random.key(key))))
    side.step()  # and it runs on


def test_a_file_without_a_stream_is_refused_for_a_random_spec_unless_convert(tmp_path):
    reference = NeedsNumpy("noisy_sgd", RANDOM["noisy_sgd"], PSTART)
    reference.step()
    path = tmp_path / "r.safetensors"
    reference.save(path)
    state = read_state(path)
    state.rng = None  # as a file written before streams were saved
    write_state(path, state)
    side = NeedsNumpy("noisy_sgd", RANDOM["noisy_sgd"], PSTART)
    with pytest.raises(InputError, match=r"draws from a numpy.random.PCG64 stream, the file holds none"):
        side.load(path)
    assert side.opt._state is None
    assert side.load(path, convert=True).count == 1
