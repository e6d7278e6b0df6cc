"""The plugin contract: three hooks, in the pluggy project ``lossbridge``.

A plugin is a module (or object) with functions marked ``@lossbridge.hookimpl``, published as an
entry point in the group ``lossbridge``::

    # pyproject.toml of your distribution
    [project.entry-points.lossbridge]
    mine = "lossbridge_mine.plugin"

    # lossbridge_mine/plugin.py
    import lossbridge

    @lossbridge.hookimpl
    def lossbridge_register_specs(register):
        register(POISSON)            # a lossbridge.spec.LossSpec / OptimizerSpec

Keep the plugin module cheap: loading it must not import torch, tensorflow or jax. A backend
imports its framework the first time it materializes something. lossbridge's own specs and its
NumPy backend are registered through these same hooks.

The built-in backends (``lossbridge-torch``, ``lossbridge-jax``, ``lossbridge-tensorflow``) are
plugins of exactly this kind; read them as worked examples of ``lossbridge_register_backends``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("lossbridge")
hookimpl = pluggy.HookimplMarker("lossbridge")


@hookspec
def lossbridge_register_specs(register: Callable[[Any], None]) -> None:
    """Call ``register(spec)`` once per loss or optimizer spec this plugin adds.

    Example::

        @hookimpl
        def lossbridge_register_specs(register):
            register(LossSpec(name="poisson", fn=poisson, inputs=(...), ...))
    """


@hookspec
def lossbridge_register_backends(register: Callable[[Any], None]) -> None:
    """Call ``register(backend)`` once per backend: a :class:`lossbridge.backends.Backend`.

    Example::

        @hookimpl
        def lossbridge_register_backends(register):
            register(TorchBackend())   # its methods import torch lazily
    """


@hookspec
def lossbridge_register_overrides(register: Callable[..., None]) -> None:
    """Call ``register(spec_name, backend_name, factory, kind="loss")`` per override.

    ``factory(bound)`` receives the :class:`~lossbridge.bound.BoundLoss` or
    :class:`~lossbridge.bound.BoundOptimizer` and returns the native object, or ``None`` to fall
    back to the generic adapter (for a convention or parameters the fast path does not cover).
    The conformance kit checks every override against the spec like any other materialization.

    Example::

        @hookimpl
        def lossbridge_register_overrides(register):
            register("adam", "torch", fused_adam, kind="optimizer")
    """
