"""Optax's own optimizer tests (``optax/_src/alias_test.py`` from the installed wheel, class
``AliasTest``), run with lossbridge's transformations substituted for ``alias.<name>``.

Every Optax alias that ``lossbridge.spec(name, convention="optax")`` resolves to an optimizer is
replaced, in the ``alias`` module object the test module uses, by a function with the native
signature that returns ``lossbridge.get(name, backend="jax", convention="optax", **kwargs)``
(array-valued hyperparameters, as ``optax.inject_hyperparams`` passes them, go through the
transformation's ``factory``). ``test_explicit_dtype``'s ``sgd_mom`` case means ``alias.sgd``.
Only test methods whose parameters name a substituted optimizer are generated; each one's outcome is
settled by the rules in ``conftest.py`` (table ``[optax_alias]``).
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from typing import Any

import pytest

pytest.importorskip("jax")
optax = pytest.importorskip("optax")
pytest.importorskip("lossbridge_jax")
pytest.importorskip("sklearn")  # imported by the native test module

import jax  # noqa: E402

import lossbridge  # noqa: E402
from lossbridge.bound import translate_kwargs  # noqa: E402
from lossbridge.errors import LossbridgeError  # noqa: E402

SUITE = "optax_alias"
NATIVE_TESTS = "optax._src.alias_test"

suite_module = importlib.import_module(NATIVE_TESTS)
native_alias = suite_module.alias


def covered_names() -> dict[str, Any]:
    """Optax alias name -> lossbridge spec, for every alias lossbridge resolves under optax."""
    out = {}
    for name in dir(native_alias):
        if name.startswith("_") or not callable(getattr(native_alias, name)):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # deprecated names warn when used
                found = lossbridge.spec(name, convention="optax")
        except LossbridgeError:
            continue
        if found.kind == "optimizer":
            out[name] = found
    return out


COVERED = covered_names()


_TRANSFORMS: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def _cached(name: str, python: dict[str, Any]) -> Any:
    """``lossbridge.get(name, backend="jax", convention="optax", **python)``, made once per configuration.

    A transformation is a pair of pure functions of its configuration, so one object per
    configuration serves every native test, and ``jax.jit(opt.init)`` / ``jax.jit(opt.update)`` of
    the same configuration reuse one trace and one compiled executable across tests.
    """
    lossbridge.spec(name, convention="optax")  # every construction resolves the name (a deprecated one warns)
    try:
        key = (name, tuple(sorted(python.items())))
        hash(key)
    except TypeError:
        return lossbridge.get(name, backend="jax", convention="optax", **python)
    tx = _TRANSFORMS.get(key)
    if tx is None:
        tx = _TRANSFORMS[key] = lossbridge.get(name, backend="jax", convention="optax", **python)
    return tx


@pytest.fixture(scope="module", autouse=True)
def _fast_compiles() -> Any:
    """XLA without most optimizations while this suite runs: compiling dominates these small tests
    on CPU (a fresh jit per native test and dtype), running the compiled code does not."""
    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


def _substitute(name: str, counter: Any, split: Any) -> Any:
    native = getattr(native_alias, name)
    spec = COVERED[name]

    def optimizer(*args: Any, **kwargs: Any) -> Any:
        counter.hit(name)
        _, options = split(native, args, kwargs, 0)
        arrays = {k: v for k, v in options.items() if isinstance(v, jax.Array)}
        python = {k: v for k, v in options.items() if k not in arrays}
        tx = _cached(name, python)
        if arrays:
            tx = tx.factory(**translate_kwargs(spec, "optax", arrays))
        return tx

    optimizer.__name__ = optimizer.__qualname__ = name
    optimizer.__signature__ = inspect.signature(native)  # type: ignore[attr-defined]
    return optimizer


def _opt_name(method: Any) -> str | None:
    text = getattr(method, "__x_params_repr__", "")
    found = re.search(r"opt_name='([a-z0-9_]+)'", text)
    if found is None:
        return None
    name = found.group(1)
    return "sgd" if name == "sgd_mom" else name


def _cases() -> list[Any]:
    cases = []
    for attr in sorted(dir(suite_module.AliasTest)):
        if not attr.startswith("test"):
            continue
        method = getattr(suite_module.AliasTest, attr)
        name = _opt_name(method)
        if name is None or name not in COVERED:
            continue
        # a repr may hold a memory address (<function f at 0x...>): pytest-xdist workers must
        # collect the same ids, so addresses are dropped
        params = re.sub(r" at 0x[0-9a-f]+", "", getattr(method, "__x_params_repr__", ""))
        test_id = f"alias_test.AliasTest.{attr}"
        cases.append(pytest.param(attr, test_id, id=f"{attr}[{params}]"))
    return cases


@pytest.mark.parametrize(("method", "test_id"), _cases())
def test_optax_alias_suite(compat: Any, monkeypatch: pytest.MonkeyPatch, method: str, test_id: str) -> None:
    subs = {name: _substitute(name, compat.counter, compat.split_native_call) for name in COVERED}
    monkeypatch.setattr(suite_module, "alias", compat.Substituted(native_alias, subs))
    outcome, detail = compat.run_native(suite_module.AliasTest, method)
    compat.settle(SUITE, test_id, outcome, detail)
