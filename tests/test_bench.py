"""The catalog benchmark command (``python -m benchmarks``, ``lossbridge bench``): its report's structure.

Speed is never asserted: these run ``--quick`` on one spec and check what the report holds. The NumPy
backend needs no framework (this file runs in the core environment); the torch run is skipped where
torch is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = {
    "backend", "spec", "kind", "mode", "size", "native", "convention", "lossbridge_s", "native_s", "ratio",
    "target", "meets", "peak_mb_lossbridge", "peak_mb_native", "agree", "status", "reason",
}


def _bench(*args: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "bench.png").stat().st_size > 0
    return json.loads((out / "bench.json").read_text())


def _check_report(report: dict, backend: str) -> list[dict]:
    assert {"timestamp", "machine", "settings", "targets", "rows", "summary", "seconds"} <= set(report)
    machine = report["machine"]
    assert machine["cpu_count"] >= 1 and isinstance(machine["cpu_model"], str)
    for package in ("python", "numpy", "torch", "tensorflow", "jax", "optax", "keras"):
        assert package in machine["versions"]
    rows = report["rows"]
    assert rows, "no rows"
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["backend"] == backend and row["spec"] == "mse"
        assert row["status"] == "ok", row["reason"]
        assert row["lossbridge_s"] > 0 and row["native_s"] > 0
        assert row["ratio"] == pytest.approx(row["lossbridge_s"] / row["native_s"])
        assert row["agree"] is True
    return rows


def test_quick_numpy_run_writes_the_report_and_the_plot(tmp_path: Path) -> None:
    report = _bench("--quick", "--only", "mse", "--backend", "numpy", out=tmp_path)
    rows = _check_report(report, "numpy")
    assert [r["size"] for r in rows] == ["1e3"]
    assert rows[0]["peak_mb_lossbridge"] is not None  # NumPy peak memory is measured (tracemalloc)
    assert rows[0]["target"] is None and rows[0]["meets"] is None  # no native framework: no target
    assert set(report["summary"]) == {"numpy/loss/eager"}


def test_lossbridge_bench_runs_the_same_command(tmp_path: Path) -> None:
    pytest.importorskip("rich")
    proc = subprocess.run(
        [sys.executable, "-m", "lossbridge", "bench", "--quick", "--only", "mse", "--backend", "numpy",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_report(json.loads((tmp_path / "bench.json").read_text()), "numpy")


def test_unknown_spec_or_backend_is_a_usage_error(tmp_path: Path) -> None:
    for args in (("--only", "no_such_loss"), ("--backend", "no_such_backend")):
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--quick", *args, "--out", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "benchmarks:" in proc.stderr


def test_quick_torch_run_compares_against_torch_nn(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    report = _bench("--quick", "--only", "mse", "--backend", "torch", "--kind", "loss", out=tmp_path)
    rows = _check_report(report, "torch")
    assert {r["native"] for r in rows} == {"torch.nn.MSELoss"}
    assert {r["mode"] for r in rows} == {"eager"} and rows[0]["target"] == 1.3
