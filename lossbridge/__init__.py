"""lossbridge: every loss and optimizer defined once, materialized natively for each framework.

>>> import lossbridge
>>> loss = lossbridge.get("hinge")                       # NumPy, scikit-learn argument order
>>> lossbridge.spec("adam").conventions["keras"].params["eps"]
1e-07
"""

from __future__ import annotations

__all__ = [
    "Backend",
    "BackendError",
    "CatalogEntry",
    "Convention",
    "InputError",
    "LossbridgeError",
    "ParameterError",
    "PluginError",
    "PluginWarning",
    "Reduction",
    "SpecError",
    "UnknownNameError",
    "UnverifiedVersionWarning",
    "available_backends",
    "catalog",
    "chain",
    "get",
    "hookimpl",
    "load_state",
    "save_state",
    "spec",
]

import lossbridge.spec as _spec_package
from lossbridge._api import CatalogEntry, available_backends, catalog, get
from lossbridge._versions import UnverifiedVersionWarning
from lossbridge.backends.base import Backend
from lossbridge.chain import chain
from lossbridge.conventions import Convention, Reduction
from lossbridge.errors import (
    BackendError,
    InputError,
    LossbridgeError,
    ParameterError,
    PluginError,
    SpecError,
    UnknownNameError,
)
from lossbridge.hookspecs import hookimpl
from lossbridge.portable import load_state, save_state
from lossbridge.registry import PluginWarning

# ``lossbridge.spec`` is both the package of definitions and the lookup function: the package
# module is callable (see lossbridge/spec/__init__.py), so ``lossbridge.spec("adam")`` and
# ``from lossbridge.spec import LossSpec`` both work.
spec = _spec_package
