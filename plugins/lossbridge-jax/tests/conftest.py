"""JAX test setup: 64-bit types are available in every test (float32 runs cast explicitly)."""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lossbridge.spec import (  # noqa: E402
    LossSpec,
    domain,
)


def sample_inputs(
    spec: LossSpec, shape: tuple[int, ...] = (4, 3), dtype: str = "float64", seed: int = 0, **params: Any
) -> dict[str, np.ndarray]:
    """Valid NumPy inputs for ``spec`` (keyed by input name) from its declared input domains."""
    from lossbridge.bound import bind

    rng = np.random.default_rng(seed)
    resolved = bind(spec, params=params).params
    shape = (2,) * max(spec.min_ndim - len(shape), 0) + tuple(shape)  # sequence losses need (N, T, C)
    out = {}
    for decl in spec.inputs:
        dom = domain(decl.domain_for(resolved))
        out[decl.name] = dom.sample(rng, shape, np.dtype(dtype), False)
    return out


@pytest.fixture
def sample() -> Callable[..., dict[str, np.ndarray]]:
    """The :func:`sample_inputs` helper."""
    return sample_inputs
