"""The JAX backend: pure loss functions and ``optax.GradientTransformation`` optimizers.

JAX and Optax are imported inside the methods only, so loading the plugin stays cheap.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lossbridge.backends.base import Backend
from lossbridge.bound import BoundLoss, BoundOptimizer

__all__ = ["JaxBackend"]


@contextlib.contextmanager
def _precision(dtype: str) -> Iterator[None]:
    """float64 needs ``jax_enable_x64``: enable it for the duration of a float64 run only."""
    import jax

    if dtype != "float64" or jax.config.jax_enable_x64:
        yield
        return
    with jax.enable_x64(True):
        yield


def _cast(x: np.ndarray, dtype: str) -> Any:
    import jax.numpy as jnp

    if np.issubdtype(x.dtype, np.floating):
        return jnp.asarray(x, dtype=dtype)
    return jnp.asarray(x)


class JaxBackend(Backend):
    """lossbridge on JAX: losses in Optax's argument order, optimizers as Optax transformations."""

    name = "jax"
    aliases = ("optax",)
    requires = ("jax", "optax")
    distribution = "lossbridge-jax"
    loss_order = "prediction_first"
    #: Optax's keyword options (slot dtypes, per-tensor masks); what each governs is convention data
    #: (``Convention.slot_dtypes`` / ``Convention.masks``), see :mod:`lossbridge_jax._optim`.
    loss_options = ("validate", "check_finite")
    optimizer_options = (
        "mu_dtype", "accumulator_dtype", "mask", "weight_decay_mask", "trust_ratio_mask", "check_finite",
    )

    def namespace(self) -> Any:
        """``jax.numpy``, which implements the Array API standard (array_api_compat returns it too)."""
        import jax.numpy as jnp

        return jnp

    def materialize_loss(self, bound: BoundLoss, **options: Any) -> Any:
        from ._loss import make_loss

        return make_loss(bound, self, **options)

    def materialize_optimizer(self, bound: BoundOptimizer, **options: Any) -> Any:
        from ._optim import make_transformation, resolve_options

        return make_transformation(bound, self, options=resolve_options(bound, options))

    def materialize_schedule(self, bound: Any) -> Any:
        """An Optax schedule: a jittable function of the update count."""
        from ._schedule import make_schedule

        return make_schedule(bound)

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
        """Call ``loss`` in Optax order under ``jax.value_and_grad`` (jit is covered by the plugin tests)."""
        import jax
        import jax.numpy as jnp

        names = list(loss.argnames)
        wanted = [k for k, n in enumerate(names) if n in differentiable]
        with _precision(dtype):
            arrays = [_cast(inputs[n], dtype) for n in names]
            weight = None if sample_weight is None else _cast(sample_weight, dtype)

            def total(diff: list[Any]) -> Any:
                args = list(arrays)
                for k, x in zip(wanted, diff, strict=True):
                    args[k] = x
                value = loss(*args, sample_weight=weight)
                return jnp.sum(value), value

            step = jax.value_and_grad(total, has_aux=True)
            (_, value), grads = step([arrays[k] for k in wanted])
            return np.asarray(value, dtype=np.float64), {
                names[k]: np.asarray(g, dtype=np.float64) for k, g in zip(wanted, grads, strict=True)
            }

    def optimizer_trajectory(
        self,
        optimizer: Any,
        params: Sequence[np.ndarray],
        grads: Sequence[Sequence[np.ndarray]],
        *,
        dtype: str,
    ) -> list[list[np.ndarray]]:
        """``init``, then ``update`` + ``optax.apply_updates`` per step in one jitted ``lax.scan``."""
        import jax
        import optax

        def run(current: list[Any], state: Any, steps: list[Any]) -> tuple[Any, Any]:
            def step(carry: tuple[list[Any], Any], g: list[Any]) -> tuple[Any, list[Any]]:
                updates, new_state = optimizer.update(g, carry[1], carry[0])
                new = optax.apply_updates(carry[0], updates)
                return (new, new_state), new

            return jax.lax.scan(step, (current, state), steps)[1]

        with _precision(dtype):
            current = [_cast(np.asarray(p), dtype) for p in params]
            state = optimizer.init(current)
            stacked = [_cast(np.stack([np.asarray(g[k]) for g in grads]), dtype) for k in range(len(params))]
            path = jax.jit(run)(current, state, stacked)
            return [[np.asarray(p[t], dtype=np.float64) for p in path] for t in range(len(grads))]

    # -- portable optimizer state ------------------------------------------------------------------
    def export_optimizer_state(
        self,
        optimizer: Any,
        *,
        state: Any = None,
        params: Any = None,
        spec: str | None = None,
        convention: str | None = None,
        hyper: Any = None,
        step: int | None = None,
    ) -> Any:
        """A lossbridge transformation's state, or a native Optax state given ``spec=``/``hyper=``."""
        if "jax" not in sys.modules or (optimizer is None and spec is None):
            return None
        from ._state import export_state

        return export_state(
            optimizer, state=state, params=params, spec=spec, convention=convention, hyper=hyper, step=step
        )

    def import_optimizer_state(
        self, optimizer: Any, portable: Any, *, state: Any = None, params: Any = None, convert: bool = False
    ) -> Any:
        """A new Optax state of a lossbridge transformation for ``params``, holding ``portable``."""
        if "jax" not in sys.modules:
            return NotImplemented
        from ._state import import_state

        return import_state(optimizer, portable, state=state, params=params, convert=convert)

    def train_digits(self, data: Any) -> Any:
        """Train the seed example network (see :mod:`lossbridge_jax._digits`)."""
        from ._digits import train_digits

        return train_digits(data)
