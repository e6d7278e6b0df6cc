"""Every registered spec x every installed backend x {float32, float64} against the reference,
and the backends against each other.

The run writes ``reports/matrix.json`` (path overridable with ``LOSSBRIDGE_MATRIX_REPORT``) and
prints the matrix: rows are specs, columns backends, each cell the worst relative error seen.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

import lossbridge
from lossbridge.registry import default_registry
from lossbridge.spec import LossSpec
from lossbridge.testing import relative_error, run_checks, tolerance
from lossbridge.testing._cases import loss_cases

from .conftest import REPORTS

BACKENDS = lossbridge.available_backends()


def test_every_spec_on_every_backend_matches_the_reference() -> None:
    report = run_checks(BACKENDS)
    REPORTS.append(report)
    path = Path(os.environ.get("LOSSBRIDGE_MATRIX_REPORT", "reports/matrix.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json())
    specs = {spec.name for spec, _ in default_registry().specs()}
    assert set(report.matrix()) == specs
    assert all(set(row) == set(BACKENDS) for row in report.matrix().values())
    failures = "\n".join(f"{r.check_id}: {r.message}" for r in report.failed)
    assert not report.failed, f"{len(report.failed)} of {len(report.results)} checks failed:\n{failures}"


LOSS_SPECS = sorted(s.name for s, _ in default_registry().specs() if isinstance(s, LossSpec))


@pytest.mark.parametrize("spec_name", LOSS_SPECS)
def test_backends_agree_with_each_other(spec_name: str) -> None:
    """The default case of each loss, evaluated by every backend, compared pairwise in float64."""
    spec = lossbridge.spec(spec_name)
    case = next(c for c in loss_cases(spec) if c.variant.endswith("-mean") and c.convention is None)
    outputs = {}
    for name in BACKENDS:
        backend = default_registry().backend(name)
        loss = lossbridge.get(spec_name, backend=name, **case.params)
        diff = [i.name for i in spec.differentiable_inputs]
        outputs[name] = backend.loss_value_and_grad(
            loss, case.inputs, sample_weight=None, differentiable=diff, dtype="float64"
        )
    for (a, (va, ga)), (b, (vb, gb)) in itertools.combinations(outputs.items(), 2):
        worst = max([relative_error(va, vb)] + [relative_error(ga[k], gb[k]) for k in ga])
        assert worst <= 2 * tolerance("float64", "loss"), f"{a} vs {b}: {worst:.3g}"
    assert np.isfinite(float(np.sum(outputs[BACKENDS[0]][0])))
