"""Fixtures of the CLI tests: wide output, a fresh registry, and plugins made of real backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import lossbridge
import lossbridge.registry
from lossbridge.backends.numpy import NumpyBackend
from lossbridge.cli import main


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that no cell is folded, so output can be searched for whole strings."""
    monkeypatch.setenv("COLUMNS", "1000")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``lossbridge ARGS`` in-process; return (exit status, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


class RefusingBackend(NumpyBackend):
    """The NumPy backend, except that it materializes no optimizer (as a partial plugin would)."""

    name = "halfway"
    aliases = ()

    def materialize_optimizer(self, bound: Any) -> Any:
        raise NotImplementedError("halfway materializes losses only")


class SkewedBackend(NumpyBackend):
    """The NumPy backend with loss values 0.1% too large: the conformance kit must catch it."""

    name = "skewed"
    aliases = ()

    def loss_value_and_grad(
        self, loss: Any, inputs: Any, **kwargs: Any
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        value, grads = super().loss_value_and_grad(loss, inputs, **kwargs)
        return value * 1.001, grads


class SecondNumpyBackend(NumpyBackend):
    """Another backend that trains the digits network exactly like NumPy's."""

    name = "numpy_again"
    aliases = ()


class BackendsPlugin:
    """A plugin object registering the given backends through the public hook."""

    def __init__(self, *backends: Any) -> None:
        self.backends = backends

    @lossbridge.hookimpl
    def lossbridge_register_backends(self, register: Callable[[Any], None]) -> None:
        for backend in self.backends:
            register(backend)


class FailingPlugin:
    """A plugin whose spec hook raises: the registry reports it, the rest keeps working."""

    @lossbridge.hookimpl
    def lossbridge_register_specs(self, register: Callable[[Any], None]) -> None:
        raise RuntimeError("boom while registering")


@pytest.fixture
def numpy_only(monkeypatch: pytest.MonkeyPatch) -> lossbridge.registry.Registry:
    """A process-wide registry without entry points: what a fresh ``pip install lossbridge`` sees."""
    registry = lossbridge.registry.Registry(entry_points=False)
    monkeypatch.setattr(lossbridge.registry, "_DEFAULT", registry)
    return registry


@pytest.fixture
def fresh_registry() -> Iterator[lossbridge.registry.Registry]:
    """A new process-wide registry with every installed plugin, not loaded yet, forgotten afterwards."""
    lossbridge.registry.reset_default_registry()
    yield lossbridge.registry.default_registry()
    lossbridge.registry.reset_default_registry()


@pytest.fixture
def add_backends(numpy_only: lossbridge.registry.Registry) -> Callable[..., None]:
    """Register backends in the NumPy-only registry through a plugin, as a third party would."""

    def add(*backends: Any) -> None:
        name = f"cli-test-{'-'.join(b.name for b in backends)}"
        numpy_only.add_plugin(BackendsPlugin(*backends), name, distribution=name)

    return add


@pytest.fixture
def extra_backends(
    numpy_only: lossbridge.registry.Registry, add_backends: Callable[..., None]
) -> lossbridge.registry.Registry:
    """NumPy plus the halfway, skewed and numpy_again backends (no framework is imported)."""
    add_backends(RefusingBackend(), SkewedBackend(), SecondNumpyBackend())
    return numpy_only


@pytest.fixture
def failing_plugin(fresh_registry: lossbridge.registry.Registry) -> lossbridge.registry.Registry:
    """Every installed plugin plus one whose hook raises."""
    fresh_registry.add_plugin(FailingPlugin(), "cli-test-failing", distribution="cli-test-failing")
    return fresh_registry
