"""The conformance kit: prove that a backend computes what the spec defines.

For third-party plugin authors, one import and one decorator, like scikit-learn's
``parametrize_with_checks``::

    from lossbridge.testing import parametrize_with_checks

    @parametrize_with_checks(backend="mybackend", expected_failures={
        "mybackend-adafactor-*": "factored moments not supported yet",
    })
    def test_conformance(check):
        check()

Every registered spec (a plugin's own included) gets cases generated from its input domains:
each parameter variant and convention, several shapes, each reduction, sample weights, class
weights and ignored labels, and extreme values (probabilities of exactly 0 and 1, logits of
+-50; in float64). Each case runs through ``lossbridge.get(...)`` on the backend, so verified
overrides are checked too, and its value and input gradients (losses) or 100-step trajectory
(optimizers, the same gradients fed to both) are compared with the float64 NumPy run of the spec
within :data:`TOLERANCES`. On the NumPy backend, analytic gradients are also compared with
central finite differences.

:func:`fuzz` / :func:`fuzz_spec` add a property-based search (Hypothesis, imported only when a
search runs): extreme but valid inputs drawn per domain, each spec on each backend, failures shrunk
and printed as a ready-to-paste reproduction (``lossbridge check --fuzz N`` on the command line).
"""

from __future__ import annotations

__all__ = [
    "TOLERANCES",
    "Check",
    "CheckResult",
    "FuzzResult",
    "Report",
    "domain_strategy",
    "fuzz",
    "fuzz_spec",
    "generate_checks",
    "parametrize_with_checks",
    "relative_error",
    "run_checks",
    "tolerance",
]

from lossbridge.testing._checks import (
    TOLERANCES,
    Check,
    CheckResult,
    generate_checks,
    relative_error,
    tolerance,
)
from lossbridge.testing._fuzz import FuzzResult, domain_strategy, fuzz, fuzz_spec
from lossbridge.testing._report import Report, parametrize_with_checks, run_checks
