"""The drop-in harness shared by the framework-suite tests in this directory.

The frameworks' own test suites (shipped in their installed wheels) are run with lossbridge's
objects substituted for the native ones. Every suite module generates one pytest item per native
test method and settles its outcome with :func:`settle` (the ``compat`` fixture):

* no lossbridge object was touched during the test: **not covered** (skipped, not counted);
* passed: counted as passed; but if it is listed in ``expected_failures.toml`` the item FAILS
  (strict: a listed test that passes must be removed from the list);
* failed and listed (``[<suite>]`` table, ``"Class.test_method" = "reason"``): expected (xfail);
* failed and not listed: the item FAILS.

A summary line per suite (covered, passed, listed) is printed at the end of the session.
"""

from __future__ import annotations

import dataclasses
import inspect
import tomllib
import unittest
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

EXPECTED_FAILURES = Path(__file__).with_name("expected_failures.toml")


def expected_failures(suite: str) -> dict[str, str]:
    """The ``[suite]`` table of ``expected_failures.toml``: test id -> one-line reason."""
    with EXPECTED_FAILURES.open("rb") as fh:
        return dict(tomllib.load(fh).get(suite, {}))


@dataclasses.dataclass
class SuiteTally:
    covered: int = 0
    passed: int = 0
    listed: int = 0
    not_covered: int = 0
    unexpected: list[str] = dataclasses.field(default_factory=list)


_TALLIES: dict[str, SuiteTally] = {}


class CallCounter:
    """Counts every use of a substituted lossbridge object during one native test."""

    def __init__(self) -> None:
        self.calls = 0
        self.names: set[str] = set()

    def hit(self, name: str) -> None:
        self.calls += 1
        self.names.add(name)

    def reset(self) -> None:
        self.calls = 0
        self.names.clear()


COUNTER = CallCounter()


def split_native_call(native: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                      n_arrays: int) -> tuple[list[Any], dict[str, Any]]:
    """A native call's arguments as (the first ``n_arrays`` array arguments, the other given keywords).

    The call is bound to the native signature, so array arguments given by keyword
    (``labels=...``) and options given positionally land where the native function reads them.
    """
    sig = inspect.signature(native)
    bound = sig.bind(*args, **kwargs)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    arrays, options = [], {}
    for k, p in enumerate(params):
        if p.name not in bound.arguments:
            continue
        if k < n_arrays and p.kind is not p.KEYWORD_ONLY:
            arrays.append(bound.arguments[p.name])
        else:
            options[p.name] = bound.arguments[p.name]
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            options.update(bound.arguments.get(p.name, {}))
    return arrays, options


class Substituted:
    """A module stand-in: covered names are lossbridge substitutes, everything else is the module's."""

    def __init__(self, module: Any, substitutes: dict[str, Any]) -> None:
        self.__dict__["_module"] = module
        self.__dict__["_substitutes"] = substitutes

    def __getattr__(self, name: str) -> Any:
        subs = self.__dict__["_substitutes"]
        if name in subs:
            return subs[name]
        return getattr(self.__dict__["_module"], name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.__dict__["_module"])) | set(self.__dict__["_substitutes"]))


def _pytest_skip_reason(method: Any) -> str | None:
    """The reason of a ``pytest.mark.skipif``/``skip`` on a native test method whose condition holds."""
    for mark in getattr(method, "pytestmark", []):
        if mark.name == "skip":
            return mark.kwargs.get("reason", "skipped")
        if mark.name == "skipif" and mark.args and bool(mark.args[0]):
            return mark.kwargs.get("reason", "skipif")
    return None


def run_native(cls: type[unittest.TestCase], method: str) -> tuple[str, str]:
    """Run one native test method (with its class fixtures): ``("pass" | "fail" | "skip", detail)``."""
    reason = _pytest_skip_reason(getattr(cls, method))
    if reason is not None:
        return "skip", reason
    result = unittest.TestResult()
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # the native suites do not run with warnings as errors
        unittest.TestSuite([cls(method)]).run(result)
    if result.skipped:
        return "skip", result.skipped[0][1]
    problems = result.errors + result.failures
    if problems:
        return "fail", problems[0][1]
    if result.unexpectedSuccesses:
        return "fail", "unexpected success"
    return "pass", ""


def settle(suite: str, test_id: str, outcome: str, detail: str) -> None:
    """Record and report one native test's outcome under the strict expected-failure rules."""
    tally = _TALLIES.setdefault(suite, SuiteTally())
    if outcome == "skip" or COUNTER.calls == 0:
        tally.not_covered += 1
        pytest.skip(f"not covered: {detail}" if outcome == "skip" else "not covered: no lossbridge object was called")
    listed = expected_failures(suite).get(test_id)
    tally.covered += 1
    if outcome == "pass":
        if listed is not None:
            tally.unexpected.append(test_id)
            pytest.fail(f"{test_id} passes now: remove it from [{suite}] in {EXPECTED_FAILURES.name}")
        tally.passed += 1
        return
    if listed is not None:
        tally.listed += 1
        pytest.xfail(f"listed: {listed}")
    tally.unexpected.append(test_id)
    pytest.fail(f"{test_id} failed and is not listed in [{suite}]:\n{detail}", pytrace=False)


class Compat:
    """What the suite modules use: the call counter, the native runner, the settling rule."""

    counter = COUNTER
    run_native = staticmethod(run_native)
    settle = staticmethod(settle)
    split_native_call = staticmethod(split_native_call)
    Substituted = Substituted
    expected_failures = staticmethod(expected_failures)

    @staticmethod
    def tally(suite: str) -> SuiteTally:
        return _TALLIES.setdefault(suite, SuiteTally())


@pytest.fixture
def compat() -> Iterator[type[Compat]]:
    COUNTER.reset()
    yield Compat
    COUNTER.reset()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for suite, t in sorted(_TALLIES.items()):
        rate = 100.0 * t.passed / t.covered if t.covered else 0.0
        terminalreporter.write_line(
            f"compat {suite}: covered {t.covered}, passed {t.passed} ({rate:.1f}%), listed {t.listed}, "
            f"not covered {t.not_covered}, unexpected {len(t.unexpected)}"
        )
