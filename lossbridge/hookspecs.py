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

Writing a backend: subclass :class:`lossbridge.backends.Backend` and implement
``materialize_loss(bound, **options)``, ``materialize_optimizer(bound, **options)`` and, for
schedules, ``materialize_schedule(bound)``; ``namespace()`` (your framework's Array API
namespace); and the two harness methods the conformance kit drives, ``loss_value_and_grad`` and
``optimizer_trajectory``. Everything a backend needs is public:

* :class:`lossbridge.bound.BoundLoss`: call ``bound.evaluate(xp, *inputs, sample_weight=...,
  check_values=..., wrap=...)`` with the inputs in spec order (``Backend.to_spec_order`` turns
  your ecosystem's argument order, ``Backend.loss_order``, into it). It applies the convention's
  input rules, weighting, reduction and result dtype. ``wrap(bound)`` returns your framework's
  custom-gradient function around ``bound.spec.fn`` with ``bound.spec.vjp`` as its derivative
  (keyword arguments ``bound.spec_params()``), so your backend's gradient is the spec's one gradient.
  Pass ``check_values=False`` whenever the arrays are traced (jit, compile, graph mode).
* :class:`lossbridge.bound.BoundOptimizer`: ``init(param, xp=...)`` and
  ``update(param, grad, state, step=..., xp=..., **hyper) -> (delta, new_state)`` per tensor.
* :class:`lossbridge.bound.BoundSchedule`: ``bound(xp, step)``.
* :meth:`lossbridge.backends.Backend.check_native` for a clear error on another framework's array;
  :mod:`lossbridge.validation` and :mod:`lossbridge.errors` for every other message.
* Keyword arguments of your framework's objects that are not spec parameters go in
  ``Backend.loss_options`` / ``optimizer_options``; ``lossbridge.get`` passes them through.

Prove it with :func:`lossbridge.testing.parametrize_with_checks` (one decorator).
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

    ``factory(bound)`` receives the :class:`lossbridge.bound.BoundLoss` or
    :class:`lossbridge.bound.BoundOptimizer` and returns the native object, or ``None`` to fall
    back to the generic adapter (for a convention or parameters the fast path does not cover).
    The backend options the user gave (``validate``, ``check_finite``: the backend's
    ``loss_options`` / ``optimizer_options``) come as keywords, ``factory(bound, **options)``; a
    factory whose signature does not take them is skipped for that call, so the generic adapter
    honours them (an option is never dropped).
    The conformance kit checks every override against the spec like any other materialization.

    Example::

        @hookimpl
        def lossbridge_register_overrides(register):
            register("adam", "torch", fused_adam, kind="optimizer")
    """
