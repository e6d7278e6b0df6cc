"""``lossbridge check``: the conformance matrix, the JSON report and the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lossbridge
from lossbridge.testing import generate_checks


def test_check_numpy_passes_and_writes_json(cli, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    code, out, _ = cli("check", "--backend", "numpy", "--spec", "mse", "sgd", "--json", str(report))
    assert code == 0
    expected = len(generate_checks("numpy", specs=["mse", "sgd"]))
    assert f"{expected} of {expected} checks passed." in out
    assert "FAIL" not in out
    for line in ("│ mse ", "│ sgd "):
        assert any(row.startswith(line) for row in out.splitlines())
    data = json.loads(report.read_text())
    assert set(data["matrix"]) == {"mse", "sgd"}
    assert all(cell["passed"] for row in data["matrix"].values() for cell in row.values())
    assert len(data["results"]) == expected


def test_check_one_dtype(cli) -> None:
    code, out, _ = cli("check", "--backend", "np", "--spec", "mse", "--dtype", "float64")
    assert code == 0
    expected = len(generate_checks("numpy", specs=["mse"], dtypes=["float64"]))
    assert f"{expected} of {expected} checks passed." in out


def test_a_wrong_backend_fails_the_check_with_status_1(cli, extra_backends) -> None:
    code, out, _ = cli("check", "--backend", "skewed", "numpy", "--spec", "mse")
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("│ mse "))
    assert "FAIL" in row
    assert "FAIL skewed-mse-" in out
    assert "worst relative error" in out  # the kit's own failure message


def test_unknown_backend_and_spec_exit_2_with_the_library_message(cli) -> None:
    code, _, err = cli("check", "--backend", "nosuch")
    assert code == 2
    assert "unknown backend 'nosuch'" in err
    assert "Installed backends:" in err
    code, _, err = cli("check", "--backend", "numpy", "--spec", "msee")
    assert code == 2
    try:
        lossbridge.spec("msee")
    except lossbridge.UnknownNameError as exc:
        assert err.strip() == f"lossbridge: error: {exc}"


def test_check_through_a_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lossbridge", "check", "--backend", "numpy", "--spec", "adam"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checks passed" in proc.stdout
