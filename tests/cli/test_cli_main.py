"""The command itself: entry points, help, usage errors, the missing-extra message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYTHON = sys.executable


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, *args], capture_output=True, text=True, timeout=300, check=False)


def test_python_m_lossbridge_help_lists_every_subcommand() -> None:
    proc = run("-m", "lossbridge", "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("list", "info", "check", "plugins", "demo", "catalog"):
        assert command in proc.stdout


def test_the_installed_console_script_runs() -> None:
    script = Path(sys.executable).with_name("lossbridge")
    assert script.exists(), (
        f"no {script}: reinstall lossbridge (pip install -e .) to create the console script"
    )
    proc = subprocess.run(
        [str(script), "info", "mse"], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("mse (loss)")


def test_no_subcommand_is_a_usage_error(cli) -> None:
    code, _, err = cli()
    assert code == 2
    assert "the following arguments are required: COMMAND" in err


def test_unknown_subcommand_is_a_usage_error(cli) -> None:
    code, _, err = cli("lisst")
    assert code == 2
    assert "invalid choice: 'lisst'" in err


def test_missing_rich_says_how_to_install_it() -> None:
    code = "import sys; sys.modules['rich'] = None; from lossbridge.cli import main; sys.exit(main(['list']))"
    proc = run("-c", code)
    assert proc.returncode == 2
    assert 'pip install "lossbridge[cli]"' in proc.stderr


def test_importing_the_cli_imports_no_framework() -> None:
    code = (
        "import sys, lossbridge.cli, lossbridge.__main__; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules))"
    )
    proc = run("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
