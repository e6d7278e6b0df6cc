"""Every registered spec on every installed backend, float32 and float64, against the float64
NumPy reference: values, input gradients (at random points, clip edges and the spec's declared
kinks) and 100-step optimizer trajectories. Backends that each match the one reference agree with
each other; the pairwise test below also compares them directly at the kinks.

The NumPy backend itself (with finite differences of the spec's gradient) is checked in the
``numpy`` environment (tests/test_numpy_conformance.py); here each other backend is one test, so
pytest-xdist runs them on both cores. Each writes ``reports/matrix-<backend>.json``; the
controller merges them into ``reports/matrix.json`` and prints the matrix.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import lossbridge
from lossbridge.registry import default_registry
from lossbridge.spec import LossSpec
from lossbridge.testing import relative_error, run_checks
from lossbridge.testing._cases import loss_cases

from .conftest import REPORT_DIR, backend_report

BACKENDS = [b for b in lossbridge.available_backends() if b != "numpy"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_spec_on_the_backend_matches_the_reference(backend: str) -> None:
    report = run_checks([backend])
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    backend_report(backend).write_text(report.to_json())
    specs = {s.name for s, _ in default_registry().specs() if s.kind != "schedule"}
    # not in the kit's gradient-replay trajectories, each covered across backends by its own tests:
    # closure steps (L-BFGS) and steps that need the loss value, a Hessian estimate or a noise sample
    # (tests/conventions/test_lbfgs_oracles.py, test_oracle_optim_oracles.py, the plugins' test_oracle_optim.py),
    # and gradient transforms where the backend has no chain object (Keras's own options instead:
    # tests/conventions/test_transform_oracles.py; strict refuses them)
    specs -= {s.name for s, _ in default_registry().specs() if s.kind == "optimizer" and (s.closure_step or s.needs)}
    if backend in ("tensorflow", "strict"):
        specs -= {s.name for s, _ in default_registry().specs() if getattr(s, "role", "") == "transform"}
    assert set(report.matrix()) == specs
    failures = "\n".join(f"{r.check_id}: {r.message}" for r in report.failed)
    assert not report.failed, f"{len(report.failed)} of {len(report.results)} checks failed:\n{failures}"


LOSS_SPECS = sorted(s.name for s, _ in default_registry().specs() if isinstance(s, LossSpec))


@pytest.mark.parametrize("spec_name", LOSS_SPECS)
def test_backends_agree_with_each_other_at_kinks(spec_name: str) -> None:
    """One case per loss (its declared kinks if any, else its default mean case), every backend,
    compared pairwise in float64: the spec's one gradient gives every backend the same numbers."""
    spec = lossbridge.spec(spec_name)
    cases = [c for c in loss_cases(spec) if c.convention is None]
    case = next((c for c in cases if c.variant.endswith("-kinks")), None) or next(
        c for c in cases if c.variant.endswith("-mean")
    )
    outputs = {}
    for name in ["numpy", *BACKENDS]:
        backend = default_registry().backend(name)
        loss = lossbridge.get(spec_name, backend=name, **case.params)
        diff = [i.name for i in spec.differentiable_inputs]
        outputs[name] = backend.loss_value_and_grad(
            loss, case.inputs, sample_weight=None, differentiable=diff, dtype="float64"
        )
    for (a, (va, ga)), (b, (vb, gb)) in itertools.combinations(outputs.items(), 2):
        worst = max([relative_error(va, vb)] + [relative_error(ga[k], gb[k]) for k in ga])
        assert worst <= 1e-12, f"{a} vs {b}: {worst:.3g}"  # relative to the largest magnitude
    assert np.isfinite(float(np.sum(outputs["numpy"][0])))
