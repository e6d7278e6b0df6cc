"""The backend contract: what a plugin implements to materialize specs for one framework."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossbridge.bound import BoundLoss, BoundOptimizer, BoundSchedule
from lossbridge.errors import InputError

__all__ = ["Backend"]


class Backend:
    """Base class of backends; subclass it in your plugin and register an instance.

    Class attributes
    ----------------
    name, aliases:
        ``"torch"``, ``("pytorch",)``; names match case- and separator-insensitively.
    requires:
        Import names of the framework(s) this backend needs (``("torch",)``); the backend is
        *available* when all of them can be found, checked without importing them.
    distribution:
        The pip distribution that provides this backend, for "how to install" hints.
    loss_order:
        ``"truth_first"`` (Keras), ``"prediction_first"`` (torch, Optax) or ``"spec"`` (the spec's
        declared order, scikit-learn style for two-input losses: NumPy): the argument order of the
        loss objects it returns; :meth:`argument_order` applies it.
    loss_options, optimizer_options:
        Keyword arguments of the framework's own objects that are not spec parameters (Keras's
        ``name``; torch's ``foreach``, ``fused``); :func:`lossbridge.get` passes them to
        ``materialize_loss`` / ``materialize_optimizer`` as keywords.

    Methods to implement: :meth:`materialize_loss`, :meth:`materialize_optimizer`,
    :meth:`namespace`, and the two harness methods the conformance kit drives,
    :meth:`loss_value_and_grad` and :meth:`optimizer_trajectory`. Import the framework inside
    them, never at module level.
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    distribution: str = "lossbridge"
    loss_order: str = "truth_first"
    dtypes: tuple[str, ...] = ("float32", "float64")
    loss_options: tuple[str, ...] = ("validate",)
    optimizer_options: tuple[str, ...] = ()

    def available(self) -> bool:
        """Whether the framework is installed (looked up, not imported)."""
        return all(importlib.util.find_spec(mod) is not None for mod in self.requires)

    def namespace(self) -> Any:
        """The Array API namespace for this backend's arrays."""
        raise NotImplementedError

    def translate_params(self, spec: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        """The caller's keyword arguments with the framework's own names mapped onto the spec's.

        ``lossbridge.get`` calls it before binding, so e.g. torch's ``betas=(b1, b2)`` can stand
        for a spec's ``beta_1`` and ``beta_2``. The default accepts the spec's names only.
        """
        return dict(params)

    def materialize_loss(self, bound: BoundLoss, **options: Any) -> Any:
        """The framework-native loss object for ``bound`` (``options``: see :attr:`loss_options`)."""
        raise NotImplementedError

    def materialize_optimizer(self, bound: BoundOptimizer, **options: Any) -> Any:
        """The framework-native optimizer (or optimizer class) for ``bound`` (see :attr:`optimizer_options`)."""
        raise NotImplementedError

    def materialize_schedule(self, bound: BoundSchedule) -> Any:
        """The framework-native schedule for ``bound`` (an LR scheduler, a schedule object, a callable)."""
        raise NotImplementedError(f"backend {self.name!r} does not materialize schedules yet")

    # -- portable optimizer state (lossbridge.save_state / load_state) ------------------------------
    def export_optimizer_state(
        self,
        optimizer: Any,
        *,
        state: Any = None,
        params: Any = None,
        spec: str | None = None,
        convention: str | None = None,
        hyper: Mapping[str, Any] | None = None,
        step: int | None = None,
    ) -> Any:
        """The :class:`~lossbridge.portable.PortableState` of ``optimizer`` if it is this backend's.

        ``None`` when ``optimizer`` is not this backend's object (never import the framework to find
        out: an object of a framework that is not imported cannot be one of its objects). Build the
        result with :func:`lossbridge.portable.from_bound` (lossbridge's optimizers) or
        :func:`lossbridge.portable.from_native` (the framework's own, through ``Convention.state``).
        ``step`` is the caller's count of steps taken, for a framework optimizer that keeps none
        (``torch.optim.SGD``); refuse to guess it.
        """
        return None

    def import_optimizer_state(
        self, optimizer: Any, portable: Any, *, state: Any = None, params: Any = None, convert: bool = False
    ) -> Any:
        """Load ``portable`` into ``optimizer`` if it is this backend's, else ``NotImplemented``.

        Check everything with :func:`lossbridge.portable.check_compatible` before changing anything.
        """
        return NotImplemented

    # -- the harness the conformance kit drives ----------------------------------------------------
    def loss_value_and_grad(
        self,
        loss: Any,
        inputs: Mapping[str, np.ndarray],
        *,
        sample_weight: np.ndarray | None,
        differentiable: Sequence[str],
        dtype: str,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Evaluate the materialized ``loss`` on NumPy ``inputs`` (keyed by spec input name).

        Convert floating inputs to ``dtype``, call ``loss`` the way a framework user would, and
        return the value and the gradients of its sum with respect to each ``differentiable``
        input, all as float64 NumPy arrays.
        """
        raise NotImplementedError

    def optimizer_trajectory(
        self,
        optimizer: Any,
        params: Sequence[np.ndarray],
        grads: Sequence[Sequence[np.ndarray]],
        *,
        dtype: str,
    ) -> list[list[np.ndarray]]:
        """Run the materialized ``optimizer`` from ``params``, feeding ``grads[t]`` at step ``t``.

        Return the parameters after every step, as float64 NumPy arrays.
        """
        raise NotImplementedError

    # -- shared harness logic: the same for every backend, so it lives once here ------------------------
    def argument_order(self, spec: Any) -> tuple[int, ...]:
        """Spec input indices in this backend's positional call order (:attr:`loss_order`).

        ``"truth_first"``: targets, then the other inputs in spec order (scikit-learn, Keras);
        ``"prediction_first"``: predictions, then targets, then the rest (torch, Optax).
        """
        if self.loss_order == "spec":
            return tuple(range(len(spec.inputs)))
        rank = _TRUTH_FIRST if self.loss_order == "truth_first" else _PREDICTION_FIRST
        return tuple(sorted(range(len(spec.inputs)), key=lambda k: rank.get(spec.inputs[k].role, 2)))

    def to_spec_order(self, spec: Any, args: Sequence[Any]) -> tuple[Any, ...]:
        """Positional ``args`` in this backend's order, rearranged into the spec's input order."""
        order = self.argument_order(spec)
        if len(args) != len(order):
            names = ", ".join(spec.inputs[k].name for k in order)
            raise TypeError(f"{spec.name}: expected {len(order)} arrays ({names}), got {len(args)}")
        out: list[Any] = [None] * len(order)
        for position, k in enumerate(order):
            out[k] = args[position]
        return tuple(out)

    def check_native(self, x: Any, name: str, native: tuple[type, ...]) -> None:
        """Refuse an array of another framework, naming the argument and the backend to use."""
        if isinstance(x, native):
            return
        module = type(x).__module__.split(".")[0]
        if module in _FRAMEWORK_MODULES and module not in self.requires:
            raise InputError(
                f"{name}: expected an array for the {self.name} backend, got "
                f"{type(x).__module__}.{type(x).__name__}; inputs of two frameworks cannot be mixed in "
                f"one call (use the {_FRAMEWORK_MODULES[module]!r} backend, or convert)"
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


_TRUTH_FIRST = {"target": 0, "prediction": 1, "input": 1}
_PREDICTION_FIRST = {"prediction": 0, "target": 1, "input": 2}
#: Array-library modules and the backend that takes their arrays.
_FRAMEWORK_MODULES = {
    "torch": "torch",
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
    "jax": "jax",
    "jaxlib": "jax",
    "array_api_strict": "strict",
    "cupy": "cupy",
    "mlx": "mlx",
    "dask": "dask",
}
