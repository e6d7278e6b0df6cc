"""The backend contract: what a plugin implements to materialize specs for one framework."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossbridge._bound import BoundLoss, BoundOptimizer

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
        ``"truth_first"`` (scikit-learn, Keras) or ``"prediction_first"`` (torch, Optax): the
        argument order of the loss objects it returns.

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

    def materialize_loss(self, bound: BoundLoss) -> Any:
        """The framework-native loss object for ``bound``."""
        raise NotImplementedError

    def materialize_optimizer(self, bound: BoundOptimizer) -> Any:
        """The framework-native optimizer (or optimizer class) for ``bound``."""
        raise NotImplementedError

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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
