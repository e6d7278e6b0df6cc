"""``lossbridge demo``: the digits network on each backend, the table, the curve difference, the plot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def row_of(out: str, backend: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"│ {backend} "))


def test_demo_numpy_two_epochs_with_plot(cli, tmp_path: Path) -> None:
    png = tmp_path / "curves.png"
    code, out, _ = cli("demo", "--backend", "numpy", "--epochs", "2", "--plot", str(png))
    assert code == 0
    cells = [c.strip() for c in row_of(out, "numpy").strip("│ ").split("│")]
    loss, accuracy, seconds = float(cells[1]), float(cells[2]), float(cells[3])
    assert 0.0 < loss < 2.302585  # below the loss of a uniform guess over 10 classes, ln 10
    assert 0.5 < accuracy <= 1.0  # two epochs already separate most digits
    assert seconds >= 0.0
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert f"loss curves written to {png}" in out


def test_with_only_numpy_it_runs_and_says_how_to_add_the_others(cli, numpy_only) -> None:
    code, out, _ = cli("demo", "--epochs", "1")
    assert code == 0
    assert "│ numpy " in out
    assert "Largest difference" not in out  # one backend: nothing to compare
    assert "install: lossbridge-torch, lossbridge-jax, \"lossbridge-tensorflow[cpu]\"" in out


def test_curve_difference_between_two_backends(cli, extra_backends) -> None:
    code, out, _ = cli("demo", "--backend", "numpy", "numpy_again", "--epochs", "2")
    assert code == 0
    assert "│ numpy_again " in out
    # both run the same NumPy code on the same batches: identical curves
    assert "Largest difference between loss curves: 0.000e+00 (numpy vs numpy_again, epoch 2)" in out


def test_backend_without_train_digits_exits_2(cli, add_backends) -> None:
    from lossbridge.backends.base import Backend

    class Bare(Backend):
        name = "bare"

    add_backends(Bare())
    code, _, err = cli("demo", "--backend", "bare")
    assert code == 2
    assert "backend 'bare' does not implement train_digits" in err


def test_unknown_backend_and_bad_epochs_exit_2(cli) -> None:
    code, _, err = cli("demo", "--backend", "tensorflw")
    assert code == 2
    assert "unknown backend 'tensorflw'" in err
    code, _, err = cli("demo", "--epochs", "0")
    assert code == 2
    assert "expected a positive number of epochs, got 0" in err


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path: Path) -> None:
    argv = ["demo", "--backend", "numpy", "--epochs", "1", "--plot", str(tmp_path / "x.png")]
    code = (
        "import sys; sys.modules['matplotlib'] = None; from lossbridge.cli import main; "
        f"sys.exit(main({argv!r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 2
    assert 'pip install "lossbridge[plot]"' in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_demo_through_a_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lossbridge", "demo", "--backend", "numpy", "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "numpy" in proc.stdout


def test_demo_without_scikit_learn_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None; from lossbridge.cli import main; "
        "sys.exit(main(['demo', '--backend', 'numpy']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 2
    assert 'pip install "lossbridge[demo]"' in proc.stderr
