"""``lossbridge demo``: the seed's digits network trained in every installed framework, side by side."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path
from typing import Any

from lossbridge.cli._console import CliError, console, require, table
from lossbridge.registry import default_registry

__all__ = ["add_parser", "curve_difference", "plot_curves", "run"]

#: The framework backends the demo knows how to suggest, with their distributions.
FRAMEWORKS = {"torch": "lossbridge-torch", "jax": "lossbridge-jax", "tensorflow": "\"lossbridge-tensorflow[cpu]\""}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of epochs, got {text}")
    return value


def add_parser(sub: Any) -> None:
    """Register the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="train the seed's digits network in every installed framework")
    p.add_argument(
        "--backend", metavar="NAME", nargs="+", action="extend", help="backends (default: all installed)"
    )
    p.add_argument("--epochs", type=_positive, default=10, help="training epochs (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, initial weights and batches")
    p.add_argument(
        "--plot", metavar="FILE", type=Path, help="write a PNG of the loss curves (needs matplotlib)"
    )
    p.set_defaults(run=run)


def _backends(names: list[str] | None) -> list[Any]:
    """The chosen backends (or every installed one that can train the demo), NumPy first."""
    registry = default_registry()
    if names:
        chosen = [registry.backend(n) for n in dict.fromkeys(names)]
        for backend in chosen:
            if not hasattr(backend, "train_digits"):
                raise CliError(
                    f"backend {backend.name!r} does not implement train_digits, so it cannot run the demo"
                )
        return chosen
    found = [b for b in registry.backends().values() if b.available() and hasattr(b, "train_digits")]
    return sorted(found, key=lambda b: (b.name != "numpy", b.name))


def curve_difference(results: list[Any]) -> tuple[float, str]:
    """The largest absolute difference between two backends' per-epoch losses, and where it is."""
    worst, where = 0.0, ""
    for a, b in itertools.combinations(results, 2):
        for epoch, (la, lb) in enumerate(zip(a.train_loss, b.train_loss, strict=False), start=1):
            if abs(la - lb) >= worst:
                worst, where = abs(la - lb), f"{a.backend} vs {b.backend}, epoch {epoch}"
    return worst, where


def plot_curves(results: list[Any], path: Path) -> None:
    """Write the per-epoch training loss of each backend to ``path`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for result in results:
        ax.plot(range(1, len(result.train_loss) + 1), result.train_loss, marker="o", label=result.backend)
    ax.set(xlabel="epoch", ylabel="mean training loss", title="digits: Dense(64, relu) -> Dense(10), Adam")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _missing_hint(results: list[Any]) -> str:
    registry = default_registry()
    have = {r.backend for r in results}
    missing = []
    for name, dist in FRAMEWORKS.items():
        if name in have:
            continue
        backend = registry.backends().get(name)
        if backend is None:
            missing.append(dist)
        elif not backend.available():
            missing.append(f"{backend.distribution} (with {', '.join(backend.requires)})")
    if not missing:
        return ""
    return f"To compare with the other frameworks, install: {', '.join(dict.fromkeys(missing))}"


def _train(backends: list[Any], data: Any) -> tuple[list[Any], list[str]]:
    out = console(stderr=True)
    results, errors = [], []
    for backend in backends:
        with out.status(f"training on {backend.name} ({data.epochs} epochs)..."):
            try:
                result = backend.train_digits(data)
                results.append(dataclasses.replace(result, backend=backend.name))
            except Exception as exc:  # one framework failing must not hide the others' results
                errors.append(f"{backend.name}: {type(exc).__name__}: {exc}")
    return results, errors


def _print(results: list[Any], errors: list[str], epochs: int) -> None:
    from rich.markup import escape

    out = console()
    first = results[0].backend if results else ""
    grid = table("backend", "final train loss", "val accuracy", "seconds", f"max |loss - {first}'s|")
    for r in results:
        gap = curve_difference([results[0], r])[0] if r is not results[0] else None
        cells = (r.backend, f"{r.train_loss[-1]:.6f}", f"{r.val_accuracy:.4f}", f"{r.seconds:.2f}")
        grid.add_row(*cells, "-" if gap is None else f"{gap:.2e}")
    network = "Dense(64, relu) -> Dense(10), sparse categorical cross-entropy, Adam"
    out.print(f"digits: {network}, {epochs} epochs")
    out.print(grid)
    if len(results) > 1:
        worst, where = curve_difference(results)
        out.print(f"Largest difference between loss curves: {worst:.3e} ({where})")
    for message in errors:
        out.print(f"[red]FAILED[/red] {escape(message)}")
    hint = _missing_hint(results)
    if hint:
        out.print(escape(hint))


def run(args: argparse.Namespace, registry_warnings: list[str]) -> int:
    """Train on each backend, print the table and the largest curve difference, optionally plot."""
    require("sklearn", "demo", "lossbridge demo (its digits data)")
    if args.plot is not None:
        require("matplotlib", "plot", "--plot")
    backends = _backends(args.backend)
    from lossbridge.demo import load_digits_data

    data = load_digits_data(seed=args.seed, epochs=args.epochs)
    results, errors = _train(backends, data)
    _print(results, errors, data.epochs)
    if args.plot is not None and results:
        plot_curves(results, args.plot)
        console().print(f"loss curves written to {args.plot}")
    return 1 if errors else 0
