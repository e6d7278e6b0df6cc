"""Portable optimizer state for Keras: lossbridge's Keras optimizers, and Keras's own as a source.

A Keras optimizer keeps one variable per slot and trained variable, in the order of the variables
it was built with; the step is ``iterations``. Keras's own optimizers are read through their
convention's ``state`` table, which names the attribute holding each slot's list
(``keras.optimizers.Adam``: ``{"m": "_momentums", "v": "_velocities"}``), or a single variable
whose value every trained variable's slot holds (``keras.optimizers.Nadam``'s ``_u_product``: the
spec keeps that product per tensor, equal for all of them). A spec's global state
(``global_slots``, Prodigy's ``d``) is one 0-d variable per slot (``_lb_glob``).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lossbridge.errors import InputError
from lossbridge.portable import ANY, PortableState, check_compatible, from_bound, from_native

from ._optimizers import KerasOptimizer

__all__ = ["export_state", "import_state"]


#: Keras's base-optimizer options: each leaves the numbers alone only at its default
_KERAS_NEUTRAL = {
    "name": ANY, "clipnorm": None, "global_clipnorm": None, "clipvalue": None, "use_ema": False,
    "ema_momentum": ANY, "ema_overwrite_frequency": ANY, "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


def _variables(optimizer: Any) -> list[Any]:
    if not optimizer.built:
        raise InputError(
            f"optimizer: this Keras optimizer ({type(optimizer).__name__}) is not built yet (no step taken); "
            "there is no state to save"
        )
    return list(optimizer._trainable_variables)


def _describe(variables: list[Any]) -> tuple[list[tuple[int, ...]], list[str], list[str | None]]:
    shapes = [tuple(int(n) for n in v.shape) for v in variables]
    dtypes = [str(v.dtype) for v in variables]
    names = [getattr(v, "path", None) or getattr(v, "name", None) for v in variables]
    return shapes, dtypes, names


def _glob(optimizer: Any) -> dict[str, Any]:
    """The global state variables (spec slot -> 0-d variable) of a built lossbridge optimizer, else ``{}``."""
    return dict(getattr(optimizer, "_lb_glob", None) or {}) if optimizer.spec.global_slots else {}


def _numpy(v: Any) -> np.ndarray:
    value = v.value if isinstance(v, keras.Variable) else v
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _shortest(value: np.ndarray) -> float:
    """A float32 hyperparameter as the shortest decimal that rounds to it (Keras keeps 0.02 as float32).

    The keras convention rounds it to float32 again, so the numbers are Keras's; the saved value is
    the one the user wrote, and compares equal to an optimizer built with it.
    """
    if value.dtype == np.float32:
        return float(np.format_float_positional(np.float32(value), unique=True))
    return float(value)


def _plain(v: Any) -> Any:
    return v if isinstance(v, (bool, int, float, str, tuple, list)) or v is None else None


def export_state(optimizer: Any, *, params: Any = None) -> PortableState | None:
    """The portable state of a lossbridge or Keras optimizer, ``None`` for anything else."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        return None
    variables = _variables(optimizer)
    shapes, dtypes, names = _describe(variables)
    step = int(_numpy(optimizer.iterations))
    if isinstance(optimizer, KerasOptimizer):
        slots = [{k: _numpy(v) for k, v in one.items()} for one in optimizer._lb_slots]
        return from_bound(
            optimizer.bound, step=step, slots=slots, shapes=shapes, dtypes=dtypes, names=names, backend="tensorflow",
            glob={k: _numpy(v) for k, v in _glob(optimizer).items()},
        )
    import lossbridge

    name = type(optimizer).__name__
    found = lossbridge.spec(name, convention="keras")
    table = dict(getattr(found.conventions.get("keras"), "state", {}) or {})
    slots: list[dict[str, np.ndarray]] = [{} for _ in variables]
    for entry in table.values():
        attr = entry if isinstance(entry, str) else entry[0]
        per_variable = getattr(optimizer, attr, None)
        if isinstance(per_variable, keras.Variable):  # one value for every variable (Nadam's _u_product)
            for i in range(len(variables)):
                slots[i][attr] = _numpy(per_variable)
            continue
        if not per_variable:  # e.g. no velocity_hats without amsgrad, no momentums without momentum
            continue
        for i, var in enumerate(variables):
            slots[i][attr] = _numpy(per_variable[optimizer._get_variable_index(var)])
    config = {k: _plain(v) for k, v in optimizer.get_config().items()}
    config["learning_rate"] = _shortest(_numpy(optimizer.learning_rate))
    return from_native(
        "keras",
        name,
        native_hyper={k: v for k, v in config.items() if k in _KERAS_NEUTRAL or v is not None},
        neutral=_KERAS_NEUTRAL,
        step=step,
        slots=slots,
        shapes=shapes,
        dtypes=dtypes,
        names=names,
        backend="tensorflow",
    )


def import_state(optimizer: Any, portable: PortableState, *, params: Any = None, convert: bool = False) -> Any:
    """Load ``portable`` into a lossbridge Keras optimizer (built over ``params`` if not yet built)."""
    if not isinstance(optimizer, KerasOptimizer):
        if isinstance(optimizer, keras.optimizers.Optimizer):
            raise InputError(
                f"optimizer: {type(optimizer).__name__} is Keras's own optimizer; load_state loads into lossbridge "
                f"optimizers (lossbridge.get({portable.spec!r}, backend='tensorflow', convention=...))"
            )
        return NotImplemented
    if not optimizer.built:
        if params is None:
            raise InputError(
                "params: this Keras optimizer is not built yet; pass params= (the model's trainable variables)"
            )
        optimizer.build(list(params))
    variables = list(optimizer._trainable_variables)
    shapes, _, names = _describe(variables)
    templates = [{k: _numpy(v) for k, v in one.items()} for one in optimizer._lb_slots]
    conv = optimizer.bound.convention.framework if optimizer.bound.convention is not None else None
    check_compatible(
        portable,
        spec=optimizer.spec.name,
        convention=conv,
        hyper=optimizer.bound.hyper,
        shapes=shapes,
        names=names,
        slots=templates,
        convert=convert,
        backend="tensorflow",
        glob={k: _numpy(v) for k, v in _glob(optimizer).items()},
    )
    for one, saved in zip(optimizer._lb_slots, portable.slots, strict=True):
        for k, value in saved.items():
            one[k].assign(np.asarray(value).astype(one[k].dtype))
    shared = _glob(optimizer)
    for k, value in portable.glob.items():
        shared[k].assign(np.asarray(value).astype(shared[k].dtype))
    optimizer.iterations.assign(portable.step)
    return portable
