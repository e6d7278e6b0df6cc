"""Optax's own loss tests (``optax/losses/*_test.py`` from the installed wheel), run on lossbridge's
losses under the optax convention on the JAX backend.

Every ``optax.losses`` function that ``lossbridge.get(name, backend="jax", convention="optax")``
resolves is substituted in the private module the Optax tests import it from
(``from optax.losses import _classification``). Optax's tests capture some functions at import
time (``@parameterized.parameters(_ranking.ranking_softmax_loss, ...)``), so each test module is
loaded afresh, under a private name, while ``optax.losses._<module>`` is the substituted stand-in.
A substitute binds the native call to the native signature: the array arguments go to the
lossbridge function, the keywords it takes per call (``axis``, ``where``, ``sample_weight`` ...)
too, and every other keyword is a parameter of ``lossbridge.get``. Outcomes are settled by the
rules in ``conftest.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import unittest
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

optax = pytest.importorskip("optax")
pytest.importorskip("jax")
pytest.importorskip("lossbridge_jax")
pytest.importorskip("absl.testing")

import lossbridge  # noqa: E402
from lossbridge.errors import LossbridgeError  # noqa: E402

SUITE = "optax_losses"
PACKAGE = importlib.import_module("optax.losses")
TEST_DIR = Path(PACKAGE.__file__).parent
TEST_FILES = sorted(TEST_DIR.glob("_*_test.py"))
SUBMODULES = sorted(p.stem[: -len("_test")] for p in TEST_FILES)


def covered_names() -> dict[str, tuple[Any, Any]]:
    """Public ``optax.losses`` functions lossbridge resolves under the optax convention: name -> (native, spec)."""
    out = {}
    for name in dir(PACKAGE):
        native = getattr(PACKAGE, name)
        if name.startswith("_") or not inspect.isfunction(native):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # deprecated names warn when used
                found = lossbridge.spec(name, convention="optax")
        except LossbridgeError:
            continue
        if found.kind == "loss":
            out[name] = (native, found)
    return out


_KEYWORDS: dict[int, set[str]] = {}


def _call_keywords(loss: Any) -> set[str]:
    found = _KEYWORDS.get(id(loss))
    if found is None:
        found = _KEYWORDS[id(loss)] = {
            p.name for p in inspect.signature(loss).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }
    return found


_LOSSES: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def _cached_loss(name: str, options: dict[str, Any]) -> Any:
    """``lossbridge.get(name, backend="jax", convention="optax", **options)``, made once per configuration.

    A loss is a pure function of its configuration, so one object per configuration serves every
    native test (and JAX's caches keyed on it are shared). Unhashable options are not cached.
    """
    lossbridge.spec(name, convention="optax")  # every call resolves the name (a deprecated one warns)
    try:
        key = (name, tuple(sorted(options.items())))
        hash(key)
    except TypeError:
        return lossbridge.get(name, backend="jax", convention="optax", **options)
    loss = _LOSSES.get(key)
    if loss is None:
        loss = _LOSSES[key] = lossbridge.get(name, backend="jax", convention="optax", **options)
    return loss


def _substitute(name: str, native: Any, spec: Any, counter: Any, split: Any) -> Any:
    def function(*args: Any, **kwargs: Any) -> Any:
        counter.hit(name)
        arrays, options = split(native, args, kwargs, len(spec.inputs))
        probe = _cached_loss(name, {})
        per_call = {k: options.pop(k) for k in list(options) if k in _call_keywords(probe)}
        loss = _cached_loss(name, options) if options else probe
        return loss(*arrays, **per_call)

    function.__name__ = function.__qualname__ = name
    function.__wrapped_native__ = native  # type: ignore[attr-defined]
    return function


@pytest.fixture(scope="module", autouse=True)
def _fast_compiles() -> Any:
    """XLA without most optimizations while this suite runs: compiling dominates these small tests
    on CPU (a fresh jit per native test and shape), running the compiled code does not."""
    jax = importlib.import_module("jax")
    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


_LOADED: dict[str, Any] = {}


def load_suites(compat: Any) -> dict[str, Any]:
    """Each Optax test module, loaded afresh with the substituted submodules in place (once)."""
    if _LOADED:
        return _LOADED
    names = covered_names()
    proxies = {}
    for sub in SUBMODULES:
        module = importlib.import_module(f"optax.losses.{sub}")
        subs = {
            n: _substitute(n, native, spec, compat.counter, compat.split_native_call)
            for n, (native, spec) in names.items()
            if getattr(module, n, None) is native
        }
        proxies[sub] = compat.Substituted(module, subs)
    saved = {sub: getattr(PACKAGE, sub) for sub in SUBMODULES}
    try:
        for sub, proxy in proxies.items():
            setattr(PACKAGE, sub, proxy)
        for path in TEST_FILES:
            mod_name = f"lossbridge_compat_optax.{path.stem}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
            _LOADED[path.stem] = module
    finally:
        for sub, module in saved.items():
            setattr(PACKAGE, sub, module)
    return _LOADED


def _native_cases() -> list[tuple[str, str, str]]:
    """``(module stem, class name, method)`` of every test in the installed files (names only)."""
    cases = []
    loader = unittest.TestLoader()
    for path in TEST_FILES:
        # parameterized method names exist only once the module is loaded: load the native module once
        native = importlib.import_module(f"optax.losses.{path.stem}")
        for obj in vars(native).values():
            if inspect.isclass(obj) and issubclass(obj, unittest.TestCase) and obj.__module__ == native.__name__:
                cases += [(path.stem, obj.__name__, m) for m in loader.getTestCaseNames(obj)]
    return cases


CASES = _native_cases()
IDS = [f"{m}.{c}.{t}" for m, c, t in CASES]


@pytest.mark.parametrize(("module", "cls", "method"), CASES, ids=IDS)
def test_optax_losses_suite(module: str, cls: str, method: str, compat: Any) -> None:
    suites = load_suites(compat)
    test_class = getattr(suites[module], cls)
    # Optax's mask tests draw unseeded masks (np.random): seeded here so a run is reproducible. An all-False
    # mask (1 draw in 32 at size 5) is a known divergence of cosine_similarity (NaN, Optax 0): see the notes.
    np.random.seed(0)
    outcome, detail = compat.run_native(test_class, method)
    compat.settle(SUITE, f"{module}.{cls}.{method}", outcome, detail)


def test_optax_losses_expected_failures_are_current(compat: Any) -> None:
    """Every listed test exists in the installed suite (a stale entry is an error)."""
    stale = sorted(set(compat.expected_failures(SUITE)) - set(IDS))
    assert not stale, f"[{SUITE}] lists tests the installed Optax suite does not have: {stale}"
