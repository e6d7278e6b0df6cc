"""Running checks: the pytest decorator, the whole-matrix run and its report."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lossbridge.registry import Registry, default_registry
from lossbridge.testing._checks import Check, CheckResult, generate_checks

__all__ = ["Report", "parametrize_with_checks", "run_checks"]


def _reason(check: Check, expected_failures: Mapping[str, str]) -> str | None:
    """The reason ``check`` is expected to fail: keys are check ids, globs of them, or spec names."""
    for key, reason in expected_failures.items():
        if key == check.spec or fnmatch.fnmatchcase(check.check_id, key):
            return reason
    return None


def parametrize_with_checks(
    backend: str | Sequence[str],
    *,
    specs: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    expected_failures: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> Any:
    """A ``pytest.mark.parametrize("check", ...)`` over every conformance check of ``backend``
    (a backend name, or several: e.g. ``lossbridge.available_backends()``).

    ``expected_failures`` maps a check id, a glob of ids or a spec name to the reason; those checks
    are marked ``xfail(strict=True)``, so a fixed failure shows up as an unexpected pass.
    """
    import pytest

    failures = dict(expected_failures or {})
    params = []
    names = [backend] if isinstance(backend, str) else list(backend)
    checks = [c for name in names for c in generate_checks(name, specs=specs, dtypes=dtypes, registry=registry)]
    for check in checks:
        reason = _reason(check, failures)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(check, id=check.check_id, marks=marks))
    return pytest.mark.parametrize("check", params)


@dataclass
class Report:
    """Every check's result, with the spec x backend matrix of worst relative errors."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that did not pass."""
        return [r for r in self.results if not r.passed]

    def matrix(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{spec: {backend: {"worst": float, "by_dtype": {dtype: float}, "passed": bool, "checks": int}}}``.

        ``worst`` is the largest relative error over every value, gradient and trajectory compared
        (finite-difference checks of the spec's own gradient are counted but not included).
        """
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for r in self.results:
            empty = {"worst": 0.0, "by_dtype": {}, "passed": True, "checks": 0}
            cell = out.setdefault(r.spec, {}).setdefault(r.backend, empty)
            cell["checks"] += 1
            cell["passed"] = cell["passed"] and r.passed
            if r.kind != "fd":
                cell["worst"] = max(cell["worst"], r.worst_error)
                cell["by_dtype"][r.dtype] = max(cell["by_dtype"].get(r.dtype, 0.0), r.worst_error)
        return out

    def to_json(self) -> str:
        """The report as JSON: the matrix and every result."""
        results = [asdict(r) for r in self.results]
        for r in results:  # JSON has no infinity
            if r["worst_error"] == float("inf"):
                r["worst_error"] = None
        return json.dumps({"matrix": self.matrix(), "results": results}, indent=1, default=str)

    @classmethod
    def from_json(cls, text: str) -> Report:
        """A report read back from :meth:`to_json` (to merge the reports of separate runs)."""
        results = []
        for r in json.loads(text)["results"]:
            r["worst_error"] = float("inf") if r["worst_error"] is None else r["worst_error"]
            results.append(CheckResult(**r))
        return cls(results)

    def format_matrix(self) -> str:
        """A plain-text matrix: rows are specs, columns backends; each cell the worst relative error
        in float32 / float64, ``FAIL`` marking a cell with any failed check."""
        matrix = self.matrix()
        backends = sorted({b for row in matrix.values() for b in row})
        width = 22
        lines = ["spec".ljust(34) + "".join(b.rjust(width) for b in backends)]
        lines.append(" " * 34 + "".join("float32 / float64".rjust(width) for _ in backends))
        for spec in sorted(matrix):
            cells = []
            for b in backends:
                cell = matrix[spec].get(b)
                cells.append("-" if cell is None else _cell(cell))
            lines.append(spec.ljust(34) + "".join(c.rjust(width) for c in cells))
        return "\n".join(lines)


def _cell(cell: dict[str, Any]) -> str:
    by = cell["by_dtype"]
    text = " / ".join(f"{by[d]:.1e}" if d in by else "-" for d in ("float32", "float64"))
    return text if cell["passed"] else f"FAIL {text}"


def run_checks(
    backends: Sequence[str] | None = None,
    *,
    specs: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    registry: Registry | None = None,
    progress: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run every check of each backend (default: every installed one) and collect a :class:`Report`."""
    reg = registry or default_registry()
    names = list(backends) if backends else sorted(n for n, b in reg.backends().items() if b.available())
    report = Report()
    for name in names:
        for check in generate_checks(name, specs=specs, dtypes=dtypes, registry=registry):
            result = check.run()
            report.results.append(result)
            if progress is not None:
                progress(result)
    return report
