"""The Markdown of one spec's page: everything the spec declares, its picture and its snippets."""

from __future__ import annotations

import re
from typing import Any

from lossbridge.cli._info import convention_rows
from lossbridge.docs._snippets import Snippet
from lossbridge.spec import LossSpec, OptimizerSpec, ScheduleSpec

__all__ = ["KIND_DIRS", "cell", "framework_names", "link_refs", "spec_page", "spec_path"]

#: spec kind -> directory of its pages
KIND_DIRS = {"loss": "losses", "optimizer": "optimizers", "schedule": "schedules"}

_URL = re.compile(r"(?<![<(])(https?://[^\s<>()]+[^\s<>().,;])")


def spec_path(spec: Any) -> str:
    """The page of ``spec``, relative to the site root."""
    return f"{KIND_DIRS[spec.kind]}/{spec.name}.md"


def cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def link_refs(text: str) -> str:
    """Bare URLs as Markdown autolinks."""
    return _URL.sub(r"<\1>", text)


def _native_last(native: str) -> list[str]:
    first = native.split()[0] if native else ""
    last = first.split(".")[-1]
    return [last] if "." in first and last.isidentifier() else []


def framework_names(spec: Any, framework: str) -> dict[str, dict[str, Any]]:
    """Every name ``framework`` uses for ``spec`` under its convention, with the parameters it presets."""
    conv = spec.conventions[framework]
    return {**{n: {} for n in _native_last(conv.native)}, **{k: dict(v) for k, v in conv.names.items()}}


def _preset(preset: dict[str, Any]) -> str:
    return ", ".join(f"`{k}={v!r}`" for k, v in preset.items()) or "-"


def _header(spec: Any, provider: str) -> list[str]:
    lines = [f"# {spec.name}", "", f"*{spec.kind}* · {cell(spec.summary)}", ""]
    facts = [f"**provided by** `{provider}`"]
    if spec.aliases:
        facts.append("**aliases** " + ", ".join(f"`{a}`" for a in spec.aliases))
    if isinstance(spec, LossSpec):
        facts.append("**tasks** " + ", ".join(f"[{t.replace('_', ' ')}](../choose/{t}.md)" for t in sorted(spec.tasks)))
        facts.append("**inputs** " + ", ".join(f"`{i.name}` ({i.role})" for i in spec.inputs))
    return [*lines, " · ".join(facts), ""]


def _params(spec: Any) -> list[str]:
    lines = ["## Parameters", "", "| parameter | default | valid values | meaning |", "|---|---|---|---|"]
    for p in spec.all_params():
        lines.append(f"| `{p.name}` | `{p.default!r}` | {cell(p.describe())} | {cell(p.doc)} |")
    return [*lines, ""]


def _names(spec: Any) -> list[str]:
    if not spec.conventions:
        return []
    lines = [
        "## Framework names",
        "",
        "Each resolves to this spec with `lossbridge.get(name, convention=framework)`, "
        "presetting the parameters shown.",
        "",
        "| framework | name | presets |",
        "|---|---|---|",
    ]
    for fw in sorted(spec.conventions):
        for name, preset in sorted(framework_names(spec, fw).items()):
            lines.append(f"| {fw} | `{name}` | {_preset(preset)} |")
    return [*lines, ""]


def _conventions(spec: Any) -> list[str]:
    loss = isinstance(spec, LossSpec)
    middle = "reduction" if loss else ("hyperparameter dtype" if isinstance(spec, OptimizerSpec) else "")
    extra = [middle] if middle else []
    head = ["convention", "native object", "parameters that differ from the defaults", *extra, "notes"]
    lines = [
        "## Conventions",
        "",
        "What each framework's convention changes; `lossbridge.get(name, convention=...)` reproduces it.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for fw, native, params, rule, dtype, notes in convention_rows(spec):
        shown = [rule if loss else dtype] if middle else []
        cells = [fw, f"`{native}`" if native != "-" else "-", params, *shown, notes]
        lines.append("| " + " | ".join(cell(c) or "-" for c in cells) + " |")
    return [*lines, ""]


def _picture(spec: Any, image: str | None, problem: str | None) -> list[str]:
    what = {
        "loss": "Value and gradient against one prediction entry, the other inputs fixed; one line per convention "
        "that changes them (conventions whose curves coincide share a line).",
        "optimizer": "Trajectories from the star, 200 steps on Rosenbrock's function and on an ill-conditioned "
        "quadratic, one line per convention that changes them (coinciding paths share a line), all with the same "
        "learning rate, chosen per problem from the default lr times 0.01 to 100.",
        "schedule": "The value against the step with the default parameters, per convention.",
    }[spec.kind]
    if image is None:
        return ["## Picture", "", f"No picture: {cell(problem or 'not drawn')}.", ""]
    return ["## Picture", "", what, "", f"![{spec.name}]({image})", ""]


def _snippets(found: list[Snippet]) -> list[str]:
    lines = ["## Usage", ""]
    for sn in found:
        lines.append(f'=== "{sn.title}"')
        lines.append("")
        body = ["```python", *sn.code.splitlines(), "```", ""]
        if sn.skipped:
            body += [f"*Not run while this site was built: `{sn.backend}` was not installed.*", ""]
        elif sn.error:
            body += [f"*This snippet failed while the site was built:* `{cell(sn.error)}`", ""]
        elif sn.output:
            printed = sn.output.rstrip().splitlines()
            body += ["Output (printed while this site was built):", "", "```text", *printed, "```", ""]
        lines += [("    " + b) if b else "" for b in body]
    return lines


def spec_page(
    spec: LossSpec | OptimizerSpec | ScheduleSpec,
    *,
    provider: str,
    snippets: list[Snippet],
    image: str | None,
    image_problem: str | None = None,
) -> str:
    """The whole page of ``spec``."""
    lines = _header(spec, provider)
    lines += ["## Formula", "", "$$", spec.formula, "$$", ""]
    lines += _params(spec)
    if spec.usage:
        lines += ["## When to use it, pitfalls", "", spec.usage, ""]
    lines += _picture(spec, image, image_problem)
    lines += _names(spec)
    lines += _conventions(spec)
    lines += _snippets(snippets)
    lines += ["## References", "", *(f"- {link_refs(r)}" for r in spec.references), ""]
    return "\n".join(lines)
