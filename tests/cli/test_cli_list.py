"""``lossbridge list``: the catalog table and its filters."""

from __future__ import annotations

import re
import subprocess
import sys

import lossbridge
from lossbridge.registry import default_registry


def names_in(out: str) -> set[str]:
    """The first-column names of a rich table."""
    return {m.group(1) for m in re.finditer(r"^│ (\S+)\s+│", out, flags=re.MULTILINE)}


def test_list_shows_every_spec_with_its_installed_backends(cli) -> None:
    code, out, _ = cli("list")
    assert code == 0
    assert names_in(out) == {e.name for e in lossbridge.catalog()}
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("│ adam "))
    end = next(i for i in range(start + 1, len(lines)) if not re.match(r"^│ {2,}", lines[i]))
    adam = " ".join(lines[start:end])  # the row, with the lines its folded cells wrap onto
    for backend in lossbridge.available_backends():
        assert backend in adam
    alias = lossbridge.spec("adamw").aliases[0]
    adamw = next(line for line in lines if line.startswith("│ adamw "))
    assert alias in adamw  # aliases are listed


def test_list_by_task_answers_what_to_use_for_multiclass(cli) -> None:
    code, out, _ = cli("list", "--task", "multiclass")
    assert code == 0
    names = names_in(out)
    assert "sparse_categorical_crossentropy" in names
    assert "categorical_crossentropy" in names
    assert not names & {"mse", "binary_crossentropy", "adam"}


def test_list_by_kind(cli) -> None:
    code, out, _ = cli("list", "--kind", "optimizer")
    assert code == 0
    names = names_in(out)
    assert {"adam", "sgd"} <= names
    assert "mse" not in names


def test_list_schedules_when_there_are_none_says_so(cli) -> None:
    code, out, _ = cli("list", "--kind", "schedule")
    assert code == 0
    if not lossbridge.catalog(kind="schedule"):
        assert "No spec matches these filters." in out


def test_unknown_task_exits_2_naming_close_matches(cli) -> None:
    code, out, err = cli("list", "--task", "multiclas")
    assert code == 2
    assert out == ""
    assert "unknown task 'multiclas'; did you mean 'multiclass'" in err


def test_unknown_backend_exits_2_with_the_library_message(cli) -> None:
    try:
        default_registry().backend("pytorchh")
    except lossbridge.BackendError as exc:
        message = str(exc)
    code, _, err = cli("list", "--backend", "pytorchh")
    assert code == 2
    assert err.strip() == f"lossbridge: error: {message}"


def test_backend_filter_keeps_what_it_materializes(cli, extra_backends) -> None:
    code, out, _ = cli("list", "--backend", "halfway")
    assert code == 0
    names = names_in(out)
    assert {"mse", "binary_crossentropy"} <= names
    assert not names & {"adam", "sgd"}  # materializing an optimizer raises on this backend


def test_verify_drops_backends_where_materializing_raises(cli, extra_backends) -> None:
    code, out, _ = cli("list", "--kind", "optimizer", "--verify")
    assert code == 0
    sgd = next(line for line in out.splitlines() if line.startswith("│ sgd "))
    assert "numpy" in sgd
    assert "halfway" not in sgd
    mse_code, mse_out, _ = cli("list", "--kind", "loss", "--verify")
    assert mse_code == 0
    assert "halfway" in next(line for line in mse_out.splitlines() if line.startswith("│ mse "))


def test_list_through_a_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lossbridge", "list", "--task", "regression", "--backend", "numpy"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mse" in proc.stdout
    assert "adam" not in proc.stdout
