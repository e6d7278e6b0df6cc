"""``lossbridge catalog``: the Markdown catalog, and README.md's generated block kept up to date."""

from __future__ import annotations

from pathlib import Path

import lossbridge
from lossbridge.cli._catalog import END, START, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_markdown_groups_losses_by_task_and_lists_every_spec(cli) -> None:
    code, out, _ = cli("catalog", "--markdown")
    assert code == 0
    lines = out.splitlines()
    named = {line.split("`")[1] for line in lines if line.startswith("| `")}
    assert named == {e.name for e in lossbridge.catalog()}
    assert "**Losses for regression**" in lines and "**Optimizers**" in lines
    regression = lines[lines.index("**Losses for regression**") :]
    assert any(line.startswith("| `mse` |") for line in regression[: regression.index("", 2)])
    adam = next(line for line in lines if line.startswith("| `adam` |"))
    assert "torch: `Adam`" in adam and "keras: `Adam`" in adam


def test_builtin_only_leaves_out_plugins_specs(cli) -> None:
    code, out, _ = cli("catalog", "--builtin")
    assert code == 0
    for entry in lossbridge.catalog():
        assert (f"| `{entry.name}` |" in out) == (entry.distribution == "lossbridge")


def test_update_and_check_a_readme(cli, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nBefore.\n\n{START}\nstale\n{END}\n\nAfter.\n")
    assert cli("catalog", "--check-readme", str(readme))[0] == 1
    code, out, _ = cli("catalog", "--update-readme", str(readme))
    assert code == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nBefore.\n\n")
    assert text.endswith(f"{END}\n\nAfter.\n")
    assert markdown_table(builtin_only=True) in text
    assert "stale" not in text
    code, out, _ = cli("catalog", "--check-readme", str(readme))
    assert code == 0
    assert "up to date" in out


def test_readme_without_markers_exits_2(cli, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# No catalog here\n")
    code, _, err = cli("catalog", "--update-readme", str(readme))
    assert code == 2
    assert f"{readme} has no catalog block" in err
    code, _, err = cli("catalog", "--check-readme", str(tmp_path / "missing.md"))
    assert code == 2
    assert "cannot read" in err


def test_the_repository_readme_catalog_is_up_to_date() -> None:
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    assert START in text and END in text, (
        f"{README} needs a catalog block: the lines {START} and {END}, then run "
        "`python -m lossbridge catalog --update-readme README.md`"
    )
    block = text[text.index(START) : text.index(END)]
    assert markdown_table(builtin_only=True) in block, (
        "README.md's catalog is out of date: run `python -m lossbridge catalog --update-readme README.md`"
    )
