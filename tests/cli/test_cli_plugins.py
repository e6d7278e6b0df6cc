"""``lossbridge plugins``: what each plugin provides, and load errors reported, not raised."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lossbridge.registry import default_registry


def row_of(out: str, plugin: str) -> str:
    """The table row of ``plugin``, its folded continuation lines joined cell by cell."""
    lines = out.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith(f"│ {plugin} "))
    rows = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("│") or line.split("│")[1].strip():
            break
        rows.append(line)
    cells = zip(*(r.split("│")[1:-1] for r in rows), strict=True)
    return " │ ".join("".join(part.strip() for part in cell) for cell in cells)


def test_plugins_lists_distributions_versions_and_what_each_provides(cli) -> None:
    code, out, _ = cli("plugins")
    assert code == 0
    registry = default_registry()
    for info in registry.plugins.values():
        row = row_of(out, info.name)
        assert info.distribution in row
        assert (info.version or "-") in row
        for name in info.specs + info.backends + info.overrides:
            assert name in row
    assert "numpy" in row_of(out, "lossbridge.backends.numpy")
    assert "adam" in row_of(out, "lossbridge.spec._builtin")


def test_a_failing_hook_is_reported_and_the_rest_still_listed(cli, failing_plugin) -> None:
    code, out, err = cli("plugins")  # under filterwarnings=error: the PluginWarning must be captured
    assert code == 0
    assert "cli-test-failing" in row_of(out, "cli-test-failing")
    assert "Load errors" in out
    assert (
        "lossbridge plugin 'cli-test-failing' from distribution 'cli-test-failing' raised in "
        "lossbridge_register_specs: RuntimeError: boom while registering"
    ) in out
    assert "adam" in row_of(out, "lossbridge.spec._builtin")
    assert err == ""


def test_other_commands_warn_about_load_errors_on_stderr(cli, failing_plugin) -> None:
    code, _, err = cli("info", "mse")
    assert code == 0
    assert "lossbridge: warning: lossbridge plugin 'cli-test-failing'" in err


def _broken_distribution(root: Path) -> None:
    """An installed distribution whose entry point names a module that does not exist."""
    dist = root / "broken_lossbridge_plugin-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-lossbridge-plugin\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[lossbridge]\nbroken = no_such_module_for_lossbridge\n")


def _run(root: Path, *args: str, strict: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "1000"}
    env.pop("LOSSBRIDGE_STRICT_PLUGINS", None)
    if strict:
        env["LOSSBRIDGE_STRICT_PLUGINS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "lossbridge", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_an_entry_point_that_fails_to_import_is_shown(tmp_path: Path) -> None:
    _broken_distribution(tmp_path)
    proc = _run(tmp_path, "plugins")
    assert proc.returncode == 0, proc.stderr
    row = row_of(proc.stdout, "broken")
    assert "broken-lossbridge-plugin" in row
    assert "0.3" in row
    assert (
        "lossbridge plugin 'broken' from distribution 'broken-lossbridge-plugin' failed to import: "
        "ModuleNotFoundError: No module named 'no_such_module_for_lossbridge'"
    ) in proc.stdout


def test_strict_plugins_turn_a_load_error_into_exit_2(tmp_path: Path) -> None:
    _broken_distribution(tmp_path)
    proc = _run(tmp_path, "plugins", strict=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("lossbridge: error: lossbridge plugin 'broken'")
    assert "failed to import" in proc.stderr
