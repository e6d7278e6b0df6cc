"""The single definitions of every built-in loss and optimizer, and the spec model.

Call the package to look a spec up by name: ``lossbridge.spec("adam")``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from lossbridge.spec._domain import DOMAINS, Domain, domain, register_domain
from lossbridge.spec._model import TASKS, Input, LossSpec, Masking, OptimizerSpec, ScheduleSpec
from lossbridge.spec._params import DTYPE_PARAM, REDUCTION_PARAM, Param, validate_params
from lossbridge.spec._schedule_free import schedule_free_eval_params

__all__ = [
    "DOMAINS",
    "DTYPE_PARAM",
    "REDUCTION_PARAM",
    "TASKS",
    "Domain",
    "Input",
    "LossSpec",
    "Masking",
    "OptimizerSpec",
    "Param",
    "ScheduleSpec",
    "domain",
    "register_domain",
    "schedule_free_eval_params",
    "validate_params",
]


class _CallableModule(types.ModuleType):
    def __call__(self, name: str, **kwargs: Any) -> LossSpec | OptimizerSpec | ScheduleSpec:
        """The spec declaration of ``name``: formula, parameters, references and conventions."""
        from lossbridge._api import spec

        return spec(name, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
